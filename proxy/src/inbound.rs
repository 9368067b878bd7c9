//! The inbound side: one listener per workload port. Each connection is planned from the port's
//! PeerAuthentication mode and its first bytes, then served as HTTP (authorization per request)
//! or TCP (authorization per connection, re-checked when policy changes).
//!
//! [`handle`] takes an accepted socket and an [`InboundTarget`]; the listener maps its port to a
//! target, and transparent capture (port 15006, original destination) will do the same.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use authz::{Decision, Destination, HttpRequest, Peer, Request};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use crate::{
    Ctx,
    detect::{MAX_SNIFF, Sniff, looks_like_http, sniff},
    identity::spiffe_ids,
    io::{BoxIo, Rewind, read_prefix},
    metrics::{RequestLabels, TcpLabels},
    plan::{InboundPlan, Protocol, inbound_plan, needs_sniff},
    state::MeshState,
};

/// Response body type of the proxy's HTTP services.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// How long the first bytes (ClientHello or protocol sniff) may take.
pub const SNIFF_TIMEOUT: Duration = Duration::from_secs(5);
/// TLS handshake deadline.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request header limit (Envoy's default `max_request_headers_kb`: 60).
pub const MAX_HEADER_BYTES: usize = 60 * 1024;
/// Time allowed for a request head (slowloris defence).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an inbound connection is going: the workload port (policy) and the app address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundTarget {
    /// Workload port: PeerAuthentication and AuthorizationPolicy ports refer to it.
    pub port: u16,
    /// The app's private address.
    pub app: SocketAddr,
}

/// What the connection established about the peer.
#[derive(Clone, Debug, Default)]
struct PeerInfo {
    addr: Option<SocketAddr>,
    local: Option<SocketAddr>,
    /// SPIFFE URI of the peer (mTLS only).
    uri: Option<String>,
    /// `x-forwarded-client-cert` element for this hop (mTLS only).
    xfcc: Option<String>,
}

impl PeerInfo {
    fn principal(&self) -> Option<String> {
        self.uri.as_ref().map(|u| u.trim_start_matches("spiffe://").to_string())
    }
    fn security_policy(&self) -> &'static str {
        if self.uri.is_some() { "mutual_tls" } else { "none" }
    }
}

/// Accepts connections on `listener` for `target` until the task is dropped.
pub async fn serve(listener: TcpListener, target: InboundTarget, ctx: Arc<Ctx>) {
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move { handle(conn, peer, target, ctx).await });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(target: "citadel::inbound", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one accepted connection.
pub async fn handle(mut conn: TcpStream, peer: SocketAddr, target: InboundTarget, ctx: Arc<Ctx>) {
    let _ = conn.set_nodelay(true);
    let mode = ctx.state.borrow().port_mode(target.port);
    let (prefix, first) = if needs_sniff(mode) {
        match read_prefix(&mut conn, MAX_SNIFF, SNIFF_TIMEOUT, |b| match sniff(b) {
            Sniff::NeedMore => None,
            s => Some(s),
        })
        .await
        {
            Ok((p, s)) => (p, s.unwrap_or(Sniff::NeedMore)),
            Err(_) => return,
        }
    } else {
        (Vec::new(), Sniff::NeedMore)
    };
    let plan = inbound_plan(mode, &first);
    let mut info = PeerInfo { addr: Some(peer), local: conn.local_addr().ok(), ..PeerInfo::default() };
    tracing::debug!(target: "citadel::inbound", port = target.port, mode = %mode, plan = ?plan, src.addr = %peer, "connection");
    let io = Rewind::new(prefix, conn);
    match plan {
        InboundPlan::Reject => {}
        InboundPlan::Plaintext => serve_protocol(Box::new(io), info, target, ctx, false).await,
        InboundPlan::Passthrough => serve_tcp(Box::new(io), info, target, ctx).await,
        InboundPlan::Mtls => {
            let Some(tls) = ctx.tls.borrow().clone() else {
                tracing::warn!(target: "citadel::inbound", "no certificate yet: refusing the mTLS handshake");
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(target: "citadel::inbound", error = %e, src.addr = %peer, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            if let Some(leaf) = stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                let ids = spiffe_ids(leaf);
                let uri = ids
                    .iter()
                    .find(|i| i.trust_domain() == tls.identity.trust_domain())
                    .map(ToString::to_string);
                info.xfcc = Some(xfcc_element(&tls.identity.to_string(), leaf, uri.as_deref()));
                info.uri = uri;
            }
            serve_protocol(Box::new(stream), info, target, ctx, true).await;
        }
    }
}

/// `By=<us>;Hash=<sha256 of the peer cert>;Subject="<subject>";URI=<peer>` (Envoy's
/// `set_current_client_cert_details` with subject, URI and DNS, as Istio configures sidecars).
fn xfcc_element(by: &str, leaf: &rustls::pki_types::CertificateDer<'_>, uri: Option<&str>) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut subject = String::new();
    let mut dns = Vec::new();
    if let Ok((_, x509)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
        subject = x509.subject().to_string();
        if let Ok(Some(san)) = x509.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    dns.push(*d);
                }
            }
        }
    }
    let mut s = format!("By={by};Hash={hex};Subject=\"{}\"", subject.replace('"', "\\\""));
    if let Some(u) = uri {
        s.push_str(";URI=");
        s.push_str(u);
    }
    for d in dns {
        s.push_str(";DNS=");
        s.push_str(d);
    }
    s
}

