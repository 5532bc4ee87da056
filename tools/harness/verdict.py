#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Read the emulated host's console log and give one verdict.

Counts the module's KUnit cases (KTAP, parsed by the kernel's own
tools/testing/kunit/kunit.py), one result per plan step (exit status: 0 pass,
4 skip as in kselftest, anything else fail), and fails the run on any kernel
splat (BUG, Oops, WARNING, lockdep, KFENCE, kmemleak, hung task, panic) even
when every test said ok. Prints the offending lines.

Usage: verdict.py CONSOLE_LOG [--kunit-py PATH] [--expect-step NAME ...]
Exit status 0 only when nothing failed. Last line: "N passed, N failed[, N skipped]".
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

KSFT_SKIP = 4

# Kernel reports that make a run fail whatever the tests said.
SPLATS = [
    (r"\bBUG: ", "BUG"),
    (r"\bOops\b", "Oops"),
    (r"\bWARNING: ", "WARNING"),
    (r"Kernel panic", "panic"),
    (r"possible circular locking dependency", "lockdep"),
    (r"possible recursive locking", "lockdep"),
    (r"inconsistent lock state", "lockdep"),
    (r"suspicious RCU usage", "lockdep"),
    (r"INFO: lockdep is turned off", "lockdep"),
    (r"sleeping function called from invalid context", "might_sleep"),
    (r"BUG: KFENCE", "KFENCE"),
    (r"kmemleak: \d+ new suspected memory leaks", "kmemleak"),
    (r"unreferenced object 0x", "kmemleak"),
    (r"INFO: task .* blocked for more than", "hung task"),
    (r"watchdog: BUG: soft lockup", "soft lockup"),
    (r"ODEBUG: ", "debugobjects"),
    (r"list_add corruption|list_del corruption", "list corruption"),
    (r"Internal error:", "Oops"),
    (r"Unable to handle kernel", "Oops"),
]
SPLAT_RE = [(re.compile(p), k) for p, k in SPLATS]

STEP_BEGIN = re.compile(r"APF-TEST-BEGIN (\S+)")
STEP_END = re.compile(r"APF-TEST-END (\S+) rc=(\d+)")
# kselftest's closing line; only reported, the step's exit status decides.
# KUnit's "# Totals:" has no xfail field: a module reloaded by a test prints
# its own while the test runs.
KSFT_TOTALS = re.compile(r"^# Totals: pass:(\d+) fail:(\d+) xfail:")


class Verdict:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.lines = []

    def add(self, status, what):
        if status == "pass":
            self.passed += 1
        elif status == "skip":
            self.skipped += 1
        else:
            self.failed += 1
        self.lines.append(f"{status.upper():5} {what}")


def find_splats(lines):
    hits = []
    for i, line in enumerate(lines):
        for rx, kind in SPLAT_RE:
            if rx.search(line):
                hits.append((i, kind, line.rstrip()))
                break
    return hits


# A top-level KTAP header: only a timestamp may stand before it.
KTAP_TOP = re.compile(r"^(\[\s*[0-9.]+\]\s?)?KTAP version \d+\s*$")


KTAP_PLAN = re.compile(r"^(\[\s*[0-9.]+\]\s?)?1\.\.(\d+)\s*$")
KTAP_TOP_RESULT = re.compile(r"^(\[\s*[0-9.]+\]\s?)?(not )?ok \d+")


def ktap_blocks(lines):
    """Each top-level KTAP document on the console: the built-in suites at
    boot, then one per module load (kunit.py parses only the first). A
    document ends after as many top-level results as its plan announced, so
    that a test's own TAP printed after a module load is not taken for it."""
    blocks = []
    for start, line in enumerate(lines):
        if not KTAP_TOP.match(line):
            continue
        end, planned, seen = len(lines), None, 0
        for i in range(start + 1, len(lines)):
            if planned is None:
                m = KTAP_PLAN.match(lines[i])
                if m:
                    planned = int(m.group(2))
                    if planned == 0:
                        end = i + 1
                        break
                continue
            if KTAP_TOP.match(lines[i]):
                end = i
                break
            if KTAP_TOP_RESULT.match(lines[i]):
                seen += 1
                if seen == planned:
                    end = i + 1
                    break
        blocks.append(lines[start:end])
    return blocks


