// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_sdei: page-not-present delivered as an SDEI event (Arm DEN0054)
 * instead of the not-present PPI.
 *
 * The VMM enables KVM_CAP_ARM_ASYNC_PF with KVM_ARM_ASYNC_PF_NP_SDEI and no
 * not-present INTID; page-ready stays an interrupt (a PPI, or an SPI with
 * GET_READY as in apf_spi). The VM offers one private SDEI event,
 * 0x40400001. The guest registers its record and enables the feature as
 * before, then registers the event with the entry point apf_sdei_entry,
 * enables it and unmasks the PE (a PE starts masked).
 *
 * When an EL0 task (apf_el0.h) touches a remote page and the event can be
 * delivered, the host writes the token to the record's not_present_token
 * and enters the handler before the faulting ldr completes: PC = entry
 * point, PSTATE = EL1h with DAIF masked, SP = SP_EL1, x0 = event, x1 = the
 * registered argument, x2/x3 = the interrupted PC/PSTATE, x4-x30 as the
 * task had them. The entry is a small trampoline (below) that saves every
 * register and what it finds in PSTATE, calls apf_sdei_handler() (C, which
 * checks the entry state, takes the token and decides) and then issues the
 * completion itself:
 *
 *   EVENT_COMPLETE             the task's context comes back and its ldr
 *                              re-executes: it blocks in the host until the
 *                              page is in (its token is outstanding);
 *   EVENT_COMPLETE_AND_RESUME  resume at apf_sdei_resume, at EL1h with DAIF
 *                              masked, ELR/SPSR_EL1 = the interrupted PC and
 *                              PSTATE, as if an IRQ had been taken from the
 *                              task: the stub checks that, restores the EL1
 *                              DAIF and returns to apf_run_el0's caller: the
 *                              task sleeps at its ldr, the "other task" (the
 *                              vCPU's main loop) runs until page-ready.
 *
 * The EL0 task sets x2-x30 to known values (movz) before its ldr, with
 * PSTATE.N and C set, so that the handler can tell the interrupted context
 * from what the host wrote, and the svc handler that ends the task can
 * check that nothing was lost on the way back.
 *
 * Sub-tests (each in its own process and VM(s), one TAP line each):
 *   discovery          VMM: NP_SDEI with a not-present INTID, or without
 *                      ENABLE, is EINVAL; CONFIG reads NP_SDEI back; the
 *                      SDEI attribute exists exactly with NP_SDEI. Guest:
 *                      SDEI_VERSION 1.1 (NOT_SUPPORTED on a PPI VM),
 *                      FEATURES, GET_INFO of the event and of others,
 *                      GET_CONFIG's not-present INTID 0
 *   calls              every call outside a handler and its bad inputs,
 *                      each answer checked against rust/logic/sdei.rs
 *   main_flow          1 vCPU, PPI page-ready: 4 tasks fault one after the
 *                      other, each enters the handler and sleeps (resume);
 *                      the other task runs; every page-ready arrives, every
 *                      task resumes and reads its data
 *   main_flow_spi_2_vcpus  the same on 2 vCPUs, page-ready on SPI 40
 *   masked             PE masked since reset, masked again with PE_MASK,
 *                      event disabled, event unregistered: the fault is
 *                      synchronous (no entry, no token, the task reads its
 *                      data, no page-ready); then the control: entered
 *   fault_in_handler   (NOTIFY_EL1) the handler itself touches a remote
 *                      page: no nested entry, the access blocks; then
 *                      COMPLETE, the task's access re-executes
 *   complete           EVENT_COMPLETE: EVENT_CONTEXT and the calls allowed
 *                      inside a handler; the task's ldr re-executes, blocks
 *                      until the page is in, finds x0-x30 as it set them;
 *                      the event is deliverable again afterwards
 *   reset              PRIVATE_RESET unregisters; a VMM vCPU reset
 *                      (KVM_ARM_VCPU_INIT) taken inside the handler leaves
 *                      the event unregistered, not running, the PE masked
 *   migration          KVM_ARM_VCPU_ASYNC_PF_SDEI read while masked,
 *                      unmasked and inside the handler (the context), set
 *                      back unchanged, refused (EINVAL) when inconsistent,
 *                      a masked state set by the VMM seen by the guest;
 *                      ENXIO on a PPI VM and without the capability
 *   restore_mid_flow   the SDEI and async PF state saved and restored with
 *                      two tasks asleep: one WAKE_ALL, the event still
 *                      registered, every task reads its data
 */
#include <pthread.h>
#include <linux/sizes.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "apf_util.h"
#include "apf_el0.h"
#include "gic.h"
#include "userfaultfd_util.h"

/* kvm_arm_async_pf_sdei.flags (rust/logic/sdei.rs, SdeiSaved) */
#define SDEI_ST_REGISTERED	(1ULL << 0)
#define SDEI_ST_ENABLED		(1ULL << 1)
#define SDEI_ST_RUNNING		(1ULL << 2)
#define SDEI_ST_PENDING		(1ULL << 3)
#define SDEI_ST_MASKED		(1ULL << 4)
#define SDEI_ST_CONTEXT		(1ULL << 5)

/* ---- The test's layout */

#define TEST_SLOT		10
#define TEST_GPA		0xc0000000UL
#define MAX_VCPUS		2
#define MAX_PAGES_PER_VCPU	5
#define MAX_PAGES		(MAX_VCPUS * MAX_PAGES_PER_VCPU)
#define MAX_EVENTS		16
#define PATTERN			0x6996966996696996UL
#define SPI_INTID		40	/* the selftests' vGIC has 64 INTIDs */


/* The argument registered with the event: x1 at entry. */
#define ENTRY_ARG(cpu)		(0xa5f0c0de00000100UL + (cpu))

/*
 * The EL0 task: movz x2..x30 with EL0_REG_VAL(n), ldr x0, [x1], svc #0.
 * It runs with PSTATE.N and C set: neither is 0 at the fault, both are 0
 * at the handler's entry.
 */
#define EL0_FIRST_REG		2
#define EL0_LAST_REG		30
#define EL0_LDR_INDEX		(EL0_LAST_REG - EL0_FIRST_REG + 1)
#define EL0_CODE_WORDS		(EL0_LDR_INDEX + 2)
#define EL0_REG_VAL(n)		(0x5d00UL + (n))
#define EL0_SPSR		((u64)(PSR_MODE_EL0t | PSR_N_BIT | PSR_C_BIT))
/* SP_EL0 while the task runs: nothing may change it. */
#define TASK_SP_EL0		0x5e5e5e5e0UL

#define DAIF_MASKED		((u64)(PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT))

/* Guest syncs: args[0] says which. */
#define SYNC_RESULT		1	/* args[1..4]: the mode's counters */
#define SYNC_HOST		2	/* args[1]: a host step */

enum host_step {
	STEP_MIG_MASKED = 1,	/* registered and enabled, PE masked */
	STEP_MIG_UNMASKED,	/* PE unmasked: set, refused sets, VMM masks */
	STEP_MIG_IN_HANDLER,	/* inside the handler: the context */
	STEP_RESET,		/* inside the handler: the VMM resets the vCPU */
	STEP_RESTORE,		/* two tasks asleep: save and restore */
};

enum mode {
	MODE_DISCOVERY,
	MODE_DISCOVERY_PPI,
	MODE_CALLS,
	MODE_FLOW,
	MODE_MASKED,
	MODE_FAULT_IN_HANDLER,
	MODE_COMPLETE,
	MODE_RESET,
	MODE_MIGRATE,
	MODE_RESTORE,
};

/* What the handler does at its next entry. */
enum action {
	ACT_NONE,		/* an entry is a failure */
	ACT_SLEEP,		/* COMPLETE_AND_RESUME: the task sleeps */
	ACT_COMPLETE,		/* calls inside the handler, then COMPLETE */
	ACT_FAULT_IN_HANDLER,	/* touch the next page, then COMPLETE */
	ACT_SYNC_SLEEP,		/* sync (the VMM reads the state), then sleep */
	ACT_SYNC_RESET,		/* sync: the VMM resets the vCPU, no return */
};

/* ---- Guest side */

struct guest_cfg {
	u64 record_gpa[MAX_VCPUS];
	u64 code_gva;			/* the task's first instruction */
	u64 ldr_gva;			/* its ldr: where it faults */
	u64 page_gva[MAX_PAGES];	/* identity mapped: also the IPA */
	u64 token[MAX_PAGES];		/* host-page-aligned IPA */
	u64 nr_pages;			/* per vCPU */
	u64 enable_flags;		/* APF ENABLE argument */
	u64 wait_ms;
	u32 ready_intid;
	u32 nr_vcpus;
	u32 mode;
	u32 sdei_vm;			/* the VM was enabled with NP_SDEI */
};

static struct guest_cfg cfg;

struct vstate {
	struct apf_record record;
	u64 mpidr;			/* MPIDR_EL1 affinity */
	u64 vbar;			/* VBAR_EL1 after setup */
	volatile u64 setup_done;
	/* page-ready */
	volatile u64 ready_count;	/* page-ready for this vCPU's tokens */
	volatile u64 ready_token[MAX_EVENTS];
	volatile u64 wake_alls;
	volatile u64 ready_at_wake_all;
	volatile u64 ready_spurious;
	volatile u64 handled_elsewhere;
	volatile u64 np_ppi;		/* not-present PPIs (a PPI VM only) */
	/* the current EL0 task */
	volatile u64 cur_page;		/* index in cfg.page_gva */
	volatile u64 fresh;		/* started at code_gva: x2-x30 known */
	volatile u64 expect_sp;		/* SP_EL1 while it runs */
	volatile u64 el1_daif;
	volatile u64 preempted;		/* put to sleep by the handler */
	volatile u64 sleeping_pc;
	volatile u64 svc_regs[31];	/* at the task's svc */
	volatile u64 svc_sp;
	volatile u64 svc_time;
	/* the SDEI handler */
	volatile u64 action;
	volatile u64 in_handler;
	volatile u64 entries;
	volatile u64 entry_token[MAX_EVENTS];
	volatile u64 entry_time;
	volatile u64 resumed;		/* runs of the resume stub */
	volatile u64 handler_read;	/* fault_in_handler: the handler's read */
} __aligned(64);

static struct vstate vs[MAX_VCPUS];

static inline struct vstate *this_vs(void)
{
	return &vs[guest_get_vcpuid()];
}

/*
 * What the trampoline saved at the handler's entry: x0-x30, the SP it was
 * entered with, and PSTATE's NZCV, DAIF, CurrentEL and SPSel.
 */
struct sdei_frame {
	u64 x[31];
	u64 sp;
	u64 nzcv;
	u64 daif;
	u64 currentel;
	u64 spsel;
};

_Static_assert(sizeof(struct sdei_frame) == 288, "the trampoline's frame");

u64 apf_sdei_handler(u64 event, u64 arg, u64 pc, u64 pstate, struct sdei_frame *f);
u64 apf_sdei_resumed(u64 elr, u64 spsr, u64 daif, u64 sp, u64 *x, u64 nzcv);
void apf_sdei_completion_failed(u64 ret, u64 resume);
extern char apf_sdei_entry[], apf_sdei_resume[];

/*
 * apf_sdei_entry: the registered entry point. Saves x0-x30 and the entry
 * PSTATE below SP (SP_EL1 of the interrupted task), calls
 * apf_sdei_handler(x0, x1, x2, x3, frame), restores what the C code may
 * have clobbered outside x0-x17 (x18, x29, x30; x19-x28 are callee-saved)
 * and SP, and completes: COMPLETE_AND_RESUME at the address the handler
 * returned, or COMPLETE if it returned 0. A completion that returns failed.
 *
 * apf_sdei_resume: the resume address. x0-x17 are the task's again: saved
 * for apf_sdei_resumed() with ELR/SPSR_EL1, DAIF, SP and NZCV; then the
 * caller's EL1 DAIF is restored and apf_run_el0 returns to its caller, as
 * apf_spi's not-present handler makes it do for a sleeping task.
 */
asm(
"	.pushsection .text\n"
"	.balign	4\n"
"	.global	apf_sdei_entry\n"
"	.type	apf_sdei_entry, %function\n"
"apf_sdei_entry:\n"
"	sub	sp, sp, #288\n"
"	stp	x0, x1, [sp, #0]\n"
"	stp	x2, x3, [sp, #16]\n"
"	stp	x4, x5, [sp, #32]\n"
"	stp	x6, x7, [sp, #48]\n"
"	stp	x8, x9, [sp, #64]\n"
"	stp	x10, x11, [sp, #80]\n"
"	stp	x12, x13, [sp, #96]\n"
"	stp	x14, x15, [sp, #112]\n"
"	stp	x16, x17, [sp, #128]\n"
"	stp	x18, x19, [sp, #144]\n"
"	stp	x20, x21, [sp, #160]\n"
"	stp	x22, x23, [sp, #176]\n"
"	stp	x24, x25, [sp, #192]\n"
"	stp	x26, x27, [sp, #208]\n"
"	stp	x28, x29, [sp, #224]\n"
"	add	x9, sp, #288\n"
"	stp	x30, x9, [sp, #240]\n"
"	mrs	x10, nzcv\n"
"	mrs	x11, daif\n"
"	stp	x10, x11, [sp, #256]\n"
"	mrs	x12, CurrentEL\n"
"	mrs	x13, SPSel\n"
"	stp	x12, x13, [sp, #272]\n"
"	mov	x4, sp\n"
"	bl	apf_sdei_handler\n"
"	mov	x1, x0\n"
"	ldr	x18, [sp, #144]\n"
"	ldp	x29, x30, [sp, #232]\n"
"	add	sp, sp, #288\n"
"	cbz	x1, 1f\n"
"	movz	x0, #0x0026\n"		/* EVENT_COMPLETE_AND_RESUME */
"	movk	x0, #0xc400, lsl #16\n"
"	hvc	#0\n"
"	b	2f\n"
"1:	movz	x0, #0x0025\n"		/* EVENT_COMPLETE */
"	movk	x0, #0xc400, lsl #16\n"
"	hvc	#0\n"
"2:	bl	apf_sdei_completion_failed\n"
"	b	.\n"
"	.size	apf_sdei_entry, . - apf_sdei_entry\n"
"	.balign	4\n"
"	.global	apf_sdei_resume\n"
"	.type	apf_sdei_resume, %function\n"
"apf_sdei_resume:\n"
"	sub	sp, sp, #144\n"
"	stp	x0, x1, [sp, #0]\n"
"	stp	x2, x3, [sp, #16]\n"
"	stp	x4, x5, [sp, #32]\n"
"	stp	x6, x7, [sp, #48]\n"
"	stp	x8, x9, [sp, #64]\n"
"	stp	x10, x11, [sp, #80]\n"
"	stp	x12, x13, [sp, #96]\n"
"	stp	x14, x15, [sp, #112]\n"
"	stp	x16, x17, [sp, #128]\n"
"	mrs	x5, nzcv\n"
"	mrs	x0, elr_el1\n"
"	mrs	x1, spsr_el1\n"
"	mrs	x2, daif\n"
"	add	x3, sp, #144\n"
"	mov	x4, sp\n"
"	bl	apf_sdei_resumed\n"
"	add	sp, sp, #144\n"
"	msr	daif, x0\n"
"	b	apf_el0_return\n"
"	.size	apf_sdei_resume, . - apf_sdei_resume\n"
"	.popsection\n");

static const char *sdei_name(u32 fn)
{
	static const char * const names[SDEI_NR_FUNCS] = {
		"VERSION", "EVENT_REGISTER", "EVENT_ENABLE", "EVENT_DISABLE",
		"EVENT_CONTEXT", "EVENT_COMPLETE", "EVENT_COMPLETE_AND_RESUME",
		"EVENT_UNREGISTER", "EVENT_STATUS", "EVENT_GET_INFO",
		"EVENT_ROUTING_SET", "PE_MASK", "PE_UNMASK", "INTERRUPT_BIND",
		"INTERRUPT_RELEASE", "EVENT_SIGNAL", "FEATURES", "PRIVATE_RESET",
		"SHARED_RESET",
	};

	return fn < SDEI_NR_FUNCS ? names[fn] : "(reserved)";
}

static struct arm_smccc_res sdei_call_id(u32 fid, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
	struct arm_smccc_res res;

	smccc_hvc(fid, a1, a2, a3, a4, a5, 0, 0, &res);
	return res;
}

/*
 * One SDEI call (SMC64 id 0xC4000020 + fn) whose x0 must be want and x1-x3
 * zero (every answer of rust/logic/sdei.rs but a completion).
 */
#define SDEI_EXPECT_ID(fid, name, want, p1, p2, p3, p4, p5)			\
do {										\
	struct arm_smccc_res __r = sdei_call_id(fid, p1, p2, p3, p4, p5);	\
	u64 __w = (u64)(want);							\
	__GUEST_ASSERT(__r.a0 == __w && !(__r.a1 | __r.a2 | __r.a3),		\
		       "vCPU %u: SDEI %s(0x%lx, 0x%lx, 0x%lx, 0x%lx): x0 0x%lx (x1..x3 0x%lx 0x%lx 0x%lx), want 0x%lx", \
		       guest_get_vcpuid(), name, (u64)(p1), (u64)(p2), (u64)(p3), \
		       (u64)(p4), __r.a0, __r.a1, __r.a2, __r.a3, __w);		\
} while (0)

#define SDEI_EXPECT(want, fn, p1, p2, p3, p4, p5)				\
	SDEI_EXPECT_ID(APF_SDEI_FN(fn), sdei_name(fn), want, p1, p2, p3, p4, p5)

#define SDEI_EXPECT1(want, fn, p1)	SDEI_EXPECT(want, fn, p1, 0, 0, 0, 0)
#define SDEI_EXPECT0(want, fn)		SDEI_EXPECT(want, fn, 0, 0, 0, 0, 0)

static u64 expected(u64 page)
{
	return cfg.token[page] ^ PATTERN;
}

static u64 ms_to_cycles(u64 ms)
{
	return read_sysreg(cntfrq_el0) * ms / 1000;
}

static u64 cycles_to_ms(u64 cycles)
{
	return cycles * 1000 / read_sysreg(cntfrq_el0);
}

static void guest_settle(u64 ms)
{
	u64 start = read_sysreg(cntvct_el0), limit = ms_to_cycles(ms);

	while (read_sysreg(cntvct_el0) - start < limit)
		cpu_relax();
}

/* Spin until *p >= want, at most wait_ms; returns the iterations. */
static u64 wait_for(volatile u64 *p, u64 want, const char *what)
{
	u64 start = read_sysreg(cntvct_el0), limit = ms_to_cycles(cfg.wait_ms);
	u64 iterations = 0;

	while (*p < want) {
		iterations++;
		__GUEST_ASSERT(read_sysreg(cntvct_el0) - start < limit,
			       "vCPU %u: %s: %lu after %lu ms, want %lu (entries %lu, ready %lu, WAKE_ALL %lu)",
			       guest_get_vcpuid(), what, *p, cfg.wait_ms, want,
			       this_vs()->entries, this_vs()->ready_count,
			       this_vs()->wake_alls);
	}
	return iterations;
}

/*
 * Run the task on page @page from @pc (cfg.code_gva: a fresh task that
 * sets x2-x30; else a sleeping task resumed at its ldr). Returns its x0
 * when it ends with its svc; v->preempted says it was put to sleep.
 */
static noinline u64 run_task(struct vstate *v, u64 page, u64 pc)
{
	u64 sp, val;

	v->cur_page = page;
	v->fresh = pc == cfg.code_gva;
	v->el1_daif = read_sysreg(daif);
	v->preempted = 0;
	write_sysreg(TASK_SP_EL0, sp_el0);
	/* apf_run_el0 pushes a 96-byte frame: SP_EL1 while the task runs. */
	asm volatile("mov %0, sp" : "=r"(sp));
	v->expect_sp = sp - 96;
	val = apf_run_el0(pc, cfg.page_gva[page], EL0_SPSR);
	/* Not a sibling call: apf_run_el0 runs on this frame's SP. */
	asm volatile("" : "+r"(val));
	return val;
}

static void back_to_el1(struct ex_regs *regs, struct vstate *v)
{
	regs->pc = (u64)apf_el0_return;
	regs->pstate = PSR_MODE_EL1h | v->el1_daif;
}

static void el0_svc_handler(struct ex_regs *regs)
{
	struct vstate *v = this_vs();
	int i;

	for (i = 0; i < 31; i++)
		v->svc_regs[i] = regs->regs[i];
	v->svc_sp = regs->sp;
	v->svc_time = read_sysreg(cntvct_el0);
	back_to_el1(regs, v);
}

/* A task that ran to its svc without sleeping: its data and registers. */
static void check_task_done(struct vstate *v, u64 page, u64 val, const char *what)
{
	u64 i;

	__GUEST_ASSERT(!v->preempted, "vCPU %u page %lu (%s): the task was put to sleep",
		       guest_get_vcpuid(), page, what);
	__GUEST_ASSERT(val == expected(page), "vCPU %u page %lu (%s): read 0x%lx, want 0x%lx",
		       guest_get_vcpuid(), page, what, val, expected(page));
	/* The control of expect_sp: the svc came in on the same SP_EL1. */
	__GUEST_ASSERT(v->svc_sp == v->expect_sp, "vCPU %u: svc on SP_EL1 0x%lx, expected 0x%lx",
		       guest_get_vcpuid(), v->svc_sp, v->expect_sp);
	if (!v->fresh)
		return;
	__GUEST_ASSERT(v->svc_regs[1] == cfg.page_gva[page], "vCPU %u page %lu (%s): x1 0x%lx at the svc",
		       guest_get_vcpuid(), page, what, v->svc_regs[1]);
	for (i = EL0_FIRST_REG; i <= EL0_LAST_REG; i++)
		__GUEST_ASSERT(v->svc_regs[i] == EL0_REG_VAL(i),
			       "vCPU %u page %lu (%s): x%lu = 0x%lx at the svc, the task set 0x%lx",
			       guest_get_vcpuid(), page, what, i, v->svc_regs[i], EL0_REG_VAL(i));
}

/* Wake the task of @v sleeping on @tok (all of them for WAKE_ALL). */
static void wake(struct vstate *v, u64 tok)
{
	u64 n = v->ready_count;

	if (tok == APF_WAKE_ALL) {
		v->ready_at_wake_all = n;
		dmb(ish);
		v->wake_alls++;
		return;
	}
	if (n < MAX_EVENTS)
		v->ready_token[n] = tok;
	/* The token before the count: the vCPU reads them in that order. */
	dmb(ish);
	v->ready_count = n + 1;
}

static struct vstate *vs_of_mpidr(u64 mpidr)
{
	u32 i;

	for (i = 0; i < cfg.nr_vcpus; i++)
		if (vs[i].mpidr == mpidr)
			return &vs[i];
	return NULL;
}

/* The SPI handler of ABI 1.1 (apf_spi.c): any vCPU, for any vCPU. */
static void vm_page_ready(struct vstate *self)
{
	struct arm_smccc_res res;
	bool fetched = false;
	struct vstate *v;

	for (;;) {
		apf_hvc(APF_OP_GET_READY, 0, &res);
		if (res.a0 != APF_SUCCESS) {
			__GUEST_ASSERT(res.a0 == APF_NOT_REQUIRED, "GET_READY: 0x%lx", res.a0);
			break;
		}
		fetched = true;
		v = vs_of_mpidr(res.a2);
		__GUEST_ASSERT(v, "GET_READY named MPIDR 0x%lx: no such vCPU", res.a2);
		if (v != self)
			v->handled_elsewhere++;
		wake(v, res.a1);
		if (!res.a3)
			break;
	}
	if (!fetched)
		self->ready_spurious++;
}

static void guest_irq_handler(struct ex_regs *regs)
{
	struct vstate *v = this_vs();
	u32 intid = gic_get_and_ack_irq();
	u64 tok;

	if (intid == IAR_SPURIOUS)
		return;

	if (intid == APF_NP_INTID) {
		/* Enabled on every VM: on an NP_SDEI VM nothing may raise it. */
		__GUEST_ASSERT(!cfg.sdei_vm, "vCPU %u: not-present PPI %u on an NP_SDEI VM",
			       guest_get_vcpuid(), intid);
		apf_take_not_present(&v->record);
		v->np_ppi++;
	} else if (intid == cfg.ready_intid && cfg.ready_intid >= 32) {
		vm_page_ready(v);
	} else if (intid == cfg.ready_intid) {
		tok = apf_take_ready(&v->record, NULL);
		if (tok)
			wake(v, tok);
		else
			v->ready_spurious++;
	} else {
		GUEST_FAIL("unexpected interrupt %u", intid);
	}
	gic_set_eoi(intid);
}

static bool has_pan(void)
{
	return (read_sysreg(id_aa64mmfr1_el1) >> 20) & 0xf;
}

static u64 read_pan(void)
{
	u64 val;

	asm volatile("mrs %0, s3_0_c4_c2_3" : "=r"(val));
	return val;
}

/* EVENT_CONTEXT(i) inside the handler: the task's registers. */
static void check_context(struct vstate *v)
{
	u64 i, want;

	for (i = 0; i <= 17; i++) {
		if (i == 0)
			want = cfg.code_gva;	/* apf_run_el0's pc argument */
		else if (i == 1)
			want = cfg.page_gva[v->cur_page];
		else
			want = EL0_REG_VAL(i);
		SDEI_EXPECT1(want, SDEI_EVENT_CONTEXT, i);
	}
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_EVENT_CONTEXT, 18);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_EVENT_CONTEXT, 0xffffffffUL);
}

