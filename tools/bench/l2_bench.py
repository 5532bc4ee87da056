#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The L2 workload benchmark (issue 8): figures, targets, table, plot.

Reads the consoles of emulated-host runs of tools/vm/demo-l2bench.plan (one
per clock): four L2 boots, 1 and 2 vCPUs, each without and with
--async-pf, each running tools/l2/apf_work -b (a present-memory baseline,
then one phase per per-page latency, each right after apf-vmm made all
guest RAM remote: --remote-after APF-L2BENCH-RESTORE --remote-latency).
Times run from the restore: the guest stopped at the marker, and the time
it needed on remote memory to run its user code again (restart_s: from just
before the marker to the workload's t0, minus the VMM's stop, which it
prints as stopped_us) is added to the reader's and the both-finished
times. Per clock, vCPU count and latency it computes, asynchronous against
synchronous boot of the same host run:

  l2_cpu_share       the CPU-bound process's throughput while the reader
                     runs, as a share of its present-memory rate (target
                     >= 0.90 with async page faults; the sync value is
                     printed beside it)
  l2_mem_time_ratio  the reader's completion time, async / sync (<= 1.10)
  l2_both_ratio      the time until both processes finished, async / sync
                     (at 10 ms at most 0.74, i.e. 26% shorter; at 0.2 ms
                     at most 1.00)

