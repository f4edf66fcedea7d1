#!/usr/bin/env bash
# Makes sure a PostgreSQL answers on 127.0.0.1:5432 with trust auth for
# local TCP connections, for the postgresql store's tests: installs Debian's
# `postgresql` when it is missing, creates and starts a cluster when none
# runs. Does nothing when one already answers. Needs root for the install.
set -euo pipefail

answers() {
    command -v psql >/dev/null 2>&1 &&
        psql "postgresql://postgres@127.0.0.1:5432/postgres" -Atqc "SELECT 1" >/dev/null 2>&1
}

if answers; then
    exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q postgresql >&2
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
    pg_createcluster "$version" main >&2
fi
hba="/etc/postgresql/$version/main/pg_hba.conf"
if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    # First matching line wins: put the trust lines before the defaults.
    { printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'; cat "$hba"; } >"$hba.new"
    mv "$hba.new" "$hba"
    chown postgres:postgres "$hba"
fi
conf="/etc/postgresql/$version/main/postgresql.conf"
if ! grep -Eq "^listen_addresses\s*=\s*'(localhost|127\.0\.0\.1|\*)" "$conf"; then
    echo "listen_addresses = 'localhost'" >>"$conf"
fi
if pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    pg_ctlcluster "$version" main reload >&2
else
    pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 60); do
    if answers; then
        exit 0
    fi
    sleep 0.5
done
echo "PostgreSQL did not answer on 127.0.0.1:5432" >&2
exit 1
