//! Hot-path benchmarks for the acceptance figures (results in `benches/README.md`).
//!
//! Criterion measures means; the p50/p99 figures for decisions come from a separate timing loop
//! (one `Instant` pair per decision) printed as `percentiles ...` lines.

use std::{
    collections::{BTreeMap, HashMap},
    hint::black_box,
    path::PathBuf,
    time::{Duration, Instant},
};

use authz::{
    Engine, HttpRequest, MeshInputs, PathNormalization, Peer, Request, WorkloadPolicy, resource::ResourceId,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use crds::types::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const NOW: i64 = 1_750_000_000;

/// `indexed`: rules name exact principals (the per-principal index applies); otherwise prefix
/// principals (`...sa-1-2*`), which every decision has to scan.
fn policy(
    ns: &str,
    name: &str,
    app: Option<&str>,
    action: &str,
    rules: usize,
    seed: usize,
    indexed: bool,
) -> AuthorizationPolicy {
    let star = if indexed { "" } else { "*" };
    let rules: Vec<_> = (0..rules)
        .map(|r| {
            json!({
                "from": [{"source": {"principals": [format!("cluster.local/ns/{ns}/sa/sa-{seed}-{r}{star}")]}}],
                "to": [{"operation": {"methods": ["GET", "POST"], "paths": [format!("/api/{seed}/{r}/*")]}}],
                "when": [{"key": "request.headers[x-tenant]", "values": [format!("t{r}")]}],
            })
        })
        .collect();
    let mut spec = json!({"action": action, "rules": rules});
    if let Some(app) = app {
        spec["selector"] = json!({"matchLabels": {"app": app}});
    }
    serde_json::from_value(json!({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": spec,
    }))
    .expect("policy")
}

fn engine(
    aps: &[AuthorizationPolicy],
    ras: &[RequestAuthentication],
    jwks: &BTreeMap<String, String>,
) -> Engine {
    let none: [PeerAuthentication; 0] = [];
    Engine::compile(&MeshInputs {
        root_namespace: "istio-system",
        trust_domain: "cluster.local",
        path_normalization: PathNormalization::Base,
        peer_authentications: &none,
        request_authentications: ras,
        authorization_policies: aps,
        fetched_jwks: jwks,
    })
    .expect("compile")
}

fn request(ns: &str, app: &str, seed: usize, rule: usize, headers: &[(&str, &str)]) -> Request {
    let mut h: Vec<(&str, &str)> =
        vec![("x-tenant", ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"][rule])];
    h.extend_from_slice(headers);
    Request {
        destination: authz::Destination {
            namespace: ns.into(),
            labels: [("app".to_string(), app.to_string())].into(),
            port: 8000,
            ip: Some("10.0.0.2".parse().expect("ip")),
        },
        source: Peer {
            principal: Some(format!("cluster.local/ns/{ns}/sa/sa-{seed}-{rule}")),
            ip: Some("10.0.0.1".parse().expect("ip")),
            remote_ip: None,
        },
        sni: None,
        http: Some(HttpRequest::new("GET", &format!("/api/{seed}/{rule}/items?x=1"), "svc.bench", h)),
    }
}

fn percentiles(label: &str, mut f: impl FnMut(usize)) {
    let n = 200_000;
    let mut samples = Vec::with_capacity(n);
    for i in 0..1000 {
        f(i);
    }
    for i in 0..n {
        let t = Instant::now();
        f(i);
        samples.push(t.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((n as f64) * q) as usize];
    println!("percentiles {label}: p50 {:?} p90 {:?} p99 {:?} p99.9 {:?}", p(0.5), p(0.9), p(0.99), p(0.999));
}

/// 100 policies × 5 rules on one workload: 20 DENY (none match), 80 ALLOW; the request matches
/// only the last rule of the last ALLOW policy, so every rule is evaluated.
fn workload_100x5(c: &mut Criterion) {
    for indexed in [true, false] {
        let tag = if indexed { "exact principals" } else { "prefix principals, no index" };
        let aps: Vec<_> = (0..100)
            .map(|i| {
                let action = if i < 20 { "DENY" } else { "ALLOW" };
                policy("bench", &format!("p{i:03}"), Some("target"), action, 5, i, indexed)
            })
            .collect();
        let e = engine(&aps, &[], &BTreeMap::new());
        let w = e.workload("bench", &[("app".to_string(), "target".to_string())].into());
        assert_eq!(w.policy_count(), 100);
        let req = request("bench", "target", 99, 4, &[]);
        let d = w.decide(&req, NOW, false);
        assert!(d.allowed && d.policy.as_deref() == Some("ns[bench]-policy[p099]-rule[4]"), "{d:?}");
        c.bench_function(&format!("decide/workload 100 policies x 5 rules, {tag} (worst-case allow)"), |b| {
            b.iter(|| black_box(w.decide(black_box(&req), NOW, false)))
        });
        let deny = request("bench", "target", 7, 2, &[]);
        c.bench_function(
            &format!("decide/workload 100 policies x 5 rules, {tag} (deny, with explanation)"),
            |b| b.iter(|| black_box(w.decide(black_box(&deny), NOW, true))),
        );
        percentiles(&format!("workload 100x5 {tag} worst-case allow"), |_| {
            black_box(w.decide(black_box(&req), NOW, false));
        });
    }
}

/// 10,000 policies × 10 rules mesh-wide: 100 namespaces × 100 namespace-wide policies (10% DENY).
/// A decision = find the destination workload's resolved set + decide; random namespaces.
fn mesh_10000x10(c: &mut Criterion) {
    let aps: Vec<_> = (0..10_000)
        .map(|i| {
            let ns = format!("ns{:03}", i / 100);
            policy(
                &ns,
                &format!("p{i:05}"),
                None,
                if i % 10 == 0 { "DENY" } else { "ALLOW" },
                10,
                i % 100,
                true,
            )
        })
        .collect();
    let t = Instant::now();
    let e = engine(&aps, &[], &BTreeMap::new());
    println!("compile 10,000 policies x 10 rules: {:?}", t.elapsed());
    let workloads: HashMap<String, WorkloadPolicy> = (0..100)
        .map(|n| format!("ns{n:03}"))
        .map(|ns| (ns.clone(), e.workload(&ns, &BTreeMap::new())))
        .collect();
    let reqs: Vec<Request> = (0..100).map(|n| request(&format!("ns{n:03}"), "any", 99, 9, &[])).collect();
    let d = workloads["ns042"].decide(&reqs[42], NOW, false);
    assert!(d.allowed, "{d:?}");
    let mut x: u64 = 12345;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) as usize % 100
    };
    c.bench_function("decide/mesh 10,000 policies x 10 rules (lookup + decide)", |b| {
        b.iter(|| {
            let r = &reqs[next()];
            black_box(workloads[&r.destination.namespace].decide(r, NOW, false))
        })
    });
    percentiles("mesh 10,000x10 lookup+decide", |i| {
        let r = &reqs[(i * 37) % 100];
        black_box(workloads[&r.destination.namespace].decide(r, NOW, false));
    });
    // Same mesh with prefix principals: no index, every rule of the namespace is scanned.
    let unindexed: Vec<_> = (0..10_000)
        .map(|i| {
            let ns = format!("ns{:03}", i / 100);
            policy(
                &ns,
                &format!("p{i:05}"),
                None,
                if i % 10 == 0 { "DENY" } else { "ALLOW" },
                10,
                i % 100,
                false,
            )
        })
        .collect();
    let e2 = engine(&unindexed, &[], &BTreeMap::new());
    let workloads2: HashMap<String, WorkloadPolicy> = (0..100)
        .map(|n| format!("ns{n:03}"))
        .map(|ns| (ns.clone(), e2.workload(&ns, &BTreeMap::new())))
        .collect();
    assert!(workloads2["ns042"].decide(&reqs[42], NOW, false).allowed);
    percentiles("mesh 10,000x10 prefix principals, no index, lookup+decide", |i| {
        let r = &reqs[(i * 37) % 100];
        black_box(workloads2[&r.destination.namespace].decide(r, NOW, false));
    });
    let mut g = c.benchmark_group("compile");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("10,000 policies x 10 rules", |b| {
        b.iter(|| black_box(engine(&aps, &[], &BTreeMap::new())))
    });
    g.finish();
}

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/istio-samples")
}

fn jwt(c: &mut Criterion) {
    let jwks = std::fs::read_to_string(samples().join("tests-common-jwt/jwks.json")).expect("jwks");
    let token = std::fs::read_to_string(samples().join("tests-common-jwt/TokenIssuer1.jwt")).expect("token");
    let token = token.trim().to_string();
    let fetched: BTreeMap<String, String> = [("https://jwks/".to_string(), jwks.clone())].into();
    let ra: RequestAuthentication = serde_json::from_value(json!({
        "apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
        "metadata": {"name": "ra", "namespace": "bench"},
        "spec": {"jwtRules": [{"issuer": "test-issuer-1@istio.io", "jwksUri": "https://jwks/"}]},
    }))
    .expect("ra");
    // Raw ring verification of the same token: the baseline.
    let keys: serde_json::Value = serde_json::from_str(&jwks).expect("json");
    let n = URL_SAFE_NO_PAD.decode(keys["keys"][0]["n"].as_str().expect("n")).expect("b64");
    let e_ = URL_SAFE_NO_PAD.decode(keys["keys"][0]["e"].as_str().expect("e")).expect("b64");
    let (msg, sig) = token.rsplit_once('.').expect("jwt");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("b64");
    let raw = ring::signature::RsaPublicKeyComponents { n: &n, e: &e_ };
    raw.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, msg.as_bytes(), &sig).expect("raw verify");
    c.bench_function("jwt/raw ring RS256 verify", |b| {
        b.iter(|| raw.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, black_box(msg.as_bytes()), &sig))
    });
    let providers = authz::jwt::compile_request_authn(&ra, &ResourceId::from_meta(&ra.metadata, 0), &fetched)
        .expect("providers");
    let p = providers[0].clone();
    assert!(p.verify(&token, NOW).is_ok());
    c.bench_function("jwt/fresh RS256 verification (parse + checks + verify, no cache)", |b| {
        b.iter(|| black_box(p.verify(black_box(&token), NOW)))
    });
    // Already verified token: jwt_authn alone (extraction, cache lookup, time check, edits)...
    let authn = authz::jwt::JwtAuthn::new(providers.clone());
    let hreq = HttpRequest::new("GET", "/", "h", [("authorization", format!("Bearer {token}").as_str())]);
    assert!(matches!(authn.authenticate(&hreq, NOW), authz::jwt::AuthnOutcome::Authenticated { .. }));
    c.bench_function("jwt/already verified token (jwt_authn only)", |b| {
        b.iter(|| black_box(authn.authenticate(black_box(&hreq), NOW)))
    });
    percentiles("already verified token (jwt_authn only)", |_| {
        black_box(authn.authenticate(black_box(&hreq), NOW));
    });
    // ...and the whole decision for a workload with one RequestAuthentication.
    let e = engine(&[], std::slice::from_ref(&ra), &fetched);
    let w = e.workload("bench", &BTreeMap::new());
    let bearer = format!("Bearer {token}");
    let req = request("bench", "x", 0, 0, &[("authorization", &bearer)]);
    let d = w.decide(&req, NOW, false);
    assert!(d.allowed && !d.header_edits.is_empty(), "{d:?}");
    c.bench_function("jwt/already verified token (full decision)", |b| {
        b.iter(|| black_box(w.decide(black_box(&req), NOW, false)))
    });
    percentiles("already verified token (full decision)", |_| {
        black_box(w.decide(black_box(&req), NOW, false));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = workload_100x5, mesh_10000x10, jwt
}
criterion_main!(benches);
