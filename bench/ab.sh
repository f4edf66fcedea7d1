#!/usr/bin/env bash
# Two builds of zaqar-server side by side: ROUNDS rounds, each running the
# base build then the new one (a fresh server on the embedded store each
# time) at every producer count, so that a machine whose speed drifts
# during the run drifts for both alike. Prints every run, then per build
# and producer count the median of the rounds: post rate, p50, p99 and the
# server's CPU (user + system) per post. With WORKLOAD=consume, the same
# number of consumers (claim 10, delete each) instead, on the backlog that
# as many producers leave in DURATION seconds: messages consumed per
# second, the claims' p50 and p99, CPU per consumed message.
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
#   WORKLOAD=post       post | consume
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
WORKLOAD="${WORKLOAD:-post}"
OUT="${BENCH_OUT:-$ROOT/target/bench-ab/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

[[ -n ${BASE_BIN:-} && -x ${BASE_BIN:-} ]] || die "set BASE_BIN to the zaqar-server binary to compare against"
case $TRANSPORT in
http | ws | msgpack) ;;
*) die "TRANSPORT is http, ws or msgpack" ;;
esac
case $WORKLOAD in
post | consume) ;;
*) die "WORKLOAD is post or consume" ;;
esac
build_binaries
NEW_BIN="${NEW_BIN:-$SERVER}"
[[ -x $NEW_BIN ]] || die "missing $NEW_BIN"

RESULTS="$OUT/runs.tsv"
printf 'build\tclients\tround\tper_s\tp50_ms\tp99_ms\tcpu_us_per_op\n' >"$RESULTS"

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
    local measured=(--producers "$producers" --consumers 0)
    if [[ $WORKLOAD == consume ]]; then
        # The backlog, then consumers on it (and a warm-up while it is filled).
        "$LOAD" "${target[@]}" --producers "$producers" --consumers 0 \
            --duration "$((DURATION + 2))s" --message-size "$MESSAGE_SIZE" \
            --keep-queues --queue-prefix ab --quiet >/dev/null 2>&1
        measured=(--producers 0 --consumers "$producers" --claim-limit 10 --queue-prefix ab)
    else
        "$LOAD" "${target[@]}" --producers "$producers" --consumers 0 --duration 2s \
            --message-size "$MESSAGE_SIZE" --quiet >/dev/null 2>&1
    fi
    before="$(cpu_seconds "$SERVER_PID")"
    # zaqar-load exits non-zero when a request failed; its summary (with
    # the errors counted) is still printed and kept.
    summary="$("$LOAD" "${target[@]}" "${measured[@]}" \
        --duration "${DURATION}s" --message-size "$MESSAGE_SIZE" --quiet --json \
        2>>"$OUT/zaqar-load.err" || true)"
    after="$(cpu_seconds "$SERVER_PID")"
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    [[ -n $summary ]] || die "no summary from zaqar-load ($label, $producers producers, round $round): see $OUT/zaqar-load.err"
    python3 - "$label" "$producers" "$round" "$before" "$after" "$summary" "$WORKLOAD" >>"$RESULTS" <<'PY'
import json, sys
label, producers, rnd, before, after, summary, workload = sys.argv[1:]
summary = json.loads(summary)
if workload == "consume":
    op = summary["operations"]["claim"]
    done, rate = summary["totals"]["messages_deleted"], summary["totals"]["consumed_per_s"]
else:
    op = summary["operations"]["post"]
    done, rate = op["requests"], op["requests_per_s"]
cpu_us = (float(after) - float(before)) * 1e6 / max(done, 1)
errors = sum(o.get("errors", 0) for o in summary["operations"].values())
if errors:
    print(f"{label}, {producers} clients, round {rnd}: {errors} failed requests", file=sys.stderr)
latency = op["latency_ms"]
print(f"{label}\t{producers}\t{rnd}\t{rate:.0f}\t{latency['p50']:.2f}\t{latency['p99']:.2f}\t{cpu_us:.0f}")
PY
    tail -n 1 "$RESULTS" >&2
}

for ((round = 1; round <= ROUNDS; round++)); do
    for producers in $PRODUCERS; do
        run_one base "$BASE_BIN" "$producers" "$round"
        run_one new "$NEW_BIN" "$producers" "$round"
    done
done

python3 - "$RESULTS" "$WORKLOAD" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
if sys.argv[2] == "consume":
    print("| consumers | build | messages/s | claim p50 ms | claim p99 ms | server CPU µs/message |")
else:
    print("| producers | build | posts/s | p50 ms | p99 ms | server CPU µs/post |")
print("|---:|---|---:|---:|---:|---:|")
for clients in dict.fromkeys(r["clients"] for r in rows):
    for build in ("base", "new"):
        runs = [r for r in rows if r["clients"] == clients and r["build"] == build]
        med = lambda key: statistics.median(float(r[key]) for r in runs)
        print(f"| {clients} | {build} | {med('per_s'):,.0f} | {med('p50_ms'):.2f} | "
              f"{med('p99_ms'):.2f} | {med('cpu_us_per_op'):.0f} |")
PY
log "every run: $RESULTS"
