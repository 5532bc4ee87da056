// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_abi: the guest side of the async page fault ABI (contract/guest-abi.md),
 * one checked case per call and argument, in a VM whose VMM enabled
 * KVM_CAP_ARM_ASYNC_PF: discovery, VERSION, GET_CONFIG, SET_RECORD,
 * ENABLE, DISABLE, the ACKs with nothing pending, unknown operations, the
 * record's version field, the vCPU state the VMM reads back, and the
 * function hidden when the VMM clears its BMAP_2 bit.
 *
 * The guest makes each call and reports (case, got, want) with GUEST_SYNC;
 * the host turns each into one TAP result.
 */
#include <linux/sizes.h>

#include "apf_util.h"
#include "gic.h"

#define SLOTS		16
#define FAR_GPA		(1ULL << 36)	/* no memslot there */

enum {
	C_FEATURES_X2,
	C_FEATURES_2_X0,
	C_VERSION,
	C_GET_CONFIG_X0,
	C_GET_CONFIG_NP,
	C_GET_CONFIG_READY,
	C_GET_CONFIG_SLOTS,
	C_DISABLE_WHILE_DISABLED,
	C_ACK_NP_WHILE_DISABLED,
	C_ACK_READY_WHILE_DISABLED,
	C_ENABLE_BEFORE_RECORD,
	C_ENABLE_UNKNOWN_FLAG_1,
	C_ENABLE_UNKNOWN_FLAG_63,
	C_SET_RECORD_MISALIGNED_8,
	C_SET_RECORD_MISALIGNED_32,
	C_SET_RECORD_OUTSIDE,
	C_SET_RECORD_MMIO,
	C_SET_RECORD_UNREGISTER_NONE,
	C_SET_RECORD_OK,
	C_RECORD_VERSION,
	C_RECORD_WORD_0X14,
	C_ENABLE_NOTIFY_EL1_NOT_ALLOWED,
	C_HOST_STATE_REGISTERED,	/* host-side check at this point */
	C_ENABLE_OK,
	C_ACK_NP_NOTHING_PENDING,
	C_ACK_READY_NOTHING_PENDING,
	C_UNKNOWN_OP_7,
	C_UNKNOWN_OP_MAX,
	C_SET_RECORD_UNREGISTER_ENABLED,
	C_VERSION_WHILE_ENABLED,
	C_HOST_STATE_ENABLED,		/* host-side check at this point */
	C_DISABLE_OK,
	C_DISABLE_WAKE_ALL,
	C_ACK_READY_WAKE_ALL,
	C_ACK_READY_AGAIN,
	C_DISABLE_AGAIN,
	C_ACK_NP_AFTER_DISABLE,
	C_SET_RECORD_UNREGISTER_OK,
	C_ENABLE_AFTER_UNREGISTER,
	C_NR,

	/* The VM whose VMM hid the function. */
	C_HIDDEN_FEATURES_X2 = C_NR,
	C_HIDDEN_FEATURES_2,
	C_HIDDEN_VERSION,
	C_HIDDEN_GET_CONFIG,
	C_HIDDEN_SET_RECORD,
	C_HIDDEN_NR,
};

