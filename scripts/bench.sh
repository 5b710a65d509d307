#!/usr/bin/env bash
# DESIGN.md "Performance goals", measured side by side in one run on this
# machine, loopback only:
#   (a) bare hyper+rustls mTLS server answering a fixed 200 (`bwgate bench-baseline`:
#       bwgate's own rustls ServerConfig, ALPN http/1.1),
#   (b) nginx from Debian answering a fixed 200 over the same mTLS setup,
#   (c) bwgate doing full flow-through AddUser provisioning, durable commit
#       (sqlite_synchronous = FULL, the default),
#   (d) the anchor for (c): `bwgate bench-store`, the same durable AddUser
#       work handed straight to the store (no TLS, HTTP, XML, credentials),
#   (e) (c) and (d) on PostgreSQL: one node, and two nodes on one database.
# For each: keep-alive throughput at max rate, full handshakes/s (a new
# TCP+TLS connection per request, resumption off), and p99 latency at half
# of that server's own max rate (fixed rate, coordinated-omission-corrected).
#
# Handshake runs use `--no-verify` on the client (it still presents its
# certificate; the server verifies it as always): a full mTLS handshake costs
# the client about as much as the server, so without it one client core
# cannot saturate one server core.
#
# Pinning: the server gets one core, the load tool the other. On the 2-vCPU
# Firecracker VMs this was written on, vCPU 1 is unusable for a server
# (keep-alive TCP sends there run ~100x slower) and its monotonic clock only
# advances in 4 ms steps; hence server on CPU 0 and load on CPU 1 by default,
# and the fixed-rate (latency) run moves the load tool onto the server's CPU
# whenever `bwgate load` reports a coarse clock on its own CPU (said so in the
# output).
#
# Env: BENCH_SECONDS (per measurement, default 10, max 60), BENCH_CONNECTIONS
# (keep-alive and fixed-rate connections, default 32), BENCH_HANDSHAKE_CONNECTIONS
# (default 16), BENCH_SERVER_CPU / BENCH_LOAD_CPU (taskset pinning, default 0 / 1),
# BENCH_PORT_BASE (default 18440; uses 4 ports from there), BENCH_SKIP_NGINX=1,
# BENCH_DIAG=0 (skip the synchronous=NORMAL and disk-latency diagnostics),
# BENCH_BIN (run this bwgate binary instead of building the checkout's),
# BENCH_PG=0 (skip the PostgreSQL section (e); it needs Debian's postgresql;
# uses 4 more ports after BENCH_PORT_BASE's).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
HS_CONNS=${BENCH_HANDSHAKE_CONNECTIONS:-16}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PORT_BASE=${BENCH_PORT_BASE:-18440}
for v in SECS CONNS HS_CONNS SERVER_CPU LOAD_CPU PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a number" >&2; exit 2; }
done
((SECS >= 1 && SECS <= 60)) || { echo "bench: BENCH_SECONDS must be 1..60" >&2; exit 2; }
PORT_A=$PORT_BASE PORT_B=$((PORT_BASE + 1)) PORT_C=$((PORT_BASE + 2)) PORT_ADMIN=$((PORT_BASE + 3))

if [[ -n ${BENCH_BIN:-} ]]; then
    # A before/after comparison runs a kept binary of the older commit.
    BIN=$(realpath "$BENCH_BIN")
    [[ -x $BIN ]] || { echo "bench: BENCH_BIN $BENCH_BIN is not executable" >&2; exit 2; }
else
    echo "building bwgate (release)..." >&2
    cargo build --release --quiet
    BIN=$PWD/target/release/bwgate
fi