and the raw figures behind them (per boot: read, CPU and both-finished
times, the pages the VMM served in the phase (from its restore to the
workload's APF-L2BENCH-END line, apf-vmm --served-at), the guest driver's
counter deltas, and the faults that blocked a vCPU synchronously: pages
served minus the guest's not-present notifications).

Usage: l2_bench.py figures CONSOLE_LOG OUT.log  APF-BENCH-JSON lines of one run
                                                (for tools/bench/results.py)
       l2_bench.py table CONSOLE_LOG...         the table, one column per clock
       l2_bench.py plot OUT.png CONSOLE_LOG...  the plot (matplotlib:
                                                PYTHONPATH=$APF_TOOLS/pylib)
"""

import json
import re
import sys

TARGET_SHARE = 0.90
TARGET_MEM = 1.10
TARGET_BOTH = {10.0: 0.74, 0.2: 1.00}

STEP_BEGIN = re.compile(r"APF-TEST-BEGIN (\S+)")
STEP_END = re.compile(r"APF-TEST-END (\S+) rc=(\d+)")
CLOCK = re.compile(r"Kernel command line:.*\bapf_clock=(\w+)")
BOOTED = re.compile(r"APF-L2: booted \S+ on (\d+) cpus")
PRESENT = re.compile(r"APF-L2BENCH present (.*)")
PHASE = re.compile(r"APF-L2BENCH phase=(\d+) (.*)")
RESTORE = re.compile(r"apf-vmm: guest RAM made remote again .*\(restore (\d+); (\d+) pages served since the last, (\d+) in all\)")
STOPPED = re.compile(r"apf-vmm: guest RAM made remote again .*\(restore (\d+);.*stopped_us=(\d+)")
PROBE = re.compile(r"apf-vmm: marker 'APF-L2BENCH-END' \((\d+)\): (\d+) pages served so far")
SUMMARY = re.compile(r"apf-vmm: exit=(\S+).* async_pf=(on|off)")


def kv(text):
    out = {}
    for m in re.finditer(r"(\w+)=([-\d.e+]+)", text):
        v = m.group(2)
        try:
            out[m.group(1)] = int(v)
        except ValueError:
            out[m.group(1)] = float(v)
    return out


def parse(path):
    """(clock, boots): each boot a dict with cpus, mode, present, phases."""
    clock, boots, cur = "unknown", [], None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.replace("\r", "").rstrip("\n")
            m = CLOCK.search(line)
            if m:
                clock = m.group(1)
            m = STEP_BEGIN.search(line)
            if m and m.group(1).startswith("l2bench"):
                cur = {"step": m.group(1), "cpus": None, "mode": "sync", "present": None,
                       "phases": {}, "restores": {}, "ends": {}, "stopped": {}, "exit": None, "rc": None}
                continue
            if cur is None:
                continue
            m = STEP_END.search(line)
            if m:
                cur["rc"] = int(m.group(2))
                boots.append(cur)
                cur = None
                continue
            if "apf-vmm: async page faults enabled" in line:
                cur["mode"] = "async"
            m = BOOTED.search(line)
            if m:
                cur["cpus"] = int(m.group(1))
            m = PRESENT.search(line)
            if m:
                cur["present"] = kv(m.group(1))
            m = PHASE.search(line)
            if m:
                cur["phases"][int(m.group(1))] = kv(m.group(2))
            m = RESTORE.search(line)
            if m:
                cur["restores"][int(m.group(1))] = int(m.group(3))
            m = STOPPED.search(line)
            if m:
                cur["stopped"][int(m.group(1))] = int(m.group(2)) / 1e6
            m = PROBE.search(line)
            if m:
                cur["ends"][int(m.group(1))] = int(m.group(2))
            m = SUMMARY.search(line)
            if m:
                cur["exit"] = m.group(1)
    for b in boots:
        # Pages served in phase n: from restore n (the VMM's total then) to
        # the workload's APF-L2BENCH-END n (--served-at: the total then).
        for n, ph in b["phases"].items():
            r, e = b["restores"].get(n), b["ends"].get(n)
            served = e - r if r is not None and e is not None else None
            ph["served"] = served
            # From the restore (the guest stopped at the marker) to t0: the
            # guest's way back to user mode on remote memory. pre_s runs
            # from just before the marker, so it holds the VMM's stop too.
            stop = b["stopped"].get(n)
            if "pre_s" in ph and stop is not None:
                ph["restart_s"] = max(ph["pre_s"] - stop, 0.0)
            else:
                ph["restart_s"] = None
            rs = ph["restart_s"] or 0.0
            ph["read_r"] = rs + ph["read_s"]
            ph["both_r"] = rs + ph["both_s"]
            if served is not None:
                # Faults that blocked a vCPU: all in sync mode; those the
                # guest was not told about (kernel mode, EL1 not allowed)
                # with async page faults.
                ph["sync_faults"] = served - (ph.get("not_present", 0) if b["mode"] == "async" else 0)
    return clock, boots


def verdict(ok):
    return "MET" if ok else "MISSED"


def figures(clock, boots):
    """The APF-BENCH-JSON figures of one run, in a stable order."""
    by = {(b["cpus"], b["mode"]): b for b in boots if b["cpus"]}
    figs = []

    def fig(name, delay, mode, value, unit="", target="", ok=None, **extra):
        f = {"clock": clock, "name": name, "delay_ms": delay, "mode": mode,
             "value": None if value is None else round(value, 6), "unit": unit}
        if target:
            f["target"] = target
            f["verdict"] = "n/a" if value is None else verdict(ok)
        f.update(extra)
        figs.append(f)

    for cpus in sorted({c for c, _ in by}):
        a, s = by.get((cpus, "async")), by.get((cpus, "sync"))
        for mode, b in (("sync", s), ("async", a)):
            if b and b["present"]:
                fig("l2_present_cpu_rate", 0, f"{mode}, {cpus} vCPU", b["present"]["cpu_rate"], "iterations/s")
        lats = sorted({ph["latency_ms"] for b in (a, s) if b for ph in b["phases"].values()})
        for lat in lats:
            pa = next((p for p in (a["phases"].values() if a else []) if p["latency_ms"] == lat), None)
            ps = next((p for p in (s["phases"].values() if s else []) if p["latency_ms"] == lat), None)
            m = f"{cpus} vCPU"
            for mode, p in (("sync", ps), ("async", pa)):
                if not p:
                    continue
                mm = f"{mode}, {m}"
                fig("l2_restart_s", lat, mm, p["restart_s"], "s")
                fig("l2_read_s", lat, mm, p["read_r"], "s")
                fig("l2_cpu_s", lat, mm, p["cpu_s"], "s")
                fig("l2_both_s", lat, mm, p["both_r"], "s")
                if mode == "sync":
                    fig("l2_cpu_share", lat, mm, p["cpu_share"])
                if p.get("served") is not None:
                    fig("l2_pages_served", lat, mm, p["served"], "pages")
                    fig("l2_sync_faults", lat, mm, p["sync_faults"], "faults")
                if mode == "async":
                    for c in ("not_present", "page_ready", "sleeps", "kernel_skipped", "no_entry"):
                        fig(f"l2_{c}", lat, mm, p.get(c, 0), "")
            if pa:
                fig("l2_cpu_share", lat, f"async, {m}", pa["cpu_share"], "", f">= {TARGET_SHARE:.2f}",
                    pa["cpu_share"] >= TARGET_SHARE)
            if pa and ps:
                r = pa["read_r"] / ps["read_r"] if ps["read_r"] > 0 else None
                fig("l2_mem_time_ratio", lat, m, r, "x sync", f"<= {TARGET_MEM:.2f}",
                    r is not None and r <= TARGET_MEM)
                r = pa["both_r"] / ps["both_r"] if ps["both_r"] > 0 else None
                t = TARGET_BOTH.get(float(lat))
                if t is None:
                    fig("l2_both_ratio", lat, m, r, "x sync")
                else:
                    fig("l2_both_ratio", lat, m, r, "x sync", f"<= {t:.2f}", r is not None and r <= t)
    return figs


def reason(fig, boots):
    """One measured sentence for a missed target."""
    cpus = int(re.search(r"(\d) vCPU", fig["mode"]).group(1))
    lat = fig["delay_ms"]
    by = {(b["cpus"], b["mode"]): b for b in boots}

    def phase(mode):
        b = by.get((cpus, mode))
        return next((p for p in b["phases"].values() if p["latency_ms"] == lat), None) if b else None

    pa, ps = phase("async"), phase("sync")
    if not pa or not ps:
        return "a boot is missing"
    sf = pa.get("sync_faults")
    if sf is None:
        blocked = "the VMM's counts are missing"
    else:
        blocked = (f"in the phase {sf} of the {pa['served']} faults blocked a vCPU synchronously "
                   f"(at least {sf} x {lat:g} ms = {sf * lat / 1000:.2f} s of the {pa['both_r']:.2f} s until both "
                   f"finished, {pa['restart_s'] or 0:.2f} s of them before the workload ran again): "
                   f"the guest was told of {pa.get('not_present', 0)}, the user-mode ones")
    if fig["name"] == "l2_cpu_share":
        span = min(pa["read_s"], pa["cpu_s"])
        return f"measured over {span:.2f} s; {blocked}"
    if fig["name"] == "l2_mem_time_ratio":
        return (f"reader's wait per page {pa['read_s'] / pa['pages'] * 1000:.2f} ms async against "
                f"{ps['read_s'] / ps['pages'] * 1000:.2f} ms sync (from t0); {blocked}")
    if fig["name"] == "l2_both_ratio":
        return (f"both finished after {pa['both_r']:.2f} s async, {ps['both_r']:.2f} s sync; sync CPU-bound share "
                f"{ps['cpu_share']:.2f}" + (" (it has a vCPU of its own)" if cpus > 1 else "") + f"; {blocked}")
    return ""


def cmd_figures(log, out):
    clock, boots = parse(log)
    figs = figures(clock, boots)
    with open(out, "w", encoding="utf-8") as f:
        for g in figs:
            f.write("APF-BENCH-JSON " + json.dumps(g, separators=(",", ":")) + "\n")
    print(f"l2_bench.py: {len(figs)} figures of {len(boots)} L2 boots ({clock} clock) in {out}")
    return 0 if figs else 1


def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def cmd_table(logs):
    runs = []
    for log in logs:
        clock, boots = parse(log)
        figs = {(f["name"], f["delay_ms"], f["mode"]): f for f in figures(clock, boots)}
        runs.append((clock, boots, figs))
    if not any(r[2] for r in runs):
        print("l2_bench.py: no L2 benchmark results in " + " ".join(logs), file=sys.stderr)
        return 1
    names = " | ".join(f"{c} clock" for c, _, _ in runs)
    print("L2 workload benchmark: one reader of remote pages + one CPU-bound process in an L2 Linux guest")
    print(f"(columns: {names}; the instruction clock (icount) is the headline, the wall clock is this machine's)")
    print("CPU-bound work per phase: the iterations that take, at its present-memory rate, pages x latency")
    keys = []
    for _, _, figs in runs:
        for k, f in figs.items():
            if (f.get("target") or (k[0] == "l2_both_ratio")) and k not in keys:
                keys.append(k)
    rows = [["vCPUs", "latency", "figure"] + [c for c, _, _ in runs] + ["target"]]
    label = {"l2_cpu_share": "CPU-bound share async (sync)",
             "l2_mem_time_ratio": "reader's time async/sync (s)",
             "l2_both_ratio": "both finished async/sync (s)"}
    order = {"l2_cpu_share": 0, "l2_mem_time_ratio": 1, "l2_both_ratio": 2}
    keys.sort(key=lambda k: (int(re.search(r"(\d) vCPU", k[2]).group(1)), k[1], order.get(k[0], 9)))
    missed = []
    for k in keys:
        name, lat, mode = k
        cpus = re.search(r"(\d) vCPU", mode).group(1)
        row = [cpus, f"{lat:g} ms", label.get(name, name)]
        for clock, boots, figs in runs:
            f = figs.get(k)
            if not f:
                row.append("-")
                continue
            m = re.sub(r"^async, ", "", mode)
            if name == "l2_cpu_share":
                s = figs.get((name, lat, f"sync, {m}"))
                cell = f"{fmt(f['value'])} ({fmt(s['value'] if s else None)})"
            elif name == "l2_mem_time_ratio":
                a, s = figs.get(("l2_read_s", lat, f"async, {m}")), figs.get(("l2_read_s", lat, f"sync, {m}"))
                cell = f"x{fmt(f['value'])} ({fmt(a and a['value'])}/{fmt(s and s['value'])})"
            else:
                a, s = figs.get(("l2_both_s", lat, f"async, {m}")), figs.get(("l2_both_s", lat, f"sync, {m}"))
                cell = f"x{fmt(f['value'])} ({fmt(a and a['value'])}/{fmt(s and s['value'])})"
            if f.get("verdict"):
                cell += f" {f['verdict']}"
            row.append(cell)
            if f.get("verdict") == "MISSED":
                missed.append((clock, k, reason(f, boots)))
        row.append(next((f[k].get("target", "-") for _, _, f in runs if k in f), ""))
        rows.append(row)
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(x) for c, x in zip(r, w)).rstrip())
    print("\nfaults that blocked a vCPU synchronously per phase (pages served minus not-present notifications), async boots:")
    for clock, boots, figs in runs:
        parts = []
        for k, f in sorted(figs.items(), key=lambda kf: (kf[0][2], kf[0][1])):
            if k[0] == "l2_sync_faults" and k[2].startswith("async"):
                np = figs.get(("l2_not_present", k[1], k[2]))
                parts.append(f"{k[2][7:]} {k[1]:g} ms: {f['value']:.0f} of {f['value'] + (np['value'] if np else 0):.0f}")
        print(f"  {clock}: " + "; ".join(parts))
    print("\nafter each restore, until the workload ran again (kernel pages, synchronously; included in the times above), sync/async:")
    for clock, boots, figs in runs:
        parts = []
        for cpus in sorted({int(re.search(r"(\d) vCPU", k[2]).group(1)) for k in figs if k[0] == "l2_restart_s"}):
            for lat in sorted({k[1] for k in figs if k[0] == "l2_restart_s"}):
                s_, a_ = (figs.get(("l2_restart_s", lat, f"{m}, {cpus} vCPU")) for m in ("sync", "async"))
                parts.append(f"{cpus} vCPU {lat:g} ms: {fmt(s_ and s_['value'])}/{fmt(a_ and a_['value'])} s")
        print(f"  {clock}: " + "; ".join(parts))
    if missed:
        print("\nmissed, and what was measured:")
        for clock, (name, lat, mode), why in missed:
            print(f"  [{clock}] {mode}, {lat:g} ms, {label.get(name, name)}: {why}")
    bad = [b for _, boots, _ in runs for b in boots if b["rc"] != 0]
    for b in bad:
        print(f"l2_bench.py: warning: step {b['step']} ended rc={b['rc']}", file=sys.stderr)
    return 0


def cmd_plot(out, logs):
    runs = [parse(log) for log in logs]
    runs = [(c, figures(c, b)) for c, b in runs]
    if not any(f for _, f in runs):
        print("l2_bench.py: no L2 benchmark results to plot", file=sys.stderr)
        return 1
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("l2_cpu_share", "CPU-bound throughput while pages are remote\n(share of present-memory rate)",
               TARGET_SHARE, ">= 0.90"),
              ("l2_mem_time_ratio", "reader's completion time, async / sync", TARGET_MEM, "<= 1.10"),
              ("l2_both_ratio", "time until both finished, async / sync", None, "10 ms: <= 0.74, 0.2 ms: <= 1.00")]
    fig, axes = plt.subplots(len(runs), 3, figsize=(16, 4.6 * len(runs)), squeeze=False)
    colors = {"1": "tab:blue", "2": "tab:orange"}
    for row, (clock, figs) in zip(axes, runs):
        for ax, (name, title, target, tl) in zip(row, panels):
            for cpus in ("1", "2"):
                for mode, ls in (("async", "-"), ("sync", "--")):
                    want = f"{mode}, {cpus} vCPU" if name == "l2_cpu_share" else f"{cpus} vCPU"
                    if name != "l2_cpu_share" and mode == "sync":
                        continue
                    pts = sorted((f["delay_ms"], f["value"]) for f in figs
                                 if f["name"] == name and f["mode"] == want and f["value"] is not None)
                    if not pts:
                        continue
                    lab = f"{cpus} vCPU" + (f", {mode}" if name == "l2_cpu_share" else "")
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], ls, marker="o",
                            color=colors[cpus], label=lab)
            if target is not None:
                ax.axhline(target, color="gray", linestyle=":", label=f"target {tl}")
            else:
                for lat, t in TARGET_BOTH.items():
                    ax.plot([lat], [t], marker="v", color="gray", linestyle="none")
                ax.plot([], [], marker="v", color="gray", linestyle="none", label=f"target {tl}")
                ax.axhline(1.0, color="gray", linewidth=0.6)
            ax.set_xscale("log")
            lats = sorted({f["delay_ms"] for f in figs if f["name"] == name})
            ax.set_xticks(lats)
            ax.set_xticklabels([f"{x:g}" for x in lats])
            ax.set_xlabel("per-page latency (ms)")
            ax.set_title(f"{title}\n({clock} clock)", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("arm64 KVM async page faults: an L2 Linux guest right after a snapshot restore "
                 "(all guest RAM remote), reader + CPU-bound process", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"l2_bench.py: wrote {out}")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "figures":
        return cmd_figures(argv[2], argv[3])
    if len(argv) >= 3 and argv[1] == "table":
        return cmd_table(argv[2:])
    if len(argv) >= 4 and argv[1] == "plot":
        return cmd_plot(argv[2], argv[3:])
    sys.exit(__doc__.strip().split("Usage: ")[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
