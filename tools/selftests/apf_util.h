/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Shared definitions of the kvm-apf end-to-end tests (tools/selftests/apf_*.c).
 *
 * The tests are built inside the 7.3 tree's tools/testing/selftests/kvm/arm64/
 * with the stock rules, against the UAPI headers of the patched kernel. Until
 * the patch series has landed those headers lack the async page fault names:
 * every UAPI constant and struct of the series (c_shim/patches)
 * has a fallback here so the tests build either way. The guest ABI
 * (Documentation/async-pf.rst: operations, return codes, record layout) is not
 * UAPI and is defined here under APF_* names.
 */
#ifndef SELFTEST_KVM_APF_UTIL_H
#define SELFTEST_KVM_APF_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/arm-smccc.h>
#include <linux/kvm.h>
#include <asm/kvm.h>

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "kselftest.h"
#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

/* ---- UAPI (include/uapi/linux/kvm.h, arch/arm64/include/uapi/asm/kvm.h) */

#ifndef KVM_CAP_ARM_ASYNC_PF
#define KVM_CAP_ARM_ASYNC_PF		252
#endif

/* cap->args[0] */
#ifndef KVM_ARM_ASYNC_PF_ENABLE
#define KVM_ARM_ASYNC_PF_ENABLE		(1ULL << 0)
#endif
#ifndef KVM_ARM_ASYNC_PF_ALLOW_EL1
#define KVM_ARM_ASYNC_PF_ALLOW_EL1	(1ULL << 1)
#endif

/* The struct comes with the attribute group in the same patch. */
#ifndef KVM_ARM_VCPU_ASYNC_PF_CTRL
#define KVM_ARM_VCPU_ASYNC_PF_CTRL	3
struct kvm_arm_async_pf_state {
	__u64 record_gpa;
	__u64 flags;
	__u64 config[4];
	__u64 reserved[2];
};
#endif
#ifndef KVM_ARM_VCPU_ASYNC_PF_STATE
#define KVM_ARM_VCPU_ASYNC_PF_STATE	0
#endif
#ifndef KVM_ARM_VCPU_ASYNC_PF_CONFIG
#define KVM_ARM_VCPU_ASYNC_PF_CONFIG	1
struct kvm_arm_async_pf_config {
	__u64 args[4];
	__u64 reserved[4];
};
#endif

/* ---- UAPI of the SDEI delivery of page-not-present (fallbacks) */

/* cap->args[0]: not-present as an SDEI event; args[2] must then be 0. */
#ifndef KVM_ARM_ASYNC_PF_NP_SDEI
#define KVM_ARM_ASYNC_PF_NP_SDEI	(1ULL << 2)
#endif

/* vCPU attribute of KVM_ARM_VCPU_ASYNC_PF_CTRL, only on an NP_SDEI VM. */
#ifndef KVM_ARM_VCPU_ASYNC_PF_SDEI
#define KVM_ARM_VCPU_ASYNC_PF_SDEI	2
struct kvm_arm_async_pf_sdei {
	__u64 flags;
	__u64 event;
	__u64 entry_point;
	__u64 entry_arg;
	__u64 ctx_x[18];
	__u64 ctx_pc;
	__u64 ctx_pstate;
	__u64 reserved[8];
};
#endif

_Static_assert(sizeof(struct kvm_arm_async_pf_sdei) == 256, "the SDEI state is 256 bytes");

/* ---- Guest ABI of the SDEI delivery (DEN0054, rust/logic/sdei.rs) */

#define APF_SDEI_EVENT		0x40400001UL
#define APF_SDEI_FN(n)		(0xC4000020U + (n))	/* SMC64 */
#define APF_SDEI_FN32(n)	(0x84000020U + (n))	/* SMC32 */

