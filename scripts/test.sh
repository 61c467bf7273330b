#!/usr/bin/env bash
# Runs every test: installs what the tests need (scripts/setup.sh), then the
# whole workspace's unit, integration and process tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WEFT_ENVOY_BIN="$PWD/.venv/bin/envoy"
cargo test --workspace --all-targets --locked "$@"
