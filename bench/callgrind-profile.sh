#!/usr/bin/env bash
# Instructions per request of zaqar-server, counted by callgrind: repeatable
# whatever else the machine is doing (wall-clock figures are not), so this is
# how every change to the request path or the writer is measured.
#
# Starts the release server under `valgrind --tool=callgrind
# --separate-threads=yes` (embedded store in a temp dir), warms it up, zeroes
# the counters, drives WORKLOAD with zaqar-load, dumps the counters and
# prints the instructions per operation:
#   * request path: every thread except the store's writer (tokio workers:
#     hyper or tungstenite, the transport, the host API, the plugin boundary,
#     store reads);
#   * writer: the embedded store's group-commit thread (applying the batch,
#     redb's commit, the journal);
#   * whole process.
#
# Usage: bash bench/callgrind-profile.sh
# Environment (all optional):
#   WORKLOAD=post       post | consume (claim CLAIM_LIMIT, delete each) | stats
#   TRANSPORT=http      http | ws (JSON frames) | msgpack (WebSocket MessagePack)
#   OPS=4000            messages posted (post), consumed (consume) or
#                       requests (stats) in the measured window
#   CLIENTS=16          concurrent producers / consumers
#   MESSAGE_SIZE=148    message body bytes
#   BENCH_BUILD=1       build first (0: use target/release as it is)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries (e.g. a saved
#                       build, to compare before and after a change)
#   BENCH_OUT           where the callgrind files go (default target/callgrind/<time>)
#   TOP=0               also print the N most expensive functions of each group
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORKLOAD="${WORKLOAD:-post}"
TRANSPORT="${TRANSPORT:-http}"
OPS="${OPS:-4000}"
CLIENTS="${CLIENTS:-16}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
TOP="${TOP:-0}"
OUT="${BENCH_OUT:-$ROOT/target/callgrind/$(date +%Y%m%d-%H%M%S)-$WORKLOAD-$TRANSPORT}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"

build_binaries
embedded_config "$WORK/zaqar.toml" "wsgi websocket"
start_server server "$WORK/zaqar.toml" \
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/callgrind.out.%p"
HTTP="http://$(listening_addr server 'transport wsgi listening on' 120)"
WS="ws://$(listening_addr server 'transport websocket listening on' 120)"
case $TRANSPORT in
http) TARGET=(--url "$HTTP") ;;
ws) TARGET=(--ws "$WS") ;;
msgpack) TARGET=(--ws "$WS" --msgpack) ;;
*) die "TRANSPORT is http, ws or msgpack" ;;
esac

PREFIX="cg$RANDOM"
load() { # extra zaqar-load arguments
    "$LOAD" "${TARGET[@]}" --quiet --keep-queues --queue-prefix "$PREFIX" --queues 1 \
        --message-size "$MESSAGE_SIZE" --timeout 120s "$@" >>"$OUT/load.txt" 2>&1
}

# Warm-up: the queue exists, every lazy path and cache is taken once.
load --producers "$CLIENTS" --consumers 0 --messages 400
case $WORKLOAD in
post)
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    load --producers "$CLIENTS" --consumers 0 --messages "$OPS"
    ;;
consume)
    load --producers "$CLIENTS" --consumers 0 --messages "$OPS"
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    load --producers 0 --consumers "$CLIENTS" --messages "$OPS"
    ;;
stats)
    load --producers "$CLIENTS" --consumers 0 --messages "$OPS"
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    QUEUE="$HTTP/v2/queues/$PREFIX-0/stats"
    for ((i = 0; i < OPS; i++)); do echo "url = \"$QUEUE\""; done >"$WORK/curl.cfg"
    curl -s -o /dev/null -Z --parallel-max "$CLIENTS" -K "$WORK/curl.cfg" \
        -H 'Client-ID: 3381af92-2b9e-11e3-b191-71861300734c' -H 'X-Project-ID: zaqar-load'
    ;;
*) die "WORKLOAD is post, consume or stats" ;;
esac
callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
sleep 1

# One file per thread for the dump: callgrind.out.PID.1-NN.
total=0 writer=0
for file in "$OUT"/callgrind.out."$SERVER_PID".1-*; do
    [[ -e $file ]] || continue
    count="$(awk '/^(summary|totals):/ { print $2; exit }' "$file")"
    count="${count:-0}"
    total=$((total + count))
    if grep -qE 'group_commit::(writer_loop|run_batch|apply_all)' "$file"; then
        writer=$((writer + count))
        WRITER_FILES+=("$file")
    else
        REQUEST_FILES+=("$file")
    fi
done
request=$((total - writer))
per() { echo $(($1 / OPS)); }
printf '\n%s over %s, %s ops, %s clients, %s-byte messages (instructions per op)\n' \
    "$WORKLOAD" "$TRANSPORT" "$OPS" "$CLIENTS" "$MESSAGE_SIZE"
printf '| part | instructions per op |\n|---|---:|\n'
printf '| request path (all threads but the writer) | %s |\n' "$(per $request)"
printf '| store writer thread | %s |\n' "$(per $writer)"
printf '| whole process | %s |\n' "$(per $total)"
printf 'callgrind files: %s\n' "$OUT"

if ((TOP > 0)); then
    for group in REQUEST WRITER; do
        declare -n files="${group}_FILES"
        ((${#files[@]})) || continue
        printf '\n%s: top %s functions (inclusive)\n' "$group" "$TOP"
        callgrind_annotate --inclusive=yes "${files[@]}" 2>/dev/null |
            grep -v '^-' | sed -n "1,$((TOP + 20))p" | tail -n "$TOP"
    done
fi
