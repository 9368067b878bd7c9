//! Helpers shared by the CA's socket tests.
#![allow(dead_code)]

use ca::{
    audit,
    signer::{pem_certs, verify_issued_by},
    store,
    testing::TestCa,
};
use x509_parser::prelude::{FromDer, X509Certificate};

pub const ID: &str = "spiffe://cluster.local/ns/default/sa/web";

pub fn audit_records(ca: &TestCa) -> Vec<audit::AuditRecord> {
    audit::read_records(&ca.dir().join(store::AUDIT_LOG)).expect("audit log parses")
}

/// Verifies `chain` (response order) against the roots in `bundle_pem` at the current time.
pub fn chain_verifies(chain: &[String], bundle_pem: &str) -> Result<(), String> {
    let leaf = pem_certs(&chain[0])?.remove(0);
    let roots = pem_certs(bundle_pem)?;
    let mut issuer_candidates: Vec<Vec<u8>> =
        chain[1..chain.len() - 1].iter().flat_map(|p| pem_certs(p).unwrap_or_default()).collect();
    issuer_candidates.extend(roots.iter().cloned());
    let (_, x) = X509Certificate::from_der(&leaf).map_err(|e| e.to_string())?;
    if !x.validity().is_valid() {
        return Err("leaf not valid now".into());
    }
    let mut cur = leaf;
    for _ in 0..5 {
        if roots.iter().any(|r| verify_issued_by(&cur, r).is_ok()) {
            return Ok(());
        }
        cur =
            issuer_candidates.iter().find(|c| verify_issued_by(&cur, c).is_ok()).ok_or("no issuer")?.clone();
    }
    Err("chain too long".into())
}
