//! The outbound side: an HTTP proxy for the app (`HTTP_PROXY`): absolute-URI requests and
//! CONNECT. Each destination is planned by [`MeshState::outbound`](crate::state::MeshState::outbound)
//! and reached over mTLS (secure naming on the server's SPIFFE ID) or plaintext.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::{body::Incoming, client::conn::http1::SendRequest};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

use crate::{
    Ctx,
    identity::SpiffeId,
    inbound::{Body, HEADER_READ_TIMEOUT, MAX_HEADER_BYTES, local_response, strip_hop_by_hop},
    io::BoxIo,
    plan::UpstreamTls,
    state::OutboundPlan,
    tls::{CLIENT_ALPN_HTTP1, CLIENT_ALPN_TCP},
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an upstream could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed or timed out.
    #[error("connecting to {addr}: {reason}")]
    Connect {
        /// Upstream address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake (or secure naming) failed.
    #[error("mTLS to {addr}: {reason}")]
    Tls {
        /// Upstream address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No certificate yet, or an unsupported DestinationRule mode.
    #[error("{0}")]
    NotReady(String),
}

/// Idle HTTP/1.1 upstream connections, keyed by address and transport security (so a connection
/// made for one set of accepted identities is never reused for another).
#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<HashMap<String, Vec<SendRequest<Incoming>>>>,
}

/// Idle connections kept per key.
const MAX_IDLE_PER_KEY: usize = 64;

impl Pool {
    /// The pool key of a plan.
    pub fn key(&self, plan: &OutboundPlan) -> String {
        format!("{}|{:?}", plan.addr, plan.tls)
    }

    fn take(&self, key: &str) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = idle.get_mut(key)?;
        while let Some(s) = list.pop() {
            if s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, key: String, sender: SendRequest<Incoming>) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = idle.entry(key).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < MAX_IDLE_PER_KEY {
            list.push(sender);
        }
    }
}

/// Accepts proxy clients on `listener`.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    loop {
        let (conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(target: "citadel::outbound", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = conn.set_nodelay(true);
            let svc = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(proxy_request(req, ctx).await) }
            });
            let r = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(conn), svc)
                .with_upgrades()
                .await;
            if let Err(e) = r {
                tracing::debug!(target: "citadel::outbound", error = %e, "proxy connection ended with an error");
            }
        });
    }
}

/// Connects to the planned upstream, originating mTLS when planned.
pub async fn connect(plan: &OutboundPlan, ctx: &Ctx, alpn: &[&[u8]]) -> Result<BoxIo, UpstreamError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&plan.addr))
        .await
        .map_err(|_| UpstreamError::Connect { addr: plan.addr.clone(), reason: "timed out".into() })?
        .map_err(|e| UpstreamError::Connect { addr: plan.addr.clone(), reason: e.to_string() })?;
    let _ = tcp.set_nodelay(true);
    match &plan.tls {
        UpstreamTls::Disable => Ok(Box::new(tcp)),
        UpstreamTls::Unsupported(m) => {
            Err(UpstreamError::NotReady(format!("DestinationRule tls.mode {m:?} is not supported yet")))
        }
        UpstreamTls::IstioMutual { identities } => {
            let tls = ctx
                .tls
                .borrow()
                .clone()
                .ok_or_else(|| UpstreamError::NotReady("no certificate yet".into()))?;
            let allowed: Vec<SpiffeId> = identities.iter().filter_map(|i| SpiffeId::parse(i).ok()).collect();
            // Never widen secure naming to "anyone in the trust domain" because names did not parse.
            if allowed.is_empty() && !identities.is_empty() {
                return Err(UpstreamError::NotReady(format!("no valid SPIFFE ID among {identities:?}")));
            }
            let cfg = tls.client(allowed, alpn).map_err(|e| UpstreamError::NotReady(e.to_string()))?;
            let host = plan.addr.rsplit_once(':').map_or(plan.addr.as_str(), |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| UpstreamError::Tls { addr: plan.addr.clone(), reason: e.to_string() })?;
            let stream = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
            )
            .await
            .map_err(|_| UpstreamError::Tls {
                addr: plan.addr.clone(),
                reason: "handshake timed out".into(),
            })?
            .map_err(|e| UpstreamError::Tls { addr: plan.addr.clone(), reason: e.to_string() })?;
            Ok(Box::new(stream))
        }
    }
}

