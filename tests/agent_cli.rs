//! `citadel agent` end to end with real processes: `citadel ca serve` issues 10-second certs, the
//! agent rotates them, Python's `spiffe` client sees the SVID change, `citadel agent wait` gates
//! start-up, and `citadel ca audit` finds no gap and no key reuse.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
};

const ID: &str = "spiffe://cluster.local/ns/ns1/sa/sa1";

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn citadel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_citadel")).args(args).output().expect("run citadel")
}

/// Spawns citadel and returns it with the value after `prefix` on its first stdout line.
fn spawn(args: &[&str], prefix: &str) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn citadel");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("read first line");
    let value =
        line.trim().strip_prefix(prefix).unwrap_or_else(|| panic!("{line:?} lacks {prefix:?}")).to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (Proc(child), value)
}

fn get(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect admin");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

#[test]
fn ten_second_certs_rotate_without_gap_with_real_processes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca_dir = tmp.path().join("ca");
    std::fs::create_dir(&ca_dir).expect("mkdir");
    let (_ca, ca_addr) = spawn(
        &["ca", "serve", "--dir", s(&ca_dir), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
        "listening on ",
    );
    let tok =
        citadel(&["ca", "token", "--dir", s(&ca_dir), "--namespace", "ns1", "--service-account", "sa1"]);
    assert!(tok.status.success(), "{}", String::from_utf8_lossy(&tok.stderr));
    let token_file = tmp.path().join("istio-token");
    std::fs::write(&token_file, &tok.stdout).expect("token");
    let socket = tmp.path().join("socket");

    // `agent wait` on a socket nobody serves yet fails after its timeout.
    let early = citadel(&["agent", "wait", "--socket", s(&socket), "--timeout", "1s"]);
    assert_eq!(early.status.code(), Some(1));

    let (_agent, admin) = spawn(
        &[
            "agent",
            "--ca-addr",
            &ca_addr,
            "--ca-root",
            s(&ca_dir.join("root-cert.pem")),
            "--token-file",
            s(&token_file),
            "--socket",
            s(&socket),
            "--namespace",
            "ns1",
            "--service-account",
            "sa1",
            "--cert-ttl",
            "10s",
            "--admin",
            "127.0.0.1:0",
        ],
        "admin on ",
    );
    let admin: SocketAddr = admin.parse().expect("admin addr");
    let wait = citadel(&["agent", "wait", "--socket", s(&socket), "--timeout", "30s"]);
    assert!(wait.status.success(), "agent wait: {}", String::from_utf8_lossy(&wait.stderr));
    assert_eq!(get(admin, "/ready"), 200);

    // Python's spiffe client: at least 3 SVID changes within 40 s.
    let py = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/agent_spiffe_client.py"))
        .args([s(&socket), ID, "3", "40"])
        .output()
        .expect("run python3 (install tests/requirements.txt with `make deps`)");
    let out = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "python spiffe client: {out}\n{}", String::from_utf8_lossy(&py.stderr));
    assert!(out.contains(ID), "{out}");

    // The CA's rotation audit: every successor was issued before its predecessor expired.
    let audit = citadel(&["ca", "audit", "--dir", s(&ca_dir), "--json"]);
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "ca audit found a problem:\n{report}\n{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(report.contains(ID), "{report}");
    assert_eq!(get(admin, "/ready"), 200);
}
