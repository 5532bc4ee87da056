# SPDX-License-Identifier: GPL-2.0
# Shared settings for the project's scripts: paths, pinned versions, logging.
# Sourced, never executed.

APF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything built or downloaded lives outside the repository.
APF_CACHE=${APF_CACHE:-/var/cache/kvm-apf}
APF_TOOLS=$APF_CACHE/tools

# The exact kernel source package, pinned: trixie-backports moves on.
KSRC_PKG=linux-source-7.3
KSRC_VERSION=7.3.4-1~bpo13+1
KSRC_SHA256_FILE=$APF_ROOT/tools/linux-source.sha256

# The benchmark's emulator: QEMU 10 from bookworm-backports, extracted into
# the cache, not installed (tools/setup.sh). Its round robin shares each
# turn of the instruction clock between the CPUs (QEMU commit 83ecdb18eb65,
# 8.1); the system's QEMU 7.2, which the tests run on, lets one CPU take a
# whole turn while the other waits for many (Documentation/design.rst).
QEMU10_PKG=qemu-system-arm
QEMU10_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
QEMU10_SHA256_FILE=$APF_ROOT/tools/qemu10.sha256
APF_QEMU10=$APF_TOOLS/qemu10/root/usr/bin/qemu-system-aarch64

# cargo from rustup, for a shell whose PATH lacks it (CI).
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) [ -d "$HOME/.cargo/bin" ] && PATH=$HOME/.cargo/bin:$PATH ;; esac
export PATH

ARCH=arm64
CROSS_COMPILE=aarch64-linux-gnu-
export ARCH CROSS_COMPILE

RUSTC_KERNEL=/usr/bin/rustc
RUSTDOC_KERNEL=/usr/bin/rustdoc
BINDGEN=$APF_TOOLS/cargo/bin/bindgen
LIBCLANG_PATH=$APF_TOOLS/libclang/clang/native
export LIBCLANG_PATH

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
	printf '\nERROR: %s\n' "$1" >&2
	[ -n "${2:-}" ] && printf '  what to do: %s\n' "$2" >&2
	exit 1
}

kmake() {
	make ARCH=arm64 CROSS_COMPILE=$CROSS_COMPILE \
		RUSTC=$RUSTC_KERNEL RUSTDOC=$RUSTDOC_KERNEL BINDGEN=$BINDGEN \
		HOSTRUSTC=$RUSTC_KERNEL "$@"
}

# The cached kernel: one source tree (a git repository, so the patch series
# is applied with git am and reverting it touches only the files it changed)
# and a build tree per kernel. Incremental rebuilds when only patches change.
# Two kernels from that one tree and series (APF_KERNEL):
#   debug  make test's: tools/kernel/apf.config + debug.config (lockdep,
#          kmemleak, KFENCE, debug objects, ...); the default;
#   perf   make run's benchmark: apf.config alone, no debugging options, as
#          a distribution builds it (performance is not measured on lockdep).
# Each has its own build tree, module folder and L2 payload.
KCACHE=${APF_KCACHE:-$APF_CACHE/kernel}
KSRC_TREE=$KCACHE/src
PATCH_DIR=$APF_ROOT/c_shim/patches
APF_KERNEL=${APF_KERNEL:-debug}
export APF_KERNEL
CONFIG_FRAGMENTS=("$APF_ROOT/tools/kernel/apf.config")
case "$APF_KERNEL" in
debug)
	KBUILD_TREE=$KCACHE/build
	APF_MODULE_DIR=$APF_CACHE/module
	APF_L2_DIR=$APF_CACHE/l2
	CONFIG_FRAGMENTS+=("$APF_ROOT/tools/kernel/debug.config")
	;;
perf)
	KBUILD_TREE=$KCACHE/build-perf
	APF_MODULE_DIR=$APF_CACHE/module-perf
	APF_L2_DIR=$APF_CACHE/l2-perf
	;;
*)
	echo "APF_KERNEL=$APF_KERNEL: use debug or perf" >&2
	exit 1
	;;
esac

# KDIR= points at a user's own prepared 7.3 build tree instead of the cache.
kernel_build_dir() { echo "${KDIR:-$KBUILD_TREE}"; }

# build_modules: kvm_apf.ko and kvm_apf_guest.ko for this APF_KERNEL, into
# APF_MODULE_DIR (the Makefile's modules target, pointed at this kernel).
build_modules() {
	local blog=$APF_CACHE/module-build-$APF_KERNEL.log

	step "building kvm_apf.ko and kvm_apf_guest.ko"
	make -s -C "$APF_ROOT" KDIR="$(kernel_build_dir)" MO="$APF_MODULE_DIR" modules >"$blog" 2>&1 ||
		{ tail -40 "$blog"; die "module build failed (log: $blog)"; }
}
kernel_source_dir() {
	if [ -n "${KDIR:-}" ]; then
		if [ -e "$KDIR/source" ]; then readlink -f "$KDIR/source"; else echo "$KDIR"; fi
	else
		echo "$KSRC_TREE"
	fi
}