/// A new HTTP/1.1 connection to the planned upstream.
async fn new_sender(plan: &OutboundPlan, ctx: &Ctx) -> Result<SendRequest<Incoming>, String> {
    let upstream = connect(plan, ctx, &CLIENT_ALPN_HTTP1).await.map_err(|e| {
        tracing::info!(target: "citadel::outbound", error = %e, "upstream failed");
        e.to_string()
    })?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn host_port(authority: &http::uri::Authority, default_port: u16) -> (String, u16) {
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    (host, authority.port_u16().unwrap_or(default_port))
}

/// One proxied request, with `reporter="source"` metrics (CONNECT tunnels are not requests).
async fn proxy_request(req: http::Request<Incoming>, ctx: Arc<Ctx>) -> Response<Body> {
    let start = std::time::Instant::now();
    let is_connect = req.method() == Method::CONNECT;
    let service = req.uri().host().unwrap_or("unknown").to_string();
    let resp = forward_request(req, ctx.clone()).await;
    if !is_connect {
        let labels = crate::metrics::RequestLabels {
            reporter: "source",
            source_principal: ctx
                .tls
                .borrow()
                .as_ref()
                .map_or_else(|| "unknown".into(), |t| t.identity.to_string()),
            destination_principal: "unknown".into(),
            destination_service: service,
            response_code: resp.status().as_u16(),
            response_flags: if resp.status() == StatusCode::SERVICE_UNAVAILABLE { "UF" } else { "-" },
            connection_security_policy: "unknown",
        };
        ctx.metrics.requests.get_or_create(&labels).inc();
        ctx.metrics.request_duration.get_or_create(&labels).observe(start.elapsed().as_secs_f64() * 1000.0);
    }
    resp
}

async fn forward_request(mut req: http::Request<Incoming>, ctx: Arc<Ctx>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return local_response(StatusCode::BAD_REQUEST, "absolute URI or CONNECT required");
    };
    let state = ctx.state.borrow().clone();
    if req.method() == Method::CONNECT {
        let (host, port) = host_port(&authority, 443);
        let plan = state.outbound(&host, port);
        let upstream = match connect(&plan, &ctx, &CLIENT_ALPN_TCP).await {
            Ok(u) => u,
            Err(e) => {
                tracing::info!(target: "citadel::outbound", error = %e, "CONNECT failed");
                return local_response(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            }
        };
        tokio::spawn(async move {
            match hyper::upgrade::on(&mut req).await {
                Ok(up) => {
                    let mut client = TokioIo::new(up);
                    let mut upstream = upstream;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(e) => tracing::debug!(target: "citadel::outbound", error = %e, "CONNECT upgrade failed"),
            }
        });
        return Response::new(http_body_util::Empty::new().map_err(|never| match never {}).boxed());
    }
    if req.uri().scheme_str() != Some("http") {
        return local_response(
            StatusCode::BAD_REQUEST,
            "only http:// absolute URIs are proxied; use CONNECT for TLS",
        );
    }
    let (host, port) = host_port(&authority, 80);
    let plan = state.outbound(&host, port);
    let key = ctx.pool.key(&plan);
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    strip_hop_by_hop(req.headers_mut());
    if !req.headers().contains_key(header::HOST)
        && let Ok(v) = http::HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    *req.uri_mut() = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    let pooled = ctx.pool.take(&key);
    let reused = pooled.is_some();
    let mut sender = match pooled {
        Some(s) => s,
        None => match new_sender(&plan, &ctx).await {
            Ok(s) => s,
            Err(e) => return local_response(StatusCode::SERVICE_UNAVAILABLE, e),
        },
    };
    let mut sent = sender.try_send_request(req).await;
    // A pooled connection the upstream closed meanwhile: the request was not sent; retry once
    // on a fresh connection.
    if reused
        && let Err(e) = &mut sent
        && let Some(req) = e.take_message()
    {
        sender = match new_sender(&plan, &ctx).await {
            Ok(s) => s,
            Err(e) => return local_response(StatusCode::SERVICE_UNAVAILABLE, e),
        };
        sent = sender.try_send_request(req).await;
    }
    let sent = sent.map_err(|e| e.into_error());
    // Back to the pool once the response body is done and the connection can take another.
    let pool = ctx.clone();
    tokio::spawn(async move {
        if sender.ready().await.is_ok() {
            pool.pool.put(key, sender);
        }
    });
    match sent {
        Ok(mut r) => {
            strip_hop_by_hop(r.headers_mut());
            r.map(BodyExt::boxed)
        }
        Err(e) => local_response(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
