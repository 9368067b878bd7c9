"""SPIFFE Workload API check with Python's `spiffe` package (a client nobody here wrote).

usage: agent_spiffe_client.py SOCKET EXPECTED_SPIFFE_ID MIN_CHANGES TIMEOUT_SECONDS
Fetches the SVID and the bundle, then streams X.509 contexts until the SVID changed
MIN_CHANGES times (exit 0) or the timeout passed (exit 1). Prints one JSON line.
"""
import json
import sys
import threading

import grpc

# grpc-core >= 1.57 sends the percent-encoded socket path as :authority on Unix sockets
# (grpc/grpc#38142); h2, under tonic, rejects that as a malformed authority (hyperium/h2#487,
# unmerged). grpc-go and the Rust spiffe client send "localhost". Until either side changes,
# Python clients must set the authority; the spiffe package exposes no channel options, so the
# test sets it on the grpc module it calls.
_insecure_channel = grpc.insecure_channel


def _with_authority(target, options=None, compression=None):
    return _insecure_channel(target, list(options or []) + [("grpc.default_authority", "localhost")], compression)


grpc.insecure_channel = _with_authority

from spiffe import TrustDomain, WorkloadApiClient  # noqa: E402

sock, expected, min_changes, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
client = WorkloadApiClient(f"unix://{sock}", default_timeout=10)

svid = client.fetch_x509_svid()
assert str(svid.spiffe_id) == expected, svid.spiffe_id
bundle = client.fetch_x509_bundles().get_bundle_for_trust_domain(TrustDomain("cluster.local"))
assert bundle is not None and len(bundle.x509_authorities) >= 1

serials = []
done = threading.Event()
errors = []


def on_success(ctx):
    s = ctx.default_svid.leaf.serial_number
    if not serials or serials[-1] != s:
        serials.append(s)
    if len(serials) > min_changes:
        done.set()


def on_error(e):
    errors.append(repr(e))


handle = client.stream_x509_contexts(on_success, on_error)
ok = done.wait(timeout)
handle.cancel()
client.close()
print(json.dumps({"spiffe_id": str(svid.spiffe_id), "changes": len(serials) - 1, "errors": errors}))
sys.exit(0 if ok else 1)
