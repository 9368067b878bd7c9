//! Gateway and Sidecar table tests: a valid and an invalid case per rule.

use super::*;
use crate::validate::{Severity, networking::tests::check_table};

#[test]
fn gateway_rules() {
    let gw = |servers: &str| format!("selector: {{istio: ingressgateway}}\nservers:\n{servers}");
    let http = "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n";
    check_table(
        gateway,
        Severity::Error,
        &[
            ("plain http", &gw(http), None),
            (
                "no servers",
                "selector: {a: b}\n",
                Some(("spec.servers", "gateway must have at least one server")),
            ),
            (
                "no hosts",
                &gw("- port: {number: 80, name: http, protocol: HTTP}\n"),
                Some(("spec.servers[0].hosts", "server config must contain at least one host")),
            ),
            ("no port", &gw("- hosts: ['*']\n"), Some(("spec.servers[0].port", "port is required"))),
            (
                "no port name",
                &gw("- port: {number: 80, protocol: HTTP}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].port.name", "port name must be set")),
            ),
            (
                "no port number",
                &gw("- port: {name: http, protocol: HTTP}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].port.number", "port number 0 must be in the range 1..65535")),
            ),
            (
                "bad protocol",
                &gw("- port: {number: 80, name: http, protocol: SMTP}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].port.protocol", "invalid protocol \"SMTP\"")),
            ),
            (
                "duplicate port names",
                &gw(&format!("{http}- port: {{number: 8080, name: http, protocol: HTTP}}\n  hosts: ['*']\n")),
                Some((
                    "spec.servers[1].port.name",
                    "port names in servers must be unique: duplicate name http",
                )),
            ),
            (
                "short host name",
                &gw("- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [ns/foo]\n"),
                Some(("spec.servers[0].hosts[0]", "short names (non FQDN) are not allowed")),
            ),
            (
                "https without tls",
                &gw("- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].tls", "server must have TLS settings for HTTPS/TLS protocols")),
            ),
            (
                "simple without cert",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, privateKey: /k}\n",
                ),
                Some(("spec.servers[0].tls.serverCertificate", "SIMPLE TLS requires a server certificate")),
            ),
            (
                "simple with credentialName",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, credentialName: s}\n",
                ),
                None,
            ),
            (
                "mutual needs ca",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k}\n",
                ),
                Some(("spec.servers[0].tls.caCertificates", "MUTUAL TLS requires a client CA bundle")),
            ),
            (
                "istio mutual with key",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: ISTIO_MUTUAL, privateKey: /k}\n",
                ),
                Some((
                    "spec.servers[0].tls.privateKey",
                    "ISTIO_MUTUAL TLS cannot have associated private key",
                )),
            ),
            (
                "tls on plain tcp",
                &gw(
                    "- port: {number: 9000, name: tcp, protocol: TCP}\n  hosts: ['*']\n  tls: {httpsRedirect: true}\n",
                ),
                Some(("spec.servers[0].tls", "server cannot have TLS settings for non HTTPS/TLS ports")),
            ),
            (
                "certs on plain http",
                &gw(
                    "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}\n",
                ),
                Some(("spec.servers[0].tls", "server cannot have TLS settings for plain text HTTP ports")),
            ),
        ],
    );
}

#[test]
fn sidecar_rules() {
    check_table(
        sidecar,
        Severity::Error,
        &[
            (
                "egress hosts",
                "egress:\n- hosts: ['./*', 'istio-system/*', '*/foo.example.com', '~/*']\n",
                None,
            ),
            (
                "egress host without namespace",
                "egress:\n- hosts: [foo.example.com]\n",
                Some(("spec.egress[0].hosts[0]", "host must be of form namespace/dnsName")),
            ),
            (
                "egress short name",
                "egress:\n- hosts: [ns/foo]\n",
                Some(("spec.egress[0].hosts[0]", "short names (non FQDN) are not allowed")),
            ),
            (
                "egress bad namespace",
                "egress:\n- hosts: [Bad_NS/*]\n",
                Some(("spec.egress[0].hosts[0]", "invalid namespace value \"Bad_NS\" in sidecar")),
            ),
            (
                "egress empty parts",
                "egress:\n- hosts: [/*]\n",
                Some((
                    "spec.egress[0].hosts[0]",
                    "config namespace and dnsName in host entry cannot be empty",
                )),
            ),
            (
                "egress no hosts",
                "egress:\n- port: {number: 80, protocol: HTTP, name: h}\n",
                Some(("spec.egress[0].hosts", "sidecar: egress listener must contain at least one host")),
            ),
            (
                "catch-all not last",
                "egress:\n- hosts: ['*/*']\n- port: {number: 80, protocol: HTTP, name: h}\n  hosts: ['*/*']\n",
                Some((
                    "spec.egress[0].port",
                    "sidecar: the egress listener with empty port should be the last listener in the list",
                )),
            ),
            (
                "duplicate egress ports",
                "egress:\n- port: {number: 80, protocol: HTTP, name: a}\n  hosts: ['*/*']\n- port: {number: 80, protocol: HTTP, name: b}\n  hosts: ['*/*']\n",
                Some(("spec.egress[1].port.number", "sidecar: ports on IP bound listeners must be unique")),
            ),
            (
                "ingress needs port",
                "ingress:\n- defaultEndpoint: 127.0.0.1:8080\n",
                Some(("spec.ingress[0].port", "sidecar: port is required for ingress listeners")),
            ),
            (
                "ingress default endpoint",
                "ingress:\n- port: {number: 80, protocol: HTTP, name: h}\n  defaultEndpoint: 10.0.0.1:8080\n",
                Some((
                    "spec.ingress[0].defaultEndpoint",
                    "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>",
                )),
            ),
            (
                "egress proxy needs ALLOW_ANY",
                "outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: proxy.example.com, port: {number: 80}}}\n",
                Some((
                    "spec.outboundTrafficPolicy.egressProxy",
                    "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
                )),
            ),
            (
                "egress proxy needs port",
                "outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com}}\n",
                Some((
                    "spec.outboundTrafficPolicy.egressProxy.port",
                    "sidecar: egress_proxy port must be non-nil",
                )),
            ),
            (
                "selector wildcard",
                "workloadSelector: {labels: {app: '*'}}\negress:\n- hosts: ['*/*']\n",
                Some(("spec.workloadSelector.labels.app", "wildcard is not supported in selector")),
            ),
            (
                "inbound pool",
                "inboundConnectionPool: {tcp: {maxConnections: -1}}\n",
                Some((
                    "spec.inboundConnectionPool.tcp.maxConnections",
                    "max connections must be non-negative",
                )),
            ),
        ],
    );
    check_table(
        sidecar,
        Severity::Warning,
        &[("empty", "{}", Some(("spec", "sidecar: empty configuration provided")))],
    );
}
