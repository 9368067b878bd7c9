//! The admin listener: `/ready`, `/config_dump`, `/stats/prometheus`, `/certs`.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

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
            // Envoy's admin `Certificates` shape (ISTIO-FACTS §2.7).
            let certs: Vec<serde_json::Value> = ctx
                .tls
                .borrow()
                .iter()
                .map(|t| {
                    let ca: Vec<_> = t.ca.iter().map(|c| cert_detail(c, "ROOTCA")).collect();
                    serde_json::json!({"ca_cert": ca, "cert_chain": [cert_detail(&t.leaf, "default")]})
                })
                .collect();
            json(&serde_json::json!({ "certificates": certs }))
        }
        _ => local_response(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// One `CertificateDetails`: path (the SDS resource), serial, SANs, validity.
fn cert_detail(der: &rustls::pki_types::CertificateDer<'_>, path: &str) -> serde_json::Value {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return serde_json::json!({ "path": path });
    };
    let sans: Vec<_> = spiffe_ids(der).iter().map(|i| serde_json::json!({"uri": i.to_string()})).collect();
    let at = |secs: i64| {
        crate::log::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    };
    let not_after = c.validity().not_after.timestamp();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (not_after - i64::try_from(now).unwrap_or(i64::MAX)).div_euclid(86_400);
    serde_json::json!({
        "path": path,
        "serial_number": c.raw_serial_as_string().replace(':', ""),
        "subject_alt_names": sans,
        "days_until_expiration": days.to_string(),
        "valid_from": at(c.validity().not_before.timestamp()),
        "expiration_time": at(not_after),
    })
}
