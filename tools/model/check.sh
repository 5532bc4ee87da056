#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Model-checks the page-ready delivery protocols with SPIN (exhaustive
# search, safety: assertions and invalid end states). Each line below is a
# model, its defines, and whether the checker must find an error: the
# protocols of ABI 1.1 must be clean; ABI 1.0's SPI delivery with two
# vCPUs and deliberately broken variants of 1.1 must fail, which shows the
# model can see the lost wake-up it is there to exclude.
# Prints "model NAME: ok" or "model NAME: FAILED" per line (tools/test.sh
# counts them); exit status 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name model defines expect(clean|error)
checks="
spi_1vcpu page_ready_spi.pml -DNV=1 clean
spi_2vcpu page_ready_spi.pml -DNV=2 clean
v1_0_spi_1vcpu page_ready_spi_v1_0.pml -DNV=1 clean
v1_0_spi_2vcpu_loses_wakeups page_ready_spi_v1_0.pml -DNV=2 error
bug_ignore_more page_ready_spi.pml -DNV=2,-DBUG_IGNORE_MORE error
bug_never_disarm page_ready_spi.pml -DNV=2,-DBUG_NEVER_DISARM error
bug_no_void page_ready_spi.pml -DNV=1,-DBUG_NO_VOID error
"
fail=0
while read -r name model defs expect; do
	[ -n "$name" ] || continue
	d=$work/$name
	mkdir -p "$d"
	cp "$here"/*.pml "$d/"
	# shellcheck disable=SC2086
	if ! (cd "$d" && spin ${defs//,/ } -a "$model" >spin.log 2>&1 &&
		gcc -O2 -w -DSAFETY -DMEMLIM=8192 -o pan pan.c >gcc.log 2>&1); then
		echo "model $name: FAILED (cannot build the verifier: $(tail -n 1 "$d/spin.log" "$d/gcc.log" | tr '\n' ' '))"
		fail=1
		continue
	fi
	t0=$SECONDS
	(cd "$d" && ./pan -m2000000 >pan.log 2>&1)
	errors=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' "$d/pan.log")
	states=$(sed -nE 's/^ *([0-9.e+]+) states, stored.*/\1/p' "$d/pan.log")
	what="${states:-?} states, $((SECONDS - t0)) s"
	if grep -q 'Search not completed' "$d/pan.log" && [ "${errors:-1}" = 0 ]; then
		echo "model $name: FAILED (search not completed: $what)"
		fail=1
	elif [ "$expect" = clean ] && [ "$errors" = 0 ]; then
		echo "model $name: ok (no error, $what)"
	elif [ "$expect" = error ] && [ "${errors:-0}" != 0 ]; then
		echo "model $name: ok (error found as expected: $(grep -m1 -E 'violated|invalid end state' "$d/pan.log"))"
	else
		echo "model $name: FAILED (expected $expect, got ${errors:-?} errors, $what)"
		grep -m3 -E 'violated|invalid end state' "$d/pan.log"
		[ -f "$d/$model.trail" ] && (cd "$d" && spin ${defs//,/ } -t -g "$model" 2>&1 | tail -n 30)
		fail=1
	fi
done <<<"$checks"
exit "$fail"
