# Shared by the bench scripts (sourced, not run): logging, clean-up of every
# process a bench starts, free ports, CPU time of a process, building the
# release binaries, starting zaqar-server on the embedded store, and the
# HTTP floors beside it.
#
# The sourcing script sets ROOT and OUT first. It then adds the pid of every
# long-running process it starts to PIDS (stopped on exit, last first), of
# every short-lived one it waits for to CHILDREN (see `foreground`), and may
# append shell commands to CLEANUP_HOOKS (run after the processes stop).

BENCH_NAME="$(basename "$0" .sh)"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-$BENCH_NAME.XXXXXX")"
# Every address a bench uses is local; a proxy in the environment must not
# see the traffic.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

log() { printf '== %s\n' "$*" >&2; }
die() {
    printf '%s: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

PIDS=()
declare -A PID_OF=()
CHILDREN=()
CLEANUP_HOOKS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid i
    for pid in "${CHILDREN[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}" "${CHILDREN[@]}"; do
        # Give each a moment to stop, then insist.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    local hook
    for hook in "${CLEANUP_HOOKS[@]}"; do
        eval "$hook" || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits for a job started with & (a command in the foreground would delay
# Ctrl-C until it ends; `wait` lets the trap run at once).
foreground() {
    CHILDREN+=("$1")
    local status=0
    wait "$1" || status=$?
    unset 'CHILDREN[-1]'
    return "$status"
}

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

# User + system CPU seconds a process has used so far.
cpu_seconds() { # pid
    awk '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.2f\n", (f[12] + f[13]) / 100 }' "/proc/$1/stat"
}

rss_mb() { # pid
    awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

# build_binaries [more packages]: builds zaqar-server and zaqar-load (and the
# named packages) in release unless BENCH_BUILD=0; sets TARGET_DIR, SERVER
# and LOAD (BENCH_SERVER_BIN / BENCH_LOAD_BIN override the last two, e.g. to
# compare a saved build with the current one).
build_binaries() {
    if [[ ${BENCH_BUILD:-1} == 1 ]]; then
        log "building zaqar-server, zaqar-load $* (release)"
        local packages=(-p zaqar-host -p zaqar-load) package
        for package in "$@"; do packages+=(-p "$package"); done
        (cd "$ROOT" && cargo build --release -q "${packages[@]}")
    fi
    TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    SERVER="${BENCH_SERVER_BIN:-$TARGET_DIR/release/zaqar-server}"
    LOAD="${BENCH_LOAD_BIN:-$TARGET_DIR/release/zaqar-load}"
    [[ -x $SERVER && -x $LOAD ]] || die "missing $SERVER or $LOAD (build them, or leave BENCH_BUILD unset)"
}

# embedded_config FILE TRANSPORTS [STORE-LINE...]: a zaqar.toml serving
# TRANSPORTS (e.g. "wsgi websocket") on port 0 with both stores embedded in
# $WORK/data; STORE-LINEs go to [drivers.message_store.embedded].
embedded_config() {
    local file=$1 transports=$2 transport list=""
    shift 2
    for transport in $transports; do list+="${list:+, }\"$transport\""; done
    {
        echo '[server]'
        echo 'log_level = "warn,zaqar_host=info,transport_wsgi=info,transport_websocket=info"'
        echo '[drivers]'
        echo "transports = [$list]"
        echo '[drivers.message_store]'
        echo 'name = "embedded"'
        echo '[drivers.message_store.embedded]'
        echo "path = \"$WORK/data\""
        printf '%s\n' "$@"
        echo '[drivers.management_store]'
        echo 'name = "embedded"'
        echo '[drivers.management_store.embedded]'
        echo "path = \"$WORK/data\""
        for transport in $transports; do
            echo "[drivers.transport.$transport]"
            echo 'bind = "127.0.0.1"'
            echo 'port = 0'
        done
    } >"$file"
}

# start_server NAME CONFIG [WRAPPER...]: starts $SERVER (under WRAPPER, e.g.
# valgrind, if given) with CONFIG; output in $OUT/NAME.out and .err; sets
# SERVER_PID. zaqar-server reads every ZAQAR_* variable as configuration and
# refuses unknown ones, so the bench's own ZAQAR_* settings must not reach it.
start_server() {
    local name=$1 config=$2 vars
    shift 2
    mapfile -t vars < <(compgen -e | grep '^ZAQAR_' || true)
    env "${vars[@]/#/--unset=}" "$@" "$SERVER" --config "$config" \
        >"$OUT/$name.out" 2>"$OUT/$name.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    PID_OF[$name]=$SERVER_PID
}

# listening_addr NAME PATTERN [SECONDS]: the host:port at the end of the
# first line matching PATTERN in $OUT/NAME.out or .err (a server's
# "… listening on ADDR" log line). Fails early when NAME was started with
# start_server and has exited.
listening_addr() {
    local name=$1 pattern=$2 deadline=$((SECONDS + ${3:-60})) line pid=${PID_OF[$1]:-}
    while ((SECONDS < deadline)); do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            die "$name exited: $(tail -n 5 "$OUT/$name.err" 2>/dev/null)"
        fi
        line="$(grep -h -m1 "$pattern" "$OUT/$name.out" "$OUT/$name.err" 2>/dev/null | head -n1 || true)"
        if [[ -n $line ]]; then
            echo "${line##* }"
            return
        fi
        sleep 0.1
    done
    die "no '$pattern' from $name within ${3:-60} s (see $OUT/$name.err)"
}

# start_http_servers: zaqar-server serving HTTP on the embedded store in
# $WORK/data, the bare hyper reference server and the durable floor
# (`zaqar-load reference-server --durable-dir $WORK/floor`); sets OURS, HYPER
# and DURABLE to their base URLs. Needs build_binaries first.
start_http_servers() {
    embedded_config "$WORK/zaqar.toml" wsgi
    start_server zaqar-server "$WORK/zaqar.toml"
    OURS="http://$(listening_addr zaqar-server 'transport wsgi listening on')"
    "$LOAD" reference-server --port 0 >"$OUT/reference-server.out" 2>&1 &
    PIDS+=($!)
    HYPER="http://$(listening_addr reference-server 'listening on')"
    mkdir -p "$WORK/floor"
    "$LOAD" reference-server --port 0 --durable-dir "$WORK/floor" >"$OUT/durable-server.out" 2>&1 &
    PIDS+=($!)
    DURABLE="http://$(listening_addr durable-server 'listening on')"
}
