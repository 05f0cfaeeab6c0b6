# Install Debian's HAProxy if it is missing (the fleet test and deploy/ put it in front of
# the service instances). Sourced by scripts/test; the test starts its own haproxy process
# on loopback ports, never the system service.
ensure_haproxy() {
    if command -v haproxy >/dev/null 2>&1; then return 0; fi
    echo "test: installing HAProxy (Debian package) for the fleet test" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy >/dev/null
    # The package starts its own service with the stock configuration: the fleet test needs
    # none of it, and it must not hold ports.
    if command -v service >/dev/null 2>&1; then service haproxy stop >/dev/null 2>&1 || true; fi
}
