# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of kvm_apf.ko (host) and kvm_apf_guest.ko (guest
# driver). By default it builds against the cached, patched kernel that
# tools/build-kernel.sh makes (APF_KERNEL=debug, the default, or perf: see
# tools/lib.sh); KDIR= names your own prepared 7.3 build tree with the
# c_shim/patches series applied.
#
#   make            build kvm_apf.ko and kvm_apf_guest.ko (into $(MO))
#   make run        build everything, boot the emulated host, show the demo
#   make test       every test level, one verdict
#   make fuzz       longer fuzzing of the pure logic (FUZZ_SECONDS per target)
#   make clean

APF_CACHE ?= /var/cache/kvm-apf
APF_KERNEL ?= debug
ifeq ($(APF_KERNEL),perf)
KDIR ?= $(APF_CACHE)/kernel/build-perf
MO ?= $(APF_CACHE)/module-perf
else
KDIR ?= $(APF_CACHE)/kernel/build
MO ?= $(APF_CACHE)/module
endif
LIBCLANG_PATH ?= $(APF_CACHE)/tools/libclang/clang/native
export LIBCLANG_PATH

KMAKE_ARGS := ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
	RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc \
	BINDGEN=$(APF_CACHE)/tools/cargo/bin/bindgen \
	CONFIG_KVM_ARM_ASYNC_PF_PROVIDER=m CONFIG_KVM_APF_GUEST=m

FUZZ_SECONDS ?= 300

.PHONY: modules run test fuzz clean
modules:
	@mkdir -p $(MO)
	$(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(MO) $(KMAKE_ARGS) modules

run:
	bash tools/run-demo.sh

test:
	bash tools/test.sh

fuzz:
	bash tools/fuzz.sh $(FUZZ_SECONDS)

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(MO) $(KMAKE_ARGS) clean