/* The calls inside a handler that do not end it (rust/logic/sdei.rs). */
static void handler_calls(struct vstate *v, u32 cpu)
{
	u64 running = SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED | SDEI_STATUS_RUNNING;

	check_context(v);
	SDEI_EXPECT1(running, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
	SDEI_EXPECT(SDEI_DENIED, SDEI_EVENT_REGISTER, APF_SDEI_EVENT, (u64)apf_sdei_entry,
		    ENTRY_ARG(cpu), 0, 0);
	/* Enabling an enabled event is allowed while it runs. */
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_ENABLE, APF_SDEI_EVENT);
	/* A resume address that cannot be code: DENIED, the handler goes on. */
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_COMPLETE_AND_RESUME, 0);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_COMPLETE_AND_RESUME, (u64)apf_sdei_resume | 1);
	SDEI_EXPECT1(running, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
}

/*
 * Called by apf_sdei_entry with x0-x3 as the host entered it and the saved
 * frame; returns the resume address, or 0 for EVENT_COMPLETE.
 */
u64 apf_sdei_handler(u64 event, u64 arg, u64 pc, u64 pstate, struct sdei_frame *f)
{
	u32 cpu = guest_get_vcpuid();
	struct vstate *v = &vs[cpu];
	u64 n = v->entries, tok, i, elr, val;

	__GUEST_ASSERT(!v->in_handler, "vCPU %u: nested SDEI entry at PC 0x%lx (entry %lu)",
		       cpu, pc, n);
	v->in_handler = 1;
	v->entry_time = read_sysreg(cntvct_el0);
	v->entries = n + 1;
	__GUEST_ASSERT(v->action != ACT_NONE, "vCPU %u: SDEI entry (PC 0x%lx) where none may happen",
		       cpu, pc);

	/* x0-x3 as DEN0054 enters a handler. */
	__GUEST_ASSERT(event == APF_SDEI_EVENT, "vCPU %u entry %lu: x0 0x%lx, want the event 0x%lx",
		       cpu, n, event, APF_SDEI_EVENT);
	__GUEST_ASSERT(arg == ENTRY_ARG(cpu), "vCPU %u entry %lu: x1 0x%lx, want the registered argument 0x%lx",
		       cpu, n, arg, ENTRY_ARG(cpu));
	__GUEST_ASSERT(pc == cfg.ldr_gva, "vCPU %u entry %lu: x2 0x%lx, want the faulting ldr at 0x%lx",
		       cpu, n, pc, cfg.ldr_gva);
	__GUEST_ASSERT(pstate == EL0_SPSR, "vCPU %u entry %lu: x3 0x%lx, want the task's PSTATE 0x%lx",
		       cpu, n, pstate, EL0_SPSR);

	/* PSTATE: EL1h, D, A, I, F masked, everything else 0. */
	__GUEST_ASSERT(f->currentel == (1 << 2), "vCPU %u entry %lu: CurrentEL 0x%lx, want EL1",
		       cpu, n, f->currentel);
	__GUEST_ASSERT(f->spsel == 1, "vCPU %u entry %lu: SPSel %lu, want 1 (EL1h)", cpu, n, f->spsel);
	__GUEST_ASSERT(f->daif == DAIF_MASKED, "vCPU %u entry %lu: DAIF 0x%lx, want 0x%lx",
		       cpu, n, f->daif, DAIF_MASKED);
	__GUEST_ASSERT(f->nzcv == 0, "vCPU %u entry %lu: NZCV 0x%lx, want 0 (the task had 0x%lx)",
		       cpu, n, f->nzcv, EL0_SPSR & 0xf0000000UL);
	if (has_pan())
		__GUEST_ASSERT(read_pan() == 0, "vCPU %u entry %lu: PAN 0x%lx, want 0",
			       cpu, n, read_pan());
	/* SP = SP_EL1 as the task left it, as for an exception from EL0. */
	__GUEST_ASSERT(f->sp == v->expect_sp, "vCPU %u entry %lu: SP 0x%lx, want SP_EL1 0x%lx",
		       cpu, n, f->sp, v->expect_sp);

	/* x4-x30 as the task had them; SP_EL0 and EL1 registers untouched. */
	if (v->fresh) {
		for (i = 4; i <= 30; i++)
			__GUEST_ASSERT(f->x[i] == EL0_REG_VAL(i),
				       "vCPU %u entry %lu: x%lu 0x%lx at entry, the task had 0x%lx",
				       cpu, n, i, f->x[i], EL0_REG_VAL(i));
	}
	__GUEST_ASSERT(read_sysreg(sp_el0) == TASK_SP_EL0, "vCPU %u entry %lu: SP_EL0 0x%lx, want 0x%lx",
		       cpu, n, read_sysreg(sp_el0), TASK_SP_EL0);
	__GUEST_ASSERT(read_sysreg(vbar_el1) == v->vbar, "vCPU %u entry %lu: VBAR_EL1 0x%lx, was 0x%lx",
		       cpu, n, read_sysreg(vbar_el1), v->vbar);
	/* What apf_run_el0's eret left (or an IRQ taken from the task). */
	elr = read_sysreg(elr_el1);
	__GUEST_ASSERT(read_sysreg(spsr_el1) == EL0_SPSR && elr >= cfg.code_gva && elr <= cfg.ldr_gva,
		       "vCPU %u entry %lu: ELR_EL1 0x%lx SPSR_EL1 0x%lx: not the task's (an exception was injected?)",
		       cpu, n, elr, read_sysreg(spsr_el1));
	__GUEST_ASSERT(read_sysreg(far_el1) != cfg.page_gva[v->cur_page],
		       "vCPU %u entry %lu: FAR_EL1 holds the faulting address: an abort was injected", cpu, n);

	/* The token, as the not-present PPI handler takes it. */
	tok = apf_take_not_present(&v->record);
	if (n < MAX_EVENTS)
		v->entry_token[n] = tok;
	__GUEST_ASSERT(tok == cfg.token[v->cur_page],
		       "vCPU %u entry %lu: not_present_token 0x%lx, want 0x%lx (page %lu)",
		       cpu, n, tok, cfg.token[v->cur_page], v->cur_page);

	switch (v->action) {
	case ACT_SYNC_RESET:
		/* The VMM resets the vCPU here: it restarts elsewhere. */
		GUEST_SYNC2(SYNC_HOST, STEP_RESET);
		GUEST_FAIL("vCPU %u: not reset by the VMM", cpu);
		break;
	case ACT_SYNC_SLEEP:
		GUEST_SYNC2(SYNC_HOST, STEP_MIG_IN_HANDLER);
		SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED | SDEI_STATUS_RUNNING,
			     SDEI_EVENT_STATUS, APF_SDEI_EVENT);
		check_context(v);
		/* fall through */
	case ACT_SLEEP:
		v->sleeping_pc = pc;
		v->preempted = 1;
		v->in_handler = 0;
		return (u64)apf_sdei_resume;
	case ACT_COMPLETE:
		handler_calls(v, cpu);
		break;
	case ACT_FAULT_IN_HANDLER:
		/* EL1 with NOTIFY_EL1, but the handler runs: no entry. */
		val = READ_ONCE(*(volatile u64 *)cfg.page_gva[v->cur_page + 1]);
		v->handler_read = val;
		__GUEST_ASSERT(!READ_ONCE(v->record.not_present_token),
			       "vCPU %u: the handler's own fault was announced: token 0x%lx",
			       cpu, v->record.not_present_token);
		SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED | SDEI_STATUS_RUNNING,
			     SDEI_EVENT_STATUS, APF_SDEI_EVENT);
		break;
	default:
		GUEST_FAIL("vCPU %u: bad action %lu", cpu, v->action);
	}
	v->in_handler = 0;
	return 0;
}