async fn serve_protocol(mut io: BoxIo, info: PeerInfo, target: InboundTarget, ctx: Arc<Ctx>, _mtls: bool) {
    let protocol = ctx.state.borrow().port_protocol(target.port);
    let http = match protocol {
        Protocol::Http | Protocol::Http2 => true,
        Protocol::Tcp => false,
        Protocol::Unknown => {
            let Ok((prefix, found)) = read_prefix(&mut io, 16, SNIFF_TIMEOUT, looks_like_http).await else {
                return;
            };
            io = Box::new(Rewind::new(prefix, io));
            found.unwrap_or(false)
        }
    };
    if http {
        serve_http(io, info, target, ctx, protocol).await;
    } else {
        serve_tcp(io, info, target, ctx).await;
    }
}

async fn serve_http(io: BoxIo, info: PeerInfo, target: InboundTarget, ctx: Arc<Ctx>, protocol: Protocol) {
    let info = Arc::new(info);
    let svc = hyper::service::service_fn(move |req| {
        let (ctx, info) = (ctx.clone(), info.clone());
        async move { Ok::<_, Infallible>(handle_request(req, &info, target, &ctx, protocol).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(1024);
    if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(io), svc).await {
        tracing::debug!(target: "citadel::inbound", error = %e, "HTTP connection ended with an error");
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn authz_request(
    state: &MeshState,
    target: InboundTarget,
    info: &PeerInfo,
    http: Option<HttpRequest>,
) -> Request {
    Request {
        destination: Destination {
            namespace: state.workload.namespace.clone(),
            labels: state.workload.labels.clone(),
            port: target.port,
            ip: info.local.map(|a| a.ip()),
        },
        source: Peer { principal: info.principal(), ip: info.addr.map(|a| a.ip()), remote_ip: None },
        sni: None,
        http,
    }
}

fn http_view<B>(req: &http::Request<B>) -> HttpRequest {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let headers = req.headers().iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
    HttpRequest::new(req.method().as_str(), path, &host, headers)
}

/// A locally generated response (deny, error).
pub(crate) fn local_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn deny_response(d: &Decision) -> Response<Body> {
    let status = StatusCode::from_u16(d.status.unwrap_or(403)).unwrap_or(StatusCode::FORBIDDEN);
    let mut r = local_response(status, d.reason.clone());
    if let Some(w) = d.www_authenticate.as_deref().and_then(|w| HeaderValue::from_str(w).ok()) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, w);
    }
    r
}

/// Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

pub(crate) fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for h in HOP_BY_HOP.iter().copied().chain(listed.iter().map(String::as_str)) {
        headers.remove(h);
    }
    // `te` survives only as `trailers` (gRPC needs it).
    if headers.get(header::TE).is_some_and(|v| v.as_bytes() != b"trailers") {
        headers.remove(header::TE);
    }
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return "00000000-0000-4000-8000-000000000000".into();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

async fn handle_request(
    mut req: http::Request<Incoming>,
    info: &PeerInfo,
    target: InboundTarget,
    ctx: &Ctx,
    protocol: Protocol,
) -> Response<Body> {
    let start = Instant::now();
    let start_time = SystemTime::now();
    let state = ctx.state.borrow().clone();
    let view = http_view(&req);
    let areq = authz_request(&state, target, info, Some(view));
    let decision = state.policy.decide(&areq, now_unix(), false);
    let method = req.method().to_string();
    let path = areq.http.as_ref().map(|h| crate::log::loggable_path(&h.path)).unwrap_or_default();
    let http_version = format!("{:?}", req.version());
    if !decision.dry_run.is_empty() {
        tracing::info!(target: "citadel::rbac", dry_run = ?decision.dry_run, "shadow policy result");
    }
    let (resp, flags, details, upstream) = if decision.allowed {
        for e in &decision.header_edits {
            match e {
                authz::jwt::HeaderEdit::Set(n, v) => {
                    if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(n.as_str()), HeaderValue::from_str(v))
                    {
                        req.headers_mut().insert(n, v);
                    }
                }
                authz::jwt::HeaderEdit::Remove(n) => {
                    req.headers_mut().remove(n.as_str());
                }
            }
        }
        match forward(req, info, target, ctx, protocol).await {
            Ok(r) => (r, "-", "via_upstream".to_string(), Some(target.app)),
            Err(e) => {
                tracing::debug!(target: "citadel::inbound", error = %e, "upstream request failed");
                (
                    local_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                    ),
                    "UF",
                    "upstream_reset_before_response_started{connection_failure}".to_string(),
                    Some(target.app),
                )
            }
        }
    } else {
        tracing::debug!(target: "citadel::rbac", policy = ?decision.policy, reason = %decision.reason, "request denied");
        let details = match (&decision.policy, decision.status) {
            (_, Some(401)) => "jwt_authn_access_denied".to_string(),
            (Some(p), _) => format!("rbac_access_denied_matched_policy[{p}]"),
            (None, _) => "rbac_access_denied_matched_policy[none]".to_string(),
        };
        (deny_response(&decision), "-", details, None)
    };
    let code = resp.status().as_u16();
    let labels = RequestLabels {
        reporter: "destination",
        source_principal: info.uri.clone().unwrap_or_else(|| "unknown".into()),
        destination_principal: ctx
            .tls
            .borrow()
            .as_ref()
            .map_or_else(|| "unknown".into(), |t| t.identity.to_string()),
        destination_service: format!("{}.{}", state.workload.name, state.workload.namespace),
        response_code: code,
        response_flags: flags,
        connection_security_policy: info.security_policy(),
    };
    ctx.metrics.requests.get_or_create(&labels).inc();
    ctx.metrics.request_duration.get_or_create(&labels).observe(start.elapsed().as_secs_f64() * 1000.0);
    crate::log::access(&crate::log::AccessEntry {
        start_time,
        method: Some(&method),
        path: Some(&path),
        protocol: &http_version,
        response_code: code,
        response_flags: flags,
        response_code_details: &details,
        upstream_host: upstream,
        downstream_peer_principal: info.uri.as_deref(),
        downstream_remote_address: info.addr,
        duration: start.elapsed(),
        bytes_received: 0,
        bytes_sent: 0,
    });
    resp
}

async fn forward(
    mut req: http::Request<Incoming>,
    info: &PeerInfo,
    target: InboundTarget,
    ctx: &Ctx,
    protocol: Protocol,
) -> Result<Response<Body>, BoxError> {
    let authority = req.uri().authority().cloned();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    // HTTP/1.1 Upgrade (WebSocket and others): keep the two headers stripping would remove.
    let upgrade = (req.version() == http::Version::HTTP_11)
        .then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(req.headers_mut());
    if !req.headers().contains_key(header::HOST)
        && let Some(v) = authority.and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    // APPEND_FORWARD: append our element to what the client sent; plaintext passes it on as is.
    if let Some(x) = &info.xfcc {
        let v = match req.headers().get("x-forwarded-client-cert").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev},{x}"),
            None => x.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&v) {
            req.headers_mut().insert("x-forwarded-client-cert", v);
        }
    }
    if !req.headers().contains_key("x-request-id")
        && let Ok(v) = HeaderValue::from_str(&request_id())
    {
        req.headers_mut().insert("x-request-id", v);
    }
    if let Some(up) = upgrade {
        req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        req.headers_mut().insert(header::UPGRADE, up);
        *req.uri_mut() = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
        return forward_upgrade(req, target.app).await;
    }
    let h2 = protocol == Protocol::Http2
        || (protocol == Protocol::Unknown && req.version() == http::Version::HTTP_2);
    let uri = format!("http://{}{}", target.app, path);
    *req.uri_mut() = uri.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    let client = if h2 {
        *req.version_mut() = http::Version::HTTP_2;
        &ctx.app_h2
    } else {
        *req.version_mut() = http::Version::HTTP_11;
        &ctx.app_h1
    };
    let mut resp = client.request(req).await?;
    strip_hop_by_hop(resp.headers_mut());
    Ok(resp.map(BodyExt::boxed))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An Upgrade request on its own app connection: on `101` both sides are upgraded and the bytes
