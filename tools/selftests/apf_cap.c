// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_cap: the VMM side of KVM_CAP_ARM_ASYNC_PF with kvm_apf.ko loaded.
 *
 * - KVM_CHECK_EXTENSION is 1 while the provider is registered.
 * - KVM_ENABLE_CAP refuses every invalid argument set with EINVAL (one case
 *   each), accepts a valid one, refuses a second enable with EBUSY, and
 *   disables with args[0] = 0.
 * - KVM_REG_ARM_VENDOR_HYP_BMAP_2 bit 2: not settable before enable, set by
 *   enable, the VMM may clear and set it while enabled, cleared on disable.
 * - vCPU attribute KVM_ARM_VCPU_ASYNC_PF_CTRL/STATE: absent before enable,
 *   then has/get/set with each invalid input refused.
 * - The module is pinned while a VM uses it (refcnt one higher,
 *   delete_module() refused), unpinned by disable and by VM destruction,
 *   can then be unloaded, and is loaded again for the tests that follow.
 */
#include "apf_util.h"

struct bad_args {
	const char *what;
	u32 cap_flags;
	u64 args[4];
};

static const struct bad_args bad_args[] = {
	{ "unknown flag bit 2", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE | (1ULL << 2), 0, APF_NP_INTID, APF_READY_INTID } },
	{ "unknown flag bit 63", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE | (1ULL << 63), 0, APF_NP_INTID, APF_READY_INTID } },
	{ "ALLOW_EL1 without ENABLE", 0,
	  { KVM_ARM_ASYNC_PF_ALLOW_EL1, 0, APF_NP_INTID, APF_READY_INTID } },
	{ "slots 3 (not a power of two)", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 3, APF_NP_INTID, APF_READY_INTID } },
	{ "slots 2048 (above 1024)", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 2048, APF_NP_INTID, APF_READY_INTID } },
	{ "not-present INTID 15 (an SGI)", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 0, 15, APF_READY_INTID } },
	{ "not-present INTID 32 (an SPI)", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 0, 32, APF_READY_INTID } },
	{ "page-ready INTID 1020 (special)", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, 1020 } },
	{ "page-ready INTID 1 (an SGI)", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, 1 } },
	{ "page-ready INTID == not-present INTID", 0,
	  { KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, APF_NP_INTID } },
	{ "kvm_enable_cap.flags != 0", 1,
	  { KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, APF_READY_INTID } },
};

static void guest_code(void)
{
	GUEST_DONE();
}

static u64 bmap2_bit(struct kvm_vcpu *vcpu)
{
	return vcpu_get_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2) &
	       BIT(APF_VENDOR_HYP_BMAP_2_BIT);
}

/* What KVM_ARM_VCPU_ASYNC_PF_CONFIG reads after the valid enable below. */
static const __u64 vm_config[4] = {
	KVM_ARM_ASYNC_PF_ENABLE, 64, APF_NP_INTID, APF_READY_INTID
};

/* The configuration read back and checked (4 cases). */
static void test_config_attr(struct kvm_vcpu *vcpu)
{
	struct kvm_arm_async_pf_config c;
	int ret;

	memset(&c, 0x5a, sizeof(c));
	ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &c);
	ksft_test_result(!ret && !memcmp(c.args, vm_config, sizeof(vm_config)) &&
			 !c.reserved[0] && !c.reserved[3],
			 "config: get returns the enable arguments with slots in effect (ret %d: %llu/%llu/%llu/%llu)\n",
			 ret, c.args[0], c.args[1], c.args[2], c.args[3]);

	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &c);
	apf_report_eq(ret, 0, "config: set of the same configuration succeeds (errno %d)",
		      ret ? errno : 0);

	c.args[3] = 40;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &c);
	apf_report_errno(ret, EPROTO, EPROTO,
			 "config: set with another page-ready INTID fails with EPROTO");

	c.args[3] = vm_config[3];
	c.reserved[2] = 1;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &c);
	apf_report_errno(ret, EINVAL, EINVAL, "config: set with reserved[2] != 0 fails with EINVAL");
}

