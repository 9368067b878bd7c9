//! Load generator over gRPC/TLS against an in-process CA (P-256 root): throughput and latency
//! percentiles at 50 and 200 concurrent clients. Client and server share the machine's cores.
//! Run: `cargo bench -p ca --bench load`.

use ca::testing::{TestCa, csr_p256, load};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let ca = TestCa::start().await;
        let token = ca.token("bench", "load");
        for (clients, n) in [(50, 20_000), (200, 10_000)] {
            let csrs = tokio::task::spawn_blocking(move || (0..n).map(|_| csr_p256(&[]).0).collect::<Vec<_>>())
                .await
                .expect("csrs");
            let stats = load(ca.addr(), &ca.root_pem(), &token, csrs, clients).await;
            println!(
                "clients={clients} csrs={n} ok={} errors={} elapsed={:.2}s rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.2}ms",
                stats.ok,
                stats.errors.len(),
                stats.elapsed.as_secs_f64(),
                stats.rate(),
                stats.quantile(0.5).as_secs_f64() * 1e3,
                stats.quantile(0.99).as_secs_f64() * 1e3,
                stats.quantile(1.0).as_secs_f64() * 1e3,
            );
        }
    });
}
