#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the L2 guest's payload: a static arm64 workload (tools/l2/apf_work.c)
# and an initramfs of static busybox, kvm_apf_guest.ko, the workload and
# tools/l2/init, into $APF_CACHE/l2/ ($APF_CACHE/l2-perf/ for APF_KERNEL=perf):
#
#   initramfs.cpio.gz   the initramfs
#   apf_work            the workload binary
#   run-l2              runs and checks one L2 boot in the emulated host
#                       (run-host.sh copies this folder to /l2)
#   guest-inject        drives the driver's sleep paths in the emulated
#                       host itself (inject=1), with
#   kvm_apf_guest.ko    the module
#
#   tools/build-l2.sh [GUEST_KO]
#
# GUEST_KO defaults to kvm_apf_guest.ko of `make modules` ($APF_CACHE/module,
# or module-perf), else of a separate guest-module build ($APF_CACHE/module-guest).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$APF_L2_DIR
ko=${1:-}
if [ -z "$ko" ]; then
	for d in "$APF_MODULE_DIR" "$APF_CACHE/module-guest"; do
		if [ -f "$d/kvm_apf_guest.ko" ]; then
			ko=$d/kvm_apf_guest.ko
			break
		fi
	done
fi
[ -n "$ko" ] && [ -f "$ko" ] ||
	die "no kvm_apf_guest.ko" "run make modules (it builds the guest driver too)"
[ -x "$APF_TOOLS/busybox" ] || die "no static busybox at $APF_TOOLS/busybox" "run tools/setup.sh"

step "L2 payload"
mkdir -p "$out"
${CROSS_COMPILE}gcc -static -O2 -Wall -Wextra -Werror \
	-o "$out/apf_work" "$APF_ROOT/tools/l2/apf_work.c" ||
	die "building tools/l2/apf_work.c failed" "is gcc-aarch64-linux-gnu with libc6-dev-arm64-cross installed?"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,etc}
cp "$APF_TOOLS/busybox" "$root/bin/busybox"
cp "$out/apf_work" "$root/bin/apf_work"
cp "$ko" "$root/kvm_apf_guest.ko"
cp "$APF_ROOT/tools/l2/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
install -m 0755 "$APF_ROOT/tools/l2/run-l2" "$out/run-l2"
install -m 0755 "$APF_ROOT/tools/l2/guest-inject" "$out/guest-inject"
install -m 0644 "$ko" "$out/kvm_apf_guest.ko"
info "$out/initramfs.cpio.gz ($(du -h "$out/initramfs.cpio.gz" | cut -f1), module $ko)"
