#!/usr/bin/env bash
# One producer posting to a quiet server: a post every PAUSE_MS, so that
# each meets idle threads, cold caches and an idle disk, as a client of a
# queue that sees a message now and then does. zaqar-server (release,
# embedded store, durable) beside the durable floor (`zaqar-load
# reference-server --durable-dir`: the post's body written and fdatasynced
# by one thread before its answer) and bare hyper (`zaqar-load
# reference-server`: answers like a post, stores nothing), the three
# alternating, ROUNDS times; reports p50 and p99 of each and ours ÷ the
# durable floor's. The same runs without a pause come first in each round,
# for the warm figures beside the quiet ones.
#
# Usage: bash bench/quiet-post.sh
# Environment (all optional):
#   ROUNDS=3            rounds
#   PAUSE_MS=200        a producer's idle time before each post
#   DURATION=20         seconds per quiet run (100 posts at 200 ms)
#   WARM_DURATION=5     seconds per run without a pause (0: none)
#   MESSAGE_SIZE=148    message body bytes
#   BENCH_BUILD=1       build first (0: use target/release as it is)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead
#   BENCH_OUT           results directory (default target/bench-quiet-post/<time>)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
PAUSE_MS="${PAUSE_MS:-200}"
DURATION="${DURATION:-20}"
WARM_DURATION="${WARM_DURATION:-5}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
OUT="${BENCH_OUT:-$ROOT/target/bench-quiet-post/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

build_binaries
start_http_servers

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(uname -sr)"
    echo "rounds: $ROUNDS; a post every ${PAUSE_MS} ms for ${DURATION} s, back to back for ${WARM_DURATION} s; ${MESSAGE_SIZE}-byte bodies"
} | tee "$OUT/setup.txt" >&2

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

# one_producer ROUND NAME URL SECONDS PAUSE: one line in $RESULTS.
one_producer() {
    local round=$1 name=$2 url=$3 seconds=$4 pause=$5
    "$LOAD" --url "$url" --quiet --json --duration "${seconds}s" --message-size "$MESSAGE_SIZE" \
        --queues 1 --producers 1 --consumers 0 --post-pause "${pause}ms" \
        --queue-prefix "quiet-$name-$round" >"$OUT/$name-$round.json" 2>"$OUT/$name-$round.txt" &
    foreground $! || die "zaqar-load $name failed: $(tail -n 3 "$OUT/$name-$round.txt")"
    python3 - "$OUT/$name-$round.json" "$round" "$name" "$pause" >>"$RESULTS" <<'PY'
import json, sys
summary, round_, name, pause = json.load(open(sys.argv[1])), *sys.argv[2:]
post = summary["operations"]["post"]
if post["errors"]:
    sys.exit(f"{name}: {post['errors']} failed posts")
print(json.dumps({"round": int(round_), "name": name, "pause_ms": int(pause),
                  "posts": post["requests"], **{k: post["latency_ms"][k] for k in ("p50", "p99")}}))
PY
}

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    for server in ours durable hyper; do
        case $server in
            ours) url=$OURS ;;
            durable) url=$DURABLE ;;
            hyper) url=$HYPER ;;
        esac
        if ((WARM_DURATION > 0)); then
            one_producer "$round" "$server" "$url" "$WARM_DURATION" 0
        fi
        one_producer "$round" "$server" "$url" "$DURATION" "$PAUSE_MS"
    done
done

python3 - "$RESULTS" <<'PY' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def find(round_, name, pause):
    return next(r for r in rows if (r["round"], r["name"], r["pause_ms"]) == (round_, name, pause))
print("| pause ms | round | posts (ours) | ours p50 ms | durable floor p50 ms | hyper p50 ms | ours p50 ÷ durable floor's | ours p99 ms | durable floor p99 ms | ours p99 ÷ durable floor's |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
worst = {}
for pause in sorted({r["pause_ms"] for r in rows}):
    for round_ in sorted({r["round"] for r in rows}):
        ours, durable, hyper = (find(round_, n, pause) for n in ("ours", "durable", "hyper"))
        p50, p99 = ours["p50"] / durable["p50"], ours["p99"] / durable["p99"]
        w = worst.setdefault(pause, [0, 0])
        w[0], w[1] = max(w[0], p50), max(w[1], p99)
        print(f"| {pause} | {round_} | {ours['posts']} | {ours['p50']:.3f} | {durable['p50']:.3f} | {hyper['p50']:.3f} | "
              f"{p50:.2f} | {ours['p99']:.3f} | {durable['p99']:.3f} | {p99:.2f} |")
print()
for pause, (p50, p99) in sorted(worst.items()):
    print(f"pause {pause} ms: worst ours ÷ durable floor p50 {p50:.2f}, p99 {p99:.2f}")
PY
log "results in $OUT"
