#!/usr/bin/env bash
# A PostgreSQL primary and a streaming replica for EntryExit (Debian's postgresql 15).
#
#   primary-replica.sh primary DATADIR PORT
#       Create (if DATADIR is empty) and start the primary: WAL for streaming replication, a
#       replication role, the `entryexit` database and its owner role.
#   primary-replica.sh replica DATADIR PORT PRIMARY_HOST PRIMARY_PORT
#       Clone the primary (pg_basebackup, its own replication slot) and start a hot standby
#       that streams from it; read-only reports may use it.
#   primary-replica.sh stop DATADIR
#   primary-replica.sh lag PRIMARY_PORT
#       Replay lag per replica, in bytes, as the primary sees it.
#
# Secrets come from the environment and have no defaults:
#   ENTRYEXIT_REPLICATION_PASSWORD   the replication role's password
#   ENTRYEXIT_DB_PASSWORD            the `entryexit` role's password (primary only)
# Optional: PGBIN (default: the newest /usr/lib/postgresql/*/bin), PG_LISTEN (default 127.0.0.1; a site
# sets the host's address), REPLICA_CIDR (who may stream, default 127.0.0.1/32),
# APP_CIDR (who may connect to the database, default 127.0.0.1/32).
# Runs as the postgres user; started as root, it switches to it.
set -euo pipefail

# Debian's newest installed server, unless PGBIN says otherwise.
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
PG_LISTEN="${PG_LISTEN:-127.0.0.1}"
REPLICA_CIDR="${REPLICA_CIDR:-127.0.0.1/32}"
APP_CIDR="${APP_CIDR:-127.0.0.1/32}"
REPLICATION_ROLE=replicator

if [[ "$(id -u)" == 0 ]]; then
    exec runuser -u postgres -- env \
        PGBIN="$PGBIN" PG_LISTEN="$PG_LISTEN" REPLICA_CIDR="$REPLICA_CIDR" APP_CIDR="$APP_CIDR" \
        ENTRYEXIT_REPLICATION_PASSWORD="${ENTRYEXIT_REPLICATION_PASSWORD:-}" \
        ENTRYEXIT_DB_PASSWORD="${ENTRYEXIT_DB_PASSWORD:-}" \
        bash "$(readlink -f "$0")" "$@"
fi

die() { echo "primary-replica.sh: $*" >&2; exit 2; }
need() {
    [[ -n "${!1:-}" ]] || die "set $1 (no default secret)"
    # It is written into conninfo strings and SQL literals: letters, digits and a few marks.
    [[ "${!1}" =~ ^[A-Za-z0-9._~+/=-]{12,}$ ]] || die "$1: 12 or more of A-Z a-z 0-9 . _ ~ + / = -"
}

start() {  # DATADIR PORT
    "$PGBIN/pg_ctl" -D "$1" -l "$1/server.log" -o "-p $2" -w -t 60 start >/dev/null
}

sql() {  # PORT SQL...
    local port="$1"; shift
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_LISTEN" -p "$port" -U postgres -d postgres "$@"
}

primary() {
    local datadir="$1" port="$2"
    need ENTRYEXIT_REPLICATION_PASSWORD
    need ENTRYEXIT_DB_PASSWORD
    if [[ ! -s "$datadir/PG_VERSION" ]]; then
        mkdir -p "$datadir" && chmod 700 "$datadir"
        # Local superuser access is by the postgres OS user only (peer); over TCP every
        # role needs its password (scram), and only the named networks may try.
        "$PGBIN/initdb" -D "$datadir" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$datadir/postgresql.conf" <<CONF
listen_addresses = '$PG_LISTEN'
port = $port
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
password_encryption = 'scram-sha-256'
CONF
        cat > "$datadir/pg_hba.conf" <<HBA
local   all             postgres                                peer
local   all             all                                     scram-sha-256
host    replication     $REPLICATION_ROLE      $REPLICA_CIDR    scram-sha-256
host    entryexit       entryexit              $APP_CIDR        scram-sha-256
host    all             postgres               127.0.0.1/32     scram-sha-256
HBA
    fi
    start "$datadir" "$port"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres \
        -v repl_password="$ENTRYEXIT_REPLICATION_PASSWORD" \
        -v app_password="$ENTRYEXIT_DB_PASSWORD" >/dev/null <<'SQL'
SELECT format('CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD %L', :'repl_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
SELECT format('ALTER ROLE replicator PASSWORD %L', :'repl_password') \gexec
SELECT format('CREATE ROLE entryexit WITH LOGIN PASSWORD %L', :'app_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'entryexit') \gexec
SELECT format('ALTER ROLE entryexit PASSWORD %L', :'app_password') \gexec
SELECT 'CREATE DATABASE entryexit OWNER entryexit'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'entryexit') \gexec
SQL
    echo "primary on $PG_LISTEN:$port ($datadir)"
}

replica() {
    local datadir="$1" port="$2" primary_host="$3" primary_port="$4"
    need ENTRYEXIT_REPLICATION_PASSWORD
    if [[ ! -s "$datadir/PG_VERSION" ]]; then
        mkdir -p "$datadir" && chmod 700 "$datadir"
        local slot
        slot="replica_$(echo "$PG_LISTEN:$port" | tr -c 'a-z0-9' '_' | cut -c1-40)"
        # -R writes primary_conninfo and standby.signal; the slot keeps the WAL this replica
        # still needs, however long it was away. The password goes in a passfile, not argv.
        local passfile
        passfile="$(mktemp)"
        printf '%s:%s:replication:%s:%s\n' "$primary_host" "$primary_port" "$REPLICATION_ROLE" \
            "$ENTRYEXIT_REPLICATION_PASSWORD" > "$passfile"
        chmod 600 "$passfile"
        PGPASSFILE="$passfile" "$PGBIN/pg_basebackup" -h "$primary_host" -p "$primary_port" \
            -U "$REPLICATION_ROLE" -D "$datadir" -X stream -R -C -S "$slot" --checkpoint=fast
        rm -f "$passfile"
        cat >> "$datadir/postgresql.conf" <<CONF
port = $port
listen_addresses = '$PG_LISTEN'
CONF
        # The conninfo -R wrote names the passfile just removed: name the password instead
        # (the file is the server's own, mode 600), and the slot as the application name.
        cat >> "$datadir/postgresql.auto.conf" <<CONF
primary_conninfo = 'host=$primary_host port=$primary_port user=$REPLICATION_ROLE password=''$ENTRYEXIT_REPLICATION_PASSWORD'' application_name=$slot'
CONF
        chmod 600 "$datadir/postgresql.auto.conf"
    fi
    start "$datadir" "$port"
    echo "replica on $PG_LISTEN:$port streaming from $primary_host:$primary_port ($datadir)"
}

case "${1:-}" in
    primary) [[ $# == 3 ]] || die "usage: primary DATADIR PORT"; primary "$2" "$3" ;;
    replica) [[ $# == 5 ]] || die "usage: replica DATADIR PORT PRIMARY_HOST PRIMARY_PORT"
             replica "$2" "$3" "$4" "$5" ;;
    stop)    [[ $# == 2 ]] || die "usage: stop DATADIR"
             "$PGBIN/pg_ctl" -D "$2" -m fast -w stop >/dev/null ;;
    lag)     [[ $# == 2 ]] || die "usage: lag PRIMARY_PORT"
             "$PGBIN/psql" -X -A -t -p "$2" -d postgres -c \
                 "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication" ;;
    *) die "usage: primary|replica|stop|lag ... (see the top of this file)" ;;
esac
