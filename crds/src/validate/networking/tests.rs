//! Table tests: for each rule a valid case (no errors) and an invalid one asserting field and text.

use serde::de::DeserializeOwned;

use super::*;
use crate::{
    types::networking::{VirtualServiceSpec, tests as fixtures},
    validate::Severity,
};

pub(crate) fn run<T: DeserializeOwned>(yaml: &str, validate: fn(&T, &mut Findings)) -> Findings {
    let spec: T = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test yaml: {e}\n{yaml}"));
    let mut f = Findings::default();
    validate(&spec, &mut f);
    f
}

/// One table row: YAML and the finding it must produce, or `None` for "no errors".
pub(crate) type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

pub(crate) fn check_table<T: DeserializeOwned>(
    validate: fn(&T, &mut Findings),
    severity: Severity,
    cases: &[Case<'_>],
) {
    for (name, yaml, want) in cases {
        let f = run(yaml, validate);
        match want {
            None => assert!(!f.has_errors(), "{name}: expected no errors, got {:#?}", f.0),
            Some((field, msg)) => assert!(
                f.0.iter().any(|x| x.severity == severity && x.field == *field && x.message.contains(msg)),
                "{name}: expected {severity} on {field} containing {msg:?}, got {:#?}",
                f.0
            ),
        }
    }
}

#[test]
fn realistic_fixtures_are_valid() {
    for (name, f) in [
        ("dr", run(fixtures::DESTINATION_RULE, destination_rule)),
        ("gw", run(fixtures::GATEWAY, gateway)),
        ("se", run(fixtures::SERVICE_ENTRY, service_entry)),
        ("we", run(fixtures::WORKLOAD_ENTRY, workload_entry)),
        ("sidecar", run(fixtures::SIDECAR, sidecar)),
    ] {
        assert!(f.0.is_empty(), "{name}: {:#?}", f.0);
    }
    let vs = r#"
hosts: [reviews.prod.svc.cluster.local, "*.example.com"]
gateways: [mesh, istio-system/ingress]
http:
- match:
  - uri: {prefix: /wpcatalog}
    headers: {end-user: {exact: jason}}
    queryParams: {debug: {regex: "^t.*$"}}
  rewrite: {uri: /newcatalog}
  route:
  - destination: {host: reviews.prod.svc.cluster.local, subset: v2}
    weight: 25
  - destination: {host: reviews.prod.svc.cluster.local, subset: v1}
    weight: 75
  timeout: 5s
  retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,refused-stream,503"}
  fault: {delay: {percentage: {value: 0.1}, fixedDelay: 5s}, abort: {percentage: {value: 0.1}, httpStatus: 400}}
  mirror: {host: mirror.svc.cluster.local}
  mirrorPercentage: {value: 50}
  corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [GET, POST], maxAge: 24h}
- match: [{uri: {exact: /old}}]
  redirect: {uri: /new, redirectCode: 302}
- directResponse: {status: 503, body: {string: down}}
tls:
- match: [{port: 443, sniHosts: [login.example.com]}]
  route: [{destination: {host: login.prod.svc.cluster.local}}]
tcp:
- match: [{port: 27017}]
  route: [{destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}}]
"#;
    let f = run::<VirtualServiceSpec>(vs, virtual_service);
    assert!(f.0.is_empty(), "{:#?}", f.0);
}

#[test]
fn host_helpers_follow_istio() {
    assert!(validate_wildcard_domain("*.example.com").is_ok());
    assert!(validate_wildcard_domain("*").is_ok());
    assert!(validate_wildcard_domain("foo.*.com").is_err());
    assert!(validate_wildcard_domain("istio.io.").is_ok());
    assert_eq!(
        validate_fqdn("foo.123"),
        Err("domain name \"foo.123\" invalid (top level domain \"123\" cannot be all-numeric)".into())
    );
    assert_eq!(validate_fqdn(""), Err("empty domain name not allowed".into()));
    assert!(is_dns1123_label("a-1") && !is_dns1123_label("-a") && !is_dns1123_label(&"a".repeat(64)));
}

proptest::proptest! {
    #[test]
    fn host_checks_never_panic(s in ".{0,300}") {
        let _ = validate_wildcard_domain(&s);
        let _ = validate_fqdn(&s);
        let _ = validate_ip_subnet(&s);
        let _ = validate_namespace_slash_hostname(&s, true);
        let _ = validate_namespace_slash_hostname(&s, false);
    }

    #[test]
    fn dns_names_are_accepted(labels in proptest::collection::vec("[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", 1..5), tld in "[a-z]{2,6}") {
        let host = format!("{}.{tld}", labels.join("."));
        proptest::prop_assert_eq!(validate_fqdn(&host), Ok(()));
        proptest::prop_assert_eq!(validate_wildcard_domain(&format!("*.{host}")), Ok(()));
    }

    #[test]
    fn ports_in_range_are_accepted(port in 1u32..=65535) {
        proptest::prop_assert_eq!(validate_port(port), Ok(()));
    }
}
