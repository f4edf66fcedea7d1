#!/usr/bin/env bash
# Sustained durable posting against zaqar-server (embedded store), printing
# per interval: post rate, p50/p99, the server's resident memory and the
# data directory's size on disk. Shows that memory stays within the store's
# configured bound ([drivers.message_store.embedded] cache_size_mb) and that
# disk use levels off once messages start to expire.
#
# Usage: bash bench/soak.sh
# Environment (all optional):
#   SOAK_SECONDS=420     length of the run
#   INTERVAL=10          seconds per line (one zaqar-load run each, back to back)
#   PRODUCERS=64         concurrent producers
#   MESSAGE_TTL=300      message ttl in seconds (expiry starts after this)
#   MESSAGE_SIZE=148     message body bytes
#   CACHE_SIZE_MB        the store's cache_size_mb (default: the store's default)
#   BENCH_BUILD=1        build first (0: use target/release as it is)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead
#   BENCH_OUT            results directory (default target/bench-soak/<time>)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SOAK_SECONDS="${SOAK_SECONDS:-420}"
INTERVAL="${INTERVAL:-10}"
PRODUCERS="${PRODUCERS:-64}"
MESSAGE_TTL="${MESSAGE_TTL:-300}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
OUT="${BENCH_OUT:-$ROOT/target/bench-soak/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-soak.XXXXXX")"

SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ ${BENCH_BUILD:-1} == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p zaqar-host -p zaqar-load) >&2
fi
SERVER="${BENCH_SERVER_BIN:-$TARGET_DIR/release/zaqar-server}"
LOAD="${BENCH_LOAD_BIN:-$TARGET_DIR/release/zaqar-load}"

CACHE_LINE=
[[ -n ${CACHE_SIZE_MB:-} ]] && CACHE_LINE="cache_size_mb = $CACHE_SIZE_MB"
cat >"$WORK/zaqar.toml" <<TOML
[server]
log_level = "warn,zaqar_host=info,transport_wsgi=info"
[drivers]
transports = ["wsgi"]
[drivers.message_store]
name = "embedded"
[drivers.message_store.embedded]
path = "$WORK/data"
$CACHE_LINE
[drivers.management_store]
name = "embedded"
[drivers.management_store.embedded]
path = "$WORK/data"
[drivers.transport.wsgi]
bind = "127.0.0.1"
port = 0
TOML
mapfile -t ZAQAR_VARS < <(compgen -e | grep '^ZAQAR_' || true)
env "${ZAQAR_VARS[@]/#/--unset=}" "$SERVER" --config "$WORK/zaqar.toml" \
    >"$OUT/server.out" 2>"$OUT/server.err" &
SERVER_PID=$!
deadline=$((SECONDS + 30))
until line="$(grep -m1 'transport wsgi listening on' "$OUT/server.out" 2>/dev/null)"; do
    ((SECONDS < deadline)) || { echo "soak: the server did not start (see $OUT)" >&2; exit 1; }
    sleep 0.1
done
URL="http://${line##* }"

rss_mb() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
disk_mb() { du -sm "$WORK/data" | cut -f1; }

printf '| t (s) | posts/s | p50 ms | p99 ms | RSS MB | disk MB |\n|---:|---:|---:|---:|---:|---:|\n' | tee "$OUT/soak.md"
started=$SECONDS
while ((SECONDS - started < SOAK_SECONDS)); do
    "$LOAD" --url "$URL" --quiet --json --keep-queues --queues 1 --queue-prefix soak \
        --producers "$PRODUCERS" --consumers 0 --duration "${INTERVAL}s" \
        --message-ttl "$MESSAGE_TTL" --message-size "$MESSAGE_SIZE" >"$WORK/interval.json" 2>>"$OUT/load.err"
    python3 - "$WORK/interval.json" "$((SECONDS - started))" "$(rss_mb)" "$(disk_mb)" <<'PY' | tee -a "$OUT/soak.md"
import json, sys
s = json.load(open(sys.argv[1]))
lat = s["operations"]["post"]["latency_ms"]
print(f"| {sys.argv[2]} | {s['totals']['posted_per_s']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | {sys.argv[3]} | {sys.argv[4]} |")
PY
done
echo "results in $OUT" >&2
