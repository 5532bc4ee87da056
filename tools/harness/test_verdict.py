# SPDX-License-Identifier: GPL-2.0
"""Tests of the harness itself: the verdict must fail on a failing KUnit
case, a failing kselftest, a kernel WARNING (even when every test said ok),
a step that never finished, and a run that never booted; and pass a clean
run. Console logs are built in the shape the emulated host prints."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
VERDICT = os.path.join(HERE, "verdict.py")
KUNIT_PY = os.environ.get("KUNIT_PY", "")

sys.path.insert(0, HERE)
import verdict  # noqa: E402


def ktap(cases):
    """KUnit's console output for one suite of (name, ok) cases."""
    out = ["KTAP version 1", "1..1", "    KTAP version 1",
           "    # Subtest: kvm_apf_canary", f"    1..{len(cases)}"]
    for i, (name, ok) in enumerate(cases, 1):
        if not ok:
            out.append(f"    # {name}: ASSERTION FAILED at rust/kvm_apf.rs:1")
        out.append(f"    {'ok' if ok else 'not ok'} {i} {name}")
    fails = sum(1 for _, ok in cases if not ok)
    out.append(f"{'not ok' if fails else 'ok'} 1 kvm_apf_canary")
    return [f"[    4.{i:06d}] {l}" for i, l in enumerate(out)]


def console(steps=(("insmod", 0), ("hypercalls", 0)), kunit=(("a", True), ("b", True)),
            extra=(), booted=True):
    lines = ["Booting Linux on physical CPU 0x0000000000 [0x000f0510]",
             "[    1.000000] kvm [1]: VHE mode initialized successfully"]
    if booted:
        lines.append("APF-HARNESS: booted 7.3.4 on 2 cpus")
        lines.append("APF-HARNESS: /dev/kvm present")
    for name, rc in steps:
        lines.append(f"APF-TEST-BEGIN {name}")
        if name == "insmod" and kunit:
            lines += ktap(kunit)
        lines.extend(extra if name == "hypercalls" else ())
        if rc is not None:
            lines.append(f"APF-TEST-END {name} rc={rc}")
    lines.append("APF-HARNESS: done")
    return "\n".join(lines) + "\n"


@unittest.skipUnless(os.path.isfile(KUNIT_PY), "needs the kernel's kunit.py (KUNIT_PY)")
class VerdictTest(unittest.TestCase):
    def run_verdict(self, text, *extra_args):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            proc = subprocess.run([sys.executable, VERDICT, path, "--kunit-py", KUNIT_PY,
                                   *extra_args], capture_output=True, text=True, check=False)
        finally:
            os.unlink(path)
        return proc.returncode, proc.stdout.strip().splitlines()[-1], proc.stdout

    def test_clean_run_passes(self):
        rc, last, _ = self.run_verdict(console())
        self.assertEqual(rc, 0)
        self.assertEqual(last, "4 passed, 0 failed")

    def test_failing_kunit_assertion_fails(self):
        rc, last, out = self.run_verdict(console(kunit=(("a", True), ("b", False))))
        self.assertNotEqual(rc, 0)
        self.assertEqual(last, "3 passed, 1 failed")
        self.assertIn("kunit kvm_apf_canary.b", out)

    def test_failing_kselftest_fails(self):
        rc, last, out = self.run_verdict(console(steps=(("insmod", 0), ("hypercalls", 1))))
        self.assertNotEqual(rc, 0)
        self.assertEqual(last, "3 passed, 1 failed")
        self.assertIn("hypercalls: exit status 1", out)

    def test_kselftest_skip_is_not_a_pass(self):
        rc, last, _ = self.run_verdict(console(steps=(("insmod", 0), ("hypercalls", 4))))
        self.assertEqual(rc, 0)
        self.assertEqual(last, "3 passed, 0 failed, 1 skipped")

    def test_warning_fails_even_when_all_tests_pass(self):
        warn = ["[   12.345678] ------------[ cut here ]------------",
                "[   12.345679] WARNING: CPU: 1 PID: 97 at arch/arm64/kvm/mmu.c:1900 user_mem_abort+0x1c/0x40",
                "[   12.345680] Call trace:"]
        rc, last, out = self.run_verdict(console(extra=warn))
        self.assertNotEqual(rc, 0)
        self.assertIn("[WARNING]", out)
        self.assertTrue(last.endswith("1 failed"))

    def test_lockdep_and_kmemleak_reports_fail(self):
        for report in ("[    9.1] WARNING: possible circular locking dependency detected",
                       "[    9.1] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
                       "unreferenced object 0xffff000004a1c000 (size 64):",
                       "[    9.1] BUG: sleeping function called from invalid context at mm/gup.c:1"):
            rc, _, _ = self.run_verdict(console(extra=[report]))
            self.assertNotEqual(rc, 0, report)

    def test_step_that_never_ends_fails(self):
        rc, _, out = self.run_verdict(console(steps=(("insmod", 0), ("hypercalls", None))))
        self.assertNotEqual(rc, 0)
        self.assertIn("never finished", out)

    def test_planned_step_never_started_fails(self):
        rc, _, out = self.run_verdict(console(), "--expect-step", "vgic_init")
        self.assertNotEqual(rc, 0)
        self.assertIn("vgic_init: planned but never started", out)

    def test_boot_and_insmod_ktap_both_counted(self):
        boot = ktap((("builtin", True),))
        text = console().replace("APF-HARNESS: booted", "\n".join(boot) + "\nAPF-HARNESS: booted", 1)
        rc, last, out = self.run_verdict(text)
        self.assertEqual(rc, 0)
        self.assertEqual(last, "5 passed, 0 failed")

    def test_ktap_inside_a_test_step_is_not_counted(self):
        # A test reloading the module: its suites run while the test prints.
        reload = ktap((("x", False),))
        rc, last, _ = self.run_verdict(console(extra=reload))
        self.assertEqual(rc, 0)
        self.assertEqual(last, "4 passed, 0 failed")

    def test_no_boot_fails(self):
        rc, _, _ = self.run_verdict(console(steps=(), kunit=(), booted=False))
        self.assertNotEqual(rc, 0)


class SplatPatternTest(unittest.TestCase):
    def test_ordinary_lines_are_not_splats(self):
        ok = ["[    1.0] kvm [1]: VHE mode initialized successfully",
              "# Totals: pass:6 fail:0 xfail:0 xpass:0 skip:0 error:0",
              "ok 1 kvm_apf_gfn_table"]
        self.assertEqual(verdict.find_splats(ok), [])

    def test_hung_task_is_a_splat(self):
        hits = verdict.find_splats(["[  120.0] INFO: task kworker/u4:1:55 blocked for more than 60 seconds."])
        self.assertEqual(len(hits), 1)


if __name__ == "__main__":
    unittest.main()