static void test_state_attr(struct kvm_vcpu *vcpu, u64 record_gpa)
{
	struct kvm_arm_async_pf_state st;
	int ret;

	ret = __vcpu_has_device_attr(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE);
	apf_report_eq(ret, 0, "attr: KVM_HAS_DEVICE_ATTR(ASYNC_PF_CTRL, STATE) is 0");

	ret = __vcpu_has_device_attr(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_CONFIG);
	apf_report_eq(ret, 0, "attr: KVM_HAS_DEVICE_ATTR(ASYNC_PF_CTRL, CONFIG) is 0");

	ret = __vcpu_has_device_attr(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL, 2);
	apf_report_errno(ret, ENXIO, ENXIO, "attr: KVM_HAS_DEVICE_ATTR(ASYNC_PF_CTRL, 2) fails with ENXIO");

	memset(&st, 0x5a, sizeof(st));
	ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	ksft_test_result(!ret && st.record_gpa == APF_STATE_NO_RECORD && !st.flags &&
			 !memcmp(st.config, vm_config, sizeof(vm_config)) &&
			 !st.reserved[0] && !st.reserved[1],
			 "attr: get on a fresh vCPU: no record, no flags, the VM's config, reserved 0 (ret %d gpa 0x%llx flags 0x%llx config %llu/%llu/%llu/%llu)\n",
			 ret, st.record_gpa, st.flags, st.config[0], st.config[1], st.config[2],
			 st.config[3]);

	/* A state saved on a VM configured otherwise (32 slots): EPROTO. */
	memset(&st, 0, sizeof(st));
	st.record_gpa = APF_STATE_NO_RECORD;
	memcpy(st.config, vm_config, sizeof(vm_config));
	st.config[1] = 32;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EPROTO, EPROTO,
			 "attr: set with another VM configuration (32 slots) fails with EPROTO");
	st.config[1] = vm_config[1];
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_eq(ret, 0, "attr: set with this VM's configuration succeeds (errno %d)",
		      ret ? errno : 0);

	test_config_attr(vcpu);

	memset(&st, 0, sizeof(st));
	st.record_gpa = APF_STATE_NO_RECORD;
	st.reserved[0] = 1;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with reserved[0] != 0 fails with EINVAL");

	st.reserved[0] = 0;
	st.reserved[1] = 1ULL << 63;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with reserved[1] != 0 fails with EINVAL");

	memset(&st, 0, sizeof(st));
	st.record_gpa = record_gpa;
	st.flags = 1ULL << 2;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with unknown flag bit 2 fails with EINVAL");

	st.flags = APF_STATE_FLAG_ENABLED | APF_STATE_FLAG_NOTIFY_EL1;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL,
			 "attr: set with NOTIFY_EL1 while the VMM did not allow EL1 fails with EINVAL");

	st.flags = APF_STATE_FLAG_NOTIFY_EL1;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with NOTIFY_EL1 without ENABLED fails with EINVAL");

	st.record_gpa = APF_STATE_NO_RECORD;
	st.flags = APF_STATE_FLAG_ENABLED;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with ENABLED but no record fails with EINVAL");

	st.record_gpa = record_gpa + 8;
	st.flags = 0;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with a misaligned record fails with EINVAL");

	st.record_gpa = 1ULL << 36;	/* no memslot there */
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, EINVAL, EINVAL, "attr: set with a record outside guest RAM fails with EINVAL");

	/* A registered but not enabled record: nothing to deliver. */
	st.record_gpa = record_gpa;
	st.flags = 0;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_eq(ret, 0, "attr: set with a record and no flags succeeds (errno %d)", ret ? errno : 0);

	memset(&st, 0x5a, sizeof(st));
	ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	ksft_test_result(!ret && st.record_gpa == record_gpa && !st.flags,
			 "attr: get returns what was set (ret %d gpa 0x%llx flags 0x%llx)\n",
			 ret, st.record_gpa, st.flags);

	/*
	 * The migration restore: enabled, with a record in RAM. The host then
	 * owes the guest one WAKE_ALL (written into the record and signalled
	 * when the vCPU runs); the ioctl itself runs outside KVM_RUN.
	 */
	memset(&st, 0, sizeof(st));
	st.record_gpa = record_gpa;
	st.flags = APF_STATE_FLAG_ENABLED;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_eq(ret, 0, "attr: set ENABLED with a record in RAM (restore) succeeds (errno %d)",
		      ret ? errno : 0);

	memset(&st, 0x5a, sizeof(st));
	ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	ksft_test_result(!ret && st.record_gpa == record_gpa && st.flags == APF_STATE_FLAG_ENABLED,
			 "attr: get after restore returns record and ENABLED (ret %d gpa 0x%llx flags 0x%llx)\n",
			 ret, st.record_gpa, st.flags);

	/* Back to nothing registered. */
	memset(&st, 0, sizeof(st));
	st.record_gpa = APF_STATE_NO_RECORD;
	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_eq(ret, 0, "attr: set with no record and no flags succeeds (errno %d)", ret ? errno : 0);
}

