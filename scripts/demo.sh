#!/usr/bin/env bash
# Weft end to end on this machine, with real Envoy: a global control plane, zones
# `east` and `west` federated with it over KDS, a zone ingress in each, `frontend`
# in east calling `backend`, which runs in west and in east, every app behind its
# own weft-dp + Envoy. Traffic is mTLS and stays in east while east's backend is
# up; when it stops, traffic fails over to west through west's ingress, and comes
# back. Policies applied on global reach both zones. Runs until Ctrl-C.
# docs/quickstart.md walks through it.
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

# Addresses: control planes on 127.0.0.1; east's proxies on 127.0.2.x, west's on
# 127.0.3.x (as if each zone were its own network, reached through its ingress).
GLOBAL=127.0.0.1:5681 KDS=127.0.0.1:5685
declare -A API=([east]=127.0.0.1:5691 [west]=127.0.0.1:5692)
declare -A XDS=([east]=127.0.0.1:5678 [west]=127.0.0.1:5679)
APP_PORT=18080 INBOUND_PORT=18081 OUTBOUND_PORT=18082 INGRESS_PORT=10001
declare -A IP=([frontend-east]=127.0.2.1 [backend-east]=127.0.2.2 [backend-west]=127.0.3.1
  [ingress-east]=127.0.2.100 [ingress-west]=127.0.3.100 [egress-east]=127.0.2.101)
declare -A ADMIN=([frontend-east]=19901 [backend-east]=19902 [backend-west]=19903
  [ingress-east]=19911 [ingress-west]=19912 [egress-east]=19921)
