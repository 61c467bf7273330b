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

# start LOG ARGS...: starts a control plane in the background (stdout to LOG.out,
# stderr to LOG.err); its pid goes into $pids.
start() {
  local log=$1; shift
  "$@" >"$log.out" 2>"$log.err" &
  pids+=($!)
}

# ready_addr PID LOG: waits for the control plane's "ready api=ADDR" line and prints ADDR.
ready_addr() {
  local pid=$1 log=$2
  for _ in $(seq 1 100); do
    if grep -q "ready api=" "$log.out" 2>/dev/null; then
      sed -n 's/.*ready api=\([^ ]*\).*/\1/p' "$log.out"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$log: exited; its log:" >&2; cat "$log.err" >&2; return 1
    fi
    sleep 0.1
  done
  echo "$log: not ready in 10 s; its log:" >&2; cat "$log.err" >&2; return 1
}

start "$DATA/global" target/release/weft-global run --data-dir "$DATA/global"
start "$DATA/zone" target/release/weft-zone run --zone zone-1 --data-dir "$DATA/zone"
GLOBAL=$(ready_addr "${pids[0]}" "$DATA/global")
ZONE=$(ready_addr "${pids[1]}" "$DATA/zone")
GTOKEN=$(cat "$DATA/global/admin.token")
ZTOKEN=$(cat "$DATA/zone/admin.token")
echo "global: http://$GLOBAL  (token in $DATA/global/admin.token)"
echo "zone-1: http://$ZONE  (token in $DATA/zone/admin.token)"

# run CMD...: shows the command (tokens by name, never by value), runs it, ends the line.
run() {
  local shown="$*"
  shown=${shown//$GTOKEN/\$GTOKEN}
  shown=${shown//$ZTOKEN/\$ZTOKEN}
  printf '\n$ %s\n' "$shown"
  "$@"
  echo
}
run curl -sS --fail-with-body "http://$GLOBAL/"
run curl -sS --fail-with-body -X PUT "http://$GLOBAL/meshes/default/meshtimeouts/backend-timeouts" \
  -H "Authorization: Bearer $GTOKEN" -H 'Content-Type: application/yaml' \
  --data-binary @examples/meshtimeout.yaml
run curl -sS --fail-with-body "http://$GLOBAL/meshes/default/meshtimeouts/backend-timeouts" \
  -H "Authorization: Bearer $GTOKEN" -H 'Accept: application/yaml'
run curl -sS --fail-with-body -X PUT "http://$ZONE/meshes/default/meshtimeouts/backend-timeouts" \
  -H "Authorization: Bearer $ZTOKEN" --data-binary @examples/meshtimeout.yaml
run curl -sS --fail-with-body "http://$ZONE/meshes/default/meshtimeouts" -H "Authorization: Bearer $ZTOKEN"
echo
[ "$EXIT_AFTER" = 1 ] && exit 0
echo "Weft is running (logs in $DATA/*.err). Ctrl-C stops it."
wait
