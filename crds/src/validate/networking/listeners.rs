//! Gateway and Sidecar validation: Istio's `ValidateGateway`, `validateServer`,
//! `validateTLSOptions` and `ValidateSidecar`.

use std::collections::BTreeSet;

use super::{
    UNIX_ADDRESS_PREFIX, check, parse_protocol, policies, protocol_is_http, protocol_is_tls,
    validate_alpha_workload_selector, validate_destination, validate_ip_address, validate_labels,
    validate_namespace_slash_hostname, validate_port, validate_port_name, validate_protocol,
    validate_unix_address, wire_name,
};
use crate::{
    types::networking::{
        CaptureMode, GatewaySpec, OutboundTrafficPolicyMode, ServerTlsMode, ServerTlsSettings, SidecarSpec,
        TlsProtocol,
    },
    validate::Findings,
};

/// Istio's `ValidateGateway`.
pub fn gateway(spec: &GatewaySpec, f: &mut Findings) {
    if spec.servers.is_empty() {
        f.error("spec.servers", "gateway must have at least one server");
    }
    validate_labels(f, "spec.selector", &spec.selector);
    let mut port_names = BTreeSet::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let p = format!("spec.servers[{i}]");
        if server.hosts.is_empty() {
            f.error(format!("{p}.hosts"), "server config must contain at least one host");
        }
        for (j, host) in server.hosts.iter().enumerate() {
            for e in validate_namespace_slash_hostname(host, true) {
                f.error(format!("{p}.hosts[{j}]"), e);
            }
        }
        let protocol = match &server.port {
            None => {
                f.error(format!("{p}.port"), "port is required");
                None
            }
            Some(port) => {
                let parsed = parse_protocol(&port.protocol);
                if parsed.is_none() {
                    f.error(
                        format!("{p}.port.protocol"),
                        format!(
                            "invalid protocol {:?}, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
                            port.protocol
                        ),
                    );
                }
                check(f, format!("{p}.port.number"), validate_port(port.number));
                if port.name.is_empty() {
                    f.error(format!("{p}.port.name"), "port name must be set");
                } else if !port_names.insert(port.name.as_str()) {
                    f.error(
                        format!("{p}.port.name"),
                        format!("port names in servers must be unique: duplicate name {}", port.name),
                    );
                }
                parsed
            }
        };
        if let Some(tls) = &server.tls {
            validate_server_tls(f, &format!("{p}.tls"), tls);
        }
        if let Some(proto) = protocol {
            match &server.tls {
                None if protocol_is_tls(proto) => {
                    f.error(format!("{p}.tls"), "server must have TLS settings for HTTPS/TLS protocols")
                }
                Some(tls) if !protocol_is_tls(proto) => {
                    let passthrough = matches!(
                        tls.mode.unwrap_or_default(),
                        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
                    );
                    if !protocol_is_http(proto) {
                        f.error(
                            format!("{p}.tls"),
                            "server cannot have TLS settings for non HTTPS/TLS ports",
                        );
                    } else if !passthrough
                        || !tls.ca_certificates.is_empty()
                        || !tls.private_key.is_empty()
                        || !tls.server_certificate.is_empty()
                    {
                        // Only `httpsRedirect` makes sense on a plain-text HTTP server.
                        f.error(
                            format!("{p}.tls"),
                            "server cannot have TLS settings for plain text HTTP ports",
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Istio's `validateTLSOptions` for Gateway servers and Sidecar ingress listeners.
pub(crate) fn validate_server_tls(f: &mut Findings, p: &str, tls: &ServerTlsSettings) {
    let mode = tls.mode.unwrap_or_default();
    if mode == ServerTlsMode::IstioMutual {
        for (field, value, what) in [
            ("serverCertificate", &tls.server_certificate, "server certificate"),
            ("privateKey", &tls.private_key, "private key"),
            ("caCertificates", &tls.ca_certificates, "CA bundle"),
            ("credentialName", &tls.credential_name, "credentialName"),
        ] {
            if !value.is_empty() {
                f.error(format!("{p}.{field}"), format!("ISTIO_MUTUAL TLS cannot have associated {what}"));
            }
        }
        return;
    }
    if !tls.credential_name.is_empty() && !tls.credential_names.is_empty() {
        f.error(format!("{p}.credentialNames"), "only one of credentialName or credentialNames can be set");
    }
    if tls.credential_names.len() > 2 {
        f.error(format!("{p}.credentialNames"), "credentialNames can have at most 2 entries");
    }
    if tls.tls_certificates.len() > 2 {
        f.error(format!("{p}.tlsCertificates"), "tlsCertificates can have at most 2 entries");
    }
    if !tls.tls_certificates.is_empty() && (!tls.server_certificate.is_empty() || !tls.private_key.is_empty())
    {
        f.error(
            format!("{p}.tlsCertificates"),
            "only one of serverCertificate/privateKey or tlsCertificates can be set",
        );
    }
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version)
        && min != TlsProtocol::TlsAuto
        && max != TlsProtocol::TlsAuto
        && min > max
    {
        f.error(format!("{p}.minProtocolVersion"), "Tls min version must be less than or equal to max");
    }
    let (label, mutual) = match mode {
        ServerTlsMode::Simple => ("SIMPLE", false),
        ServerTlsMode::Mutual => ("MUTUAL", true),
        ServerTlsMode::OptionalMutual => ("OPTIONAL_MUTUAL", true),
        _ => return,
    };
    if !tls.credential_name.is_empty() || !tls.credential_names.is_empty() {
        // Credentials come from a secret; file paths are not needed.
        return;
    }
    if tls.tls_certificates.is_empty() {
        if tls.server_certificate.is_empty() {
            f.error(format!("{p}.serverCertificate"), format!("{label} TLS requires a server certificate"));
        }
        if tls.private_key.is_empty() {
            f.error(format!("{p}.privateKey"), format!("{label} TLS requires a private key"));
        }
    }
    for (i, c) in tls.tls_certificates.iter().enumerate() {
        if c.server_certificate.is_empty() {
            f.error(
                format!("{p}.tlsCertificates[{i}].serverCertificate"),
                format!("{label} TLS requires a server certificate"),
            );
        }
        if c.private_key.is_empty() {
            f.error(
                format!("{p}.tlsCertificates[{i}].privateKey"),
                format!("{label} TLS requires a private key"),
            );
        }
    }
    let has_ca =
        !tls.ca_certificates.is_empty() || tls.tls_certificates.iter().any(|c| !c.ca_certificates.is_empty());
    if mutual && !has_ca {
        f.error(format!("{p}.caCertificates"), format!("{label} TLS requires a client CA bundle"));
    }
}

/// Istio's `ValidateSidecar`.
pub fn sidecar(spec: &SidecarSpec, f: &mut Findings) {
    validate_alpha_workload_selector(f, "spec.workloadSelector", spec.workload_selector.as_ref());
    if spec.ingress.is_empty()
        && spec.egress.is_empty()
        && spec.outbound_traffic_policy.is_none()
        && spec.inbound_connection_pool.is_none()
    {
        f.warn("spec", "sidecar: empty configuration provided");
    }

    let mut ports = BTreeSet::new();
    for (i, listener) in spec.ingress.iter().enumerate() {
        let p = format!("spec.ingress[{i}]");
        let Some(port) = &listener.port else {
            f.error(format!("{p}.port"), "sidecar: port is required for ingress listeners");
            continue;
        };
        if !port.name.is_empty() {
            check(f, format!("{p}.port.name"), validate_port_name(&port.name));
        }
        check(f, format!("{p}.port.protocol"), validate_protocol(&port.protocol));
        check(f, format!("{p}.port.number"), validate_port(port.number));
        if !listener.bind.is_empty() {
            check(f, format!("{p}.bind"), validate_ip_address(&listener.bind));
        }
        if !ports.insert(port.number) {
            f.error(format!("{p}.port.number"), "sidecar: ports on IP bound listeners must be unique");
        }
        validate_default_endpoint(f, &format!("{p}.defaultEndpoint"), &listener.default_endpoint);
        if let Some(tls) = &listener.tls {
            let mode = tls.mode.unwrap_or_default();
            if matches!(
                mode,
                ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough | ServerTlsMode::Passthrough
            ) {
                f.error(
                    format!("{p}.tls.mode"),
                    format!(
                        "configuration is invalid: cannot set mode to {} in sidecar ingress tls",
                        wire_name(&mode)
                    ),
                );
            } else {
                validate_server_tls(f, &format!("{p}.tls"), tls);
            }
        }
        if let Some(pool) = &listener.connection_pool {
            policies::validate_connection_pool(f, &format!("{p}.connectionPool"), pool);
        }
    }

    let mut ports = BTreeSet::new();
    let mut uds = BTreeSet::new();
    let mut catch_all_found = false;
    for (i, listener) in spec.egress.iter().enumerate() {
        let p = format!("spec.egress[{i}]");
        match &listener.port {
            None if catch_all_found => {
                f.error(format!("{p}.port"), "sidecar: egress can have only one listener with empty port");
                continue;
            }
            None if i == spec.egress.len() - 1 => catch_all_found = true,
            None => f.error(
                format!("{p}.port"),
                "sidecar: the egress listener with empty port should be the last listener in the list",
            ),
            Some(port) => {
                if !port.name.is_empty() {
                    check(f, format!("{p}.port.name"), validate_port_name(&port.name));
                }
                check(f, format!("{p}.port.protocol"), validate_protocol(&port.protocol));
                if port.number == 0 {
                    match listener.bind.strip_prefix(UNIX_ADDRESS_PREFIX) {
                        None => f.error(
                            format!("{p}.bind"),
                            "sidecar: ports with 0 value must have a unix domain socket bind address",
                        ),
                        Some(path) => check(f, format!("{p}.bind"), validate_unix_address(path)),
                    }
                    if matches!(listener.capture_mode, Some(CaptureMode::Iptables)) {
                        f.error(
                            format!("{p}.captureMode"),
                            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
                        );
                    }
                    if !uds.insert(listener.bind.as_str()) {
                        f.error(
                            format!("{p}.bind"),
                            "sidecar: unix domain socket values for listeners must be unique",
                        );
                    }
                } else {
                    check(f, format!("{p}.port.number"), validate_port(port.number));
                    if !listener.bind.is_empty() {
                        check(f, format!("{p}.bind"), validate_ip_address(&listener.bind));
                    }
                    if !ports.insert(port.number) {
                        f.error(
                            format!("{p}.port.number"),
                            "sidecar: ports on IP bound listeners must be unique",
                        );
                    }
                }
            }
        }
        if listener.hosts.is_empty() {
            f.error(format!("{p}.hosts"), "sidecar: egress listener must contain at least one host");
        }
        for (j, host) in listener.hosts.iter().enumerate() {
            for e in validate_namespace_slash_hostname(host, false) {
                f.error(format!("{p}.hosts[{j}]"), e);
            }
        }
    }

    if let Some(otp) = &spec.outbound_traffic_policy
        && let Some(proxy) = &otp.egress_proxy
    {
        let p = "spec.outboundTrafficPolicy.egressProxy";
        if otp.mode.unwrap_or_default() != OutboundTrafficPolicyMode::AllowAny {
            f.error(p, "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode");
        } else if proxy.port.is_none() {
            f.error(format!("{p}.port"), "sidecar: egress_proxy port must be non-nil");
        } else {
            validate_destination(f, p, proxy);
        }
    }
    if let Some(pool) = &spec.inbound_connection_pool {
        policies::validate_connection_pool(f, "spec.inboundConnectionPool", pool);
    }
}

/// Sidecar ingress `defaultEndpoint`: a loopback or any-address `host:port`, or a unix socket.
fn validate_default_endpoint(f: &mut Findings, p: &str, endpoint: &str) {
    if endpoint.is_empty() {
        return;
    }
    if let Some(path) = endpoint.strip_prefix(UNIX_ADDRESS_PREFIX) {
        check(f, p, validate_unix_address(path));
        return;
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        f.error(p, "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:port, [::]:port, unix://filepath, or unset");
        return;
    };
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "[::1]" | "[::]") {
        f.error(p, "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:port, [::]:port, unix://filepath, or unset");
    }
    match port.parse::<u32>() {
        Ok(n) => check(f, p, validate_port(n)),
        Err(e) => f.error(p, format!("sidecar: defaultEndpoint port ({port}) is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests;
