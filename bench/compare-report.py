#!/usr/bin/env python3
"""Prints the side-by-side tables of a bench/compare-zaqar.sh run (Markdown).

Usage: python3 bench/compare-report.py RESULTS_DIR

Reads RESULTS_DIR/<workload>.<target>.json (zaqar-load --json summaries;
target = real | ours | ref) and RESULTS_DIR/zaqar-bench.<target>.txt.
"""

import json
import os
import re
import sys


def load(out, workload, target):
    path = os.path.join(out, f"{workload}.{target}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def op(summary, name, *keys):
    value = summary.get("operations", {}).get(name) if summary else None
    for key in keys:
        if value is None:
            return None
        value = value.get(key)
    return value


def fmt(value, digits=0):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(numerator, denominator):
    if not numerator or not denominator:
        return "–"
    value = numerator / denominator
    if value >= 10:
        return f"{value:,.0f}×"
    return f"{value:.2f}×"


def errors(summary):
    if not summary:
        return "–"
    by_status = summary["totals"]["errors_by_status"]
    if not by_status:
        return "0"
    return ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items()))


# (label, getter, higher_is_better)
def throughput(key):
    return lambda s: s["totals"][key] if s else None


def requests_per_s(name):
    return lambda s: op(s, name, "requests_per_s")


def latency(name, quantile):
    return lambda s: op(s, name, "latency_ms", quantile)


POST = [
    ("messages posted /s", throughput("posted_per_s"), True, 0),
    ("post p50 ms", latency("post", "p50"), False, 2),
    ("post p99 ms", latency("post", "p99"), False, 2),
]
CONSUME = [
    ("messages consumed /s (claim + delete)", throughput("consumed_per_s"), True, 0),
    ("claim req/s", requests_per_s("claim"), True, 0),
    ("delete req/s", requests_per_s("delete"), True, 0),
    ("claim p50 ms", latency("claim", "p50"), False, 2),
    ("claim p99 ms", latency("claim", "p99"), False, 2),
    ("delete p50 ms", latency("delete", "p50"), False, 2),
    ("delete p99 ms", latency("delete", "p99"), False, 2),
]
MIXED = [
    ("messages posted /s", throughput("posted_per_s"), True, 0),
    ("messages consumed /s", throughput("consumed_per_s"), True, 0),
    ("list req/s", requests_per_s("list"), True, 0),
    ("post p99 ms", latency("post", "p99"), False, 2),
    ("claim p99 ms", latency("claim", "p99"), False, 2),
    ("delete p99 ms", latency("delete", "p99"), False, 2),
    ("list p99 ms", latency("list", "p99"), False, 2),
]


def describe(summary):
    c = summary["config"]
    parts = []
    for role in ("producers", "consumers", "observers"):
        if c[role]:
            parts.append(f"{c[role]} {role}")
    return ", ".join(parts) + f"; {c['queues']} queues, {c['message_size']}-byte messages"


def workloads(out):
    names = set()
    for entry in os.listdir(out):
        m = re.match(r"^(.*)\.(real|ours|ref)\.json$", entry)
        if m:
            names.add(m.group(1))

    def key(name):
        if name.startswith("http-"):
            transport = 0
        elif name.startswith("ws-msgpack-"):
            transport = 2
        else:
            transport = 1
        kind = 0 if "-post-" in name else (1 if "-consume-" in name else 2)
        digits = re.sub(r"\D", "", name.rsplit("-", 1)[-1])
        level = int(digits) if digits else 1 << 30
        return (transport, level, kind, name)

    return sorted(names, key=key)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    print("## zaqar-load: real Zaqar 23.0.1 vs zaqar-server, same workload, one run\n")
    setup = os.path.join(out, "setup.txt")
    if os.path.exists(setup):
        print("```")
        print(open(setup).read().rstrip())
        print("```\n")
    print(
        "Advantage = zaqar-server's figure ÷ the real Zaqar's for rates, the real "
        "Zaqar's ÷ zaqar-server's for latencies (above 1 = zaqar-server better). "
        "\"vs hyper\" = zaqar-server's post rate ÷ the bare hyper reference server's.\n"
    )
    for name in workloads(out):
        real, ours, ref = (load(out, name, t) for t in ("real", "ours", "ref"))
        any_summary = ours or real or ref
        if "-post-" in name:
            rows = POST
        elif "-consume-" in name:
            rows = CONSUME
        else:
            rows = MIXED
        transport = "HTTP" if name.startswith("http-") else (
            "WebSocket MessagePack" if "msgpack" in name else "WebSocket JSON")
        print(f"### {name} ({transport}: {describe(any_summary)})\n")
        header = "| figure | real Zaqar | zaqar-server | advantage |"
        rule = "|---|---:|---:|---:|"
        if ref:
            header += " bare hyper | vs hyper |"
            rule += "---:|---:|"
        print(header)
        print(rule)
        for label, get, higher, digits in rows:
            r, o = (get(real) if real else None), (get(ours) if ours else None)
            if r is None and o is None:
                continue
            adv = ratio(o, r) if higher else ratio(r, o)
            line = f"| {label} | {fmt(r, digits)} | {fmt(o, digits)} | {adv} |"
            if ref:
                h = get(ref)
                line += f" {fmt(h, digits)} | {ratio(o, h) if higher else ratio(h, o)} |"
            print(line)
        line = f"| errors | {errors(real)} | {errors(ours)} | |"
        if ref:
            line += f" {errors(ref)} | |"
        print(line)
        print()

    bench = {}
    for target in ("ours", "real"):
        path = os.path.join(out, f"zaqar-bench.{target}.txt")
        if not os.path.exists(path):
            continue
        section = None
        figures = {}
        for raw in open(path):
            text = raw.strip()
            if text in ("Producer", "Consumer", "Observer"):
                section = text
            m = re.match(r"^(\w+): ([\d.]+)$", text)
            if section and m:
                figures[(section, m.group(1))] = float(m.group(2))
        bench[target] = figures
    if bench:
        print("## zaqar-bench (Zaqar's own benchmark, unchanged): 10 producers, 5 consumers, 2 observers, 4 queues\n")
        print("| figure | real Zaqar | zaqar-server | advantage |")
        print("|---|---:|---:|---:|")
        keys = [
            ("Producer", "reqs_per_sec", True, 0),
            ("Producer", "ms_per_req", False, 1),
            ("Producer", "successful_reqs", True, 0),
            ("Producer", "total_reqs", True, 0),
            ("Consumer", "reqs_per_sec", True, 0),
            ("Consumer", "messages_processed", True, 0),
            ("Consumer", "ms_per_claim", False, 1),
            ("Consumer", "ms_per_delete", False, 1),
            ("Consumer", "successful_reqs", True, 0),
            ("Consumer", "total_reqs", True, 0),
            ("Observer", "reqs_per_sec", True, 0),
            ("Observer", "ms_per_req", False, 1),
            ("Observer", "successful_reqs", True, 0),
            ("Observer", "total_reqs", True, 0),
        ]
        for section, key, higher, digits in keys:
            r = bench.get("real", {}).get((section, key))
            o = bench.get("ours", {}).get((section, key))
            adv = ratio(o, r) if higher else ratio(r, o)
            print(f"| {section.lower()} {key} | {fmt(r, digits)} | {fmt(o, digits)} | {adv} |")
        print()
        print(
            "zaqar-bench is a Python (gevent) client: against zaqar-server its own "
            "CPU is the limit, so these figures show compatibility, not the server's capacity. "
            "Its stderr (zaqar-bench.<target>.err) lists every failed request."
        )


if __name__ == "__main__":
    main()
