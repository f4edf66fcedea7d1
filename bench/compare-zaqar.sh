#!/usr/bin/env bash
# Side-by-side benchmark, in one run, on this machine:
#   * the real Zaqar 23.0.1 (from PyPI, in a cached venv; Redis message and
#     management store on the local Redis, its own database index),
#   * zaqar-server (release build, embedded store in a temp dir),
#   * the bare hyper reference server (`zaqar-load reference-server`),
# all driven by the SAME zaqar-load workloads over HTTP and WebSocket; then
# Zaqar's own `zaqar-bench` against zaqar-server (and, for scale, against the
# real Zaqar). Prints every figure of both servers with the ratio and keeps
# the JSON summaries and logs.
#
# Usage: bash bench/compare-zaqar.sh
# Environment (all optional):
#   DURATION=10s            length of each zaqar-load run
#   BENCH_LOW=4 BENCH_HIGH=64   the two concurrency levels (workers per role)
#   BENCH_WS=1              also run the WebSocket workloads (0: HTTP only)
#   BENCH_ZAQAR_BENCH=1     also run zaqar-bench (0: skip)
#   ZAQAR_BENCH_HOME        venv cache (default ~/.cache/zaqar-bench)
#   BENCH_REDIS_DB=11       database index used on the local Redis
#   BENCH_OUT               results directory (default target/bench-compare/<time>)
#   BENCH_BUILD=1           build first (0: use the binaries as they are)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead of target/release/
#
# Everything listens on 127.0.0.1 on free ports; every process started here
# is stopped on exit. The real Zaqar's outbound HTTP goes to a dead local
# proxy (http_proxy=http://127.0.0.1:9), so nothing leaves the machine.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10s}"
LOW="${BENCH_LOW:-4}"
HIGH="${BENCH_HIGH:-64}"
RUN_WS="${BENCH_WS:-1}"
RUN_ZAQAR_BENCH="${BENCH_ZAQAR_BENCH:-1}"
BENCH_HOME="${ZAQAR_BENCH_HOME:-$HOME/.cache/zaqar-bench}"
VENV="$BENCH_HOME/venv"
REQUIREMENTS="$ROOT/bench/zaqar-requirements.txt"
REDIS_DB="${BENCH_REDIS_DB:-11}"
OUT="${BENCH_OUT:-$ROOT/target/bench-compare/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- build
build_binaries

# ---------------------------------------------------------------- venv
STAMP="$VENV/.requirements-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
if [[ ! -f "$STAMP" ]]; then
    log "installing Zaqar 23.0.1 into $VENV (once)"
    PYTHON="$(command -v python3.11 || command -v python3)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
    touch "$STAMP"
fi
"$VENV/bin/python" -c 'import zaqar, gevent, marktime' || die "the venv $VENV is incomplete; delete it and rerun"

# ---------------------------------------------------------------- redis
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    REDIS_PORT=6379
    log "using the local Redis 127.0.0.1:6379, database $REDIS_DB"
else
    command -v redis-server >/dev/null || die "no Redis on 127.0.0.1:6379 and no redis-server to start"
    REDIS_PORT="$(free_port)"
    REDIS_DB=0
    log "starting a private redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        >"$OUT/redis.log" 2>&1 &
    PIDS+=($!)
    wait_port "$REDIS_PORT" 20 redis-server
fi
REDIS_CLI=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$REDIS_DB")
"${REDIS_CLI[@]}" flushdb >/dev/null
CLEANUP_HOOKS+=('"${REDIS_CLI[@]}" flushdb >/dev/null 2>&1')

