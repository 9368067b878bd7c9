//! The admin listener: `/ready`, `/config_dump`, `/stats/prometheus`, `/certs`.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::{
    Ctx,
    identity::spiffe_ids,
    inbound::{Body, local_response},
};

/// Serves admin requests; `inbound` is the (port, app) list shown in `/config_dump`.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, inbound: Arc<Vec<(u16, SocketAddr)>>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (ctx, inbound) = (ctx.clone(), inbound.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (ctx, inbound) = (ctx.clone(), inbound.clone());
                async move { Ok::<_, Infallible>(route(&req, &ctx, &inbound)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(conn), svc)
                .await;
        });
    }
}

fn json(v: &serde_json::Value) -> Response<Body> {
    let mut r = local_response(StatusCode::OK, serde_json::to_string_pretty(v).unwrap_or_default());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn route(req: &http::Request<Incoming>, ctx: &Ctx, inbound: &[(u16, SocketAddr)]) -> Response<Body> {
    match req.uri().path() {
        "/ready" => {
            if ctx.tls.borrow().is_some() {
                local_response(StatusCode::OK, "LIVE\n")
            } else {
                local_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PRE_INITIALIZING: no workload certificate yet\n",
                )
            }
        }
        "/config_dump" => json(&ctx.state.borrow().dump(inbound)),
        "/stats/prometheus" => {
            let mut r = local_response(StatusCode::OK, ctx.metrics.encode());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        "/certs" => {
            let tls = ctx.tls.borrow().clone();
            let certs: Vec<serde_json::Value> = tls
                .iter()
                .map(|t| {
                    let sans: Vec<_> = spiffe_ids(&t.leaf)
                        .iter()
                        .map(|i| serde_json::json!({"uri": i.to_string()}))
                        .collect();
                    let (serial, from, to) = x509_parser::parse_x509_certificate(t.leaf.as_ref())
                        .map(|(_, c)| {
                            (
                                c.raw_serial_as_string().replace(':', ""),
                                c.validity().not_before.to_string(),
                                c.validity().not_after.to_string(),
                            )
                        })
                        .unwrap_or_default();
                    serde_json::json!({"cert_chain": [{
                        "path": "<inline>",
                        "serial_number": serial,
                        "subject_alt_names": sans,
                        "valid_from": from,
                        "expiration_time": to,
                    }]})
                })
                .collect();
            json(&serde_json::json!({ "certificates": certs }))
        }
        _ => local_response(StatusCode::NOT_FOUND, "not found\n"),
    }
}
