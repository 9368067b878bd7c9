//! Parsing of realistic YAML per kind, unknown-field rejection and serialize→parse round trips.

use serde::{Serialize, de::DeserializeOwned};

use super::*;

fn parse<T: DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("parse failed: {e}\n{yaml}"))
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let yaml = serde_yaml::to_string(value).expect("serialize");
    let back: T = parse(&yaml);
    assert_eq!(&back, value, "round trip changed the value:\n{yaml}");
}

fn parse_err<T: DeserializeOwned + std::fmt::Debug>(yaml: &str) -> String {
    serde_yaml::from_str::<T>(yaml).expect_err("must not parse").to_string()
}

pub(crate) const VIRTUAL_SERVICE: &str = r#"
hosts: [reviews.prod.svc.cluster.local]
gateways: [mesh, istio-system/ingress]
exportTo: ["."]
http:
- name: reviews-v2
  match:
  - name: wp
    uri: {prefix: /wpcatalog}
    headers:
      end-user: {exact: jason}
    queryParams:
      debug: {regex: "^t.*"}
    withoutHeaders:
      x-skip: {}
    ignoreUriCase: true
    sourceLabels: {app: web}
    sourceNamespace: front
    port: 9080
    statPrefix: wp
  rewrite:
    uri: /newcatalog
    uriRegexRewrite: {match: "^/a/(.*)", rewrite: "/b/\\1"}
  route:
  - destination: {host: reviews, subset: v2, port: {number: 9080}}
    weight: 25
    headers:
      request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
  - destination: {host: reviews, subset: v1}
    weight: 75
  timeout: 5s
  retries:
    attempts: 3
    perTryTimeout: 2s
    retryOn: gateway-error,connect-failure,503
    retryRemoteLocalities: true
    retryIgnorePreviousHosts: false
    backoff: 25ms
  fault:
    delay: {percentage: {value: 0.1}, fixedDelay: 5s}
    abort: {percentage: {value: 1.5}, httpStatus: 400}
  mirror: {host: mirror}
  mirrorPercentage: {value: 50.0}
  mirrorPercent: 10
  mirrors:
  - destination: {host: m2}
    percentage: {value: 5}
  corsPolicy:
    allowOrigin: ["https://legacy.example"]
    allowOrigins: [{exact: "https://example.com"}, {regex: ".*\\.example\\.org"}]
    allowMethods: [POST, GET]
    allowHeaders: [X-Foo-Bar]
    exposeHeaders: [X-Expose]
    maxAge: 24h
    allowCredentials: false
    unmatchedPreflights: IGNORE
  headers:
    response: {remove: [foo]}
- redirect: {uri: /v1/bookRatings, authority: newratings, port: 8443, scheme: https, redirectCode: 302}
- redirect: {uri: /x, derivePort: FROM_REQUEST_PORT}
- directResponse: {status: 503, body: {string: "unavailable"}}
- delegate: {name: productpage, namespace: nsA}
tls:
- match:
  - port: 443
    sniHosts: [login.bookinfo.com]
    destinationSubnets: [10.0.0.0/8]
  route:
  - destination: {host: login.prod.svc.cluster.local}
tcp:
- match:
  - port: 27017
    destinationSubnets: [10.1.0.0/16]
    sourceLabels: {app: db}
    gateways: [mesh]
    sourceNamespace: db
  route:
  - destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}
    weight: 100
"#;