int main(void)
{
	struct kvm_arm_async_pf_state st;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int ret, ref0, i;
	u64 record_gpa;

	ksft_print_header();
	apf_force_el1_guests();

	if (!apf_module_loaded())
		ksft_exit_skip("kvm_apf is not loaded\n");
	apf_require_provider();

	ksft_set_plan(51 + ARRAY_SIZE(bad_args));

	apf_report_eq(kvm_check_cap(KVM_CAP_ARM_ASYNC_PF), 1,
		      "KVM_CHECK_EXTENSION(KVM_CAP_ARM_ASYNC_PF) on /dev/kvm is 1");

	ref0 = apf_module_refcnt_settled();
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	/* A page of guest RAM for the record. */
	record_gpa = addr_gva2gpa(vm, vm_alloc_page(vm));

	apf_report_eq(vm_check_cap(vm, KVM_CAP_ARM_ASYNC_PF), 1,
		      "KVM_CHECK_EXTENSION(KVM_CAP_ARM_ASYNC_PF) on the VM is 1");

	/* Each invalid argument set: EINVAL, and nothing changes. */
	for (i = 0; i < ARRAY_SIZE(bad_args); i++) {
		const struct bad_args *b = &bad_args[i];

		ret = __apf_enable_cap_flags(vm, b->cap_flags, b->args[0],
					     b->args[1], b->args[2], b->args[3]);
		apf_report_errno(ret, EINVAL, EINVAL, "enable_cap: %s fails with EINVAL", b->what);
	}
	apf_report_eq(apf_module_refcnt(), ref0,
		      "refused enables took no module reference");

	/* Before enable: no attribute, BMAP_2 bit 2 not settable. */
	ret = __vcpu_has_device_attr(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE);
	apf_report_errno(ret, ENXIO, ENXIO, "attr: KVM_HAS_DEVICE_ATTR fails with ENXIO before enable");
	ret = __vcpu_set_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2,
			     vcpu_get_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2) |
			     BIT(APF_VENDOR_HYP_BMAP_2_BIT));
	apf_report_errno(ret, EINVAL, EINVAL, "BMAP_2: setting bit 2 before enable fails with EINVAL");

	/* Valid enable. */
	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, APF_READY_INTID);
	apf_report_eq(ret, 0, "enable_cap: ENABLE, default slots, PPIs %d/%d succeeds (errno %d)",
		      APF_NP_INTID, APF_READY_INTID, ret ? errno : 0);
	apf_report_eq(apf_module_refcnt(), ref0 + 1,
		      "module refcnt is one higher while the VM has the feature");

	/* Also refused, not taken as a disable, once the VM has the feature. */
	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ALLOW_EL1, 0, APF_NP_INTID, APF_READY_INTID);
	apf_report_errno(ret, EINVAL, EINVAL,
			 "enable_cap: ALLOW_EL1 without ENABLE on an enabled VM fails with EINVAL");
	apf_report_eq(apf_module_refcnt(), ref0 + 1,
		      "the refused ALLOW_EL1-only call left the feature enabled");

	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, APF_READY_INTID);
	apf_report_errno(ret, EBUSY, EBUSY, "enable_cap: second enable fails with EBUSY");
	apf_report_eq(apf_module_refcnt(), ref0 + 1,
		      "module refcnt unchanged by the refused second enable");

	/* BMAP_2 bit 2 is set by enable; the VMM may hide and show it. */
	apf_report_eq(bmap2_bit(vcpu), BIT(APF_VENDOR_HYP_BMAP_2_BIT),
		      "BMAP_2: bit 2 reads as set after enable");
	ret = __vcpu_set_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2, 0);
	apf_report_eq(ret, 0, "BMAP_2: clearing bit 2 while enabled succeeds (errno %d)", ret ? errno : 0);
	apf_report_eq(bmap2_bit(vcpu), 0, "BMAP_2: bit 2 reads as clear after clearing it");
	ret = __vcpu_set_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2, BIT(APF_VENDOR_HYP_BMAP_2_BIT));
	apf_report_eq(ret, 0, "BMAP_2: setting bit 2 again while enabled succeeds (errno %d)",
		      ret ? errno : 0);

	/* The vCPU attributes (23 cases). */
	test_state_attr(vcpu, record_gpa);

	/* The module is pinned. */
	ret = apf_delete_module(O_NONBLOCK);
	apf_report_errno(ret, EBUSY, EWOULDBLOCK,
			 "delete_module(kvm_apf, O_NONBLOCK) fails while a VM uses it");
	apf_report_eq(apf_module_loaded(), 1, "kvm_apf still loaded");

	/* Disable: reference dropped, bit cleared, attribute gone. */
	ret = __apf_enable_cap(vm, 0, 0, 0, 0);
	apf_report_eq(ret, 0, "enable_cap: disable (args[0] = 0) succeeds (errno %d)", ret ? errno : 0);
	apf_report_eq(apf_module_refcnt(), ref0, "module refcnt drops back after disable");
	apf_report_eq(bmap2_bit(vcpu), 0, "BMAP_2: bit 2 reads as clear after disable");
	ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
	apf_report_errno(ret, ENXIO, ENXIO, "attr: KVM_GET_DEVICE_ATTR fails with ENXIO after disable");

	ret = __apf_enable_cap(vm, 0, 0, 0, 0);
	apf_report_eq(ret, 0, "enable_cap: disable again is a no-op (errno %d)", ret ? errno : 0);

	/* Enable again, with an SPI for page-ready, then destroy the VM. */
	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_ALLOW_EL1,
			       1024, 16, 40);
	apf_report_eq(ret, 0, "enable_cap: ENABLE|ALLOW_EL1, 1024 slots, PPI 16 + SPI 40 succeeds (errno %d)",
		      ret ? errno : 0);

	/* Let the vCPU run once with the feature enabled before teardown. */
	{
		struct ucall uc;

		apf_run_to_ucall(vcpu, &uc);
	}
	kvm_vm_free(vm);
	apf_report_eq(apf_module_refcnt(), ref0, "module refcnt drops back after kvm_vm_free");

	/* Unload, check, load again (later tests need the module). */
	ret = apf_delete_module(O_NONBLOCK);
	apf_report_eq(ret, 0, "delete_module(kvm_apf) succeeds once no VM uses it (errno %d)",
		      ret ? errno : 0);
	if (!ret) {
		apf_report_eq(kvm_check_cap(KVM_CAP_ARM_ASYNC_PF), 0,
			      "KVM_CHECK_EXTENSION is 0 after unload");
	} else {
		ksft_test_result_skip("KVM_CHECK_EXTENSION is 0 after unload (not unloaded)\n");
	}
	if (!apf_module_loaded()) {
		ret = apf_load_module();
		apf_report_eq(ret, 0, "finit_module(" APF_MODULE_PATH ") reloads the module (errno %d)",
			      ret ? errno : 0);
	} else {
		ksft_test_result_skip("reload (module was not unloaded)\n");
	}
	apf_report_eq(kvm_check_cap(KVM_CAP_ARM_ASYNC_PF), 1,
		      "KVM_CHECK_EXTENSION is 1 again after reload");

	ksft_finished();
}
