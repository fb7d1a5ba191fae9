#!/usr/bin/env bash
# Installs what the browser, standard-issuer and Schemathesis tests need
# (tests/api/browser.rs, tests/api/standard_issuer.rs,
# tests/api/schemathesis.rs), which `cargo test -- --include-ignored` runs:
#   - Debian's chromium (apt), driven headless by
#   - playwright-core (npm, pinned by tests/browser/package-lock.json) in
#     tests/browser/node_modules,
#   - oidc-provider and oauth4webapi (npm, pinned by
#     tests/oidc/package-lock.json) in tests/oidc/node_modules, and
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
npm_ci() { # folder, what it installs
  if ! cmp -s "$1/package-lock.json" "$1/node_modules/.installed-lock.json"; then
    echo "installing $2 (npm ci in $1)"
    npm ci --prefix "$1" --no-audit --no-fund --loglevel=error >/dev/null
    cp "$1/package-lock.json" "$1/node_modules/.installed-lock.json"
  fi
}
npm_ci tests/browser playwright-core
npm_ci tests/oidc "oidc-provider and oauth4webapi"

venv=tests/schemathesis/.venv
if ! cmp -s tests/schemathesis/requirements.txt "$venv/.installed-requirements.txt"; then
  echo "installing schemathesis (pip, in $venv)"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
  cp tests/schemathesis/requirements.txt "$venv/.installed-requirements.txt"
fi
