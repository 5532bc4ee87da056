#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the benchmark figures of two results.json files (tools/bench/results.py).

Figures are matched by clock, name, delay and mode (and a note says when
the two runs of a clock were on another kernel or emulator); for each pair the
percent difference (B - A) / A is printed, and marked when it exceeds the
tolerance (default 2%, the issue's bar for two runs of one commit). Verdict
changes (MET <-> MISSED) are marked too. Figures of one file only are listed
at the end.

Usage: compare.py [--tolerance PCT] [--clock CLOCK] A.json B.json
Exit status: 0 if every matched figure agrees within the tolerance, 1 if not,
2 on bad usage.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import key, label  # noqa: E402


def figures(path, clock):
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out, hosts = {}, {}
    for run in doc["runs"]:
        hosts[run.get("clock", "unknown")] = run.get("host", "")
        for f in run["figures"]:
            c = f.get("clock", run.get("clock", "unknown"))
            if clock and c != clock:
                continue
            out[(c,) + key(f)] = f
    return doc.get("commit", "?"), out, hosts


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--tolerance", type=float, default=2.0, help="percent (default 2)")
    ap.add_argument("--clock", help="only figures from this clock (icount, wall)")
    ap.add_argument("a")
    ap.add_argument("b")
    args = ap.parse_args()

    ca, fa, ha = figures(args.a, args.clock)
    cb, fb, hb = figures(args.b, args.clock)
    print(f"A: {args.a} ({ca})\nB: {args.b} ({cb})\ntolerance {args.tolerance:g}%")
    # Figures of another kernel or emulator are not two runs of one setup.
    for c in sorted(set(ha) & set(hb)):
        if ha[c] != hb[c]:
            print(f"note: the {c} runs differ in setup: A {ha[c] or '?'}, B {hb[c] or '?'}")
    print()
    rows, over = [], 0
    for k in [k for k in fa if k in fb]:
        va, vb = fa[k].get("value"), fb[k].get("value")
        mark = ""
        if va is None or vb is None:
            diff = "n/a"
            if (va is None) != (vb is None):
                mark, over = "  <-- measured in one only", over + 1
        elif va == 0:
            diff = "0%" if vb == 0 else "inf"
            if vb != 0:
                mark, over = "  <--", over + 1
        else:
            pct = (vb - va) / abs(va) * 100
            diff = f"{pct:+.2f}%"
            if abs(pct) > args.tolerance:
                mark, over = "  <--", over + 1
        if fa[k].get("verdict") != fb[k].get("verdict"):
            mark += f"  verdict {fa[k].get('verdict')} -> {fb[k].get('verdict')}"
        rows.append((f"[{k[0]}] {label(k[1:])}", "n/a" if va is None else f"{va:.5g}",
                     "n/a" if vb is None else f"{vb:.5g}", diff, mark))
    if rows:
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}{r[4]}")
    only = [k for k in fa if k not in fb] + [k for k in fb if k not in fa]
    for k in only:
        print(f"only in {'A' if k in fa else 'B'}: [{k[0]}] {label(k[1:])}")
    print(f"\n{len(rows)} figures compared, {over} differ by more than {args.tolerance:g}%")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
