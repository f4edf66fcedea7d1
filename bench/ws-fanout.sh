#!/usr/bin/env bash
# The WebSocket fan-out bench with its peer, one command: installs Soketi
# (bench/soketi-env.sh, into target/soketi or SOKETI_DIR) if it is missing,
# then for 1,000 and 10,000 sockets runs, in this order and in one process,
# zaqar-server, the kernel floor, the durable floor (the kernel floor with
# a disk sync before each fan-out) and Soketi with the same client
# (tests/benches/ws_fanout.rs; docs/BENCHMARKS.md, "WebSocket fan-out").
#
# Usage: bash bench/ws-fanout.sh
# Environment, passed on to the bench: FANOUT_SOCKETS (one N instead of
#   1000 and 10000), FANOUT_INTERVAL_MS (200), FANOUT_FLOOR (0: no floor),
#   FANOUT_SOKETI (1; only: Soketi alone), FANOUT_FLOOR_SYNC (0: no durable
#   floor), SOKETI_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

# The bench holds the client end of every socket (the floor server, a
# process of its own, the server ends): use the whole open-file allowance.
ulimit -n "$(ulimit -Hn)"

bash "$ROOT/bench/soketi-env.sh" install
cd "$ROOT"
FANOUT_SOKETI="${FANOUT_SOKETI:-1}" cargo bench -p zaqar-tests --bench ws_fanout
