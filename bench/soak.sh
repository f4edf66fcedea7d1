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
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

build_binaries
CACHE_LINE=()
[[ -n ${CACHE_SIZE_MB:-} ]] && CACHE_LINE=("cache_size_mb = $CACHE_SIZE_MB")
embedded_config "$WORK/zaqar.toml" wsgi "${CACHE_LINE[@]}"
start_server server "$WORK/zaqar.toml"
URL="http://$(listening_addr server 'transport wsgi listening on')"
disk_mb() { du -sm "$WORK/data" | cut -f1; }

printf '| t (s) | posts/s | p50 ms | p99 ms | RSS MB | disk MB |\n|---:|---:|---:|---:|---:|---:|\n' | tee "$OUT/soak.md"
started=$SECONDS
while ((SECONDS - started < SOAK_SECONDS)); do
    "$LOAD" --url "$URL" --quiet --json --keep-queues --queues 1 --queue-prefix soak \
        --producers "$PRODUCERS" --consumers 0 --duration "${INTERVAL}s" \
        --message-ttl "$MESSAGE_TTL" --message-size "$MESSAGE_SIZE" >"$WORK/interval.json" 2>>"$OUT/load.err"
    python3 - "$WORK/interval.json" "$((SECONDS - started))" "$(rss_mb "$SERVER_PID")" "$(disk_mb)" <<'PY' | tee -a "$OUT/soak.md"
import json, sys
s = json.load(open(sys.argv[1]))
lat = s["operations"]["post"]["latency_ms"]
print(f"| {sys.argv[2]} | {s['totals']['posted_per_s']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | {sys.argv[3]} | {sys.argv[4]} |")
PY
done
echo "results in $OUT" >&2
