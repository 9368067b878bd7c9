//! ServiceEntry and WorkloadEntry validation: Istio's `ValidateServiceEntry` and
//! `ValidateWorkloadEntry`.

use std::{collections::BTreeSet, net::IpAddr};

use super::{
    UNIX_ADDRESS_PREFIX, check, parse_protocol, protocol_is_http, protocol_is_tls,
    validate_alpha_workload_selector, validate_export_to, validate_fqdn, validate_ip_address,
    validate_ip_subnet, validate_labels, validate_port, validate_port_name, validate_protocol,
    validate_unix_address, validate_wildcard_domain,
};
use crate::{
    types::networking::{Resolution, ServiceEntrySpec, WorkloadEntrySpec},
    validate::Findings,
};

/// Istio's `ValidateServiceEntry`.
pub fn service_entry(spec: &ServiceEntrySpec, f: &mut Findings) {
    validate_alpha_workload_selector(f, "spec.workloadSelector", spec.workload_selector.as_ref());
    if spec.workload_selector.is_some() && !spec.endpoints.is_empty() {
        f.error(
            "spec.workloadSelector",
            "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
        );
    }
    if spec.hosts.is_empty() {
        f.error("spec.hosts", "service entry must have at least one host");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        if host == "*" {
            f.error(format!("spec.hosts[{i}]"), "invalid host *");
        } else {
            check(f, format!("spec.hosts[{i}]"), validate_wildcard_domain(host));
        }
    }
    let resolution = spec.resolution.unwrap_or_default();
    let mut cidr_found = false;
    for (i, addr) in spec.addresses.iter().enumerate() {
        cidr_found |= addr.contains('/');
        check(f, format!("spec.addresses[{i}]"), validate_ip_subnet(addr));
    }
    if cidr_found && !matches!(resolution, Resolution::None | Resolution::Static) {
        f.error("spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types");
    }

    let mut port_names = BTreeSet::new();
    let mut port_numbers = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        if !port_names.insert(port.name.as_str()) {
            f.error(format!("{p}.name"), format!("service entry port name {:?} already defined", port.name));
        }
        if !port_numbers.insert(port.number) {
            f.error(format!("{p}.number"), format!("service entry port {} already defined", port.number));
        }
        check(f, format!("{p}.name"), validate_port_name(&port.name));
        check(f, format!("{p}.protocol"), validate_protocol(&port.protocol));
        check(f, format!("{p}.number"), validate_port(port.number));
        if port.target_port != 0 {
            check(f, format!("{p}.targetPort"), validate_port(port.target_port));
        }
    }

    let endpoint_ports_defined = |f: &mut Findings, p: &str, e: &WorkloadEntrySpec| {
        for (name, port) in &e.ports {
            if !port_names.contains(name.as_str()) {
                f.error(
                    format!("{p}.ports.{name}"),
                    format!("endpoint port {port} is not defined by the service entry"),
                );
            }
            check(f, format!("{p}.ports.{name}"), validate_port(*port));
        }
    };
    match resolution {
        Resolution::None => {
            if !spec.endpoints.is_empty() {
                f.error("spec.endpoints", "no endpoints should be provided for resolution type none");
            }
        }
        Resolution::Static => {
            if spec.endpoints.is_empty() && spec.workload_selector.is_none() {
                f.error(
                    "spec.endpoints",
                    "endpoints or workloadSelector are required for resolution type STATIC",
                );
            }
            let mut unix_endpoint = false;
            for (i, e) in spec.endpoints.iter().enumerate() {
                let p = format!("spec.endpoints[{i}]");
                if let Some(path) = e.address.strip_prefix(UNIX_ADDRESS_PREFIX) {
                    unix_endpoint = true;
                    check(f, format!("{p}.address"), validate_unix_address(path));
                    if !e.ports.is_empty() {
                        f.error(
                            format!("{p}.ports"),
                            format!("unix endpoint {} must not include ports", e.address),
                        );
                    }
                } else {
                    // An empty address is a cross-network endpoint reached through its network's gateway.
                    let cross_network = e.address.is_empty() && !e.network.is_empty();
                    if !cross_network {
                        check(f, format!("{p}.address"), validate_ip_address(&e.address));
                    }
                    endpoint_ports_defined(f, &p, e);
                }
                validate_labels(f, &format!("{p}.labels"), &e.labels);
            }
            if unix_endpoint && spec.ports.len() != 1 {
                f.error("spec.ports", "exactly 1 service port required for unix endpoints");
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            let mode = if resolution == Resolution::Dns { "DNS" } else { "DNS_ROUND_ROBIN" };
            if spec.endpoints.is_empty() {
                for (i, host) in spec.hosts.iter().enumerate() {
                    if validate_fqdn(host).is_err() {
                        f.error(
                            format!("spec.hosts[{i}]"),
                            format!(
                                "hosts must be FQDN if no endpoints are provided for resolution mode {mode}"
                            ),
                        );
                    }
                }
            }
            if resolution == Resolution::DnsRoundRobin && spec.endpoints.len() > 1 {
                f.error(
                    "spec.endpoints",
                    "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
                );
            }
            for (i, e) in spec.endpoints.iter().enumerate() {
                let p = format!("spec.endpoints[{i}]");
                if e.address.parse::<IpAddr>().is_err() && validate_fqdn(&e.address).is_err() {
                    f.error(
                        format!("{p}.address"),
                        format!("endpoint address {:?} is not a valid FQDN or an IP address", e.address),
                    );
                }
                validate_labels(f, &format!("{p}.labels"), &e.labels);
                endpoint_ports_defined(f, &p, e);
            }
        }
    }

    // Plain TCP cannot tell several hosts apart unless the hosts are ignored (NONE).
    if resolution != Resolution::None && spec.hosts.len() > 1 {
        let can_differentiate = spec.ports.iter().all(|port| {
            parse_protocol(&port.protocol).is_some_and(|p| protocol_is_http(p) || protocol_is_tls(p))
        });
        if !can_differentiate {
            f.error("spec.ports", "multiple hosts provided with non-HTTP, non-TLS ports");
        }
    }
    validate_export_to(f, "spec.exportTo", &spec.export_to, true);
}

/// Istio's `ValidateWorkloadEntry`.
pub fn workload_entry(spec: &WorkloadEntrySpec, f: &mut Findings) {
    if spec.address.is_empty() {
        if spec.network.is_empty() {
            f.error("spec.address", "address must be set");
        }
    } else if let Some(path) = spec.address.strip_prefix(UNIX_ADDRESS_PREFIX) {
        check(f, "spec.address", validate_unix_address(path));
        if !spec.ports.is_empty() {
            f.error("spec.ports", format!("unix endpoint {} must not include ports", spec.address));
        }
    } else if spec.address.parse::<IpAddr>().is_err() && validate_fqdn(&spec.address).is_err() {
        f.error(
            "spec.address",
            format!("endpoint address {:?} is not a valid FQDN or an IP address", spec.address),
        );
    }
    for (name, port) in &spec.ports {
        check(f, format!("spec.ports.{name}"), validate_port_name(name));
        check(f, format!("spec.ports.{name}"), validate_port(*port));
    }
    validate_labels(f, "spec.labels", &spec.labels);
}

#[cfg(test)]
mod tests;
