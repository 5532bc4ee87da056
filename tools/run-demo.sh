#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job: build the patched host kernel, kvm_apf.ko, the guest driver
# and the VMM, boot the emulated arm64 host, load the module and show async
# page faults working: the benchmark (tools/vm/demo.plan) on both clocks,
# then an L2 Linux guest (tools/vm/demo-l2.plan); summarise the consoles.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bash "$APF_ROOT/tools/setup.sh"
bash "$APF_ROOT/tools/build-kernel.sh"
step "building kvm_apf.ko and kvm_apf_guest.ko"
make -s -C "$APF_ROOT" modules >"$APF_CACHE/module-build.log" 2>&1 ||
	{ tail -40 "$APF_CACHE/module-build.log"; die "module build failed (log: $APF_CACHE/module-build.log)"; }
bash "$APF_ROOT/tools/build-selftests.sh"
bash "$APF_ROOT/tools/build-vmm.sh"
bash "$APF_ROOT/tools/build-l2.sh"

# The benchmark runs once per clock: the instruction clock first (the
# headline figures: they measure the code path, whatever else this machine
# does), then the wall clock (what a user sees on this machine, load and
# all). APF_DEMO_CLOCKS="icount" (or "wall") runs one of them only.
logs=()
for clock in ${APF_DEMO_CLOCKS:-icount wall}; do
	step "emulated arm64 host: demo, $clock clock"
	log=$APF_CACHE/console-demo-$clock.log
	APF_CLOCK=$clock bash "$APF_ROOT/tools/run-host.sh" "$APF_ROOT/tools/vm/demo.plan" "$log" 1800
	logs+=("$log")
done

# An L2 Linux guest with the guest driver, on the wall clock.
step "emulated arm64 host: an L2 Linux guest with kvm_apf_guest.ko under tools/vmm"
l2log=$APF_CACHE/console-demo-l2.log
bash "$APF_ROOT/tools/run-host.sh" "$APF_ROOT/tools/vm/demo-l2.plan" "$l2log" 1200

step "what happened"
grep -E "kvm \[1\]: VHE|kvm_apf: |APF-DEMO" "${logs[0]}" | sed 's/^/    /' || true
for log in "${logs[@]}"; do
	python3 "$APF_ROOT/tools/harness/verdict.py" "$log" \
		--kunit-py "$(kernel_source_dir)/tools/testing/kunit/kunit.py" --quiet >"$APF_CACHE/demo-verdict.log" || true
	info "KUnit and steps ($(basename "$log")): $(tail -1 "$APF_CACHE/demo-verdict.log")"
done
mkdir -p "$APF_CACHE/bench"
rm -f "$APF_CACHE/bench/plot.png"
PYTHONPATH="$APF_TOOLS/pylib" python3 "$APF_ROOT/tools/bench/plot.py" "${logs[0]}" "$APF_CACHE/bench/plot.png" \
	>/dev/null 2>"$APF_CACHE/bench/plot.log" || info "no plot: $(tail -1 "$APF_CACHE/bench/plot.log")"
for log in "${logs[@]}"; do
	grep -E "APF-BENCH-RESULT" "$log" | tr -d '\r' | sed 's/^/    /' || info "no benchmark results in $log"
done
results=$APF_CACHE/bench/results.json
if python3 "$APF_ROOT/tools/bench/results.py" collect "$results" "${logs[@]}" >/dev/null; then
	step "the figures, one column per clock (all in $results)"
	python3 "$APF_ROOT/tools/bench/results.py" table --brief "$results" | sed 's/^/    /'
	info "compare two runs: tools/bench/compare.py OLD.json $results"
fi
step "the L2 guest: its driver's counters at the end of its workload"
grep -E "APF-L2-COUNTER done|run-l2: |apf-vmm: (async|exit)" "$l2log" | tr -d '\r' | sed 's/^/    /' ||
	info "no L2 results in $l2log"
[ ! -f "$APF_CACHE/bench/plot.png" ] || info "plot: $APF_CACHE/bench/plot.png (${logs[0]##*/})"
info "full consoles: ${logs[*]} $l2log"
