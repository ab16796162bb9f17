#!/usr/bin/env bash
# dev-cluster.sh: a local PostgreSQL cluster for jaxbp's MLflow tracking server, in a folder you choose.
#
# What it is for: development and tests (the test suite starts its PostgreSQL with it) and trying the team's
# server on one machine: initdb as a non-root user, 127.0.0.1 only, a role and database `mlflow` with a random
# password kept in a libpq password file; start, stop, status, dump and restore of that cluster.
# What it is not: a production setup (use Debian's own cluster: pg_createcluster, systemd's postgresql.service;
# see services/README.md), nor anything that listens beyond loopback.
set -euo pipefail

PROG=dev-cluster.sh
ROLE=mlflow  # the role and the database MLflow uses

usage() {
    cat <<EOF
usage: $PROG init DIR [--port PORT]     create a cluster in DIR (new or empty) on 127.0.0.1:PORT (default 5432)
       $PROG start DIR                  start it (again)
       $PROG stop DIR [--mode fast|immediate]
       $PROG status DIR                 exit status 0 running, 3 not
       $PROG dump DIR FILE              pg_dump -Fc of the mlflow database into FILE
       $PROG restore DIR FILE           pg_restore --clean --if-exists of FILE into the mlflow database

init runs initdb in DIR/data (as the postgres system user when run as root, else as you), listens on
127.0.0.1:PORT only with its unix socket in DIR and its log in DIR/postgres.log, creates role and database
'$ROLE' with a random password, and writes DIR/pgpass (libpq's password file, mode 0600, yours) and DIR/env:
    PGPASSFILE=DIR/pgpass
    JAXBP_BACKEND_STORE_URI=postgresql+psycopg://$ROLE@127.0.0.1:PORT/$ROLE
The password is never printed nor put in a URI: libpq and psycopg read it from \$PGPASSFILE. Then:
    set -a; . DIR/env; set +a; jaxbp server --backend-store-uri "\$JAXBP_BACKEND_STORE_URI"
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 2; }

# PostgreSQL's server binaries: pg_config --bindir if it has initdb, else the newest /usr/lib/postgresql/*/bin.
find_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1 && dir=$(pg_config --bindir 2>/dev/null) && [ -x "$dir/initdb" ]; then
        echo "$dir"; return
    fi
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    die "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
}

# Runs a command as the cluster's owner (runuser from root), from DIR so that no home folder is needed.
as_owner() {
    if [ "$(id -u)" = 0 ] && [ "$OWNER" != root ]; then
        (cd "$DIR" && runuser -u "$OWNER" -- "$@")
    else
        (cd "$DIR" && "$@")
    fi
}

# Runs a step; on failure, dies with its last line of output.
step() {
    local what=$1 out; shift
    if ! out=$("$@" 2>&1); then
        die "$what failed: $(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)"
    fi
}

absolute() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

# DIR of an existing cluster: its owner and port.
open_cluster() {
    DIR=$(absolute "${1:?}")
    if [ ! -f "$DIR/env" ] || [ ! -d "$DIR/data" ]; then die "$DIR is not a cluster made by '$PROG init'"; fi
    OWNER=$(stat -c %U "$DIR/data")
    if [ "$(id -u)" != 0 ] && [ "$OWNER" != "$(id -un)" ]; then
        die "$DIR/data belongs to $OWNER: run this as $OWNER or as root"
    fi
    PORT=$(sed -n "s|^JAXBP_BACKEND_STORE_URI=.*@127\.0\.0\.1:\([0-9]*\)/.*|\1|p" "$DIR/env")
    [ -n "$PORT" ] || die "$DIR/env has no JAXBP_BACKEND_STORE_URI with a port"
    BIN=$(find_bindir)
}

running() { as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; }

start_cluster() {
    step "starting PostgreSQL (see $DIR/postgres.log)" \
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 start
}

# What init created is removed again if it fails part-way: nothing is left behind.
CREATED=none
undo_init() {
    [ "$CREATED" = none ] && return
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "$CREATED" = folder ]; then rm -rf "$DIR"; else find "$DIR" -mindepth 1 -delete; fi
}

create_role_and_database() {
    # printf is a shell builtin: the password goes to psql's stdin, never on a command line
    printf "CREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n" "$ROLE" "$1" "$ROLE" "$ROLE" |
        as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres
}

