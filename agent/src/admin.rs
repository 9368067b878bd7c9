//! The admin HTTP endpoint: `GET /ready` (200 only while a valid cert is served), `GET /metrics`
//! (Prometheus text), `GET /healthz/ready` (Istio's name for readiness).

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::{clock::Clock, manager::SnapshotRx, metrics::Metrics};

/// Serves the admin endpoint on an already bound listener until the task is aborted.
pub async fn serve(listener: TcpListener, rx: SnapshotRx, clock: Clock, metrics: Arc<Metrics>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (rx, metrics) = (rx.clone(), metrics.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let resp = respond(&req, &rx, &clock, &metrics);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Binds the admin address (use port 0 in tests).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn respond<B>(req: &Request<B>, rx: &SnapshotRx, clock: &Clock, metrics: &Metrics) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/ready" | "/healthz/ready" => {
            let valid = rx.borrow().as_ref().is_some_and(|s| s.svid.valid_at(clock.now_system()));
            if valid {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "no valid workload certificate\n".into())
            }
        }
        "/metrics" | "/stats/prometheus" => {
            let mut r = text(StatusCode::OK, metrics.encode());
            if let Ok(v) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse() {
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}
