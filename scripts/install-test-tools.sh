#!/usr/bin/env bash
# Installs what the browser and Schemathesis tests need (tests/api/browser.rs,
# tests/api/schemathesis.rs), which `cargo test -- --include-ignored` runs:
#   - Debian's chromium (apt), driven headless by
#   - playwright-core (npm, pinned by tests/browser/package-lock.json) in
#     tests/browser/node_modules, and
#   - Schemathesis (PyPI, pinned by tests/schemathesis/requirements.txt) in
#     the virtual environment tests/schemathesis/.venv.
# Idempotent: each part is skipped while what it installed is up to date.
# Needs root for apt (as on CI), node 20+ and python3 3.9+.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null 2>&1; then
  echo "installing chromium (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# npm ci reinstalls from the lock file; a copy of the lock marks it done.
browser=tests/browser
if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.installed-lock.json"; then
  echo "installing playwright-core (npm ci)"
  npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error >/dev/null
  cp "$browser/package-lock.json" "$browser/node_modules/.installed-lock.json"
fi

venv=tests/schemathesis/.venv
if ! cmp -s tests/schemathesis/requirements.txt "$venv/.installed-requirements.txt"; then
  echo "installing schemathesis (pip, in $venv)"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
  cp tests/schemathesis/requirements.txt "$venv/.installed-requirements.txt"
fi