static const char * const names[C_HIDDEN_NR] = {
	[C_FEATURES_X2]			= "FEATURES x2 (functions 64-95) has bit 2 set",
	[C_FEATURES_2_X0]		= "FEATURES_2 x0 has bit 2 set",
	[C_VERSION]			= "VERSION returns 0x00010000",
	[C_GET_CONFIG_X0]		= "GET_CONFIG returns SUCCESS",
	[C_GET_CONFIG_NP]		= "GET_CONFIG x1 is the VMM's not-present INTID",
	[C_GET_CONFIG_READY]		= "GET_CONFIG x2 is the VMM's page-ready INTID",
	[C_GET_CONFIG_SLOTS]		= "GET_CONFIG x3 is the VMM's slot count",
	[C_DISABLE_WHILE_DISABLED]	= "DISABLE while disabled returns NOT_REQUIRED",
	[C_ACK_NP_WHILE_DISABLED]	= "ACK_NOT_PRESENT while disabled returns NOT_REQUIRED",
	[C_ACK_READY_WHILE_DISABLED]	= "ACK_READY while disabled returns NOT_REQUIRED",
	[C_ENABLE_BEFORE_RECORD]	= "ENABLE before SET_RECORD returns NOT_REQUIRED",
	[C_ENABLE_UNKNOWN_FLAG_1]	= "ENABLE with unknown flag bit 1 returns INVALID_PARAMETER",
	[C_ENABLE_UNKNOWN_FLAG_63]	= "ENABLE with unknown flag bit 63 returns INVALID_PARAMETER",
	[C_SET_RECORD_MISALIGNED_8]	= "SET_RECORD at record + 8 (misaligned) returns INVALID_PARAMETER",
	[C_SET_RECORD_MISALIGNED_32]	= "SET_RECORD at record + 32 (misaligned) returns INVALID_PARAMETER",
	[C_SET_RECORD_OUTSIDE]		= "SET_RECORD outside every memslot returns INVALID_PARAMETER",
	[C_SET_RECORD_MMIO]		= "SET_RECORD on the GIC distributor (MMIO) returns INVALID_PARAMETER",
	[C_SET_RECORD_UNREGISTER_NONE]	= "SET_RECORD(~0) with nothing registered returns SUCCESS",
	[C_SET_RECORD_OK]		= "SET_RECORD of a 64-byte aligned RAM record returns SUCCESS",
	[C_RECORD_VERSION]		= "record version field is 1 after SET_RECORD",
	[C_RECORD_WORD_0X14]		= "record word at 0x14 is 0 after SET_RECORD",
	[C_ENABLE_NOTIFY_EL1_NOT_ALLOWED] = "ENABLE(NOTIFY_EL1) without ALLOW_EL1 returns INVALID_PARAMETER",
	[C_HOST_STATE_REGISTERED]	= "host: vCPU state after the refused ENABLE: the guest's record, not enabled",
	[C_ENABLE_OK]			= "ENABLE(0) returns SUCCESS",
	[C_ACK_NP_NOTHING_PENDING]	= "ACK_NOT_PRESENT with nothing pending returns NOT_REQUIRED",
	[C_ACK_READY_NOTHING_PENDING]	= "ACK_READY with nothing pending returns NOT_REQUIRED",
	[C_UNKNOWN_OP_7]		= "operation 7 returns NOT_SUPPORTED",
	[C_UNKNOWN_OP_MAX]		= "operation ~0 returns NOT_SUPPORTED",
	[C_SET_RECORD_UNREGISTER_ENABLED] = "SET_RECORD(~0) while enabled returns INVALID_PARAMETER",
	[C_VERSION_WHILE_ENABLED]	= "VERSION while enabled returns 0x00010000",
	[C_HOST_STATE_ENABLED]		= "host: vCPU state after ENABLE: the guest's record, ENABLED",
	[C_DISABLE_OK]			= "DISABLE while enabled returns SUCCESS",
	[C_DISABLE_WAKE_ALL]		= "DISABLE writes WAKE_ALL into ready_token",
	[C_ACK_READY_WAKE_ALL]		= "ACK_READY of the WAKE_ALL after DISABLE returns SUCCESS",
	[C_ACK_READY_AGAIN]		= "ACK_READY again returns NOT_REQUIRED",
	[C_DISABLE_AGAIN]		= "DISABLE again returns NOT_REQUIRED",
	[C_ACK_NP_AFTER_DISABLE]	= "ACK_NOT_PRESENT after DISABLE returns NOT_REQUIRED",
	[C_SET_RECORD_UNREGISTER_OK]	= "SET_RECORD(~0) while disabled returns SUCCESS",
	[C_ENABLE_AFTER_UNREGISTER]	= "ENABLE after unregistering the record returns NOT_REQUIRED",
	[C_HIDDEN_FEATURES_X2]		= "hidden: FEATURES x2 has bit 2 clear",
	[C_HIDDEN_FEATURES_2]		= "hidden: FEATURES_2 does not advertise function 66",
	[C_HIDDEN_VERSION]		= "hidden: VERSION returns NOT_SUPPORTED",
	[C_HIDDEN_GET_CONFIG]		= "hidden: GET_CONFIG returns NOT_SUPPORTED",
	[C_HIDDEN_SET_RECORD]		= "hidden: SET_RECORD returns NOT_SUPPORTED",
};

/* Set by the host. */
static u64 record_gpa;
static u32 np_intid, ready_intid, slots;

static struct apf_record record;

#define CHECK(c, got, want)	GUEST_SYNC3(c, got, want)

static u64 bit2(u64 v)
{
	return !!(v & BIT(APF_VENDOR_HYP_BMAP_2_BIT));
}

