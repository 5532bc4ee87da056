// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_no_provider: the kernel with the async page fault hook series but no
 * provider module loaded (run before 'insmod kvm_apf.ko') must look exactly
 * like a kernel without the feature.
 *
 * Host: KVM_CHECK_EXTENSION(KVM_CAP_ARM_ASYNC_PF) is 0, KVM_ENABLE_CAP fails
 * (EINVAL or ENXIO), disabling is a no-op, the vendor hyp BMAP_2 bit cannot
 * be set and the vCPU attribute group does not exist.
 * Guest: the function is not advertised (FEATURES x2 bit 2, FEATURES_2) and
 * every call to it returns NOT_SUPPORTED.
 */
#include "apf_util.h"

enum {
	STEP_FEATURES = 1,
	STEP_FEATURES_2,
	STEP_VERSION,
	STEP_GET_CONFIG,
	STEP_SET_RECORD,
	STEP_ENABLE,
};

static struct apf_record record;

static void guest_code(void)
{
	struct arm_smccc_res res;

	smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	GUEST_SYNC3(STEP_FEATURES, res.a0, res.a2);

	smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_2_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	GUEST_SYNC2(STEP_FEATURES_2, res.a0);

	GUEST_SYNC2(STEP_VERSION, apf_hvc0(APF_OP_VERSION, 0));
	GUEST_SYNC2(STEP_GET_CONFIG, apf_hvc0(APF_OP_GET_CONFIG, 0));
	GUEST_SYNC2(STEP_SET_RECORD, apf_hvc0(APF_OP_SET_RECORD, (u64)&record));
	GUEST_SYNC2(STEP_ENABLE, apf_hvc0(APF_OP_ENABLE, 0));
	GUEST_DONE();
}

static void check_guest(struct kvm_vcpu *vcpu)
{
	struct ucall uc;
	u64 v;

	while (apf_run_to_ucall(vcpu, &uc) == UCALL_SYNC) {
		switch (uc.args[0]) {
		case STEP_FEATURES:
			ksft_test_result(!(uc.args[2] & BIT(APF_VENDOR_HYP_BMAP_2_BIT)),
					 "guest: FEATURES x2 (functions 64-95) has bit 2 clear (x2 = 0x%lx)\n",
					 uc.args[2]);
			break;
		case STEP_FEATURES_2:
			/* NOT_SUPPORTED (all ones) also means: nothing to see. */
			v = uc.args[1];
			ksft_test_result(v == APF_NOT_SUPPORTED ||
					 !(v & BIT(APF_VENDOR_HYP_BMAP_2_BIT)),
					 "guest: FEATURES_2 does not advertise function 66 (x0 = 0x%lx)\n", v);
			break;
		case STEP_VERSION:
			apf_report_eq(uc.args[1], APF_NOT_SUPPORTED,
				      "guest: ASYNC_PF VERSION returns NOT_SUPPORTED");
			break;
		case STEP_GET_CONFIG:
			apf_report_eq(uc.args[1], APF_NOT_SUPPORTED,
				      "guest: ASYNC_PF GET_CONFIG returns NOT_SUPPORTED");
			break;
		case STEP_SET_RECORD:
			apf_report_eq(uc.args[1], APF_NOT_SUPPORTED,
				      "guest: ASYNC_PF SET_RECORD returns NOT_SUPPORTED");
			break;
		case STEP_ENABLE:
			apf_report_eq(uc.args[1], APF_NOT_SUPPORTED,
				      "guest: ASYNC_PF ENABLE returns NOT_SUPPORTED");
			break;
		default:
			TEST_FAIL("unknown step %lu", uc.args[0]);
		}
	}
}

int main(void)
{
	struct kvm_arm_async_pf_state state = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 bmap2;
	int ret;

	ksft_print_header();
	apf_force_el1_guests();

	if (apf_module_loaded())
		ksft_exit_skip("the kvm_apf module is loaded: this test must run before insmod\n");

	ksft_set_plan(15);

	apf_report_eq(kvm_check_cap(KVM_CAP_ARM_ASYNC_PF), 0,
		      "KVM_CHECK_EXTENSION(KVM_CAP_ARM_ASYNC_PF) on /dev/kvm is 0");

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);

	apf_report_eq(vm_check_cap(vm, KVM_CAP_ARM_ASYNC_PF), 0,
		      "KVM_CHECK_EXTENSION(KVM_CAP_ARM_ASYNC_PF) on the VM is 0");

	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, 0,
			       APF_NP_INTID, APF_READY_INTID);
	apf_report_errno(ret, EINVAL, ENXIO, "KVM_ENABLE_CAP(ENABLE) fails without a provider");

	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_ALLOW_EL1,
			       64, APF_NP_INTID, APF_READY_INTID);
	apf_report_errno(ret, EINVAL, ENXIO,
			 "KVM_ENABLE_CAP(ENABLE|ALLOW_EL1) fails without a provider");

	ret = __apf_enable_cap(vm, 0, 0, 0, 0);
	ksft_test_result(ret == 0 || errno == EINVAL || errno == ENXIO,
			 "KVM_ENABLE_CAP(disable) without a provider: no-op or refused (ret %d errno %d)\n",
			 ret, ret ? errno : 0);

	bmap2 = vcpu_get_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2);
	ksft_test_result(!(bmap2 & BIT(APF_VENDOR_HYP_BMAP_2_BIT)),
			 "KVM_REG_ARM_VENDOR_HYP_BMAP_2 reads with bit 2 clear (0x%lx)\n", bmap2);

	ret = __vcpu_set_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2,
			     bmap2 | BIT(APF_VENDOR_HYP_BMAP_2_BIT));
	apf_report_errno(ret, EINVAL, EINVAL,
			 "setting bit 2 of KVM_REG_ARM_VENDOR_HYP_BMAP_2 fails with EINVAL");

	ret = __vcpu_has_device_attr(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE);
	apf_report_errno(ret, ENXIO, ENXIO,
			 "KVM_HAS_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_CTRL) fails with ENXIO");

	ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &state);
	apf_report_errno(ret, ENXIO, ENXIO,
			 "KVM_GET_DEVICE_ATTR(KVM_ARM_VCPU_ASYNC_PF_STATE) fails with ENXIO");

	/* The guest: 6 cases (16 in all). */
	check_guest(vcpu);

	kvm_vm_free(vm);
	ksft_finished();
}
