#![allow(clippy::unwrap_used)]

use super::*;

#[path = "../../tests/support/ca.rs"]
mod ca;

fn creds(c: &ca::WorkloadCert) -> Credentials {
    Credentials::from_pem(c.chain.as_bytes(), c.key.as_bytes(), c.root.as_bytes(), "test").unwrap()
}

const ME: &str = "spiffe://cluster.local/ns/default/sa/httpbin";

#[test]
fn builds_from_valid_credentials() {
    let ca = ca::TestCa::new("cluster.local");
    let expected = SpiffeId::parse(ME).unwrap();
    let t = TlsConfigs::build(&creds(&ca.issue(ME)), "cluster.local", Some(&expected)).unwrap();
    assert_eq!(t.identity, expected);
    assert!(t.server.alpn_protocols.contains(&b"istio".to_vec()));
}

#[test]
fn rejects_bad_credentials_before_publishing() {
    let ca = ca::TestCa::new("cluster.local");
    let other = ca::TestCa::new("other");
    let expected = SpiffeId::parse(ME).unwrap();
    // Wrong trust domain.
    let e = TlsConfigs::build(
        &creds(&ca.issue("spiffe://evil.local/ns/default/sa/httpbin")),
        "cluster.local",
        None,
    );
    assert!(matches!(e, Err(TlsError::WrongTrustDomain { .. })), "{e:?}");
    // Another workload's identity.
    let e = TlsConfigs::build(
        &creds(&ca.issue("spiffe://cluster.local/ns/default/sa/sleep")),
        "cluster.local",
        Some(&expected),
    );
    assert!(matches!(e, Err(TlsError::WrongIdentity { .. })), "{e:?}");
    // Expired.
    let e = TlsConfigs::build(&creds(&ca.issue_with(ME, true)), "cluster.local", None);
    assert!(matches!(e, Err(TlsError::Untrusted(_))), "{e:?}");
    // Signed by another CA than the bundle.
    let mut c = ca.issue(ME);
    c.root = other.root_pem();
    let e = TlsConfigs::build(&creds(&c), "cluster.local", None);
    assert!(matches!(e, Err(TlsError::Untrusted(_))), "{e:?}");
    // Key of another cert.
    let mut c = ca.issue(ME);
    c.key = ca.issue(ME).key;
    assert!(TlsConfigs::build(&creds(&c), "cluster.local", None).is_err());
    // Garbage PEM is an error, not a panic.
    assert!(Credentials::from_pem(b"junk", b"junk", b"junk", "x").is_err());
}

/// Handshake in memory between a server built from `server` and a client built from `client`
/// that accepts `allowed`.
fn handshake(server: &TlsConfigs, client: &TlsConfigs, allowed: Vec<SpiffeId>) -> Result<(), rustls::Error> {
    let mut c = rustls::ClientConnection::new(
        client.client(allowed, &CLIENT_ALPN_HTTP1).unwrap(),
        ServerName::try_from("outbound_.80_._.httpbin").unwrap(),
    )
    .unwrap();
    let mut s = rustls::ServerConnection::new(server.server.clone()).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        s.read_tls(&mut buf.as_slice()).unwrap();
        s.process_new_packets()?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).unwrap();
        c.read_tls(&mut buf.as_slice()).unwrap();
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            assert_eq!(s.alpn_protocol(), Some(b"istio-http/1.1".as_slice()));
            let peer = s.peer_certificates().unwrap();
            assert_eq!(spiffe_ids(&peer[0])[0].to_string(), "spiffe://cluster.local/ns/default/sa/sleep");
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn mutual_tls_with_secure_naming() {
    let ca = ca::TestCa::new("cluster.local");
    let server = TlsConfigs::build(&creds(&ca.issue(ME)), "cluster.local", None).unwrap();
    let sleep = "spiffe://cluster.local/ns/default/sa/sleep";
    let client = TlsConfigs::build(&creds(&ca.issue(sleep)), "cluster.local", None).unwrap();
    handshake(&server, &client, vec![SpiffeId::parse(ME).unwrap()]).unwrap();
    // Secure naming: the server is not the expected identity.
    let e = handshake(
        &server,
        &client,
        vec![SpiffeId::parse("spiffe://cluster.local/ns/default/sa/other").unwrap()],
    );
    assert!(e.is_err());
    // A client from another trust domain's CA is refused by the server.
    let other = ca::TestCa::new("other");
    let mut c = other.issue(sleep);
    c.root = ca.root_pem();
    let mut creds_other = creds(&c);
    creds_other.roots = creds(&other.issue(sleep)).roots;
    creds_other.roots.extend(creds(&ca.issue(sleep)).roots);
    let client_other = TlsConfigs::build(&creds_other, "cluster.local", None).unwrap();
    assert!(handshake(&server, &client_other, vec![]).is_err());
}
