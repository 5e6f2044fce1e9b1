#!/usr/bin/env bash
# The reference load test on this machine: a fresh `bizra serve` on loopback over a generated
# 100K-attestation dataset (1K validators, 5K blocks), then 64 users for 60 s on every endpoint.
#   scripts/loadtest_local.sh [DATA_DIR] [extra bizra loadtest flags...]
set -u
cd "$(dirname "$0")/.."
DATA=${1:-/tmp/bizra-loadtest-data}; shift || true
BIN=.venv/bin
[ -f "$DATA/attestations.parquet" ] || $BIN/bizra generate --out "$DATA" --validators 1000 --blocks 5000 \
    --attestations 100000 --seed 3 --quiet
RPC_PORT=19944 PROMETHEUS_PORT=19464 BIZRA_API_TOKEN=loadtest-token BIZRA_THREADS=2 \
    $BIN/bizra serve --data "$DATA" --host 127.0.0.1 > "$DATA/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:19944/readyz >/dev/null && break; sleep 0.2; done
$BIN/bizra loadtest --url http://127.0.0.1:19944 --users 64 --duration 60s --token loadtest-token \
    --metrics-url http://127.0.0.1:19464/metrics "$@"
