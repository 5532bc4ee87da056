#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job: build the patched host kernel, kvm_apf.ko, the guest driver
# and the VMM, boot the emulated arm64 host, load the module and show async
# page faults working: the benchmark (tools/vm/demo.plan) and the L2
# workload benchmark (tools/vm/demo-l2bench.plan) on both clocks, the
# benchmark once more on a one-CPU host (tools/vm/demo-1cpu.plan), then an
# L2 Linux guest (tools/vm/demo-l2.plan); summarise the consoles.
# APF_DEMO_CLOCKS="icount" (or "wall", "icount-1cpu") runs those only;
# APF_DEMO_L2BENCH=0 leaves the L2 workload benchmark out.
# Everything here runs on the perf kernel (tools/lib.sh: the series without
# the debugging options that make test's kernel has; APF_KERNEL=debug
# benchmarks the debug kernel instead) and on QEMU 10 (tools/setup.sh; its
# instruction clock gives each CPU its share of a turn; APF_QEMU= names
# another emulator).
set -euo pipefail
APF_KERNEL=${APF_KERNEL:-perf}
. "$(dirname "$0")/lib.sh"

bash "$APF_ROOT/tools/setup.sh"
APF_QEMU=${APF_QEMU:-$APF_QEMU10}
export APF_QEMU
bash "$APF_ROOT/tools/build-kernel.sh"
build_modules
bash "$APF_ROOT/tools/build-selftests.sh"
bash "$APF_ROOT/tools/build-vmm.sh"
bash "$APF_ROOT/tools/build-l2.sh"

# The benchmark runs once per clock: the instruction clock first (the
# headline figures: they measure the code path, whatever else this machine
# does), then the wall clock (what a user sees on this machine, load and
# all). Between them the benchmark alone on a one-CPU host, instruction
# clock (icount-1cpu): there no wake-up waits for the emulator's turn of
# another CPU, so its waits are the design's own. APF_DEMO_CLOCKS="icount"
# (or any subset of "icount icount-1cpu wall") runs those only.
# The L2 workload benchmark boots the emulated host once more per clock
# (not for icount-1cpu): four L2 guests (1 and 2 vCPUs, without and with
# --async-pf), each through three snapshot restores (tools/bench/l2_bench.py).
mkdir -p "$APF_CACHE/bench"
logs=()
l2blogs=()
l2figs=()
for clock in ${APF_DEMO_CLOCKS:-icount icount-1cpu wall}; do
	step "emulated arm64 host: demo, $clock clock"
	log=$APF_CACHE/console-demo-$clock.log
	plan=$APF_ROOT/tools/vm/demo.plan
	[ "$clock" != icount-1cpu ] || plan=$APF_ROOT/tools/vm/demo-1cpu.plan
	APF_CLOCK=$clock bash "$APF_ROOT/tools/run-host.sh" "$plan" "$log" 1800
	logs+=("$log")
	[ "${APF_DEMO_L2BENCH:-1}" = 1 ] && [ "$clock" != icount-1cpu ] || continue
	step "emulated arm64 host: the L2 workload benchmark, $clock clock"
	log=$APF_CACHE/console-l2bench-$clock.log
	APF_CLOCK=$clock bash "$APF_ROOT/tools/run-host.sh" "$APF_ROOT/tools/vm/demo-l2bench.plan" "$log" 2400
	l2blogs+=("$log")
	figs=$APF_CACHE/bench/l2-figures-$clock.log
	python3 "$APF_ROOT/tools/bench/l2_bench.py" figures "$log" "$figs" >/dev/null &&
		l2figs+=("$figs") || info "no L2 benchmark figures in $log"
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
rm -f "$APF_CACHE/bench/plot.png"
PYTHONPATH="$APF_TOOLS/pylib" python3 "$APF_ROOT/tools/bench/plot.py" "${logs[0]}" "$APF_CACHE/bench/plot.png" \
	>/dev/null 2>"$APF_CACHE/bench/plot.log" || info "no plot: $(tail -1 "$APF_CACHE/bench/plot.log")"
for log in "${logs[@]}"; do
	grep -E "APF-BENCH-RESULT" "$log" | tr -d '\r' | sed 's/^/    /' || info "no benchmark results in $log"
done
results=$APF_CACHE/bench/results.json
if python3 "$APF_ROOT/tools/bench/results.py" collect "$results" "${logs[@]}" ${l2figs[@]+"${l2figs[@]}"} >/dev/null; then
	step "the figures, one column per clock (all in $results)"
	python3 "$APF_ROOT/tools/bench/results.py" table --brief "$results" | sed 's/^/    /'
	info "compare two runs: tools/bench/compare.py OLD.json $results"
fi
if [ ${#l2blogs[@]} -gt 0 ]; then
	step "the L2 workload benchmark (figures also in $results)"
	python3 "$APF_ROOT/tools/bench/l2_bench.py" table "${l2blogs[@]}" | sed 's/^/    /' ||
		info "no L2 benchmark results in ${l2blogs[*]}"
	rm -f "$APF_CACHE/bench/l2-plot.png"
	PYTHONPATH="$APF_TOOLS/pylib" python3 "$APF_ROOT/tools/bench/l2_bench.py" plot "$APF_CACHE/bench/l2-plot.png" \
		"${l2blogs[@]}" >/dev/null 2>"$APF_CACHE/bench/l2-plot.log" || info "no L2 plot: $(tail -1 "$APF_CACHE/bench/l2-plot.log")"
	[ ! -f "$APF_CACHE/bench/l2-plot.png" ] || info "L2 benchmark plot: $APF_CACHE/bench/l2-plot.png"
fi
step "the L2 guest: its driver's counters at the end of its workload"
grep -E "APF-L2-COUNTER done|run-l2: |apf-vmm: (async|exit)" "$l2log" | tr -d '\r' | sed 's/^/    /' ||
	info "no L2 results in $l2log"
[ ! -f "$APF_CACHE/bench/plot.png" ] || info "plot: $APF_CACHE/bench/plot.png (${logs[0]##*/})"
info "full consoles: ${logs[*]} ${l2blogs[*]} $l2log"