enum {
	SDEI_VERSION			= 0x00,
	SDEI_EVENT_REGISTER		= 0x01,
	SDEI_EVENT_ENABLE		= 0x02,
	SDEI_EVENT_DISABLE		= 0x03,
	SDEI_EVENT_CONTEXT		= 0x04,
	SDEI_EVENT_COMPLETE		= 0x05,
	SDEI_EVENT_COMPLETE_AND_RESUME	= 0x06,
	SDEI_EVENT_UNREGISTER		= 0x07,
	SDEI_EVENT_STATUS		= 0x08,
	SDEI_EVENT_GET_INFO		= 0x09,
	SDEI_EVENT_ROUTING_SET		= 0x0a,
	SDEI_PE_MASK			= 0x0b,
	SDEI_PE_UNMASK			= 0x0c,
	SDEI_INTERRUPT_BIND		= 0x0d,
	SDEI_INTERRUPT_RELEASE		= 0x0e,
	SDEI_EVENT_SIGNAL		= 0x0f,
	SDEI_FEATURES			= 0x10,
	SDEI_PRIVATE_RESET		= 0x11,
	SDEI_SHARED_RESET		= 0x12,
	SDEI_NR_FUNCS,
};

#define SDEI_VERSION_1_1	0x0001000100000000UL
#define SDEI_SUCCESS		0UL
#define SDEI_NOT_SUPPORTED	((u64)-1L)
#define SDEI_INVALID_PARAMS	((u64)-2L)
#define SDEI_DENIED		((u64)-3L)
#define SDEI_PENDING		((u64)-5L)
#define SDEI_OUT_OF_RESOURCE	((u64)-10L)

/* EVENT_STATUS */
#define SDEI_STATUS_REGISTERED	1UL
#define SDEI_STATUS_ENABLED	2UL
#define SDEI_STATUS_RUNNING	4UL

/* EVENT_REGISTER flags */
#define SDEI_REGISTER_RM_PE	(1UL << 0)
#define SDEI_REGISTER_RELATIVE	(1UL << 1)

/*
 * KVM_REG_ARM_VENDOR_HYP_BIT_ASYNC_PF is an enum member in the UAPI header
 * (cannot be tested with #ifdef): use our own name for bit 2.
 */
#define APF_VENDOR_HYP_BMAP_2_BIT	2

/* kvm_arm_async_pf_state.flags (rust/logic/config.rs) */
#define APF_STATE_FLAG_ENABLED		(1ULL << 0)
#define APF_STATE_FLAG_NOTIFY_EL1	(1ULL << 1)
#define APF_STATE_NO_RECORD		(~0ULL)

/* ---- SMCCC function ids (tools/include/linux/arm-smccc.h may lack them) */

#ifndef ARM_SMCCC_KVM_FUNC_ASYNC_PF
#define ARM_SMCCC_KVM_FUNC_ASYNC_PF	66
#endif
#ifndef ARM_SMCCC_VENDOR_HYP_KVM_ASYNC_PF_FUNC_ID
#define ARM_SMCCC_VENDOR_HYP_KVM_ASYNC_PF_FUNC_ID	0xC6000042U
#endif
#ifndef ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_2_FUNC_ID
#define ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_2_FUNC_ID	0x8600007fU
#endif
#ifndef ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID
#define ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID	0x86000000U
#endif
/* SDEI_VERSION (SMC64 form): the provider answers the SDEI range. */
#define APF_SDEI_VERSION_FUNC_ID	0xC4000020U

/* ---- Guest ABI (Documentation/async-pf.rst, rust/logic/hypercall.rs) */

#define APF_FUNC_ID		ARM_SMCCC_VENDOR_HYP_KVM_ASYNC_PF_FUNC_ID

/*
 * Operations (x1). There is no ACK_NOT_PRESENT: the guest acknowledges a
 * page-not-present by clearing not_present_token in the record. ACK_READY
 * is a doorbell, needed only when the record's ack_ready was set.
 */
#define APF_OP_VERSION		0
#define APF_OP_GET_CONFIG	1
#define APF_OP_SET_RECORD	2	/* refused while enabled */
#define APF_OP_ENABLE		3
#define APF_OP_DISABLE		4
#define APF_OP_ACK_READY	5
/*
 * 1.1: VM-wide page-ready with an SPI. Callable on any vCPU: pops the oldest
 * page-ready of the VM; x1 token (or WAKE_ALL), x2 MPIDR_EL1 affinity of the
 * vCPU that announced it, x3 1 if more wait. NOT_REQUIRED: nothing queued;
 * NOT_SUPPORTED with a PPI page-ready.
 */
#define APF_OP_GET_READY	6

