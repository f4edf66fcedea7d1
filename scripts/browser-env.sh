#!/usr/bin/env bash
# Creates (once) the Python virtualenv the console's browser tests use:
# Playwright for Python, driving Debian's chromium (`apt-get install
# chromium`; Playwright downloads no browser of its own). Prints the
# interpreter's path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-browser"
stamp="$venv/.zaqar-browser-requirements"
requirements="$root/tests/browser/requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
    python3 -m venv "$venv" >&2
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/pip" install --quiet \
        --disable-pip-version-check -r "$requirements" >&2
    cp "$requirements" "$stamp"
fi
echo "$venv/bin/python"
