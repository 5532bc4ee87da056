#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Bounded libFuzzer runs of the pure logic's fuzz targets
# (rust/logic_tests/fuzz, cargo fuzz on the stable toolchain: no sanitizer).
#
#   tools/fuzz.sh [SECONDS_PER_TARGET]     (default 15)
#
# Starts from the checked-in corpus and writes what it finds to
# $APF_CACHE/fuzz/corpus/<target>, never into the repository; a crash
# input lands in $APF_CACHE/fuzz/artifacts/<target>. Add a new input to
# the checked-in corpus by copying it to rust/logic_tests/fuzz/corpus/.
# Prints one "fuzz <target>: ok|FAILED" line per target; exits non-zero
# if any failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

secs=${1:-15}
fuzz_dir=$APF_ROOT/rust/logic_tests/fuzz
out=$APF_CACHE/fuzz
export PATH=$APF_TOOLS/cargo/bin:$PATH
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is not installed" "run tools/setup.sh"

cd "$APF_ROOT/rust/logic_tests"
cargo fuzz build -s none --target-dir "$out/target" >"$out.build.log" 2>&1 ||
	{ tail -30 "$out.build.log"; die "building the fuzz targets failed (log: $out.build.log)"; }

failed=0
for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v '^kvm_apf'); do
	mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
	if cargo fuzz run -s none --target-dir "$out/target" "$t" \
		"$out/corpus/$t" "$fuzz_dir/corpus/$t" -- \
		-max_total_time="$secs" -max_len=512 -artifact_prefix="$out/artifacts/$t/" \
		>"$out/$t.log" 2>&1; then
		echo "fuzz $t: ok ($(grep -o 'Done [0-9]* runs' "$out/$t.log" | tail -1))"
	else
		echo "fuzz $t: FAILED (log: $out/$t.log)"
		grep -E 'panicked|SUMMARY|ERROR' "$out/$t.log" | head -5 | sed 's/^/    /'
		failed=1
	fi
done
exit $failed
