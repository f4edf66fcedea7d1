#!/usr/bin/env bash
# Where a post's server CPU goes, thread by thread: zaqar-server (release,
# embedded store) and the durable floor for the same transport (`zaqar-load
# reference-server --durable-dir`: each post written and fdatasynced in
# groups before its answer, nothing else), each driven by the same
# zaqar-load run, alternating for ROUNDS rounds. After WARMUP seconds of
# load, the user and system CPU of every thread of the server over WINDOW
# seconds (/proc/PID/task/*/stat) is summed by thread name and divided by
# the posts answered in that window; voluntary and involuntary context
# switches per second come from /proc/PID/task/*/status. Two more rows per
# run: the client's own CPU per post over the same window (zaqar-load runs
# on the same cores), and how many cores server and client kept busy
# together. This is how the per-thread tables of docs/BENCHMARKS.md are
# made ("What a log of our own would save, by the wall clock; one `recv`
# per WebSocket frame"; "The CPU a post may cost at the rate the target
# asks").
#
# Usage: bash bench/thread-cpu.sh
# Environment (all optional):
#   TRANSPORT=msgpack   http | ws (JSON frames) | msgpack (WebSocket MessagePack)
#   PRODUCERS=64        concurrent producers, one small message per post
#   OPERATION=post      post | consume: 64 consumers (PRODUCERS of them)
#                       claiming 10 and deleting each with its claim id, on a
#                       backlog that as many producers post first for
#                       BACKLOG seconds (default 12); per consumed message
#   MESSAGE_SIZE=148    message body bytes
#   ROUNDS=2            rounds, each ours then the floor
#   WARMUP=2 WINDOW=5   seconds of load before and during the measurement
#   FLOOR=1             0: zaqar-server only
#   BENCH_BUILD=1       build first (0: use target/release as it is)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead
#   BENCH_SERVER_ENV    extra VAR=value words for zaqar-server's environment
#                       (e.g. a switch of a build made for a measurement)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TRANSPORT="${TRANSPORT:-msgpack}"
PRODUCERS="${PRODUCERS:-64}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-2}"
WINDOW="${WINDOW:-5}"
FLOOR="${FLOOR:-1}"
OPERATION="${OPERATION:-post}"
BACKLOG="${BACKLOG:-12}"
OUT="${BENCH_OUT:-$ROOT/target/thread-cpu/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

case $TRANSPORT in
http | ws | msgpack) ;;
*) die "TRANSPORT is http, ws or msgpack" ;;
esac
case $OPERATION in
post) ;;
consume) [[ $TRANSPORT == http ]] || die "OPERATION=consume is measured over HTTP" ;;
*) die "OPERATION is post or consume" ;;
esac
build_binaries

# target_args ADDRESS: zaqar-load's arguments for TRANSPORT.
target_args() {
    case $TRANSPORT in
    http) echo "--url http://$1" ;;
    ws) echo "--ws ws://$1" ;;
    msgpack) echo "--ws ws://$1 --msgpack" ;;
    esac
}

# One line per thread: id, name (spaces as _), user and system CPU in
# ticks, voluntary and involuntary context switches.
thread_snapshot() { # pid
    local task
    for task in /proc/"$1"/task/*; do
        printf '%s %s %s %s\n' \
            "${task##*/}" \
            "$(tr ' ' _ <"$task/comm")" \
            "$(awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[12], f[13] }' "$task/stat")" \
            "$(awk '/^voluntary_ctxt_switches|^nonvoluntary_ctxt_switches/ { printf "%s ", $2 }' "$task/status")"
    done 2>/dev/null || true
}