cmd_init() {
    [ $# -ge 1 ] || die "init needs a folder: $PROG init DIR [--port PORT]"
    DIR=$(absolute "$1"); shift
    PORT=5432
    while [ $# -gt 0 ]; do
        case $1 in
            --port) [ $# -ge 2 ] || die "--port needs a number"; PORT=$2; shift 2 ;;
            *) die "unknown option $1 (init takes --port PORT)" ;;
        esac
    done
    if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
        die "--port must be in 1..65535, got $PORT"
    fi
    [[ $DIR =~ ^[A-Za-z0-9._/+-]+$ ]] || die "folder $DIR: use letters, digits and ._+-/ only (it goes into config files)"
    local socket="$DIR/.s.PGSQL.$PORT"
    [ ${#socket} -le 107 ] || die "folder $DIR is too long for a unix socket path (${#socket} > 107 characters)"
    if [ -e "$DIR" ] && { [ ! -d "$DIR" ] || [ -n "$(ls -A "$DIR")" ]; }; then
        die "$DIR exists and is not an empty folder: choose a new one"
    fi
    BIN=$(find_bindir)
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "port $PORT on 127.0.0.1 is already in use; pick another with --port"
    fi
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 || die "run as root, but there is no 'postgres' system user to run PostgreSQL as (apt-get install postgresql creates it)"
        OWNER=postgres
    else
        OWNER=$(id -un)
    fi

    trap undo_init EXIT
    if [ -e "$DIR" ]; then CREATED=contents; else mkdir -p "$DIR"; CREATED=folder; fi
    chmod 700 "$DIR"
    if [ "$OWNER" != "$(id -un)" ]; then
        chown "$OWNER:" "$DIR"
        runuser -u "$OWNER" -- test -w "$DIR" 2>/dev/null ||
            die "the $OWNER user cannot reach $DIR (a parent folder is private): choose a folder under e.g. /srv or /tmp"
    fi
    step initdb as_owner "$BIN/initdb" -D "$DIR/data" -E UTF8 --no-locale --auth-local=peer --auth-host=scram-sha-256
    cat >>"$DIR/data/postgresql.conf" <<EOF

# $PROG: loopback only, the socket beside the data
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
EOF
    start_cluster
    local password
    password=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c 1-32)
    step "creating role and database $ROLE" create_role_and_database "$password"
    (umask 077 && printf '127.0.0.1:%s:*:%s:%s\nlocalhost:%s:*:%s:%s\n' "$PORT" "$ROLE" "$password" \
        "$PORT" "$ROLE" "$password" >"$DIR/pgpass")
    local uri="postgresql+psycopg://$ROLE@127.0.0.1:$PORT/$ROLE"
    printf 'PGPASSFILE=%s\nJAXBP_BACKEND_STORE_URI=%s\n' "$DIR/pgpass" "$uri" >"$DIR/env"
    CREATED=none
    trap - EXIT

    local version
    version=$("$BIN/postgres" --version | sed 's/^[^0-9]*\([0-9][0-9.]*\).*/\1/')
    echo "PostgreSQL $version cluster running in $DIR (127.0.0.1:$PORT, log $DIR/postgres.log)"
    echo "role and database $ROLE; its password is in $DIR/pgpass (PGPASSFILE, mode 0600)"
    echo "store URI: $uri"
    echo "next: set -a; . $DIR/env; set +a; jaxbp server --backend-store-uri \"\$JAXBP_BACKEND_STORE_URI\""
}

cmd_start() {
    [ $# -eq 1 ] || die "usage: $PROG start DIR"
    open_cluster "$1"
    if running; then echo "already running: $DIR (127.0.0.1:$PORT)"; return; fi
    start_cluster
    echo "running: $DIR (127.0.0.1:$PORT)"
}

cmd_stop() {
    [ $# -ge 1 ] || die "usage: $PROG stop DIR [--mode fast|immediate]"
    local where=$1 mode=fast; shift
    while [ $# -gt 0 ]; do
        case $1 in
            --mode) [ $# -ge 2 ] || die "--mode needs fast or immediate"; mode=$2; shift 2 ;;
            *) die "unknown option $1 (stop takes --mode fast|immediate)" ;;
        esac
    done
    [[ $mode =~ ^(fast|immediate)$ ]] || die "--mode must be fast or immediate, got $mode"
    open_cluster "$where"
    if ! running; then echo "not running: $DIR"; return; fi
    step "stopping PostgreSQL" as_owner "$BIN/pg_ctl" -D "$DIR/data" -m "$mode" -w -t 60 stop
    echo "stopped: $DIR"
}

cmd_status() {
    [ $# -eq 1 ] || die "usage: $PROG status DIR"
    open_cluster "$1"
    if running; then echo "running: $DIR (127.0.0.1:$PORT)"; exit 0; fi
    echo "not running: $DIR"
    exit 3
}

# pg_dump and pg_restore run as you, as role mlflow over TCP, with the password from DIR/pgpass.
client() { PGPASSFILE="$DIR/pgpass" "$@" -w -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$ROLE"; }

cmd_dump() {
    [ $# -eq 2 ] || die "usage: $PROG dump DIR FILE"
    open_cluster "$1"
    running || die "the cluster in $DIR is not running: $PROG start $DIR"
    local file
    file=$(absolute "$2")
    step pg_dump client "$BIN/pg_dump" -Fc -f "$file"
    echo "dumped database $ROLE to $file"
}

cmd_restore() {
    [ $# -eq 2 ] || die "usage: $PROG restore DIR FILE"
    open_cluster "$1"
    [ -f "$2" ] || die "no dump file $2"
    running || die "the cluster in $DIR is not running: $PROG start $DIR"
    local file
    file=$(absolute "$2")
    step pg_restore client "$BIN/pg_restore" --clean --if-exists --no-owner --single-transaction --exit-on-error "$file"
    echo "restored database $ROLE from $file"
}

case ${1:-} in
    init | start | stop | status | dump | restore) command=$1; shift; "cmd_$command" "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) die "unknown command $1 (init, start, stop, status, dump, restore; --help)" ;;
esac
