#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build, statically for arm64, the stock KVM selftests of the regression set
# and the project's own kselftest-style tests (tools/selftests/*.c), against
# the 7.3 tree's tools/testing/selftests/kvm library and the patched UAPI
# headers. The project's tests are copied into that tree's arm64/ folder as
# apf_*.c so that they build with exactly the stock rules.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Stock tests that must keep passing with the patch and the module.
# page_fault_test_tcg is arm64/page_fault_test minus its userfaultfd cases,
# which fail under QEMU TCG on the unpatched kernel too (see
# tools/selftests/stock/page_fault_test_tcg.py).
STOCK_TESTS="arm64/hypercalls arm64/smccc_filter arm64/psci_test arm64/vgic_init
	arm64/page_fault_test_tcg demand_paging_test"

ksrc=$(kernel_source_dir)
kbuild=$(kernel_build_dir)
kvm_st=$ksrc/tools/testing/selftests/kvm
hdrs=$kbuild/usr/include
[ -d "$hdrs/linux" ] || die "no UAPI headers in $hdrs" "run tools/build-kernel.sh (it runs 'make headers')"

out=$APF_CACHE/selftests/out
bin=$APF_CACHE/selftests/bin
mkdir -p "$out" "$bin"

python3 "$APF_ROOT/tools/selftests/stock/page_fault_test_tcg.py" \
	"$kvm_st/arm64/page_fault_test.c" "$kvm_st/arm64/page_fault_test_tcg.c" ||
	die "cannot derive page_fault_test_tcg.c from the stock test"

# The benchmark (tools/bench/*.c) is built the same way, next to the tests.
own=
for src in "$APF_ROOT"/tools/selftests/*.c "$APF_ROOT"/tools/bench/*.c; do
	[ -e "$src" ] || continue
	name=$(basename "$src" .c)
	cp "$src" "$kvm_st/arm64/$name.c"
	own="$own arm64/$name"
done
for h in "$APF_ROOT"/tools/selftests/*.h; do
	[ -e "$h" ] && cp "$h" "$kvm_st/arm64/"
done

step "building KVM selftests:$(echo $STOCK_TESTS $own | tr -s ' \t\n' ' ')"
make -s -C "$kvm_st" ARCH=arm64 CROSS_COMPILE=$CROSS_COMPILE OUTPUT="$out" \
	LDFLAGS=-static KHDR_INCLUDES="-isystem $hdrs" \
	TEST_GEN_PROGS_arm64="$(echo $STOCK_TESTS $own)" TEST_GEN_PROGS_EXTENDED_arm64= \
	-j"$(nproc)" >"$APF_CACHE/selftests/build.log" 2>&1 ||
	{ tail -40 "$APF_CACHE/selftests/build.log"; die "selftest build failed (log: $APF_CACHE/selftests/build.log)"; }
rm -f "$bin"/*
for t in $STOCK_TESTS $own; do
	cp "$out/$t" "$bin/$(basename "$t")"
done
info "$(ls "$bin" | wc -l) binaries in $bin"
