//! Token parsing and extraction never panic, whatever arrives in a header or query.
#![no_main]

use std::collections::BTreeMap;

use authz::{HttpRequest, jwt::{JwtAuthn, ParsedJwt}};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(t) = ParsedJwt::parse(s) {
        let _ = t.check_time(0, 60);
    }
    let ra: crds::types::security::RequestAuthentication = serde_json::from_value(serde_json::json!({
        "apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
        "metadata": {"name": "f", "namespace": "f"},
        "spec": {"jwtRules": [{"issuer": "i", "jwks": authz::jwt::PUBLIC_ONLY_JWKS}]}
    }))
    .expect("static RA");
    let id = authz::resource::ResourceId::from_meta(&ra.metadata, 0);
    let providers = authz::jwt::compile_request_authn(&ra, &id, &BTreeMap::new()).expect("static RA compiles");
    let a = JwtAuthn::new(providers);
    let bearer = format!("Bearer {s}");
    let path = format!("/?access_token={s}");
    let req = HttpRequest::new("GET", &path, "h", [("authorization", bearer.as_str()), ("cookie", s)]);
    let _ = a.authenticate(&req, 0);
});
