#!/usr/bin/env bash
# zaqar-server's HTTP post and consume rates against their floors, ROUNDS
# times back to back in one run, reporting every round and the worst:
#   * 64 producers posting one small message per request, driven by
#     zaqar-load and by wrk, against zaqar-server (release, embedded store,
#     durable: every answer after fdatasync) and against the bare hyper
#     reference server (`zaqar-load reference-server`: parses nothing,
#     stores nothing, answers like a post) — the ratio ours ÷ hyper — and
#     against the durable floor (the same server with `--durable-dir`: each
#     post's body written and fdatasynced, in groups by one thread, before
#     its answer: the least any durable server does) — ours ÷ durable, and
#     our p99 beside the durable floor's;
#   * 64 consumers (claim 10, delete each with its claim id) on the backlog
#     the posts left, in messages/s ÷ hyper's post rate in the same round,
#     and ÷ the durable floor's consume (its claims hand out canned
#     messages; each claim and each delete is synced before its answer);
#   * one producer's durable post p50 ÷ the disk's floor: rewriting a 4 KiB
#     page + fdatasync in the server's own data directory, one after another;
#     and ÷ that floor plus one producer's p50 against bare hyper (the round
#     trip no HTTP server can avoid), and ÷ one producer's p50 against the
#     durable floor.
#
# Usage: bash bench/http-floor.sh
# Environment (all optional):
#   ROUNDS=3            rounds (the worst of them is what a target must meet)
#   DURATION=10         seconds per run
#   CLIENTS=64          producers / consumers / wrk connections
#   MESSAGE_SIZE=148    message body bytes
#   BENCH_BUILD=1       build first (0: use target/release as it is)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead
#   BENCH_OUT           results directory (default target/bench-http-floor/<time>)
# Needs wrk (apt-get install wrk); without it the wrk rows are skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-64}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
OUT="${BENCH_OUT:-$ROOT/target/bench-http-floor/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

build_binaries
start_http_servers

HAVE_WRK=0
if command -v wrk >/dev/null; then
    HAVE_WRK=1
    BODY="$(python3 -c "import json,sys; print(json.dumps({'messages': [{'ttl': 300, 'body': 'x' * int(sys.argv[1])}]}))" "$MESSAGE_SIZE")"
    cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Client-ID"] = "3381af92-2b9e-11e3-b191-71861300734c"
wrk.headers["X-Project-ID"] = "http-floor"
LUA
else
    log "wrk is not installed (apt-get install wrk): its rows are skipped"
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rounds: $ROUNDS; ${DURATION} s per run; $CLIENTS clients; ${MESSAGE_SIZE}-byte bodies"
} | tee "$OUT/setup.txt" >&2

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
record() { # round name key value...
    python3 -c 'import json,sys; a=sys.argv[1:]; print(json.dumps({"round": int(a[0]), "name": a[1], **{a[i]: float(a[i+1]) for i in range(2, len(a), 2)}}))' "$@" >>"$RESULTS"
}

# Each run leaves its figures on one line in $WORK/last.
zaqar_load() { # round name url [args]
    local round=$1 name=$2 url=$3
    shift 3
    "$LOAD" --url "$url" --quiet --json --duration "${DURATION}s" --message-size "$MESSAGE_SIZE" \
        --queues 1 "$@" >"$OUT/$name-$round.json" 2>"$OUT/$name-$round.txt" &
    foreground $! || die "zaqar-load $name failed: $(tail -n 3 "$OUT/$name-$round.txt")"
    python3 - "$OUT/$name-$round.json" >"$WORK/last" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["totals"]
ops = s["operations"]
lat = (ops.get("post") or ops.get("claim") or {}).get("latency_ms", {})
print(t["posted_per_s"], t["consumed_per_s"], lat.get("p50", 0), lat.get("p99", 0))
PY
}

wrk_post() { # round name url
    local round=$1 name=$2 url=$3
    wrk -t2 -c"$CLIENTS" -d"${DURATION}s" --latency -s "$WORK/post.lua" \
        "$url/v2/queues/wrk-$round/messages" >"$OUT/$name-$round.txt" 2>&1 &
    foreground $! || die "wrk $name failed: $(tail -n 3 "$OUT/$name-$round.txt")"
    python3 - "$OUT/$name-$round.txt" >"$WORK/last" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", text, re.M)
p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", text, re.M)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if non2xx:
    sys.exit(f"wrk saw {non2xx.group(1)} error answers")
print(rate, ms(*p50.groups()), ms(*p99.groups()))
PY
}

disk_floor_p50() { # seconds
    python3 - "$WORK/data" "$1" >"$WORK/last" <<'PY'
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "fdatasync-floor")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
page = b"\x07" * 4096
os.pwrite(fd, page, 0)
os.fsync(fd)
samples, end = [], time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    t = time.perf_counter()
    os.pwrite(fd, page, 0)
    os.fdatasync(fd)
    samples.append((time.perf_counter() - t) * 1000)
os.close(fd)
os.unlink(path)
print(statistics.median(samples))
PY
}

