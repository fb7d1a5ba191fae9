#!/usr/bin/env bash
# Replaces the Swagger UI embedded in the binary (assets/swagger-ui/) with
# release VERSION of the npm package swagger-ui-dist, checked against the
# registry's integrity hash, and rewrites SHA256SUMS. Then set
# SWAGGER_UI_VERSION in src/routes/docs/assets.rs and the version in
# assets/swagger-ui/README.md, and run the browser tests.
#   bash scripts/update-swagger-ui.sh 5.35.0
set -euo pipefail
version="${1:?usage: $0 VERSION (of swagger-ui-dist)}"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# npm pack verifies the tarball against the registry's dist.integrity.
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf "swagger-ui-dist-$version.tgz")
files=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)
for file in "${files[@]}"; do
  cp "$work/package/$file" assets/swagger-ui/
done
(cd assets/swagger-ui && sha256sum "${files[@]}" >SHA256SUMS)
echo "swagger-ui-dist $version in assets/swagger-ui/ ($(npm view "swagger-ui-dist@$version" license))"
