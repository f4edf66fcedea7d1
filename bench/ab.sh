#!/usr/bin/env bash
# Two builds of zaqar-server side by side: ROUNDS rounds, each running the
# base build then the new one (a fresh server on the embedded store each
# time) at every producer count, so that a machine whose speed drifts
# during the run drifts for both alike. Prints every run, then per build
# and producer count the median of the rounds: post rate, p50, p99 and the
# server's CPU (user + system) per post.
#
# Usage: BASE_BIN=path/to/old/zaqar-server bash bench/ab.sh
#   (NEW_BIN defaults to this checkout's release build, built first)
# Environment (all optional):
#   ROUNDS=6            rounds
#   PRODUCERS="1 4 64"  producer counts (each posts one message per request)
#   DURATION=6          seconds measured per run (after 2 s of warm-up)
#   MESSAGE_SIZE=148    message body bytes
#   TRANSPORT=http      http | ws (WebSocket, JSON frames) | msgpack
#                       (WebSocket, MessagePack frames)
#   BENCH_BUILD=1       build first (0: use target/release as it is)
#   BENCH_OUT           results directory (default target/bench-ab/<time>)
#
# To compare a change: build the base, keep its binary, build the change:
#   git stash; cargo build --release -p zaqar-host
#   cp target/release/zaqar-server /tmp/base-server; git stash pop
#   BASE_BIN=/tmp/base-server bash bench/ab.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${ROUNDS:-6}"
PRODUCERS="${PRODUCERS:-1 4 64}"
DURATION="${DURATION:-6}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
TRANSPORT="${TRANSPORT:-http}"
OUT="${BENCH_OUT:-$ROOT/target/bench-ab/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

[[ -n ${BASE_BIN:-} && -x ${BASE_BIN:-} ]] || die "set BASE_BIN to the zaqar-server binary to compare against"
case $TRANSPORT in
http | ws | msgpack) ;;
*) die "TRANSPORT is http, ws or msgpack" ;;
esac
build_binaries
NEW_BIN="${NEW_BIN:-$SERVER}"
[[ -x $NEW_BIN ]] || die "missing $NEW_BIN"

RESULTS="$OUT/runs.tsv"
printf 'build\tproducers\tround\tposts_per_s\tp50_ms\tp99_ms\tcpu_us_per_post\n' >"$RESULTS"

# run_one LABEL BINARY PRODUCERS ROUND: one server, warm-up, one measured run.
run_one() {
    local label=$1 binary=$2 producers=$3 round=$4 target before after summary
    rm -rf "$WORK/data"
    embedded_config "$WORK/zaqar.toml" "wsgi websocket"
    SERVER="$binary" start_server "$label" "$WORK/zaqar.toml"
    case $TRANSPORT in
    http) target=(--url "http://$(listening_addr "$label" 'transport wsgi listening on')") ;;
    ws) target=(--ws "ws://$(listening_addr "$label" 'transport websocket listening on')") ;;
    msgpack) target=(--ws "ws://$(listening_addr "$label" 'transport websocket listening on')" --msgpack) ;;
    esac
    "$LOAD" "${target[@]}" --producers "$producers" --consumers 0 --duration 2s \
        --message-size "$MESSAGE_SIZE" --quiet >/dev/null 2>&1
    before="$(cpu_seconds "$SERVER_PID")"
    # zaqar-load exits non-zero when a request failed; its summary (with
    # the errors counted) is still printed and kept.
    summary="$("$LOAD" "${target[@]}" --producers "$producers" --consumers 0 \
        --duration "${DURATION}s" --message-size "$MESSAGE_SIZE" --quiet --json \
        2>>"$OUT/zaqar-load.err" || true)"
    after="$(cpu_seconds "$SERVER_PID")"
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    [[ -n $summary ]] || die "no summary from zaqar-load ($label, $producers producers, round $round): see $OUT/zaqar-load.err"
    python3 - "$label" "$producers" "$round" "$before" "$after" "$summary" >>"$RESULTS" <<'PY'
import json, sys
label, producers, rnd, before, after, summary = sys.argv[1:]
post = json.loads(summary)["operations"]["post"]
cpu_us = (float(after) - float(before)) * 1e6 / max(post["requests"], 1)
if post["errors"]:
    print(f"{label}, {producers} producers, round {rnd}: {post['errors']} failed posts", file=sys.stderr)
latency = post["latency_ms"]
print(f"{label}\t{producers}\t{rnd}\t{post['requests_per_s']:.0f}\t{latency['p50']:.2f}\t{latency['p99']:.2f}\t{cpu_us:.0f}")
PY
    tail -n 1 "$RESULTS" >&2
}

for ((round = 1; round <= ROUNDS; round++)); do
    for producers in $PRODUCERS; do
        run_one base "$BASE_BIN" "$producers" "$round"
        run_one new "$NEW_BIN" "$producers" "$round"
    done
done

python3 - "$RESULTS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("| producers | build | posts/s | p50 ms | p99 ms | server CPU µs/post |")
print("|---:|---|---:|---:|---:|---:|")
for producers in dict.fromkeys(r["producers"] for r in rows):
    for build in ("base", "new"):
        runs = [r for r in rows if r["producers"] == producers and r["build"] == build]
        med = lambda key: statistics.median(float(r[key]) for r in runs)
        print(f"| {producers} | {build} | {med('posts_per_s'):,.0f} | {med('p50_ms'):.2f} | "
              f"{med('p99_ms'):.2f} | {med('cpu_us_per_post'):.0f} |")
PY
log "every run: $RESULTS"
