#!/usr/bin/env bash
# Durable queues side by side, one run, same machine, same message size:
#   * zaqar-server (release, embedded store in a temp dir) over HTTP,
#     WebSocket JSON and WebSocket MessagePack, driven by zaqar-load;
#   * RabbitMQ (the server on 127.0.0.1:5672, guest/guest, or RABBITMQ_URL):
#     durable queue, persistent messages, publisher confirms;
#   * NATS JetStream: a private `nats-server -js` started here on a free port
#     with file storage in a temp dir;
# the peers driven by zaqar-peers (bench/peers: lapin, async-nats);
#   * the durable WebSocket floor (`zaqar-load reference-server --websocket
#     --durable-dir`: each MessagePack post frame written and fdatasynced,
#     in groups, before its answer, and nothing else), publish only, driven
#     by zaqar-load as ours is: what no server that syncs before answering
#     can beat over WebSocket on this machine.
# For 4 and 64 producers: publish for DURATION, one message at a time, each
# waiting for its durable confirmation; then as many consumers take the
# backlog, acking (ours: claim 10, delete each) every message. Prints one
# table: rate, publish p50/p99, server CPU per message.
#
# Usage: bash bench/peers.sh
# Environment: DURATION=10 (seconds), PRODUCERS="4 64", MESSAGE_SIZE=148,
#   RABBITMQ_URL, RABBITMQ_PID (default: the local beam.smp), BENCH_BUILD=1,
#   SYSTEMS="http ws msgpack floor-msgpack rabbitmq jetstream", BENCH_OUT.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10}"
PRODUCERS="${PRODUCERS:-4 64}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
SYSTEMS="${SYSTEMS:-http ws msgpack floor-msgpack rabbitmq jetstream}"
RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
OUT="${BENCH_OUT:-$ROOT/target/bench-peers/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

build_binaries zaqar-peers
PEERS="$TARGET_DIR/release/zaqar-peers"

embedded_config "$WORK/zaqar.toml" "wsgi websocket"
start_server zaqar-server "$WORK/zaqar.toml"
ZAQAR_PID=$SERVER_PID
HTTP="http://$(listening_addr zaqar-server 'transport wsgi listening on')"
WS="ws://$(listening_addr zaqar-server 'transport websocket listening on')"

# NATS JetStream, private, file storage
if [[ " $SYSTEMS " == *" jetstream "* ]]; then
    command -v nats-server >/dev/null || die "nats-server is not installed (apt-get install nats-server)"
    NATS_PORT="$(free_port)"
    nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$OUT/nats-server.log" 2>&1 &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
    wait_port "$NATS_PORT" 10 nats-server
    NATS_VERSION="$(nats-server --version 2>&1 | head -1)"
fi
if [[ " $SYSTEMS " == *" floor-msgpack "* ]]; then
    mkdir -p "$WORK/floor"
    "$LOAD" reference-server --port 0 --websocket --durable-dir "$WORK/floor" \
        >"$OUT/durable-floor.out" 2>&1 &
    FLOOR_PID=$!
    PIDS+=("$FLOOR_PID")
    FLOOR_WS="ws://$(listening_addr durable-floor 'listening on')"
fi
if [[ " $SYSTEMS " == *" rabbitmq "* ]]; then
    RABBITMQ_PID="${RABBITMQ_PID:-$(pgrep -o -x beam.smp || true)}"
    [[ -n $RABBITMQ_PID ]] || log "no local beam.smp: RabbitMQ's CPU per message is not shown"