/* The resume stub: as if an IRQ had been taken from the task. */
u64 apf_sdei_resumed(u64 elr, u64 spsr, u64 daif, u64 sp, u64 *x, u64 nzcv)
{
	u32 cpu = guest_get_vcpuid();
	struct vstate *v = &vs[cpu];
	u64 i;

	v->resumed++;
	__GUEST_ASSERT(elr == v->sleeping_pc, "vCPU %u resume: ELR_EL1 0x%lx, want the interrupted PC 0x%lx",
		       cpu, elr, v->sleeping_pc);
	__GUEST_ASSERT(spsr == EL0_SPSR, "vCPU %u resume: SPSR_EL1 0x%lx, want the interrupted PSTATE 0x%lx",
		       cpu, spsr, EL0_SPSR);
	__GUEST_ASSERT(daif == DAIF_MASKED, "vCPU %u resume: DAIF 0x%lx, want 0x%lx", cpu, daif, DAIF_MASKED);
	__GUEST_ASSERT(nzcv == 0, "vCPU %u resume: NZCV 0x%lx, want 0", cpu, nzcv);
	__GUEST_ASSERT(sp == v->expect_sp, "vCPU %u resume: SP 0x%lx, want SP_EL1 0x%lx",
		       cpu, sp, v->expect_sp);
	if (v->fresh) {
		__GUEST_ASSERT(x[0] == cfg.code_gva && x[1] == cfg.page_gva[v->cur_page],
			       "vCPU %u resume: x0 0x%lx x1 0x%lx, not the task's", cpu, x[0], x[1]);
		for (i = EL0_FIRST_REG; i <= 17; i++)
			__GUEST_ASSERT(x[i] == EL0_REG_VAL(i),
				       "vCPU %u resume: x%lu 0x%lx, the task had 0x%lx (x0-x17 are restored)",
				       cpu, i, x[i], EL0_REG_VAL(i));
	}
	return v->el1_daif;
}

