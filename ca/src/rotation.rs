//! Root rotation for a self-signed CA with no downtime (issue 3; Istio's schedule from
//! ISTIO-FACTS §1.9): at 80% of the root's life a new root is made, the bundle carries old and
//! new roots, new certs are signed by the new root, and the old root is dropped once every cert
//! it could have signed has expired (or on `rotate-root --finish`).
//!
//! Istio re-issues the root with the *same* key; we make a new key so a rotation also retires
//! the old key, which is why old and new roots must both be trusted for a while.

use std::{path::Path, time::Duration};

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{
    profile::CLOCK_SKEW_GRACE,
    signer::{der_to_pem, pem_certs},
    store::{self, StoreError},
};

/// Istio's `CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE`: rotate when less than 20% of
/// the root's life remains.
pub const GRACE_PERCENT: u32 = 20;

/// What the rotation schedule says to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Keep,
    /// Make a new root and add it to the bundle.
    Rotate,
    /// Every cert under the older roots has expired: drop them from the bundle.
    DropOldRoots,
}

/// The schedule, a pure function: `signing_root` is the current self-signed signing cert's
/// validity, `old_roots` whether the bundle still holds other roots.
pub fn plan(
    now: OffsetDateTime,
    signing_not_before: OffsetDateTime,
    signing_not_after: OffsetDateTime,
    old_roots: bool,
    max_workload_ttl: Duration,
) -> RotationStep {
    // A cert signed by an old root was issued before the new root existed, so it expires by
    // new notBefore + max TTL (+ the back-dating grace, for safety).
    if old_roots && now >= signing_not_before + max_workload_ttl + CLOCK_SKEW_GRACE {
        return RotationStep::DropOldRoots;
    }
    let life = signing_not_after - signing_not_before;
    if now >= signing_not_after - life * (GRACE_PERCENT as f64 / 100.0) {
        return RotationStep::Rotate;
    }
    RotationStep::Keep
}

/// Result of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub new_root_not_after: OffsetDateTime,
    /// Roots in the published bundle after the step.
    pub bundle_roots: usize,
}

/// Makes a new root (same subject and lifetime as the current one) and publishes old+new
/// bundle, then the new key and cert. Refuses a plug-in CA: its root lives offline.
pub fn rotate_root(dir: &Path, now: OffsetDateTime) -> Result<Rotated, StoreError> {
    let m = store::read_material(dir)?
        .ok_or_else(|| StoreError::NotSelfSigned(format!("{}: no CA", dir.display())))?;
    let ca = pem_certs(&m.ca_cert_pem).map_err(|e| StoreError::NotSelfSigned(e.to_string()))?;
    let roots = pem_certs(&m.root_cert_pem).map_err(|e| StoreError::NotSelfSigned(e.to_string()))?;
    let ca_der = ca.first().ok_or_else(|| StoreError::NotSelfSigned("ca-cert.pem is empty".into()))?;
    if !roots.contains(ca_der) {
        return Err(StoreError::NotSelfSigned(
            "plug-in CA (ca-cert.pem is not a root in root-cert.pem): rotate it with the offline root".into(),
        ));
    }
    let (_, cert) =
        X509Certificate::from_der(ca_der).map_err(|e| StoreError::NotSelfSigned(e.to_string()))?;
    let org = cert
        .subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())
        .unwrap_or("cluster.local")
        .to_string();
    let life = cert.validity().not_after.to_datetime() - cert.validity().not_before.to_datetime();
    let ttl = Duration::try_from(life).unwrap_or(crate::profile::SELF_SIGNED_ROOT_TTL);
    let mut new = store::generate_root(&org, now, ttl)?;
    let mut bundle = new.root_cert_pem.clone();
    for r in &roots {
        bundle.push_str(&der_to_pem(r));
    }
    new.root_cert_pem = bundle;
    store::write_material(dir, &new)?;
    tracing::info!(target: "ca", dir = %dir.display(), roots = roots.len() + 1, "root rotated");
    Ok(Rotated { new_root_not_after: now + ttl, bundle_roots: roots.len() + 1 })
}

