#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the VMM (tools/vmm) for aarch64, statically: rustc-web against
# Debian's arm64 std (the sysroot tools/setup.sh makes), linked by the
# cross gcc. Output: $APF_CACHE/vmm/bin/apf-vmm; cargo's target dir is in the
# cache too, never in the repository.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SYSROOT=$APF_TOOLS/rust-arm64/sysroot
TRIPLE=aarch64-unknown-linux-gnu
out=$APF_CACHE/vmm
mkdir -p "$out/bin"

step "VMM (tools/vmm) for $TRIPLE"
[ -d "$SYSROOT/lib/rustlib/$TRIPLE/lib" ] ||
	die "no aarch64 Rust std in $SYSROOT" "run tools/setup.sh"
command -v cargo >/dev/null || die "cargo not found" "install rustup's cargo (tools/lib.sh looks in ~/.cargo/bin)"

export CARGO_TARGET_DIR=$out/target
export RUSTC=$RUSTC_KERNEL
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=${CROSS_COMPILE}gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="--sysroot $SYSROOT -C target-feature=+crt-static"
if ! cargo build --locked --release -j2 --target "$TRIPLE" \
	--manifest-path "$APF_ROOT/tools/vmm/Cargo.toml" >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	die "cargo build of tools/vmm failed (log: $out/build.log)"
fi
bin=$CARGO_TARGET_DIR/$TRIPLE/release/apf-vmm
file "$bin" 2>/dev/null | grep -q 'statically linked' ||
	{ command -v file >/dev/null && die "$bin is not statically linked"; }
install -m 0755 "$bin" "$out/bin/apf-vmm"
info "$out/bin/apf-vmm ($(du -h "$out/bin/apf-vmm" | cut -f1))"

# The smoke-test guest payload: static busybox and tools/vmm/smoke-init.
step "VMM smoke-test initramfs"
[ -x "$APF_TOOLS/busybox" ] || die "no static arm64 busybox in $APF_TOOLS" "run tools/setup.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,proc,sys,dev,tmp}
cp "$APF_TOOLS/busybox" "$work/bin/busybox"
install -m 0755 "$APF_ROOT/tools/vmm/smoke-init" "$work/init"
(cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/bin/vmm-smoke.cpio.gz"
info "$out/bin/vmm-smoke.cpio.gz"
