#!/usr/bin/env bash
# A real OpenStack Keystone (v3, SQLite, Fernet tokens) for the auth-keystone
# tests.
#
#   keystone-env.sh install     creates, once, the venv (scripts/keystone-requirements.txt)
#                               and a bootstrapped database template, both cached
#   keystone-env.sh start DIR   copies the template into DIR, starts Keystone on a
#                               free port of 127.0.0.1 and prints `url=http://127.0.0.1:PORT`
#   keystone-env.sh stop DIR    stops the Keystone started in DIR
#
# Every Keystone started from the template knows these accounts (all in the
# `Default` domain):
#
#   user    password   project   role      what for
#   admin   adminpw    admin     admin     the administrator (keystone-manage bootstrap)
#   zaqar   zaqarpw    service   service   the service user zaqar validates tokens with
#   demo    demopw     demo      member    a user of a second project
#
# Access log: DIR/access.log (one line per request), Keystone's log:
# DIR/keystone.log. The cache lives in $ZAQAR_CACHE_DIR (default
# ~/.cache/zaqar-rs), keyed by the requirements and this script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/scripts/keystone-requirements.txt"
cache="${ZAQAR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zaqar-rs}"
venv_key="$(sha256sum "$requirements" | cut -c1-16)"
template_key="$(cat "$requirements" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
venv="$cache/keystone-venv-$venv_key"
template="$cache/keystone-template-$template_key"

write_conf() { # DIR
    local dir="$1"
    cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone.log
use_stderr = false
[database]
connection = sqlite:///$dir/keystone.db
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[token]
expiration = 3600
[identity]
# The minimum: tests authenticate often and need no brute-force resistance.
password_hash_rounds = 4
EOF
}

run_keystone() { # DIR: starts gunicorn in the background, prints the URL
    local dir="$1" port="" _
    rm -f "$dir/gunicorn.log" "$dir/keystone.pid"
    # Keystone parses sys.argv as its own options: hide gunicorn's.
    printf '%s\n' 'import sys' 'sys.argv = sys.argv[:1]' \
        'from keystone.wsgi.api import application  # noqa: E402,F401' >"$dir/keystone_app.py"
    # Port 0: the kernel picks a free port, gunicorn logs which.
    OS_KEYSTONE_CONFIG_DIR="$dir" "$venv/bin/gunicorn" --daemon \
        --bind 127.0.0.1:0 --workers 1 --timeout 60 --no-control-socket \
        --pythonpath "$dir" \
        --pid "$dir/keystone.pid" --access-logfile "$dir/access.log" \
        --error-logfile "$dir/gunicorn.log" keystone_app:application
    for _ in $(seq 1 600); do
        port="$(sed -n 's/.*Listening at: http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
            "$dir/gunicorn.log" 2>/dev/null | head -n1)"
        if [ -n "$port" ] && "$venv/bin/python" -c "import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$port/v3" 2>/dev/null; then
            echo "http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    echo "keystone did not start in $dir; its logs:" >&2
    cat "$dir/gunicorn.log" "$dir/keystone.log" >&2 2>/dev/null || true
    stop_keystone "$dir"
    return 1
}

stop_keystone() { # DIR
    local dir="$1" pid _
    [ -f "$dir/keystone.pid" ] || return 0
    pid="$(cat "$dir/keystone.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/keystone.pid"
}

create_accounts() { # URL
    "$venv/bin/python" - "$1" <<'EOF'
import sys
import requests

url = sys.argv[1] + "/v3"

def token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    r = requests.post(url + "/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]

admin = {"X-Auth-Token": token("admin", "adminpw", "admin")}

def create(kind, body):
    r = requests.post(f"{url}/{kind}s", json={kind: body}, headers=admin, timeout=30)
    r.raise_for_status()
    return r.json()[kind]["id"]

def role_id(name):
    r = requests.get(f"{url}/roles", params={"name": name}, headers=admin, timeout=30)
    r.raise_for_status()
    roles = r.json()["roles"]
    return roles[0]["id"] if roles else create("role", {"name": name})

for user, password, project, role in [("zaqar", "zaqarpw", "service", "service"),
                                      ("demo", "demopw", "demo", "member")]:
    project_id = create("project", {"name": project, "domain_id": "default"})
    user_id = create("user", {"name": user, "password": password, "domain_id": "default"})
    r = requests.put(f"{url}/projects/{project_id}/users/{user_id}/roles/{role_id(role)}",
                     headers=admin, timeout=30)
    r.raise_for_status()
EOF
}

install() {
    mkdir -p "$cache"
    exec 9>"$cache/keystone.lock"
    flock 9
    if [ ! -x "$venv/bin/gunicorn" ]; then
        rm -rf "$venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    fi
    if [ ! -f "$template/keystone.db" ]; then
        local build
        build="$(mktemp -d "$cache/keystone-build.XXXXXX")"
        write_conf "$build"
        local manage=("$venv/bin/keystone-manage" --config-file "$build/keystone.conf")
        "${manage[@]}" db_sync >&2
        "${manage[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >&2
        "${manage[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >&2
        "${manage[@]}" bootstrap --bootstrap-username admin --bootstrap-password adminpw \
            --bootstrap-project-name admin --bootstrap-role-name admin \
            --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
            --bootstrap-public-url http://127.0.0.1:5000 >&2
        local url
        url="$(run_keystone "$build")"
        create_accounts "$url" || { stop_keystone "$build"; exit 1; }
        stop_keystone "$build"
        rm -rf "$build"/*.log "$build/keystone.conf" "$build/keystone_app.py" "$build/__pycache__"
        rm -rf "$template"
        mv "$build" "$template"
    fi
    flock -u 9
}

case "${1:-}" in
install)
    install
    ;;
start)
    dir="${2:?usage: keystone-env.sh start DIR}"
    install
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    cp -a "$template/." "$dir/"
    write_conf "$dir"
    echo "url=$(run_keystone "$dir")"
    ;;
stop)
    stop_keystone "${2:?usage: keystone-env.sh stop DIR}"
    ;;
*)
    echo "usage: keystone-env.sh install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
