# Install npm (Debian's package) if it is missing, so that the kiosk's accessibility scan can
# install its pinned axe-core (tests/e2e/axe_core.py: `npm ci` against
# tests/e2e/axe/package-lock.json, then the script's SHA-256 checked). Sourced by scripts/test;
# CI=true makes a missing axe-core fail the scan instead of skipping it.
ensure_npm() {
    if command -v npm >/dev/null; then return 0; fi
    echo "test: installing npm (Debian package) for the kiosk's accessibility scan" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
}
