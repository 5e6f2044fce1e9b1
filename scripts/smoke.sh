#!/usr/bin/env bash
# Smoke checks of a running `bizra serve`, the runbook's curl checks in one script.
#
# usage: scripts/smoke.sh URL [METRICS_URL]
#   URL          the API, e.g. http://127.0.0.1:9944
#   METRICS_URL  the metrics endpoint (default: URL's host on PROMETHEUS_PORT, 9464, /metrics)
#   BIZRA_API_TOKEN  when set, also signs an attestation and verifies it (and a corrupted copy)
#
# Exits non-zero on the first failed check; prints one line per check. Needs curl and python3
# (for JSON; no jq). Every request has a timeout, so the script always ends.
set -euo pipefail

URL="${1:?usage: scripts/smoke.sh URL [METRICS_URL]}"
URL="${URL%/}"
host="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname)' "$URL")"
METRICS_URL="${2:-http://${host}:${PROMETHEUS_PORT:-9464}/metrics}"
CURL=(curl --silent --show-error --max-time 10)

ok() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1" >&2; exit 1; }
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {"json": json, "d": d}))' "$1"; }
status() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@"; }

[ "$(status "$URL/healthz")" = 200 ] && ok "GET /healthz" || fail "GET /healthz"
[ "$(status "$URL/readyz")" = 200 ] && ok "GET /readyz" || fail "GET /readyz (not ready: $("${CURL[@]}" "$URL/readyz"))"

head_json="$("${CURL[@]}" "$URL/api/v1/head")"
tip="$(json 'd["finalized_tip"]' <<<"$head_json")"
ok "GET /api/v1/head (head $(json 'd["head"]' <<<"$head_json"), finalized height $(json 'd["finalized_height"]' <<<"$head_json"))"

fin="$("${CURL[@]}" -X POST -H 'content-type: application/json' -d "{\"block_hash\": \"$tip\"}" "$URL/api/v1/finality")"
[ "$(json 'd["finalized"]' <<<"$fin")" = True ] && ok "POST /api/v1/finality (tip finalized, $(json 'd["latency_us"]' <<<"$fin") us)" \
  || fail "POST /api/v1/finality: $fin"
code="$(status -X POST -H 'content-type: application/json' -d '{"block_hash": "0x'"$(printf '7%.0s' {1..64})"'"}' "$URL/api/v1/finality")"
[ "$code" = 404 ] && ok "POST /api/v1/finality unknown block -> 404" || fail "unknown block gave $code"
code="$(status -X POST -H 'content-type: application/json' -d '{"block_hash": "0x12"}' "$URL/api/v1/finality")"
[ "$code" = 422 ] && ok "POST /api/v1/finality malformed -> 422" || fail "malformed hash gave $code"

code="$(status -X POST -H 'content-type: application/json' -d '{"evidence": "smoke"}' "$URL/api/v1/poi/generate")"
case "$code" in
  401|503) ok "POST /api/v1/poi/generate without token -> $code" ;;
  *) fail "generate without a token gave $code" ;;
esac

if [ -n "${BIZRA_API_TOKEN:-}" ]; then
  gen="$("${CURL[@]}" -X POST -H 'content-type: application/json' -H "Authorization: Bearer $BIZRA_API_TOKEN" \
         -d '{"evidence": "smoke test"}' "$URL/api/v1/poi/generate")"
  req="$(json 'json.dumps({k: d[k] for k in ("body_hex", "signature", "public_key")})' <<<"$gen")"
  ok "POST /api/v1/poi/generate (id $(json 'd["attestation_id"]' <<<"$gen"))"
  v="$("${CURL[@]}" -X POST -H 'content-type: application/json' -d "$req" "$URL/api/v1/poi/verify")"
  [ "$(json 'd["valid"]' <<<"$v")" = True ] && ok "POST /api/v1/poi/verify honest -> valid" || fail "verify honest: $v"
  bad="$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); s = d["signature"]; d["signature"] = s[:-2] + ("00" if s[-2:] != "00" else "01"); print(json.dumps(d))' "$req")"
  v="$("${CURL[@]}" -X POST -H 'content-type: application/json' -d "$bad" "$URL/api/v1/poi/verify")"
  [ "$(json 'd["valid"]' <<<"$v")" = False ] && ok "POST /api/v1/poi/verify corrupted -> invalid" || fail "verify corrupted: $v"
fi

metrics="$("${CURL[@]}" "$METRICS_URL")" || fail "GET $METRICS_URL"
for name in bizra_poi_generate_total bizra_poi_verify_total bizra_poi_verify_fail_total bizra_finality_checks_total \
            bizra_poi_generate_seconds_bucket bizra_poi_verify_seconds_bucket bizra_finality_check_seconds_bucket \
            bizra_poi_verify_batch_size_bucket; do
  grep -q "^$name" <<<"$metrics" || fail "metric $name missing at $METRICS_URL"
done
ok "GET $METRICS_URL (the metric names of docs/design.md present)"
