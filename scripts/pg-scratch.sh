#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for benchmarks and trying
# `bwgate serve --store-backend postgres` by hand (the tests start their
# own, see tests/support/pg_cluster.rs). Debian's `postgresql` server
# binaries; as root the server runs as the `postgres` user.
#
#   scripts/pg-scratch.sh start DIR [PORT]   prints the connection string
#   scripts/pg-scratch.sh stop DIR           stops it and removes DIR
set -euo pipefail

bin=${BWGATE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[[ -x $bin/initdb ]] || { echo "pg-scratch: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 2; }
as_pg=()
[[ $(id -u) == 0 ]] && as_pg=(runuser -u postgres --)

cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
case $cmd in
  start)
    port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    mkdir -p "$dir"
    [[ ${#as_pg[@]} -gt 0 ]] && chown postgres "$dir"
    "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U bwgate -A trust -E UTF8 --locale=C --no-sync >/dev/null
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=300 -c shared_buffers=128MB" \
      start >/dev/null
    "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U bwgate -d postgres -c "CREATE DATABASE bwgate" >/dev/null
    echo "host=127.0.0.1 port=$port user=bwgate dbname=bwgate"
    ;;
  stop)
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "pg-scratch: start or stop" >&2; exit 2 ;;
esac
