#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the emulated arm64 host (QEMU, nested KVM at EL2) with an initramfs of
# static busybox, kvm_apf.ko and the test binaries, run a plan, and stream
# the console to stdout and to a log file.
#
#   tools/run-host.sh PLAN LOG [TIMEOUT_SECONDS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

plan=$1
log=$2
tmo=${3:-2400}

# One emulated host at a time on this machine (2 cores): wait for any other.
exec 9>"$APF_CACHE/run-host.lock"
flock 9

kbuild=$(kernel_build_dir)
image=$kbuild/arch/arm64/boot/Image
[ -f "$image" ] || die "no kernel Image at $image" "run tools/build-kernel.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
initrd=$work/initramfs.cpio.gz
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,tests,etc}
cp "$APF_TOOLS/busybox" "$root/bin/busybox"
cp "$APF_ROOT/tools/vm/init" "$root/init"
chmod +x "$root/init"
cp "$plan" "$root/plan"
[ -f "$APF_MODULE_DIR/kvm_apf.ko" ] && cp "$APF_MODULE_DIR/kvm_apf.ko" "$root/"
if [ -d "$APF_CACHE/selftests/bin" ]; then
	cp -r "$APF_CACHE/selftests/bin/." "$root/tests/"
fi
# The VMM (tools/build-vmm.sh) beside the tests; an L2 guest's payload
# ($APF_L2_DIR) in /l2, with this same Image as its kernel, only for a plan
# that boots one (it mentions /l2/): the Image makes the initramfs larger.
if [ -d "$APF_CACHE/vmm/bin" ]; then
	cp -r "$APF_CACHE/vmm/bin/." "$root/tests/"
fi
if grep -q '/l2/' "$plan"; then
	mkdir -p "$root/l2"
	[ -d "$APF_L2_DIR" ] && cp -r "$APF_L2_DIR/." "$root/l2/"
	cp "$image" "$root/l2/Image"
fi
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

# APF_KERNEL_ARGS: extra kernel command line for the emulated host (e.g.
# "lockdep.prove_locking=0 kmemleak=off" to see what the debug options cost).
# APF_CLOCK=icount: the emulated host's clock counts instructions (1 ns
# each, idle time skipped), so timings measure the code path whatever else
# the machine runs; wall (default): QEMU follows the real clock. The choice
# reaches the host's userspace as apf_clock= on the kernel command line.
# On the instruction clock the guest's randomness is made deterministic
# too (-seed: the RNDR instruction and the DT's kaslr-seed and rng-seed
# come from a seeded generator, APF_SEED, default 1), so that two runs of
# one commit start from the same state.
# APF_CLOCK=icount-1cpu: the instruction clock on a one-CPU host. With two
# CPUs QEMU runs them in turns on one thread, and a wake-up from the CPU
# that runs the guest waits for the other CPU's turn (Documentation/
# design.rst, "Performance"); with one there are no turns to wait for.
clock=${APF_CLOCK:-wall}
cpus=2
case "$clock" in
icount | icount-1cpu)
	clock_opts=(-icount shift=0,sleep=off -seed "${APF_SEED:-1}")
	[ "$clock" = icount ] || cpus=1
	;;
wall) clock_opts=() ;;
*) die "APF_CLOCK=$clock" "use APF_CLOCK=icount, icount-1cpu or wall" ;;
esac
# APF_QEMU: the emulator; make run's benchmark uses QEMU 10 from
# bookworm-backports (tools/setup.sh, $APF_QEMU10), whose round robin
# shares each turn between the CPUs on the instruction clock (Documentation/
# design.rst, "The instrument"); the default is the system's QEMU 7.2.
qemu=${APF_QEMU:-qemu-system-aarch64}
command -v "$qemu" >/dev/null || die "no emulator $qemu" "run tools/setup.sh"
qver=$("$qemu" --version | head -1 | sed -E 's/^QEMU emulator version ([^ ]+).*/\1/')
# The first line of the log says what ran (tools/bench/results.py keeps it).
echo "APF-HOST kernel=$APF_KERNEL qemu=$qver clock=$clock cpus=$cpus" | tee "$log"
info "(console log: $log, limit ${tmo}s)"
set +e
# -audiodev none: no audio backend is probed (QEMU 10 outside the system's
# module folder would otherwise load the system 7.2's audio modules).
timeout --foreground -k 10 "$tmo" "$qemu" \
	-machine virt,virtualization=on,gic-version=3 -cpu max -smp "$cpus" -m 2048 \
	-nographic -nic none -no-reboot -audiodev none,id=snd0 "${clock_opts[@]}" \
	-kernel "$image" -initrd "$initrd" \
	-append "console=ttyAMA0 rdinit=/init panic=-1 oops=panic kvm-arm.mode=vhe apf_clock=$clock ${APF_KERNEL_ARGS:-}" \
	</dev/null 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ]; then
	echo "APF-HARNESS: TIMEOUT after ${tmo}s" | tee -a "$log"
fi
exit 0