void apf_sdei_completion_failed(u64 ret, u64 resume)
{
	GUEST_FAIL("vCPU %u: EVENT_COMPLETE%s returned 0x%lx",
		   guest_get_vcpuid(), resume ? "_AND_RESUME" : "", ret);
}

/* Register, enable, unmask: the event can be entered. */
static void sdei_register(u32 cpu)
{
	SDEI_EXPECT(SDEI_SUCCESS, SDEI_EVENT_REGISTER, APF_SDEI_EVENT, (u64)apf_sdei_entry,
		    ENTRY_ARG(cpu), 0, 0);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_ENABLE, APF_SDEI_EVENT);
}

static void sdei_setup(u32 cpu)
{
	sdei_register(cpu);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
}

static void guest_setup(u32 cpu)
{
	struct vstate *v = &vs[cpu];
	struct arm_smccc_res res;
	u32 i;

	v->mpidr = read_sysreg(mpidr_el1) & APF_MPIDR_AFF_MASK;
	v->vbar = read_sysreg(vbar_el1);
	gic_init(GIC_V3, cfg.nr_vcpus);
	gic_irq_enable(APF_NP_INTID);
	gic_irq_enable(cfg.ready_intid);
	if (cfg.ready_intid >= 32)
		gic_irq_set_config(cfg.ready_intid, true);
	local_irq_enable();

	apf_hvc(APF_OP_GET_CONFIG, 0, &res);
	GUEST_ASSERT_EQ(res.a0, APF_SUCCESS);
	__GUEST_ASSERT(res.a1 == (cfg.sdei_vm ? 0 : APF_NP_INTID),
		       "GET_CONFIG: not-present INTID %lu on a%s VM", res.a1,
		       cfg.sdei_vm ? "n NP_SDEI" : " PPI");
	GUEST_ASSERT_EQ(res.a2, cfg.ready_intid);
	GUEST_ASSERT_EQ(res.a3, 64);

	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_SET_RECORD, cfg.record_gpa[cpu]), APF_SUCCESS);
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_ENABLE, cfg.enable_flags), APF_SUCCESS);
	dmb(ish);
	v->setup_done = 1;
	/* Every vCPU's MPIDR is known before any page-ready is handled. */
	for (i = 0; i < cfg.nr_vcpus; i++)
		wait_for(&vs[i].setup_done, 1, "setup of the other vCPUs");
}

/* Each of @n ready tokens from @from on is one of the vCPU's pages, once. */
static void check_ready_tokens(struct vstate *v, u32 cpu, u64 from, u64 n)
{
	u64 seen = 0, i, j, base = cpu * cfg.nr_pages;

	for (j = from; j < from + n && j < MAX_EVENTS; j++) {
		for (i = 0; i < cfg.nr_pages; i++)
			if (v->ready_token[j] == cfg.token[base + i])
				break;
		__GUEST_ASSERT(i < cfg.nr_pages, "vCPU %u: ready token 0x%lx is none of its pages",
			       cpu, v->ready_token[j]);
		__GUEST_ASSERT(!(seen & BIT(i)), "vCPU %u: page %lu readied twice", cpu, i);
		seen |= BIT(i);
	}
}

static void guest_discovery(struct vstate *v)
{
	u64 ev = APF_SDEI_EVENT;

	SDEI_EXPECT0(SDEI_VERSION_1_1, SDEI_VERSION);
	/* BIND_SLOTS: no slot; RELATIVE_MODE: not supported; others unknown. */
	SDEI_EXPECT1(0, SDEI_FEATURES, 0);
	SDEI_EXPECT1(0, SDEI_FEATURES, 1);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_FEATURES, 2);
	/* EV_TYPE private, EV_SIGNALED no, EV_PRIORITY normal. */
	SDEI_EXPECT(0, SDEI_EVENT_GET_INFO, ev, 0, 0, 0, 0);
	SDEI_EXPECT(0, SDEI_EVENT_GET_INFO, ev, 1, 0, 0, 0);
	SDEI_EXPECT(0, SDEI_EVENT_GET_INFO, ev, 2, 0, 0, 0);
	/* Routing queries are for shared events; 5 is no query. */
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_GET_INFO, ev, 3, 0, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_GET_INFO, ev, 4, 0, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_GET_INFO, ev, 5, 0, 0, 0);
	/* Other events: the KVM series' default event, event 0, ev + 1. */
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_GET_INFO, 0x40400000UL, 0, 0, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_GET_INFO, 0, 0, 0, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_GET_INFO, ev + 1, 2, 0, 0, 0);
	/* Reserved function numbers of the SDEI range. */
	SDEI_EXPECT_ID(APF_SDEI_FN(0x13), "fn 0x13", SDEI_NOT_SUPPORTED, 0, 0, 0, 0, 0);
	SDEI_EXPECT_ID(APF_SDEI_FN(0x1f), "fn 0x1f", SDEI_NOT_SUPPORTED, 0, 0, 0, 0, 0);
	/* The async PF call itself is unchanged (GET_CONFIG: guest_setup). */
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_2);
	GUEST_SYNC5(SYNC_RESULT, 0, 0, 0, 0);
}

static void guest_discovery_ppi(struct vstate *v)
{
	struct arm_smccc_res res;

	/* Without NP_SDEI there is no SDEI, as without the feature. */
	res = sdei_call_id(APF_SDEI_FN(SDEI_VERSION), 0, 0, 0, 0, 0);
	__GUEST_ASSERT(res.a0 == SDEI_NOT_SUPPORTED, "SDEI VERSION on a PPI VM: 0x%lx", res.a0);
	res = sdei_call_id(APF_SDEI_FN(SDEI_PE_UNMASK), 0, 0, 0, 0, 0);
	__GUEST_ASSERT(res.a0 == SDEI_NOT_SUPPORTED, "SDEI PE_UNMASK on a PPI VM: 0x%lx", res.a0);
	res = sdei_call_id(APF_SDEI_FN(SDEI_EVENT_REGISTER), APF_SDEI_EVENT,
			   (u64)apf_sdei_entry, 0, 0, 0);
	__GUEST_ASSERT(res.a0 == SDEI_NOT_SUPPORTED, "SDEI EVENT_REGISTER on a PPI VM: 0x%lx", res.a0);
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_2);
	GUEST_SYNC5(SYNC_RESULT, 0, 0, 0, 0);
}

static void guest_calls(struct vstate *v, u32 cpu)
{
	u64 ev = APF_SDEI_EVENT, ep = (u64)apf_sdei_entry, arg = ENTRY_ARG(cpu);
	u64 re = SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED;
	u64 mpidr = read_sysreg(mpidr_el1) & APF_MPIDR_AFF_MASK;

	/* Fresh: nothing registered, the PE masked. */
	SDEI_EXPECT1(0, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_EVENT_STATUS, ev + 1);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_ENABLE, ev);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_DISABLE, ev);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_UNREGISTER, ev);
	/* Outside a handler, even for a bad register number. */
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_CONTEXT, 0);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_CONTEXT, 18);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_COMPLETE, 0);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_COMPLETE_AND_RESUME, (u64)apf_sdei_resume);

	/* EVENT_REGISTER's bad inputs: event, flags, entry point. */
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, ev + 1, ep, arg, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, 0, ep, arg, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, ev, ep, arg, SDEI_REGISTER_RELATIVE, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, ev, ep, arg, 1UL << 2, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, ev, ep, arg, 1UL << 63, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, ev, 0, arg, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_REGISTER, ev, ep + 2, arg, 0, 0);
	SDEI_EXPECT1(0, SDEI_EVENT_STATUS, ev);

	/* Register (disabled), register again, enable, disable. */
	SDEI_EXPECT(SDEI_SUCCESS, SDEI_EVENT_REGISTER, ev, ep, arg, 0, 0);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT(SDEI_DENIED, SDEI_EVENT_REGISTER, ev, ep, arg, 0, 0);
	SDEI_EXPECT(SDEI_DENIED, SDEI_EVENT_REGISTER, ev, ep, arg, SDEI_REGISTER_RM_PE, 0xffff);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_EVENT_ENABLE, ev ^ 1);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_ENABLE, ev);
	SDEI_EXPECT1(re, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_ENABLE, ev);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_EVENT_DISABLE, 0);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_DISABLE, ev);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_DISABLE, ev);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_ENABLE, ev);
	/* Still outside a handler. */
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_CONTEXT, 1);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_COMPLETE, 0);

	/* PE_MASK: 1 if it was unmasked, 0 if masked (as since reset). */
	SDEI_EXPECT0(0, SDEI_PE_MASK);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
	SDEI_EXPECT0(1, SDEI_PE_MASK);
	SDEI_EXPECT0(0, SDEI_PE_MASK);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);

	/* No bindable interrupt, no shared or signalable event. */
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_INTERRUPT_BIND, 0);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_INTERRUPT_BIND, 15);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_INTERRUPT_BIND, 1023);
	SDEI_EXPECT1(SDEI_OUT_OF_RESOURCE, SDEI_INTERRUPT_BIND, 16);
	SDEI_EXPECT1(SDEI_OUT_OF_RESOURCE, SDEI_INTERRUPT_BIND, SPI_INTID);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_INTERRUPT_RELEASE, ev);
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_INTERRUPT_RELEASE, 7);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_ROUTING_SET, ev, 0, 0, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_ROUTING_SET, ev, 1, mpidr, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_SIGNAL, 0, mpidr, 0, 0, 0);
	SDEI_EXPECT(SDEI_INVALID_PARAMS, SDEI_EVENT_SIGNAL, ev, mpidr, 0, 0, 0);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_SHARED_RESET);
	SDEI_EXPECT1(re, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT_ID(APF_SDEI_FN(0x13), "fn 0x13", SDEI_NOT_SUPPORTED, ev, 0, 0, 0, 0);
	/* SMC32 ids: x1 is cut to its low 32 bits. */
	SDEI_EXPECT_ID(APF_SDEI_FN32(SDEI_EVENT_STATUS), "EVENT_STATUS (SMC32)", re,
		       ev | 0xffffffff00000000UL, 0, 0, 0, 0);
	SDEI_EXPECT_ID(APF_SDEI_FN32(SDEI_VERSION), "VERSION (SMC32)", SDEI_VERSION_1_1,
		       0, 0, 0, 0, 0);

	/* Unregister: bad event, then done, then nothing to unregister. */
	SDEI_EXPECT1(SDEI_INVALID_PARAMS, SDEI_EVENT_UNREGISTER, (u32)(ev << 1));
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_UNREGISTER, ev);
	SDEI_EXPECT1(0, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_UNREGISTER, ev);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_ENABLE, ev);

	/* Registered again (RM_PE and an affinity mean nothing here). */
	SDEI_EXPECT(SDEI_SUCCESS, SDEI_EVENT_REGISTER, ev, ep, arg, SDEI_REGISTER_RM_PE, 0xffff);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_ENABLE, ev);
	/* PRIVATE_RESET unregisters; it keeps the PE's mask (unmasked). */
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PRIVATE_RESET);
	SDEI_EXPECT1(0, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PRIVATE_RESET);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_DISABLE, ev);
	SDEI_EXPECT0(1, SDEI_PE_MASK);

	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_2);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, 0, 0);
}

