#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Every test level, one verdict:
#   1. host: cargo test of the module's pure logic (with the fuzz corpus
#      replayed), a bounded fuzzing run, SPIN model checking of the
#      page-ready protocols, unit tests of the harness and of the
#      benchmark's tools;
#   2. KUnit suites of kvm_apf.ko, run at insmod in the emulated arm64 host;
#   3. kselftest-style end-to-end tests of the project and the stock KVM
#      selftest regression set, in the emulated host with the module loaded.
# Builds whatever is missing first (tools/setup.sh, the cached kernel, the
# module, the selftests). Last line: "N passed, N failed[, N skipped]".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

t_start=$SECONDS
bash "$APF_ROOT/tools/setup.sh"
bash "$APF_ROOT/tools/build-kernel.sh"

passed=0 failed=0 skipped=0
tally() { # tally PASSED FAILED SKIPPED WHAT
	passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
	local skip=
	[ "$3" = 0 ] || skip=", $3 skipped"
	info "$4: $1 passed, $2 failed$skip"
}

step "level 1: host cargo test (pure logic)"
log=$APF_CACHE/cargo-test.log
set +e
cargo test --manifest-path "$APF_ROOT/rust/logic_tests/Cargo.toml" 2>&1 | tee "$log" | grep -E '^(test result|running|error)|FAILED|panicked'
cargo_rc=${PIPESTATUS[0]}
set -e
# sum N: the sum of the numbers on stdin (0 for none).
sum() { awk '{ s += $1 } END { print s + 0 }'; }
p=$(sed -nE 's/^test result:.* ([0-9]+) passed.*/\1/p' "$log" | sum)
f=$(sed -nE 's/^test result:.* ([0-9]+) failed.*/\1/p' "$log" | sum)
[ "$cargo_rc" = 0 ] || [ "${f:-0}" != 0 ] || f=1
tally "${p:-0}" "${f:-0}" 0 "cargo test"

step "level 1: host cargo test (tools/vmm)"
log=$APF_CACHE/vmm-cargo-test.log
set +e
CARGO_TARGET_DIR=$APF_CACHE/vmm/host-target cargo test --locked \
	--manifest-path "$APF_ROOT/tools/vmm/Cargo.toml" 2>&1 | tee "$log" | grep -E '^(test result|running|error)|FAILED|panicked'
vmm_rc=${PIPESTATUS[0]}
set -e
p=$(sed -nE 's/^test result:.* ([0-9]+) passed.*/\1/p' "$log" | sum)
f=$(sed -nE 's/^test result:.* ([0-9]+) failed.*/\1/p' "$log" | sum)
[ "$vmm_rc" = 0 ] || [ "${f:-0}" != 0 ] || f=1
tally "${p:-0}" "${f:-0}" 0 "cargo test (tools/vmm)"

step "level 1: bounded fuzzing of the pure logic (libFuzzer, 15 s per target)"
set +e
bash "$APF_ROOT/tools/fuzz.sh" 15 | tee "$APF_CACHE/fuzz.log"
set -e
tally "$(grep -c ': ok' "$APF_CACHE/fuzz.log")" "$(grep -c ': FAILED' "$APF_CACHE/fuzz.log")" 0 "fuzz"

step "level 1: model checking of the page-ready protocols (SPIN)"
set +e
bash "$APF_ROOT/tools/model/check.sh" | tee "$APF_CACHE/model.log"
set -e
tally "$(grep -c ': ok' "$APF_CACHE/model.log")" "$(grep -c ': FAILED' "$APF_CACHE/model.log")" 0 "model checking"

step "level 1: self-tests of the harness and of the benchmark's tools"
log=$APF_CACHE/harness-test.log
h_rc=0
KUNIT_PY=$(kernel_source_dir)/tools/testing/kunit/kunit.py \
	python3 -m unittest discover -s "$APF_ROOT/tools/harness" -p 'test_*.py' >"$log" 2>&1 || h_rc=1
python3 -m unittest discover -s "$APF_ROOT/tools/bench" -p 'test_*.py' >>"$log" 2>&1 || h_rc=1
h_run=$(sed -nE 's/^Ran ([0-9]+) tests?.*/\1/p' "$log" | sum)
h_fail=$(sed -nE 's/.*(failures|errors)=([0-9]+).*/\2/p' "$log" | sum)
h_skip=$(sed -nE 's/.*skipped=([0-9]+).*/\1/p' "$log" | sum)
[ "$h_rc" = 0 ] || [ "$h_fail" != 0 ] || h_fail=1
[ "$h_rc" = 0 ] || cat "$log"
tally $(( ${h_run:-0} - ${h_fail:-0} - ${h_skip:-0} )) "${h_fail:-0}" "${h_skip:-0}" "harness and bench tools unittest"

build_modules
bash "$APF_ROOT/tools/build-selftests.sh"
bash "$APF_ROOT/tools/build-vmm.sh"
bash "$APF_ROOT/tools/build-l2.sh"

step "levels 2 and 3: emulated arm64 host"
plan=$APF_ROOT/tools/vm/test.plan
log=$APF_CACHE/console-test.log
bash "$APF_ROOT/tools/run-host.sh" "$plan" "$log" 3600 >/dev/null
expect=()
while read -r name _; do
	case "$name" in ''|'#'*) continue ;; esac
	expect+=(--expect-step "$name")
done <"$plan"
set +e
python3 "$APF_ROOT/tools/harness/verdict.py" "$log" \
	--kunit-py "$(kernel_source_dir)/tools/testing/kunit/kunit.py" "${expect[@]}" |
	tee "$APF_CACHE/verdict.log"
set -e
read -r p f s < <(tail -1 "$APF_CACHE/verdict.log" |
	sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\1 \2 \4/')
[ -n "$p" ] || { p=0; f=1; }
tally "$p" "$f" "${s:-0}" "emulated host (console: $log)"

step "done in $((SECONDS - t_start)) s"
summary="$passed passed, $failed failed"
[ "$skipped" = 0 ] || summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" = 0 ]
