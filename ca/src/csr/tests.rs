use rcgen::{CertificateParams, KeyPair, SanType};

use super::*;

const ID: &str = "spiffe://cluster.local/ns/default/sa/default";

pub(crate) fn rcgen_csr(alg: &'static rcgen::SignatureAlgorithm, sans: &[&str]) -> String {
    let key = KeyPair::generate_for(alg).expect("key");
    let mut p = CertificateParams::default();
    p.subject_alt_names = sans.iter().map(|s| SanType::URI((*s).try_into().expect("ia5"))).collect();
    p.serialize_request(&key).expect("csr").pem().expect("pem")
}

fn broken_signature(pem: &str) -> String {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    let mut der = block.contents;
    let n = der.len();
    der[n - 3] ^= 0x55; // inside the signature BIT STRING
    let b64 = crate::signer::der_to_pem(&der);
    b64.replace("CERTIFICATE", "CERTIFICATE REQUEST")
}

#[test]
fn csr_table() {
    let p256 = rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256, &[ID]);
    let p384 = rcgen_csr(&rcgen::PKCS_ECDSA_P384_SHA384, &[]);
    let ed = rcgen_csr(&rcgen::PKCS_ED25519, &[]);
    let cases: Vec<(&str, String, Result<KeyKind, &str>)> = vec![
        ("p256", p256.clone(), Ok(KeyKind::EcdsaP256)),
        ("p384 no SAN", p384, Ok(KeyKind::EcdsaP384)),
        ("rsa2048 openssl", include_str!("testdata/rsa2048.csr").into(), Ok(KeyKind::Rsa(2048))),
        ("rsa1024 openssl", include_str!("testdata/rsa1024.csr").into(), Err("csr_rsa_too_small")),
        ("p521 openssl", include_str!("testdata/p521.csr").into(), Err("csr_key_algorithm")),
        ("ed25519 openssl", include_str!("testdata/ed25519.csr").into(), Err("csr_key_algorithm")),
        ("ed25519 rcgen", ed, Err("csr_key_algorithm")),
        ("broken signature", broken_signature(&p256), Err("csr_signature")),
        ("not PEM", "hello".into(), Err("csr_pem")),
        ("empty", String::new(), Err("csr_pem")),
        ("certificate label", p256.replace("CERTIFICATE REQUEST", "CERTIFICATE"), Err("csr_pem")),
        (
            "garbage DER",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into(),
            Err("csr_der"),
        ),
    ];
    for (name, pem, want) in cases {
        let got = parse_pem(&pem);
        match (got, want) {
            (Ok(c), Ok(kind)) => assert_eq!(c.key, kind, "{name}"),
            (Err(e), Err(reason)) => assert_eq!(crate::CaError::Csr(e).reason(), reason, "{name}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn rsa1024_reports_its_size() {
    let e = parse_pem(include_str!("testdata/rsa1024.csr")).expect_err("small");
    assert_eq!(e, CsrError::RsaTooSmall(1024));
    assert_eq!(e.to_string(), "CSR RSA key is 1024 bits; at least 2048 required");
}

#[test]
fn requested_sans_are_rendered_and_checked() {
    let multi = parse_pem(include_str!("testdata/p256-multi-san.csr")).expect("parses");
    assert_eq!(
        multi.requested_sans,
        vec![format!("URI:{ID}"), "DNS:evil.example.com".into(), "IP:10.0.0.1".into()]
    );
    let cases: [(&[&str], bool); 5] = [
        (&[], true),
        (&[ID], true),
        (&["spiffe://cluster.local/ns/default/sa/other"], false),
        (&[ID, ID], false),
        (&["spiffe://other.domain/ns/default/sa/default"], false),
    ];
    for (sans, ok) in cases {
        let c = parse_pem(&rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256, sans)).expect("parses");
        assert_eq!(sans_allowed(&c.requested_sans, ID), ok, "{sans:?}");
    }
    assert!(!sans_allowed(&multi.requested_sans, ID));
}

proptest::proptest! {
    /// Attacker input never panics: arbitrary bytes, and valid CSRs with bytes flipped.
    #[test]
    fn arbitrary_der_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = parse_der(&bytes);
        let _ = parse_pem(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_csr_is_rejected_or_still_valid(pos in 0usize..400, xor in 1u8..=255) {
        let pem = include_str!("testdata/rsa2048.csr");
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        let mut der = block.contents;
        let i = pos % der.len();
        der[i] ^= xor;
        // Either an error value, or (if the flip hit an ignored field) a CSR that still verifies.
        if let Ok(c) = parse_der(&der) {
            proptest::prop_assert!(matches!(c.key, KeyKind::Rsa(_)));
        }
    }

    #[test]
    fn spiffe_parse_never_panics_and_round_trips(s in "\\PC{0,80}") {
        if let Ok(id) = crate::SpiffeId::parse(&s) {
            proptest::prop_assert_eq!(id.to_string(), s);
        }
    }
}