# measure LABEL PID ADDRESS: drives the server at ADDRESS and prints its
# per-thread CPU per post as table rows.
measure() {
    local label=$1 pid=$2 address=$3 before after load_pid summary window_start window_end
    local server_cpu client_cpu secs
    local clients=(--producers "$PRODUCERS" --consumers 0)
    if [[ $OPERATION == consume ]]; then
        # The floor hands out canned messages and needs no backlog.
        # shellcheck disable=SC2046
        [[ $label == durable-floor-* ]] || "$LOAD" $(target_args "$address") \
            --producers "$PRODUCERS" --consumers 0 --message-size "$MESSAGE_SIZE" \
            --duration "${BACKLOG}s" --keep-queues --queue-prefix backlog --quiet --json \
            >"$OUT/$label-backlog.json" 2>"$OUT/$label-backlog.err" ||
            die "zaqar-load could not post the backlog to $label (see $OUT/$label-backlog.err)"
        clients=(--producers 0 --consumers "$PRODUCERS" --claim-limit 10 --queue-prefix backlog)
    fi
    # shellcheck disable=SC2046
    "$LOAD" $(target_args "$address") "${clients[@]}" \
        --message-size "$MESSAGE_SIZE" --duration "$((WARMUP + WINDOW + 1))s" \
        --quiet --json >"$OUT/$label.json" 2>"$OUT/$label.err" &
    load_pid=$!
    CHILDREN+=("$load_pid")
    sleep "$WARMUP"
    before="$(thread_snapshot "$pid")"
    server_cpu="$(cpu_seconds "$pid")"
    client_cpu="$(cpu_seconds "$load_pid")"
    window_start="$(date +%s.%N)"
    sleep "$WINDOW"
    after="$(thread_snapshot "$pid")"
    server_cpu="$(awk -v a="$server_cpu" -v b="$(cpu_seconds "$pid")" 'BEGIN { print b - a }')"
    client_cpu="$(awk -v a="$client_cpu" -v b="$(cpu_seconds "$load_pid")" 'BEGIN { print b - a }')"
    window_end="$(date +%s.%N)"
    foreground "$load_pid" || die "zaqar-load failed against $label (see $OUT/$label.err)"
    summary="$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
if sys.argv[2] == "post":
    p = s["operations"]["post"]
    print(p["requests_per_s"], p["latency_ms"]["p50"], p["latency_ms"]["p99"])
else:
    d = s["operations"]["delete"]
    print(s["totals"]["consumed_per_s"], d["latency_ms"]["p50"], d["latency_ms"]["p99"])
' "$OUT/$label.json" "$OPERATION")"
    read -r rate p50 p99 <<<"$summary"
    secs="$(awk -v a="$window_start" -v b="$window_end" 'BEGIN { print b - a }')"
    # Threads are matched by id (one started during the window counts from
    # zero). The rate over the whole run stands for the window's: the
    # window lies inside the run, after the warm-up.
    awk -v label="$label" -v secs="$secs" \
        -v rate="$rate" -v p50="$p50" -v p99="$p99" '
        NR == FNR { was[$1] = $3 " " $4 " " $5 " " $6; next }
        {
            split(($1 in was) ? was[$1] : "0 0 0 0", b, " ")
            name = $2; user[name] += $3 - b[1]; sys[name] += $4 - b[2]
            vol[name] += $5 - b[3]; invol[name] += $6 - b[4]
        }
        END {
            posts = rate * secs; total = 0
            for (n in user) total += user[n] + sys[n]
            printf "| %s | %d | %.2f / %.2f | total | %.1f | | |\n", label, rate, p50, p99, total * 10000 / posts
            for (n in user) if (user[n] + sys[n] > 0)
                printf "| | | | %s | %.2f (user %.2f, system %.2f) | %d | %d |\n", n, (user[n] + sys[n]) * 10000 / posts, user[n] * 10000 / posts, sys[n] * 10000 / posts, vol[n] / secs, invol[n] / secs
        }' <(echo "$before") <(echo "$after")
    # The client shares the machine's two cores: what it spends per post
    # is CPU a faster server could not have (see docs/BENCHMARKS.md, "The
    # CPU a post may cost at the rate the target asks").
    awk -v secs="$secs" -v rate="$rate" -v server="$server_cpu" -v client="$client_cpu" 'BEGIN {
        posts = rate * secs
        printf "| | | | the client (zaqar-load; not in the total) | %.2f | | |\n", client * 1000000 / posts
        printf "| | | | cores busy (server + client) | %.2f | | |\n", (server + client) / secs
    }'
}

embedded_config "$WORK/zaqar.toml" "wsgi websocket"
if [[ $OPERATION == post ]]; then
    printf '\n%s, %d producers, %d-byte messages; µs of CPU per post, context switches per second\n' \
        "$TRANSPORT" "$PRODUCERS" "$MESSAGE_SIZE"
    echo '| server | posts/s | p50 / p99 ms | thread | µs per post | voluntary cs/s | involuntary cs/s |'
else
    printf '\n%s, %d consumers (claim 10, delete each), %d-byte messages; µs of CPU per consumed message, context switches per second; p50 / p99 of a delete\n' \
        "$TRANSPORT" "$PRODUCERS" "$MESSAGE_SIZE"
    echo '| server | consumed/s | p50 / p99 ms | thread | µs per message | voluntary cs/s | involuntary cs/s |'
fi
echo '|---|---:|---:|---|---:|---:|---:|'
for round in $(seq 1 "$ROUNDS"); do
    rm -rf "$WORK/data"
    # shellcheck disable=SC2086
    start_server "server-$round" "$WORK/zaqar.toml" env ${BENCH_SERVER_ENV:-}
    server_pid=$SERVER_PID
    if [[ $TRANSPORT == http ]]; then
        address="$(listening_addr "server-$round" 'transport wsgi listening on' 60)"
    else
        address="$(listening_addr "server-$round" 'transport websocket listening on' 60)"
    fi
    measure "zaqar-server-$round" "$server_pid" "$address"
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true

    [[ $FLOOR == 1 ]] || continue
    rm -rf "$WORK/floor"
    mkdir -p "$WORK/floor"
    floor_args=(reference-server --port 0 --durable-dir "$WORK/floor")
    [[ $TRANSPORT == http ]] || floor_args+=(--websocket)
    "$LOAD" "${floor_args[@]}" >"$OUT/floor-$round.out" 2>&1 &
    floor_pid=$!
    PIDS+=("$floor_pid")
    measure "durable-floor-$round" "$floor_pid" "$(listening_addr "floor-$round" 'listening on' 60)"
    kill "$floor_pid"
    wait "$floor_pid" 2>/dev/null || true
done
echo "files: $OUT"
