#!/usr/bin/env bash
# Creates (once, cached by the hash of the pinned requirements) a virtualenv
# with the real Zaqar 23.0.1 from PyPI, for the mixed-fleet test of the
# redis store (plugins/storage-redis/tests/mixed_fleet.rs). Prints the
# venv's directory. Pins: bench/zaqar-requirements.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/bench/zaqar-requirements.txt"
cache="${ZAQAR_VENV_CACHE:-$HOME/.cache/zaqar-rs}"
venv="$cache/zaqar-venv-$(sha256sum "$requirements" | cut -c1-16)"
if [ ! -f "$venv/.complete" ]; then
    mkdir -p "$cache"
    rm -rf "$venv"
    python="$(command -v python3.11 || command -v python3)"
    "$python" -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    "$venv/bin/python" -c 'import zaqar.storage.redis.driver' >&2
    touch "$venv/.complete"
fi
echo "$venv"
