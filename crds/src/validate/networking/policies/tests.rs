//! DestinationRule table tests: a valid and an invalid case per rule.

use super::*;
use crate::validate::{
    Severity,
    networking::tests::{check_table, run},
};

#[test]
fn destination_rule_rules() {
    let dr = |body: &str| format!("host: reviews\n{body}\n");
    check_table(
        destination_rule,
        Severity::Error,
        &[
            ("host only", "host: reviews\n", None),
            ("missing host", "subsets: [{name: v1}]\n", Some(("spec.host", "empty domain name not allowed"))),
            (
                "duplicate subsets",
                &dr("subsets: [{name: v1, labels: {version: v1}}, {name: v1, labels: {version: v2}}]"),
                Some(("spec.subsets[1].name", "duplicate subset names: v1")),
            ),
            (
                "subset name required",
                &dr("subsets: [{labels: {a: b}}]"),
                Some(("spec.subsets[0].name", "subset name cannot be empty")),
            ),
            (
                "subset name label",
                &dr("subsets: [{name: v1.0}]"),
                Some(("spec.subsets[0].name", "subset name is invalid: v1.0")),
            ),
            (
                "empty traffic policy",
                &dr("trafficPolicy: {}"),
                Some(("spec.trafficPolicy", "traffic policy must have at least one field")),
            ),
            ("istio mutual", &dr("trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: x.com}}"), None),
            (
                "istio mutual with cert",
                &dr("trafficPolicy: {tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem}}"),
                Some((
                    "spec.trafficPolicy.tls.clientCertificate",
                    "ISTIO_MUTUAL TLS cannot have associated client certificate",
                )),
            ),
            (
                "istio mutual with credentialName",
                &dr("subsets: [{name: v1, trafficPolicy: {tls: {mode: ISTIO_MUTUAL, credentialName: s}}}]"),
                Some((
                    "spec.subsets[0].trafficPolicy.tls.credentialName",
                    "ISTIO_MUTUAL TLS cannot have associated credentialName",
                )),
            ),
            (
                "mutual needs cert",
                &dr("trafficPolicy: {tls: {mode: MUTUAL, privateKey: /k.pem}}"),
                Some((
                    "spec.trafficPolicy.tls.clientCertificate",
                    "client certificate required for mutual tls",
                )),
            ),
            (
                "mutual with credentialName",
                &dr("trafficPolicy: {tls: {mode: MUTUAL, credentialName: s}}"),
                None,
            ),
            (
                "credentialName with files",
                &dr("trafficPolicy: {tls: {mode: SIMPLE, credentialName: s, caCertificates: /ca.pem}}"),
                Some((
                    "spec.trafficPolicy.tls",
                    "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
                )),
            ),
            (
                "max ejection percent",
                &dr("trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}"),
                Some((
                    "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
                    "percentage 101 is not in range 0..100",
                )),
            ),
            (
                "min health percent",
                &dr("trafficPolicy: {outlierDetection: {minHealthPercent: -1}}"),
                Some((
                    "spec.trafficPolicy.outlierDetection.minHealthPercent",
                    "percentage -1 is not in range 0..100",
                )),
            ),
            (
                "local origin without split",
                &dr("trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 3}}"),
                Some((
                    "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
                    "split external local origin errors is set to false",
                )),
            ),
            (
                "outlier interval",
                &dr("trafficPolicy: {outlierDetection: {interval: 0s}}"),
                Some(("spec.trafficPolicy.outlierDetection.interval", "duration must be greater than 1ms")),
            ),
            (
                "consistent hash one key",
                &dr("trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}"),
                None,
            ),
            (
                "consistent hash no key",
                &dr("trafficPolicy: {loadBalancer: {consistentHash: {minimumRingSize: 1024}}}"),
                Some((
                    "spec.trafficPolicy.loadBalancer.consistentHash",
                    "consistent hash must set exactly one of",
                )),
            ),
            (
                "consistent hash two keys",
                &dr(
                    "trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, useSourceIp: true}}}",
                ),
                Some((
                    "spec.trafficPolicy.loadBalancer.consistentHash",
                    "consistent hash must set exactly one of",
                )),
            ),
            (
                "simple and consistent hash",
                &dr("trafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}"),
                Some(("spec.trafficPolicy.loadBalancer", "only one of simple or consistentHash may be set")),
            ),
            (
                "cookie needs ttl",
                &dr("trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: u}}}}"),
                Some((
                    "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl",
                    "ttl required for HttpCookie",
                )),
            ),
            (
                "connection pool empty",
                &dr("trafficPolicy: {connectionPool: {}}"),
                Some(("spec.trafficPolicy.connectionPool", "connection pool must have at least one field")),
            ),
            (
                "connection pool negative",
                &dr("trafficPolicy: {connectionPool: {http: {maxRetries: -1}}}"),
                Some((
                    "spec.trafficPolicy.connectionPool.http.maxRetries",
                    "max retries must be non-negative",
                )),
            ),
            (
                "connect timeout",
                &dr("trafficPolicy: {connectionPool: {tcp: {connectTimeout: 10us}}}"),
                Some((
                    "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
                    "duration must be greater than 1ms",
                )),
            ),
            (
                "port level needs port",
                &dr("trafficPolicy: {portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}"),
                Some((
                    "spec.trafficPolicy.portLevelSettings[0].port",
                    "portTrafficPolicy must have valid port",
                )),
            ),
            (
                "locality weights",
                &dr(
                    "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: 'a/*', to: {'b/*': 60}}]}}}",
                ),
                Some((
                    "spec.trafficPolicy.loadBalancer.localityLbSetting",
                    "total locality weight 60 != 100",
                )),
            ),
            (
                "locality failover and distribute",
                &dr(
                    "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {b: 100}}], failover: [{from: a, to: b}]}}}",
                ),
                Some((
                    "spec.trafficPolicy.loadBalancer.localityLbSetting",
                    "can not simultaneously specify 'distribute' and 'failover'",
                )),
            ),
            (
                "tunnel protocol",
                &dr("trafficPolicy: {tunnel: {protocol: GET, targetHost: a, targetPort: 80}}"),
                Some((
                    "spec.trafficPolicy.tunnel.protocol",
                    "tunnel protocol must be \"CONNECT\" or \"POST\"",
                )),
            ),
            (
                "exportTo",
                &dr("exportTo: [Bad]"),
                Some((
                    "spec.exportTo[0]",
                    "only .,*, or a valid DNS 1123 label is allowed as exportTo entry",
                )),
            ),
        ],
    );
    let f = run::<DestinationRuleSpec>(
        &dr("trafficPolicy: {outlierDetection: {consecutiveErrors: 5}}"),
        destination_rule,
    );
    assert!(!f.has_errors(), "{:#?}", f.0);
    assert!(f.0.iter().any(|x| x.severity == Severity::Warning
        && x.field == "spec.trafficPolicy.outlierDetection.consecutiveErrors"
        && x.message.contains("consecutive errors is deprecated")));
}