#define APF_VERSION_1_0		0x00010000UL
#define APF_VERSION_1_1		0x00010001UL
#define APF_VERSION_1_2		0x00010002UL
/* MPIDR_EL1 Aff3 (39:32) and Aff2..Aff0 (23:0): what GET_READY returns. */
#define APF_MPIDR_AFF_MASK	0xff00ffffffUL
#define APF_ENABLE_NOTIFY_EL1	(1UL << 0)
#define APF_RECORD_UNREGISTER	(~0UL)

#define APF_SUCCESS		0UL
#define APF_NOT_SUPPORTED	((unsigned long)-1L)
#define APF_NOT_REQUIRED	((unsigned long)-2L)
#define APF_INVALID_PARAMETER	((unsigned long)-3L)

#define APF_WAKE_ALL		(~0UL)

/*
 * The shared record: 64 bytes, 64-byte aligned, in guest RAM. SET_RECORD
 * initialises it (tokens 0, version 1, ack_ready 0).
 *
 * not_present_token  host writes it on page-not-present; the guest writes 0
 *                    once it has read it. While it is non-zero, further
 *                    faults of the vCPU are handled synchronously.
 * ready_token        host writes it on page-ready (APF_WAKE_ALL: wake every
 *                    waiting task); the guest writes 0 once it has read it.
 * ack_ready          host: 1 while more page-ready notifications wait behind
 *                    the current one (the guest then calls ACK_READY after
 *                    clearing ready_token), else 0.
 *
 * Both notifications are edge-triggered; one whose token reads 0 is spurious
 * and is ignored. IPA page 0 is never handled asynchronously (0 is "empty").
 */
struct apf_record {
	volatile u64 not_present_token;	/* 0x00 */
	volatile u64 ready_token;	/* 0x08 */
	volatile u32 version;		/* 0x10 */
	volatile u32 ack_ready;		/* 0x14 */
	u64 reserved[5];		/* 0x18 */
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct apf_record) == 64, "record is 64 bytes");
_Static_assert(__builtin_offsetof(struct apf_record, ack_ready) == 0x14,
	       "ack_ready is at 0x14");

/* Default INTIDs of the tests: free PPIs (timers use 26..30, PMU 23). */
#define APF_NP_INTID		20
#define APF_READY_INTID		21

/* ---- Guest helpers */

static inline void apf_hvc(u64 op, u64 arg, struct arm_smccc_res *res)
{
	smccc_hvc(APF_FUNC_ID, op, arg, 0, 0, 0, 0, 0, res);
}

static inline u64 apf_hvc0(u64 op, u64 arg)
{
	struct arm_smccc_res res;

	apf_hvc(op, arg, &res);
	return res.a0;
}

/*
 * The page-not-present handshake, in the guest's not-present handler: take
 * the token (0: spurious notification, ignore it) and clear it, so that the
 * vCPU's next fault may be asynchronous again. No hypercall.
 */
static inline u64 apf_take_not_present(struct apf_record *r)
{
	u64 tok = READ_ONCE(r->not_present_token);

	if (tok)
		WRITE_ONCE(r->not_present_token, 0);
	return tok;
}

/*
 * The page-ready handshake, in the guest's page-ready handler: take the
 * token (0: spurious; APF_WAKE_ALL: wake every waiting task) and clear it,
 * THEN read ack_ready and ring ACK_READY only if it is set (its answer does
 * not matter: SUCCESS pends the next page-ready, NOT_REQUIRED means nothing
 * waited). Clearing first: a completion queued by the host after the clear
 * finds the slot empty and is delivered with its own interrupt; one queued
 * before it has set ack_ready. The ACK_READY calls made are counted in *acks
 * (if acks is not NULL).
 */
static inline u64 apf_take_ready(struct apf_record *r, u64 *acks)
{
	u64 tok = READ_ONCE(r->ready_token);

	if (tok)
		WRITE_ONCE(r->ready_token, 0);
	/* The clear must be visible before ack_ready is read. */
	dmb(ish);
	if (READ_ONCE(r->ack_ready)) {
		apf_hvc0(APF_OP_ACK_READY, 0);
		if (acks)
			(*acks)++;
	}
	return tok;
}

/* ---- Host helpers */

/* KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF): 0 or -1 with errno set. */
static inline int __apf_enable_cap_flags(struct kvm_vm *vm, u32 cap_flags,
					 u64 flags, u64 slots, u64 np, u64 ready)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_ARM_ASYNC_PF,
		.flags = cap_flags,
		.args = { flags, slots, np, ready },
	};

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

