#!/usr/bin/env bash
# The postgresql store under zaqar-load, beside PostgreSQL's own floor, in
# one run on one PostgreSQL:
#   * floor: pgbench, a script of one-row inserts (a 256-byte text column and
#     a bigserial key), one transaction each, with the same client count;
#   * one zaqar-server on the store: HTTP post, then consume that backlog
#     (claim 10, delete each with its claim id);
#   * three zaqar-servers on the same database, the clients spread over them
#     (one zaqar-load process per host, figures summed).
# Everything lives in a private database created here and dropped at the end.
# Prints a table of messages/s and the ratio to the floor of the same phase.
#
# Usage: bash bench/storage-postgresql.sh
# Environment (all optional):
#   DURATION=10s               length of each run
#   BENCH_LOW=4 BENCH_HIGH=64  the two client counts
#   BENCH_PG_ADMIN_URI         a role that may create databases
#                              (default postgresql://postgres@127.0.0.1:5432/postgres)
#   BENCH_POOL_SIZE=16         pool_size of each zaqar-server
#   BENCH_OUT                  results directory (default target/bench-postgresql/<time>)
#   BENCH_BUILD=1              build first (0: use the binaries as they are)
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN   use these binaries instead of target/release/
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/target/bench-postgresql/$(date +%Y%m%d-%H%M%S)}"
# shellcheck source=bench/store-bench-lib.sh
source "$ROOT/bench/store-bench-lib.sh"

ADMIN_URI="${BENCH_PG_ADMIN_URI:-postgresql://postgres@127.0.0.1:5432/postgres}"
POOL_SIZE="${BENCH_POOL_SIZE:-16}"
command -v pgbench >/dev/null || die "pgbench is missing (Debian: postgresql-client)"
psql "$ADMIN_URI" -Atqc 'SELECT 1' >/dev/null || die "PostgreSQL does not answer at $ADMIN_URI"

build_binaries

# ---------------------------------------------------------------- database
DB="zaqar_bench_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
psql "$ADMIN_URI" -qc "CREATE DATABASE $DB" >/dev/null
CLEANUP_HOOKS+=("psql '$ADMIN_URI' -qc 'DROP DATABASE IF EXISTS $DB WITH (FORCE)' >/dev/null")
DB_URI="${ADMIN_URI%/*}/$DB"
psql "$DB_URI" -qc 'CREATE TABLE floor_insert (id bigserial PRIMARY KEY, body text NOT NULL)' >/dev/null
BODY="$(head -c 192 /dev/urandom | base64 -w0)" # 256 characters
printf "INSERT INTO floor_insert (body) VALUES ('%s');\n" "$BODY" >"$WORK/floor.sql"

record_setup \
    "PostgreSQL: $(psql "$ADMIN_URI" -Atc 'SHOW server_version'), synchronous_commit=$(psql "$ADMIN_URI" -Atc 'SHOW synchronous_commit'), database $DB" \
    "zaqar-server pool_size: $POOL_SIZE per host"

STORE="[drivers.message_store]
name = \"postgresql\"
[drivers.message_store.postgresql]
uri = \"$DB_URI\"
pool_size = $POOL_SIZE
[drivers.management_store]
name = \"postgresql\"
[drivers.management_store.postgresql]
uri = \"$DB_URI\"
pool_size = 2"

# floor NAME CLIENTS: pgbench one-row inserts, transactions/s into $OUT/NAME.pgbench.
floor() {
    local name=$1 clients=$2 threads=$2 seconds="${DURATION%s}"
    [[ $seconds =~ ^[0-9]+$ ]] || seconds=10
    ((threads > 4)) && threads=4
    log "pgbench floor, $clients clients"
    pgbench -n -T "$seconds" -c "$clients" -j "$threads" -f "$WORK/floor.sql" "$DB_URI" \
        >"$OUT/$name.pgbench" 2>&1 || {
        cat "$OUT/$name.pgbench" >&2
        die "pgbench failed"
    }
    grep -E '^(tps|latency average)' "$OUT/$name.pgbench" | sed 's/^/   /' >&2
}

# phase NAME URL...: for each client count, the floor, then post and
# consume with the clients spread over the given hosts.
phase() {
    local phase=$1
    shift
    local urls=("$@") level i counts
    for level in "$LOW" "$HIGH"; do
        floor "$phase-floor-$level" "$level"
        for role in post consume; do
            log "$phase: HTTP $role, $level clients over ${#urls[@]} host(s)"
            mapfile -t counts < <(split "$level" "${#urls[@]}")
            for i in "${!urls[@]}"; do
                ((counts[i] > 0)) || continue
                load "$phase-$role-$level.$i" "${urls[i]}" "${counts[i]}" "$role" "$phase-$level"
            done
            wait_loads
        done
    done
}

log "starting host 1 on $DB"
start_ours host1 "$STORE"
HOST1="$OURS_URL"
phase one-host "$HOST1"

log "starting hosts 2 and 3 on $DB"
start_ours host2 "$STORE"
HOST2="$OURS_URL"
start_ours host3 "$STORE"
HOST3="$OURS_URL"
phase three-hosts "$HOST1" "$HOST2" "$HOST3"

python3 "$ROOT/bench/store-report.py" postgresql "$OUT" "$LOW" "$HIGH" | tee "$OUT/report.md"
log "results in $OUT"
