#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::time::{Duration, SystemTime};

use super::*;
use crate::{
    keys::{KeyAlgorithm, generate_csr},
    testing::TestCa,
};

const ID: &str = "spiffe://cluster.local/ns/ns1/sa/sa1";

fn id() -> WorkloadId {
    WorkloadId::parse(ID).unwrap()
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn issue(ca: &TestCa, identity: &str) -> (Vec<String>, WorkloadKey) {
    let (csr, key) = generate_csr(&id(), KeyAlgorithm::EcdsaP256).unwrap();
    (ca.issue(&csr, identity, now() - Duration::from_secs(60), Duration::from_secs(3600)).unwrap(), key)
}

fn trust(ca: &TestCa) -> TrustBundle {
    TrustBundle::from_pem(ca.root_pem().as_bytes()).unwrap()
}

#[test]
fn accepts_good_chain() {
    let ca = TestCa::new("cluster.local");
    let (chain, key) = issue(&ca, ID);
    let v = validate_response(&chain, key, &id(), &trust(&ca), now()).unwrap();
    assert_eq!(v.svid.spiffe_id(), ID);
    assert_eq!(v.svid.chain().len(), 1);
    assert_eq!(v.response_roots, trust(&ca));
    assert_eq!(v.svid.serial().len(), 32);
    assert!(v.svid.chain_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
}

#[test]
fn rejects_bad_responses() {
    let ca = TestCa::new("cluster.local");
    let other_ca = TestCa::new("cluster.local");
    let t = trust(&ca);
    let cases: Vec<(&str, Box<dyn Fn() -> (Vec<String>, WorkloadKey)>, RejectedCert)> = vec![
        (
            "single element",
            Box::new(|| {
                let (mut c, k) = issue(&ca, ID);
                c.truncate(1);
                (c, k)
            }),
            RejectedCert::EmptyChain,
        ),
        (
            "garbage",
            Box::new(|| {
                let (_, k) = issue(&ca, ID);
                (vec!["garbage".into(), "more".into()], k)
            }),
            RejectedCert::Pem { index: 0, reason: "no certificate".into() },
        ),
        (
            "other identity",
            Box::new(|| issue(&ca, "spiffe://cluster.local/ns/ns1/sa/evil")),
            RejectedCert::WrongIdentity {
                expected: ID.into(),
                got: vec!["spiffe://cluster.local/ns/ns1/sa/evil".into()],
            },
        ),
        (
            "key mismatch",
            Box::new(|| {
                let (c, _) = issue(&ca, ID);
                let (_, other_key) = generate_csr(&id(), KeyAlgorithm::EcdsaP256).unwrap();
                (c, other_key)
            }),
            RejectedCert::KeyMismatch,
        ),
        ("foreign root", Box::new(|| issue(&other_ca, ID)), RejectedCert::UnknownRoot),
        (
            "leaf from another CA, trusted root appended",
            Box::new(|| {
                let (mut c, k) = issue(&other_ca, ID);
                c[1] = ca.root_pem().to_string();
                (c, k)
            }),
            RejectedCert::Untrusted(String::new()),
        ),
    ];
    for (name, make, want) in cases {
        let (chain, key) = make();
        let got = validate_response(&chain, key, &id(), &t, now()).map(|_| ()).unwrap_err();
        match (&got, &want) {
            (RejectedCert::Untrusted(_), RejectedCert::Untrusted(_))
            | (RejectedCert::Pem { .. }, RejectedCert::Pem { .. }) => {}
            _ => assert_eq!(got, want, "{name}"),
        }
    }
}

#[test]
fn rejects_expired_and_not_yet_valid() {
    let ca = TestCa::new("cluster.local");
    let (chain, key) = issue(&ca, ID);
    let later = now() + Duration::from_secs(7200);
    assert_eq!(
        validate_response(&chain, key, &id(), &trust(&ca), later).unwrap_err(),
        RejectedCert::NotValidNow
    );
}

#[test]
fn new_root_accepted_when_bundle_overlaps() {
    let old = TestCa::new("cluster.local");
    let new = TestCa::new("cluster.local");
    let (mut chain, key) = issue(&new, ID);
    chain[1] = format!("{}{}", old.root_pem(), new.root_pem());
    let v = validate_response(&chain, key, &id(), &trust(&old), now()).unwrap();
    assert_eq!(v.response_roots.roots().len(), 2);
    assert_eq!(trust(&old).merged(&v.response_roots).roots().len(), 2);
}

#[test]
fn garbage_never_panics() {
    let ca = TestCa::new("cluster.local");
    let t = trust(&ca);
    let inputs = [
        vec![String::new(), String::new()],
        vec!["-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(), ca.root_pem().into()],
        vec!["-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".into(), ca.root_pem().into()],
        vec![ca.root_pem().into(), ca.root_pem().into()],
        vec!["\u{0}\u{ff}".into(); 5],
    ];
    for chain in inputs {
        let (_, key) = generate_csr(&id(), KeyAlgorithm::EcdsaP256).unwrap();
        assert!(validate_response(&chain, key, &id(), &t, now()).is_err());
    }
}

#[test]
fn file_credentials() {
    let ca = TestCa::new("cluster.local");
    let (chain, key) = issue(&ca, ID);
    let key_pem = key.pkcs8_pem();
    let (svid, bundle) =
        validate_files(chain[0].as_bytes(), &key_pem, ca.root_pem().as_bytes(), now()).unwrap();
    assert_eq!(svid.spiffe_id(), ID);
    assert_eq!(bundle, trust(&ca));
    // Root appended to cert-chain.pem is not served as part of the chain.
    let both = format!("{}{}", chain[0], ca.root_pem());
    let (svid, _) = validate_files(both.as_bytes(), &key_pem, ca.root_pem().as_bytes(), now()).unwrap();
    assert_eq!(svid.chain().len(), 1);
    let (_, other) = generate_csr(&id(), KeyAlgorithm::EcdsaP256).unwrap();
    let err =
        validate_files(chain[0].as_bytes(), &other.pkcs8_pem(), ca.root_pem().as_bytes(), now()).unwrap_err();
    assert_eq!(err, RejectedCert::KeyMismatch);
    assert!(matches!(
        validate_files(chain[0].as_bytes(), "junk", ca.root_pem().as_bytes(), now()),
        Err(RejectedCert::Key(_))
    ));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the CA sends, validation returns an error or a checked SVID, never panics.
        #[test]
        fn arbitrary_responses_never_panic(chain in proptest::collection::vec(".{0,200}", 0..4), b64 in "[A-Za-z0-9+/=]{0,400}") {
            let mut chain = chain;
            chain.push(format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"));
            let (_, key) = generate_csr(&id(), KeyAlgorithm::EcdsaP256).unwrap();
            let anchors = TrustBundle::default();
            prop_assert!(validate_response(&chain, key, &id(), &anchors, now()).is_err());
        }
    }
}
