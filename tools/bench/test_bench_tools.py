# SPDX-License-Identifier: GPL-2.0
"""Tests of the benchmark's tools: results.py keeps what each run was on
(its APF-HOST line) with the figures, compare.py fails on a figure that
moved by more than the tolerance and notes runs of different setups, and
fault_trace.py splits an async phase's time by who ran it. Consoles and
traces are built in the shape the emulated host prints."""

import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fault_trace  # noqa: E402
import results  # noqa: E402


def fig(name, value, delay=1, mode="async", clock="icount"):
    return "APF-BENCH-JSON " + json.dumps({"clock": clock, "name": name, "delay_ms": delay,
                                           "mode": mode, "value": value, "unit": "ms"})


class ResultsAndCompare(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def log(self, name, host, figures):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w", encoding="utf-8") as f:
            if host:
                f.write(f"APF-HOST {host}\n")
            f.write("Booting Linux on physical CPU 0x0000000000\n")
            for line in figures:
                f.write(line + "\r\n")
        return path

    def collect(self, name, logs):
        out = os.path.join(self.tmp.name, name)
        with redirect_stdout(io.StringIO()):
            doc = results.collect(out, logs)
        return out, doc

    def compare(self, a, b):
        return subprocess.run([sys.executable, os.path.join(HERE, "compare.py"), a, b],
                              capture_output=True, text=True, check=False)

    def compare_runs(self, host_a, wait_a, host_b, wait_b):
        """compare.py on two one-figure runs: a wait per page of wait_a on
        host_a, and of wait_b on host_b."""
        a, _ = self.collect("a.json", [self.log("a.log", host_a, [fig("wait_per_page", wait_a)])])
        b, _ = self.collect("b.json", [self.log("b.log", host_b, [fig("wait_per_page", wait_b)])])
        return self.compare(a, b)

    def test_host_line_kept_with_the_run(self):
        host = "kernel=perf qemu=10.0.2 clock=icount cpus=2"
        _, doc = self.collect("r.json", [self.log("a.log", host, [fig("wait_per_page", 1.3)])])
        self.assertEqual(doc["runs"][0]["host"], host)
        self.assertEqual(doc["runs"][0]["figures"][0]["value"], 1.3)

    def test_no_host_line_is_empty(self):
        _, doc = self.collect("r.json", [self.log("a.log", "", [fig("wait_per_page", 1.3)])])
        self.assertEqual(doc["runs"][0]["host"], "")

    def test_compare_within_tolerance_passes(self):
        host = "kernel=perf qemu=10.0.2 clock=icount cpus=2"
        r = self.compare_runs(host, 1.000, host, 1.019)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("differ in setup", r.stdout)

    def test_compare_fails_beyond_tolerance(self):
        host = "kernel=perf qemu=10.0.2 clock=icount cpus=2"
        r = self.compare_runs(host, 1.00, host, 1.03)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("<--", r.stdout)

    def test_compare_notes_another_setup(self):
        r = self.compare_runs("kernel=debug qemu=7.2.22 clock=icount cpus=2", 1.0,
                              "kernel=perf qemu=10.0.2 clock=icount cpus=2", 1.0)
        self.assertIn("note: the icount runs differ in setup", r.stdout)


def trace_line(comm, pid, cpu, ts, ev, rest):
    return f"{comm:>16}-{pid:<7} [{cpu:03d}] d..2. {ts:12.6f}: {ev}: {rest}"


class WhereTimeGoes(unittest.TestCase):
    """One CPU, two async faults of the vCPU thread (pid 10): the kworker
    (pid 20) and the page server (pid 11) run between its exits."""

    def events(self):
        sw = "prev_comm={p} prev_pid={pp} prev_prio=120 prev_state=S ==> next_comm={n} next_pid={np} next_prio=120"
        lines = ["APF-TRACE-BEGIN"]
        t = 1.0
        for k, tok in enumerate(("0x1000", "0x2000")):
            base = t + k * 0.01
            lines += [
                trace_line("vcpu", 10, 0, base + 0.000000, "kvm_exit", "TRAP: HSR_EC: 0x0024 (DABT_LOW)"),
                trace_line("vcpu", 10, 0, base + 0.000004, "kvm_apf_not_present", f"vcpu 0 token {tok}"),
                trace_line("vcpu", 10, 0, base + 0.000006, "workqueue_queue_work",
                           f"work struct=w{k} function=x workqueue=kvm_apf_1 req_cpu=0 cpu=0"),
                trace_line("vcpu", 10, 0, base + 0.000008, "sched_switch",
                           sw.format(p="vcpu", pp=10, n="kworker/u4:1", np=20)),
                trace_line("kworker/u4:1", 20, 0, base + 0.000010, "workqueue_execute_start",
                           f"work struct w{k}: function x"),
                trace_line("kworker/u4:1", 20, 0, base + 0.000014, "sched_switch",
                           sw.format(p="kworker/u4:1", pp=20, n="vcpu", np=11)),
                trace_line("vcpu", 11, 0, base + 0.000020, "sched_switch",
                           sw.format(p="vcpu", pp=11, n="vcpu", np=10)),
                trace_line("vcpu", 10, 0, base + 0.000022, "kvm_entry", "PC: 0x1000"),
                # 1 ms of guest, then the page-ready exit.
                trace_line("vcpu", 10, 0, base + 0.001022, "kvm_exit", "IRQ: HSR_EC: 0x0000"),
                trace_line("vcpu", 10, 0, base + 0.001026, "kvm_apf_ready", f"vcpu 0 token {tok}"),
                trace_line("vcpu", 10, 0, base + 0.001028, "kvm_entry", "PC: 0x1000"),
            ]
        lines.append("APF-TRACE-END")
        return lines

    def test_split_by_who_ran(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("\n".join(self.events()) + "\n")
            path = f.name
        try:
            evs = fault_trace.load(path)
        finally:
            os.unlink(path)
        faults = fault_trace.analyse(evs)
        self.assertEqual(len(faults), 2)
        # The page server is found through the kworker's wake-up; this
        # trace has none, so give it as analyse() would have.
        for _, info in faults:
            info["upid"] = "11"
        split, span, n = fault_trace.where_time_goes(evs, faults)
        self.assertEqual(n, 1)  # the first fault is the warm-up, left out
        self.assertAlmostEqual(span, 0.001028, places=6)
        cpu0 = {k: round(v * 1e6) for k, v in split[0].items()}
        # exit->switch 8 us + the 2 us back to entry + the ready exit 6 us.
        self.assertEqual(cpu0["vCPU thread in the host"], 16)
        self.assertEqual(cpu0["fault-in kworkers"], 6)
        self.assertEqual(cpu0["VMM userfaultfd thread"], 6)
        self.assertEqual(cpu0["guest"], 1000)
        self.assertEqual(sum(cpu0.values()), 1028)


if __name__ == "__main__":
    unittest.main()