/*
 * nr_pages tasks fault one after the other; each enters the handler and
 * sleeps; the other task runs until every page-ready is in; each task
 * resumes at its ldr and reads its page.
 */
static void guest_flow(struct vstate *v, u32 cpu)
{
	u64 sleeping[MAX_PAGES_PER_VCPU], base = cpu * cfg.nr_pages, i, iters, ready_before;

	sdei_setup(cpu);
	v->action = ACT_SLEEP;
	for (i = 0; i < cfg.nr_pages; i++) {
		run_task(v, base + i, cfg.code_gva);
		__GUEST_ASSERT(v->preempted, "vCPU %u page %lu: the task was not put to sleep (entries %lu)",
			       cpu, i, v->entries);
		GUEST_ASSERT_EQ(v->entries, i + 1);
		GUEST_ASSERT_EQ(v->resumed, i + 1);
		GUEST_ASSERT_EQ(v->sleeping_pc, cfg.ldr_gva);
		sleeping[i] = v->sleeping_pc;
	}
	v->action = ACT_NONE;

	/* The other task: runs while pages are remote. */
	ready_before = v->ready_count;
	iters = wait_for(&v->ready_count, cfg.nr_pages, "page-ready");
	__GUEST_ASSERT(ready_before < cfg.nr_pages && iters > 0,
		       "vCPU %u: every page-ready came before the other task ran (%lu)",
		       cpu, ready_before);
	dmb(ish);
	check_ready_tokens(v, cpu, 0, cfg.nr_pages);

	/* Every task resumes at its ldr: present, no new entry. */
	for (i = 0; i < cfg.nr_pages; i++)
		check_task_done(v, base + i, run_task(v, base + i, sleeping[i]), "resumed");

	guest_settle(100);
	GUEST_ASSERT_EQ(v->entries, cfg.nr_pages);
	GUEST_ASSERT_EQ(v->ready_count, cfg.nr_pages);
	GUEST_ASSERT_EQ(v->wake_alls, 0);
	GUEST_ASSERT_EQ(v->record.not_present_token, 0);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, iters, v->handled_elsewhere);
}

/* The task on @page faults synchronously: no entry, no token, its data. */
static void expect_sync(struct vstate *v, u64 page, const char *why)
{
	u64 val, entries = v->entries;

	v->action = ACT_NONE;
	val = run_task(v, page, cfg.code_gva);
	__GUEST_ASSERT(v->entries == entries, "page %lu (%s): the handler was entered", page, why);
	check_task_done(v, page, val, why);
	__GUEST_ASSERT(!v->record.not_present_token, "page %lu (%s): token 0x%lx written",
		       page, why, v->record.not_present_token);
}

static void guest_masked(struct vstate *v, u32 cpu)
{
	u64 ev = APF_SDEI_EVENT;

	/* Registered and enabled, the PE masked since reset. */
	sdei_register(cpu);
	expect_sync(v, 0, "PE masked since reset");
	/* Unmasked, then masked again. */
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
	SDEI_EXPECT0(1, SDEI_PE_MASK);
	expect_sync(v, 1, "PE masked with PE_MASK");
	/* Unmasked, the event disabled. */
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_DISABLE, ev);
	expect_sync(v, 2, "event disabled");
	/* Not registered. */
	SDEI_EXPECT1(SDEI_SUCCESS, SDEI_EVENT_UNREGISTER, ev);
	expect_sync(v, 3, "event not registered");

	/* The control: registered, enabled, unmasked: entered, sleeps. */
	sdei_register(cpu);
	v->action = ACT_SLEEP;
	run_task(v, 4, cfg.code_gva);
	__GUEST_ASSERT(v->preempted, "page 4: the task was not put to sleep (entries %lu)", v->entries);
	v->action = ACT_NONE;
	GUEST_ASSERT_EQ(v->entries, 1);
	wait_for(&v->ready_count, 1, "page-ready of page 4");
	GUEST_ASSERT_EQ(v->ready_token[0], cfg.token[4]);
	check_task_done(v, 4, run_task(v, 4, v->sleeping_pc), "resumed");

	/* The synchronous faults announced nothing: no page-ready for them. */
	guest_settle(200);
	GUEST_ASSERT_EQ(v->entries, 1);
	GUEST_ASSERT_EQ(v->ready_count, 1);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, 0, 0);
}

static void guest_fault_in_handler(struct vstate *v, u32 cpu)
{
	u64 val;

	sdei_setup(cpu);
	v->action = ACT_FAULT_IN_HANDLER;
	val = run_task(v, 0, cfg.code_gva);
	v->action = ACT_NONE;
	GUEST_ASSERT_EQ(v->entries, 1);
	GUEST_ASSERT_EQ(v->resumed, 0);
	/* The handler's own read completed, synchronously. */
	GUEST_ASSERT_EQ(v->handler_read, expected(1));
	/* COMPLETE: the task's ldr re-executed, with its registers. */
	check_task_done(v, 0, val, "after EVENT_COMPLETE");

	/* Page 0's token was announced: its page-ready comes, page 1's not. */
	wait_for(&v->ready_count, 1, "page-ready of page 0");
	GUEST_ASSERT_EQ(v->ready_token[0], cfg.token[0]);
	guest_settle(200);
	GUEST_ASSERT_EQ(v->entries, 1);
	GUEST_ASSERT_EQ(v->ready_count, 1);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, 0, 0);
}

static void guest_complete(struct vstate *v, u32 cpu)
{
	u64 val, blocked_ms;

	sdei_setup(cpu);
	v->action = ACT_COMPLETE;
	val = run_task(v, 0, cfg.code_gva);
	v->action = ACT_NONE;
	/* From the entry to the svc: the re-executed ldr waited for the page. */
	blocked_ms = cycles_to_ms(v->svc_time - v->entry_time);
	GUEST_ASSERT_EQ(v->entries, 1);
	GUEST_ASSERT_EQ(v->resumed, 0);
	check_task_done(v, 0, val, "after EVENT_COMPLETE");
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_CONTEXT, 1);

	/* The announced token's page-ready still comes, once. */
	wait_for(&v->ready_count, 1, "page-ready of page 0");
	GUEST_ASSERT_EQ(v->ready_token[0], cfg.token[0]);

	/* Deliverable again: the next fault enters (and sleeps). */
	v->action = ACT_SLEEP;
	run_task(v, 1, cfg.code_gva);
	__GUEST_ASSERT(v->preempted, "page 1: not entered after a COMPLETE (entries %lu)", v->entries);
	v->action = ACT_NONE;
	GUEST_ASSERT_EQ(v->entries, 2);
	wait_for(&v->ready_count, 2, "page-ready of page 1");
	GUEST_ASSERT_EQ(v->ready_token[1], cfg.token[1]);
	check_task_done(v, 1, run_task(v, 1, v->sleeping_pc), "resumed");

	guest_settle(100);
	GUEST_ASSERT_EQ(v->entries, 2);
	GUEST_ASSERT_EQ(v->ready_count, 2);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, blocked_ms, 0);
}

static void guest_reset(struct vstate *v, u32 cpu)
{
	u64 ev = APF_SDEI_EVENT;

	/* PRIVATE_RESET unregisters (and has nothing to do the second time). */
	sdei_register(cpu);
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PRIVATE_RESET);
	SDEI_EXPECT1(0, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PRIVATE_RESET);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_UNREGISTER, ev);

	/* The VMM resets the vCPU while the handler runs (guest_after_reset). */
	sdei_setup(cpu);
	v->action = ACT_SYNC_RESET;
	run_task(v, 0, cfg.code_gva);
	GUEST_FAIL("vCPU %u: the task came back: no reset", cpu);
}

/* Where the vCPU restarts after the VMM's reset (state cleared by it). */
static void guest_after_reset(void)
{
	u32 cpu = guest_get_vcpuid();
	struct vstate *v = &vs[cpu];
	u64 ev = APF_SDEI_EVENT;

	guest_setup(cpu);
	/* Nothing registered, no handler running. */
	SDEI_EXPECT1(0, SDEI_EVENT_STATUS, ev);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_CONTEXT, 0);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_COMPLETE, 0);
	SDEI_EXPECT1(SDEI_DENIED, SDEI_EVENT_UNREGISTER, ev);
	/* The PE masked: registered and enabled, a fault is synchronous. */
	sdei_register(cpu);
	expect_sync(v, 1, "PE masked by the vCPU reset");
	SDEI_EXPECT0(0, SDEI_PE_MASK);
	/* Unmasked: entered. */
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
	v->action = ACT_SLEEP;
	run_task(v, 2, cfg.code_gva);
	__GUEST_ASSERT(v->preempted, "page 2: not entered after the reset (entries %lu)", v->entries);
	v->action = ACT_NONE;
	wait_for(&v->ready_count, 1, "page-ready of page 2");
	check_task_done(v, 2, run_task(v, 2, v->sleeping_pc), "resumed");
	/* Time for page 0's fault-in (before the reset) to complete: void. */
	guest_settle(1000);
	GUEST_ASSERT_EQ(v->entries, 1);
	GUEST_ASSERT_EQ(v->ready_count, 1);
	GUEST_ASSERT_EQ(v->ready_token[0], cfg.token[2]);
	GUEST_ASSERT_EQ(v->wake_alls, 0);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, 0, 0);
	GUEST_DONE();
}

static void guest_migrate(struct vstate *v, u32 cpu)
{
	sdei_register(cpu);
	GUEST_SYNC2(SYNC_HOST, STEP_MIG_MASKED);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);
	GUEST_SYNC2(SYNC_HOST, STEP_MIG_UNMASKED);
	/* The VMM set the state back with the PE masked. */
	SDEI_EXPECT0(0, SDEI_PE_MASK);
	SDEI_EXPECT0(SDEI_SUCCESS, SDEI_PE_UNMASK);

	/* Entered; the VMM reads and sets the state inside; then sleeps. */
	v->action = ACT_SYNC_SLEEP;
	run_task(v, 0, cfg.code_gva);
	__GUEST_ASSERT(v->preempted, "page 0: the task was not put to sleep (entries %lu)", v->entries);
	v->action = ACT_NONE;
	GUEST_ASSERT_EQ(v->entries, 1);
	wait_for(&v->ready_count, 1, "page-ready of page 0");
	GUEST_ASSERT_EQ(v->ready_token[0], cfg.token[0]);
	check_task_done(v, 0, run_task(v, 0, v->sleeping_pc), "resumed");
	guest_settle(100);
	GUEST_ASSERT_EQ(v->entries, 1);
	GUEST_ASSERT_EQ(v->ready_count, 1);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, 0, 0);
}

/*
 * Two tasks asleep when the VMM saves and restores the vCPU's async PF and
 * SDEI state: one WAKE_ALL; each task retries its ldr (on a page still
 * remote it is entered again and sleeps until its new page-ready).
 */
