#!/usr/bin/env bash
# Starts Weft on this machine: a global control plane and a standalone zone,
# applies an example Kuma policy and reads it back. Runs until Ctrl-C.
#   bash scripts/demo.sh            # keeps running; Ctrl-C stops everything
#   bash scripts/demo.sh --exit     # stops after the walk-through (for checks)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

EXIT_AFTER=0
[ "${1:-}" = "--exit" ] && EXIT_AFTER=1

echo "== building (release)" >&2
cargo build --release --locked -p weft-global -p weft-zone

DATA=demo-data
mkdir -p "$DATA"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# start NAME LOG ARGS...: starts a control plane and waits for its "ready" line.
start() {
  local name=$1 log=$2; shift 2
  "$@" >"$log.out" 2>"$log.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    if grep -q "ready api=" "$log.out" 2>/dev/null; then
      sed -n 's/.*ready api=//p' "$log.out"
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "$name exited; its log:" >&2; cat "$log.err" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "$name did not become ready in 10 s; its log:" >&2; cat "$log.err" >&2; exit 1
}

GLOBAL=$(start weft-global "$DATA/global" target/release/weft-global run --data-dir "$DATA/global")
ZONE=$(start weft-zone "$DATA/zone" target/release/weft-zone run --zone zone-1 --data-dir "$DATA/zone")
GTOKEN=$(cat "$DATA/global/admin.token")
ZTOKEN=$(cat "$DATA/zone/admin.token")
echo "global: http://$GLOBAL  (token in $DATA/global/admin.token)"
echo "zone-1: http://$ZONE  (token in $DATA/zone/admin.token)"

set -x
curl -sS "http://$GLOBAL/"
curl -sS -X PUT "http://$GLOBAL/meshes/default/meshtimeouts/backend-timeouts" \
  -H "Authorization: Bearer $GTOKEN" -H 'Content-Type: application/yaml' \
  --data-binary @examples/meshtimeout.yaml
curl -sS "http://$GLOBAL/meshes/default/meshtimeouts/backend-timeouts" \
  -H "Authorization: Bearer $GTOKEN" -H 'Accept: application/yaml'
curl -sS -X PUT "http://$ZONE/meshes/default/meshtimeouts/backend-timeouts" \
  -H "Authorization: Bearer $ZTOKEN" --data-binary @examples/meshtimeout.yaml
curl -sS --fail-with-body "http://$ZONE/meshes/default/meshtimeouts" -H "Authorization: Bearer $ZTOKEN"
set +x
echo
[ "$EXIT_AFTER" = 1 ] && exit 0
echo "Weft is running (logs in $DATA/*.err). Ctrl-C stops it."
wait