# ---------------------------------------------------------------- real Zaqar
zaqar_conf() { # transport port [notification_port]
    cat <<EOF
[DEFAULT]
auth_strategy =
admin_mode = True
debug = False
log_file = $OUT/real-zaqar-$1.log

[drivers]
transport = $1
message_store = redis
management_store = redis

[drivers:message_store:redis]
uri = redis://127.0.0.1:$REDIS_PORT?dbid=$REDIS_DB

[drivers:management_store:redis]
uri = redis://127.0.0.1:$REDIS_PORT?dbid=$REDIS_DB

EOF
    if [[ $1 == wsgi ]]; then
        printf '[drivers:transport:wsgi]\nbind = 127.0.0.1\nport = %s\n' "$2"
    else
        printf '[drivers:transport:websocket]\nbind = 127.0.0.1\nport = %s\nnotification_bind = 127.0.0.1\nnotification_port = %s\n' "$2" "$3"
    fi
}

start_real_zaqar() { # transport port [notification_port]
    zaqar_conf "$@" >"$WORK/zaqar-$1.conf"
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
        "$VENV/bin/zaqar-server" --config-file "$WORK/zaqar-$1.conf" \
        >"$OUT/real-zaqar-$1.out" 2>&1 &
    PIDS+=($!)
}

REAL_HTTP_PORT="$(free_port)"
log "starting the real Zaqar (wsgi) on 127.0.0.1:$REAL_HTTP_PORT"
start_real_zaqar wsgi "$REAL_HTTP_PORT"
if [[ $RUN_WS == 1 ]]; then
    REAL_WS_PORT="$(free_port)"
    REAL_NOTIFY_PORT="$(free_port)"
    log "starting the real Zaqar (websocket) on 127.0.0.1:$REAL_WS_PORT"
    start_real_zaqar websocket "$REAL_WS_PORT" "$REAL_NOTIFY_PORT"
fi

# ---------------------------------------------------------------- ours
log "starting zaqar-server (embedded store in $WORK/data)"
embedded_config "$WORK/zaqar.toml" "wsgi websocket"
start_server zaqar-server "$WORK/zaqar.toml"

log "starting the bare hyper reference server"
"$LOAD" reference-server --port 0 >"$OUT/reference-server.out" 2>&1 &
PIDS+=($!)

OURS_HTTP="http://$(listening_addr zaqar-server 'transport wsgi listening on')"
OURS_WS="ws://$(listening_addr zaqar-server 'transport websocket listening on')"
REF_HTTP="http://$(listening_addr reference-server 'listening on')"
REAL_HTTP="http://127.0.0.1:$REAL_HTTP_PORT"

wait_port "$REAL_HTTP_PORT" 60 "the real Zaqar (wsgi)"
until curl -s -o /dev/null -w '%{http_code}' "$REAL_HTTP/v2/ping" \
    -H 'Client-ID: 3381af92-2b9e-11e3-b191-71861300734c' -H 'X-Project-ID: bench' | grep -q 204; do
    sleep 0.3
done
if [[ $RUN_WS == 1 ]]; then
    wait_port "$REAL_WS_PORT" 60 "the real Zaqar (websocket)"
    REAL_WS="ws://127.0.0.1:$REAL_WS_PORT"
fi

cat >"$OUT/setup.txt" <<EOF
date: $(date -u +%Y-%m-%dT%H:%M:%SZ)
machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)
cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
duration per run: $DURATION; concurrency levels: $LOW and $HIGH workers per role
real Zaqar: $("$VENV/bin/pip" show zaqar 2>/dev/null | awk '/^Version/ {print $2}') (wsgiref, HTTP/1.0; websocket: autobahn), Redis 127.0.0.1:$REDIS_PORT db $REDIS_DB ($(redis-server --version | awk '{print $3}'))
zaqar-server: $SERVER (release), embedded store in $WORK/data
reference: $LOAD reference-server
ours: $OURS_HTTP $OURS_WS; real: $REAL_HTTP ${REAL_WS:-}; reference: $REF_HTTP
EOF
cat "$OUT/setup.txt" >&2

