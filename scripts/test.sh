#!/usr/bin/env bash
# Runs the tests: installs what they need (scripts/setup.sh), then
#   bash scripts/test.sh          every test: unit, in-process, real processes and
#                                 real Envoy (what CI runs)
#   bash scripts/test.sh --fast   the fast tier: unit tests of every crate and the
#                                 in-process control-plane tests, no child processes
#                                 beyond `envoy --mode validate` (under two minutes
#                                 once built)
# Further arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WEFT_ENVOY_BIN="$PWD/.venv/bin/envoy"

if [ "${1:-}" = "--fast" ]; then
  shift
  # In-process testbed suites: whole globals and zones on port 0 in the test
  # process, fake peers; no weft binaries started, no Envoy sidecars.
  FAST_SUITES=(api_global api_kuma_shapes api_zone kds kds_auth metrics_names store_faults supervision xds_server zones_lifecycle)
  # Bounded proptest fuzzing of the decoders (seconds; PROPTEST_CASES=N for more).
  FUZZ=(fuzz_decoder fuzz_kds fuzz_msgpack msgpack_alloc)
  args=(--workspace --locked --lib --bins --test fixtures)
  for suite in "${FUZZ[@]}"; do args+=(--test "$suite"); done
  for suite in "${FAST_SUITES[@]}"; do args+=(--test "$suite"); done
  exec cargo test "${args[@]}" "$@"
fi

cargo test --workspace --all-targets --locked "$@"
