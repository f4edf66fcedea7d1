#!/usr/bin/env bash
# Durable queues side by side, one run, same machine, same message size:
#   * zaqar-server (release, embedded store in a temp dir) over HTTP,
#     WebSocket JSON and WebSocket MessagePack, driven by zaqar-load;
#   * RabbitMQ (the server on 127.0.0.1:5672, guest/guest, or RABBITMQ_URL):
#     durable queue, persistent messages, publisher confirms;
#   * NATS JetStream: a private `nats-server -js` started here on a free port
#     with file storage in a temp dir;
# the peers driven by zaqar-peers (bench/peers: lapin, async-nats).
# For 4 and 64 producers: publish for DURATION, one message at a time, each
# waiting for its durable confirmation; then as many consumers take the
# backlog, acking (ours: claim 10, delete each) every message. Prints one
# table: rate, publish p50/p99, server CPU per message.
#
# Usage: bash bench/peers.sh
# Environment: DURATION=10 (seconds), PRODUCERS="4 64", MESSAGE_SIZE=148,
#   RABBITMQ_URL, RABBITMQ_PID (default: the local beam.smp), BENCH_BUILD=1,
#   SYSTEMS="http ws msgpack rabbitmq jetstream", BENCH_OUT.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10}"
PRODUCERS="${PRODUCERS:-4 64}"
MESSAGE_SIZE="${MESSAGE_SIZE:-148}"
SYSTEMS="${SYSTEMS:-http ws msgpack rabbitmq jetstream}"
RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
OUT="${BENCH_OUT:-$ROOT/target/bench-peers/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-peers.XXXXXX")"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

die() { printf 'peers: %s\n' "$*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_seconds() { # pid
    awk '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.2f\n", (f[12] + f[13]) / 100 }' "/proc/$1/stat"
}

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ ${BENCH_BUILD:-1} == 1 ]]; then
    log "building zaqar-server, zaqar-load and zaqar-peers (release)"
    (cd "$ROOT" && cargo build --release -p zaqar-host -p zaqar-load -p zaqar-peers) >&2
fi
SERVER="$TARGET_DIR/release/zaqar-server"
LOAD="$TARGET_DIR/release/zaqar-load"
PEERS="$TARGET_DIR/release/zaqar-peers"

# zaqar-server
cat >"$WORK/zaqar.toml" <<TOML
[server]
log_level = "warn,zaqar_host=info,transport_wsgi=info,transport_websocket=info"
[drivers]
transports = ["wsgi", "websocket"]
[drivers.message_store]
name = "embedded"
[drivers.message_store.embedded]
path = "$WORK/data"
[drivers.management_store]
name = "embedded"
[drivers.management_store.embedded]
path = "$WORK/data"
[drivers.transport.wsgi]
bind = "127.0.0.1"
port = 0
[drivers.transport.websocket]
bind = "127.0.0.1"
port = 0
TOML
mapfile -t ZAQAR_VARS < <(compgen -e | grep '^ZAQAR_' || true)
env "${ZAQAR_VARS[@]/#/--unset=}" "$SERVER" --config "$WORK/zaqar.toml" \
    >"$OUT/zaqar-server.out" 2>"$OUT/zaqar-server.err" &
ZAQAR_PID=$!
PIDS+=("$ZAQAR_PID")
listening_addr() { # file pattern
    local deadline=$((SECONDS + 30)) line
    while ((SECONDS < deadline)); do
        line="$(grep -m1 "$2" "$1" 2>/dev/null || true)"
        [[ -n $line ]] && { echo "${line##* }"; return; }
        sleep 0.1
    done
    die "no '$2' in $1 within 30 s"
}
HTTP="http://$(listening_addr "$OUT/zaqar-server.out" 'transport wsgi listening on')"
WS="ws://$(listening_addr "$OUT/zaqar-server.out" 'transport websocket listening on')"

# NATS JetStream, private, file storage
if [[ " $SYSTEMS " == *" jetstream "* ]]; then
    command -v nats-server >/dev/null || die "nats-server is not installed (apt-get install nats-server)"
    NATS_PORT="$(free_port)"
    nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$OUT/nats-server.log" 2>&1 &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break; sleep 0.1; done
    NATS_VERSION="$(nats-server --version 2>&1 | head -1)"
fi
if [[ " $SYSTEMS " == *" rabbitmq "* ]]; then
    RABBITMQ_PID="${RABBITMQ_PID:-$(pgrep -o -x beam.smp || true)}"
    [[ -n $RABBITMQ_PID ]] || log "no local beam.smp: RabbitMQ's CPU per message is not shown"
fi

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
ours() { # transport producers
    local transport=$1 n=$2 target prefix="peers-$1-$2-$RANDOM"
    case $transport in
    http) target=(--url "$HTTP") ;;
    ws) target=(--ws "$WS") ;;
    msgpack) target=(--ws "$WS" --msgpack) ;;
    esac
    local common=("${target[@]}" --quiet --json --queues 1 --queue-prefix "$prefix" --message-size "$MESSAGE_SIZE")
    local c0 c1 c2
    c0="$(cpu_seconds "$ZAQAR_PID")"
    "$LOAD" "${common[@]}" --producers "$n" --consumers 0 --duration "${DURATION}s" --keep-queues \
        >"$OUT/$transport-$n-post.json" 2>>"$OUT/zaqar-load.err"
    c1="$(cpu_seconds "$ZAQAR_PID")"
    "$LOAD" "${common[@]}" --producers 0 --consumers "$n" --duration 600s \
        >"$OUT/$transport-$n-consume.json" 2>>"$OUT/zaqar-load.err"
    c2="$(cpu_seconds "$ZAQAR_PID")"
    python3 - "$transport" "$n" "$c0" "$c1" "$c2" "$OUT/$transport-$n-post.json" "$OUT/$transport-$n-consume.json" >>"$RESULTS" <<'PY'
import json, sys
transport, n, c0, c1, c2, post, consume = sys.argv[1:]
post, consume = json.load(open(post)), json.load(open(consume))
posted = post["totals"]["messages_posted"]
consumed = consume["totals"]["messages_deleted"]
lat = post["operations"]["post"]["latency_ms"]
print(json.dumps({
    "system": {"http": "zaqar HTTP", "ws": "zaqar WS JSON", "msgpack": "zaqar WS MsgPack"}[transport],
    "producers": int(n),
    "publish": {"messages": posted, "per_s": post["totals"]["posted_per_s"], "p50_ms": lat["p50"], "p99_ms": lat["p99"],
                "cpu_us_per_message": (float(c1) - float(c0)) * 1e6 / max(posted, 1)},
    "consume": {"messages": consumed, "per_s": consume["totals"]["consumed_per_s"],
                "cpu_us_per_message": (float(c2) - float(c1)) * 1e6 / max(consumed, 1)},
}))
PY
}
for n in $PRODUCERS; do
    for system in $SYSTEMS; do
        log "$system, $n producers"
        case $system in
        http | ws | msgpack) ours "$system" "$n" ;;
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
