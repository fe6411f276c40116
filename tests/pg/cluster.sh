#!/bin/sh
# cluster.sh — a PostgreSQL cluster of the tests' own, on a temporary folder and a Unix socket,
# never the system's service: `cluster.sh start DIR` creates it in DIR (initdb), starts it
# (pg_ctl) and prints its connection URI; `cluster.sh stop DIR` stops it and removes DIR.
# initdb refuses to run as root (CI runs as root), so there it runs as the postgres user the
# Debian package creates, and DIR is handed to that user.
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: cluster.sh start|stop DIR" >&2; exit 2; }
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "cluster.sh: initdb not found (apt-get install postgresql-15)" >&2; exit 1; }
as() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir"
        # The postgres user must reach DIR: let it pass through the (private) folder above.
        chmod o+x "$(dirname "$dir")"
    fi
    as "$bindir/initdb" -D "$dir/data" -U rapport --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # No TCP at all: only the socket in DIR, which no other cluster on the machine uses.
    as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c full_page_writes=off" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://rapport@/postgres?host=$dir"
    ;;
stop)
    [ -d "$dir/data" ] && as "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: cluster.sh start|stop DIR" >&2; exit 2
    ;;
esac
