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
bash scripts/postgresql-env.sh # the postgresql store's tests need it
# The out-of-tree examples (tests/tests/examples.rs) run in the release host.
export ZAQAR_EXAMPLES_HOST=release
cargo test --workspace "$@"
ZAQAR_TEST_STORE=postgresql cargo test -p zaqar-tests "$@"

# Again, with every transport, store and sink loaded from its dynamic library
# (plugins/dylibs/*) and the built-ins turned off: the API, WebSocket push,
# notification and python-zaqarclient tests across the library boundary.
# (The storage conformance suite runs against the embedded store's library
# above, in tests/tests/conformance_dylib.rs.)
ZAQAR_TEST_PLUGINS=dylib cargo test -p zaqar-tests \
    --test api_queues --test api_messages --test api_claims \
    --test api_subscriptions --test api_errors --test api_misc \
    --test websocket --test notifications --test transports_agree \
    --test python_clients "$@"
