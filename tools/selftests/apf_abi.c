// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_abi: the guest side of the async page fault ABI (Documentation/async-pf.rst),
 * one checked case per call and argument, in a VM whose VMM enabled
 * KVM_CAP_ARM_ASYNC_PF: discovery, VERSION, GET_CONFIG, SET_RECORD (refused
 * while enabled, initialises the record), ENABLE, DISABLE and its WAKE_ALL,
 * the ACK_READY doorbell (queued WAKE_ALL, ack_ready), unknown operations,
 * the vCPU state the VMM reads back, and the function hidden when the VMM
 * clears its BMAP_2 bit.
 *
 * The guest makes each call and reports (case, got, want) with GUEST_SYNC;
 * the host turns each into one TAP result. The guest never unmasks
 * interrupts: the page-ready interrupts DISABLE and ACK_READY pend are not
 * taken.
 */
#include <linux/sizes.h>

#include "apf_util.h"
#include "gic.h"

#define SLOTS		16
#define FAR_GPA		(1ULL << 36)	/* no memslot there */
#define GARBAGE32	0xdeadbeefU
#define GARBAGE64	0xdeadbeefdeadbeefULL

enum {
	C_FEATURES_X2,
	C_FEATURES_2_X0,
	C_VERSION,
	C_GET_CONFIG_X0,
	C_GET_CONFIG_NP,
	C_GET_CONFIG_READY,
	C_GET_CONFIG_SLOTS,
	C_DISABLE_WHILE_DISABLED,
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
	C_RECORD_NP_TOKEN,
	C_RECORD_READY_TOKEN,
	C_RECORD_VERSION,
	C_RECORD_ACK_READY,
	C_ENABLE_NOTIFY_EL1_NOT_ALLOWED,
	C_HOST_STATE_REGISTERED,	/* host-side check at this point */
	C_ENABLE_OK,
	C_ACK_READY_NOTHING_PENDING,
	C_UNKNOWN_OP_7,
	C_GET_READY_PPI,
	C_UNKNOWN_OP_MAX,
	C_SET_RECORD_UNREGISTER_ENABLED,
	C_SET_RECORD_WHILE_ENABLED,
	C_SET_RECORD_WHILE_ENABLED_UNTOUCHED,
	C_VERSION_WHILE_ENABLED,
	C_HOST_STATE_ENABLED,		/* host-side check at this point */
	C_VMM_DISABLE_GUEST_ENABLED,	/* host-side check at this point */
	C_DISABLE_OK,
	C_DISABLE_WAKE_ALL,
	C_DISABLE_ACK_READY_0,
	C_ACK_READY_NOT_CLEARED,
	C_REENABLE_OK,
	C_DISABLE_QUEUED,
	C_DISABLE_QUEUED_ACK_READY_1,
	C_VMM_DISABLE_WAKE_ALL_QUEUED,	/* host-side check at this point */
	C_ACK_READY_QUEUED,
	C_ACK_READY_QUEUED_WAKE_ALL,
	C_ACK_READY_QUEUED_ACK_READY_0,
	C_ACK_READY_AGAIN,
	C_DISABLE_AGAIN,
	C_SET_RECORD_UNREGISTER_OK,
	C_ENABLE_AFTER_UNREGISTER,
	C_VMM_DISABLE_OK,		/* host-side check at this point */
	C_VERSION_AFTER_VMM_DISABLE,
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
	[C_VERSION]			= "VERSION returns 0x00010002",
	[C_GET_CONFIG_X0]		= "GET_CONFIG returns SUCCESS",
	[C_GET_CONFIG_NP]		= "GET_CONFIG x1 is the VMM's not-present INTID",
	[C_GET_CONFIG_READY]		= "GET_CONFIG x2 is the VMM's page-ready INTID",
	[C_GET_CONFIG_SLOTS]		= "GET_CONFIG x3 is the VMM's slot count",
	[C_DISABLE_WHILE_DISABLED]	= "DISABLE while disabled returns NOT_REQUIRED",
	[C_ACK_READY_WHILE_DISABLED]	= "ACK_READY (operation 5) while disabled, nothing waiting, returns NOT_REQUIRED",
	[C_ENABLE_BEFORE_RECORD]	= "ENABLE before SET_RECORD returns NOT_REQUIRED",
	[C_ENABLE_UNKNOWN_FLAG_1]	= "ENABLE with unknown flag bit 1 returns INVALID_PARAMETER",
	[C_ENABLE_UNKNOWN_FLAG_63]	= "ENABLE with unknown flag bit 63 returns INVALID_PARAMETER",
	[C_SET_RECORD_MISALIGNED_8]	= "SET_RECORD at record + 8 (misaligned) returns INVALID_PARAMETER",
	[C_SET_RECORD_MISALIGNED_32]	= "SET_RECORD at record + 32 (misaligned) returns INVALID_PARAMETER",
	[C_SET_RECORD_OUTSIDE]		= "SET_RECORD outside every memslot returns INVALID_PARAMETER",
	[C_SET_RECORD_MMIO]		= "SET_RECORD on the GIC distributor (MMIO) returns INVALID_PARAMETER",
	[C_SET_RECORD_UNREGISTER_NONE]	= "SET_RECORD(~0) with nothing registered returns SUCCESS",
	[C_SET_RECORD_OK]		= "SET_RECORD of a 64-byte aligned RAM record (full of garbage) returns SUCCESS",
	[C_RECORD_NP_TOKEN]		= "record not_present_token is 0 after SET_RECORD",
	[C_RECORD_READY_TOKEN]		= "record ready_token is 0 after SET_RECORD",
	[C_RECORD_VERSION]		= "record version is 1 after SET_RECORD",
	[C_RECORD_ACK_READY]		= "record ack_ready (0x14) is 0 after SET_RECORD",
	[C_ENABLE_NOTIFY_EL1_NOT_ALLOWED] = "ENABLE(NOTIFY_EL1) without ALLOW_EL1 returns INVALID_PARAMETER",
	[C_HOST_STATE_REGISTERED]	= "host: vCPU state after the refused ENABLE: the guest's record, not enabled",
	[C_ENABLE_OK]			= "ENABLE(0) returns SUCCESS",
	[C_ACK_READY_NOTHING_PENDING]	= "ACK_READY with nothing waiting returns NOT_REQUIRED",
	[C_UNKNOWN_OP_7]		= "operation 7 returns NOT_SUPPORTED",
	[C_GET_READY_PPI]		= "GET_READY (operation 6) with a PPI page-ready returns NOT_SUPPORTED",
	[C_UNKNOWN_OP_MAX]		= "operation ~0 returns NOT_SUPPORTED",
	[C_SET_RECORD_UNREGISTER_ENABLED] = "SET_RECORD(~0) while enabled returns INVALID_PARAMETER",
	[C_SET_RECORD_WHILE_ENABLED]	= "SET_RECORD of a new address while enabled returns INVALID_PARAMETER",
	[C_SET_RECORD_WHILE_ENABLED_UNTOUCHED] = "the refused SET_RECORD leaves the new record untouched",
	[C_VERSION_WHILE_ENABLED]	= "VERSION while enabled returns 0x00010002",
	[C_HOST_STATE_ENABLED]		= "host: vCPU state after ENABLE: the guest's record, ENABLED",
	[C_DISABLE_OK]			= "DISABLE while enabled returns SUCCESS",
	[C_DISABLE_WAKE_ALL]		= "DISABLE writes WAKE_ALL into ready_token",
	[C_DISABLE_ACK_READY_0]		= "DISABLE with ready_token clear leaves ack_ready 0",
	[C_ACK_READY_NOT_CLEARED]	= "ACK_READY with ready_token not cleared returns NOT_REQUIRED",
	[C_REENABLE_OK]			= "ENABLE again (WAKE_ALL not cleared) returns SUCCESS",
	[C_DISABLE_QUEUED]		= "DISABLE again, first WAKE_ALL not cleared, returns SUCCESS",
	[C_DISABLE_QUEUED_ACK_READY_1]	= "the second WAKE_ALL is queued: ack_ready is 1",
	[C_ACK_READY_QUEUED]		= "ready_token cleared, ACK_READY returns SUCCESS (queued WAKE_ALL delivered)",
	[C_ACK_READY_QUEUED_WAKE_ALL]	= "ready_token holds WAKE_ALL again after that ACK_READY",
	[C_ACK_READY_QUEUED_ACK_READY_0] = "ack_ready is 0 after that ACK_READY (nothing more waits)",
	[C_ACK_READY_AGAIN]		= "ready_token cleared, ACK_READY again returns NOT_REQUIRED",
	[C_DISABLE_AGAIN]		= "DISABLE while disabled (after the handshake) returns NOT_REQUIRED",
	[C_SET_RECORD_UNREGISTER_OK]	= "SET_RECORD(~0) while disabled returns SUCCESS",
	[C_ENABLE_AFTER_UNREGISTER]	= "ENABLE after unregistering the record returns NOT_REQUIRED",
	[C_VMM_DISABLE_GUEST_ENABLED]	= "host: KVM_ENABLE_CAP(disable) while the guest has it enabled fails with EBUSY",
	[C_VMM_DISABLE_WAKE_ALL_QUEUED]	= "host: KVM_ENABLE_CAP(disable) while a WAKE_ALL is queued fails with EBUSY",
	[C_VMM_DISABLE_OK]		= "host: KVM_ENABLE_CAP(disable) once the guest is done succeeds",
	[C_VERSION_AFTER_VMM_DISABLE]	= "VERSION after the VMM disabled the feature returns NOT_SUPPORTED",
	[C_HIDDEN_FEATURES_X2]		= "hidden: FEATURES x2 has bit 2 clear",
	[C_HIDDEN_FEATURES_2]		= "hidden: FEATURES_2 does not advertise function 66",
	[C_HIDDEN_VERSION]		= "hidden: VERSION returns NOT_SUPPORTED",
	[C_HIDDEN_GET_CONFIG]		= "hidden: GET_CONFIG returns NOT_SUPPORTED",
	[C_HIDDEN_SET_RECORD]		= "hidden: SET_RECORD returns NOT_SUPPORTED",
};