/// copied until either closes.
async fn forward_upgrade(
    mut req: http::Request<Incoming>,
    app: SocketAddr,
) -> Result<Response<Body>, BoxError> {
    let downstream = hyper::upgrade::on(&mut req);
    let tcp = TcpStream::connect(app).await?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut resp = sender.send_request(req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(d), Ok(u)) = tokio::join!(downstream, upstream) {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(d), &mut TokioIo::new(u)).await;
            }
        });
        return Ok(resp.map(BodyExt::boxed));
    }
    strip_hop_by_hop(resp.headers_mut());
    Ok(resp.map(BodyExt::boxed))
}

/// TCP: decide once for the connection, proxy bytes, and close when new policy denies it.
async fn serve_tcp(mut io: BoxIo, info: PeerInfo, target: InboundTarget, ctx: Arc<Ctx>) {
    let start = Instant::now();
    let start_time = SystemTime::now();
    let mut state_rx = ctx.state.clone();
    let state = state_rx.borrow_and_update().clone();
    let decision = state.policy.decide(&authz_request(&state, target, &info, None), now_unix(), false);
    let labels = TcpLabels {
        reporter: "destination",
        source_principal: info.uri.clone().unwrap_or_else(|| "unknown".into()),
        destination_principal: ctx
            .tls
            .borrow()
            .as_ref()
            .map_or_else(|| "unknown".into(), |t| t.identity.to_string()),
        destination_service: format!("{}.{}", state.workload.name, state.workload.namespace),
        response_flags: "-",
        connection_security_policy: info.security_policy(),
    };
    let log = |flags: &str, details: &str, sent: u64, received: u64| {
        crate::log::access(&crate::log::AccessEntry {
            start_time,
            method: None,
            path: None,
            protocol: "tcp",
            response_code: 0,
            response_flags: flags,
            response_code_details: details,
            upstream_host: Some(target.app),
            downstream_peer_principal: info.uri.as_deref(),
            downstream_remote_address: info.addr,
            duration: start.elapsed(),
            bytes_received: received,
            bytes_sent: sent,
        });
    };
    if !decision.allowed {
        tracing::debug!(target: "citadel::rbac", policy = ?decision.policy, reason = %decision.reason, "connection denied");
        log(
            "-",
            &format!("rbac_access_denied_matched_policy[{}]", decision.policy.as_deref().unwrap_or("none")),
            0,
            0,
        );
        return;
    }
    let mut upstream = match TcpStream::connect(target.app).await {
        Ok(u) => u,
        Err(_) => {
            log("UF", "upstream_connect_failure", 0, 0);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    ctx.metrics.tcp_opened.get_or_create(&labels).inc();
    let copy = tokio::io::copy_bidirectional(&mut io, &mut upstream);
    tokio::pin!(copy);
    let (sent, received, details) = loop {
        tokio::select! {
            r = &mut copy => {
                let (from_client, to_client) = r.unwrap_or((0, 0));
                break (to_client, from_client, "via_upstream".to_string());
            }
            changed = state_rx.changed() => {
                if changed.is_err() {
                    // The config source ended: keep the last decision.
                    let (from_client, to_client) = (&mut copy).await.unwrap_or((0, 0));
                    break (to_client, from_client, "via_upstream".to_string());
                }
                let state = state_rx.borrow_and_update().clone();
                let d = state.policy.decide(&authz_request(&state, target, &info, None), now_unix(), false);
                if !d.allowed {
                    tracing::info!(target: "citadel::rbac", policy = ?d.policy, "live connection closed by new policy");
                    break (0, 0, format!("rbac_access_denied_matched_policy[{}]", d.policy.as_deref().unwrap_or("none")));
                }
            }
        }
    };
    ctx.metrics.tcp_closed.get_or_create(&labels).inc();
    ctx.metrics.tcp_sent.get_or_create(&labels).inc_by(sent);
    ctx.metrics.tcp_received.get_or_create(&labels).inc_by(received);
    log("-", &details, sent, received);
}