static void guest_code(void)
{
	struct arm_smccc_res res;

	smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	CHECK(C_FEATURES_X2, bit2(res.a2), 1);
	smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_2_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	CHECK(C_FEATURES_2_X0, res.a0 != APF_NOT_SUPPORTED && bit2(res.a0), 1);

	CHECK(C_VERSION, apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_0);

	apf_hvc(APF_OP_GET_CONFIG, 0, &res);
	CHECK(C_GET_CONFIG_X0, res.a0, APF_SUCCESS);
	CHECK(C_GET_CONFIG_NP, res.a1, np_intid);
	CHECK(C_GET_CONFIG_READY, res.a2, ready_intid);
	CHECK(C_GET_CONFIG_SLOTS, res.a3, slots);

	CHECK(C_DISABLE_WHILE_DISABLED, apf_hvc0(APF_OP_DISABLE, 0), APF_NOT_REQUIRED);
	CHECK(C_ACK_NP_WHILE_DISABLED, apf_hvc0(APF_OP_ACK_NOT_PRESENT, 0), APF_NOT_REQUIRED);
	CHECK(C_ACK_READY_WHILE_DISABLED, apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);

	CHECK(C_ENABLE_BEFORE_RECORD, apf_hvc0(APF_OP_ENABLE, 0), APF_NOT_REQUIRED);
	CHECK(C_ENABLE_UNKNOWN_FLAG_1, apf_hvc0(APF_OP_ENABLE, 1UL << 1), APF_INVALID_PARAMETER);
	CHECK(C_ENABLE_UNKNOWN_FLAG_63, apf_hvc0(APF_OP_ENABLE, 1UL << 63), APF_INVALID_PARAMETER);

	CHECK(C_SET_RECORD_MISALIGNED_8, apf_hvc0(APF_OP_SET_RECORD, record_gpa + 8),
	      APF_INVALID_PARAMETER);
	CHECK(C_SET_RECORD_MISALIGNED_32, apf_hvc0(APF_OP_SET_RECORD, record_gpa + 32),
	      APF_INVALID_PARAMETER);
	CHECK(C_SET_RECORD_OUTSIDE, apf_hvc0(APF_OP_SET_RECORD, FAR_GPA), APF_INVALID_PARAMETER);
	CHECK(C_SET_RECORD_MMIO, apf_hvc0(APF_OP_SET_RECORD, GICD_BASE_GPA), APF_INVALID_PARAMETER);
	CHECK(C_SET_RECORD_UNREGISTER_NONE, apf_hvc0(APF_OP_SET_RECORD, APF_RECORD_UNREGISTER),
	      APF_SUCCESS);

	/* Garbage first: the host must write version 1 and clear 0x14. */
	record.version = 0xdeadbeef;
	record.reserved0 = 0xdeadbeef;
	CHECK(C_SET_RECORD_OK, apf_hvc0(APF_OP_SET_RECORD, record_gpa), APF_SUCCESS);
	CHECK(C_RECORD_VERSION, record.version, 1);
	CHECK(C_RECORD_WORD_0X14, READ_ONCE(record.reserved0), 0);

	CHECK(C_ENABLE_NOTIFY_EL1_NOT_ALLOWED, apf_hvc0(APF_OP_ENABLE, APF_ENABLE_NOTIFY_EL1),
	      APF_INVALID_PARAMETER);
	/* The host reads the vCPU state: (case, unused, expected flags). */
	GUEST_SYNC3(C_HOST_STATE_REGISTERED, 0, 0);
	CHECK(C_ENABLE_OK, apf_hvc0(APF_OP_ENABLE, 0), APF_SUCCESS);
	CHECK(C_ACK_NP_NOTHING_PENDING, apf_hvc0(APF_OP_ACK_NOT_PRESENT, 0), APF_NOT_REQUIRED);
	CHECK(C_ACK_READY_NOTHING_PENDING, apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);
	CHECK(C_UNKNOWN_OP_7, apf_hvc0(7, 0), APF_NOT_SUPPORTED);
	CHECK(C_UNKNOWN_OP_MAX, apf_hvc0(~0UL, 0), APF_NOT_SUPPORTED);
	CHECK(C_SET_RECORD_UNREGISTER_ENABLED, apf_hvc0(APF_OP_SET_RECORD, APF_RECORD_UNREGISTER),
	      APF_INVALID_PARAMETER);
	CHECK(C_VERSION_WHILE_ENABLED, apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_0);

	GUEST_SYNC3(C_HOST_STATE_ENABLED, 0, APF_STATE_FLAG_ENABLED);

	record.ready_token = 0;
	CHECK(C_DISABLE_OK, apf_hvc0(APF_OP_DISABLE, 0), APF_SUCCESS);
	CHECK(C_DISABLE_WAKE_ALL, READ_ONCE(record.ready_token), APF_WAKE_ALL);
	CHECK(C_ACK_READY_WAKE_ALL, apf_hvc0(APF_OP_ACK_READY, 0), APF_SUCCESS);
	CHECK(C_ACK_READY_AGAIN, apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);
	CHECK(C_DISABLE_AGAIN, apf_hvc0(APF_OP_DISABLE, 0), APF_NOT_REQUIRED);
	CHECK(C_ACK_NP_AFTER_DISABLE, apf_hvc0(APF_OP_ACK_NOT_PRESENT, 0), APF_NOT_REQUIRED);
	CHECK(C_SET_RECORD_UNREGISTER_OK, apf_hvc0(APF_OP_SET_RECORD, APF_RECORD_UNREGISTER),
	      APF_SUCCESS);
	CHECK(C_ENABLE_AFTER_UNREGISTER, apf_hvc0(APF_OP_ENABLE, 0), APF_NOT_REQUIRED);

	GUEST_DONE();
}

