//! RequestAuthentication through the proxy: Envoy's 401 texts and WWW-Authenticate, and JWT
//! outputs forwarded to the app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

fn sample(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/istio-samples/tests-common-jwt")
        .join(name);
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

fn policies() -> String {
    let jwks = sample("jwks.json").replace('\n', "");
    format!(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  jwtRules:
  - issuer: test-issuer-1@istio.io
    jwks: '{jwks}'
    outputPayloadToHeader: x-jwt-payload
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_401_and_valid_token_passes() {
    let mesh = Mesh::new(&policies());
    let app = echo_app().await;
    let run = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8001, app)]).await;
    let url = format!("http://{}/headers?token=secret", run.port(8001));

    let expired = format!("Authorization: Bearer {}", sample("TokenExpired.jwt"));
    let (code, out) = curl(&["-i", "-H", expired.as_str(), url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    let host = run.port(8001);
    // The realm is the request URI without its query (a token in the query is not echoed).
    assert!(
        out.contains(&format!(
            "www-authenticate: Bearer realm=\"http://{host}/headers\", error=\"invalid_token\""
        )),
        "{out}"
    );
    assert!(out.ends_with("Jwt is expired"), "{out}");

    let valid = format!("Authorization: Bearer {}", sample("TokenIssuer1.jwt"));
    let (code, out) = curl(&["-H", valid.as_str(), url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(h["x-jwt-payload"].as_str().is_some_and(|p| !p.is_empty()), "{out}");

    // No token: passes without identity.
    let (_, out) = curl(&["-w", "%{http_code}", "-o", "/dev/null", url.as_str()]).await;
    assert_eq!(out, "200");
}
