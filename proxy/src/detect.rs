//! What the first bytes of a connection are: a TLS ClientHello (with its ALPN and SNI), HTTP, or
//! something else. Pure and bounded: it reads at most one TLS record and never panics on input.

/// The longest prefix the proxy buffers to decide (one maximal TLS record plus its header).
pub const MAX_SNIFF: usize = 5 + 16384;

/// What a connection starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Not enough bytes yet to tell.
    NeedMore,
    /// A TLS ClientHello.
    Tls(ClientHello),
    /// Anything else (including malformed TLS, which Envoy's tls_inspector treats as raw bytes).
    Plaintext,
}

/// The parts of a ClientHello that pick a filter chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// Offered ALPN protocols, in order.
    pub alpn: Vec<Vec<u8>>,
    /// Requested server name.
    pub sni: Option<String>,
}

impl ClientHello {
    /// True if one of Istio's mTLS ALPNs is offered.
    pub fn is_istio_mtls(&self) -> bool {
        self.alpn.iter().any(|a| crate::tls::is_istio_alpn(a))
    }
}

/// Classifies `buf`, the first bytes of a connection. `NeedMore` only while `buf` is shorter
/// than [`MAX_SNIFF`] and could still be a ClientHello.
pub fn sniff(buf: &[u8]) -> Sniff {
    let Some(&first) = buf.first() else { return Sniff::NeedMore };
    if first != 0x16 {
        return Sniff::Plaintext;
    }
    if buf.len() < 5 {
        return Sniff::NeedMore;
    }
    if buf[1] != 0x03 {
        return Sniff::Plaintext;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if len == 0 || len > 16384 {
        return Sniff::Plaintext;
    }
    if buf.len() < 5 + len {
        return Sniff::NeedMore;
    }
    match parse_client_hello(&buf[5..5 + len]) {
        Some(ch) => Sniff::Tls(ch),
        None => Sniff::Plaintext,
    }
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// Parses a handshake message that must be a ClientHello. A ClientHello split across records is
/// not reassembled (returns what the first record holds only if complete).
fn parse_client_hello(record: &[u8]) -> Option<ClientHello> {
    let mut r = Reader(record);
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let hs_len = r.take(3)?;
    let hs_len = (usize::from(hs_len[0]) << 16) | (usize::from(hs_len[1]) << 8) | usize::from(hs_len[2]);
    let mut r = Reader(r.take(hs_len)?);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut hello = ClientHello::default();
    if r.0.is_empty() {
        return Some(hello); // no extensions
    }
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let mut body = Reader(exts.vec16()?);
        match ty {
            0x0000 => {
                let mut list = Reader(body.vec16()?);
                while !list.0.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 && hello.sni.is_none() {
                        hello.sni = std::str::from_utf8(name).ok().map(str::to_string);
                    }
                }
            }
            0x0010 => {
                let mut list = Reader(body.vec16()?);
                while !list.0.is_empty() {
                    hello.alpn.push(list.vec8()?.to_vec());
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

/// True if `buf` starts like an HTTP/1.x request line or the HTTP/2 preface (Istio's protocol
/// sniffing for ports with no declared protocol). `None`: too short to tell.
pub fn looks_like_http(buf: &[u8]) -> Option<bool> {
    const STARTS: [&[u8]; 10] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
        b"PRI * HTTP/2.0",
    ];
    let mut maybe = false;
    for s in STARTS {
        let n = buf.len().min(s.len());
        if buf[..n] == s[..n] {
            if n == s.len() {
                return Some(true);
            }
            maybe = true;
        }
    }
    if maybe { None } else { Some(false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as rustls writes it, with the given ALPNs and SNI.
    fn client_hello(alpn: &[&[u8]], sni: &str) -> Vec<u8> {
        use std::sync::Arc;
        let provider = crate::tls::provider();
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from(sni.to_string()).expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("conn");
        let mut out = Vec::new();
        conn.write_tls(&mut out).expect("write");
        out
    }

    #[test]
    fn classifies_client_hellos() {
        let ch = client_hello(&[b"istio-http/1.1"], "outbound_.8080_._.httpbin.default.svc.cluster.local");
        let Sniff::Tls(h) = sniff(&ch) else { panic!("not TLS") };
        assert!(h.is_istio_mtls());
        assert_eq!(h.sni.as_deref(), Some("outbound_.8080_._.httpbin.default.svc.cluster.local"));
        let Sniff::Tls(h) = sniff(&client_hello(&[b"h2", b"http/1.1"], "example.com")) else {
            panic!("not TLS")
        };
        assert!(!h.is_istio_mtls());
        assert_eq!(h.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        // Every strict prefix asks for more.
        for n in 0..ch.len() {
            assert_eq!(sniff(&ch[..n]), Sniff::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn plaintext_and_garbage() {
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::Plaintext);
        assert_eq!(sniff(&[0x16, 0x01, 0, 0, 1, 0]), Sniff::Plaintext);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0, 5, 9, 9, 9, 9, 9]), Sniff::Plaintext);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0xff, 0xff]), Sniff::Plaintext);
        assert_eq!(looks_like_http(b"GET /x"), Some(true));
        assert_eq!(looks_like_http(b"PRI * HTTP/2.0\r\n"), Some(true));
        assert_eq!(looks_like_http(b"PO"), None);
        assert_eq!(looks_like_http(b"\x00\x01"), Some(false));
    }

    proptest::proptest! {
        #[test]
        fn sniff_never_panics(mut bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600), tls in proptest::bool::ANY) {
            if tls && bytes.len() > 5 {
                bytes[0] = 0x16;
                bytes[1] = 0x03;
                let n = u16::try_from(bytes.len() - 5).unwrap_or(0).to_be_bytes();
                bytes[3] = n[0];
                bytes[4] = n[1];
                if bytes.len() > 6 { bytes[5] = 1; }
            }
            let _ = sniff(&bytes);
            let _ = looks_like_http(&bytes);
        }
    }
}
