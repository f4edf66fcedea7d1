# Shared by bench/storage-postgresql.sh and bench/storage-redis.sh (sourced,
# not run, on top of bench/lib.sh): starting zaqar-server on a given store,
# and zaqar-load runs in the background with their JSON summaries kept.
#
# The sourcing script sets ROOT and OUT first.

DURATION="${DURATION:-10s}"
LOW="${BENCH_LOW:-4}"
HIGH="${BENCH_HIGH:-64}"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
LOAD_NAMES=()

# start_ours NAME STORE-TOML: starts zaqar-server (HTTP only, port 0) with
# the given store tables; sets OURS_URL to its address.
start_ours() {
    local name=$1 store=$2
    cat >"$WORK/$name.toml" <<EOF
[server]
log_level = "warn"

[drivers]
transports = ["wsgi"]

$store

[drivers.transport.wsgi]
bind = "127.0.0.1"
port = 0
EOF
    start_server "$name" "$WORK/$name.toml"
    OURS_URL="http://$(listening_addr "$name" 'transport wsgi listening on')"
}

# load NAME URL WORKERS ROLE PREFIX [extra args]: one zaqar-load process in
# the background (ROLE post or consume, WORKERS of that role, 4 queues named
# PREFIX-0..3 kept afterwards), JSON in $OUT/NAME.json. Wait with wait_loads.
load() {
    local name=$1 url=$2 workers=$3 role=$4 prefix=$5
    shift 5
    local roles=(--producers "$workers" --consumers 0)
    [[ $role == consume ]] && roles=(--producers 0 --consumers "$workers" --claim-limit 10)
    "$LOAD" --quiet --json --duration "$DURATION" --message-size 256 --queues 4 \
        --keep-queues --queue-prefix "$prefix" --url "$url" "${roles[@]}" "$@" \
        >"$OUT/$name.json" 2>"$OUT/$name.txt" &
    CHILDREN+=($!)
    LOAD_NAMES+=("$name")
}

wait_loads() {
    local status=0 i
    for i in "${!CHILDREN[@]}"; do
        wait "${CHILDREN[i]}" || {
            status=$?
            cat "$OUT/${LOAD_NAMES[i]}.txt" >&2
            die "zaqar-load ${LOAD_NAMES[i]} failed (exit $status)"
        }
    done
    for name in "${LOAD_NAMES[@]}"; do
        sed -n '1,/^total/p' "$OUT/$name.txt" | sed "s/^/   [$name] /" >&2
    done
    CHILDREN=()
    LOAD_NAMES=()
}

# split TOTAL PARTS: TOTAL workers spread over PARTS processes, one count a line.
split() {
    local total=$1 parts=$2 i
    for ((i = 0; i < parts; i++)); do
        echo $(((total + parts - 1 - i) / parts))
    done
}

record_setup() {
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "duration per run: $DURATION; clients: $LOW and $HIGH; 256-byte messages, 4 queues"
        echo "zaqar-server: $SERVER (release)"
        printf '%s\n' "$@"
    } >"$OUT/setup.txt"
    cat "$OUT/setup.txt" >&2
}
