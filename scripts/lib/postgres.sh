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
    # A random password per machine, kept (readable by this user only) so that runs do not
    # invalidate each other; there is no default secret.
    local secret_file="${XDG_CACHE_HOME:-$HOME/.cache}/entryexit/test-postgres-password"
    if [[ ! -s "$secret_file" ]]; then
        mkdir -p "$(dirname "$secret_file")"
        (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$secret_file")
    fi
    local password
    password=$(cat "$secret_file")
    su postgres -c "psql -q -v ON_ERROR_STOP=1" >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'entryexit_test') THEN
    CREATE ROLE entryexit_test LOGIN CREATEDB;
  END IF;
END \$\$;
ALTER ROLE entryexit_test PASSWORD '${password}';
SQL
    export ENTRYEXIT_TEST_POSTGRES_URL="postgresql+psycopg://entryexit_test:${password}@127.0.0.1:5432/postgres"
}