static void guest_restore(struct vstate *v, u32 cpu)
{
	u64 sleeping[2], refaults = 0, entries_at_restore, i, j, n;

	sdei_setup(cpu);
	v->action = ACT_SLEEP;
	for (i = 0; i < 2; i++) {
		run_task(v, i, cfg.code_gva);
		__GUEST_ASSERT(v->preempted, "page %lu: the task was not put to sleep", i);
		sleeping[i] = v->sleeping_pc;
	}
	entries_at_restore = v->entries;
	GUEST_SYNC2(SYNC_HOST, STEP_RESTORE);

	wait_for(&v->wake_alls, 1, "WAKE_ALL after the restore");
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
	for (i = 0; i < 2; i++) {
		for (;;) {
			n = v->ready_count;
			run_task(v, i, sleeping[i]);
			if (!v->preempted)
				break;
			/* Still remote: a new token, announced on the restored vCPU. */
			refaults++;
			__GUEST_ASSERT(refaults <= 4, "page %lu: entered again and again", i);
			sleeping[i] = v->sleeping_pc;
			wait_for(&v->ready_count, n + 1, "page-ready after a re-fault");
		}
		check_task_done(v, i, v->svc_regs[0], "woken by WAKE_ALL");
	}
	v->action = ACT_NONE;
	guest_settle(300);
	GUEST_ASSERT_EQ(v->wake_alls, 1);
	GUEST_ASSERT_EQ(v->entries, entries_at_restore + refaults);
	/* After the WAKE_ALL only tokens announced after it are readied, once. */
	__GUEST_ASSERT(v->ready_count - v->ready_at_wake_all == refaults,
		       "%lu page-ready after the WAKE_ALL for %lu re-faults",
		       v->ready_count - v->ready_at_wake_all, refaults);
	for (j = v->ready_at_wake_all; j < v->ready_count && j < MAX_EVENTS; j++) {
		for (i = entries_at_restore; i < v->entries && i < MAX_EVENTS; i++)
			if (v->entry_token[i] == v->ready_token[j])
				break;
		__GUEST_ASSERT(i < v->entries, "page-ready 0x%lx after the WAKE_ALL: a void token",
			       v->ready_token[j]);
	}
	SDEI_EXPECT1(SDEI_STATUS_REGISTERED | SDEI_STATUS_ENABLED, SDEI_EVENT_STATUS, APF_SDEI_EVENT);
	GUEST_SYNC5(SYNC_RESULT, v->entries, v->ready_count, refaults, v->wake_alls);
}

static void guest_code(void)
{
	u32 cpu = guest_get_vcpuid();
	struct vstate *v = &vs[cpu];

	guest_setup(cpu);
	switch (cfg.mode) {
	case MODE_DISCOVERY:
		guest_discovery(v);
		break;
	case MODE_DISCOVERY_PPI:
		guest_discovery_ppi(v);
		break;
	case MODE_CALLS:
		guest_calls(v, cpu);
		break;
	case MODE_FLOW:
		guest_flow(v, cpu);
		break;
	case MODE_MASKED:
		guest_masked(v, cpu);
		break;
	case MODE_FAULT_IN_HANDLER:
		guest_fault_in_handler(v, cpu);
		break;
	case MODE_COMPLETE:
		guest_complete(v, cpu);
		break;
	case MODE_RESET:
		guest_reset(v, cpu);
		break;
	case MODE_MIGRATE:
		guest_migrate(v, cpu);
		break;
	case MODE_RESTORE:
		guest_restore(v, cpu);
		break;
	default:
		GUEST_FAIL("bad mode %u", cfg.mode);
	}
	GUEST_ASSERT_EQ(v->np_ppi, 0);
	GUEST_DONE();
}

/* ---- Host side */

static u64 region_hva, region_size;
static size_t host_psize;
static u64 uffd_copy_errors;
static u64 uffd_faults[MAX_PAGES];

static int uffd_page_handler(int mode, int uffd, struct uffd_msg *msg)
{
	static __thread u64 *buf;
	u64 addr = msg->arg.pagefault.address & ~((u64)host_psize - 1);
	u64 gpa = TEST_GPA + (addr - region_hva);
	u64 idx;
	int i;

	TEST_ASSERT(addr >= region_hva && addr < region_hva + region_size,
		    "userfault outside the test region: 0x%lx", addr);
	idx = (addr - region_hva) / host_psize;
	if (idx < MAX_PAGES)
		__atomic_add_fetch(&uffd_faults[idx], 1, __ATOMIC_RELAXED);
	if (!buf) {
		buf = aligned_alloc(host_psize, host_psize);
		TEST_ASSERT(buf, "aligned_alloc");
	}
	for (i = 0; i < host_psize / sizeof(u64); i++)
		buf[i] = gpa ^ PATTERN;

	apf_uffd_copy(uffd, addr, buf, host_psize, &uffd_copy_errors);
	return 0;
}

struct sdei_params {
	enum mode mode;
	u32 nr_vcpus;
	u32 nr_pages;		/* per vCPU */
	u32 ready_intid;
	u64 cap_flags;		/* args[0] */
	u64 enable_flags;	/* the guest's APF ENABLE */
	useconds_t uffd_delay_us;
};

struct sdei_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct uffd_desc *uffd;
};

struct vcpu_run {
	struct sdei_vm *s;
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	u32 idx;
	u64 result[4];		/* the last SYNC_RESULT's args[1..4] */
	u32 nr_results;
	u32 steps;		/* host steps done */
};

static void sdei_create(struct sdei_vm *s, const struct sdei_params *p)
{
	u64 stride, npages, code;
	u32 el0_code[EL0_CODE_WORDS];
	struct kvm_vm *vm;
	int i;

	host_psize = getpagesize();
	s->vm = vm = vm_create_with_vcpus(p->nr_vcpus, guest_code, s->vcpus);
	TEST_REQUIRE(vm->arch.has_gic);

	vm_init_descriptor_tables(vm);
	for (i = 0; i < p->nr_vcpus; i++)
		vcpu_init_descriptor_tables(s->vcpus[i]);
	vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, guest_irq_handler);
	vm_install_exception_handler(vm, VECTOR_IRQ_LOWER_64, guest_irq_handler);
	vm_install_sync_handler(vm, VECTOR_SYNC_LOWER_64, ESR_ELx_EC_SVC64, el0_svc_handler);

	stride = max_t(u64, host_psize, vm->page_size);
	npages = (u64)p->nr_pages * p->nr_vcpus;
	TEST_ASSERT(npages <= MAX_PAGES, "too many pages");
	region_size = npages * stride;
	apf_el0_data_region(vm, TEST_GPA, TEST_SLOT, region_size);

	/* The EL0 task: movz x2..x30, ldr x0, [x1], svc #0. */
	for (i = EL0_FIRST_REG; i <= EL0_LAST_REG; i++)
		el0_code[i - EL0_FIRST_REG] = 0xd2800000 | (EL0_REG_VAL(i) << 5) | i;
	el0_code[EL0_LDR_INDEX] = 0xf9400020;
	el0_code[EL0_LDR_INDEX + 1] = 0xd4000001;
	code = apf_el0_code_page(vm, el0_code, sizeof(el0_code));

	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < p->nr_vcpus; i++)
		cfg.record_gpa[i] = addr_gva2gpa(vm, (gva_t)&vs[i].record);
	cfg.code_gva = code;
	cfg.ldr_gva = code + EL0_LDR_INDEX * 4;
	for (i = 0; i < npages; i++) {
		cfg.page_gva[i] = TEST_GPA + i * stride;
		cfg.token[i] = (TEST_GPA + i * stride) & ~((u64)host_psize - 1);
	}
	cfg.nr_pages = p->nr_pages;
	cfg.enable_flags = p->enable_flags;
	cfg.wait_ms = 20000;
	cfg.ready_intid = p->ready_intid;
	cfg.nr_vcpus = p->nr_vcpus;
	cfg.mode = p->mode;
	cfg.sdei_vm = !!(p->cap_flags & KVM_ARM_ASYNC_PF_NP_SDEI);
	sync_global_to_guest(vm, cfg);

	apf_enable_cap(vm, p->cap_flags, 0, cfg.sdei_vm ? 0 : APF_NP_INTID, p->ready_intid);

	region_hva = (u64)addr_gpa2hva(vm, TEST_GPA);
	uffd_copy_errors = 0;
	memset(uffd_faults, 0, sizeof(uffd_faults));
	s->uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, p->uffd_delay_us,
					   (void *)region_hva, region_size,
					   p->nr_vcpus, uffd_page_handler);
}

static void sdei_destroy(struct sdei_vm *s)
{
	kvm_vm_free(s->vm);
	uffd_stop_demand_paging(s->uffd);
	TEST_ASSERT(!uffd_copy_errors, "%lu userfaultfd copies failed", uffd_copy_errors);
}

static void sdei_get(struct kvm_vcpu *vcpu, struct kvm_arm_async_pf_sdei *st)
{
	memset(st, 0xee, sizeof(*st));
	vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL, KVM_ARM_VCPU_ASYNC_PF_SDEI, st);
}

static void print_sdei(const char *what, const struct kvm_arm_async_pf_sdei *st)
{
	printf("# %s: flags 0x%llx event 0x%llx entry 0x%llx arg 0x%llx ctx pc 0x%llx pstate 0x%llx x0 0x%llx x1 0x%llx\n",
	       what, st->flags, st->event, st->entry_point, st->entry_arg, st->ctx_pc,
	       st->ctx_pstate, st->ctx_x[0], st->ctx_x[1]);
}

static bool all_zero(const __u64 *w, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (w[i])
			return false;
	return true;
}

/* A state outside a handler: @flags, the event, entry and arg, no context. */
static void check_idle_state(const struct kvm_arm_async_pf_sdei *st, u64 flags,
			     u64 entry, u64 arg, const char *what)
{
	print_sdei(what, st);
	TEST_ASSERT(st->flags == flags, "%s: flags 0x%llx, want 0x%lx", what, st->flags, flags);
	TEST_ASSERT(st->event == APF_SDEI_EVENT, "%s: event 0x%llx", what, st->event);
	TEST_ASSERT(st->entry_point == entry && st->entry_arg == arg,
		    "%s: entry 0x%llx arg 0x%llx, want 0x%lx 0x%lx", what, st->entry_point,
		    st->entry_arg, entry, arg);
	TEST_ASSERT(all_zero(st->ctx_x, 18) && !st->ctx_pc && !st->ctx_pstate,
		    "%s: a context outside a handler", what);
	TEST_ASSERT(all_zero(st->reserved, 8), "%s: reserved words not 0", what);
}

/* A refused set (EINVAL) that leaves the state as @good. */
static void sdei_set_refused(struct kvm_vcpu *vcpu, struct kvm_arm_async_pf_sdei *bad,
			     const struct kvm_arm_async_pf_sdei *good, const char *what)
{
	struct kvm_arm_async_pf_sdei now;
	int ret;

	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI, bad);
	TEST_ASSERT(ret == -1 && errno == EINVAL,
		    "SET_DEVICE_ATTR(SDEI) with %s: ret %d errno %d, want EINVAL", what, ret, errno);
	sdei_get(vcpu, &now);
	TEST_ASSERT(!memcmp(&now, good, sizeof(now)), "SET_DEVICE_ATTR(SDEI) with %s changed the state",
		    what);
}

static void sdei_set_ok(struct kvm_vcpu *vcpu, struct kvm_arm_async_pf_sdei *st, const char *what)
{
	struct kvm_arm_async_pf_sdei now;
	int ret;

	ret = __vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI, st);
	TEST_ASSERT(!ret, "SET_DEVICE_ATTR(SDEI) %s: errno %d", what, errno);
	sdei_get(vcpu, &now);
	TEST_ASSERT(!memcmp(&now, st, sizeof(now)), "%s: read back differs (flags 0x%llx)",
		    what, now.flags);
}

