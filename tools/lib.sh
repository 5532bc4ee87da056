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
# and one build tree. Incremental rebuilds when only patches change.
KCACHE=${APF_KCACHE:-$APF_CACHE/kernel}
KSRC_TREE=$KCACHE/src
KBUILD_TREE=$KCACHE/build
PATCH_DIR=$APF_ROOT/c_shim/patches
CONFIG_FRAGMENT=$APF_ROOT/tools/kernel/apf.config

# KDIR= points at a user's own prepared 7.3 build tree instead of the cache.
kernel_build_dir() { echo "${KDIR:-$KBUILD_TREE}"; }
kernel_source_dir() {
	if [ -n "${KDIR:-}" ]; then
		if [ -e "$KDIR/source" ]; then readlink -f "$KDIR/source"; else echo "$KDIR"; fi
	else
		echo "$KSRC_TREE"
	fi
}
