#!/usr/bin/env bash
# Runs the whole test suite: every crate's unit and integration tests, the
# end-to-end tests against the real binary, and the python-zaqarclient
# compatibility checks (run from a Rust test with the venv made here); then
# the end-to-end and client tests again on each other store
# (ZAQAR_TEST_STORE, see tests/src/stores.rs).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON_ZAQARCLIENT="$(bash scripts/python-env.sh)"
export PYTHON_ZAQARCLIENT
# The redis store's tests: a Redis on 6379 and the real Zaqar (mixed fleet).
bash scripts/redis-service.sh
ZAQAR_VENV="${ZAQAR_VENV:-$(bash scripts/zaqar-venv.sh)}"
export ZAQAR_VENV
bash scripts/postgresql-env.sh # the postgresql store's tests need it
cargo test --workspace "$@"
ZAQAR_TEST_STORE=postgresql cargo test -p zaqar-tests "$@"
ZAQAR_TEST_STORE=redis cargo test -p zaqar-tests "$@"
