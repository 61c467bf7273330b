#!/usr/bin/env bash
# Weft end to end on this machine, with real Envoy: a global control plane, a zone
# federated with it over KDS, two instances of a `backend` service and a `client`
# app, each behind its own weft-dp + Envoy. Traffic from the client's Envoy reaches
# both backends; policies applied on global change the answers; the zone shows what
# a proxy got. Runs until Ctrl-C.
#   bash scripts/demo.sh            # keeps running; Ctrl-C stops everything
#   bash scripts/demo.sh --exit     # stops after the walk-through (for checks)
# Every step checks its outcome: a failed step stops the demo with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# json PYTHON: runs PYTHON with `doc` = the JSON document on stdin (python3 is a
# prerequisite already; no jq needed).
json() {
  python3 -c "import json, sys
doc = json.load(sys.stdin)
$1"
}
bash scripts/setup.sh

EXIT_AFTER=0
[ "${1:-}" = "--exit" ] && EXIT_AFTER=1

echo "== building (release)" >&2
cargo build --release --locked -p weft-global -p weft-zone -p weft-dp -p weft-testbed --bins
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
ENVOY=$PWD/.venv/bin/envoy

# Addresses: control planes on 127.0.0.1, each app on its own 127.0.2.x.
GLOBAL=127.0.0.1:5681 KDS=127.0.0.1:5685 ZONE=127.0.0.1:5691 XDS=127.0.0.1:5678
APP_PORT=18080 INBOUND_PORT=18081 OUTBOUND_PORT=18082
declare -A IP=([backend-1]=127.0.2.1 [backend-2]=127.0.2.2 [client-1]=127.0.2.3)
declare -A ADMIN=([backend-1]=19901 [backend-2]=19902 [client-1]=19903)
CLIENT_URL=http://${IP[client-1]}:$OUTBOUND_PORT # the client's outbound to `backend`

# Every run starts from a fresh data dir (stores, keys, tokens, logs).
DATA=demo-data
rm -rf "$DATA"
mkdir -p "$DATA/policies"

