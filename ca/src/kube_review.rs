//! Kubernetes TokenReview through `kube`, used when the CA runs in a cluster
//! (`KUBERNETES_SERVICE_HOST` set). The acceptance decision is [`crate::auth::identity_from_review`].

use std::{fmt, sync::Arc};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::{Api, PostParams};

use crate::auth::TokenReviewer;

/// Posts `TokenReview`s to the API server.
#[derive(Clone)]
pub struct KubeTokenReviewer {
    client: kube::Client,
}

impl fmt::Debug for KubeTokenReviewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeTokenReviewer").finish_non_exhaustive()
    }
}

impl KubeTokenReviewer {
    /// Uses an existing client.
    pub fn new(client: kube::Client) -> Self {
        KubeTokenReviewer { client }
    }
}

/// A reviewer for the cluster we run in, or `None` outside one.
pub async fn in_cluster() -> Option<Arc<dyn TokenReviewer>> {
    std::env::var_os("KUBERNETES_SERVICE_HOST")?;
    match kube::Client::try_default().await {
        Ok(c) => Some(Arc::new(KubeTokenReviewer::new(c))),
        Err(e) => {
            tracing::warn!(target: "ca", error = %e, "in a cluster but no Kubernetes client; TokenReview disabled");
            None
        }
    }
}

#[tonic::codegen::async_trait]
impl TokenReviewer for KubeTokenReviewer {
    async fn review(&self, token: &str, audiences: &[String]) -> Result<TokenReviewStatus, String> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            metadata: Default::default(),
            spec: TokenReviewSpec { token: token.to_string(), audiences: Some(audiences.to_vec()) },
            status: None,
        };
        let created = api.create(&PostParams::default(), &review).await.map_err(|e| match e {
            // Only the status code and reason: never echo anything that could carry the token.
            kube::Error::Api(s) => format!("API server refused the review: {} {}", s.code, s.reason),
            other => format!(
                "TokenReview request failed: {}",
                other.to_string().chars().take(200).collect::<String>()
            ),
        })?;
        created.status.ok_or_else(|| "TokenReview returned no status".to_string())
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::auth::identity_from_review;

    /// A one-request fake API server: checks the posted review, answers authenticated.
    #[tokio::test]
    async fn posts_token_review_and_reads_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = sock.read(&mut chunk).await.expect("read");
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&buf).to_string();
            assert!(text.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews"), "{text}");
            let body = &text[text.find("\r\n\r\n").expect("body") + 4..];
            let v: serde_json::Value = serde_json::from_str(body).expect("json");
            assert_eq!(v["spec"]["token"], "tok");
            assert_eq!(v["spec"]["audiences"], serde_json::json!(["istio-ca"]));
            let resp = serde_json::json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {}, "status": {"authenticated": true,
                  "user": {"username": "system:serviceaccount:prod:web", "groups": ["system:serviceaccounts", "system:authenticated"]}}
            })
            .to_string();
            let http = format!(
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{resp}",
                resp.len()
            );
            sock.write_all(http.as_bytes()).await.expect("write");
        });
        let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let status =
            KubeTokenReviewer::new(client).review("tok", &["istio-ca".into()]).await.expect("review");
        let id = identity_from_review(&status, "cluster.local").expect("identity");
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/prod/sa/web");
        server.await.expect("server");
    }
}