for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS"
    zaqar_load "$round" load-post-hyper "$HYPER" --producers "$CLIENTS" --consumers 0 \
        --queue-prefix "hyper-$round"
    read -r ref_rate _ _ ref_p99 <"$WORK/last"
    zaqar_load "$round" load-post-ours "$OURS" --producers "$CLIENTS" --consumers 0 \
        --keep-queues --queue-prefix "floor-$round"
    read -r our_rate _ our_p50 our_p99 <"$WORK/last"
    zaqar_load "$round" load-post-durable "$DURABLE" --producers "$CLIENTS" --consumers 0 \
        --queue-prefix "durable-$round"
    read -r durable_rate _ _ durable_p99 <"$WORK/last"
    record "$round" "post, zaqar-load" hyper "$ref_rate" hyper_p99 "$ref_p99" \
        durable "$durable_rate" durable_p99 "$durable_p99" ours "$our_rate" ours_p50 "$our_p50" \
        ours_p99 "$our_p99"
    zaqar_load "$round" load-consume-ours "$OURS" --producers 0 --consumers "$CLIENTS" \
        --claim-limit 10 --queue-prefix "floor-$round"
    read -r _ consumed claim_p50 claim_p99 <"$WORK/last"
    zaqar_load "$round" load-consume-durable "$DURABLE" --producers 0 --consumers "$CLIENTS" \
        --claim-limit 10 --queue-prefix "durable-$round"
    read -r _ durable_consumed _ _ <"$WORK/last"
    record "$round" "consume (claim 10, delete each)" hyper "$ref_rate" \
        durable "$durable_consumed" ours "$consumed" ours_p50 "$claim_p50" ours_p99 "$claim_p99"
    if ((HAVE_WRK)); then
        wrk_post "$round" wrk-post-hyper "$HYPER"
        read -r wrk_ref _ wrk_ref_p99 <"$WORK/last"
        wrk_post "$round" wrk-post-ours "$OURS"
        read -r wrk_ours wrk_p50 wrk_p99 <"$WORK/last"
        wrk_post "$round" wrk-post-durable "$DURABLE"
        read -r wrk_durable _ wrk_durable_p99 <"$WORK/last"
        record "$round" "post, wrk" hyper "$wrk_ref" hyper_p99 "$wrk_ref_p99" \
            durable "$wrk_durable" durable_p99 "$wrk_durable_p99" ours "$wrk_ours" \
            ours_p50 "$wrk_p50" ours_p99 "$wrk_p99"
    fi
    disk_floor_p50 5
    read -r floor <"$WORK/last"
    zaqar_load "$round" load-post-one "$OURS" --producers 1 --consumers 0 --queue-prefix "one-$round"
    read -r one_rate _ one_p50 one_p99 <"$WORK/last"
    record "$round" "one producer p50 vs fdatasync" floor_p50 "$floor" \
        ours "$one_rate" ours_p50 "$one_p50" ours_p99 "$one_p99"
    # What no durable HTTP server can beat here: a round trip to a server
    # that does nothing, plus one sync.
    zaqar_load "$round" load-post-one-hyper "$HYPER" --producers 1 --consumers 0 \
        --queue-prefix "one-hyper-$round"
    read -r _ _ hyper_one_p50 _ <"$WORK/last"
    record "$round" "one producer p50 vs hyper's round trip + fdatasync" \
        floor_p50 "$(python3 -c "print($hyper_one_p50 + $floor)")" \
        ours "$one_rate" ours_p50 "$one_p50" ours_p99 "$one_p99"
    zaqar_load "$round" load-post-one-durable "$DURABLE" --producers 1 --consumers 0 \
        --queue-prefix "one-durable-$round"
    read -r _ _ durable_one_p50 _ <"$WORK/last"
    record "$round" "one producer p50 vs the durable floor's" floor_p50 "$durable_one_p50" \
        ours "$one_rate" ours_p50 "$one_p50" ours_p99 "$one_p99"
done

python3 - "$RESULTS" <<'PY' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
names = []
for r in rows:
    if r["name"] not in names:
        names.append(r["name"])
print("| run | round | hyper /s | durable floor /s | ours /s | ours ÷ hyper | ours ÷ durable | ours p50 ms | ours p99 ms | durable floor p99 ms | floor p50 ms | ours p50 ÷ floor |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def cell(v, fmt):
    return "–" if v is None else fmt.format(v)
worst = {}
for name in names:
    for r in (r for r in rows if r["name"] == name):
        ratio = r["ours"] / r["hyper"] if "hyper" in r else None
        durable = r["ours"] / r["durable"] if "durable" in r else None
        floor = r["ours_p50"] / r["floor_p50"] if "floor_p50" in r else None
        print(f"| {name} | {r['round']} | {cell(r.get('hyper'), '{:,.0f}')} | {cell(r.get('durable'), '{:,.0f}')} | "
              f"{r['ours']:,.0f} | {cell(ratio, '{:.2f}')} | {cell(durable, '{:.2f}')} | "
              f"{cell(r.get('ours_p50'), '{:.2f}')} | {cell(r.get('ours_p99'), '{:.2f}')} | "
              f"{cell(r.get('durable_p99'), '{:.2f}')} | "
              f"{cell(r.get('floor_p50'), '{:.3f}')} | {cell(floor, '{:.2f}')} |")
        w = worst.setdefault(name, {})
        if ratio is not None:
            w["ratio"] = min(w.get("ratio", ratio), ratio)
        if durable is not None:
            w["durable"] = min(w.get("durable", durable), durable)
        if floor is not None:
            w["floor"] = max(w.get("floor", floor), floor)
        if "ours_p99" in r:
            w["p99"] = max(w.get("p99", 0), r["ours_p99"])
        if r.get("durable_p99"):
            tail = r["ours_p99"] / r["durable_p99"]
            w["tail"] = max(w.get("tail", tail), tail)
print()
print("| run | worst ours ÷ hyper | worst ours ÷ durable | worst p99 ms | worst p99 ÷ durable floor's | worst p50 ÷ floor |")
print("|---|---:|---:|---:|---:|---:|")
for name, w in worst.items():
    print(f"| {name} | {cell(w.get('ratio'), '{:.2f}')} | {cell(w.get('durable'), '{:.2f}')} | {cell(w.get('p99'), '{:.2f}')} | "
          f"{cell(w.get('tail'), '{:.2f}')} | {cell(w.get('floor'), '{:.2f}')} |")
PY
log "results in $OUT"
