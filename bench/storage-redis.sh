#!/usr/bin/env bash
# The redis store under zaqar-load, side by side with the real Zaqar 23.0.1
# (its wsgi server and Redis driver) on the same Redis, beside Redis's own
# floor, in one run:
#   * floor: redis-benchmark SET of a 256-byte value, no pipelining (one
#     request in flight per client, as zaqar-load's clients), same client count;
#   * the real Zaqar, HTTP post then consume that backlog (claim 10, delete
#     each with its claim id);
#   * zaqar-server on the redis store, the same workloads.
# A private redis-server (no persistence) on a free port holds it all: the
# real Zaqar in database 1, zaqar-server in database 2, the floor in 3.
# Prints a table of messages/s, ours ÷ real Zaqar, and each ÷ the floor.
#
# Usage: bash bench/storage-redis.sh
# Environment (all optional):
#   DURATION=10s               length of each run
#   BENCH_LOW=4 BENCH_HIGH=64  the two client counts
#   ZAQAR_VENV                 the real Zaqar's venv (default: made by scripts/zaqar-venv.sh)
#   BENCH_OUT                  results directory (default target/bench-redis/<time>)
#   BENCH_BUILD=1              build first (0: use the binaries as they are)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead of target/release/
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/target/bench-redis/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/store-bench-lib.sh
source "$ROOT/bench/store-bench-lib.sh"

command -v redis-server >/dev/null || die "redis-server is missing"
command -v redis-benchmark >/dev/null || die "redis-benchmark is missing (Debian: redis-tools)"
VENV="${ZAQAR_VENV:-$(bash "$ROOT/scripts/zaqar-venv.sh")}"
[[ -x $VENV/bin/zaqar-server ]] || die "no zaqar-server in the venv $VENV"

build_binaries

# ---------------------------------------------------------------- redis
REDIS_PORT="$(free_port)"
log "starting a private redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    >"$OUT/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$REDIS_PORT" 20 redis-server

# ---------------------------------------------------------------- real Zaqar
REAL_PORT="$(free_port)"
cat >"$WORK/real-zaqar.conf" <<EOF
[DEFAULT]
auth_strategy =
admin_mode = True
debug = False
log_file = $OUT/real-zaqar.log

[drivers]
transport = wsgi
message_store = redis
management_store = redis

[drivers:message_store:redis]
uri = redis://127.0.0.1:$REDIS_PORT?dbid=1

[drivers:management_store:redis]
uri = redis://127.0.0.1:$REDIS_PORT?dbid=1

[drivers:transport:wsgi]
bind = 127.0.0.1
port = $REAL_PORT
EOF
log "starting the real Zaqar (wsgi) on 127.0.0.1:$REAL_PORT"
http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
    "$VENV/bin/zaqar-server" --config-file "$WORK/real-zaqar.conf" \
    >"$OUT/real-zaqar.out" 2>&1 &
PIDS+=($!)

# ---------------------------------------------------------------- ours
log "starting zaqar-server on the redis store"
start_ours ours "[drivers.message_store]
name = \"redis\"
[drivers.message_store.redis]
uri = \"redis://127.0.0.1:$REDIS_PORT/2\"
[drivers.management_store]
name = \"redis\"
[drivers.management_store.redis]
uri = \"redis://127.0.0.1:$REDIS_PORT/2\""
OURS="$OURS_URL"

REAL="http://127.0.0.1:$REAL_PORT"
wait_port "$REAL_PORT" 60 "the real Zaqar"
until curl -s -o /dev/null -w '%{http_code}' "$REAL/v2/ping" \
    -H 'Client-ID: 3381af92-2b9e-11e3-b191-71861300734c' -H 'X-Project-ID: bench' | grep -q 204; do
    sleep 0.3
done

record_setup \
    "Redis: $(redis-server --version | awk '{print $3}') private, 127.0.0.1:$REDIS_PORT, no persistence" \
    "real Zaqar: $("$VENV/bin/pip" show zaqar 2>/dev/null | awk '/^Version/ {print $2}') (wsgiref, HTTP/1.0) at $REAL, database 1" \
    "zaqar-server: redis store at $OURS, database 2"

# floor NAME CLIENTS: redis-benchmark SET, requests/s into $OUT/NAME.csv.
floor() {
    local name=$1 clients=$2
    log "redis-benchmark floor, $clients clients, pipeline 1"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum 3 -c "$clients" -P 1 -d 256 \
        -t set -n "${BENCH_FLOOR_REQUESTS:-200000}" -r 100000 --csv >"$OUT/$name.csv" 2>&1 || {
        cat "$OUT/$name.csv" >&2
        die "redis-benchmark failed"
    }
    sed 's/^/   /' "$OUT/$name.csv" >&2
}

for level in "$LOW" "$HIGH"; do
    floor "floor-$level" "$level"
    for role in post consume; do
        for target in real ours; do
            url="$OURS"
            [[ $target == real ]] && url="$REAL"
            log "$target: HTTP $role, $level clients"
            load "$target-$role-$level" "$url" "$level" "$role" "bench-$level"
            wait_loads
        done
    done
done

python3 "$ROOT/bench/store-report.py" redis "$OUT" "$LOW" "$HIGH" | tee "$OUT/report.md"
log "results in $OUT"
