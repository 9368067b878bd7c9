"""Interop client for the Citadel CA, written against ca/proto/ca.proto only.

Generates grpcio stubs into a temp dir, makes a key and CSR with `openssl req`, calls
IstioCertificateService/CreateCertificate over TLS with a bearer token, then checks the chain with
`openssl verify`, with `cryptography`'s X.509 verifier and with pkilint. Prints one JSON object.

usage: interop_client.py PROTO_DIR ADDR BUNDLE_PEM_FILE TOKEN_FILE WORKDIR
"""
import json
import os
import subprocess
import sys
from importlib import resources


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main():
    proto_dir, addr, bundle_file, token_file, work = sys.argv[1:6]
    out = {}
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs, exist_ok=True)
    include = str(resources.files("grpc_tools") / "_proto")
    gen = run([sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir, "-I", include,
               "--python_out", stubs, "--grpc_python_out", stubs, os.path.join(proto_dir, "ca.proto")])
    if gen.returncode != 0:
        raise SystemExit("protoc failed: " + gen.stderr)
    sys.path.insert(0, stubs)
    import grpc  # noqa: E402
    import ca_pb2  # noqa: E402
    import ca_pb2_grpc  # noqa: E402

    key, csr = os.path.join(work, "key.pem"), os.path.join(work, "csr.pem")
    r = run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-subj", "/O=interop", "-out", csr])
    if r.returncode != 0:
        raise SystemExit("openssl req failed: " + r.stderr)
    bundle = open(bundle_file, "rb").read()
    token = open(token_file).read().strip()
    creds = grpc.ssl_channel_credentials(root_certificates=bundle)
    channel = grpc.secure_channel("ipv4:" + addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
    md = [("authorization", "Bearer " + token)]
    req = ca_pb2.IstioCertificateRequest(csr=open(csr).read(), validity_duration=3600)
    resp = stub.CreateCertificate(req, metadata=md, timeout=20)
    chain = list(resp.cert_chain)
    out["chain_len"] = len(chain)

    # A foreign client sees Istio's status code and message for a TTL over the max.
    try:
        stub.CreateCertificate(ca_pb2.IstioCertificateRequest(csr=req.csr, validity_duration=91 * 86400),
                               metadata=md, timeout=20)
        out["ttl_error"] = None
    except grpc.RpcError as e:
        out["ttl_error"] = [e.code().name, e.details()]

    leaf_f, inter_f, roots_f = (os.path.join(work, n) for n in ("leaf.pem", "inter.pem", "roots.pem"))
    open(leaf_f, "w").write(chain[0])
    open(inter_f, "w").write("".join(chain[1:-1]))
    open(roots_f, "w").write(chain[-1])
    cmd = ["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", roots_f]
    if len(chain) > 2:
        cmd += ["-untrusted", inter_f]
    v = run(cmd + [leaf_f])
    out["openssl_verify"] = (v.stdout + v.stderr).strip()

    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store
    leaf = x509.load_pem_x509_certificate(chain[0].encode())
    roots = x509.load_pem_x509_certificates(chain[-1].encode())
    inters = x509.load_pem_x509_certificates("".join(chain[1:-1]).encode()) if len(chain) > 2 else []
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    verified = verifier.verify(leaf, inters)
    out["cryptography_sans"] = [str(n.value) for n in verified.subjects]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    out["san_critical"] = san.critical
    out["subject"] = leaf.subject.rfc4514_string()
    out["validity_seconds"] = int((leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds())
    out["public_key_matches_csr"] = (
        leaf.public_key().public_numbers()
        == x509.load_pem_x509_csr(open(csr, "rb").read()).public_key().public_numbers())

    lint = run(["lint_pkix_cert", "lint", leaf_f])
    out["pkilint"] = [line for line in (lint.stdout + lint.stderr).splitlines() if line.strip()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
