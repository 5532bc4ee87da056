#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Plot guest work over time and the faulting task's waits, with and without
async page faults.

Reads what tools/bench/apf_bench.c prints on the emulated host's console:
APF-BENCH-SERIES lines (one point per line: mode, userfaultfd delay, time
since the remote phase began, task B's iterations so far) and APF-BENCH-WAIT
lines (mode, delay, remote page, task A's wait for it). Writes a PNG with one
column per delay: on top task B's work over time, below task A's wait for
each remote page, async and sync on the same axes. The utilization and the
mean wait of each run (APF-BENCH lines) go into the legends, and the clock
the figures are from into the title.

Usage: plot.py CONSOLE_LOG OUT.png
matplotlib comes from tools/setup.sh: PYTHONPATH=$APF_TOOLS/pylib.
"""

import re
import sys

SERIES = re.compile(r"APF-BENCH-SERIES mode=(\w+) delay_ms=(\d+) t_us=([\d.]+) work=(\d+)")
RUN = re.compile(r"APF-BENCH delay_ms=(\d+) mode=(\w+) utilization=([\d.]+) clock=(\w+)")
WAIT = re.compile(r"APF-BENCH-WAIT mode=(\w+) delay_ms=(\d+) page=(\d+) wait_ms=([\d.]+)")


def parse(path):
    series, util, waits, clock = {}, {}, {}, "unknown"
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = SERIES.search(line)
            if m:
                key = (int(m.group(2)), m.group(1))
                series.setdefault(key, []).append((float(m.group(3)) / 1000, int(m.group(4))))
                continue
            m = WAIT.search(line)
            if m:
                key = (int(m.group(2)), m.group(1))
                waits.setdefault(key, []).append((int(m.group(3)), float(m.group(4))))
                continue
            m = RUN.search(line)
            if m:
                util[(int(m.group(1)), m.group(2))] = float(m.group(3))
                clock = m.group(4)
    return series, util, waits, clock


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-2])
    log, out = sys.argv[1], sys.argv[2]
    series, util, waits, clock = parse(log)
    if not series:
        print(f"plot.py: no APF-BENCH-SERIES lines in {log}", file=sys.stderr)
        return 1

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delays = sorted({d for d, _ in series})
    fig, axes = plt.subplots(2, len(delays), figsize=(6.5 * len(delays), 8.4), squeeze=False)
    style = {"async": ("tab:blue", "-", "async page faults"),
             "sync": ("tab:red", "--", "synchronous (cap not enabled)")}
    for ax, delay in zip(axes[1], delays):
        width = 0.4
        for i, mode in enumerate(("sync", "async")):
            pts = sorted(waits.get((delay, mode), []))
            if not pts:
                continue
            color, _, label = style[mode]
            mean = sum(w for _, w in pts) / len(pts)
            ax.bar([p + (i - 0.5) * width for p, _ in pts], [w for _, w in pts], width,
                   color=color, alpha=0.8, label=f"{label}, mean {mean:.2f} ms")
        ax.axhline(delay, color="gray", linestyle=":", linewidth=1,
                   label=f"userfaultfd delay {delay} ms")
        ax.set_title(f"delay {delay} ms: faulting task's wait for each remote page", fontsize=10)
        ax.set_xlabel("remote page (in the order touched)")
        ax.set_ylabel("task A's wait (ms, CNTVCT)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(loc="upper left", fontsize=9)
    for ax, delay in zip(axes[0], delays):
        top = max((w for m in ("async", "sync") for _, w in series.get((delay, m), [])), default=0)
        for mode in ("async", "sync"):
            pts = series.get((delay, mode))
            if not pts:
                continue
            pts.sort()
            color, ls, label = style.get(mode, ("gray", ":", mode))
            if (delay, mode) in util:
                label += f", utilization {util[(delay, mode)]:.2f}"
            ax.step([t for t, _ in pts], [w / 1e6 for _, w in pts], where="post",
                    color=color, linestyle=ls, linewidth=1.8, label=label)
        ax.set_title(f"userfaultfd delay {delay} ms: remote pages touched one after the other",
                     fontsize=10)
        ax.set_xlabel("guest time since the first remote access (ms, CNTVCT)")
        ax.set_ylabel("task B work (million loop iterations)")
        ax.set_ylim(bottom=-0.03 * max(top, 1) / 1e6)  # sync stays visible at 0
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=9)
    fig.suptitle("arm64 KVM async page faults: guest work while pages are remote, and the "
                 f"faulting task's wait\n(emulated host, nested KVM, {clock} clock)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot.py: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