fi

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
# ours SYSTEM PRODUCERS: zaqar-server over SYSTEM (http, ws, msgpack), or the
# durable WebSocket floor (floor-msgpack, publish only), driven by zaqar-load.
ours() {
    local system=$1 n=$2 target pid=$ZAQAR_PID prefix="peers-$1-$2-$RANDOM"
    case $system in
    http) target=(--url "$HTTP") ;;
    ws) target=(--ws "$WS") ;;
    msgpack) target=(--ws "$WS" --msgpack) ;;
    floor-msgpack) target=(--ws "$FLOOR_WS" --msgpack) pid=$FLOOR_PID ;;
    esac
    local common=("${target[@]}" --quiet --json --queues 1 --queue-prefix "$prefix" --message-size "$MESSAGE_SIZE")
    local c0 c1 c2 consume_json=""
    c0="$(cpu_seconds "$pid")"
    "$LOAD" "${common[@]}" --producers "$n" --consumers 0 --duration "${DURATION}s" --keep-queues \
        >"$OUT/$system-$n-post.json" 2>>"$OUT/zaqar-load.err"
    c1="$(cpu_seconds "$pid")"
    # The floor's claims find nothing: it is measured publishing only.
    if [[ $system != floor-msgpack ]]; then
        consume_json="$OUT/$system-$n-consume.json"
        "$LOAD" "${common[@]}" --producers 0 --consumers "$n" --duration 600s \
            >"$consume_json" 2>>"$OUT/zaqar-load.err"
    fi
    c2="$(cpu_seconds "$pid")"
    python3 - "$system" "$n" "$c0" "$c1" "$c2" "$OUT/$system-$n-post.json" "$consume_json" >>"$RESULTS" <<'PY'
import json, sys
system, n, c0, c1, c2, post, consume = sys.argv[1:]
post = json.load(open(post))
posted = post["totals"]["messages_posted"]
lat = post["operations"]["post"]["latency_ms"]
if consume:
    consume = json.load(open(consume))
    consumed = consume["totals"]["messages_deleted"]
    consumed_row = {"messages": consumed, "per_s": consume["totals"]["consumed_per_s"],
                    "cpu_us_per_message": (float(c2) - float(c1)) * 1e6 / max(consumed, 1)}
else:
    consumed_row = {"messages": None, "per_s": None, "cpu_us_per_message": None}
print(json.dumps({
    "system": {"http": "zaqar HTTP", "ws": "zaqar WS JSON", "msgpack": "zaqar WS MsgPack"}.get(system, system),
    "producers": int(n),
    "publish": {"messages": posted, "per_s": post["totals"]["posted_per_s"], "p50_ms": lat["p50"], "p99_ms": lat["p99"],
                "cpu_us_per_message": (float(c1) - float(c0)) * 1e6 / max(posted, 1)},
    "consume": consumed_row,
}))
PY
}
for n in $PRODUCERS; do
    for system in $SYSTEMS; do
        log "$system, $n producers"
        case $system in
        http | ws | msgpack | floor-msgpack) ours "$system" "$n" ;;
        rabbitmq)
            "$PEERS" rabbitmq --url "$RABBITMQ_URL" --producers "$n" --duration "$DURATION" \
                --message-size "$MESSAGE_SIZE" ${RABBITMQ_PID:+--server-pid "$RABBITMQ_PID"} >>"$RESULTS" ;;
        jetstream)
            "$PEERS" jetstream --url "nats://127.0.0.1:$NATS_PORT" --producers "$n" --duration "$DURATION" \
                --message-size "$MESSAGE_SIZE" --server-pid "$NATS_PID" >>"$RESULTS" ;;
        *) die "unknown system $system" ;;
        esac
    done
done

python3 - "$RESULTS" "${NATS_VERSION:-}" <<'PY' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
names = {"rabbitmq": "RabbitMQ (durable, persistent, confirms)",
         "floor-msgpack": "durable WebSocket floor (MsgPack; syncs, parses only the action)",
         "jetstream": "NATS JetStream (file storage)"}
def f(v, fmt="{:,.0f}"):
    return "–" if v is None else fmt.format(v)
print("| system | producers | publish msgs/s | p50 ms | p99 ms | server CPU µs/msg | consume msgs/s | server CPU µs/msg |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    p, c = r["publish"], r["consume"]
    print(f"| {names.get(r['system'], r['system'])} | {r['producers']} | {f(p['per_s'])} | {f(p['p50_ms'], '{:.2f}')} | "
          f"{f(p['p99_ms'], '{:.2f}')} | {f(p.get('cpu_us_per_message'), '{:.1f}')} | {f(c['per_s'])} | "
          f"{f(c.get('cpu_us_per_message'), '{:.1f}')} |")
if sys.argv[2]:
    print(f"\n{sys.argv[2]}: before 2.10, JetStream acks a publish before its (lazy) fsync.")
PY
log "results in $OUT"
