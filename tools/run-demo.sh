#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job: build the patched host kernel and kvm_apf.ko, boot the
# emulated arm64 host, load the module and show async page faults working
# (tools/vm/demo.plan), then summarise what the console showed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bash "$APF_ROOT/tools/setup.sh"
bash "$APF_ROOT/tools/build-kernel.sh"
step "building kvm_apf.ko"
make -s -C "$APF_ROOT" modules >"$APF_CACHE/module-build.log" 2>&1 ||
	{ tail -40 "$APF_CACHE/module-build.log"; die "module build failed (log: $APF_CACHE/module-build.log)"; }
bash "$APF_ROOT/tools/build-selftests.sh"

step "emulated arm64 host: demo"
log=$APF_CACHE/console-demo.log
bash "$APF_ROOT/tools/run-host.sh" "$APF_ROOT/tools/vm/demo.plan" "$log" 1800

step "what happened"
grep -E "kvm \[1\]: VHE|kvm_apf: |APF-DEMO" "$log" | sed 's/^/    /' || true
python3 "$APF_ROOT/tools/harness/verdict.py" "$log" \
	--kunit-py "$(kernel_source_dir)/tools/testing/kunit/kunit.py" --quiet >"$APF_CACHE/demo-verdict.log" || true
info "KUnit and steps: $(tail -1 "$APF_CACHE/demo-verdict.log")"
mkdir -p "$APF_CACHE/bench"
rm -f "$APF_CACHE/bench/plot.png"
PYTHONPATH="$APF_TOOLS/pylib" python3 "$APF_ROOT/tools/bench/plot.py" "$log" "$APF_CACHE/bench/plot.png" \
	>/dev/null 2>"$APF_CACHE/bench/plot.log" || info "no plot: $(tail -1 "$APF_CACHE/bench/plot.log")"
grep -E "APF-BENCH-RESULT" "$log" | tr -d '\r' | sed 's/^/    /' || info "no benchmark results on the console"
[ ! -f "$APF_CACHE/bench/plot.png" ] || info "plot: $APF_CACHE/bench/plot.png"
info "full console: $log"