def kunit_lines(lines):
    """The console with only the KUnit output the verdict counts: the
    built-in suites at boot (before the first plan step) and the module's
    suites run by the plan's "insmod" steps. A test that reloads the module
    prints its own TAP at the same time; that run is not counted (the test's
    own exit status is), and blanking it keeps the two from mixing."""
    keep = []
    inside = None
    for line in lines:
        m = STEP_BEGIN.search(line)
        if m:
            inside = m.group(1)
        # Console output may trail the step's end marker: until the next
        # step begins, it still belongs to the step that ended.
        allowed = inside is None or inside.startswith("insmod")
        keep.append(line if allowed else "")
    return keep


def kunit_cases(lines, kunit_py):
    """Leaf KUnit cases as (name, status) from the kernel's own parser,
    block by block; (None, message) if a block cannot be parsed."""
    cases = []
    for block in ktap_blocks(kunit_lines(lines)):
        got, err = kunit_block_cases(block, kunit_py)
        if got is None:
            return None, err
        cases += got
    return cases, ""


def kunit_block_cases(block, kunit_py):
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as src:
        src.write("\n".join(block) + "\n")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    try:
        proc = subprocess.run(
            [sys.executable, kunit_py, "parse", f"--json={out}", src.name],
            capture_output=True, text=True, check=False)
        if not os.path.getsize(out):
            return None, proc.stdout + proc.stderr
        with open(out, encoding="utf-8") as f:
            data = json.load(f)
    finally:
        os.unlink(out)
        os.unlink(src.name)
    cases = []

    def walk(group, prefix):
        for case in group.get("test_cases", []):
            cases.append((f"{prefix}{case['name']}", case["status"]))
        for sub in group.get("sub_groups", []):
            walk(sub, f"{prefix}{sub['name']}.")

    walk(data, "")
    return cases, ""


def judge(log_path, kunit_py=None, expect_steps=()):
    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    v = Verdict()

    if not any("APF-HARNESS: booted" in l for l in lines):
        v.add("fail", "emulated host did not boot to the test plan")
    if any("APF-HARNESS: FATAL" in l for l in lines):
        v.add("fail", "KVM did not come up in the emulated host (no /dev/kvm)")
    if any("APF-HARNESS: TIMEOUT" in l for l in lines):
        v.add("fail", "run hit the hard timeout")

    begun, ended, totals = [], {}, {}
    for line in lines:
        m = STEP_BEGIN.search(line)
        if m:
            begun.append(m.group(1))
        m = KSFT_TOTALS.search(line)
        if m and begun:
            totals[begun[-1]] = f" ({m.group(1)}/{int(m.group(1)) + int(m.group(2))} TAP cases ok)"
        m = STEP_END.search(line)
        if m:
            ended[m.group(1)] = int(m.group(2))
    for name in begun:
        if name not in ended:
            v.add("fail", f"{name}: never finished (crash or timeout)")
            continue
        rc = ended[name]
        if rc == 0:
            v.add("pass", name + totals.get(name, ""))
        elif rc == KSFT_SKIP:
            v.add("skip", f"{name}: skipped")
        else:
            v.add("fail", f"{name}: exit status {rc}")
    for name in expect_steps:
        if name not in begun:
            v.add("fail", f"{name}: planned but never started")

    if any("KTAP version" in l for l in lines):
        if not kunit_py:
            v.add("fail", "KTAP output present but no kunit.py to parse it")
        else:
            cases, err = kunit_cases(lines, kunit_py)
            if cases is None:
                v.add("fail", f"kunit.py could not parse the KTAP output: {err.strip()[:200]}")
            else:
                for name, status in cases:
                    if status in ("PASS", "SUCCESS"):
                        v.add("pass", f"kunit {name}")
                    elif status in ("SKIP", "SKIPPED"):
                        v.add("skip", f"kunit {name}")
                    else:
                        v.add("fail", f"kunit {name}: {status}")

    splats = find_splats(lines)
    if splats:
        v.add("fail", f"console shows {len(splats)} kernel report line(s)")
    return v, splats, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--kunit-py")
    ap.add_argument("--expect-step", action="append", default=[])
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    v, splats, lines = judge(args.log, args.kunit_py, args.expect_step)
    if not args.quiet:
        for l in v.lines:
            print("  " + l)
    if splats:
        print("Kernel reports on the console (run fails):")
        for i, kind, text in splats[:40]:
            print(f"  [{kind}] line {i + 1}: {text}")
            for ctx in lines[i + 1:i + 4]:
                print(f"      {ctx}")
    summary = f"{v.passed} passed, {v.failed} failed"
    if v.skipped:
        summary += f", {v.skipped} skipped"
    print(summary)
    return 1 if v.failed else 0


if __name__ == "__main__":
    sys.exit(main())
