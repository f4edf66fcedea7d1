# Shared by bench/storage-postgresql.sh and bench/storage-redis.sh (sourced,
# not run): process bookkeeping, free ports, starting zaqar-server on a given
# store, and one zaqar-load run with its JSON summary kept.
#
# The sourcing script sets ROOT and OUT first, and may append clean-up
# commands to CLEANUP_HOOKS (run after every process started here is stopped).

DURATION="${DURATION:-10s}"
LOW="${BENCH_LOW:-4}"
HIGH="${BENCH_HIGH:-64}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-storebench.XXXXXX")"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

log() { printf '== %s\n' "$*" >&2; }
die() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

PIDS=()
CLEANUP_HOOKS=()
CHILDREN=()
LOAD_NAMES=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${CHILDREN[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}" "${CHILDREN[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for hook in "${CLEANUP_HOOKS[@]}"; do
        eval "$hook" || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port seconds name
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || die "$3 did not listen on 127.0.0.1:$1 within $2 s (see $OUT)"
        sleep 0.2
    done
}

build_binaries() {
    if [[ ${BENCH_BUILD:-1} == 1 ]]; then
        log "building zaqar-server and zaqar-load (release)"
        (cd "$ROOT" && cargo build --release -q -p zaqar-host -p zaqar-load)
    fi
    local target_dir
    target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    SERVER="${BENCH_SERVER_BIN:-$target_dir/release/zaqar-server}"
    LOAD="${BENCH_LOAD_BIN:-$target_dir/release/zaqar-load}"
    [[ -x $SERVER && -x $LOAD ]] || die "missing $SERVER or $LOAD (build them, or unset BENCH_BUILD=0)"
}

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
    # zaqar-server reads every ZAQAR_* variable as configuration (and
    # refuses unknown ones), so ZAQAR_VENV and the like must not reach it.
    local vars
    mapfile -t vars < <(compgen -e | grep '^ZAQAR_' || true)
    env "${vars[@]/#/--unset=}" "$SERVER" --config "$WORK/$name.toml" \
        >"$OUT/$name.out" 2>"$OUT/$name.err" &
    PIDS+=($!)
    local deadline=$((SECONDS + 60)) line=
    while ((SECONDS < deadline)); do
        line="$(grep -m1 'transport wsgi listening on' "$OUT/$name.out" 2>/dev/null || true)"
        [[ -n $line ]] && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || die "$name exited: $(tail -n 5 "$OUT/$name.err")"
        sleep 0.1
    done
    [[ -n $line ]] || die "$name did not listen within 60 s (see $OUT/$name.err)"
    OURS_URL="http://${line##* }"
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
