//! `citadel ca audit`: the certificate rotation audit, a pure analysis of the audit log and the
//! CA's own certificates.

use std::{collections::BTreeMap, fmt::Write, path::Path};

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{
    audit::{self, AuditRecord, Decision},
    signer::pem_certs,
    store,
};

/// A CA certificate's expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertExpiry {
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// The longest time an identity held no valid certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub expired_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_issued_at: OffsetDateTime,
}

/// Per-identity findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdentityReport {
    pub issued: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_issued: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub current_expiry: Option<OffsetDateTime>,
    pub longest_gap: Option<Gap>,
    /// SHA-256 fingerprints of public keys used by more than one certificate.
    pub reused_keys: Vec<String>,
    pub denials: BTreeMap<String, usize>,
}

/// The whole audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub identities: BTreeMap<String, IdentityReport>,
    pub roots: Vec<CertExpiry>,
    pub intermediates: Vec<CertExpiry>,
    /// Identities whose newest cert expires within 24h (and has not yet expired).
    pub expiring_without_successor: Vec<String>,
    /// What makes the audit fail (non-zero exit).
    pub problems: Vec<String>,
}

/// Denials of callers that never authenticated are grouped under this name.
pub const UNAUTHENTICATED: &str = "(unauthenticated)";

/// Analyzes the records. Gaps are measured from a cert's notAfter to the *issuance time* of the
/// next one: notBefore is back-dated 2 minutes (Istio's clock-skew grace), so it would hide
/// short lapses during which the workload held no valid certificate.
pub fn analyze(
    records: &[AuditRecord],
    roots: &[CertExpiry],
    intermediates: &[CertExpiry],
    now: OffsetDateTime,
) -> AuditReport {
    let mut by_id: BTreeMap<String, Vec<&AuditRecord>> = BTreeMap::new();
    let mut identities: BTreeMap<String, IdentityReport> = BTreeMap::new();
    for r in records {
        let id = r.identity.clone().unwrap_or_else(|| UNAUTHENTICATED.to_string());
        match r.decision {
            Decision::Issued => by_id.entry(id).or_default().push(r),
            Decision::Denied => {
                *identities.entry(id).or_default().denials.entry(r.reason.clone()).or_default() += 1
            }
        }
    }
    let mut problems = Vec::new();
    let mut expiring = Vec::new();
    for (id, mut certs) in by_id {
        certs.sort_by_key(|r| r.time);
        let rep = identities.entry(id.clone()).or_default();
        rep.issued = certs.len();
        rep.last_issued = certs.last().map(|r| r.time);
        let mut covered_until: Option<OffsetDateTime> = None;
        let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &certs {
            if let (Some(until), true) = (covered_until, r.not_after.is_some()) {
                let gap = r.time - until;
                if gap > Duration::ZERO
                    && rep.longest_gap.as_ref().is_none_or(|g| gap.whole_seconds() > g.seconds)
                {
                    rep.longest_gap =
                        Some(Gap { seconds: gap.whole_seconds(), expired_at: until, next_issued_at: r.time });
                }
            }
            if let Some(na) = r.not_after {
                covered_until = Some(covered_until.map_or(na, |u| u.max(na)));
            }
            if let Some(k) = r.public_key_sha256.as_deref() {
                *keys.entry(k).or_default() += 1;
            }
        }
        rep.current_expiry = covered_until;
        rep.reused_keys = keys.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k.to_string()).collect();
        if let Some(g) = &rep.longest_gap {
            problems.push(format!(
                "{id}: went {}s without a valid certificate (expired {}, next issued {})",
                g.seconds, g.expired_at, g.next_issued_at
            ));
        }
        if !rep.reused_keys.is_empty() {
            problems
                .push(format!("{id}: public key reused across rotations ({})", rep.reused_keys.join(", ")));
        }
        if let Some(exp) = covered_until
            && exp > now
            && exp - now <= Duration::hours(24)
        {
            expiring.push(id.clone());
        }
    }
    for r in roots {
        if r.not_after - now <= Duration::days(30) {
            problems.push(format!("root {} expires {} (within 30 days)", r.subject, r.not_after));
        }
    }
    AuditReport {
        identities,
        roots: roots.to_vec(),
        intermediates: intermediates.to_vec(),
        expiring_without_successor: expiring,
        problems,
    }
}

fn expiries(pem: &str) -> Vec<CertExpiry> {
    pem_certs(pem)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| {
            X509Certificate::from_der(d)
                .ok()
                .map(|(_, x)| (x.subject().to_string(), x.validity().not_after.to_datetime()))
        })
        .map(|(subject, not_after)| CertExpiry { subject, not_after })
        .collect()
}