static void guest_code_hidden(void)
{
	struct arm_smccc_res res;

	smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	CHECK(C_HIDDEN_FEATURES_X2, bit2(res.a2), 0);
	smccc_hvc(ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_2_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	/* NOT_SUPPORTED (all ones) also means: not there. */
	CHECK(C_HIDDEN_FEATURES_2, res.a0 == APF_NOT_SUPPORTED || !bit2(res.a0), 1);
	CHECK(C_HIDDEN_VERSION, apf_hvc0(APF_OP_VERSION, 0), APF_NOT_SUPPORTED);
	CHECK(C_HIDDEN_GET_CONFIG, apf_hvc0(APF_OP_GET_CONFIG, 0), APF_NOT_SUPPORTED);
	CHECK(C_HIDDEN_SET_RECORD, apf_hvc0(APF_OP_SET_RECORD, record_gpa), APF_NOT_SUPPORTED);
	GUEST_DONE();
}

static void run_guest(struct kvm_vm *vm, struct kvm_vcpu *vcpu)
{
	struct kvm_arm_async_pf_state st;
	struct ucall uc;
	int ret;

	while (apf_run_to_ucall(vcpu, &uc) == UCALL_SYNC) {
		u64 c = uc.args[0];

		TEST_ASSERT(c < C_HIDDEN_NR && names[c], "unknown case %lu", c);
		if (c == C_HOST_STATE_REGISTERED || c == C_HOST_STATE_ENABLED) {
			memset(&st, 0x5a, sizeof(st));
			ret = __vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
						     KVM_ARM_VCPU_ASYNC_PF_STATE, &st);
			ksft_test_result(!ret && st.record_gpa == record_gpa &&
					 st.flags == uc.args[2],
					 "%s (ret %d gpa 0x%llx flags 0x%llx)\n", names[c],
					 ret, st.record_gpa, st.flags);
			continue;
		}
		apf_report_eq(uc.args[1], uc.args[2], "guest: %s", names[c]);
	}
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu, void *code)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, code);

	apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, SLOTS, APF_NP_INTID, APF_READY_INTID);

	record_gpa = addr_gva2gpa(vm, (gva_t)&record);
	np_intid = APF_NP_INTID;
	ready_intid = APF_READY_INTID;
	slots = SLOTS;
	sync_global_to_guest(vm, record_gpa);
	sync_global_to_guest(vm, np_intid);
	sync_global_to_guest(vm, ready_intid);
	sync_global_to_guest(vm, slots);
	return vm;
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ksft_print_header();
	apf_force_el1_guests();
	apf_require_provider();
	ksft_set_plan(C_HIDDEN_NR);

	/* The ABI, in a VM with the function visible (the default). */
	vm = create_vm(&vcpu, guest_code);
	TEST_ASSERT(!(record_gpa & 63), "record not 64-byte aligned: 0x%lx", record_gpa);
	run_guest(vm, vcpu);
	kvm_vm_free(vm);

	/* The VMM hides the function before the guest runs. */
	vm = create_vm(&vcpu, guest_code_hidden);
	vcpu_set_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2,
		     vcpu_get_reg(vcpu, KVM_REG_ARM_VENDOR_HYP_BMAP_2) &
		     ~BIT(APF_VENDOR_HYP_BMAP_2_BIT));
	run_guest(vm, vcpu);
	kvm_vm_free(vm);

	ksft_finished();
}
