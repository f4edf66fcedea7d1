#!/usr/bin/env bash
# Creates (once) the Python virtualenv the compatibility tests use:
# python-zaqarclient 4.7.0 (the client existing Zaqar users run) and pytest.
# Prints the interpreter's path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.zaqar-test-requirements"
requirements="$root/tests/python/requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    cp "$requirements" "$stamp"
fi
echo "$venv/bin/python"
