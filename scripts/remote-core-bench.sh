#!/usr/bin/env bash
# Flow-through AddUser load against a gateway whose license core is in
# process (`local`) or a `bwgate license-core serve` process (`remote`),
# then how long the delivery backlog takes to drain after the load ends.
# Gateway (and core) pinned to CPU 0, the load to CPU 1; the rate limit is
# lifted. Needs a release build, sqlite3 and bc. Usage:
#   scripts/remote-core-bench.sh local; scripts/remote-core-bench.sh remote
set -u
B=$(cd "$(dirname "$0")/.." && pwd)/target/release/bwgate
MODE=$1
export BWGATE__LIMITS__RATE_PER_SEC=1000000 BWGATE__LIMITS__RATE_BURST=1000000
D=${TMPDIR:-/tmp}/bwgate-remote-core-bench/$MODE; rm -rf $D; mkdir -p $D/g $D/c
cd $D/g
if [ "$MODE" = remote ]; then
  export BWGATE__LICENSE__MODE=remote BWGATE__LICENSE__REMOTE__URL=https://127.0.0.1:28443
fi
taskset -c 0 $B serve --listen 127.0.0.1:18443 --admin-listen 127.0.0.1:19090 --portal-listen 127.0.0.1:18444 --log-level warn > log 2>&1 &
G=$!
unset BWGATE__LICENSE__MODE BWGATE__LICENSE__REMOTE__URL
sleep 2
if [ "$MODE" = remote ]; then
  cd $D/c
  taskset -c 0 $B license-core serve --certs-dir $D/g/certs --listen 127.0.0.1:28443 --admin-listen 127.0.0.1:29090 --portal-listen 127.0.0.1:28444 --log-level warn > log 2>&1 &
  C=$!
  sleep 2
fi
cd $D/g
taskset -c 1 $B load --demo data/demo-template.json --cacert certs/ca.crt --cert certs/client.crt --key certs/client.key -c 16 -d 10s --json > load.json 2>/dev/null
START=$(date +%s.%N)
ACC=$(sqlite3 data/bwgate.db "SELECT count(*) FROM subscribers")
while true; do
  P=$(sqlite3 data/bwgate.db "SELECT count(*) FROM subscribers WHERE status='provisioned'" 2>/dev/null)
  [ "$P" = "$ACC" ] && break
  sleep 0.2
done
END=$(date +%s.%N)
echo "$MODE accepted=$ACC drained_after_load=$(echo "$END - $START" | bc)s ok/s=$(grep -o '"ok_throughput": *[0-9.]*' load.json | grep -o '[0-9.]*$')"
kill $G ${C:-} 2>/dev/null; wait 2>/dev/null
