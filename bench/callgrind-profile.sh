#!/usr/bin/env bash
# Instructions per request of zaqar-server, counted by callgrind: repeatable
# whatever else the machine is doing (wall-clock figures are not), so this is
# how every change to the request path or the writer is measured.
#
# Starts the release server under `valgrind --tool=callgrind
# --separate-threads=yes` (embedded store in a temp dir), warms it up, zeroes
# the counters, drives WORKLOAD with zaqar-load, dumps the counters and
# prints the instructions per operation:
#   * request path: everything but the store's commit (hyper or
#     tungstenite, the transport, the host API, the plugin boundary, store
#     reads, handing writes to the writer);
#   * store commit: applying a batch, redb's commit, the journal, on the
#     writer thread or, for a write alone in flight, on its caller's worker;
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
#   SOCKET_SUBSCRIBERS=0  WebSocket connections subscribed to the measured
#                       queue (subscription_create without a subscriber,
#                       as a browser's), held open and reading their pushes
#                       from before the measured window to its end
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORKLOAD="${WORKLOAD:-post}"
TRANSPORT="${TRANSPORT:-http}"
OPS="${OPS:-4000}"
CLIENTS="${CLIENTS:-16}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
TOP="${TOP:-0}"
SOCKET_SUBSCRIBERS="${SOCKET_SUBSCRIBERS:-0}"
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
if ((SOCKET_SUBSCRIBERS > 0)); then
    PYTHON="$(bash "$ROOT/scripts/python-env.sh")"
    # Subscribes each socket, says "subscribed" once all are, then reads
    # pushes until it is killed.
    "$PYTHON" - "$WS" "$PREFIX-0" "$SOCKET_SUBSCRIBERS" >"$OUT/subscribers.txt" 2>&1 <<'PY' &
import asyncio, json, sys
import websockets

url, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
headers = {"Client-ID": "3381af92-2b9e-11e3-b191-71861300734c", "X-Project-ID": "zaqar-load"}

async def subscriber(ready):
    socket = await websockets.connect(url, max_size=None)
    frame = {"action": "subscription_create", "headers": headers,
             "body": {"queue_name": queue, "ttl": 3600}}
    await socket.send(json.dumps(frame))
    while True:
        answer = json.loads(await socket.recv())
        if answer.get("request", {}).get("action") == "subscription_create":
            status = answer.get("headers", {}).get("status")
            if status != 201:
                sys.exit(f"subscription_create answered {status}: {answer}")
            break
    ready.release()
    async for _ in socket:
        pass

async def main():
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(subscriber(ready)) for _ in range(count)]
    for _ in range(count):
        await ready.acquire()
    print("subscribed", flush=True)
    await asyncio.gather(*tasks)

asyncio.run(main())
PY
    SUBSCRIBERS_PID=$!
    PIDS+=("$SUBSCRIBERS_PID")
    for _ in $(seq 600); do
        grep -q subscribed "$OUT/subscribers.txt" 2>/dev/null && break
        kill -0 "$SUBSCRIBERS_PID" 2>/dev/null || die "the subscribers failed: $(tail -n 3 "$OUT/subscribers.txt")"
        sleep 0.1
    done
    grep -q subscribed "$OUT/subscribers.txt" || die "the subscribers did not subscribe within 60 s"
fi
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

# One file per thread for the dump: callgrind.out.PID.1-NN. The store's
# commit (apply + redb commit + journal) runs on its writer thread, or on
# the tokio worker of a write that was alone in flight, so it is counted
# by function (`run_batch`, inclusive) wherever it ran, not by thread.
total=0 commit=0
REQUEST_FILES=() WRITER_FILES=()
for file in "$OUT"/callgrind.out."$SERVER_PID".1-*; do
    [[ -e $file ]] || continue
    count="$(awk '/^(summary|totals):/ { print $2; exit }' "$file")"
    count="${count:-0}"
    ((count > 0)) || continue
    total=$((total + count))
    in_commit="$(callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null |
        awk '/group_commit::run_batch \[/ && !seen++ { gsub(",", "", $1); print $1 }')"
    commit=$((commit + ${in_commit:-0}))
    if grep -qE 'group_commit::writer_loop' "$file"; then
        WRITER_FILES+=("$file")
    else
        REQUEST_FILES+=("$file")
    fi
done
request=$((total - commit))
per() { echo $(($1 / OPS)); }
printf '\n%s over %s, %s ops, %s clients, %s-byte messages, %s socket subscribers (instructions per op)\n' \
    "$WORKLOAD" "$TRANSPORT" "$OPS" "$CLIENTS" "$MESSAGE_SIZE" "$SOCKET_SUBSCRIBERS"
printf '| part | instructions per op |\n|---|---:|\n'
printf '| request path (everything but the store commit) | %s |\n' "$(per $request)"
printf '| store commit (apply + redb commit + journal, any thread) | %s |\n' "$(per $commit)"
printf '| whole process | %s |\n' "$(per $total)"
printf 'callgrind files: %s\n' "$OUT"

if ((TOP > 0)); then
    # REQUEST: the tokio workers (with the lone writes they committed
    # inline); WRITER: the store's writer thread.
    for group in REQUEST WRITER; do
        declare -n files="${group}_FILES"
        ((${#files[@]})) || continue
        # callgrind_annotate reads one data file (a second one would be
        # taken for a source file to annotate): one listing per thread.
        for file in "${files[@]}"; do
            printf '\n%s (%s): top %s functions (inclusive)\n' "$group" "${file##*/}" "$TOP"
            callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
                grep -v '^-' | sed -n "1,$((TOP + 20))p" | tail -n "$TOP"
        done
    done
fi