pub(crate) const DESTINATION_RULE: &str = r#"
host: reviews.prod.svc.cluster.local
exportTo: ["*"]
workloadSelector: {matchLabels: {app: reviews}}
trafficPolicy:
  loadBalancer:
    simple: LEAST_REQUEST
    localityLbSetting:
      enabled: true
      distribute:
      - from: us-west/zone1/*
        to: {"us-west/zone1/*": 80, "us-west/zone2/*": 20}
      failoverPriority: [topology.kubernetes.io/region]
    warmup: {duration: 60s, minimumPercent: 10, aggression: 1.0}
  connectionPool:
    tcp:
      maxConnections: 100
      connectTimeout: 30ms
      tcpKeepalive: {probes: 3, time: 7200s, interval: 75s}
      maxConnectionDuration: 1h
      idleTimeout: 1h
    http:
      http1MaxPendingRequests: 10
      http2MaxRequests: 1000
      maxRequestsPerConnection: 10
      maxRetries: 3
      idleTimeout: 30s
      h2UpgradePolicy: UPGRADE
      useClientProtocol: true
      maxConcurrentStreams: 100
  outlierDetection:
    splitExternalLocalOriginErrors: true
    consecutiveLocalOriginFailures: 5
    consecutiveGatewayErrors: 5
    consecutive5xxErrors: 7
    interval: 5m
    baseEjectionTime: 15m
    maxEjectionPercent: 50
    minHealthPercent: 10
  tls:
    mode: MUTUAL
    clientCertificate: /etc/certs/cert.pem
    privateKey: /etc/certs/key.pem
    caCertificates: /etc/certs/ca.pem
    caCrl: /etc/certs/crl.pem
    subjectAltNames: [reviews.example.com]
    sni: reviews.example.com
    insecureSkipVerify: false
  portLevelSettings:
  - port: {number: 80}
    loadBalancer:
      consistentHash:
        httpCookie:
          name: user
          path: /
          ttl: 0s
          attributes: [{name: SameSite, value: Strict}]
        ringHash: {minimumRingSize: 1024}
  tunnel: {protocol: CONNECT, targetHost: example.com, targetPort: 443}
  proxyProtocol: {version: V2}
  retryBudget: {percent: 20, minRetryConcurrency: 3}
subsets:
- name: v1
  labels: {version: v1}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    loadBalancer:
      consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}
    tls: {mode: ISTIO_MUTUAL}
"#;

pub(crate) const GATEWAY: &str = r#"
selector: {istio: ingressgateway}
servers:
- port: {number: 80, name: http, protocol: HTTP}
  hosts: [uk.bookinfo.com, eu.bookinfo.com]
  tls: {httpsRedirect: true}
- port: {number: 443, name: https-443, protocol: HTTPS, targetPort: 8443}
  bind: 0.0.0.0
  name: secure
  defaultEndpoint: 127.0.0.1:8080
  hosts: [ns1/bookinfo.com]
  tls:
    mode: SIMPLE
    credentialName: bookinfo-secret
    minProtocolVersion: TLSV1_2
    maxProtocolVersion: TLSV1_3
    cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]
- port: {number: 9443, name: https-9443, protocol: HTTPS}
  hosts: ["*"]
  tls:
    mode: MUTUAL
    serverCertificate: /etc/certs/server.pem
    privateKey: /etc/certs/key.pem
    caCertificates: /etc/certs/ca.pem
    caCrl: /etc/certs/crl.pem
    subjectAltNames: [client.example.com]
    verifyCertificateSpki: ["abc="]
    verifyCertificateHash: ["AB:CD"]
- port: {number: 8443, name: tls, protocol: TLS}
  hosts: ["*.example.com"]
  tls:
    mode: OPTIONAL_MUTUAL
    credentialNames: [rsa-cert, ecdsa-cert]
- port: {number: 15443, name: tls-auto, protocol: TLS}
  hosts: ["*.local"]
  tls: {mode: AUTO_PASSTHROUGH}
- port: {number: 7443, name: tls-files, protocol: HTTPS}
  hosts: ["files.example.com"]
  tls:
    mode: SIMPLE
    tlsCertificates:
    - {serverCertificate: /a.pem, privateKey: /a.key}
    - {serverCertificate: /b.pem, privateKey: /b.key, caCertificates: /ca.pem}
"#;

pub(crate) const SERVICE_ENTRY: &str = r#"
hosts: [mymongodb.somedomain]
addresses: [192.192.192.192/24]
ports:
- {number: 27018, name: mongodb, protocol: MONGO, targetPort: 27017}
location: MESH_INTERNAL
resolution: STATIC
exportTo: ["~"]
subjectAltNames: ["spiffe://cluster.local/ns/mongo/sa/mongo"]
endpoints:
- address: 2.2.2.2
- address: 3.3.3.3
  ports: {mongodb: 27019}
  labels: {app: mongo}
  network: n1
  locality: us-west/zone1
  weight: 3
  serviceAccount: mongo
"#;

pub(crate) const WORKLOAD_ENTRY: &str = r#"
address: 2.2.2.2
ports: {http: 8080, grpc: 9090}
labels: {app: details, version: v2}
network: vm-net
locality: us-east1/zone-a/rack-1
weight: 10
serviceAccount: details-legacy
"#;

pub(crate) const SIDECAR: &str = r#"
workloadSelector:
  labels: {app: ratings}
ingress:
- port: {number: 9080, protocol: HTTP, name: somename}
  bind: 0.0.0.0
  captureMode: IPTABLES
  defaultEndpoint: 127.0.0.1:8080
  tls: {mode: SIMPLE, privateKey: /etc/k.pem, serverCertificate: /etc/c.pem}
  connectionPool:
    http: {http1MaxPendingRequests: 1024}
egress:
- port: {number: 9080, protocol: HTTP, name: egresshttp}
  hosts: [prod-us1/*]
  captureMode: NONE
- hosts: ["istio-system/*", "./*.example.com", "~/*"]
inboundConnectionPool:
  tcp: {maxConnections: 10}
outboundTrafficPolicy:
  mode: ALLOW_ANY
  egressProxy: {host: foo.bar, subset: shiny, port: {number: 443}}
"#;

#[test]
fn virtual_service_parses_every_field() {
    let vs: VirtualServiceSpec = parse(VIRTUAL_SERVICE);
    assert_eq!(vs.http.len(), 5);
    let r = &vs.http[0];
    assert_eq!(r.matches[0].uri.as_ref().and_then(|m| m.prefix.as_deref()), Some("/wpcatalog"));
    assert_eq!(r.route[1].weight, 75);
    assert_eq!(r.timeout.map(|d| d.get()), Some(std::time::Duration::from_secs(5)));
    assert_eq!(r.fault.as_ref().and_then(|f| f.abort.as_ref()).and_then(|a| a.http_status), Some(400));
    assert_eq!(r.mirror_percent, Some(10));
    assert_eq!(
        r.cors_policy.as_ref().and_then(|c| c.unmatched_preflights),
        Some(UnmatchedPreflights::Ignore)
    );
    assert_eq!(
        r.rewrite.as_ref().and_then(|w| w.uri_regex_rewrite.as_ref()).map(|x| x.pattern.as_str()),
        Some("^/a/(.*)")
    );
    assert_eq!(
        vs.http[2].redirect.as_ref().and_then(|x| x.derive_port),
        Some(RedirectPortSelection::FromRequestPort)
    );
    assert_eq!(vs.http[3].direct_response.as_ref().map(|d| d.status), Some(503));
    assert_eq!(vs.tls[0].matches[0].sni_hosts, ["login.bookinfo.com"]);
    assert_eq!(vs.tcp[0].route[0].destination.as_ref().and_then(|d| d.port).map(|p| p.number), Some(5555));
    round_trip(&vs);
}

#[test]
fn destination_rule_parses_every_field() {
    let dr: DestinationRuleSpec = parse(DESTINATION_RULE);
    let tp = dr.traffic_policy.as_ref().expect("trafficPolicy");
    assert_eq!(tp.load_balancer.as_ref().and_then(|l| l.simple), Some(SimpleLb::LeastRequest));
    let od = tp.outlier_detection.as_ref().expect("outlierDetection");
    assert_eq!(od.consecutive_5xx_errors, Some(7));
    assert_eq!(tp.tls.as_ref().and_then(|t| t.mode), Some(ClientTlsMode::Mutual));
    assert_eq!(tp.proxy_protocol.as_ref().and_then(|p| p.version), Some(ProxyProtocolVersion::V2));
    assert_eq!(
        tp.connection_pool.as_ref().and_then(|c| c.http.as_ref()).and_then(|h| h.h2_upgrade_policy),
        Some(H2UpgradePolicy::Upgrade)
    );
    assert_eq!(
        dr.subsets[1].traffic_policy.as_ref().and_then(|t| t.tls.as_ref()).and_then(|t| t.mode),
        Some(ClientTlsMode::IstioMutual)
    );
    round_trip(&dr);
}

#[test]
fn gateway_service_entry_workload_entry_sidecar_parse_and_round_trip() {
    let gw: GatewaySpec = parse(GATEWAY);
    assert_eq!(gw.servers[1].tls.as_ref().and_then(|t| t.min_protocol_version), Some(TlsProtocol::TlsV1_2));
    assert_eq!(gw.servers[4].tls.as_ref().and_then(|t| t.mode), Some(ServerTlsMode::AutoPassthrough));
    round_trip(&gw);

    let se: ServiceEntrySpec = parse(SERVICE_ENTRY);
    assert_eq!(se.resolution, Some(Resolution::Static));
    assert_eq!(se.location, Some(Location::MeshInternal));
    assert_eq!(se.endpoints[1].ports.get("mongodb"), Some(&27019));
    round_trip(&se);

    let we: WorkloadEntrySpec = parse(WORKLOAD_ENTRY);
    assert_eq!(we.ports.get("grpc"), Some(&9090));
    round_trip(&we);

    let sc: SidecarSpec = parse(SIDECAR);
    assert_eq!(sc.egress[0].capture_mode, Some(CaptureMode::None));
    assert_eq!(
        sc.outbound_traffic_policy.as_ref().and_then(|o| o.mode),
        Some(OutboundTrafficPolicyMode::AllowAny)
    );
    round_trip(&sc);
}

#[test]
fn enum_spellings_match_the_proto() {
    for (s, want) in [
        ("TLS_AUTO", TlsProtocol::TlsAuto),
        ("TLSV1_0", TlsProtocol::TlsV1_0),
        ("TLSV1_3", TlsProtocol::TlsV1_3),
    ] {
        assert_eq!(serde_yaml::from_str::<TlsProtocol>(s).expect(s), want);
    }
    for (s, want) in [
        ("LEAST_CONN", SimpleLb::LeastConn),
        ("ROUND_ROBIN", SimpleLb::RoundRobin),
        ("PASSTHROUGH", SimpleLb::Passthrough),
        ("UNSPECIFIED", SimpleLb::Unspecified),
    ] {
        assert_eq!(serde_yaml::from_str::<SimpleLb>(s).expect(s), want);
    }
    assert_eq!(serde_yaml::from_str::<Resolution>("DNS_ROUND_ROBIN").expect("rr"), Resolution::DnsRoundRobin);
    assert_eq!(
        serde_yaml::from_str::<H2UpgradePolicy>("DO_NOT_UPGRADE").expect("h2"),
        H2UpgradePolicy::DoNotUpgrade
    );
    assert!(serde_yaml::from_str::<ClientTlsMode>("ISTIO_MUTUAL_X").is_err());
}

#[test]
fn unknown_fields_are_rejected_with_their_name() {
    let err = parse_err::<VirtualServiceSpec>("hosts: [a]\nhttp:\n- route:\n  - destinations: {host: a}\n");
    assert!(err.contains("unknown field `destinations`"), "{err}");

    let err = parse_err::<VirtualServiceSpec>(
        "hosts: [a]\nhttp:\n- fault:\n    abort: {httpStaus: 500}\n  route:\n  - destination: {host: a}\n",
    );
    assert!(err.contains("unknown field `httpStaus`"), "{err}");

    let err = parse_err::<DestinationRuleSpec>("host: a\ntrafficPolicy:\n  loadBalancer: {simpel: RANDOM}\n");
    assert!(err.contains("unknown field `simpel`"), "{err}");
    let err =
        parse_err::<GatewaySpec>("servers:\n- port: {number: 80, protocol: HTTP, name: h}\n  host: [a]\n");
    assert!(err.contains("unknown field `host`"), "{err}");
    let err = parse_err::<ServiceEntrySpec>("hosts: [a]\nendpoints:\n- adress: 1.1.1.1\n");
    assert!(err.contains("unknown field `adress`"), "{err}");
    let err = parse_err::<WorkloadEntrySpec>("address: 1.1.1.1\nserviceaccount: x\n");
    assert!(err.contains("unknown field `serviceaccount`"), "{err}");
    let err = parse_err::<SidecarSpec>("workloadSelector: {matchLabels: {app: a}}\n");
    assert!(err.contains("unknown field `matchLabels`"), "{err}");
}

#[test]
fn defaults_are_omitted_on_output() {
    let vs: VirtualServiceSpec = parse("hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n");
    let out = serde_yaml::to_string(&vs).expect("serialize");
    assert_eq!(out, "hosts:\n- a\nhttp:\n- route:\n  - destination:\n      host: a\n");
}

#[test]
fn crd_kinds_have_istio_names() {
    use kube::Resource;
    assert_eq!(VirtualService::kind(&()), "VirtualService");
    assert_eq!(VirtualService::plural(&()), "virtualservices");
    assert_eq!(DestinationRule::plural(&()), "destinationrules");
    assert_eq!(ServiceEntry::plural(&()), "serviceentries");
    assert_eq!(WorkloadEntry::plural(&()), "workloadentries");
    assert_eq!(Gateway::group(&()), "networking.istio.io");
    assert_eq!(Sidecar::version(&()), "v1");
}

#[test]
fn generated_crds_are_structural_with_istio_names() {
    use kube::CustomResourceExt;
    for (crd, short) in [
        (VirtualService::crd(), Some("vs")),
        (DestinationRule::crd(), Some("dr")),
        (Gateway::crd(), Some("gw")),
        (ServiceEntry::crd(), Some("se")),
        (WorkloadEntry::crd(), Some("we")),
        (Sidecar::crd(), None),
    ] {
        let name = crd.spec.names.kind.clone();
        assert_eq!(crd.spec.group, "networking.istio.io", "{name}");
        assert_eq!(crd.spec.scope, "Namespaced", "{name}");
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short.into_iter().map(String::from).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            crd.spec.names.categories.clone().unwrap_or_default(),
            ["istio-io", "networking-istio-io"],
            "{name}"
        );
        // Structural schemas have no oneOf/anyOf at the type level; oneofs are plain optional fields.
        let json = serde_json::to_string(&crd).expect("crd json");
        assert!(!json.contains("\"oneOf\"") && !json.contains("\"anyOf\""), "{name}: {json}");
    }
}
