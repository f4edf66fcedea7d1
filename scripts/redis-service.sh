#!/usr/bin/env bash
# Makes sure a Redis answers on 127.0.0.1:6379 for the redis store's tests:
# installs redis-server (Debian/Ubuntu) when it is missing and starts it
# (no persistence) when nothing answers. Idempotent.
set -euo pipefail
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    exit 0
fi
if ! command -v redis-server >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
fi
redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes >&2
for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && exit 0
    sleep 0.1
done
echo "redis-service: redis-server did not answer on 127.0.0.1:6379" >&2
exit 1
