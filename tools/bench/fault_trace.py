#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Break the async page faults of a trace down into the steps they wait for.

Reads an ftrace text dump (the emulated host's console between
APF-TRACE-BEGIN and APF-TRACE-END, tools/vm/trace.plan) with the events
kvm_apf:*, kvm:kvm_exit/kvm_entry, sched:sched_switch/sched_waking,
workqueue:workqueue_queue_work/workqueue_execute_start, ipi:ipi_send_cpu and
irq:irq_handler_entry. For each async fault (a kvm_apf_not_present on the
vCPU thread and the kvm_apf_ready of its token) it finds:

  fexit    the vCPU leaves the guest on the stage-2 abort (kvm_exit)
  np       the vCPU thread announces the fault (kvm_apf_not_present)
  queued   the fault-in work is queued (workqueue_queue_work, kvm_apf)
  wipi     the wake-up of the kworker sends an IPI to its CPU (ipi_send_cpu)
  fentry   the vCPU re-enters the guest, which takes not-present (kvm_entry)
  wirq     the kworker's CPU takes that IPI (irq_handler_entry IPI)
  woken    the kworker is woken (sched_wakeup)
  wstart   it starts the work (workqueue_execute_start)
  uwake    the VMM's userfaultfd thread is woken by it (sched_waking)
  wblock   the kworker blocks in userfaultfd (sched_switch out)
  urun     that thread runs (it reads the message, sleeps the delay)
  usleep   it goes to sleep for the delay (sched_switch out)
  uback    it is woken at the end of the delay (sched_waking)
  urun2    it runs again (sched_switch in) and copies the page
  copy     the copy wakes the kworker (sched_waking of the kworker): the
           page has arrived
  wrun     the kworker runs again (sched_switch in)
  kick     it kicks the vCPU (ipi_send_cpu to the vCPU's CPU), if the
           vCPU was in the guest
  exit     the vCPU leaves the guest (kvm_exit)
  ready    page-ready is delivered (kvm_apf_ready)
  entry    the vCPU re-enters the guest (kvm_entry)
  next     the next fault of the vCPU thread (the next page): the faulting
           task ran again in between

and prints each step's time after the previous one, per fault and as
medians and means, with where each task ran and whether a timer tick came between;
where the time of the async phase went, per CPU and per fault, by what ran
(guest, vCPU thread in the host, fault-in kworkers, the VMM's userfaultfd
thread, idle, other tasks): exact on a one-CPU host on the instruction clock;
and, for the wait between queued and wstart, what the worker's CPU did
meanwhile (softirqs by vector, from irq:softirq_entry/exit).

Usage: fault_trace.py CONSOLE_LOG [--faults N] [--exit-us US]
"""

import argparse
import re
import statistics
import sys

EV = re.compile(r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+"
                r"(?P<ts>\d+\.\d+):\s+(?P<ev>\w+):\s+(?P<rest>.*)$")
KV = re.compile(r"(\w+)=(\S+)")
STEPS = ["fexit", "np", "queued", "wipi", "fentry", "wirq", "woken", "wstart", "uwake", "wblock",
         "urun", "usleep", "uback", "urun2", "copy", "wrun", "kick", "exit", "ready", "entry",
         "next"]


class E:
    __slots__ = ("comm", "pid", "cpu", "ts", "ev", "rest", "kv")

    def __init__(self, m):
        self.comm, self.pid, self.cpu = m["comm"].strip(), int(m["pid"]), int(m["cpu"])
        self.ts, self.ev, self.rest = float(m["ts"]), m["ev"], m["rest"]
        self.kv = dict(KV.findall(self.rest))


def load(path):
    evs, inside = [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if "APF-TRACE-BEGIN" in line:
                inside = True
                continue
            if "APF-TRACE-END" in line:
                break
            if inside:
                m = EV.match(line)
                if m:
                    evs.append(E(m))
    evs.sort(key=lambda e: e.ts)
    return evs


def first(evs, i0, pred, limit=None):
    for j in range(i0, len(evs) if limit is None else min(limit, len(evs))):
        if pred(evs[j]):
            return j
    return None


def analyse(evs):
    faults = []
    nps = [i for i, e in enumerate(evs) if e.ev == "kvm_apf_not_present"]
    for n, i in enumerate(nps):
        npe = evs[i]
        vpid, tok = npe.pid, npe.rest.split("token")[-1].strip()
        end = first(evs, i + 1, lambda e: e.ev == "kvm_apf_ready" and e.pid == vpid
                    and e.rest.split("token")[-1].strip() == tok)
        if end is None:
            continue
        t = {"np": i, "ready": end}
        for j in range(i - 1, max(i - 200, -1), -1):
            if evs[j].ev == "kvm_exit" and evs[j].pid == vpid:
                t["fexit"] = j
                break
        t["fentry"] = first(evs, i, lambda e: e.ev == "kvm_entry" and e.pid == vpid, end)
        q = first(evs, i, lambda e: e.ev == "workqueue_queue_work" and e.pid == vpid, end)
        if q is None:
            continue
        t["queued"] = q
        work = evs[q].kv.get("struct")
        s = first(evs, q, lambda e: e.ev == "workqueue_execute_start" and work in e.rest, end)
        if s is None:
            continue
        t["wstart"] = s
        kpid = evs[s].pid
        kname = evs[s].comm
        kcpu = evs[s].cpu
        t["wipi"] = first(evs, q, lambda e: e.ev == "ipi_send_cpu" and e.pid == vpid
                          and e.kv.get("cpu") == str(kcpu), s)
        if t["wipi"] is not None:
            t["wirq"] = first(evs, t["wipi"], lambda e: e.ev == "irq_handler_entry"
                              and "IPI" in e.rest and e.cpu == kcpu, s)
        t["woken"] = first(evs, q, lambda e: e.ev == "sched_wakeup"
                           and e.kv.get("pid") == str(kpid), s)
        t["wblock"] = first(evs, s, lambda e: e.ev == "sched_switch"
                            and e.kv.get("prev_pid") == str(kpid), end)
        info_softirq = softirqs(evs, q, s, evs[s].cpu)
        # The VMM's userfaultfd thread: same comm as the vCPU thread, another pid.
        uw = first(evs, s, lambda e: e.ev == "sched_waking" and e.pid == kpid
                   and e.kv.get("comm") == npe.comm and e.kv.get("pid") != str(vpid), end)
        upid = evs[uw].kv.get("pid") if uw is not None else None
        t["uwake"] = uw
        if upid:
            t["urun"] = first(evs, uw, lambda e: e.ev == "sched_switch"
                              and e.kv.get("next_pid") == upid, end)
            if t["urun"] is not None:
                t["usleep"] = first(evs, t["urun"], lambda e: e.ev == "sched_switch"
                                    and e.kv.get("prev_pid") == upid, end)
            if t.get("usleep") is not None:
                t["uback"] = first(evs, t["usleep"], lambda e: e.ev == "sched_waking"
                                   and e.kv.get("pid") == upid, end)
            if t.get("uback") is not None:
                t["urun2"] = first(evs, t["uback"], lambda e: e.ev == "sched_switch"
                                   and e.kv.get("next_pid") == upid, end)
            after = t.get("urun2") or t.get("uback") or uw
            t["copy"] = first(evs, after, lambda e: e.ev == "sched_waking"
                              and e.kv.get("pid") == str(kpid) and str(e.pid) == upid, end)
        if t.get("copy") is not None:
            t["wrun"] = first(evs, t["copy"], lambda e: e.ev == "sched_switch"
                              and e.kv.get("next_pid") == str(kpid), end)
        if t.get("wrun") is not None:
            t["kick"] = first(evs, t["wrun"], lambda e: e.ev == "ipi_send_cpu"
                              and e.pid == kpid, end)
            t["exit"] = first(evs, t["wrun"], lambda e: e.ev == "kvm_exit" and e.pid == vpid,
                              end + 1)
        t["entry"] = first(evs, end, lambda e: e.ev == "kvm_entry" and e.pid == vpid)
        t["next"] = nps[n + 1] if n + 1 < len(nps) else None
        info = {"token": tok, "kworker": f"{kname}-{kpid}", "upid": upid, "vpid": vpid,
                "softirq": info_softirq}
        faults.append((t, info))
    return faults


def softirqs(evs, a, b, cpu):
    """Time the CPU spent in each softirq vector between events a and b, in us."""
    out, start = {}, {}
    for e in evs[a:b + 1]:
        if e.cpu != cpu or e.ev not in ("softirq_entry", "softirq_exit"):
            continue
        vec = e.rest.split("action=")[-1].rstrip("]")
        if e.ev == "softirq_entry":
            start[vec] = e.ts
        elif vec in start:
            out[vec] = out.get(vec, 0.0) + (e.ts - start.pop(vec)) * 1e6
    for vec, t0 in start.items():  # still running at b
        out[vec] = out.get(vec, 0.0) + (evs[b].ts - t0) * 1e6
    return out


def where_time_goes(evs, faults):
    """Per CPU, the time between the first fault's exit and the last fault's
    re-entry, split by what ran: the guest (the vCPU thread between
    kvm_entry and kvm_exit), the vCPU thread in the host, the fault-in
    kworkers, the VMM's userfaultfd thread, idle, anything else. Returns
    {cpu: {class: seconds}} and the window's length. On a one-CPU host on
    the instruction clock every instruction is on that one CPU, so the split
    is exact: it is where an async fault's instructions go."""
    # The first fault is apf_bench's warm-up page, with one-off costs
    # around it: the window starts at the second.
    faults = faults[1:]
    firsts = [t.get("fexit", t["np"]) for t, _ in faults]
    lasts = [t["entry"] for t, _ in faults if t.get("entry") is not None]
    if not firsts or not lasts:
        return {}, 0.0, 0
    a, b = min(firsts), max(lasts)
    vpids = {info["vpid"] for _, info in faults}
    kpids = {int(info["kworker"].rsplit("-", 1)[1]) for _, info in faults}
    upids = {int(info["upid"]) for _, info in faults if info["upid"]}

    def cls(pid, in_guest):
        if pid in vpids:
            return "guest" if in_guest else "vCPU thread in the host"
        if pid in kpids:
            return "fault-in kworkers"
        if pid in upids:
            return "VMM userfaultfd thread"
        if pid == 0:
            return "idle"
        return "other tasks"

    cur, last_ts, guest, out = {}, {}, set(), {}
    for e in evs[a:b + 1]:
        c = e.cpu
        if c in last_ts:
            pid = cur.get(c, e.pid)
            k = cls(pid, pid in guest)
            out.setdefault(c, {}).setdefault(k, 0.0)
            out[c][k] += e.ts - last_ts[c]
        last_ts[c] = e.ts
        cur[c] = e.pid
        if e.ev == "sched_switch":
            cur[c] = int(e.kv.get("next_pid", e.pid))
        elif e.ev == "kvm_entry":
            guest.add(e.pid)
        elif e.ev == "kvm_exit":
            guest.discard(e.pid)
    return out, evs[b].ts - evs[a].ts, len(faults)


def ticks_between(evs, a, b):
    return sum(1 for e in evs[a:b] if e.ev == "irq_handler_entry" and "arch_timer" in e.rest)


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--faults", type=int, default=4, help="faults printed in full")
    ap.add_argument("--exit-us", type=float, default=0.0,
                    help="one exit round trip in us (apf_bench's figure), to count in them")
    args = ap.parse_args()
    evs = load(args.log)
    if not evs:
        sys.exit(f"fault_trace.py: no trace between APF-TRACE-BEGIN/END in {args.log}")
    faults = analyse(evs)
    print(f"{len(evs)} events, {len(faults)} async faults traced")
    deltas = {s: [] for s in STEPS}
    for k, (t, info) in enumerate(faults):
        prev = None
        lines = []
        for s in STEPS:
            j = t.get(s)
            if j is None:
                lines.append(f"  {s:7} -")
                continue
            e = evs[j]
            d = (e.ts - evs[prev].ts) * 1e6 if prev is not None else 0.0
            if prev is not None:
                deltas[s].append(d)
            tk = ticks_between(evs, prev, j) if prev is not None else 0
            lines.append(f"  {s:7} {e.ts:.6f}  +{d:9.1f} us  cpu{e.cpu} {e.comm}-{e.pid}"
                         f" {e.ev}{'  (tick between)' if tk else ''}")
            prev = j
        if k < args.faults:
            print(f"fault {k}: token {info['token']} worker {info['kworker']}"
                  f" uffd thread {info['upid']} vCPU thread {info['vpid']}")
            print("\n".join(lines))
            if info["softirq"]:
                print("  softirqs on the worker's CPU between queued and wstart: " +
                      ", ".join(f"{k} {v:.0f} us" for k, v in sorted(info["softirq"].items())))
    tot = {}
    for _, info in faults:
        for k, v in info["softirq"].items():
            tot[k] = tot.get(k, 0.0) + v
    if tot and faults:
        print("softirqs on the worker's CPU between queued and wstart, mean per fault: " +
              ", ".join(f"{k} {v / len(faults):.0f} us" for k, v in sorted(tot.items())))
    split, span, nf = where_time_goes(evs, faults)
    if split and nf:
        unit = f" = {{:.1f}} exit round trips of {args.exit_us} us" if args.exit_us else ""
        print(f"where the time goes, per async fault ({nf} faults after the first,"
              f" {span * 1e3:.3f} ms):")
        for c in sorted(split):
            for k, v in sorted(split[c].items(), key=lambda kv: -kv[1]):
                us = v * 1e6 / nf
                print(f"  cpu{c} {k:24} {us:9.1f} us" +
                      (unit.format(us / args.exit_us) if args.exit_us else ""))
        if len(split) > 1:
            print("  (more than one CPU: on the instruction clock the CPUs take turns,"
                  " so their rows overlap in time and do not add up)")
    print("over the faults, time since the previous step found (us):")
    print(f"  {'step':7} {'median':>9} {'mean':>9} {'max':>9}  n")
    for s in STEPS[1:]:
        if deltas[s]:
            d = deltas[s]
            print(f"  {s:7} {statistics.median(d):9.1f} {statistics.mean(d):9.1f}"
                  f" {max(d):9.1f}  {len(d)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