/* Host steps of the migration sub-test. */
static struct kvm_arm_async_pf_sdei mig_masked;

static void step_mig_masked(struct vcpu_run *r)
{
	sdei_get(r->vcpu, &mig_masked);
	check_idle_state(&mig_masked, SDEI_ST_REGISTERED | SDEI_ST_ENABLED | SDEI_ST_MASKED,
			 (u64)apf_sdei_entry, ENTRY_ARG(r->idx), "registered, enabled, PE masked");
}

static void step_mig_unmasked(struct vcpu_run *r)
{
	struct kvm_arm_async_pf_sdei st, bad;

	sdei_get(r->vcpu, &st);
	check_idle_state(&st, SDEI_ST_REGISTERED | SDEI_ST_ENABLED, (u64)apf_sdei_entry,
			 ENTRY_ARG(r->idx), "registered, enabled, PE unmasked");
	sdei_set_ok(r->vcpu, &st, "set back unchanged");

	bad = st;
	bad.reserved[0] = 1;
	sdei_set_refused(r->vcpu, &bad, &st, "reserved[0] = 1");
	bad = st;
	bad.reserved[7] = 1ULL << 63;
	sdei_set_refused(r->vcpu, &bad, &st, "reserved[7] bit 63");
	bad = st;
	bad.flags |= 1ULL << 6;
	sdei_set_refused(r->vcpu, &bad, &st, "unknown flag bit 6");
	bad = st;
	bad.event = 0x40400000;
	sdei_set_refused(r->vcpu, &bad, &st, "event 0x40400000");
	bad = st;
	bad.event = APF_SDEI_EVENT | 1ULL << 32;
	sdei_set_refused(r->vcpu, &bad, &st, "event with bit 32");
	bad = st;
	bad.flags |= SDEI_ST_RUNNING;
	sdei_set_refused(r->vcpu, &bad, &st, "running without context");
	bad = st;
	bad.flags |= SDEI_ST_CONTEXT;
	bad.ctx_pc = cfg.ldr_gva;
	sdei_set_refused(r->vcpu, &bad, &st, "context without running");
	bad = st;
	bad.ctx_x[4] = 1;
	sdei_set_refused(r->vcpu, &bad, &st, "stale context word");
	bad = st;
	bad.entry_point = 0;
	sdei_set_refused(r->vcpu, &bad, &st, "registered with entry point 0");
	bad = st;
	bad.entry_point += 2;
	sdei_set_refused(r->vcpu, &bad, &st, "unaligned entry point");
	bad = st;
	bad.flags = SDEI_ST_ENABLED;
	bad.entry_point = 0;
	bad.entry_arg = 0;
	sdei_set_refused(r->vcpu, &bad, &st, "enabled but not registered");
	bad = st;
	bad.flags = 0;
	sdei_set_refused(r->vcpu, &bad, &st, "entry point set but not registered");
	bad = st;
	bad.flags |= SDEI_ST_PENDING | SDEI_ST_MASKED;
	sdei_set_refused(r->vcpu, &bad, &st, "pending while masked");

	/* The VMM masks the PE: the guest's PE_MASK then answers 0. */
	sdei_set_ok(r->vcpu, &mig_masked, "set with the PE masked");
}

static void step_mig_in_handler(struct vcpu_run *r)
{
	struct kvm_arm_async_pf_sdei st, bad;
	int i;

	sdei_get(r->vcpu, &st);
	print_sdei("inside the handler", &st);
	TEST_ASSERT(st.flags == (SDEI_ST_REGISTERED | SDEI_ST_ENABLED | SDEI_ST_RUNNING |
				 SDEI_ST_CONTEXT),
		    "inside the handler: flags 0x%llx, want 0x%llx", st.flags,
		    SDEI_ST_REGISTERED | SDEI_ST_ENABLED | SDEI_ST_RUNNING | SDEI_ST_CONTEXT);
	TEST_ASSERT(st.event == APF_SDEI_EVENT && st.entry_point == (u64)apf_sdei_entry &&
		    st.entry_arg == ENTRY_ARG(r->idx),
		    "inside the handler: event 0x%llx entry 0x%llx arg 0x%llx", st.event,
		    st.entry_point, st.entry_arg);
	TEST_ASSERT(st.ctx_pc == cfg.ldr_gva && st.ctx_pstate == EL0_SPSR,
		    "context PC 0x%llx PSTATE 0x%llx, want the task's ldr 0x%lx and 0x%lx",
		    st.ctx_pc, st.ctx_pstate, cfg.ldr_gva, EL0_SPSR);
	TEST_ASSERT(st.ctx_x[0] == cfg.code_gva && st.ctx_x[1] == cfg.page_gva[0],
		    "context x0 0x%llx x1 0x%llx, want 0x%lx 0x%lx", st.ctx_x[0], st.ctx_x[1],
		    cfg.code_gva, cfg.page_gva[0]);
	for (i = EL0_FIRST_REG; i <= 17; i++)
		TEST_ASSERT(st.ctx_x[i] == EL0_REG_VAL(i), "context x%d 0x%llx, want 0x%lx", i,
			    st.ctx_x[i], EL0_REG_VAL(i));
	TEST_ASSERT(all_zero(st.reserved, 8), "inside the handler: reserved words not 0");
	sdei_set_ok(r->vcpu, &st, "inside the handler, set back unchanged");

	bad = st;
	bad.flags &= ~SDEI_ST_CONTEXT;
	sdei_set_refused(r->vcpu, &bad, &st, "running without context (context words kept)");
	bad.ctx_pc = bad.ctx_pstate = 0;
	memset(bad.ctx_x, 0, sizeof(bad.ctx_x));
	sdei_set_refused(r->vcpu, &bad, &st, "running without context");
	bad = st;
	bad.flags &= ~SDEI_ST_RUNNING;
	sdei_set_refused(r->vcpu, &bad, &st, "context without running");
	bad = st;
	bad.ctx_pstate = PSR_MODE_EL2h;
	sdei_set_refused(r->vcpu, &bad, &st, "interrupted at EL2h");
	bad = st;
	bad.flags |= SDEI_ST_PENDING;
	sdei_set_refused(r->vcpu, &bad, &st, "pending while running");
}

static void step_reset(struct vcpu_run *r)
{
	struct kvm_arm_async_pf_state ast;
	struct kvm_arm_async_pf_sdei st;
	struct kvm_vcpu *vcpu = r->vcpu;
	u64 sp;

	sdei_get(vcpu, &st);
	print_sdei("inside the handler, before the reset", &st);
	TEST_ASSERT(st.flags == (SDEI_ST_REGISTERED | SDEI_ST_ENABLED | SDEI_ST_RUNNING |
				 SDEI_ST_CONTEXT),
		    "before the reset: flags 0x%llx", st.flags);

	/* KVM_ARM_VCPU_INIT again, as apf_faults' reset_in_flight. */
	sp = vcpu_get_reg(vcpu, ctxt_reg_alias(vcpu, SYS_SP_EL1));
	aarch64_vcpu_setup(vcpu, NULL);
	vcpu_init_descriptor_tables(vcpu);
	vcpu_set_reg(vcpu, ctxt_reg_alias(vcpu, SYS_SP_EL1), sp);
	vcpu_arch_set_entry_point(vcpu, guest_after_reset);

	TEST_ASSERT(!__vcpu_has_device_attr(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL,
					    KVM_ARM_VCPU_ASYNC_PF_SDEI),
		    "after the reset: no SDEI attribute (errno %d)", errno);
	sdei_get(vcpu, &st);
	check_idle_state(&st, SDEI_ST_MASKED, 0, 0, "after the vCPU reset");
	vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL, KVM_ARM_VCPU_ASYNC_PF_STATE, &ast);
	TEST_ASSERT(ast.record_gpa == APF_STATE_NO_RECORD && !ast.flags,
		    "after the reset: record 0x%llx flags 0x%llx", ast.record_gpa, ast.flags);

	/* The guest starts again: its state from scratch. */
	memset(addr_gva2hva(r->s->vm, (gva_t)&vs[r->idx]), 0, sizeof(vs[0]));
}

static void step_restore(struct vcpu_run *r)
{
	struct kvm_arm_async_pf_sdei st, mid;
	struct kvm_arm_async_pf_state ast;
	struct kvm_vcpu *vcpu = r->vcpu;

	sdei_get(vcpu, &st);
	check_idle_state(&st, SDEI_ST_REGISTERED | SDEI_ST_ENABLED, (u64)apf_sdei_entry,
			 ENTRY_ARG(r->idx), "two tasks asleep, saved");
	vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL, KVM_ARM_VCPU_ASYNC_PF_STATE, &ast);
	TEST_ASSERT(ast.record_gpa == cfg.record_gpa[r->idx] && ast.flags == APF_STATE_FLAG_ENABLED,
		    "saved async PF state: record 0x%llx flags 0x%llx", ast.record_gpa, ast.flags);

	/* Restore in the order of the attribute numbers: STATE, then SDEI. */
	vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_ASYNC_PF_CTRL, KVM_ARM_VCPU_ASYNC_PF_STATE, &ast);
	sdei_get(vcpu, &mid);
	printf("# SDEI flags after restoring ASYNC_PF_STATE alone: 0x%llx (saved 0x%llx)\n",
	       mid.flags, st.flags);
	sdei_set_ok(vcpu, &st, "restored");
}

static void host_step(struct vcpu_run *r, u64 step)
{
	switch (step) {
	case STEP_MIG_MASKED:
		step_mig_masked(r);
		break;
	case STEP_MIG_UNMASKED:
		step_mig_unmasked(r);
		break;
	case STEP_MIG_IN_HANDLER:
		step_mig_in_handler(r);
		break;
	case STEP_RESET:
		step_reset(r);
		break;
	case STEP_RESTORE:
		step_restore(r);
		break;
	default:
		TEST_FAIL("vCPU %u: unknown host step %lu", r->idx, step);
	}
	r->steps++;
}

static void *run_vcpu_fn(void *arg)
{
	struct vcpu_run *r = arg;
	struct ucall uc;

	while (apf_run_to_ucall(r->vcpu, &uc) == UCALL_SYNC) {
		switch (uc.args[0]) {
		case SYNC_RESULT:
			memcpy(r->result, &uc.args[1], sizeof(r->result));
			r->nr_results++;
			break;
		case SYNC_HOST:
			host_step(r, uc.args[1]);
			break;
		default:
			TEST_FAIL("vCPU %u: unknown sync 0x%lx", r->idx, uc.args[0]);
		}
	}
	TEST_ASSERT(r->nr_results > 0, "vCPU %u: DONE without a result", r->idx);
	return NULL;
}

/* Builds the VM, runs every vCPU to its DONE, frees it. */
static void sdei_run(const struct sdei_params *p, struct vcpu_run *r)
{
	struct sdei_vm s;
	int i;

	sdei_create(&s, p);
	for (i = 0; i < p->nr_vcpus; i++) {
		r[i].s = &s;
		r[i].vcpu = s.vcpus[i];
		r[i].idx = i;
		pthread_create(&r[i].thread, NULL, run_vcpu_fn, &r[i]);
	}
	for (i = 0; i < p->nr_vcpus; i++)
		pthread_join(r[i].thread, NULL);
	sdei_destroy(&s);
}

static const struct sdei_params sdei_defaults = {
	.nr_vcpus = 1,
	.nr_pages = 1,
	.ready_intid = APF_READY_INTID,
	.cap_flags = KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_NP_SDEI,
	.uffd_delay_us = 20 * 1000,
};

