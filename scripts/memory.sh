#!/usr/bin/env bash
# Memory over a long provisioning run (issue 6): does RSS stay flat once
# warmed up while bwgate provisions N subscribers (default 1,000,000)?
#
#   scripts/memory.sh            # 1,000,000 subscribers (~2.5 min at ~7k AddUser/s, plus the build)
#   scripts/memory.sh 200000     # a shorter run
#
# Builds release, starts `bwgate serve` on a temporary data dir (SQLite,
# synchronous = FULL, demo template, rate limit off), drives `bwgate load`
# (keep-alive, a new subscriber per AddUser) until N AddUser operations are
# accepted (200: the subscriber and its ProvisionSubscriber command are
# durably stored), and samples every MEM_INTERVAL seconds the server's RSS
# (/proc/PID/status VmRSS, with its anonymous and file-backed parts), the
# accepted and delivered counts (/metrics: AddUser accepted,
# ProvisionSubscriber delivered to the license core) and the database size on
# disk. Then it prints the samples, RSS after warm-up (the first sample at
# >= 10% of N), RSS at the end, the growth in bytes per subscriber, the
# database bytes per subscriber and /proc/PID/smaps_rollup.
#
# The load tool puts every subscriber in one enterprise, whose commands the
# delivery worker applies in order, a run of due commands per pass (two
# commits per pass). MEM_DRAIN=1 also waits (sampling) until every accepted
# subscriber is delivered.
#
# bwgate keeps no per-subscriber state in memory: the caches are per template
# (credentials, template index) and SQLite's page caches, which are bounded
# (writer: 64 MiB; each of the 4 read connections: SQLite's default 2000 KiB),
# so the memory they hold per stored subscriber falls as the database grows.
#
# Env: MEM_INTERVAL (seconds between samples, default 5), MEM_CONNECTIONS
# (load connections, default 32), MEM_SERVER_CPU / MEM_LOAD_CPU (taskset
# pinning, default 0 / 1), MEM_DRAIN=1, MEM_KEEP=1 (keep the temporary
# directory).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
INTERVAL=${MEM_INTERVAL:-5}
CONNS=${MEM_CONNECTIONS:-32}
SERVER_CPU=${MEM_SERVER_CPU:-0}
LOAD_CPU=${MEM_LOAD_CPU:-1}
for v in N INTERVAL CONNS SERVER_CPU LOAD_CPU; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "memory: $v must be a number" >&2; exit 2; }
done
((N >= 1000)) || { echo "memory: N must be at least 1000" >&2; exit 2; }
((INTERVAL >= 1)) || { echo "memory: MEM_INTERVAL must be at least 1" >&2; exit 2; }

echo "building bwgate (release)..." >&2
cargo build --release --quiet
BIN=$PWD/target/release/bwgate

