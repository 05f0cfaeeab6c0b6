# Start (installing if needed) a local PostgreSQL server for the integration tests and export
# ENTRYEXIT_TEST_POSTGRES_URL. Sourced by scripts/test.
ensure_postgres() {
    if [[ -n "${ENTRYEXIT_TEST_POSTGRES_URL:-}" ]]; then return 0; fi
    # The client tools may be present without the server: look for the server binary itself.
    if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
        echo "test: installing PostgreSQL (Debian package)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    fi
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h | grep -q "^${version} main .* online"; then
        pg_ctlcluster "$version" main start || { pg_createcluster "$version" main && pg_ctlcluster "$version" main start; }
    fi
    # A random password, kept (readable by this user only) so that runs do not invalidate each
    # other; there is no default secret. Each secret file gets a role of its own (named after a
    # hash of its path): two runs with different HOMEs on one machine (a fresh-clone CI check beside
    # a developer's tests) would otherwise reset one shared role's password under each other.
    local secret_file="${XDG_CACHE_HOME:-$HOME/.cache}/entryexit/test-postgres-password"
    if [[ ! -s "$secret_file" ]]; then
        mkdir -p "$(dirname "$secret_file")"
        (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$secret_file")
    fi
    local password role
    password=$(cat "$secret_file")
    role="entryexit_test_$(realpath "$secret_file" | sha256sum | cut -c1-10)"
    su postgres -c "psql -q -v ON_ERROR_STOP=1" >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN
    CREATE ROLE ${role} LOGIN CREATEDB;
  END IF;
END \$\$;
ALTER ROLE ${role} PASSWORD '${password}';
SQL
    export ENTRYEXIT_TEST_POSTGRES_URL="postgresql+psycopg://${role}:${password}@127.0.0.1:5432/postgres"
}