/* Every page of the run was remote: the VMM served it. */
static void check_all_remote(u32 npages)
{
	u32 i;

	for (i = 0; i < npages; i++)
		TEST_ASSERT(uffd_faults[i] >= 1, "page %u never faulted in the VMM", i);
}

/* The VMM side of the capability and the attribute. */
static void cap_checks(void)
{
	struct kvm_arm_async_pf_sdei st;
	struct kvm_arm_async_pf_config conf;
	struct kvm_vcpu *vcpus[1];
	struct kvm_vm *vm;
	int ret;

	vm = vm_create_with_vcpus(1, guest_code, vcpus);
	TEST_REQUIRE(vm->arch.has_gic);

	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_NP_SDEI, 0,
			       APF_NP_INTID, APF_READY_INTID);
	TEST_ASSERT(ret == -1 && errno == EINVAL,
		    "NP_SDEI with not-present INTID %d: ret %d errno %d, want EINVAL",
		    APF_NP_INTID, ret, errno);
	ret = __apf_enable_cap(vm, KVM_ARM_ASYNC_PF_NP_SDEI, 0, 0, APF_READY_INTID);
	TEST_ASSERT(ret == -1 && errno == EINVAL,
		    "NP_SDEI without ENABLE: ret %d errno %d, want EINVAL", ret, errno);
	ret = __vcpu_has_device_attr(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI);
	TEST_ASSERT(ret == -1 && errno == ENXIO,
		    "HAS_ATTR(SDEI) after refused enables: ret %d errno %d, want ENXIO", ret, errno);

	apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_NP_SDEI, 0, 0,
		       APF_READY_INTID);
	vcpu_device_attr_get(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL, KVM_ARM_VCPU_ASYNC_PF_CONFIG,
			     &conf);
	printf("# CONFIG with NP_SDEI: %llu/%llu/%llu/%llu\n", conf.args[0], conf.args[1],
	       conf.args[2], conf.args[3]);
	TEST_ASSERT(conf.args[0] == (KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_NP_SDEI) &&
		    conf.args[1] == 64 && conf.args[2] == 0 && conf.args[3] == APF_READY_INTID,
		    "CONFIG read back 0x%llx/%llu/%llu/%llu: the arguments that recreate the VM",
		    conf.args[0], conf.args[1], conf.args[2], conf.args[3]);
	ret = __vcpu_has_device_attr(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI);
	TEST_ASSERT(!ret, "HAS_ATTR(SDEI) on an NP_SDEI VM: errno %d", errno);
	/* A vCPU that never ran: nothing registered, the PE masked. */
	sdei_get(vcpus[0], &st);
	check_idle_state(&st, SDEI_ST_MASKED, 0, 0, "a new vCPU");

	/* Disabled, then enabled with a not-present PPI: no SDEI. */
	apf_enable_cap(vm, 0, 0, 0, 0);
	ret = __vcpu_has_device_attr(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI);
	TEST_ASSERT(ret == -1 && errno == ENXIO,
		    "HAS_ATTR(SDEI) with the feature disabled: ret %d errno %d, want ENXIO", ret, errno);
	apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, APF_READY_INTID);
	ret = __vcpu_has_device_attr(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI);
	TEST_ASSERT(ret == -1 && errno == ENXIO,
		    "HAS_ATTR(SDEI) on a PPI VM: ret %d errno %d, want ENXIO", ret, errno);
	ret = __vcpu_has_device_attr(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE);
	TEST_ASSERT(!ret, "HAS_ATTR(STATE) on a PPI VM: errno %d", errno);
	kvm_vm_free(vm);
}

static void subtest_discovery(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	cap_checks();
	p.mode = MODE_DISCOVERY;
	sdei_run(&p, r);
	p.mode = MODE_DISCOVERY_PPI;
	p.cap_flags = KVM_ARM_ASYNC_PF_ENABLE;
	memset(r, 0, sizeof(r));
	sdei_run(&p, r);
}

static void subtest_calls(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_CALLS;
	sdei_run(&p, r);
	TEST_ASSERT_EQ(r[0].result[0], 0);
	TEST_ASSERT_EQ(r[0].result[1], 0);
}

#define FLOW(n, intid)	((void *)(unsigned long)((n) | ((intid) << 8)))

static void subtest_flow(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};
	u64 elsewhere = 0;
	int i;

	p.mode = MODE_FLOW;
	p.nr_vcpus = (unsigned long)arg & 0xff;
	p.ready_intid = (unsigned long)arg >> 8;
	p.nr_pages = 4;
	sdei_run(&p, r);
	for (i = 0; i < p.nr_vcpus; i++) {
		printf("# vCPU %d: %lu SDEI entries, %lu page-ready (%lu handled on another vCPU), the other task ran %lu iterations\n",
		       i, r[i].result[0], r[i].result[1], r[i].result[3], r[i].result[2]);
		TEST_ASSERT_EQ(r[i].result[0], p.nr_pages);
		TEST_ASSERT_EQ(r[i].result[1], p.nr_pages);
		TEST_ASSERT(r[i].result[2] > 0, "vCPU %d: the other task did not run", i);
		elsewhere += r[i].result[3];
	}
	if (p.ready_intid >= 32 && p.nr_vcpus > 1)
		TEST_ASSERT(elsewhere > 0, "no page-ready was delivered through another vCPU");
	check_all_remote(p.nr_pages * p.nr_vcpus);
}

static void subtest_masked(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_MASKED;
	p.nr_pages = 5;
	sdei_run(&p, r);
	TEST_ASSERT_EQ(r[0].result[0], 1);
	TEST_ASSERT_EQ(r[0].result[1], 1);
	check_all_remote(p.nr_pages);
}

static void subtest_fault_in_handler(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_FAULT_IN_HANDLER;
	p.nr_pages = 2;
	/* EL1 faults may be announced: only the running handler prevents it. */
	p.cap_flags |= KVM_ARM_ASYNC_PF_ALLOW_EL1;
	p.enable_flags = APF_ENABLE_NOTIFY_EL1;
	sdei_run(&p, r);
	TEST_ASSERT_EQ(r[0].result[0], 1);
	TEST_ASSERT_EQ(r[0].result[1], 1);
	check_all_remote(p.nr_pages);
}

static void subtest_complete(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_COMPLETE;
	p.nr_pages = 2;
	/* Long enough to see that the re-executed ldr waits for the page. */
	p.uffd_delay_us = 200 * 1000;
	sdei_run(&p, r);
	printf("# complete: %lu SDEI entries, %lu page-ready; the re-executed ldr completed %lu ms after the entry\n",
	       r[0].result[0], r[0].result[1], r[0].result[2]);
	TEST_ASSERT_EQ(r[0].result[0], 2);
	TEST_ASSERT_EQ(r[0].result[1], 2);
	TEST_ASSERT(r[0].result[2] >= p.uffd_delay_us / 1000 / 4,
		    "the re-executed ldr completed %lu ms after the entry: it did not wait for the page",
		    r[0].result[2]);
	check_all_remote(p.nr_pages);
}

static void subtest_reset(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_RESET;
	p.nr_pages = 3;
	sdei_run(&p, r);
	TEST_ASSERT_EQ(r[0].steps, 1);
	TEST_ASSERT_EQ(r[0].result[0], 1);
	TEST_ASSERT_EQ(r[0].result[1], 1);
	check_all_remote(p.nr_pages);
}

/* The attribute does not exist on a PPI VM nor without the capability. */
static void check_no_sdei_attr(bool cap)
{
	struct kvm_arm_async_pf_sdei st = { .event = APF_SDEI_EVENT, .flags = SDEI_ST_MASKED };
	struct kvm_vcpu *vcpus[1];
	struct kvm_vm *vm;
	int ret;

	vm = vm_create_with_vcpus(1, guest_code, vcpus);
	if (cap)
		apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, 0, APF_NP_INTID, APF_READY_INTID);
	ret = __vcpu_has_device_attr(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI);
	TEST_ASSERT(ret == -1 && errno == ENXIO, "HAS_ATTR(SDEI) %s: ret %d errno %d, want ENXIO",
		    cap ? "on a PPI VM" : "without the capability", ret, errno);
	ret = __vcpu_device_attr_get(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI, &st);
	TEST_ASSERT(ret == -1 && errno == ENXIO, "GET_ATTR(SDEI) %s: ret %d errno %d, want ENXIO",
		    cap ? "on a PPI VM" : "without the capability", ret, errno);
	ret = __vcpu_device_attr_set(vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI, &st);
	TEST_ASSERT(ret == -1 && errno == ENXIO, "SET_ATTR(SDEI) %s: ret %d errno %d, want ENXIO",
		    cap ? "on a PPI VM" : "without the capability", ret, errno);
	kvm_vm_free(vm);
}

static void subtest_migrate(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_MIGRATE;
	sdei_run(&p, r);
	TEST_ASSERT_EQ(r[0].steps, 3);
	TEST_ASSERT_EQ(r[0].result[0], 1);
	TEST_ASSERT_EQ(r[0].result[1], 1);
	check_no_sdei_attr(true);
	check_no_sdei_attr(false);
}

static void subtest_restore(void *arg)
{
	struct sdei_params p = sdei_defaults;
	struct vcpu_run r[MAX_VCPUS] = {};

	p.mode = MODE_RESTORE;
	p.nr_pages = 2;
	/* Slow enough that the pages are still remote at the restore. */
	p.uffd_delay_us = 300 * 1000;
	sdei_run(&p, r);
	printf("# restore_mid_flow: %lu SDEI entries, %lu page-ready, %lu re-faults after the restore, %lu WAKE_ALL\n",
	       r[0].result[0], r[0].result[1], r[0].result[2], r[0].result[3]);
	TEST_ASSERT_EQ(r[0].steps, 1);
	TEST_ASSERT_EQ(r[0].result[3], 1);
}

static const struct apf_subtest subtests[] = {
	{ "discovery: NP_SDEI capability and attribute, SDEI VERSION, FEATURES, GET_INFO, GET_CONFIG",
	  subtest_discovery, NULL, 120 },
	{ "calls: every SDEI call outside a handler and its bad inputs",
	  subtest_calls, NULL, 60 },
	{ "main_flow: 4 tasks enter the handler and sleep, PPI page-ready wakes each",
	  subtest_flow, FLOW(1, APF_READY_INTID), 120 },
	{ "main_flow_spi_2_vcpus: the same on 2 vCPUs, SPI page-ready",
	  subtest_flow, FLOW(2, SPI_INTID), 120 },
	{ "masked: PE masked, event disabled or unregistered: the fault is synchronous",
	  subtest_masked, NULL, 120 },
	{ "fault_in_handler: a fault inside the handler blocks, no nested entry",
	  subtest_fault_in_handler, NULL, 120 },
	{ "complete: EVENT_COMPLETE re-executes the access, which waits for the page",
	  subtest_complete, NULL, 120 },
	{ "reset: PRIVATE_RESET unregisters; a vCPU reset in the handler unregisters and masks",
	  subtest_reset, NULL, 120 },
	{ "migration: the SDEI attribute read, set back, refused when inconsistent; ENXIO without NP_SDEI",
	  subtest_migrate, NULL, 120 },
	{ "restore_mid_flow: SDEI and async PF state restored with tasks asleep: one WAKE_ALL",
	  subtest_restore, NULL, 120 },
};

int main(int argc, char *argv[])
{
	return apf_main(argc, argv, subtests, ARRAY_SIZE(subtests));
}
