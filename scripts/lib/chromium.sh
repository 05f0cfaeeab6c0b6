# Install Debian's Chromium for the console's browser tests if it is missing (Playwright cannot
# download browsers here; the tests drive /usr/bin/chromium). Sourced by scripts/test.
ensure_chromium() {
    if [[ -x /usr/bin/chromium ]]; then return 0; fi
    echo "test: installing Chromium (Debian package) for the console's browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
}