/* Set by the host. */
static u64 record_gpa, record2_gpa;
static u32 np_intid, ready_intid, slots;

static struct apf_record record;
static struct apf_record record2;	/* SET_RECORD while enabled: refused */

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

	CHECK(C_VERSION, apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_2);

	apf_hvc(APF_OP_GET_CONFIG, 0, &res);
	CHECK(C_GET_CONFIG_X0, res.a0, APF_SUCCESS);
	CHECK(C_GET_CONFIG_NP, res.a1, np_intid);
	CHECK(C_GET_CONFIG_READY, res.a2, ready_intid);
	CHECK(C_GET_CONFIG_SLOTS, res.a3, slots);

	CHECK(C_DISABLE_WHILE_DISABLED, apf_hvc0(APF_OP_DISABLE, 0), APF_NOT_REQUIRED);
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

	/* Garbage first: the host must initialise every field it owns. */
	WRITE_ONCE(record.not_present_token, GARBAGE64);
	WRITE_ONCE(record.ready_token, GARBAGE64);
	WRITE_ONCE(record.version, GARBAGE32);
	WRITE_ONCE(record.ack_ready, GARBAGE32);
	CHECK(C_SET_RECORD_OK, apf_hvc0(APF_OP_SET_RECORD, record_gpa), APF_SUCCESS);
	CHECK(C_RECORD_NP_TOKEN, READ_ONCE(record.not_present_token), 0);
	CHECK(C_RECORD_READY_TOKEN, READ_ONCE(record.ready_token), 0);
	CHECK(C_RECORD_VERSION, READ_ONCE(record.version), 1);
	CHECK(C_RECORD_ACK_READY, READ_ONCE(record.ack_ready), 0);

	CHECK(C_ENABLE_NOTIFY_EL1_NOT_ALLOWED, apf_hvc0(APF_OP_ENABLE, APF_ENABLE_NOTIFY_EL1),
	      APF_INVALID_PARAMETER);
	/* The host reads the vCPU state: (case, unused, expected flags). */
	GUEST_SYNC3(C_HOST_STATE_REGISTERED, 0, 0);
	CHECK(C_ENABLE_OK, apf_hvc0(APF_OP_ENABLE, 0), APF_SUCCESS);
	CHECK(C_ACK_READY_NOTHING_PENDING, apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);
	CHECK(C_UNKNOWN_OP_7, apf_hvc0(7, 0), APF_NOT_SUPPORTED);
	CHECK(C_GET_READY_PPI, apf_hvc0(APF_OP_GET_READY, 0), APF_NOT_SUPPORTED);
	CHECK(C_UNKNOWN_OP_MAX, apf_hvc0(~0UL, 0), APF_NOT_SUPPORTED);
	CHECK(C_SET_RECORD_UNREGISTER_ENABLED, apf_hvc0(APF_OP_SET_RECORD, APF_RECORD_UNREGISTER),
	      APF_INVALID_PARAMETER);
	WRITE_ONCE(record2.version, GARBAGE32);
	WRITE_ONCE(record2.ack_ready, GARBAGE32);
	CHECK(C_SET_RECORD_WHILE_ENABLED, apf_hvc0(APF_OP_SET_RECORD, record2_gpa),
	      APF_INVALID_PARAMETER);
	CHECK(C_SET_RECORD_WHILE_ENABLED_UNTOUCHED,
	      READ_ONCE(record2.version) == GARBAGE32 && READ_ONCE(record2.ack_ready) == GARBAGE32,
	      1);
	CHECK(C_VERSION_WHILE_ENABLED, apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_2);

	/* Still the first record (a refused SET_RECORD changes nothing). */
	GUEST_SYNC3(C_HOST_STATE_ENABLED, 0, APF_STATE_FLAG_ENABLED);
	/* The host tries to turn the feature off under the guest's feet. */
	GUEST_SYNC3(C_VMM_DISABLE_GUEST_ENABLED, 0, EBUSY);

	/*
	 * DISABLE with ready_token clear: WAKE_ALL is delivered at once. The
	 * guest does not clear it, so the doorbell has nothing to do.
	 */
	WRITE_ONCE(record.ready_token, 0);
	CHECK(C_DISABLE_OK, apf_hvc0(APF_OP_DISABLE, 0), APF_SUCCESS);
	CHECK(C_DISABLE_WAKE_ALL, READ_ONCE(record.ready_token), APF_WAKE_ALL);
	CHECK(C_DISABLE_ACK_READY_0, READ_ONCE(record.ack_ready), 0);
	CHECK(C_ACK_READY_NOT_CLEARED, apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);

	/* DISABLE again with that WAKE_ALL still unread: the new one queues. */
	CHECK(C_REENABLE_OK, apf_hvc0(APF_OP_ENABLE, 0), APF_SUCCESS);
	CHECK(C_DISABLE_QUEUED, apf_hvc0(APF_OP_DISABLE, 0), APF_SUCCESS);
	CHECK(C_DISABLE_QUEUED_ACK_READY_1, READ_ONCE(record.ack_ready), 1);
	/* A WAKE_ALL the guest has not received yet: still in use. */
	GUEST_SYNC3(C_VMM_DISABLE_WAKE_ALL_QUEUED, 0, EBUSY);

	/* The handler's handshake: clear, then ring (allowed while disabled). */
	WRITE_ONCE(record.ready_token, 0);
	CHECK(C_ACK_READY_QUEUED, apf_hvc0(APF_OP_ACK_READY, 0), APF_SUCCESS);
	CHECK(C_ACK_READY_QUEUED_WAKE_ALL, READ_ONCE(record.ready_token), APF_WAKE_ALL);
	CHECK(C_ACK_READY_QUEUED_ACK_READY_0, READ_ONCE(record.ack_ready), 0);
	WRITE_ONCE(record.ready_token, 0);
	CHECK(C_ACK_READY_AGAIN, apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);

	CHECK(C_DISABLE_AGAIN, apf_hvc0(APF_OP_DISABLE, 0), APF_NOT_REQUIRED);
	CHECK(C_SET_RECORD_UNREGISTER_OK, apf_hvc0(APF_OP_SET_RECORD, APF_RECORD_UNREGISTER),
	      APF_SUCCESS);
	CHECK(C_ENABLE_AFTER_UNREGISTER, apf_hvc0(APF_OP_ENABLE, 0), APF_NOT_REQUIRED);

	/* Nothing left that the guest waits for: the VMM may turn it off. */
	GUEST_SYNC3(C_VMM_DISABLE_OK, 0, 0);
	CHECK(C_VERSION_AFTER_VMM_DISABLE, apf_hvc0(APF_OP_VERSION, 0), APF_NOT_SUPPORTED);

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
		if (c == C_VMM_DISABLE_GUEST_ENABLED || c == C_VMM_DISABLE_WAKE_ALL_QUEUED ||
		    c == C_VMM_DISABLE_OK) {
			ret = __apf_enable_cap(vm, 0, 0, 0, 0);
			if (!uc.args[2])
				ksft_test_result(!ret, "%s (ret %d errno %d)\n", names[c], ret,
						 ret ? errno : 0);
			else
				apf_report_errno(ret, (int)uc.args[2], (int)uc.args[2], "%s",
						 names[c]);
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
	record2_gpa = addr_gva2gpa(vm, (gva_t)&record2);
	np_intid = APF_NP_INTID;
	ready_intid = APF_READY_INTID;
	slots = SLOTS;
	sync_global_to_guest(vm, record_gpa);
	sync_global_to_guest(vm, record2_gpa);
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
	TEST_ASSERT(!(record2_gpa & 63) && record2_gpa != record_gpa,
		    "second record not 64-byte aligned or not distinct: 0x%lx", record2_gpa);
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