NGINX=""
if [[ ${BENCH_SKIP_NGINX:-0} != 1 ]]; then
    NGINX=$(command -v nginx || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    if [[ -z $NGINX ]] && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "installing nginx from Debian..." >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; } >&2 || true
        NGINX=$(command -v nginx || true)
        [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    fi
    [[ -n $NGINX ]] || echo "bench: nginx not available; column (b) is skipped" >&2
fi

WORK=$(mktemp -d /tmp/bwgate-bench.XXXXXX)
SERVER_PID=""
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    [[ -d $WORK-pg ]] && scripts/pg-scratch.sh stop "$WORK-pg"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SPIN=() LPIN=() LATPIN=() PINNING="not pinned (taskset missing or fewer than 2 CPUs)"
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    SPIN=(taskset -c "$SERVER_CPU")
    LPIN=(taskset -c "$LOAD_CPU")
    PINNING="server pinned to CPU $SERVER_CPU, load tool to CPU $LOAD_CPU (taskset); each gets one core"
fi
LATPIN_NOTE=""

"$BIN" certs init --dir "$WORK/certs" >/dev/null
CERTS=$WORK/certs
# Same request bytes for every target: (a) and (b) ignore the credentials.
FAKE_AUTH=(--user bwgate-demo-provisioning --password xxxxxxxxxxxxxxxxxxxx)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_ready() { # port pid [file]
    for _ in $(seq 300); do
        if port_open "$1" && [[ -z ${3:-} || -s ${3:-} ]]; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
start_server() { # name port log cmd...
    local name=$1 port=$2 log=$3
    shift 3
    if port_open "$port"; then
        echo "bench: port $port is in use; set BENCH_PORT_BASE" >&2
        exit 1
    fi
    "${SPIN[@]}" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
}

COMMANDS=()
# load OUT ARGS...: one measurement; the JSON report goes to OUT.
# PIN=latency uses the latency pinning.
# WARMUP=1: a 2 s run that is neither recorded nor listed.
load() {
    local out=$1
    shift
    local pin=("${LPIN[@]}")
    [[ ${PIN:-} == latency ]] && pin=("${LATPIN[@]}")
    local secs=$SECS
    [[ -n ${WARMUP:-} ]] && secs=2
    local cmd=("${pin[@]}" "$BIN" load --cacert "$CERTS/ca.crt" --cert "$CERTS/client.crt"
        --key "$CERTS/client.key" --duration "${secs}s" --json "$@")
    if [[ -z ${WARMUP:-} ]]; then
        COMMANDS+=("${cmd[*]}")
        echo "  ${cmd[*]}" >&2
    fi
    if ! "${cmd[@]}" >"$out" 2>"$out.err"; then
        echo "bench: load failed: $(cat "$out.err")" >&2
        echo '{}' >"$out"
    fi
}
# jnum FILE KEY: first numeric value of "KEY" in a (pretty-printed) report.
jnum() { grep -m1 "\"$2\":" "$1" | sed -E 's/.*: *"?([0-9.]+).*/\1/' | grep -E '^[0-9.]+$' || echo 0; }
jstr() { grep -m1 "\"$2\":" "$1" | sed -E 's/.*: *"([^"]*)".*/\1/' || true; }
# problems FILE: non-ok responses and transport errors, if any.
problems() {
    local req ok
    req=$(jnum "$1" requests)
    ok=$(jnum "$1" ok)
    if [[ $req != "$ok" ]]; then
        echo "$(basename "$1" .json): $((req - ok)) of $req not ok: status $(tr -d ' \n' <"$1" | grep -o '"status":{[^}]*}') errorCodes $(tr -d ' \n' <"$1" | grep -o '"error_codes":{[^}]*}') transport $(tr -d ' \n' <"$1" | grep -o '"transport_errors":{[^}]*}')"
    fi
}

# cpu_ticks PID [THREAD_NAME]: CPU time (user + system, clock ticks) of
# the process's threads so far, or of those named THREAD_NAME.
cpu_ticks() {
    local stat sum=0 rest comm fields
    for stat in /proc/"$1"/task/*/stat; do
        rest=$(cat "$stat" 2>/dev/null) || continue
        comm=${rest#*(} comm=${comm%)*}
        [[ -n ${2:-} && $comm != "$2" ]] && continue
        read -r -a fields <<<"${rest##*) }"
        sum=$((sum + fields[11] + fields[12]))
    done
    echo "$sum"
}
# keep_alive NAME URL EXTRA...: the keep-alive max-rate run, with the
# server's CPU time during it (all threads, and bwgate's store writer).
keep_alive() {
    local name=$1 url=$2
    shift 2
    echo "[$name] warm-up (2 s keep-alive, not recorded)" >&2
    WARMUP=1 load "$WORK/$name-warmup.json" --url "$url" "$@" --connections "$CONNS"
    echo "[$name] keep-alive, max rate" >&2
    local all0 w0
    all0=$(cpu_ticks "$SERVER_PID") w0=$(cpu_ticks "$SERVER_PID" bwgate-sqlite-w)
    load "$WORK/$name-ka.json" --url "$url" "$@" --connections "$CONNS"
    echo "$(($(cpu_ticks "$SERVER_PID") - all0)) $(($(cpu_ticks "$SERVER_PID" bwgate-sqlite-w) - w0))" >"$WORK/$name-ka.cpu"
}
# measure NAME URL EXTRA...: the four measurements against one running server.
measure() {
    local name=$1 url=$2
    shift 2
    keep_alive "$name" "$url" "$@"
    echo "[$name] full handshakes, POST AddUser" >&2
    load "$WORK/$name-hs.json" --url "$url" "$@" --connections "$HS_CONNS" --mode handshake --no-verify
    echo "[$name] full handshakes, GET /" >&2
    load "$WORK/$name-hsget.json" --url "$url" "$@" --connections "$HS_CONNS" --mode handshake \
        --no-verify --method get --path-override /
    half_rate "$name" "$url" "$@"
}
# keep-alive max rate, then fixed rate at half of it.
measure_short() {
    local name=$1 url=$2
    shift 2
    keep_alive "$name" "$url" "$@"
    half_rate "$name" "$url" "$@"
}
half_rate() {
    local name=$1 url=$2
    shift 2
    local max half
    max=$(jnum "$WORK/$name-ka.json" ok_throughput)
    half=$(awk -v m="$max" 'BEGIN { h = int(m / 2); print (h < 1 ? 1 : h) }')
    if ((${#LPIN[@]})) && [[ -z ${LATPIN_SET:-} ]]; then
        LATPIN_SET=1
        LATPIN=("${LPIN[@]}")
        local step
        step=$(jnum "$WORK/$name-ka.json" clock_step_ns)
        if awk -v s="$step" 'BEGIN { exit !(s > 100000) }'; then
            LATPIN=("${SPIN[@]}")
            LATPIN_NOTE="the load tool's clock on CPU $LOAD_CPU advances in ${step} ns steps, so the fixed-rate (latency) runs put it on the server's CPU $SERVER_CPU (sharing it)"
            echo "bench: $LATPIN_NOTE" >&2
        fi
    fi
    echo "[$name] fixed rate $half req/s (half of $max)" >&2
    PIN=latency load "$WORK/$name-rate.json" --url "$url" "$@" --connections "$CONNS" --rate "$half"
    echo "$half" >"$WORK/$name-half"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$WORK/loadavg"

# (a) bare hyper + rustls
start_server baseline "$PORT_A" "$WORK/baseline.log" "$BIN" bench-baseline \
    --listen "127.0.0.1:$PORT_A" --certs "$CERTS"
wait_ready "$PORT_A" "$SERVER_PID" || { echo "bench: baseline did not start: $(cat "$WORK/baseline.log")" >&2; exit 1; }
measure a "https://127.0.0.1:$PORT_A/" "${FAKE_AUTH[@]}"
stop_server

# (b) nginx
if [[ -n $NGINX ]]; then
    mkdir -p "$WORK/nginx"
    sed -e "s|@DIR@|$WORK/nginx|g" -e "s|@PORT@|$PORT_B|g" -e "s|@CERTS@|$CERTS|g" \
        scripts/nginx-bench.conf.template >"$WORK/nginx/nginx.conf"
    start_server nginx "$PORT_B" "$WORK/nginx/stdout.log" "$NGINX" -p "$WORK/nginx" \
        -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
    if wait_ready "$PORT_B" "$SERVER_PID"; then
        measure b "https://127.0.0.1:$PORT_B/" "${FAKE_AUTH[@]}"
    else
        echo "bench: nginx did not start: $(cat "$WORK/nginx/error.log" "$WORK/nginx/stdout.log" 2>/dev/null)" >&2
        NGINX=""
    fi
    stop_server
fi

# (c) bwgate, embedded defaults (SQLite, synchronous = FULL), demo template.
# The per-AS rate limit is off: the load tool is one AS sending far more than
# any real one, and the point is what the gateway itself can do.
export BWGATE__LIMITS__RATE_PER_SEC=0
start_server bwgate "$PORT_C" "$WORK/bwgate.log" "$BIN" serve --listen "127.0.0.1:$PORT_C" \
    --admin-listen "127.0.0.1:$PORT_ADMIN" --portal-listen 127.0.0.1:0 --data-dir "$WORK/data" \
    --certs-dir "$CERTS" --log-level warn
wait_ready "$PORT_C" "$SERVER_PID" "$WORK/data/demo-template.json" ||
    { echo "bench: bwgate did not start: $(cat "$WORK/bwgate.log")" >&2; exit 1; }
measure c "$(jstr "$WORK/data/demo-template.json" provisioningUrl)" --demo "$WORK/data/demo-template.json"
curl -s "http://127.0.0.1:$PORT_ADMIN/metrics" >"$WORK/metrics.txt" || true
stop_server

# (d) the anchor for (c): the store alone doing the same durable AddUser
# work (same concurrency, delivery running), no TLS/HTTP/XML.
echo "[d] store alone: bwgate bench-store" >&2
STORE_CMD=("${SPIN[@]}" "$BIN" bench-store --seconds "$SECS" --concurrency "$CONNS" --data-dir "$WORK/data-store")
COMMANDS+=("${STORE_CMD[*]}")
"${STORE_CMD[@]}" >"$WORK/d-ka.json" 2>"$WORK/d-ka.err" || { echo "bench: bench-store failed: $(cat "$WORK/d-ka.err")" >&2; echo '{}' >"$WORK/d-ka.json"; }

# (e) PostgreSQL (store.backend = "postgres") when Debian's server binaries
# are here and BENCH_PG is not 0: a scratch cluster on loopback
# (scripts/pg-scratch.sh), then the store alone and bwgate end to end, one
# node and two nodes sharing the database. Nothing is pinned here: the
# database needs the CPUs too, and two nodes on one pinned core would not
# be two nodes.
PG_URL=""
# Beside $WORK, not in it: the server runs as the postgres user, which may
# not enter $WORK (mode 0700).
PG_DIR=$WORK-pg
if [[ ${BENCH_PG:-1} != 0 ]] && PG_URL=$(scripts/pg-scratch.sh start "$PG_DIR" 2>"$WORK/pg.err"); then
    PG_PORT1=$((PORT_BASE + 4)) PG_ADMIN1=$((PORT_BASE + 5)) PG_PORT2=$((PORT_BASE + 6)) PG_ADMIN2=$((PORT_BASE + 7))
    echo "[e] PostgreSQL at $PG_URL: store alone, one process" >&2
    PG_STORE_CMD=("$BIN" bench-store --seconds "$SECS" --concurrency "$CONNS" --store-url "$PG_URL")
    COMMANDS+=("scripts/pg-scratch.sh start DIR   # prints the URL" "${PG_STORE_CMD[*]}")
    "${PG_STORE_CMD[@]}" >"$WORK/dpg-ka.json" 2>"$WORK/dpg-ka.err" ||
        { echo "bench: bench-store (postgres) failed: $(cat "$WORK/dpg-ka.err")" >&2; echo '{}' >"$WORK/dpg-ka.json"; }
    echo "[e] store alone, two processes at once (two nodes)" >&2
    "${PG_STORE_CMD[@]}" >"$WORK/dpg2a.json" 2>"$WORK/dpg2a.err" &
    PG_B=$!
    "${PG_STORE_CMD[@]}" >"$WORK/dpg2b.json" 2>"$WORK/dpg2b.err" || echo '{}' >"$WORK/dpg2b.json"
    wait "$PG_B" || echo '{}' >"$WORK/dpg2a.json"
    SAVED_SPIN=("${SPIN[@]}") SAVED_LPIN=("${LPIN[@]}")
    SPIN=() LPIN=()
    pg_node() { # PORT ADMIN DATA LOG
        "$BIN" serve --listen "127.0.0.1:$1" --admin-listen "127.0.0.1:$2" --portal-listen 127.0.0.1:0 \
            --data-dir "$3" --certs-dir "$CERTS" --log-level warn --store-backend postgres --store-url "$PG_URL" \
            >"$4" 2>&1 &
    }
    COMMANDS+=("$BIN serve ... --store-backend postgres --store-url URL   # each node; the second gets the first's secret.key and demo-template.json")
    pg_node "$PG_PORT1" "$PG_ADMIN1" "$WORK/data-pg1" "$WORK/bwgate-pg1.log"
    SERVER_PID=$!
    if wait_ready "$PG_PORT1" "$SERVER_PID" "$WORK/data-pg1/demo-template.json"; then
        echo "[e] end to end, one node" >&2
        keep_alive cpg "$(jstr "$WORK/data-pg1/demo-template.json" provisioningUrl)" --demo "$WORK/data-pg1/demo-template.json"
        # The second node: same link secret and demo template (operators
        # copy secret.key to every node).
        mkdir -p "$WORK/data-pg2" && chmod 700 "$WORK/data-pg2"
        cp "$WORK/data-pg1/secret.key" "$WORK/data-pg1/demo-template.json" "$WORK/data-pg2/"
        cp "$WORK/data-pg1/ops-token.hash" "$WORK/data-pg2/" 2>/dev/null || true
        pg_node "$PG_PORT2" "$PG_ADMIN2" "$WORK/data-pg2" "$WORK/bwgate-pg2.log"
        PG_NODE2=$!
        if wait_ready "$PG_PORT2" "$PG_NODE2"; then
            sleep 1 # the demo file is rewritten with node 2's URL
            echo "[e] end to end, two nodes (half the connections each)" >&2
            HALF=$(((CONNS + 1) / 2))
            load "$WORK/cpg2a.json" --url "$(jstr "$WORK/data-pg1/demo-template.json" provisioningUrl)" \
                --demo "$WORK/data-pg1/demo-template.json" --connections "$HALF" &
            PG_LOAD=$!
            load "$WORK/cpg2b.json" --url "$(jstr "$WORK/data-pg2/demo-template.json" provisioningUrl)" \
                --demo "$WORK/data-pg2/demo-template.json" --connections "$HALF"
            wait "$PG_LOAD" || true
        else
            echo "bench: second PostgreSQL node did not start: $(cat "$WORK/bwgate-pg2.log")" >&2
        fi
        kill "$PG_NODE2" 2>/dev/null || true
        wait "$PG_NODE2" 2>/dev/null || true
    else
        echo "bench: bwgate on PostgreSQL did not start: $(cat "$WORK/bwgate-pg1.log")" >&2
    fi
    stop_server
    SPIN=("${SAVED_SPIN[@]}") LPIN=("${SAVED_LPIN[@]}")
    scripts/pg-scratch.sh stop "$PG_DIR"
elif [[ ${BENCH_PG:-1} != 0 ]]; then
    echo "bench: no PostgreSQL (column skipped): $(cat "$WORK/pg.err" 2>/dev/null)" >&2
fi

# Diagnostics for what bounds (c): the same run without fsync per commit
# (synchronous = NORMAL: not durable against power loss, never a default),
# and the disk's own write+fdatasync latency in the data directory.
if [[ ${BENCH_DIAG:-1} == 1 ]]; then
    BWGATE__STORE__SQLITE_SYNCHRONOUS=normal start_server bwgate-normal "$PORT_C" "$WORK/bwgate-normal.log" \
        "$BIN" serve --listen "127.0.0.1:$PORT_C" --admin-listen "127.0.0.1:$PORT_ADMIN" \
        --portal-listen 127.0.0.1:0 --data-dir "$WORK/data-normal" --certs-dir "$CERTS" --log-level warn
    if wait_ready "$PORT_C" "$SERVER_PID" "$WORK/data-normal/demo-template.json"; then
        measure_short n "$(jstr "$WORK/data-normal/demo-template.json" provisioningUrl)" \
            --demo "$WORK/data-normal/demo-template.json"
    fi
    stop_server
    DSYNC=$(dd if=/dev/zero of="$WORK/data/dsync.probe" bs=4k count=500 oflag=dsync 2>&1 |
        awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) t = $(i - 1); printf "%.0f", t * 1e6 / 500 }')
    rm -f "$WORK/data/dsync.probe"
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ----
val() { [[ -s $WORK/$1-$2.json ]] && jnum "$WORK/$1-$2.json" "$3" || echo ""; }
ratio() { [[ -n $1 && -n $2 ]] && awk -v c="$1" -v d="$2" 'BEGIN { if (d > 0) printf "%.2f", c / d; else print "-" }' || echo "-"; }
fmt() { [[ -n $1 ]] && awk -v x="$1" 'BEGIN { printf "%.0f", x }' || echo "-"; }
verdict() { # value op target
    [[ -n $1 && $1 != "-" ]] || { echo "-"; return; }
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print (ok ? "met" : "NOT met") }'
}
row() { # label key file goal-op goal-target goal-text
    local label=$1 file=$2 key=$3 op=$4 target=$5 goal=$6
    local a b c ca cb
    a=$(val a "$file" "$key")
    b=$(val b "$file" "$key")
    c=$(val c "$file" "$key")
    ca=$(ratio "$c" "$a")
    cb=$(ratio "$c" "$b")
    local check
    if [[ $op == "abs" ]]; then check=$(verdict "$c" "<=" "$target"); else check=$(verdict "$ca" "$op" "$target"); fi
    echo "| $label | $(fmt "$a") | $(fmt "$b") | $(fmt "$c") | $ca | $cb | $goal: $check |"
}

echo
echo "## bwgate benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo
echo "- $PINNING; $(cat "$WORK/loadavg"), after: $LOAD_AFTER"
if awk -v l="${LOAD_AFTER%% *}" 'BEGIN { exit !(l > 1.6) }'; then
    echo "- **warning**: the 1-minute load average reached ${LOAD_AFTER%% *} (server + load tool account for about 1.5); other processes competed for the CPUs, so these numbers are noisy: rerun on a quiet machine"
fi
echo "- load tool clock step on CPU $LOAD_CPU: $(jnum "$WORK/a-ka.json" clock_step_ns) ns${LATPIN_NOTE:+; $LATPIN_NOTE}"
echo "- each measurement ${SECS} s; keep-alive and fixed rate: $CONNS connections; handshakes: $HS_CONNS connections, one request per connection, client resumption off, client skips verifying the server (--no-verify; the server verifies the client certificate as always)"
echo "- TLS: (a) $(jstr "$WORK/a-ka.json" tls), (b) $( [[ -s $WORK/b-ka.json ]] && jstr "$WORK/b-ka.json" tls || echo n/a), (c) $(jstr "$WORK/c-ka.json" tls); HTTP/1.1"
echo "- (a) bare hyper+rustls fixed 200 (\`bwgate bench-baseline\`, bwgate's rustls config), (b) $( [[ -n $NGINX ]] && "$NGINX" -v 2>&1 | sed 's/.*: //' || echo "nginx: skipped") fixed 200, ssl_verify_client on, (c) bwgate flow-through AddUser (new subscriber per request), SQLite synchronous=FULL"
echo
echo "| measurement | (a) bare rustls | (b) nginx | (c) bwgate | c/a | c/b | goal |"
echo "|---|---|---|---|---|---|---|"
row "keep-alive throughput, req/s" ka ok_throughput ">=" 0.5 "c/a ≥ 0.50"
row "full mTLS handshakes/s (POST AddUser each)" hs ok_throughput ">=" 0.9 "c/a ≥ 0.90"
row "full mTLS handshakes/s (GET / each)" hsget ok_throughput ">=" 0.9 "c/a ≥ 0.90"
row "p99 latency µs at half own max rate" rate p99 abs 2000 "c ≤ 2000 µs"
echo
echo "Half rates used: (a) $(cat "$WORK/a-half" 2>/dev/null || echo -) (b) $(cat "$WORK/b-half" 2>/dev/null || echo -) (c) $(cat "$WORK/c-half" 2>/dev/null || echo -) req/s;" \
    "p50/p99/max µs at those rates: (a) $(val a rate p50)/$(val a rate p99)/$(val a rate max)" \
    "(b) $(val b rate p50)/$(val b rate p99)/$(val b rate max) (c) $(val c rate p50)/$(val c rate p99)/$(val c rate max);" \
    "keep-alive p99 µs at max rate: (a) $(val a ka p99) (b) $(val b ka p99) (c) $(val c ka p99)."
# cpu_per_request NAME: server CPU µs per ok request in the keep-alive run
# ("all writer"), from the tick counts and the run's ok count.
cpu_per_request() {
    [[ -s $WORK/$1-ka.cpu && -s $WORK/$1-ka.json ]] || { echo "- -"; return; }
    local ok
    ok=$(jnum "$WORK/$1-ka.json" ok)
    read -r all writer <"$WORK/$1-ka.cpu"
    awk -v a="$all" -v w="$writer" -v n="$ok" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.0f %.0f", a * 1e6 / hz / n, w * 1e6 / hz / n; else print "- -" }'
}
read -r CPU_A _ <<<"$(cpu_per_request a)"
read -r CPU_B _ <<<"$(cpu_per_request b)"
read -r CPU_C CPU_CW <<<"$(cpu_per_request c)"
D_TPUT=$(val d ka ok_throughput)
echo
echo "Anchor (d), the store alone (\`bwgate bench-store\`: the same durable AddUser work, $CONNS concurrent callers, delivery running, no TLS/HTTP/XML):" \
    "$(fmt "$D_TPUT") AddUser/s, $(val d ka cpu_us_per_add_user) µs CPU per AddUser ($(val d ka writer_cpu_us_per_add_user) µs in the writer);" \
    "bwgate end to end reaches c/d = $(ratio "$(val c ka ok_throughput)" "$D_TPUT") of its own store's throughput."
echo
echo "Server CPU per request in the keep-alive runs (what bounds one core):" \
    "(a) ${CPU_A} µs, (b) ${CPU_B} µs, (c) ${CPU_C} µs, of which ${CPU_CW} µs in bwgate's store writer thread" \
    "(SQLite: the AddUser's rows and indexes, the outbox, and the delivery that runs meanwhile: license ledger, status)." \
    "On one core c/a cannot exceed (a)/(c) CPU = $(ratio "$CPU_A" "$CPU_C"); the writer alone caps (c) at" \
    "$(awk -v w="$CPU_CW" 'BEGIN { if (w > 0) printf "%.0f", 1e6 / w; else print "-" }') req/s."
if [[ -s $WORK/dpg-ka.json ]]; then
    sum2() { awk -v x="$1" -v y="$2" 'BEGIN { if (x != "" && y != "") printf "%.1f", x + y }'; }
    D1=$(val dpg ka ok_throughput)
    D2=$(sum2 "$(jnum "$WORK/dpg2a.json" ok_throughput)" "$(jnum "$WORK/dpg2b.json" ok_throughput)")
    C1=$(val cpg ka ok_throughput)
    C2=""
    [[ -s $WORK/cpg2a.json && -s $WORK/cpg2b.json ]] &&
        C2=$(sum2 "$(jnum "$WORK/cpg2a.json" ok_throughput)" "$(jnum "$WORK/cpg2b.json" ok_throughput)")
    echo
    echo "PostgreSQL ($("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version | sed 's/.*) //'), scratch cluster on loopback, same machine; store.postgres_writers and pool at their defaults; not pinned):"
    echo
    echo "| AddUser/s | SQLite | PostgreSQL, one node | PostgreSQL, two nodes | one node / SQLite | two nodes / one |"
    echo "|---|---|---|---|---|---|"
    echo "| store alone (bench-store; two nodes: two processes) | $(fmt "$D_TPUT") | $(fmt "$D1") | $(fmt "$D2") | $(ratio "$D1" "$D_TPUT") | $(ratio "$D2" "$D1") |"
    echo "| end to end, keep-alive (SQLite pinned as in (c)) | $(fmt "$(val c ka ok_throughput)") | $(fmt "$C1") | $(fmt "$C2") | $(ratio "$C1" "$(val c ka ok_throughput)") | $(ratio "$C2" "$C1") |"
    echo
    echo "Goals (issue 12): one node on PostgreSQL ≥ 0.5 of SQLite: store $(verdict "$(ratio "$D1" "$D_TPUT")" ">=" 0.5), end to end $(verdict "$(ratio "$C1" "$(val c ka ok_throughput)")" ">=" 0.5);" \
        "two nodes beat one: store $(verdict "$(ratio "$D2" "$D1")" ">=" 1.0), end to end $(verdict "$(ratio "$C2" "$C1")" ">=" 1.0)." \
        "bench-store on PostgreSQL: $(val dpg ka cpu_us_per_add_user) µs bwgate CPU per AddUser ($(val dpg ka writer_cpu_us_per_add_user) µs in the writer lanes), $(val dpg ka store_writes_per_transaction) units per transaction, $(val dpg ka store_conflict_reruns) conflict reruns."
fi
PROBLEMS=$(for f in "$WORK"/[abcn]-*.json "$WORK"/cpg*.json; do [[ -e $f ]] && problems "$f"; done)
if [[ -n $PROBLEMS ]]; then
    echo
    echo "Errors (only ok responses count in the table):"
    echo "$PROBLEMS" | sed 's/^/- /'
fi
if [[ -s $WORK/n-ka.json ]]; then
    echo
    echo "Diagnostic, not a goal: bwgate with sqlite_synchronous = NORMAL (no fsync per commit):" \
        "$(fmt "$(val n ka ok_throughput)") req/s keep-alive (c/a $(ratio "$(val n ka ok_throughput)" "$(val a ka ok_throughput)"))," \
        "p50/p99 $(val n rate p50)/$(val n rate p99) µs at $(cat "$WORK/n-half" 2>/dev/null || echo -) req/s." \
        "Disk: 4 KiB write + fdatasync (dd oflag=dsync) mean ${DSYNC:-?} µs."
fi
if [[ -s $WORK/metrics.txt ]]; then
    m() { awk -v k="$1" '$1 == k { print $2; exit }' "$WORK/metrics.txt"; }
    commits=$(m bwgate_store_commits_total)
    bsum=$(m bwgate_store_batch_size_sum) bcount=$(m bwgate_store_batch_size_count)
    csum=$(m bwgate_store_commit_seconds_sum) ccount=$(m bwgate_store_commit_seconds_count)
    echo
    echo "bwgate store during (c): ${commits:-?} group commits;" \
        "mean batch $(awk -v s="$bsum" -v c="$bcount" 'BEGIN { if (c > 0) printf "%.1f", s / c; else print "?" }') writes;" \
        "mean commit (incl. fsync) $(awk -v s="$csum" -v c="$ccount" 'BEGIN { if (c > 0) printf "%.0f µs", 1e6 * s / c; else print "?" }')" \
        "(measured by the server; commits are serial, so writes/s ≤ batch / commit time)."
fi
echo
echo "Commands (certificates were in a temp dir, removed on exit):"
echo
echo '```sh'
for c in "${COMMANDS[@]}"; do echo "$c"; done
echo '```'
