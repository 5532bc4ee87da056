#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the patched arm64 7.3 host kernel (Image, modules, Module.symvers,
# UAPI headers) in the cache outside the repository. The build is keyed by
# everything it depends on; when nothing changed it returns in seconds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ -n "${KDIR:-}" ]; then
	step "using your kernel tree KDIR=$KDIR"
	[ -f "$KDIR/Module.symvers" ] ||
		die "$KDIR has no Module.symvers" "run 'make Image modules' in it first"
	exit 0
fi

KSRC_TARBALL=$APF_TOOLS/linux-source-7.3.tar.xz
[ -f "$KSRC_TARBALL" ] || die "no kernel source" "run tools/setup.sh"

patches=()
if [ -d "$PATCH_DIR" ]; then
	while IFS= read -r p; do patches+=("$p"); done < <(ls "$PATCH_DIR"/*.patch 2>/dev/null | sort)
fi

key=$( {
	cat "$KSRC_SHA256_FILE"
	[ ${#patches[@]} -eq 0 ] || cat "${patches[@]}"
	cat "$CONFIG_FRAGMENT" "$0" "$APF_ROOT/tools/lib.sh"
	${CROSS_COMPILE}gcc --version | head -1
	$RUSTC_KERNEL --version
	$BINDGEN --version
} | sha256sum | cut -c1-16)

if [ -f "$KBUILD_TREE/.apf-key" ] && [ "$(cat "$KBUILD_TREE/.apf-key")" = "$key" ] &&
   [ -f "$KBUILD_TREE/arch/arm64/boot/Image" ]; then
	step "kernel up to date (key $key)"
	exit 0
fi

step "kernel source tree"
base_id=$(cut -c1-16 "$KSRC_SHA256_FILE")
if [ "$(cat "$KSRC_TREE/.git/apf-base" 2>/dev/null)" != "$base_id" ]; then
	info "unpacking $(basename "$KSRC_TARBALL") and recording it as the base commit"
	rm -rf "$KSRC_TREE" "$KBUILD_TREE"
	mkdir -p "$KCACHE"
	tar -C "$KCACHE" -xf "$KSRC_TARBALL"
	mv "$KCACHE/linux-source-7.3" "$KSRC_TREE"
	(cd "$KSRC_TREE" && git init -q && git add -A -f &&
	 git -c user.name=apf -c user.email=apf@localhost commit -q -m "Linux 7.3.4 (Debian $KSRC_VERSION)" &&
	 git tag v7.3.4-base) || die "could not record the kernel source in git"
	echo "$base_id" >"$KSRC_TREE/.git/apf-base"
fi

step "applying ${#patches[@]} patch(es) from c_shim/patches"
cd "$KSRC_TREE"
git am --abort >/dev/null 2>&1 || true
git checkout -q -f v7.3.4-base 2>/dev/null
git clean -qfdx
if [ ${#patches[@]} -gt 0 ]; then
	git -c user.name=apf -c user.email=apf@localhost am -q --keep-cr "${patches[@]}" ||
		{ git am --abort; die "a patch in c_shim/patches does not apply to 7.3.4" "rebase the series on v7.3.4-base in $KSRC_TREE"; }
	git log --oneline v7.3.4-base..HEAD | sed 's/^/    /'
fi

step "configuring (allnoconfig + tools/kernel/apf.config)"
mkdir -p "$KBUILD_TREE"
kmake -s O="$KBUILD_TREE" allnoconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O "$KBUILD_TREE" "$KBUILD_TREE/.config" "$CONFIG_FRAGMENT" >/dev/null
kmake -s O="$KBUILD_TREE" olddefconfig >/dev/null
dropped=
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qxF "$line" "$KBUILD_TREE/.config" || dropped="$dropped\n  $line" ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		grep -q "^$opt=" "$KBUILD_TREE/.config" && dropped="$dropped\n  $line" ;;
	esac
done <"$CONFIG_FRAGMENT"
[ -z "$dropped" ] || die "$(printf "options of tools/kernel/apf.config missing from the built .config:$dropped")" \
	"a dependency is missing: add it to the fragment (see 'make menuconfig' help for the option)"

step "building Image and modules (2 cores: about 10 minutes cold)"
t0=$SECONDS
kmake -s O="$KBUILD_TREE" -j"$(nproc)" Image modules >"$KCACHE/build.log" 2>&1 ||
	{ tail -40 "$KCACHE/build.log"; die "kernel build failed (log: $KCACHE/build.log)"; }
kmake -s O="$KBUILD_TREE" headers >>"$KCACHE/build.log" 2>&1 ||
	{ tail -20 "$KCACHE/build.log"; die "make headers failed (log: $KCACHE/build.log)"; }
info "built in $((SECONDS - t0)) s"
echo "$key" >"$KBUILD_TREE/.apf-key"
