//! Signing hot path: CSR check, leaf signing, both, and the raw ECDSA P-256 signature that
//! bounds them (the machine's signing ceiling). Figures in benches/README.md.

use std::hint::black_box;

use ca::{Signer, SpiffeId, csr, profile, store, testing::csr_p256};
use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;

fn bench(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let m = store::generate_root("cluster.local", now, profile::SELF_SIGNED_ROOT_TTL).expect("root");
    let signer = Signer::from_material(&m, Default::default(), now).expect("signer");
    let (csr_pem, _) = csr_p256(&[]);
    let checked = csr::parse_pem(&csr_pem).expect("csr");
    let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bench").expect("id");

    c.bench_function("csr_check_p256", |b| b.iter(|| csr::parse_pem(black_box(&csr_pem)).expect("ok")));
    c.bench_function("sign_leaf_p256_ca", |b| {
        b.iter(|| signer.sign(black_box(&checked), &id, 0, now).expect("ok"))
    });
    c.bench_function("check_and_sign_p256", |b| {
        b.iter(|| {
            let c = csr::parse_pem(black_box(&csr_pem)).expect("ok");
            signer.sign(&c, &id, 0, now).expect("ok")
        })
    });
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("key");
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .expect("key");
    let msg = [7u8; 600];
    c.bench_function("ring_ecdsa_p256_sign_ceiling", |b| {
        b.iter(|| key.sign(&rng, black_box(&msg)).expect("ok"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
