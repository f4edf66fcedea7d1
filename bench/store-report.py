#!/usr/bin/env python3
"""Tables for bench/storage-postgresql.sh and bench/storage-redis.sh.

Usage: store-report.py postgresql|redis OUT_DIR LOW HIGH

Reads the zaqar-load JSON summaries (NAME.json; a workload spread over
several hosts has one file per host, NAME.0.json, NAME.1.json, ...) and the
floor outputs the scripts left in OUT_DIR, and prints a Markdown table:
messages/s of each workload and its ratio to the floor measured in the same
run (and, for redis, to the real Zaqar).
"""

import csv
import glob
import json
import os
import re
import sys


def summaries(out, name):
    files = sorted(glob.glob(os.path.join(out, f"{name}.json")))
    files += sorted(glob.glob(os.path.join(out, f"{name}.[0-9]*.json")))
    return [json.load(open(f)) for f in files]


def combined(out, name, role):
    """Messages/s summed over the processes of one workload, the worst p50
    and p99 of its main operation, and the error count."""
    runs = summaries(out, name)
    if not runs:
        return None
    rate_key = "posted_per_s" if role == "post" else "consumed_per_s"
    operation = "post" if role == "post" else "claim"
    rate = sum(r["totals"][rate_key] for r in runs)
    latencies = [r["operations"].get(operation, {}).get("latency_ms", {}) for r in runs]
    p50 = max((l.get("p50", 0) for l in latencies), default=0)
    p99 = max((l.get("p99", 0) for l in latencies), default=0)
    errors = sum(r["totals"]["errors"] for r in runs)
    return {"rate": rate, "p50": p50, "p99": p99, "errors": errors, "processes": len(runs)}


def fmt_rate(x):
    return f"{x:,.0f}"


def fmt_ratio(a, b):
    if not a or not b:
        return "–"
    r = a / b
    return f"{r:.2f}" if r < 10 else f"{r:.0f}"


def fmt_lat(c):
    return f"{c['p50']:.1f} / {c['p99']:.1f}"


def pgbench_tps(path):
    text = open(path).read()
    m = re.search(r"^tps = ([0-9.]+)", text, re.M)
    return float(m.group(1)) if m else None


def postgresql(out, levels):
    print("| clients | hosts | pgbench one-row inserts (tx/s) | HTTP post (msgs/s) | post ÷ floor | post p50 / p99 ms | HTTP consume (msgs/s) | consume ÷ floor | claim p50 / p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for phase, hosts in (("one-host", 1), ("three-hosts", 3)):
        for level in levels:
            floor = pgbench_tps(os.path.join(out, f"{phase}-floor-{level}.pgbench"))
            post = combined(out, f"{phase}-post-{level}", "post")
            consume = combined(out, f"{phase}-consume-{level}", "consume")
            if not (post and consume and floor):
                continue
            print(
                f"| {level} | {hosts} | {fmt_rate(floor)} | {fmt_rate(post['rate'])} | "
                f"{fmt_ratio(post['rate'], floor)} | {fmt_lat(post)} | {fmt_rate(consume['rate'])} | "
                f"{fmt_ratio(consume['rate'], floor)} | {fmt_lat(consume)} | "
                f"{post['errors'] + consume['errors']} |"
            )


def redis_rps(path):
    with open(path) as f:
        rows = [r for r in csv.reader(f) if r and r[0] != "test"]
    return float(rows[0][1]) if rows else None


def redis(out, levels):
    print("| workload | clients | redis-benchmark SET (req/s) | real Zaqar (msgs/s) | zaqar-server (msgs/s) | ours ÷ real | real ÷ floor | ours ÷ floor | p50 / p99 ms real | p50 / p99 ms ours | errors real / ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for level in levels:
        floor = redis_rps(os.path.join(out, f"floor-{level}.csv"))
        for role in ("post", "consume"):
            real = combined(out, f"real-{role}-{level}", role)
            ours = combined(out, f"ours-{role}-{level}", role)
            if not (real and ours and floor):
                continue
            print(
                f"| HTTP {role} | {level} | {fmt_rate(floor)} | {fmt_rate(real['rate'])} | "
                f"{fmt_rate(ours['rate'])} | {fmt_ratio(ours['rate'], real['rate'])} | "
                f"{fmt_ratio(real['rate'], floor)} | {fmt_ratio(ours['rate'], floor)} | "
                f"{fmt_lat(real)} | {fmt_lat(ours)} | {real['errors']} / {ours['errors']} |"
            )


def main():
    kind, out, low, high = sys.argv[1:5]
    print(open(os.path.join(out, "setup.txt")).read().rstrip().replace("\n", "  \n"))
    print()
    {"postgresql": postgresql, "redis": redis}[kind](out, [low, high])
    print()
    print("Latency is of the post (post rows) or the claim (consume rows); over several hosts, the worst host's.")


if __name__ == "__main__":
    main()
