//! ServiceEntry and WorkloadEntry table tests: a valid and an invalid case per rule.

use super::*;
use crate::validate::{Severity, networking::tests::check_table};

#[test]
fn service_entry_rules() {
    let ports = "ports: [{number: 80, name: http, protocol: HTTP}]\n";
    check_table(
        service_entry,
        Severity::Error,
        &[
            (
                "dns external",
                &format!("hosts: [api.example.com]\n{ports}resolution: DNS\nlocation: MESH_EXTERNAL\n"),
                None,
            ),
            (
                "no hosts",
                &format!("{ports}resolution: DNS\n"),
                Some(("spec.hosts", "service entry must have at least one host")),
            ),
            ("star host", &format!("hosts: ['*']\n{ports}"), Some(("spec.hosts[0]", "invalid host *"))),
            (
                "wildcard with DNS",
                &format!("hosts: ['*.example.com']\n{ports}resolution: DNS\n"),
                Some((
                    "spec.hosts[0]",
                    "hosts must be FQDN if no endpoints are provided for resolution mode DNS",
                )),
            ),
            ("wildcard with NONE", &format!("hosts: ['*.example.com']\n{ports}resolution: NONE\n"), None),
            (
                "duplicate port name",
                "hosts: [a.com]\nports: [{number: 80, name: http, protocol: HTTP}, {number: 81, name: http, protocol: HTTP}]\n",
                Some(("spec.ports[1].name", "service entry port name \"http\" already defined")),
            ),
            (
                "duplicate port number",
                "hosts: [a.com]\nports: [{number: 80, name: a, protocol: HTTP}, {number: 80, name: b, protocol: HTTP}]\n",
                Some(("spec.ports[1].number", "service entry port 80 already defined")),
            ),
            (
                "static without endpoints",
                &format!("hosts: [a.com]\n{ports}resolution: STATIC\n"),
                Some((
                    "spec.endpoints",
                    "endpoints or workloadSelector are required for resolution type STATIC",
                )),
            ),
            (
                "static with selector",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: STATIC\nworkloadSelector: {{labels: {{app: a}}}}\n"
                ),
                None,
            ),
            (
                "static endpoint not ip",
                &format!("hosts: [a.com]\n{ports}resolution: STATIC\nendpoints: [{{address: foo.com}}]\n"),
                Some(("spec.endpoints[0].address", "foo.com is not a valid IP")),
            ),
            (
                "endpoints and selector",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: STATIC\nworkloadSelector: {{labels: {{app: a}}}}\nendpoints: [{{address: 1.1.1.1}}]\n"
                ),
                Some((
                    "spec.workloadSelector",
                    "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
                )),
            ),
            (
                "endpoint port undefined",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: STATIC\nendpoints: [{{address: 1.1.1.1, ports: {{grpc: 9090}}}}]\n"
                ),
                Some((
                    "spec.endpoints[0].ports.grpc",
                    "endpoint port 9090 is not defined by the service entry",
                )),
            ),
            (
                "none with endpoints",
                &format!("hosts: [a.com]\n{ports}endpoints: [{{address: 1.1.1.1}}]\n"),
                Some(("spec.endpoints", "no endpoints should be provided for resolution type none")),
            ),
            (
                "cidr with dns",
                &format!("hosts: [a.com]\naddresses: [10.0.0.0/8]\n{ports}resolution: DNS\n"),
                Some(("spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types")),
            ),
            (
                "multiple hosts tcp",
                "hosts: [a.com, b.com]\nports: [{number: 5432, name: pg, protocol: TCP}]\nresolution: DNS\n",
                Some(("spec.ports", "multiple hosts provided with non-HTTP, non-TLS ports")),
            ),
            (
                "round robin endpoints",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: DNS_ROUND_ROBIN\nendpoints: [{{address: a.com}}, {{address: b.com}}]\n"
                ),
                Some((
                    "spec.endpoints",
                    "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
                )),
            ),
            (
                "bad protocol",
                "hosts: [a.com]\nports: [{number: 80, name: http, protocol: FTP}]\n",
                Some(("spec.ports[0].protocol", "unsupported protocol: FTP")),
            ),
        ],
    );
}

#[test]
fn workload_entry_rules() {
    check_table(
        workload_entry,
        Severity::Error,
        &[
            ("ip", "address: 10.0.0.1\nports: {http: 8080}\n", None),
            ("dns name", "address: vm1.example.com\n", None),
            ("network only", "network: remote\n", None),
            ("unix", "address: unix:///var/run/app.sock\n", None),
            ("no address", "labels: {app: a}\n", Some(("spec.address", "address must be set"))),
            (
                "bad port",
                "address: 10.0.0.1\nports: {http: 0}\n",
                Some(("spec.ports.http", "port number 0 must be in the range 1..65535")),
            ),
            (
                "port too big",
                "address: 10.0.0.1\nports: {http: 65536}\n",
                Some(("spec.ports.http", "port number 65536 must be in the range 1..65535")),
            ),
            (
                "bad port name",
                "address: 10.0.0.1\nports: {Http_1: 80}\n",
                Some(("spec.ports.Http_1", "invalid port name: Http_1")),
            ),
            (
                "bad address",
                "address: not_an_address\n",
                Some((
                    "spec.address",
                    "endpoint address \"not_an_address\" is not a valid FQDN or an IP address",
                )),
            ),
        ],
    );
}