# ---------------------------------------------------------------- workloads
# run NAME TARGET URL-ARGS... -- LOAD-ARGS...: one zaqar-load run, JSON kept
# in $OUT/NAME.TARGET.json, the table in NAME.TARGET.txt.
run() {
    local name=$1 target=$2
    shift 2
    log "zaqar-load $name against $target"
    local status=0
    "$LOAD" --quiet --json --duration "$DURATION" --message-size 256 --queues 4 "$@" \
        >"$OUT/$name.$target.json" 2>"$OUT/$name.$target.txt" &
    foreground $! || status=$?
    if ((status != 0)); then
        cat "$OUT/$name.$target.txt" >&2
        die "zaqar-load $name against $target failed (exit $status)"
    fi
    sed -n '1,/^total/p' "$OUT/$name.$target.txt" | sed 's/^/   /' >&2
}

# Post, then consume what was posted (a backlog for the consumers), at each
# concurrency level; then a mixed run (producers, consumers, observers at
# once). Each workload runs on every server back to back, so that background
# noise on this shared machine hits them alike.
declare -A HTTP_URL=([ref]="$REF_HTTP" [real]="$REAL_HTTP" [ours]="$OURS_HTTP")
for level in "$LOW" "$HIGH"; do
    for target in ref real ours; do
        run "http-post-$level" "$target" --url "${HTTP_URL[$target]}" --producers "$level" \
            --consumers 0 --keep-queues --queue-prefix "bench-http-$level"
    done
    for target in real ours; do
        run "http-consume-$level" "$target" --url "${HTTP_URL[$target]}" --producers 0 \
            --consumers "$level" --claim-limit 10 --queue-prefix "bench-http-$level"
    done
done
for target in real ours; do
    run http-mixed "$target" --url "${HTTP_URL[$target]}" --producers 8 --consumers 4 --observers 2
done

if [[ $RUN_WS == 1 ]]; then
    declare -A WS_URL=([real]="$REAL_WS" [ours]="$OURS_WS")
    for level in "$LOW" "$HIGH"; do
        for target in real ours; do
            run "ws-post-$level" "$target" --ws "${WS_URL[$target]}" --producers "$level" \
                --consumers 0 --keep-queues --queue-prefix "bench-ws-$level"
        done
        for target in real ours; do
            run "ws-consume-$level" "$target" --ws "${WS_URL[$target]}" --producers 0 \
                --consumers "$level" --claim-limit 10 --queue-prefix "bench-ws-$level"
        done
    done
    for target in real ours; do
        run "ws-msgpack-post-$HIGH" "$target" --ws "${WS_URL[$target]}" --msgpack \
            --producers "$HIGH" --consumers 0 --keep-queues --queue-prefix "bench-wsmp-$HIGH"
    done
    for target in real ours; do
        run "ws-msgpack-consume-$HIGH" "$target" --ws "${WS_URL[$target]}" --msgpack \
            --producers 0 --consumers "$HIGH" --claim-limit 10 --queue-prefix "bench-wsmp-$HIGH"
    done
fi

# ---------------------------------------------------------------- zaqar-bench
if [[ $RUN_ZAQAR_BENCH == 1 ]]; then
    seconds="${DURATION%s}"
    [[ $seconds =~ ^[0-9]+$ ]] || seconds=10
    for target in ours real; do
        url="$OURS_HTTP"
        [[ $target == real ]] && url="$REAL_HTTP"
        log "zaqar-bench (10 producers, 5 consumers, 2 observers, ${seconds}s) against $target"
        "$VENV/bin/zaqar-bench" -s "$url" -t "$seconds" -pw 10 -cw 5 -ow 2 -qno 4 \
            >"$OUT/zaqar-bench.$target.txt" 2>"$OUT/zaqar-bench.$target.err" &
        foreground $! || die "zaqar-bench against $target failed: see $OUT/zaqar-bench.$target.err"
        sed -n '/^Producer/,$p' "$OUT/zaqar-bench.$target.txt" | sed 's/^/   /' >&2
    done
fi

# ---------------------------------------------------------------- report
python3 "$ROOT/bench/compare-report.py" "$OUT" | tee "$OUT/compare.md"
log "results in $OUT"