static inline int __apf_enable_cap(struct kvm_vm *vm, u64 flags, u64 slots,
				   u64 np, u64 ready)
{
	return __apf_enable_cap_flags(vm, 0, flags, slots, np, ready);
}

static inline void apf_enable_cap(struct kvm_vm *vm, u64 flags, u64 slots,
				  u64 np, u64 ready)
{
	int ret = __apf_enable_cap(vm, flags, slots, np, ready);

	TEST_ASSERT(!ret, "KVM_ENABLE_CAP(KVM_CAP_ARM_ASYNC_PF, 0x%llx, %llu, %llu, %llu): errno %d",
		    (unsigned long long)flags, (unsigned long long)slots,
		    (unsigned long long)np, (unsigned long long)ready, errno);
}

/* Skip the whole test (KSFT_SKIP) unless a provider is registered. */
static inline void apf_require_provider(void)
{
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ARM_ASYNC_PF));
}

/* Run the guest at EL1: the tests rely on hvc and on EL1/EL0 semantics. */
static inline void apf_force_el1_guests(void)
{
	setenv("NV", "0", 1);
}

/*
 * Run the vCPU until the next ucall other than a PRINTF and return its
 * number: SYNC and DONE are returned, a guest assertion or an unexpected
 * exception ends the (sub)test with its report.
 */
static inline u64 apf_run_to_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	for (;;) {
		vcpu_run(vcpu);
		switch (get_ucall(vcpu, uc)) {
		case UCALL_SYNC:
		case UCALL_DONE:
			return uc->cmd;
		case UCALL_PRINTF:
			printf("# vCPU %u: %s", vcpu->id, uc->buffer);
			/* Seen even if the subtest is killed on its timeout. */
			fflush(stdout);
			continue;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(*uc);
			break;
		case UCALL_UNHANDLED:
			TEST_FAIL("vCPU %u: unexpected guest exception (vector 0x%lx, ec 0x%lx, valid_ec %lu)",
				  vcpu->id, uc->args[0], uc->args[1], uc->args[2]);
			break;
		default:
			TEST_FAIL("vCPU %u: unexpected exit %s",
				  vcpu->id, exit_reason_str(vcpu->run->exit_reason));
		}
	}
}

enum apf_child_result {
	APF_CHILD_EXITED,	/* *status holds its wait status */
	APF_CHILD_TIMED_OUT,	/* killed after timeout_s and reaped */
	APF_CHILD_UNKILLABLE,	/* still there 60 s after SIGKILL */
};

/*
 * Run fn(arg) in a child process (it exits KSFT_PASS when fn returns) and
 * wait for it at most timeout_s seconds, then kill it. name is only for the
 * message printed when it is killed.
 */
static inline enum apf_child_result apf_run_child(const char *name, void (*fn)(void *),
						  void *arg, unsigned int timeout_s,
						  int *status)
{
	struct timespec start, now;
	bool killed = false;
	pid_t pid, r;

	*status = 0;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: errno %d", errno);
	if (!pid) {
		fn(arg);
		fflush(stdout);
		_exit(KSFT_PASS);
	}

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return killed ? APF_CHILD_TIMED_OUT : APF_CHILD_EXITED;
		TEST_ASSERT(r == 0, "waitpid: errno %d", errno);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!killed && now.tv_sec - start.tv_sec >= timeout_s) {
			printf("# %s: still running after %us, killing it\n",
			       name, timeout_s);
			kill(pid, SIGKILL);
			killed = true;
		} else if (killed && now.tv_sec - start.tv_sec >= timeout_s + 60) {
			/* Stuck in the kernel: it cannot even die. */
			return APF_CHILD_UNKILLABLE;
		}
		usleep(20 * 1000);
	}
}

/*
 * Run fn(arg) in a child process and report one TAP result named name:
 * a failed TEST_ASSERT or guest assertion only fails this sub-test, and a
 * sub-test that does not finish within timeout_s seconds is killed and
 * reported as hung. The child exits 0 (pass), KSFT_SKIP or anything else.
 */