# Each process runs in its own process group (setsid): cleanup signals the process,
# waits (bounded) for its group to be gone, and only then kills what is left, so no
# Envoy outlives the demo. weft-dp forwards SIGTERM to its Envoy.
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ((${#pids[@]})) || exit "$rc"
  echo "== stopping ${#pids[@]} processes" >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  local deadline=$((SECONDS + 15)) alive
  while ((SECONDS < deadline)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "demo: $*" >&2; exit 1; }

# start LOG CMD...: runs CMD in the background in its own process group (stdout to
# LOG.out, stderr to LOG.err); its pid goes into $pids.
start() {
  local log=$1; shift
  setsid "$@" >"$log.out" 2>"$log.err" </dev/null &
  pids+=($!)
  LOGS[$!]=$log
}
declare -A LOGS=()

# wait_for WHAT SECONDS CMD...: polls CMD (quietly) every 0.1 s until it succeeds,
# or fails the demo after SECONDS.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  local p
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not within ${secs} s (logs: $DATA/*.err)"
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || fail "$what: ${LOGS[$p]##*/} exited; its log:
$(tail -n 20 "${LOGS[$p]}.err")"
    done
    sleep 0.1
  done
}

# ready LOG: the process wrote its ready line.
ready() { grep -q "ready" "$1.out"; }
# http_ok URL [CURL ARGS...]: URL answers 2xx.
http_ok() { local url=$1; shift; curl -sf -o /dev/null "$@" "$url"; }

declare -A TOKENS=()
# run CMD...: shows the command (tokens by name, never by value), runs it, ends the line.
run() {
  local shown="" a t
  for a in "$@"; do
    [[ $a =~ [[:space:]\'\*\?\{] ]] && a="\"$a\""
    shown+="${shown:+ }$a"
  done
  for t in "${!TOKENS[@]}"; do shown=${shown//${TOKENS[$t]}/\$$t}; done
  printf '\n$ %s\n' "$shown"
  "$@"
  echo
}
show() { printf '\n$ %s\n' "$*"; }

echo
echo "== 1. a global control plane, and a zone that joins it"
start "$DATA/global" "$BIN/weft-global" run --data-dir "$DATA/global" \
  --api-address "$GLOBAL" --kds-address "$KDS"
wait_for "weft-global ready" 30 ready "$DATA/global"
GTOKEN=$(cat "$DATA/global/admin.token")
TOKENS[GTOKEN]=$GTOKEN
# The zone token, issued offline on global's host (global may be running); it pins
# global's KDS CA, so the zone verifies global without a CA file.
show "weft-global token zone --zone zone-1 --valid-for 24h --data-dir $DATA/global > $DATA/zone-1.token"
"$BIN/weft-global" token zone --zone zone-1 --valid-for 24h --data-dir "$DATA/global" \
  >"$DATA/zone-1.token"
show "weft-zone run --zone zone-1 --global-address grpcs://localhost:${KDS#*:} --zone-token-file $DATA/zone-1.token ..."
start "$DATA/zone" "$BIN/weft-zone" run --zone zone-1 --data-dir "$DATA/zone" \
  --api-address "$ZONE" --xds-address "$XDS" \
  --global-address "grpcs://localhost:${KDS#*:}" --zone-token-file "$DATA/zone-1.token"
wait_for "weft-zone ready line" 30 ready "$DATA/zone"
wait_for "zone-1's first sync with global (GET /ready = 200)" 30 http_ok "http://$ZONE/ready"
ZTOKEN=$(cat "$DATA/zone/admin.token")
TOKENS[ZTOKEN]=$ZTOKEN
echo "global: http://$GLOBAL  (admin token in $DATA/global/admin.token)"
echo "zone-1: http://$ZONE  xDS $XDS  (admin token in $DATA/zone/admin.token)"
run curl -sS --fail-with-body "http://$GLOBAL/zones/zone-1" -H "Authorization: Bearer $GTOKEN"
run curl -sS --fail-with-body "http://$ZONE/meshes/default" -H "Authorization: Bearer $ZTOKEN"

echo
echo "== 2. dataplane tokens from the zone, Dataplanes, weft-dp + Envoy per app"
# dataplane NAME SERVICE VERSION [OUTBOUND]: writes $DATA/NAME.yaml.
dataplane() {
  local name=$1 service=$2 version=$3 outbound=${4:-}
  {
    echo "type: Dataplane"
    echo "mesh: default"
    echo "name: $name"
    echo "networking:"
    echo "  address: ${IP[$name]}"
    echo "  admin: {port: ${ADMIN[$name]}}"
    echo "  inbound:"
    echo "    - port: $INBOUND_PORT"
    echo "      servicePort: $APP_PORT"
    echo "      tags: {kuma.io/service: $service, kuma.io/protocol: http, version: $version}"
    if [ -n "$outbound" ]; then
      echo "  outbound:"
      echo "    - address: ${IP[$name]}"
      echo "      port: $OUTBOUND_PORT"
      echo "      tags: {kuma.io/service: $outbound}"
    fi
  } >"$DATA/$name.yaml"
}
dataplane backend-1 backend v1
dataplane backend-2 backend v2
dataplane client-1 client v1 backend
run cat "$DATA/client-1.yaml"
# Backend tokens offline with the zone's CLI; the client's through the zone API.
for b in backend-1 backend-2; do
  show "weft-zone token dataplane --mesh default --name $b --tag kuma.io/service=backend --valid-for 24h --data-dir $DATA/zone > $DATA/$b.token"
  "$BIN/weft-zone" token dataplane --mesh default --name "$b" --tag kuma.io/service=backend \
    --valid-for 24h --data-dir "$DATA/zone" >"$DATA/$b.token"
done
show "curl -sS --fail-with-body -X POST http://$ZONE/tokens/dataplane -H \"Authorization: Bearer \$ZTOKEN\" -d '{\"mesh\": \"default\", \"name\": \"client-1\", \"tags\": {\"kuma.io/service\": \"client\"}, \"validFor\": \"24h\"}' > $DATA/client-1.token"
curl -sS --fail-with-body -X POST "http://$ZONE/tokens/dataplane" -H "Authorization: Bearer $ZTOKEN" \
  -d '{"mesh": "default", "name": "client-1", "tags": {"kuma.io/service": "client"}, "validFor": "24h"}' \
  >"$DATA/client-1.token"
declare -A SERVICE=([backend-1]=backend [backend-2]=backend [client-1]=client)
for app in backend-1 backend-2 client-1; do
  start "$DATA/$app-echo" "$BIN/weft-echo" --address "${IP[$app]}:$APP_PORT" \
    --service "${SERVICE[$app]}" --instance "$app" --zone zone-1
  start "$DATA/$app-dp" "$BIN/weft-dp" run --cp-address "http://$ZONE" \
    --dataplane-file "$DATA/$app.yaml" --dataplane-token-file "$DATA/$app.token" \
    --envoy-bin "$ENVOY" --bootstrap-timeout 30s
done
show "weft-dp run --cp-address http://$ZONE --dataplane-file $DATA/<app>.yaml --dataplane-token-file $DATA/<app>.token   # x3, Envoy admin on 127.0.0.1:${ADMIN[backend-1]}..${ADMIN[client-1]}"
envoy_live() { curl -sf "http://127.0.0.1:$1/ready" | grep -q LIVE; }
for app in backend-1 backend-2 client-1; do
  wait_for "$app's echo app" 30 ready "$DATA/$app-echo"
  wait_for "$app's Envoy LIVE (admin 127.0.0.1:${ADMIN[$app]})" 60 envoy_live "${ADMIN[$app]}"
done
two_backends() {
  local c
  c=$(curl -sf "http://127.0.0.1:${ADMIN[client-1]}/clusters")
  grep -q "^backend::${IP[backend-1]}:$INBOUND_PORT::health_flags::healthy" <<<"$c" &&
    grep -q "^backend::${IP[backend-2]}:$INBOUND_PORT::health_flags::healthy" <<<"$c"
}
wait_for "both backend endpoints healthy in the client's Envoy" 30 two_backends
run curl -sS --fail-with-body "http://$ZONE/meshes/default/dataplanes" -H "Authorization: Bearer $ZTOKEN" \
  -o /dev/null -w 'GET /meshes/default/dataplanes: %{http_code}'
curl -sS --fail-with-body "http://$ZONE/meshes/default/dataplanes" -H "Authorization: Bearer $ZTOKEN" |
  json 'for d in doc["items"]: print("  " + d["name"], d["networking"]["address"], d["networking"]["inbound"][0]["tags"]["kuma.io/service"], sep="  ")'

echo
echo "== 3. traffic: the client's Envoy → the backends' Envoys → the backends"
# tally N [CURL ARGS...]: N requests to the client's outbound; prints and leaves in
# $TALLY the count per answering instance (or HTTP status when not 200).
declare -A TALLY
tally() {
  local n=$1 i body code who; shift
  TALLY=()
  for ((i = 0; i < n; i++)); do
    body=$(curl -sS -m 10 -w '\n%{http_code}' "$@" "$CLIENT_URL/") || body=$'\n000'
    code=${body##*$'\n'}
    if [ "$code" = 200 ]; then
      who=$(json 'print(doc["instance"])' <<<"${body%$'\n'*}")
    else
      who="HTTP $code"
    fi
    TALLY[$who]=$((${TALLY[$who]:-0} + 1))
  done
  for who in "${!TALLY[@]}"; do printf '  %-10s %s\n' "$who" "${TALLY[$who]}"; done | sort
}
show "curl $CLIENT_URL/   # x20"
tally 20
((${TALLY[backend-1]:-0} > 0 && ${TALLY[backend-2]:-0} > 0)) || fail "both backends should answer"
((${TALLY[backend-1]:-0} + ${TALLY[backend-2]:-0} == 20)) || fail "every request should succeed"
run curl -sS --fail-with-body "$CLIENT_URL/hello"

echo
echo "== 4. policies applied on global reach the proxies"
cat >"$DATA/policies/canary.yaml" <<'EOF'
# Requests carrying `x-canary: yes` go to the backend instances tagged version v2.
type: MeshHTTPRoute
name: canary
mesh: default
spec:
  targetRef: {kind: MeshService, name: client}
  to:
    - targetRef: {kind: MeshService, name: backend}
      rules:
        - matches:
            - headers: [{type: Exact, name: x-canary, value: "yes"}]
          default:
            backendRefs:
              - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 100}
EOF
run curl -sS --fail-with-body -X PUT "http://$GLOBAL/meshes/default/meshhttproutes/canary" \
  -H "Authorization: Bearer $GTOKEN" --data-binary "@$DATA/policies/canary.yaml"
canary_only_v2() {
  tally 10 -H 'x-canary: yes' >/dev/null
  [ "${TALLY[backend-2]:-0}" = 10 ]
}
wait_for "the canary route in the client's Envoy" 30 canary_only_v2
show "curl -H 'x-canary: yes' $CLIENT_URL/   # x20"
tally 20 -H 'x-canary: yes'
[ "${TALLY[backend-2]:-0}" = 20 ] || fail "x-canary: yes should reach backend-2 only"
show "curl $CLIENT_URL/   # x20"
tally 20
((${TALLY[backend-1]:-0} > 0 && ${TALLY[backend-2]:-0} > 0)) || fail "without the header both backends should answer"

# weft-echo holds a request for ?delay=...; a 1 s MeshTimeout cuts a 2 s answer.
# delayed: one request the backend answers after 2 s; prints and leaves in $code the status.
delayed() {
  show "curl -w '%{http_code} in %{time_total}s' '$CLIENT_URL/?delay=2s'"
  local out
  out=$(curl -sS -o /dev/null -w '%{http_code} in %{time_total}s' "$CLIENT_URL/?delay=2s")
  echo "  $out"
  code=${out%% *}
}
delayed
[ "$code" = 200 ] || fail "a 2 s answer should pass before the MeshTimeout (got $code)"
cat >"$DATA/policies/timeout.yaml" <<'EOF'
# The client waits at most 1 s for the backend.
type: MeshTimeout
name: client-to-backend
mesh: default
spec:
  targetRef: {kind: MeshService, name: client}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        http: {requestTimeout: 1s}
EOF
run curl -sS --fail-with-body -X PUT "http://$GLOBAL/meshes/default/meshtimeouts/client-to-backend" \
  -H "Authorization: Bearer $GTOKEN" --data-binary "@$DATA/policies/timeout.yaml"
timed_out() { [ "$(curl -sS -o /dev/null -w '%{http_code}' "$CLIENT_URL/?delay=2s")" = 504 ]; }
wait_for "the 1 s timeout in the client's Envoy" 30 timed_out
delayed
[ "$code" = 504 ] || fail "the MeshTimeout should cut the 2 s answer with 504 (got $code)"
show "curl -X PUT http://$ZONE/meshes/default/meshtimeouts/client-to-backend ...   # on the zone"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "http://$ZONE/meshes/default/meshtimeouts/client-to-backend" \
  -H "Authorization: Bearer $ZTOKEN" --data-binary "@$DATA/policies/timeout.yaml")
echo "  $code: a federated zone takes policies from global only"
[ "$code" = 405 ] || fail "the zone should refuse a local policy write with 405 (got $code)"

echo
echo "== 5. what the zone computed for the client's proxy"
show "curl http://$ZONE/meshes/default/dataplanes/client-1/_rules   # the policies that select it, per type (summary)"
rules=$(curl -sS --fail-with-body "http://$ZONE/meshes/default/dataplanes/client-1/_rules" \
  -H "Authorization: Bearer $ZTOKEN")
json '
for r in doc["rules"]:
    names = [m["name"] if isinstance(m, dict) else str(m) for m in r.get("matched", [])]
    print("  " + r["type"] + ": " + ", ".join(names))' <<<"$rules"
echo "  MeshTimeout towards backend, merged:"
json '
for r in doc["rules"]:
    if r["type"] == "MeshTimeout":
        for t in r.get("to", []):
            if "client-to-backend" in json.dumps(t):
                print("    " + json.dumps(t.get("conf"), separators=(",", ":")))' <<<"$rules"
grep -q canary <<<"$rules" && grep -q client-to-backend <<<"$rules" ||
  fail "_rules should list the canary route and the timeout"
show "curl http://$ZONE/meshes/default/dataplanes/client-1/_config   # the xDS resources it gets (names)"
curl -sS --fail-with-body "http://$ZONE/meshes/default/dataplanes/client-1/_config" \
  -H "Authorization: Bearer $ZTOKEN" |
  json '
for key, items in doc["resources"].items():
    print("  " + key.rsplit(".", 1)[-1] + ": " + ", ".join(i["name"] for i in items))'

echo
echo "== the walk-through passed"
[ "$EXIT_AFTER" = 1 ] && exit 0
echo "Weft is running (logs in $DATA/*.err, Envoy admin on 127.0.0.1:${ADMIN[backend-1]}-${ADMIN[client-1]})."
echo "Try: curl $CLIENT_URL/   or   curl -H 'x-canary: yes' $CLIENT_URL/. Ctrl-C stops it."
wait
