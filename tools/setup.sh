#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install everything the build and the tests need on a fresh Debian 12 machine.
# Idempotent: when everything is there it only checks, in seconds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# private_suite DIR SUITE: sets opts to apt-get options that reach Debian's
# SUITE through a private source list, the machine's own Debian entry
# (/etc/apt/sources.list.d/debian.sources) with its Suites line changed, and
# private lists in DIR/lists, updated here; the system's apt configuration
# is untouched.
private_suite() {
	mkdir -p "$1/lists/partial"
	sed -n '/^Types:/,/^$/p' /etc/apt/sources.list.d/debian.sources | awk 'BEGIN{RS="";ORS="\n\n"} NR==1' |
		sed "s/^Suites:.*/Suites: $2/" >"$1/$2.sources"
	opts=(-o Dir::Etc::SourceList="$1/$2.sources" -o Dir::Etc::SourceParts=/dev/null
	      -o Dir::State::Lists="$1/lists")
	apt-get "${opts[@]}" update -q >/dev/null ||
		die "apt-get update of $2 failed" "check the Debian archive is reachable"
}

DEB_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross rustc-web rust-web-src
	qemu-system-arm flex bison bc libelf-dev libssl-dev cpio kmod make gcc
	python3 xz-utils git perl spin"

step "Debian packages"
missing=
for p in $DEB_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	info "installing:$missing"
	$SUDO apt-get update -q >/dev/null ||
		die "apt-get update failed" "check that the Debian archive is reachable"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >/dev/null ||
		die "apt-get install$missing failed" "run it by hand to see apt's message"
else
	info "all present"
fi
[ -x "$RUSTC_KERNEL" ] && "$RUSTC_KERNEL" --version | grep -q '^rustc 1\.9[6-9]' ||
	die "$RUSTC_KERNEL is not rustc-web >= 1.96" "apt-get install rustc-web rust-web-src from bookworm-security"

mkdir -p "$APF_TOOLS"

# cargo_tool CRATE@VERSION BINARY: install a tool from crates.io into the
# cache (once) and print its version.
cargo_tool() {
	local crate=$1 bin=$APF_TOOLS/cargo/bin/$2
	if [ ! -x "$bin" ]; then
		cargo install --locked --root "$APF_TOOLS/cargo" "$crate" >/dev/null 2>"$APF_TOOLS/$2.log" ||
			die "cargo install $crate failed (log: $APF_TOOLS/$2.log)" "check crates.io is reachable and cargo works"
	fi
	info "$("$bin" --version)"
}

step "bindgen-cli (crates.io)"
cargo_tool bindgen-cli@0.73.2 bindgen

step "cargo-fuzz (crates.io, for the fuzz targets of rust/logic_tests/fuzz)"
cargo_tool cargo-fuzz@0.13.2 cargo-fuzz

step "libclang (PyPI wheel)"
if [ -f "$LIBCLANG_PATH/libclang.so" ]; then
	info "present"
else
	python3 -m pip install -q --target "$APF_TOOLS/libclang" libclang==18.1.1 ||
		die "pip install libclang failed" "check PyPI is reachable"
fi

step "matplotlib (PyPI wheel, for tools/bench/plot.py)"
if [ -d "$APF_TOOLS/pylib/matplotlib" ]; then
	info "present"
else
	python3 -m pip install -q --disable-pip-version-check --target "$APF_TOOLS/pylib" \
		matplotlib==3.9.2 >"$APF_TOOLS/pip-matplotlib.log" 2>&1 ||
		die "pip install matplotlib failed (log: $APF_TOOLS/pip-matplotlib.log)" "check PyPI is reachable"
	info "installed into $APF_TOOLS/pylib"
fi

step "static arm64 busybox"
BUSYBOX=$APF_TOOLS/busybox
if [ -x "$BUSYBOX" ]; then
	info "present"
else
	lists=$APF_TOOLS/apt-arm64/lists
	mkdir -p "$lists/partial" "$APF_TOOLS/apt-arm64/dl"
	opts=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Dir::State::Lists="$lists")
	apt-get "${opts[@]}" update -q >/dev/null ||
		die "apt-get update for arm64 lists failed" "check the Debian archive is reachable"
	(cd "$APF_TOOLS/apt-arm64/dl" && apt-get "${opts[@]}" download busybox-static:arm64 >/dev/null) ||
		die "apt-get download busybox-static:arm64 failed"
	tmp=$(mktemp -d)
	dpkg-deb -x "$APF_TOOLS"/apt-arm64/dl/busybox-static_*_arm64.deb "$tmp"
	cp "$tmp/bin/busybox" "$BUSYBOX"
	rm -rf "$tmp"
	info "extracted"
fi

step "aarch64 Rust std (libstd-rust-web-dev:arm64, for tools/vmm)"
# The VMM is built with rustc-web for aarch64, statically, against Debian's
# arm64 std of exactly the same version, through a sysroot of three links.
RUST_ARM64=$APF_TOOLS/rust-arm64
rust_ver=$(dpkg-query -W -f='${Version}' rustc-web)
if [ "$(cat "$RUST_ARM64/version" 2>/dev/null)" = "$rust_ver" ] &&
	[ -d "$RUST_ARM64/sysroot/lib/rustlib/aarch64-unknown-linux-gnu/lib" ]; then
	info "present ($rust_ver)"