EGRESS_PORT=10002
declare -A ZONE_OF=([frontend-east]=east [backend-east]=east [backend-west]=west)
declare -A SERVICE=([frontend-east]=frontend [backend-east]=backend [backend-west]=backend)
declare -A VERSION=([frontend-east]=v1 [backend-east]=v1 [backend-west]=v2)
CLIENT_URL=http://${IP[frontend-east]}:$OUTBOUND_PORT # frontend's outbound to `backend`

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
# LOG.out, stderr to LOG.err); its pid goes into $pids and PID[LOG's file name].
start() {
  local log=$1; shift
  setsid "$@" >"$log.out" 2>"$log.err" </dev/null &
  pids+=($!)
  LOGS[$!]=$log
  PID[${log##*/}]=$!
}
declare -A LOGS=() PID=()

# stop NAME: SIGTERM to the process started as NAME, waiting (bounded) until its
# group is gone; it leaves $pids, so its exit is not a failure.
stop() {
  local p=${PID[$1]} deadline=$((SECONDS + 15)) q keep=()
  kill -TERM "$p" 2>/dev/null || true
  while kill -0 -- "-$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL -- "-$p" 2>/dev/null || true
  for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  pids=("${keep[@]}")
}

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
echo "== 1. a global control plane, and zones east and west that join it"
start "$DATA/global" "$BIN/weft-global" run --data-dir "$DATA/global" \
  --api-address "$GLOBAL" --kds-address "$KDS"
wait_for "weft-global ready" 30 ready "$DATA/global"
GTOKEN=$(cat "$DATA/global/admin.token")
TOKENS[GTOKEN]=$GTOKEN
declare -A ZTOKEN=()
for zone in east west; do
  # The zone token, issued offline on global's host (global may be running); it
  # pins global's KDS CA, so the zone verifies global without a CA file.
  show "weft-global token zone --zone $zone --valid-for 24h --data-dir $DATA/global > $DATA/$zone.token"
  "$BIN/weft-global" token zone --zone "$zone" --valid-for 24h --data-dir "$DATA/global" \
    >"$DATA/$zone.token"
  show "weft-zone run --zone $zone --data-dir $DATA/$zone --global-address grpcs://localhost:${KDS#*:} --zone-token-file $DATA/$zone.token --api-address ${API[$zone]} --xds-address ${XDS[$zone]}"
  start "$DATA/$zone" "$BIN/weft-zone" run --zone "$zone" --data-dir "$DATA/$zone" \
    --api-address "${API[$zone]}" --xds-address "${XDS[$zone]}" \
    --global-address "grpcs://localhost:${KDS#*:}" --zone-token-file "$DATA/$zone.token"
done
for zone in east west; do
  wait_for "weft-zone $zone ready line" 30 ready "$DATA/$zone"
  wait_for "$zone's first sync with global (GET /ready = 200)" 30 http_ok "http://${API[$zone]}/ready"
  ZTOKEN[$zone]=$(cat "$DATA/$zone/admin.token")
  TOKENS[ZTOKEN_${zone^^}]=${ZTOKEN[$zone]}
  echo "$zone: http://${API[$zone]}  xDS ${XDS[$zone]}  (admin token in $DATA/$zone/admin.token)"
done
echo "global: http://$GLOBAL  (admin token in $DATA/global/admin.token)"
run curl -sS --fail-with-body "http://$GLOBAL/zones/_overview" -H "Authorization: Bearer $GTOKEN" \
  -o /dev/null -w 'GET /zones/_overview: %{http_code}'
curl -sS --fail-with-body "http://$GLOBAL/zones/_overview" -H "Authorization: Bearer $GTOKEN" |
  json 'for z in doc["items"]: print("  " + z["zone"]["name"], "online" if z["zoneInsight"]["online"] else "offline", sep="  ")'

echo
echo "== 2. mTLS for mesh default (cross-zone traffic needs it), written on global"
cat >"$DATA/policies/mesh.yaml" <<'EOF'
# Every proxy gets a SPIFFE certificate from the mesh's builtin CA; the zone
# ingresses route on the TLS SNI without decrypting. Traffic leaving a zone goes
# through the zone's egress.
type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
routing:
  zoneEgress: true
EOF
cat >"$DATA/policies/allow-all.yaml" <<'EOF'
# With mTLS on, nothing may talk until a MeshTrafficPermission allows it.
type: MeshTrafficPermission
name: allow-all
mesh: default
spec:
  targetRef: {kind: Mesh}
  from:
    - targetRef: {kind: Mesh}
      default: {action: Allow}
EOF
run curl -sS --fail-with-body -X PUT "http://$GLOBAL/meshes/default" \
  -H "Authorization: Bearer $GTOKEN" --data-binary "@$DATA/policies/mesh.yaml"
run curl -sS --fail-with-body -X PUT "http://$GLOBAL/meshes/default/meshtrafficpermissions/allow-all" \
  -H "Authorization: Bearer $GTOKEN" --data-binary "@$DATA/policies/allow-all.yaml"
mtls_in() { curl -sf "http://${API[$1]}/meshes/default" -H "Authorization: Bearer ${ZTOKEN[$1]}" | grep -q ca-1; }
for zone in east west; do wait_for "mesh default with mTLS in $zone" 30 mtls_in "$zone"; done

echo
echo "== 3. a zone ingress per zone, and an egress in east (weft-dp --proxy-type ingress|egress)"
envoy_live() { curl -sf "http://127.0.0.1:$1/ready" | grep -q LIVE; }
for zone in east west; do
  name=ingress-$zone
  cat >"$DATA/$name.yaml" <<EOF
type: ZoneIngress
name: $name
networking:
  address: ${IP[$name]}
  port: $INGRESS_PORT
  advertisedAddress: ${IP[$name]}   # what the other zones dial
  advertisedPort: $INGRESS_PORT
  admin: {port: ${ADMIN[$name]}}
EOF
  show "weft-zone token ingress --zone $zone --valid-for 24h --data-dir $DATA/$zone > $DATA/$name.token"
  "$BIN/weft-zone" token ingress --zone "$zone" --valid-for 24h --data-dir "$DATA/$zone" \
    >"$DATA/$name.token"
  show "weft-dp run --proxy-type ingress --cp-address http://${API[$zone]} --dataplane-file $DATA/$name.yaml --dataplane-token-file $DATA/$name.token"
  start "$DATA/$name-dp" "$BIN/weft-dp" run --proxy-type ingress --cp-address "http://${API[$zone]}" \
    --dataplane-file "$DATA/$name.yaml" --dataplane-token-file "$DATA/$name.token" \
    --envoy-bin "$ENVOY" --bootstrap-timeout 30s
done
cat >"$DATA/egress-east.yaml" <<EOF
type: ZoneEgress
name: egress-east
networking:
  address: ${IP[egress-east]}
  port: $EGRESS_PORT
  admin: {port: ${ADMIN[egress-east]}}
EOF
show "weft-zone token egress --zone east --valid-for 24h --data-dir $DATA/east > $DATA/egress-east.token"
"$BIN/weft-zone" token egress --zone east --valid-for 24h --data-dir "$DATA/east" >"$DATA/egress-east.token"
show "weft-dp run --proxy-type egress --cp-address http://${API[east]} --dataplane-file $DATA/egress-east.yaml --dataplane-token-file $DATA/egress-east.token"
start "$DATA/egress-east-dp" "$BIN/weft-dp" run --proxy-type egress --cp-address "http://${API[east]}" \
  --dataplane-file "$DATA/egress-east.yaml" --dataplane-token-file "$DATA/egress-east.token" \
  --envoy-bin "$ENVOY" --bootstrap-timeout 30s
run cat "$DATA/ingress-west.yaml"
for proxy in ingress-east ingress-west egress-east; do
  wait_for "$proxy's Envoy LIVE (admin 127.0.0.1:${ADMIN[$proxy]})" 60 envoy_live "${ADMIN[$proxy]}"
done

echo
echo "== 4. apps: frontend in east; backend in west (v2) and in east (v1)"
# dataplane NAME [OUTBOUND]: writes $DATA/NAME.yaml.
dataplane() {
  local name=$1 outbound=${2:-}
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
    echo "      tags: {kuma.io/service: ${SERVICE[$name]}, kuma.io/protocol: http, version: ${VERSION[$name]}}"
    if [ -n "$outbound" ]; then
      echo "  outbound:"
      echo "    - address: ${IP[$name]}"
      echo "      port: $OUTBOUND_PORT"
      echo "      tags: {kuma.io/service: $outbound}"
    fi
  } >"$DATA/$name.yaml"
}
# start_app NAME: its weft-echo and its weft-dp + Envoy, with a dataplane token
# issued offline by its zone; waits until its Envoy is LIVE.
start_app() {
  local app=$1 zone=${ZONE_OF[$1]}
  "$BIN/weft-zone" token dataplane --mesh default --name "$app" \
    --tag "kuma.io/service=${SERVICE[$app]}" --valid-for 24h --data-dir "$DATA/$zone" >"$DATA/$app.token"
  start "$DATA/$app-echo" "$BIN/weft-echo" --address "${IP[$app]}:$APP_PORT" \
    --service "${SERVICE[$app]}" --instance "$app" --zone "$zone"
  start "$DATA/$app-dp" "$BIN/weft-dp" run --cp-address "http://${API[$zone]}" \
    --dataplane-file "$DATA/$app.yaml" --dataplane-token-file "$DATA/$app.token" \
    --envoy-bin "$ENVOY" --bootstrap-timeout 30s
  wait_for "$app's echo app" 30 ready "$DATA/$app-echo"
  wait_for "$app's Envoy LIVE (admin 127.0.0.1:${ADMIN[$app]})" 60 envoy_live "${ADMIN[$app]}"
}
dataplane frontend-east backend
dataplane backend-east
dataplane backend-west
run cat "$DATA/frontend-east.yaml"
show "weft-zone token dataplane --mesh default --name <app> --tag kuma.io/service=<service> --valid-for 24h --data-dir $DATA/<zone> > $DATA/<app>.token"
show "weft-dp run --cp-address http://<its zone's API> --dataplane-file $DATA/<app>.yaml --dataplane-token-file $DATA/<app>.token   # x3"
for app in backend-west backend-east frontend-east; do start_app "$app"; done
# hosts: frontend's Envoy's endpoints of `backend`: address, priority, weight.
hosts() {
  curl -sf "http://127.0.0.1:${ADMIN[frontend-east]}/clusters" | grep -E '^backend::[0-9.:]+::(priority|weight)::'
}
both_zones() {
  local h
  h=$(hosts) &&
    grep -q "${IP[backend-east]}:$INBOUND_PORT::priority::0" <<<"$h" &&
    grep -q "${IP[egress-east]}:$EGRESS_PORT::priority::1" <<<"$h"
}
wait_for "east's backend (priority 0) and, for west, east's egress (priority 1) in frontend's Envoy" 30 both_zones
show "curl -s http://127.0.0.1:${ADMIN[frontend-east]}/clusters | grep ^backend::   # east's own instance first; west, through east's egress, as failover"
hosts | sed 's/^/  /'

echo
echo "== 5. traffic: frontend's Envoy → backend, over mTLS"
# tally N [CURL ARGS...]: N requests to frontend's outbound; prints and leaves in
# $TALLY the count per answering instance and zone (or HTTP status when not 200).
declare -A TALLY
tally() {
  local n=$1 i body code who; shift
  TALLY=()
  for ((i = 0; i < n; i++)); do
    body=$(curl -sS -m 10 -w '\n%{http_code}' "$@" "$CLIENT_URL/") || body=$'\n000'
    code=${body##*$'\n'}
    if [ "$code" = 200 ]; then
      who=$(json 'print(doc["instance"] + " (zone " + doc["zone"] + ")")' <<<"${body%$'\n'*}")
    else
      who="HTTP $code"
    fi
    TALLY[$who]=$((${TALLY[$who]:-0} + 1))
  done
  for who in "${!TALLY[@]}"; do printf '  %-26s %s\n' "$who" "${TALLY[$who]}"; done | sort
}
EAST="backend-east (zone east)" WEST="backend-west (zone west)"
show "curl $CLIENT_URL/   # x20: the local instance answers"
tally 20
[ "${TALLY[$EAST]:-0}" = 20 ] || fail "with a backend in east, traffic should stay in east"
run curl -sS --fail-with-body "$CLIENT_URL/hello"

echo
echo "== 6. failover: east's backend stops; traffic crosses to west: east's egress, then west's ingress"
show "kill -TERM <backend-east's weft-dp>   # it leaves the mesh, drains 1 s, stops its Envoy"
stop backend-east-dp
stop backend-east-echo
west_only() { tally 5 >/dev/null && [ "${TALLY[$WEST]:-0}" = 5 ]; }
wait_for "traffic moved to west" 10 west_only
show "curl $CLIENT_URL/   # x20"
tally 20
[ "${TALLY[$WEST]:-0}" = 20 ] || fail "with east's backend gone, west should answer every request"
show "curl -s http://127.0.0.1:<egress-east, ingress-west admin>/stats | grep cluster.default_backend.upstream_cx_total   # both passed the connections on, still encrypted"
for proxy in egress-east ingress-west; do
  printf '  %-13s ' "$proxy"
  curl -sf "http://127.0.0.1:${ADMIN[$proxy]}/stats" | grep '^cluster.default_backend.upstream_cx_total'
done
echo "  east's backend comes back:"
start_app backend-east
east_again() { tally 5 >/dev/null && [ "${TALLY[$EAST]:-0}" = 5 ]; }
wait_for "traffic back in east" 30 east_again
show "curl $CLIENT_URL/   # x20"
tally 20
[ "${TALLY[$EAST]:-0}" = 20 ] || fail "with east's backend back, traffic should stay in east again"

echo
echo "== 7. policies applied on global reach both zones"
cat >"$DATA/policies/canary.yaml" <<'EOF'
# Requests carrying `x-canary: yes` go to the backend instances tagged version v2
# (the one in west: the route crosses zones, by the subset's SNI).
type: MeshHTTPRoute
name: canary
mesh: default
spec:
  targetRef: {kind: MeshService, name: frontend}
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
canary_west() { tally 5 -H 'x-canary: yes' >/dev/null && [ "${TALLY[$WEST]:-0}" = 5 ]; }
wait_for "the canary route in frontend's Envoy" 30 canary_west
show "curl -H 'x-canary: yes' $CLIENT_URL/   # x20"
tally 20 -H 'x-canary: yes'
[ "${TALLY[$WEST]:-0}" = 20 ] || fail "x-canary: yes should reach west's v2 only"
show "curl $CLIENT_URL/   # x20"
tally 20
[ "${TALLY[$EAST]:-0}" = 20 ] || fail "without the header traffic should stay in east"
# weft-echo holds a request for ?delay=...; a 1 s MeshTimeout cuts a 2 s answer.
cat >"$DATA/policies/timeout.yaml" <<'EOF'
# frontend waits at most 1 s for backend.
type: MeshTimeout
name: frontend-to-backend
mesh: default
spec:
  targetRef: {kind: MeshService, name: frontend}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        http: {requestTimeout: 1s}
EOF
run curl -sS --fail-with-body -X PUT "http://$GLOBAL/meshes/default/meshtimeouts/frontend-to-backend" \
  -H "Authorization: Bearer $GTOKEN" --data-binary "@$DATA/policies/timeout.yaml"
timed_out() { [ "$(curl -sS -o /dev/null -w '%{http_code}' "$CLIENT_URL/?delay=2s")" = 504 ]; }
wait_for "the 1 s timeout in frontend's Envoy" 30 timed_out
show "curl -w '%{http_code} in %{time_total}s' '$CLIENT_URL/?delay=2s'"
echo "  $(curl -sS -o /dev/null -w '%{http_code} in %{time_total}s' "$CLIENT_URL/?delay=2s")"
show "curl -X PUT http://${API[east]}/meshes/default/meshtimeouts/frontend-to-backend ...   # on a zone"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "http://${API[east]}/meshes/default/meshtimeouts/frontend-to-backend" \
  -H "Authorization: Bearer ${ZTOKEN[east]}" --data-binary "@$DATA/policies/timeout.yaml")
echo "  $code: a federated zone takes policies from global only"
[ "$code" = 405 ] || fail "the zone should refuse a local policy write with 405 (got $code)"

echo
echo "== 8. what the zones computed"
show "curl http://${API[east]}/meshes/default/dataplanes/frontend-east/_rules   # the policies that select frontend, per type"
rules=$(curl -sS --fail-with-body "http://${API[east]}/meshes/default/dataplanes/frontend-east/_rules" \
  -H "Authorization: Bearer ${ZTOKEN[east]}")
json '
for r in doc["rules"]:
    names = [m["name"] if isinstance(m, dict) else str(m) for m in r.get("matched", [])]
    print("  " + r["type"] + ": " + ", ".join(names))' <<<"$rules"
grep -q canary <<<"$rules" && grep -q frontend-to-backend <<<"$rules" ||
  fail "_rules should list the canary route and the timeout"
show "curl http://${API[west]}/zoneingresses   # on west: what its ingress offers the other zones"
curl -sS --fail-with-body "http://${API[west]}/zoneingresses" -H "Authorization: Bearer ${ZTOKEN[west]}" |
  json '
for i in doc["items"]:
    if i.get("labels", {}).get("kuma.io/origin") == "global":
        continue
    for s in i.get("availableServices", []):
        print("  " + i["name"] + ": " + json.dumps(s["tags"], sort_keys=True) + " x" + str(s["instances"]))'

echo
echo "== the walk-through passed"
[ "$EXIT_AFTER" = 1 ] && exit 0
echo "Weft is running (logs in $DATA/*.err; Envoy admin: frontend 127.0.0.1:${ADMIN[frontend-east]}, ingresses ${ADMIN[ingress-east]} and ${ADMIN[ingress-west]}, egress ${ADMIN[egress-east]})."
echo "Try: curl $CLIENT_URL/   or   curl -H 'x-canary: yes' $CLIENT_URL/. Ctrl-C stops it."
wait