WORK=$(mktemp -d /tmp/bwgate-memory.XXXXXX)
SERVER_PID="" LOAD_PID=""
cleanup() {
    [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${MEM_KEEP:-0} == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SPIN=() LPIN=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    SPIN=(taskset -c "$SERVER_CPU")
    LPIN=(taskset -c "$LOAD_CPU")
fi

"$BIN" certs init --dir "$WORK/certs" >/dev/null
DATA=$WORK/data
BWGATE__LIMITS__RATE_PER_SEC=0 "${SPIN[@]}" "$BIN" serve --listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --portal-listen 127.0.0.1:0 --data-dir "$DATA" \
    --certs-dir "$WORK/certs" --log-level warn >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
    [[ -s $DATA/listen.json && -s $DATA/demo-template.json ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -s $DATA/listen.json ]] || { echo "memory: bwgate did not start" >&2; exit 1; }
ADMIN=$(sed -n 's/.*"admin" *: *"\([^"]*\)".*/\1/p' "$DATA/listen.json")

# metric NAME LABEL...: the sum of NAME's samples carrying every LABEL.
METRICS=""
metric() {
    local name=$1
    shift
    printf '%s\n' "$METRICS" | awk -v name="$name" -v labels="$*" '
        index($0, name "{") == 1 {
            n = split(labels, want, " "); ok = 1
            for (i = 1; i <= n; i++) if (index($0, want[i]) == 0) ok = 0
            if (ok) sum += $NF
        }
        END { printf "%d\n", sum }'
}
ACCEPTED=0 DELIVERED=0 RSS=0 ANON=0 FILE=0 DB=0
sample() {
    METRICS=$(curl -sf "http://$ADMIN/metrics" || true)
    ACCEPTED=$(metric bwgate_flowthrough_operations_total 'operation="AddUser"' 'result="accepted"')
    DELIVERED=$(metric bwgate_outbox_deliveries_total 'command="ProvisionSubscriber"' 'result="delivered"')
    read -r RSS ANON FILE < <(awk '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2}
        END {print r*1024, a*1024, f*1024}' "/proc/$SERVER_PID/status")
    DB=$(du -cb "$DATA"/bwgate.db* 2>/dev/null | awk 'END {print $1}')
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

START=$(date +%s)
ROWS=()
WARM_RSS="" WARM_COUNT="" WARM_T=""
record() {
    local t=$(($(date +%s) - START))
    ROWS+=("$(printf '| %5d | %9d | %9d | %8s | %8s | %8s | %8s |' "$t" "$ACCEPTED" "$DELIVERED" \
        "$(mib "$RSS")" "$(mib "$ANON")" "$(mib "$FILE")" "$(mib "$DB")")")
    echo "${ROWS[-1]}" >&2
    if [[ -z $WARM_RSS ]] && ((ACCEPTED >= N / 10)); then
        WARM_RSS=$RSS WARM_COUNT=$ACCEPTED WARM_T=$t
    fi
}

echo "provisioning $N subscribers; sampling every ${INTERVAL}s (t, accepted, delivered, RSS/anon/file MiB, db MiB):" >&2
LOAD_ARGS=(--demo "$DATA/demo-template.json" --cacert "$WORK/certs/ca.crt"
    --cert "$WORK/certs/client.crt" --key "$WORK/certs/client.key" -c "$CONNS"
    --duration 600s --timeout 30s --json)
RUNS=0
sample
record
while ((ACCEPTED < N)); do
    ((RUNS += 1))
    ((RUNS <= 20)) || { echo "memory: load made no progress; see $WORK/load-*.json" >&2; exit 1; }
    "${LPIN[@]}" "$BIN" load "${LOAD_ARGS[@]}" --requests $((N - ACCEPTED)) >"$WORK/load-$RUNS.json" 2>"$WORK/load-$RUNS.err" &
    LOAD_PID=$!
    while kill -0 "$LOAD_PID" 2>/dev/null; do
        sleep "$INTERVAL"
        sample
        record
    done
    wait "$LOAD_PID" || true
    LOAD_PID=""
    sample
done
LOAD_END=$(($(date +%s) - START))
sleep 1
sample
record
if [[ ${MEM_DRAIN:-0} == 1 ]]; then
    while ((DELIVERED < ACCEPTED)); do
        sleep "$INTERVAL"
        sample
        record
    done
fi
END_T=$(($(date +%s) - START))
[[ -n $WARM_RSS ]] || WARM_RSS=$RSS WARM_COUNT=$ACCEPTED WARM_T=$END_T

echo
echo "bwgate memory over $N subscribers ($(nproc) CPUs; load: -c $CONNS keep-alive, $RUNS run(s), ${LOAD_END}s; end at ${END_T}s)"
echo "(accepted = AddUser answered 200, subscriber stored; delivered = ProvisionSubscriber applied by the license core)"
echo
echo "|     t |  accepted | delivered | RSS MiB  | anon MiB | file MiB |  db MiB  |"
echo "|------:|----------:|----------:|---------:|---------:|---------:|---------:|"
printf '%s\n' "${ROWS[@]}"
echo
awk -v wr="$WARM_RSS" -v wc="$WARM_COUNT" -v wt="$WARM_T" -v er="$RSS" -v ec="$ACCEPTED" \
    -v db="$DB" -v dl="$DELIVERED" '
BEGIN {
    growth = er - wr
    cache = 64 * 1048576 + 4 * 2000 * 1024
    printf "RSS after warm-up (t=%ds, %d subscribers): %.1f MiB\n", wt, wc, wr / 1048576
    printf "RSS at the end (%d subscribers):           %.1f MiB\n", ec, er / 1048576
    printf "growth after warm-up: %+.1f MiB = %+.1f bytes per subscriber added (%d added)\n",
        growth / 1048576, (ec > wc ? growth / (ec - wc) : 0), ec - wc
    printf "RSS per stored subscriber at the end: %.0f bytes (the whole process)\n", er / ec
    printf "in-memory caches: no per-subscriber cache; SQLite page caches bounded at %.1f MiB = %.0f bytes per stored subscriber at the end\n",
        cache / 1048576, cache / ec
    printf "database on disk: %.1f MiB = %.0f bytes per subscriber (%d of %d delivered; the rest wait in the outbox)\n",
        db / 1048576, db / ec, dl, ec
}'
echo
echo "/proc/$SERVER_PID/smaps_rollup at the end:"
grep -E '^(Rss|Pss_Anon|Pss_File|Pss_Shmem|Anonymous|Swap):' "/proc/$SERVER_PID/smaps_rollup" | sed 's/^/  /'
