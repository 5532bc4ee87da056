#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prove that the kernel patch series bisects: every prefix of
# c_shim/patches applies with git am to v7.3.4-base, each patch is
# checkpatch --strict clean, and the tree builds (Image modules) after
# each patch.
#
# usage: tools/check-series.sh [--patches DIR] [KERNEL_GIT_TREE]
#
# KERNEL_GIT_TREE (default: the cached tree, $KSRC_TREE) must have the tag
# v7.3.4-base. It is only read: the work happens in a scratch clone and a
# scratch build directory under $APF_CACHE/check-series, kept between runs
# so that a rerun only rebuilds what the patches touch.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BASE_TAG=v7.3.4-base
patch_dir=$PATCH_DIR
src_tree=$KSRC_TREE

while [ $# -gt 0 ]; do
	case "$1" in
	--patches) patch_dir=${2:?--patches needs a directory}; shift 2 ;;
	-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" "see $0 --help" ;;
	*) src_tree=$1; shift ;;
	esac
done

patches=()
while IFS= read -r p; do patches+=("$p"); done < <(ls "$patch_dir"/*.patch 2>/dev/null | sort)
[ ${#patches[@]} -gt 0 ] || die "no patches in $patch_dir"
git -C "$src_tree" rev-parse -q --verify "refs/tags/$BASE_TAG" >/dev/null ||
	die "$src_tree has no tag $BASE_TAG" "run tools/build-kernel.sh first, or pass a kernel git tree"

scratch=$APF_CACHE/check-series
scratch_src=$scratch/src
scratch_build=$scratch/build
logs=$scratch/logs
mkdir -p "$scratch" "$scratch_build"
rm -rf "$logs"
mkdir -p "$logs"

# One run at a time: runs share the scratch tree.
exec 9>"$scratch/lock"
flock -n 9 || die "another check-series run holds $scratch/lock"

step "scratch tree $scratch_src (from $src_tree)"
if [ ! -d "$scratch_src/.git" ]; then
	rm -rf "$scratch_src"
	git -c init.defaultBranch=scratch clone -q --no-checkout "$src_tree" "$scratch_src"
fi
git -C "$scratch_src" fetch -q -f "$src_tree" "refs/tags/$BASE_TAG:refs/tags/$BASE_TAG"
git -C "$scratch_src" am --abort >/dev/null 2>&1 || true
# Only the files that differ from the last run change: the build stays
# incremental.
git -C "$scratch_src" checkout -q -f --detach "$BASE_TAG"
git -C "$scratch_src" clean -qfdx

step "configuring (allnoconfig + tools/kernel/apf.config + debug.config)"
cd "$scratch_src"
kmake -s O="$scratch_build" allnoconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O "$scratch_build" "$scratch_build/.config" "${CONFIG_FRAGMENTS[@]}" >/dev/null
kmake -s O="$scratch_build" olddefconfig >/dev/null

step "checking ${#patches[@]} patch(es) from $patch_dir (logs: $logs)"
passed=0
failed=0
applied=1
for p in "${patches[@]}"; do
	name=$(basename "$p" .patch)
	nr=${name%%-*}
	t0=$SECONDS

	if [ $applied -eq 0 ]; then
		printf '    FAIL %s: not tried, an earlier patch did not apply\n' "$name"
		failed=$((failed + 1))
		continue
	fi

	if ! git -c user.name=apf -c user.email=apf@localhost am -q --keep-cr "$p" \
		>"$logs/$nr-am.log" 2>&1; then
		git am --abort >/dev/null 2>&1 || true
		printf '    FAIL %s: does not apply (%s)\n' "$name" "$logs/$nr-am.log"
		failed=$((failed + 1))
		applied=0
		continue
	fi

	problems=()
	# spdxcheck.py may be missing its python module: not a patch problem.
	if ! scripts/checkpatch.pl --strict "$p" >"$logs/$nr-checkpatch.log" 2>/dev/null ||
	   ! grep -q '^total: 0 errors, 0 warnings, 0 checks' "$logs/$nr-checkpatch.log"; then
		problems+=("checkpatch: $(grep -m1 '^total:' "$logs/$nr-checkpatch.log" || echo 'did not run')")
	fi

	if ! kmake O="$scratch_build" -j"$(nproc)" Image modules >"$logs/$nr-build.log" 2>&1; then
		problems+=("build failed")
	elif grep -q -E 'warning:|error:' "$logs/$nr-build.log"; then
		problems+=("build warnings")
	fi

	if [ ${#problems[@]} -eq 0 ]; then
		printf '    PASS %s: applies, checkpatch clean, builds (%d s)\n' "$name" $((SECONDS - t0))
		passed=$((passed + 1))
	else
		printf '    FAIL %s: %s (logs: %s/%s-*.log)\n' "$name" "$(IFS=';'; echo "${problems[*]}")" "$logs" "$nr"
		failed=$((failed + 1))
	fi
done

printf '\n%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