else
	lists=$APF_TOOLS/apt-arm64/lists
	mkdir -p "$lists/partial" "$RUST_ARM64/dl"
	opts=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Dir::State::Lists="$lists")
	rm -f "$RUST_ARM64"/dl/*.deb
	if ! (cd "$RUST_ARM64/dl" && apt-get "${opts[@]}" download "libstd-rust-web-dev:arm64=$rust_ver" >/dev/null 2>&1); then
		apt-get "${opts[@]}" update -q >/dev/null ||
			die "apt-get update for arm64 lists failed" "check the Debian archive is reachable"
		(cd "$RUST_ARM64/dl" && apt-get "${opts[@]}" download "libstd-rust-web-dev:arm64=$rust_ver" >/dev/null) ||
			die "apt-get download libstd-rust-web-dev:arm64=$rust_ver failed" "it must match rustc-web $rust_ver exactly"
	fi
	rm -rf "$RUST_ARM64/root" "$RUST_ARM64/sysroot"
	dpkg-deb -x "$RUST_ARM64"/dl/libstd-rust-web-dev_*_arm64.deb "$RUST_ARM64/root"
	mkdir -p "$RUST_ARM64/sysroot/lib/rustlib"
	ln -s "$RUST_ARM64/root/usr/lib/rustlib/aarch64-unknown-linux-gnu" "$RUST_ARM64/sysroot/lib/rustlib/"
	ln -s /usr/lib/rustlib/x86_64-unknown-linux-gnu "$RUST_ARM64/sysroot/lib/rustlib/"
	ln -s /usr/lib/rustlib/src "$RUST_ARM64/sysroot/lib/rustlib/src"
	[ -d "$RUST_ARM64/sysroot/lib/rustlib/aarch64-unknown-linux-gnu/lib" ] ||
		die "libstd-rust-web-dev:arm64 has no usr/lib/rustlib/aarch64-unknown-linux-gnu/lib"
	rm -rf "$RUST_ARM64/dl"
	echo "$rust_ver" >"$RUST_ARM64/version"
	info "extracted ($rust_ver), sysroot $RUST_ARM64/sysroot"
fi

step "kernel source $KSRC_PKG $KSRC_VERSION"
KSRC_TARBALL=$APF_TOOLS/linux-source-7.3.tar.xz
if [ -f "$KSRC_TARBALL" ]; then
	info "present"
else
	src=$APF_TOOLS/apt-backports
	mkdir -p "$src/dl"
	private_suite "$src" trixie-backports
	(cd "$src/dl" && apt-get "${opts[@]}" download "$KSRC_PKG=$KSRC_VERSION" >/dev/null) ||
		die "cannot download $KSRC_PKG=$KSRC_VERSION" "the suite may have moved on: pin the new version and its sha256 in tools/lib.sh and tools/linux-source.sha256"
	deb=$(ls "$src"/dl/${KSRC_PKG}_*.deb)
	if [ -s "$KSRC_SHA256_FILE" ]; then
		(cd "$src/dl" && sed "s|  .*|  $(basename "$deb")|" "$KSRC_SHA256_FILE" | sha256sum -c --quiet) ||
			die "sha256 of $deb does not match $KSRC_SHA256_FILE"
	else
		die "no pinned sha256 in $KSRC_SHA256_FILE" "sha256sum $deb > $KSRC_SHA256_FILE after checking it"
	fi
	tmp=$(mktemp -d)
	dpkg-deb -x "$deb" "$tmp"
	mv "$tmp"/usr/src/linux-source-7.3.tar.xz "$KSRC_TARBALL"
	rm -rf "$tmp" "$src/dl"
	info "downloaded and verified"
fi
step "QEMU 10 for the benchmark ($QEMU10_PKG $QEMU10_VERSION, bookworm-backports)"
q10=$APF_TOOLS/qemu10
if [ "$(cat "$q10/version" 2>/dev/null)" = "$QEMU10_VERSION" ] && [ -x "$APF_QEMU10" ]; then
	info "present"
else
	mkdir -p "$q10/dl"
	# Extracted, not installed: the tests keep the system's QEMU 7.2.
	private_suite "$q10" bookworm-backports
	rm -f "$q10"/dl/*.deb
	(cd "$q10/dl" && apt-get "${opts[@]}" download "$QEMU10_PKG=$QEMU10_VERSION" >/dev/null 2>&1) ||
		die "cannot download $QEMU10_PKG=$QEMU10_VERSION" "the suite may have moved on: pin the new version and its sha256 in tools/lib.sh and tools/qemu10.sha256"
	deb=$(ls "$q10"/dl/${QEMU10_PKG}_*.deb)
	(cd "$q10/dl" && sed "s|  .*|  $(basename "$deb")|" "$QEMU10_SHA256_FILE" | sha256sum -c --quiet) ||
		die "sha256 of $deb does not match $QEMU10_SHA256_FILE"
	rm -rf "$q10/root"
	dpkg-deb -x "$deb" "$q10/root"
	# Its libraries are bookworm's, those of the system's QEMU 7.2.
	! ldd "$APF_QEMU10" | grep -q 'not found' ||
		die "$APF_QEMU10 misses libraries: $(ldd "$APF_QEMU10" | grep 'not found' | tr -s ' \n\t' ' ')"
	"$APF_QEMU10" --version >/dev/null || die "$APF_QEMU10 does not run"
	rm -rf "$q10/dl" "$q10/lists"
	echo "$QEMU10_VERSION" >"$q10/version"
	info "extracted: $("$APF_QEMU10" --version | head -1)"
fi
step "setup done"