/// Errors reading the directory for an audit.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Audit(#[from] audit::ReadError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Reads `DIR/audit.jsonl`, `root-cert.pem` and `cert-chain.pem` and analyzes them.
pub fn audit_dir(dir: &Path, now: OffsetDateTime) -> Result<AuditReport, ReportError> {
    let records = audit::read_records(&dir.join(store::AUDIT_LOG))?;
    let (roots, intermediates) = match store::read_material(dir)? {
        Some(m) => {
            let roots = expiries(&m.root_cert_pem);
            let root_subjects: Vec<_> = pem_certs(&m.root_cert_pem).unwrap_or_default();
            let chain: Vec<CertExpiry> = pem_certs(&m.cert_chain_pem)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !root_subjects.contains(c))
                .flat_map(|c| expiries(&crate::signer::der_to_pem(&c)))
                .collect();
            (roots, chain)
        }
        None => (vec![], vec![]),
    };
    Ok(analyze(&records, &roots, &intermediates, now))
}

/// Human-readable rendering.
pub fn render_text(r: &AuditReport) -> String {
    let mut s = String::new();
    for (id, rep) in &r.identities {
        let _ = writeln!(s, "{id}");
        let fmt_t = |t: Option<OffsetDateTime>| t.map_or("-".to_string(), |t| t.to_string());
        let _ = writeln!(
            s,
            "  issued {}  last {}  expires {}",
            rep.issued,
            fmt_t(rep.last_issued),
            fmt_t(rep.current_expiry)
        );
        if let Some(g) = &rep.longest_gap {
            let _ = writeln!(
                s,
                "  longest gap {}s (expired {}, next issued {})",
                g.seconds, g.expired_at, g.next_issued_at
            );
        }
        for k in &rep.reused_keys {
            let _ = writeln!(s, "  reused key sha256:{k}");
        }
        for (reason, n) in &rep.denials {
            let _ = writeln!(s, "  denied {reason}: {n}");
        }
    }
    for c in &r.roots {
        let _ = writeln!(s, "root {} expires {}", c.subject, c.not_after);
    }
    for c in &r.intermediates {
        let _ = writeln!(s, "intermediate {} expires {}", c.subject, c.not_after);
    }
    for id in &r.expiring_without_successor {
        let _ = writeln!(s, "expiring within 24h without successor: {id}");
    }
    for p in &r.problems {
        let _ = writeln!(s, "PROBLEM: {p}");
    }
    if r.problems.is_empty() {
        let _ = writeln!(s, "OK: no gaps, no key reuse, no root expiring within 30 days");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).expect("t")
    }

    fn issued(id: &str, at: i64, ttl: i64, key: &str) -> AuditRecord {
        AuditRecord {
            time: t(at),
            peer: None,
            auth_method: AuthMethod::BootstrapToken,
            identity: Some(id.into()),
            requested_sans: vec![],
            decision: Decision::Issued,
            reason: "issued".into(),
            code: "Ok".into(),
            message: None,
            serial: Some(format!("{at:x}")),
            not_before: Some(t(at - 120)),
            not_after: Some(t(at + ttl)),
            public_key_sha256: Some(key.into()),
            issuer: Some("O=cluster.local".into()),
        }
    }

    #[test]
    fn finds_gap_reuse_expiring_and_denials() {
        let a = "spiffe://td/ns/a/sa/a";
        let b = "spiffe://td/ns/b/sa/b";
        let mut denied = issued(a, 5, 0, "");
        denied.decision = Decision::Denied;
        denied.reason = "ttl_over_max".into();
        let mut unauth = denied.clone();
        unauth.identity = None;
        unauth.reason = "auth_token_expired".into();
        let records = vec![
            issued(a, 0, 100, "k1"),
            issued(a, 50, 100, "k2"),   // overlaps: no gap
            issued(a, 400, 100, "k3"),  // lapse 150..400 = 250s
            issued(a, 450, 100, "k1"),  // key reuse
            issued(b, 0, 10_000, "k9"), // expires within 24h of now=1000
            denied,
            unauth,
        ];
        let roots = [CertExpiry { subject: "O=td".into(), not_after: t(86400 * 365) }];
        let r = analyze(&records, &roots, &[], t(1000));
        let ra = &r.identities[a];
        assert_eq!(ra.issued, 4);
        assert_eq!(ra.longest_gap.as_ref().map(|g| g.seconds), Some(250));
        assert_eq!(ra.reused_keys, vec!["k1".to_string()]);
        assert_eq!(ra.denials["ttl_over_max"], 1);
        assert_eq!(r.identities[UNAUTHENTICATED].denials["auth_token_expired"], 1);
        let rb = &r.identities[b];
        assert_eq!((rb.longest_gap.clone(), rb.reused_keys.len()), (None, 0));
        assert_eq!(r.expiring_without_successor, vec![b.to_string()]);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    }

    #[test]
    fn root_expiring_within_30_days_is_a_problem() {
        let roots = [CertExpiry { subject: "O=td".into(), not_after: t(29 * 86400) }];
        let r = analyze(&[], &roots, &[], t(0));
        assert_eq!(r.problems.len(), 1);
        assert!(render_text(&r).contains("PROBLEM: root O=td expires"));
        let ok = analyze(&[], &[CertExpiry { subject: "O=td".into(), not_after: t(31 * 86400) }], &[], t(0));
        assert!(ok.problems.is_empty());
    }
}
