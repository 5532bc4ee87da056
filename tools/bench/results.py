#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Collect the benchmark's figures into one JSON file, and print them.

tools/bench/apf_bench.c prints every figure as a line
  APF-BENCH-JSON {"clock": ..., "name": ..., "delay_ms": ..., "mode": ...,
                  "value": ..., "unit": ..., "target": ..., "verdict": ...}
on the emulated host's console. "collect" gathers the lines of one or more
console logs (one per clock, e.g. an instruction-clock run and a wall-clock
run) into OUT.json:
  {"commit": ..., "runs": [{"clock": ..., "host": ..., "log": ..., "figures": [...]}]}
where "host" is the console's APF-HOST line (kernel, emulator, clock, CPUs).
Logs whose figures are of one clock are one run (e.g. an instruction-clock
console and the L2 benchmark's figures of that run, tools/bench/l2_bench.py).
"table" prints the figures of such a file side by side, one column per
clock; --brief only those with a target and the waits behind them, and not
the L2 benchmark's (l2_*, which l2_bench.py tabulates). tools/bench/compare.py
compares two such files.

Usage: results.py collect OUT.json CONSOLE_LOG...
       results.py table [--brief] RESULTS.json
"""

import json
import re
import subprocess
import sys
from pathlib import Path

LINE = re.compile(r"APF-BENCH-JSON (\{.*\})")


def parse_log(path):
    """The figures of one console log, in the order printed."""
    figures = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.search(line.replace("\r", ""))
            if not m:
                continue
            try:
                figures.append(json.loads(m.group(1)))
            except json.JSONDecodeError:
                pass  # a line that console output cut: that figure is missing
    return figures


HOST = re.compile(r"APF-HOST (.*)")


def parse_host(path):
    """What the run was on: the first line of the console that
    tools/run-host.sh writes (kernel, emulator, clock, CPUs); "" if none."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = HOST.search(line.replace("\r", ""))
            if m:
                return m.group(1).strip()
    return ""


def key(fig):
    """What identifies a figure within one run."""
    return (fig.get("name"), fig.get("delay_ms", 0), fig.get("mode", ""))


def label(k):
    name, delay, mode = k
    parts = [name]
    if delay:
        parts.append(f"{delay} ms")
    if mode:
        parts.append(mode)
    return " ".join(parts)


def commit():
    try:
        root = Path(__file__).resolve().parent.parent.parent
        return subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def collect(out, logs):
    runs = []
    for log in logs:
        figures = parse_log(log)
        clocks = sorted({f.get("clock", "unknown") for f in figures}) or ["unknown"]
        clock = "+".join(clocks)
        # Logs of one clock (the benchmark's console, the L2 benchmark's
        # figures) make one run: one column of the table.
        same = next((r for r in runs if r["clock"] == clock), None)
        host = parse_host(log)
        if same:
            same["log"] += f" {log}"
            same["figures"] += figures
            same["host"] = same["host"] or host
        else:
            runs.append({"clock": clock, "host": host, "log": str(log), "figures": figures})
    doc = {"commit": commit(), "runs": runs}
    Path(out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def fmt(fig):
    if fig is None:
        return "-"
    v = fig.get("value")
    if v is None:
        s = "n/a"
    elif abs(v) >= 1000:
        s = f"{v:.0f}"
    else:
        s = f"{v:.4g}"
    if fig.get("unit"):
        s += f" {fig['unit']}"
    if fig.get("verdict"):
        s += f" {fig['verdict']}"
    return s


BRIEF = ("wait_per_page", "exits_fault_per_async_fault", "exits_ready_per_async_fault",
         "exits_ack_ready_per_async_fault", "exits_abort_per_async_fault",
         "scale_completions_per_s", "scale_completions_ratio", "scale_host_cpu_per_async_fault")


def table(doc, brief=False):
    runs = doc["runs"]
    cols = [{key(f): f for f in r["figures"]} for r in runs]
    keys = []
    for r in runs:
        for f in r["figures"]:
            if key(f) not in keys:
                keys.append(key(f))
    head = ["figure"] + [r["clock"] for r in runs] + ["target"]
    rows = []
    for k in keys:
        target = next((c[k].get("target") for c in cols if k in c and c[k].get("target")), "")
        if brief and ((not target and k[0] not in BRIEF) or k[0].startswith("l2_")):
            continue
        rows.append([label(k)] + [fmt(c.get(k)) for c in cols] + [target])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for r in runs:
        if r.get("host"):
            print(f"{r['clock']}: {r['host']}")


def main(argv):
    if len(argv) >= 3 and argv[1] == "collect":
        doc = collect(argv[2], argv[3:])
        n = sum(len(r["figures"]) for r in doc["runs"])
        print(f"results.py: {n} figures from {len(doc['runs'])} run(s) in {argv[2]}")
        return 0 if n else 1
    if len(argv) in (3, 4) and argv[1] == "table":
        brief = argv[2] == "--brief"
        if brief == (len(argv) == 3):
            sys.exit(__doc__.strip().split("Usage: ")[1])
        table(json.loads(Path(argv[-1]).read_text(encoding="utf-8")), brief)
        return 0
    sys.exit(__doc__.strip().split("Usage: ")[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
