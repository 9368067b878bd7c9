use std::time::Duration;

use k8s_openapi::api::authentication::v1::UserInfo;
use time::OffsetDateTime;

use super::*;
use crate::{store, token::TokenIssuer};

#[derive(Debug)]
struct FakeReview(TokenReviewStatus);

#[tonic::codegen::async_trait]
impl TokenReviewer for FakeReview {
    async fn review(&self, _token: &str, audiences: &[String]) -> Result<TokenReviewStatus, String> {
        assert_eq!(audiences, ["istio-ca"]);
        Ok(self.0.clone())
    }
}

fn status(authenticated: bool, username: &str, groups: &[&str]) -> TokenReviewStatus {
    TokenReviewStatus {
        authenticated: Some(authenticated),
        user: Some(UserInfo {
            username: Some(username.into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn token_review_table() {
    let sa = "system:serviceaccounts";
    let cases = [
        (status(true, "system:serviceaccount:ns:sa", &[sa]), Ok("spiffe://td/ns/ns/sa/sa")),
        (status(false, "system:serviceaccount:ns:sa", &[sa]), Err("auth_token_review")),
        (status(true, "system:serviceaccount:ns:sa", &["system:authenticated"]), Err("auth_token_review")),
        (status(true, "alice", &[sa]), Err("auth_token_subject")),
        (
            TokenReviewStatus {
                error: Some("boom".into()),
                ..status(true, "system:serviceaccount:a:b", &[sa])
            },
            Err("auth_token_review"),
        ),
    ];
    for (st, want) in cases {
        let got = identity_from_review(&st, "td");
        match (got, want) {
            (Ok(id), Ok(s)) => assert_eq!(id.to_string(), s),
            (Err(e), Err(r)) => assert_eq!(crate::CaError::Unauthenticated(e).reason(), r, "{st:?}"),
            (g, w) => panic!("{st:?}: got {g:?} want {w:?}"),
        }
    }
}

#[tokio::test]
async fn order_and_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = store::token_key(dir.path()).expect("key");
    let issuer = TokenIssuer::from_pem(&pem).expect("issuer");
    let now = OffsetDateTime::now_utc();
    let token = issuer.issue("ns", "sa", Duration::from_secs(60), now).expect("token");
    let auth = Authenticator::new("cluster.local").with_bootstrap(TokenVerifier::bootstrap(&pem).expect("v"));

    let bearer = format!("Bearer {token}");
    let c = auth
        .authenticate(Credentials { authorization: Some(&bearer), ..Default::default() })
        .await
        .expect("ok");
    assert_eq!(c.method, AuthMethod::BootstrapToken);
    assert_eq!(c.identity.to_string(), "spiffe://cluster.local/ns/ns/sa/sa");

    // No credential at all.
    assert_eq!(auth.authenticate(Credentials::default()).await, Err(AuthError::NoCredential));
    // Unknown issuer and no TokenReview configured.
    let other = crate::token::unverified_issuer(&token).expect("iss");
    assert_eq!(other, crate::token::BOOTSTRAP_ISSUER);
    let bare = Authenticator::new("cluster.local");
    assert_eq!(
        bare.authenticate(Credentials { authorization: Some(&bearer), ..Default::default() }).await,
        Err(AuthError::Issuer(crate::token::BOOTSTRAP_ISSUER.into()))
    );
    // A TokenReview-backed authenticator accepts what the API server accepts.
    let kube = Authenticator::new("cluster.local").with_token_review(Arc::new(FakeReview(status(
        true,
        "system:serviceaccount:prod:web",
        &["system:serviceaccounts"],
    ))));
    let c = kube
        .authenticate(Credentials { authorization: Some(&bearer), ..Default::default() })
        .await
        .expect("ok");
    assert_eq!(
        (c.method, c.identity.to_string()),
        (AuthMethod::TokenReview, "spiffe://cluster.local/ns/prod/sa/web".into())
    );

    // A client certificate wins over a token.
    let m = store::generate_root("cluster.local", now, crate::profile::SELF_SIGNED_ROOT_TTL).expect("root");
    let s = crate::Signer::from_material(&m, Default::default(), now).expect("signer");
    let csr = crate::csr::parse_pem(&crate::csr::tests::rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256, &[]))
        .expect("csr");
    let id = SpiffeId::parse("spiffe://cluster.local/ns/renew/sa/me").expect("id");
    let leaf =
        crate::signer::pem_certs(&s.sign(&csr, &id, 0, now).expect("sign").chain[0]).expect("pem").remove(0);
    let c = auth
        .authenticate(Credentials { verified_client_cert: Some(&leaf), authorization: Some(&bearer) })
        .await
        .expect("ok");
    assert_eq!((c.method, c.identity), (AuthMethod::ClientCert, id));
    // A client cert of another trust domain falls through to the token.
    let foreign =
        Authenticator::new("other.domain").with_bootstrap(TokenVerifier::bootstrap(&pem).expect("v"));
    assert_eq!(
        foreign.authenticate(Credentials { verified_client_cert: Some(&leaf), authorization: None }).await,
        Err(AuthError::CertIdentity("other.domain".into()))
    );
}

#[test]
fn bearer_prefixes() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("Istio abc"), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bearer "), None);
}