static inline int apf_run_subtest(const char *name, void (*fn)(void *),
				  void *arg, unsigned int timeout_s)
{
	int status;

	switch (apf_run_child(name, fn, arg, timeout_s, &status)) {
	case APF_CHILD_UNKILLABLE:
		ksft_test_result_fail("%s (hung in the kernel, unkillable)\n", name);
		return -1;
	case APF_CHILD_TIMED_OUT:
		ksft_test_result_fail("%s (timed out after %us)\n", name, timeout_s);
		return -1;
	case APF_CHILD_EXITED:
		break;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS) {
		ksft_test_result_pass("%s\n", name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_SKIP) {
		ksft_test_result_skip("%s\n", name);
		return 0;
	}
	if (WIFSIGNALED(status))
		ksft_test_result_fail("%s (killed by signal %d)\n", name, WTERMSIG(status));
	else
		ksft_test_result_fail("%s (exit status %d)\n", name, WEXITSTATUS(status));
	return -1;
}

/* ---- Host side: memory for EL0 tasks (apf_el0.h), served by userfaultfd */

#define APF_PTE_USER		BIT(6)	/* AP[1]: EL0 access */
#define APF_PTE_PXN		BIT(53)
#define APF_PTE_UXN		BIT(54)

/*
 * Add [gpa, gpa + size) as memslot @slot, identity mapped, as data that
 * EL0 may read and write and nothing may execute. Returns its host address.
 */
static inline u64 apf_el0_data_region(struct kvm_vm *vm, u64 gpa, u32 slot, u64 size)
{
	u64 gva, *pte;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, gpa, slot,
				    size / vm->page_size, 0);
	virt_map(vm, gpa, gpa, size / vm->page_size);
	for (gva = gpa; gva < gpa + size; gva += vm->page_size) {
		pte = virt_get_pte_hva(vm, gva);
		*pte |= APF_PTE_USER | APF_PTE_PXN;
		*pte &= ~APF_PTE_UXN;
	}
	return (u64)addr_gpa2hva(vm, gpa);
}

/* A new page of EL0-executable code holding @len bytes of @insns: its GVA. */
static inline u64 apf_el0_code_page(struct kvm_vm *vm, const void *insns, size_t len)
{
	u64 code = vm_alloc_page(vm), *pte;

	TEST_ASSERT(len <= vm->page_size, "EL0 code larger than a page");
	memcpy(addr_gva2hva(vm, code), insns, len);
	pte = virt_get_pte_hva(vm, code);
	*pte |= APF_PTE_USER;
	*pte &= ~APF_PTE_UXN;
	return code;
}

/*
 * Resolve the missing page at @addr (host-page aligned) with @len bytes
 * from @buf. EEXIST means another message for the same page (the worker's
 * and the blocked vCPU's) was resolved first; anything else (ENOENT: the
 * memory is being unmapped) is counted in *@errors. The waiters are woken
 * either way, so that nothing is left asleep.
 */
static inline void apf_uffd_copy(int uffd, u64 addr, const void *buf, u64 len, u64 *errors)
{
	struct uffdio_range range = { .start = addr, .len = len };
	struct uffdio_copy copy = {
		.dst = addr,
		.src = (u64)buf,
		.len = len,
	};

	if (ioctl(uffd, UFFDIO_COPY, &copy)) {
		if (errno != EEXIST)
			__atomic_add_fetch(errors, 1, __ATOMIC_RELAXED);
		ioctl(uffd, UFFDIO_WAKE, &range);
	}
}

/* A sub-test of apf_main(): its TAP name, body, argument and timeout. */
struct apf_subtest {
	const char *name;
	void (*fn)(void *);
	void *arg;
	unsigned int timeout_s;
};

/*
 * main() of a test made of sub-tests that all need the provider: each runs
 * in its own child with its own timeout (apf_run_subtest), one TAP line
 * each. Names on the command line select sub-tests by prefix; the others
 * are reported as skipped.
 */
static inline int apf_main(int argc, char *argv[], const struct apf_subtest *t, int n)
{
	int i, j, match;

	ksft_print_header();
	apf_force_el1_guests();
	apf_require_provider();
	ksft_set_plan(n);

	for (i = 0; i < n; i++) {
		for (j = 1, match = argc <= 1; j < argc; j++)
			match |= !strncmp(t[i].name, argv[j], strlen(argv[j]));
		if (!match) {
			ksft_test_result_skip("%s\n", t[i].name);
			continue;
		}
		apf_run_subtest(t[i].name, t[i].fn, t[i].arg, t[i].timeout_s);
	}
	ksft_finished();
	return 0;
}

