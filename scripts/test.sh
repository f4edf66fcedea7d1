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
# The web console's Chromium checks (tests/tests/console_browser.rs) run
# Playwright from this venv; the JavaScript client's (js_client.rs) need
# clients/js/node_modules.
ZAQAR_BROWSER_PYTHON="$(bash scripts/browser-env.sh)"
export ZAQAR_BROWSER_PYTHON
if [ ! -d clients/js/node_modules ] && command -v npm >/dev/null 2>&1; then
    (cd clients/js && npm ci --no-audit --no-fund >&2)
fi
# The redis store's tests: a Redis on 6379 and the real Zaqar (mixed fleet).
bash scripts/redis-service.sh
ZAQAR_VENV="${ZAQAR_VENV:-$(bash scripts/zaqar-venv.sh)}"
export ZAQAR_VENV
bash scripts/postgresql-env.sh # the postgresql store's tests need it
# The out-of-tree examples (tests/tests/examples.rs) run in the release host.
export ZAQAR_EXAMPLES_HOST=release
cargo test --workspace "$@"
# The API, WebSocket, notification and python-zaqarclient tests again on
# each other store, and across the library boundary: every transport,
# store, sink and auth strategy loaded from its dynamic library
# (plugins/dylibs/*) with the built-ins turned off, on the store
# ZAQAR_TEST_STORE names (embedded unless set); the auth and isolation
# tests join that pass, so the static strategy runs from its library too.
# (The first pass runs the storage conformance suite against every store
# and every store's library, and servers on the postgresql and redis
# libraries: tests/tests/conformance_dylib.rs, plugins_from_libraries.rs.)
api_tests=(
    --test api_queues --test api_messages --test api_claims
    --test api_subscriptions --test api_errors --test api_misc
    --test websocket --test notifications --test transports_agree
    --test python_clients --test streams_websocket --test streams_http
)
ZAQAR_TEST_STORE=postgresql cargo test -p zaqar-tests "${api_tests[@]}" "$@"
ZAQAR_TEST_STORE=redis cargo test -p zaqar-tests "${api_tests[@]}" "$@"
ZAQAR_TEST_PLUGINS=dylib cargo test -p zaqar-tests "${api_tests[@]}" \
    --test auth_strategies --test tenant_isolation "$@"
