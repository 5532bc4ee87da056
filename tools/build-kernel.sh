#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the patched arm64 7.3 host kernel (Image, modules, Module.symvers,
# UAPI headers) in the cache outside the repository: the debug kernel, or
# with APF_KERNEL=perf the benchmark's (tools/lib.sh). The build is keyed by
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

patches_key=$( {
	cat "$KSRC_SHA256_FILE"
	[ ${#patches[@]} -eq 0 ] || cat "${patches[@]}"
} | sha256sum | cut -c1-16)
key=$( {
	echo "$patches_key $APF_KERNEL"
	cat "${CONFIG_FRAGMENTS[@]}" "$0" "$APF_ROOT/tools/lib.sh"
	${CROSS_COMPILE}gcc --version | head -1
	$RUSTC_KERNEL --version
	$BINDGEN --version
} | sha256sum | cut -c1-16)

if [ -f "$KBUILD_TREE/.apf-key" ] && [ "$(cat "$KBUILD_TREE/.apf-key")" = "$key" ] &&
   [ -f "$KBUILD_TREE/arch/arm64/boot/Image" ]; then
	step "$APF_KERNEL kernel up to date (key $key)"
	exit 0
fi

step "kernel source tree"
base_id=$(cut -c1-16 "$KSRC_SHA256_FILE")
if [ "$(cat "$KSRC_TREE/.git/apf-base" 2>/dev/null)" != "$base_id" ]; then
	info "unpacking $(basename "$KSRC_TARBALL") and recording it as the base commit"
	rm -rf "$KSRC_TREE" "$KCACHE"/build*
	mkdir -p "$KCACHE"
	tar -C "$KCACHE" -xf "$KSRC_TARBALL"
	mv "$KCACHE/linux-source-7.3" "$KSRC_TREE"
	(cd "$KSRC_TREE" && git init -q && git add -A -f &&
	 git -c user.name=apf -c user.email=apf@localhost commit -q -m "Linux 7.3.4 (Debian $KSRC_VERSION)" &&
	 git tag v7.3.4-base) || die "could not record the kernel source in git"
	echo "$base_id" >"$KSRC_TREE/.git/apf-base"
fi

# The source tree is shared by both kernels: apply the series only when it
# changed, so that building one kernel does not touch the other's sources.
cd "$KSRC_TREE"
if [ "$(cat "$KSRC_TREE/.git/apf-patches" 2>/dev/null)" = "$patches_key" ] &&
   git diff --quiet HEAD; then
	step "the ${#patches[@]} patch(es) of c_shim/patches are applied"
else
	step "applying ${#patches[@]} patch(es) from c_shim/patches"
	rm -f "$KSRC_TREE/.git/apf-patches"
	git am --abort >/dev/null 2>&1 || true
	git checkout -q -f v7.3.4-base 2>/dev/null
	git clean -qfdx
	if [ ${#patches[@]} -gt 0 ]; then
		git -c user.name=apf -c user.email=apf@localhost am -q --keep-cr "${patches[@]}" ||
			{ git am --abort; die "a patch in c_shim/patches does not apply to 7.3.4" "rebase the series on v7.3.4-base in $KSRC_TREE"; }
		git log --oneline v7.3.4-base..HEAD | sed 's/^/    /'
	fi
	echo "$patches_key" >"$KSRC_TREE/.git/apf-patches"
fi

step "configuring the $APF_KERNEL kernel (allnoconfig + $(for f in "${CONFIG_FRAGMENTS[@]}"; do printf 'tools/kernel/%s ' "$(basename "$f")"; done))"
mkdir -p "$KBUILD_TREE"
kmake -s O="$KBUILD_TREE" allnoconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O "$KBUILD_TREE" "$KBUILD_TREE/.config" "${CONFIG_FRAGMENTS[@]}" >/dev/null
kmake -s O="$KBUILD_TREE" olddefconfig >/dev/null
dropped=
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) grep -qxF "$line" "$KBUILD_TREE/.config" || dropped="$dropped\n  $line" ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		grep -q "^$opt=" "$KBUILD_TREE/.config" && dropped="$dropped\n  $line" ;;
	esac
done < <(cat "${CONFIG_FRAGMENTS[@]}")
[ -z "$dropped" ] || die "$(printf "options of tools/kernel/*.config missing from the built .config:$dropped")" \
	"a dependency is missing: add it to the fragment (see 'make menuconfig' help for the option)"

step "building Image and modules (2 cores: about 10 minutes cold)"
t0=$SECONDS
blog=$KCACHE/build-$APF_KERNEL.log
kmake -s O="$KBUILD_TREE" -j"$(nproc)" Image modules >"$blog" 2>&1 ||
	{ tail -40 "$blog"; die "kernel build failed (log: $blog)"; }
kmake -s O="$KBUILD_TREE" headers >>"$blog" 2>&1 ||
	{ tail -20 "$blog"; die "make headers failed (log: $blog)"; }
info "built in $((SECONDS - t0)) s"
echo "$key" >"$KBUILD_TREE/.apf-key"