/// Drops every root except the signing one from `root-cert.pem`.
pub fn finish(dir: &Path) -> Result<Rotated, StoreError> {
    let m = store::read_material(dir)?
        .ok_or_else(|| StoreError::NotSelfSigned(format!("{}: no CA", dir.display())))?;
    let ca = pem_certs(&m.ca_cert_pem).map_err(|e| StoreError::NotSelfSigned(e.to_string()))?;
    let roots = pem_certs(&m.root_cert_pem).map_err(|e| StoreError::NotSelfSigned(e.to_string()))?;
    let ca_der = ca.first().ok_or_else(|| StoreError::NotSelfSigned("ca-cert.pem is empty".into()))?;
    if !roots.contains(ca_der) {
        return Err(StoreError::NotSelfSigned("plug-in CA: root-cert.pem is managed by its owner".into()));
    }
    let (_, cert) =
        X509Certificate::from_der(ca_der).map_err(|e| StoreError::NotSelfSigned(e.to_string()))?;
    store::write_atomic(&dir.join(store::ROOT_CERT), der_to_pem(ca_der).as_bytes(), 0o644)?;
    tracing::info!(target: "ca", dir = %dir.display(), dropped = roots.len() - 1, "old roots dropped");
    Ok(Rotated { new_root_not_after: cert.validity().not_after.to_datetime(), bundle_roots: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::MAX_WORKLOAD_TTL;

    #[test]
    fn plan_table() {
        let nb = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        let day = time::Duration::days(1);
        let na = nb + day * 100;
        let cases = [
            (nb, false, RotationStep::Keep),
            (nb + day * 79, false, RotationStep::Keep),
            (nb + day * 80, false, RotationStep::Rotate),
            (nb + day * 99, false, RotationStep::Rotate),
            (nb + day * 10, true, RotationStep::Keep),
            (nb + day * 90 + time::Duration::minutes(2), true, RotationStep::DropOldRoots),
            (nb + day * 95, true, RotationStep::DropOldRoots),
        ];
        for (now, old, want) in cases {
            assert_eq!(plan(now, nb, na, old, MAX_WORKLOAD_TTL), want, "{now}");
        }
    }

    #[test]
    fn rotate_then_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let before = store::load_or_create(dir.path(), "cluster.local", Default::default(), now).expect("ca");
        let r = rotate_root(dir.path(), now).expect("rotate");
        assert_eq!(r.bundle_roots, 2);
        let after = store::load_or_create(dir.path(), "cluster.local", Default::default(), now).expect("ca");
        assert_ne!(after.ca_cert_der(), before.ca_cert_der());
        assert_eq!(after.roots_der().len(), 2);
        assert!(after.roots_der().contains(&before.ca_cert_der().to_vec()));
        assert_eq!(after.issuer_name(), "O=cluster.local");
        finish(dir.path()).expect("finish");
        let done = store::load_or_create(dir.path(), "cluster.local", Default::default(), now).expect("ca");
        assert_eq!(done.roots_der(), &[after.ca_cert_der().to_vec()]);
    }

    #[test]
    fn plugin_ca_is_not_rotated_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let mut m =
            store::generate_root("cluster.local", now, crate::profile::SELF_SIGNED_ROOT_TTL).expect("root");
        // ca-cert.pem is not among the roots: an intermediate under an offline root.
        m.root_cert_pem = store::generate_root("offline", now, crate::profile::SELF_SIGNED_ROOT_TTL)
            .expect("root")
            .root_cert_pem;
        store::write_material(dir.path(), &m).expect("write");
        let err = rotate_root(dir.path(), now).expect_err("plug-in");
        assert!(err.to_string().contains("rotate it with the offline root"), "{err}");
        assert!(finish(dir.path()).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(store::ROOT_CERT)).expect("bundle"),
            m.root_cert_pem
        );
    }
}
