#!/usr/bin/env bash
# Interop check of `citadel proxy --sds` against the real agent's SDS server (branch `agent`),
# until both are merged and this becomes a cargo test. Certs are made with openssl (a CA nobody
# here wrote). Usage: AGENT_BIN=/work/wt-agent/target/debug/citadel PROXY_BIN=target/debug/citadel \
#   proxy/scripts/interop-agent.sh
# Checks: 200 with a SPIFFE client cert, handshake refused without one, and a cert rotated in the
# agent's --cert-dir is served on the next handshake.
set -euo pipefail
AGENT_BIN=${AGENT_BIN:?path to a citadel binary with the agent subcommand}
PROXY_BIN=${PROXY_BIN:-target/debug/citadel}
PROXY_BIN=$(realpath "$PROXY_BIN")
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/O=cluster.local" -days 2 -out root-cert.pem -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
leaf() { # name uri
  openssl ecparam -name prime256v1 -genkey -noout -out $1.ec 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in $1.ec -out $1.key
  openssl req -new -key $1.key -subj "/" -out $1.csr 2>/dev/null
  printf "subjectAltName=critical,URI:$2\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n" > $1.ext
  openssl x509 -req -in $1.csr -CA root-cert.pem -CAkey ca.key -CAcreateserial -days 1 -extfile $1.ext -out $1.pem 2>/dev/null
}
leaf httpbin spiffe://cluster.local/ns/default/sa/httpbin
leaf sleep spiffe://cluster.local/ns/default/sa/sleep
mkdir -p agentcerts && cp httpbin.pem agentcerts/cert-chain.pem && cp httpbin.key agentcerts/key.pem && cp root-cert.pem agentcerts/root-cert.pem
PORT=$(port); APP=$(port)
mkdir config
cat > config/mesh.yaml <<YAML
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: httpbin, namespace: default}
spec:
  address: 127.0.0.1
  serviceAccount: httpbin
  labels: {app: httpbin}
  ports: {http: $PORT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
YAML
python3 -m http.server "$APP" --bind 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$APP/" && break; sleep 0.1; done
"$AGENT_BIN" agent --cert-dir agentcerts --socket "$work/sds.sock" --service-account httpbin --admin 127.0.0.1:0 >agent.log 2>&1 & pids+=($!)
for _ in $(seq 50); do [ -S sds.sock ] && break; sleep 0.1; done
"$PROXY_BIN" proxy --config config --workload default/httpbin --inbound "$PORT=127.0.0.1:$APP" --admin 127.0.0.1:0 --sds "$work/sds.sock" >proxy.out 2>proxy.log & pids+=($!)
admin=""
for _ in $(seq 50); do admin=$(python3 -c 'import json,sys; print(json.load(open("proxy.out"))["admin"])' 2>/dev/null) && break; sleep 0.1; done
for _ in $(seq 50); do [ "$(curl -s "http://$admin/ready")" = "LIVE" ] && break; sleep 0.1; done
code=$(curl -sS --max-time 5 -k --cert sleep.pem --key sleep.key -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/")
[ "$code" = 200 ] || { echo "FAIL: mTLS GET gave $code"; exit 1; }
if curl -sS --max-time 5 -k -o /dev/null "https://127.0.0.1:$PORT/" 2>/dev/null; then echo "FAIL: no-cert client accepted"; exit 1; fi
openssl x509 -req -in httpbin.csr -CA root-cert.pem -CAkey ca.key -CAcreateserial -days 1 -extfile httpbin.ext -out agentcerts/cert-chain.pem 2>/dev/null
want=$(openssl x509 -in agentcerts/cert-chain.pem -noout -serial)
for _ in $(seq 50); do
  got=$(echo | openssl s_client -connect "127.0.0.1:$PORT" -cert sleep.pem -key sleep.key 2>/dev/null | openssl x509 -noout -serial || true)
  [ "$got" = "$want" ] && break; sleep 0.2
done
[ "$got" = "$want" ] || { echo "FAIL: rotated cert not served ($got, want $want)"; exit 1; }
echo "PASS: agent SDS -> proxy: mTLS 200, no-cert refused, rotation served"
