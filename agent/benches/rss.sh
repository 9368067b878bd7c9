#!/usr/bin/env bash
# Idle agent RSS: a release `citadel ca serve` and `citadel agent` on temp dirs; reads the agent's
# VmRSS/VmHWM after it has served a cert and idled. Usage: agent/benches/rss.sh [path/to/citadel]
# (AGENT_BIN=path runs that agent binary instead; DETAIL=script prints a per-mapping breakdown).
set -euo pipefail
BIN=${1:-target/release/citadel}
T=$(mktemp -d)
cleanup() { kill "$AGENT" "$CA" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mkdir "$T/ca"
"$BIN" ca serve --dir "$T/ca" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 >"$T/ca.out" 2>/dev/null &
CA=$!
for _ in $(seq 50); do [ -s "$T/ca.out" ] && break; sleep 0.1; done
ADDR=$(sed -n 's/^listening on //p' "$T/ca.out")
"$BIN" ca token --dir "$T/ca" --namespace bench --service-account bench >"$T/token"
if [ -n "${AGENT_BIN:-}" ]; then  # e.g. target/release/examples/minimal_agent
  "$AGENT_BIN" "$ADDR" "$T/ca/root-cert.pem" "$T/token" "$T/sock" bench bench >/dev/null 2>&1 &
else
  "$BIN" agent --ca-addr "$ADDR" --ca-root "$T/ca/root-cert.pem" --token-file "$T/token" \
    --socket "$T/sock" --namespace bench --service-account bench --admin 127.0.0.1:0 >/dev/null 2>&1 &
fi
AGENT=$!
"$BIN" agent wait --socket "$T/sock" --timeout 30s >/dev/null
"$BIN" agent wait --socket "$T/sock" --timeout 30s >/dev/null   # one SDS client served
sleep "${IDLE_SECONDS:-5}"
grep -E "VmRSS|VmHWM|RssAnon|RssFile|Threads" "/proc/$AGENT/status"
[ -n "${DETAIL:-}" ] && bash "$DETAIL" "$AGENT"
