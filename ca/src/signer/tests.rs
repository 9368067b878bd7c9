use time::OffsetDateTime;
use x509_parser::{
    extensions::{GeneralName, ParsedExtension},
    prelude::{FromDer, X509Certificate},
};

use super::*;
use crate::{csr, store};

fn signer(now: OffsetDateTime) -> Signer {
    let m = store::generate_root("cluster.local", now, profile::SELF_SIGNED_ROOT_TTL).expect("root");
    Signer::from_material(&m, TtlPolicy::default(), now).expect("signer")
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    pem_certs(pem).expect("pem").remove(0)
}

#[test]
fn leaf_has_istios_profile() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns");
    let s = signer(now);
    let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bookinfo").expect("id");
    let c = csr::parse_pem(&crate::csr::tests::rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256, &[])).expect("csr");
    let issued = s.sign(&c, &id, 3600, now).expect("sign");
    // Self-signed CA: exactly [leaf, root] (ISTIO-FACTS §1.3 step 5).
    assert_eq!(issued.chain.len(), 2);
    assert!(issued.chain.iter().all(|e| e.ends_with('\n')));
    assert_eq!(issued.chain[1], s.root_bundle_pem());
    let der = pem_to_der(&issued.chain[0]);
    let (_, x) = X509Certificate::from_der(&der).expect("x509");
    assert!(x.subject().as_raw().len() <= 2, "empty subject");
    assert_eq!(x.issuer().to_string(), "O=cluster.local");
    assert_eq!(x.validity().not_before.timestamp(), now.unix_timestamp() - 120);
    assert_eq!(x.validity().not_after.timestamp(), now.unix_timestamp() + 3600);
    assert_eq!(x.raw_serial().len(), 16);
    let mut seen = Vec::new();
    for ext in x.extensions() {
        seen.push(ext.oid.to_id_string());
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                assert!(ext.critical, "SAN must be critical");
                assert_eq!(
                    san.general_names,
                    vec![GeneralName::URI("spiffe://cluster.local/ns/default/sa/bookinfo")]
                );
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
            }
            ParsedExtension::ExtendedKeyUsage(eku) => assert!(eku.server_auth && eku.client_auth),
            ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca),
            _ => {}
        }
    }
    for oid in ["2.5.29.17", "2.5.29.15", "2.5.29.37", "2.5.29.19", "2.5.29.35", "2.5.29.14"] {
        assert_eq!(seen.iter().filter(|s| *s == oid).count(), 1, "extension {oid} exactly once: {seen:?}");
    }
    assert_eq!(seen.len(), 6, "no other extensions: {seen:?}");
    verify_issued_by(&der, s.ca_cert_der()).expect("leaf verifies under the CA");
    assert_eq!(issued.public_key_sha256, sha256_hex(&c.spki_der));
}

#[test]
fn not_after_is_clamped_to_signer() {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns");
    let m = store::generate_root("cluster.local", now, std::time::Duration::from_secs(600)).expect("root");
    let s = Signer::from_material(&m, TtlPolicy::default(), now).expect("signer");
    let c = csr::parse_pem(&crate::csr::tests::rcgen_csr(&rcgen::PKCS_ECDSA_P384_SHA384, &[])).expect("csr");
    let id = SpiffeId::parse("spiffe://cluster.local/ns/a/sa/b").expect("id");
    let issued = s.sign(&c, &id, 0, now).expect("sign");
    assert_eq!(issued.validity.not_after, s.ca_not_after());
}

#[test]
fn intermediate_chain_order_is_leaf_intermediate_root_bundle() {
    let now = OffsetDateTime::now_utc();
    let root = store::generate_root("cluster.local", now, profile::SELF_SIGNED_ROOT_TTL).expect("root");
    let root_signer = Signer::from_material(&root, TtlPolicy::default(), now).expect("root signer");
    // An intermediate under the offline root.
    let ikey = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut ip =
        profile::root_params("intermediate.cluster.local", now, profile::SELF_SIGNED_ROOT_TTL, [7; 16]);
    ip.use_authority_key_identifier_extension = true;
    let icert = ip.signed_by(&ikey, &root_signer.issuer).expect("intermediate");
    let ipem = der_to_pem(icert.der());
    let m = SignerMaterial {
        ca_cert_pem: ipem.clone(),
        ca_key_pem: Zeroizing::new(ikey.serialize_pem()),
        cert_chain_pem: ipem.clone(),
        root_cert_pem: root.root_cert_pem.clone(),
    };
    let s = Signer::from_material(&m, TtlPolicy::default(), now).expect("intermediate signer");
    assert!(!s.is_self_signed());
    let c = csr::parse_pem(&crate::csr::tests::rcgen_csr(&rcgen::PKCS_ECDSA_P256_SHA256, &[])).expect("csr");
    let id = SpiffeId::parse("spiffe://cluster.local/ns/a/sa/b").expect("id");
    let issued = s.sign(&c, &id, 0, now).expect("sign");
    assert_eq!(issued.chain.len(), 3);
    assert_eq!(issued.chain[1], ipem);
    assert_eq!(issued.chain[2], root.root_cert_pem);
    // A bundle without the anchoring root is refused.
    let other = store::generate_root("cluster.local", now, profile::SELF_SIGNED_ROOT_TTL).expect("root");
    let bad = SignerMaterial { root_cert_pem: other.root_cert_pem, ..m };
    let err = Signer::from_material(&bad, TtlPolicy::default(), now).expect_err("unanchored");
    assert!(err.to_string().starts_with("root-cert.pem"), "{err}");
}