/* Report one checked case: got == want. */
#define apf_report_eq(got, want, fmt, ...)					\
do {										\
	unsigned long long __g = (unsigned long long)(got);			\
	unsigned long long __w = (unsigned long long)(want);			\
	if (__g == __w)								\
		ksft_test_result_pass(fmt "\n", ##__VA_ARGS__);			\
	else									\
		ksft_test_result_fail(fmt " (got 0x%llx, want 0x%llx)\n",	\
				      ##__VA_ARGS__, __g, __w);			\
} while (0)

/*
 * Report one checked case: an ioctl that must fail (ret -1) with errno
 * one of e1, e2 (pass the same twice for a single errno).
 */
#define apf_report_errno(ret, e1, e2, fmt, ...)				\
do {										\
	int __r = (ret), __e = errno;						\
	if (__r == -1 && (__e == (e1) || __e == (e2)))				\
		ksft_test_result_pass(fmt "\n", ##__VA_ARGS__);			\
	else									\
		ksft_test_result_fail(fmt " (ret %d, errno %d %s, want %s)\n",	\
				      ##__VA_ARGS__, __r, __r ? __e : 0,	\
				      __r ? strerror(__e) : "-", #e1 "/" #e2);	\
} while (0)

/* ---- Benchmark helpers */

/*
 * The emulated host's clock, from apf_clock= on its kernel command line
 * (tools/run-host.sh): "icount" (1 ns per guest instruction, idle time
 * skipped: figures measure the code path), "icount-1cpu" (the same on a
 * one-CPU host) or "wall" (real time: figures
 * depend on the load of the machine running the emulator). buf keeps its
 * contents ("unknown") when the command line does not say.
 */
static inline void apf_read_clock(char *buf, size_t size)
{
	char line[2048], fmt[16], *p;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f || size < 2)
		goto out;
	snprintf(fmt, sizeof(fmt), "%%%zu[a-z0-9-]", size - 1);
	if (fgets(line, sizeof(line), f)) {
		p = strstr(line, "apf_clock=");
		if (p)
			sscanf(p + strlen("apf_clock="), fmt, buf);
	}
out:
	if (f)
		fclose(f);
}

/* ---- Module helpers */

#define APF_MODULE_NAME		"kvm_apf"
#define APF_MODULE_PATH		"/kvm_apf.ko"

static inline bool apf_module_loaded(void)
{
	return !access("/sys/module/" APF_MODULE_NAME, F_OK);
}

/* /sys/module/kvm_apf/refcnt, or -1 if the module is not loaded. */
static inline int apf_module_refcnt(void)
{
	char buf[32] = {};
	int fd, n;

	fd = open("/sys/module/" APF_MODULE_NAME "/refcnt", O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	return atoi(buf);
}

/*
 * The reference count once fault-ins of earlier VMs (each holds one until
 * its page arrives or its userfaultfd is closed) have drained: the first
 * value that stays the same for 1 s, within 60 s.
 */
static inline int apf_module_refcnt_settled(void)
{
	int prev = apf_module_refcnt(), cur, stable = 0, i;

	for (i = 0; i < 600 && stable < 10; i++) {
		usleep(100 * 1000);
		cur = apf_module_refcnt();
		stable = cur == prev ? stable + 1 : 0;
		prev = cur;
	}
	return prev;
}

/* Wait up to timeout_s for the reference count to be want; returns it. */
static inline int apf_module_refcnt_wait(int want, unsigned int timeout_s)
{
	unsigned int i;

	for (i = 0; i < timeout_s * 50 && apf_module_refcnt() != want; i++)
		usleep(20 * 1000);
	return apf_module_refcnt();
}

static inline int apf_delete_module(unsigned int flags)
{
	return syscall(__NR_delete_module, APF_MODULE_NAME, flags);
}

static inline int apf_load_module(void)
{
	int fd, ret;

	fd = open(APF_MODULE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = syscall(__NR_finit_module, fd, "", 0);
	close(fd);
	return ret;
}

#endif /* SELFTEST_KVM_APF_UTIL_H */
