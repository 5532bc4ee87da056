// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_migrate: a running guest with async page faults in flight moves from
 * VM A to a second VM B, as a live migration does.
 *
 * Both VMs live in this process and B's memslots map A's memory (the same
 * host pages, as two processes sharing a memfd would), the test region
 * served by one userfaultfd. Each vCPU's EL0 tasks fault on six pages:
 *
 *   pages 0-1  served after 20 ms and their page-ready delivered on A: the
 *              tasks resume and read them ("pages partly present");
 *   pages 2-3  served after 20 ms while the page-ready INTID is masked in
 *              the vGIC: their page-ready is queued (in A's VM queue for the
 *              SPI, in the record with the PPI pending for a PPI) when A
 *              stops;
 *   pages 4-5  not served until B runs: A's fault-ins are still in flight.
 *
 * The VMM then does what a migration does: it reads every vCPU register
 * (KVM_GET_REG_LIST: core, system, timer and firmware registers), the vGIC
 * (distributor, redistributors, CPU interface registers), the async page
 * fault configuration (KVM_ARM_VCPU_ASYNC_PF_CONFIG) and each vCPU's state
 * (KVM_ARM_VCPU_ASYNC_PF_STATE) of A, creates B, enables the capability on
 * B with A's configuration, restores everything and runs B. A is never run
 * again; its in-flight fault-ins complete once the pages are served, while
 * B runs.
 *
 * On B every vCPU must receive exactly one WAKE_ALL; every sleeping task
 * resumes; the tasks of pages 2-3 read their data (present); those of pages
 * 4-5 fault again, get a new not-present on B, and are woken by exactly one
 * page-ready each once the VMM serves them; no page-ready arrives for a
 * page that did not fault on B (A's completions stay in A). Before B runs
 * the two INTIDs must already be edge-triggered in B's vGIC (a PPI's
 * trigger cannot be restored through the vGIC registers). A destination
 * enabled with another configuration refuses A's state with EPROTO.
 *
 * With page-not-present by SDEI (KVM_ARM_ASYNC_PF_NP_SDEI) the tasks go
 * to sleep in the guest's SDEI handler (COMPLETE_AND_RESUME) instead of the
 * not-present PPI handler, and the VMM also moves each vCPU's SDEI state
 * (KVM_ARM_VCPU_ASYNC_PF_SDEI: the handler registered, enabled, the vCPU
 * unmasked), so that the re-faults on B enter the handler again.
 *
 * Sub-tests (each in its own process, one TAP line each):
 *   ppi_2_vcpus           page-ready on a PPI, restore order: registers,
 *                         vGIC, async PF state
 *   spi_2_vcpus           page-ready on SPI 40, the same order
 *   spi_2_vcpus_state_first  SPI 40, async PF state restored before the
 *                         registers and the vGIC
 *   ppi_1_vcpu            one vCPU, PPI
 *   sdei_spi_2_vcpus      page-not-present by SDEI, page-ready on SPI 40
 *   sdei_ppi_1_vcpu_state_first  SDEI, PPI page-ready, the async PF and
 *                         SDEI state restored before the rest
 */
#include <pthread.h>
#include <linux/sizes.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "apf_util.h"
#include "apf_el0.h"
#include "gic.h"
#include "gic_v3.h"
#include "userfaultfd_util.h"

#define TEST_SLOT		10
#define TEST_GPA		0xc0000000UL
#define MAX_VCPUS		2
#define PAGES_PER_VCPU		6
#define MAX_PAGES		(MAX_VCPUS * PAGES_PER_VCPU)
#define MAX_EVENTS		16
#define PATTERN			0x3cc3c33cc33c3cc3UL
#define SPI_INTID		40	/* the selftests' vGIC has 64 INTIDs */
#define NR_IRQS			64


/* Guest syncs: args[0] says which. */
#define SYNC_MASKED		0	/* serve this vCPU's pages 2-3 now */
#define SYNC_MIGRATE		1	/* stop A here */
#define SYNC_REFAULTED		2	/* serve this vCPU's pages 4-5 now */
#define SYNC_RESULT		3

/* ldr x0, [x1]; svc #0 */
static const u32 el0_task_code[] = { 0xf9400020, 0xd4000001 };

/* ---- Guest side */

struct guest_cfg {
	u64 record_gpa[MAX_VCPUS];
	u64 code_gva;
	u64 page_gva[MAX_PAGES];	/* identity mapped: also the IPA */
	u64 token[MAX_PAGES];		/* host-page-aligned IPA */
	u64 wait_ms;
	u32 np_intid;
	u32 ready_intid;
	u32 nr_vcpus;
	u32 sdei;			/* page-not-present by SDEI */
};

static struct guest_cfg cfg;

struct vstate {
	struct apf_record record;
	u64 mpidr;			/* MPIDR_EL1 affinity */
	volatile u64 np_count;
	volatile u64 np_spurious;
	volatile u64 ready_count;	/* page-ready for this vCPU's tokens */
	volatile u64 ready_token[MAX_EVENTS];
	volatile u64 wake_alls;
	volatile u64 ready_at_wake_all;	/* ready_count when WAKE_ALL came */
	volatile u64 ready_spurious;
	volatile u64 preempted;
	volatile u64 sleeping_pc;
	volatile u64 el1_daif;
	volatile u64 setup_done;
	volatile u64 phase1_done;
} __aligned(64);

static struct vstate vs[MAX_VCPUS];
/* Page-ready on the SPI: vCPU 0 masks it for all and unmasks it on B. */
static volatile u64 spi_masked;

static inline struct vstate *this_vs(void)
{
	return &vs[guest_get_vcpuid()];
}

static u64 run_el0(u64 pc, u64 addr)
{
	struct vstate *v = this_vs();

	v->el1_daif = read_sysreg(daif);
	v->preempted = 0;
	return apf_run_el0(pc, addr, PSR_MODE_EL0t);
}

static void back_to_el1(struct ex_regs *regs, struct vstate *v)
{
	regs->pc = (u64)apf_el0_return;
	regs->pstate = PSR_MODE_EL1h | v->el1_daif;
}

static void el0_svc_handler(struct ex_regs *regs)
{
	back_to_el1(regs, this_vs());
}

/*
 * Page-not-present by SDEI. The host enters apf_mig_sdei_entry at EL1h,
 * DAIF masked, SP_EL1 as the task left it (below apf_run_el0's frame),
 * x0-x3 = event, argument, interrupted PC and PSTATE. The C handler puts
 * the task to sleep; COMPLETE_AND_RESUME then restores x0-x17 and resumes
 * at apf_mig_sdei_resume as if an IRQ had been taken from the task, which
 * goes back to apf_run_el0's caller with its DAIF, as back_to_el1() does.
 */
void apf_mig_sdei_entry(void);
void apf_mig_sdei_resume(void);
u64 apf_mig_sdei_handler(u64 event, u64 arg, u64 pc, u64 pstate);
u64 apf_mig_el1_daif(void);
asm(
"	.pushsection .text\n"
"	.balign	4\n"
"	.global	apf_mig_sdei_entry\n"
"apf_mig_sdei_entry:\n"
"	stp	x29, x30, [sp, #-16]!\n"
"	bl	apf_mig_sdei_handler\n"
"	ldp	x29, x30, [sp], #16\n"
"	mov	x1, x0\n"			/* the resume address */
"	movz	x0, #0x0026\n"		/* EVENT_COMPLETE_AND_RESUME */
"	movk	x0, #0xc400, lsl #16\n"
"	hvc	#0\n"
"	b	.\n"
"	.balign	4\n"
"	.global	apf_mig_sdei_resume\n"
"apf_mig_sdei_resume:\n"
"	bl	apf_mig_el1_daif\n"
"	msr	daif, x0\n"
"	b	apf_el0_return\n"
"	.popsection\n");

u64 apf_mig_sdei_handler(u64 event, u64 arg, u64 pc, u64 pstate)
{
	struct vstate *v = this_vs();
	u64 tok = apf_take_not_present(&v->record);

	__GUEST_ASSERT(event == APF_SDEI_EVENT && (pstate & PSR_MODE_MASK) == PSR_MODE_EL0t,
		       "SDEI entry: event 0x%lx, interrupted PSTATE 0x%lx", event, pstate);
	if (!tok) {
		v->np_spurious++;
	} else {
		v->np_count++;
		v->sleeping_pc = pc;
		v->preempted = 1;
	}
	return (u64)apf_mig_sdei_resume;
}

u64 apf_mig_el1_daif(void)
{
	return this_vs()->el1_daif;
}

static void sdei_setup(void)
{
	struct arm_smccc_res res;

	smccc_hvc(APF_SDEI_FN(SDEI_EVENT_REGISTER), APF_SDEI_EVENT, (u64)apf_mig_sdei_entry, 0, 0, 0, 0, 0, &res);
	GUEST_ASSERT_EQ(res.a0, SDEI_SUCCESS);
	smccc_hvc(APF_SDEI_FN(SDEI_EVENT_ENABLE), APF_SDEI_EVENT, 0, 0, 0, 0, 0, 0, &res);
	GUEST_ASSERT_EQ(res.a0, SDEI_SUCCESS);
	smccc_hvc(APF_SDEI_FN(SDEI_PE_UNMASK), 0, 0, 0, 0, 0, 0, 0, &res);
	GUEST_ASSERT_EQ(res.a0, SDEI_SUCCESS);
}

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

/* The SPI handler of ABI 1.1: any vCPU, for any vCPU. */
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
	bool from_el0 = (regs->pstate & PSR_MODE_MASK) == PSR_MODE_EL0t;
	u32 intid = gic_get_and_ack_irq();
	u64 tok;

	if (intid == IAR_SPURIOUS)
		return;

	if (!cfg.sdei && intid == cfg.np_intid) {
		tok = apf_take_not_present(&v->record);
		if (!tok) {
			v->np_spurious++;
		} else {
			v->np_count++;
			if (from_el0) {
				v->sleeping_pc = regs->pc;
				v->preempted = 1;
				back_to_el1(regs, v);
			}
		}
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

/*
 * Enable or disable the page-ready INTID with a single-bit write of
 * GICx_ISENABLER/ICENABLER: the library's gic_irq_disable() writes back
 * every enable bit it reads, which disables the not-present PPI as well.
 */
static void ready_enable(bool on)
{
	u32 intid = cfg.ready_intid, reg = on ? GICD_ISENABLER : GICD_ICENABLER;
	volatile void *base;

	if (intid < 32)
		base = GICR_BASE_GVA + guest_get_vcpuid() * SZ_128K + SZ_64K;
	else
		base = GICD_BASE_GVA;
	writel(BIT(intid % 32), base + reg + intid / 32 * 4);
}

static u64 ms_to_cycles(u64 ms)
{
	return read_sysreg(cntfrq_el0) * ms / 1000;
}

static void guest_settle(u64 ms)
{
	u64 start = read_sysreg(cntvct_el0), limit = ms_to_cycles(ms);

	while (read_sysreg(cntvct_el0) - start < limit)
		cpu_relax();
}

/* Spin until *p >= want, at most wait_ms. */
static void wait_for(volatile u64 *p, u64 want, const char *what)
{
	u64 start = read_sysreg(cntvct_el0), limit = ms_to_cycles(cfg.wait_ms);

	while (*p < want)
		__GUEST_ASSERT(read_sysreg(cntvct_el0) - start < limit,
			       "vCPU %u: %s: %lu after %lu ms, want %lu (np %lu, ready %lu, WAKE_ALL %lu)",
			       guest_get_vcpuid(), what, *p, cfg.wait_ms, want,
			       this_vs()->np_count, this_vs()->ready_count,
			       this_vs()->wake_alls);
}

static void wait_all(volatile u64 *field_of_vs0, const char *what)
{
	u64 off = (u64)field_of_vs0 - (u64)&vs[0];
	u32 i;

	for (i = 0; i < cfg.nr_vcpus; i++)
		wait_for((volatile u64 *)((u64)&vs[i] + off), 1, what);
}

/* Index in this vCPU's ready_token[] of @tok from @from on, or -1. */
static int find_token(struct vstate *v, u64 from, u64 tok)
{
	u64 i;

	for (i = from; i < v->ready_count && i < MAX_EVENTS; i++)
		if (v->ready_token[i] == tok)
			return i;
	return -1;
}

static void check_read(u32 cpu, u64 page, u64 val)
{
	__GUEST_ASSERT(!this_vs()->preempted, "vCPU %u page %lu: task put to sleep again",
		       cpu, page % PAGES_PER_VCPU);
	__GUEST_ASSERT(val == (cfg.token[page] ^ PATTERN),
		       "vCPU %u page %lu: read 0x%lx", cpu, page % PAGES_PER_VCPU, val);
}

static void guest_code(void)
{
	u32 cpu = guest_get_vcpuid();
	struct vstate *v = &vs[cpu];
	u64 base = cpu * PAGES_PER_VCPU, sleeping[PAGES_PER_VCPU];
	u64 i, ready_base, np_base;

	/* ---- On A. */
	v->mpidr = read_sysreg(mpidr_el1) & APF_MPIDR_AFF_MASK;
	gic_init(GIC_V3, cfg.nr_vcpus);
	if (cfg.sdei)
		sdei_setup();
	else
		gic_irq_enable(cfg.np_intid);
	gic_irq_enable(cfg.ready_intid);
	if (cfg.ready_intid >= 32)
		gic_irq_set_config(cfg.ready_intid, true);
	local_irq_enable();
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_SET_RECORD, cfg.record_gpa[cpu]), APF_SUCCESS);
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_ENABLE, 0), APF_SUCCESS);
	dmb(ish);
	v->setup_done = 1;
	wait_all(&vs[0].setup_done, "setup of the other vCPUs");

	/* Pages 0-1: in flight, then woken and read on A. */
	for (i = 0; i < 2; i++) {
		run_el0(cfg.code_gva, cfg.page_gva[base + i]);
		__GUEST_ASSERT(v->preempted, "vCPU %u page %lu: task not put to sleep", cpu, i);
		sleeping[i] = v->sleeping_pc;
	}
	wait_for(&v->ready_count, 2, "page-ready of pages 0-1");
	for (i = 0; i < 2; i++) {
		__GUEST_ASSERT(find_token(v, 0, cfg.token[base + i]) >= 0,
			       "vCPU %u: no page-ready for page %lu", cpu, i);
		check_read(cpu, base + i, run_el0(sleeping[i], cfg.page_gva[base + i]));
	}

	/*
	 * Pages 2-5 fault while page-ready can be taken (else the host
	 * blocks instead: nothing could wake the task), then page-ready is
	 * masked in the vGIC and the VMM serves pages 2-3: their page-ready
	 * is queued; 4-5 stay remote.
	 */
	for (i = 2; i < PAGES_PER_VCPU; i++) {
		run_el0(cfg.code_gva, cfg.page_gva[base + i]);
		__GUEST_ASSERT(v->preempted, "vCPU %u page %lu: task not put to sleep", cpu, i);
		sleeping[i] = v->sleeping_pc;
	}
	dmb(ish);
	v->phase1_done = 1;
	if (cfg.ready_intid >= 32) {
		if (!cpu) {
			wait_all(&vs[0].phase1_done, "the other vCPUs' faults");
			ready_enable(false);
			dmb(ish);
			spi_masked = 1;
		}
		wait_for(&spi_masked, 1, "the SPI masked");
	} else {
		ready_enable(false);
	}
	GUEST_SYNC1(SYNC_MASKED);
	/* Pages 2-3 are served after 20 ms: their completions are queued. */
	guest_settle(500);
	GUEST_SYNC3(SYNC_MIGRATE, v->np_count, v->ready_count);

	/* ---- On B, from here on. */
	np_base = v->np_count;
	if (cfg.ready_intid < 32 || !cpu)
		ready_enable(true);
	wait_for(&v->wake_alls, 1, "WAKE_ALL on B");
	dmb(ish);
	/*
	 * Before the WAKE_ALL only a page-ready A had already delivered (the
	 * PPI's record, pending in the vGIC state) may arrive: pages 2-3.
	 */
	for (i = 2; i < v->ready_at_wake_all && i < MAX_EVENTS; i++)
		__GUEST_ASSERT(v->ready_token[i] == cfg.token[base + 2] ||
			       v->ready_token[i] == cfg.token[base + 3],
			       "vCPU %u: page-ready 0x%lx before the WAKE_ALL on B", cpu,
			       v->ready_token[i]);
	ready_base = v->ready_at_wake_all;

	/* Every task resumes: 2-3 are present, 4-5 fault again on B. */
	for (i = 2; i < 4; i++)
		check_read(cpu, base + i, run_el0(sleeping[i], cfg.page_gva[base + i]));
	for (i = 4; i < PAGES_PER_VCPU; i++) {
		run_el0(sleeping[i], cfg.page_gva[base + i]);
		__GUEST_ASSERT(v->preempted, "vCPU %u page %lu: not remote on B", cpu, i);
		sleeping[i] = v->sleeping_pc;
	}
	GUEST_ASSERT_EQ(v->np_count, np_base + 2);
	GUEST_SYNC3(SYNC_REFAULTED, v->np_count, v->ready_count);

	wait_for(&v->ready_count, ready_base + 2, "page-ready of pages 4-5 on B");
	dmb(ish);
	for (i = 4; i < PAGES_PER_VCPU; i++) {
		__GUEST_ASSERT(find_token(v, ready_base, cfg.token[base + i]) >= 0,
			       "vCPU %u: no page-ready on B for page %lu", cpu, i);
		check_read(cpu, base + i, run_el0(sleeping[i], cfg.page_gva[base + i]));
	}
	/* Nothing else arrives: no late page-ready of A, no second WAKE_ALL. */
	guest_settle(300);
	GUEST_ASSERT_EQ(v->ready_count, ready_base + 2);
	GUEST_ASSERT_EQ(v->wake_alls, 1);
	GUEST_ASSERT_EQ(v->np_count, np_base + 2);
	GUEST_ASSERT_EQ(v->np_spurious, 0);
	GUEST_SYNC4(SYNC_RESULT, v->np_count, v->ready_count, v->ready_spurious);
	GUEST_DONE();
}

/* ---- Host side */

static u64 region_hva, region_size;
static size_t host_psize;
static u64 uffd_copy_errors;
static struct uffd_desc *uffd;
/* Page index -> may be served (pages 4-5 of each vCPU only once B runs). */
static volatile int page_open[MAX_PAGES];

static int serve_page(int fd, u64 addr)
{
	static __thread u64 *buf;
	u64 gpa = TEST_GPA + (addr - region_hva);
	int i;

	if (!buf) {
		buf = aligned_alloc(host_psize, host_psize);
		TEST_ASSERT(buf, "aligned_alloc");
	}
	for (i = 0; i < host_psize / sizeof(u64); i++)
		buf[i] = (gpa & ~((u64)host_psize - 1)) ^ PATTERN;

	apf_uffd_copy(fd, addr, buf, host_psize, &uffd_copy_errors);
	return 0;
}

static int uffd_page_handler(int mode, int fd, struct uffd_msg *msg)
{
	u64 addr = msg->arg.pagefault.address & ~((u64)host_psize - 1);
	u64 page;

	TEST_ASSERT(addr >= region_hva && addr < region_hva + region_size,
		    "userfault outside the test region: 0x%lx", addr);
	page = (addr - region_hva) / host_psize;
	/* A closed page stays remote: its faulting thread keeps waiting. */
	if (!page_open[page])
		return 0;
	return serve_page(fd, addr);
}

struct mig_params {
	u32 nr_vcpus;
	u32 ready_intid;
	bool state_first;	/* restore the async PF state before the rest */
	bool sdei;		/* page-not-present by SDEI */
};

struct mig_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	u64 stride;
};

/* The same construction for A and B: same memslots, same guest layout. */
static void build_vm(struct mig_vm *m, const struct mig_params *p)
{
	u64 npages, code;
	struct kvm_vm *vm;
	int i;

	vm = vm_create_with_vcpus(p->nr_vcpus, guest_code, m->vcpus);
	TEST_REQUIRE(vm->arch.has_gic);
	m->vm = vm;

	vm_init_descriptor_tables(vm);
	for (i = 0; i < p->nr_vcpus; i++)
		vcpu_init_descriptor_tables(m->vcpus[i]);
	vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, guest_irq_handler);
	vm_install_exception_handler(vm, VECTOR_IRQ_LOWER_64, guest_irq_handler);
	vm_install_sync_handler(vm, VECTOR_SYNC_LOWER_64, ESR_ELx_EC_SVC64, el0_svc_handler);

	m->stride = max_t(u64, host_psize, vm->page_size);
	npages = (u64)PAGES_PER_VCPU * p->nr_vcpus;
	region_size = npages * m->stride;
	apf_el0_data_region(vm, TEST_GPA, TEST_SLOT, region_size);
	code = apf_el0_code_page(vm, el0_task_code, sizeof(el0_task_code));

	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < p->nr_vcpus; i++)
		cfg.record_gpa[i] = addr_gva2gpa(vm, (gva_t)&vs[i].record);
	cfg.code_gva = code;
	for (i = 0; i < npages; i++) {
		cfg.page_gva[i] = TEST_GPA + i * m->stride;
		cfg.token[i] = (TEST_GPA + i * m->stride) & ~((u64)host_psize - 1);
	}
	cfg.wait_ms = 20000;
	cfg.np_intid = p->sdei ? 0 : APF_NP_INTID;
	cfg.ready_intid = p->ready_intid;
	cfg.nr_vcpus = p->nr_vcpus;
	cfg.sdei = p->sdei;
	sync_global_to_guest(vm, cfg);
}

/*
 * B's memslots map A's memory from now on, and B's library view of guest
 * memory (ucalls, globals) reads A's pages too. B's own mapping is still
 * what kvm_vm_free() unmaps.
 */
static void share_memory(struct kvm_vm *b, struct kvm_vm *a)
{
	struct userspace_mem_region *rb, *ra;
	struct kvm_userspace_memory_region2 r;
	int ctr;

	hash_for_each(b->regions.slot_hash, ctr, rb, slot_node) {
		ra = memslot2region(a, rb->region.slot);
		TEST_ASSERT(ra->region.guest_phys_addr == rb->region.guest_phys_addr &&
			    ra->region.memory_size == rb->region.memory_size,
			    "slot %u differs between A and B", rb->region.slot);
		r = rb->region;
		r.memory_size = 0;
		vm_ioctl(b, KVM_SET_USER_MEMORY_REGION2, &r);
		r = rb->region;
		r.userspace_addr = ra->region.userspace_addr;
		vm_ioctl(b, KVM_SET_USER_MEMORY_REGION2, &r);
		rb->region.userspace_addr = r.userspace_addr;
		rb->host_mem = ra->host_mem;
	}
}

/* Every register KVM_GET_REG_LIST names, from A's vCPU to B's. */
static void copy_regs(struct kvm_vcpu *dst, struct kvm_vcpu *src)
{
	struct kvm_reg_list *list = vcpu_get_reg_list(src);
	u8 buf[256] __aligned(16);
	u64 i, n = 0;

	for (i = 0; i < list->n; i++) {
		struct kvm_one_reg reg = { .id = list->reg[i], .addr = (u64)buf };

		TEST_ASSERT(KVM_REG_SIZE(reg.id) <= sizeof(buf), "register 0x%llx too big", reg.id);
		vcpu_ioctl(src, KVM_GET_ONE_REG, &reg);
		TEST_ASSERT(!__vcpu_ioctl(dst, KVM_SET_ONE_REG, &reg),
			    "restoring register 0x%llx: errno %d", reg.id, errno);
		n++;
	}
	free(list);
	TEST_ASSERT(n > 0, "no registers");
}

static u64 vgic_mpidr_attr(struct kvm_vcpu *vcpu)
{
	u64 mpidr = vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_MPIDR_EL1));

	/* Aff3 in bits 63:56, Aff2..Aff0 in 55:32. */
	return (((mpidr >> 32) & 0xff) << 56) | ((mpidr & 0xffffff) << 32);
}

static void copy_gic_reg(int dst, int src, u32 group, u64 attr)
{
	u32 val;

	kvm_device_attr_get(src, group, attr, &val);
	TEST_ASSERT(!__kvm_device_attr_set(dst, group, attr, &val),
		    "restoring vGIC group %u attr 0x%lx: errno %d", group, attr, errno);
}

#define PACK_SR(r)	((sys_reg_Op0(r) << 14) | (sys_reg_Op1(r) << 11) | \
			 (sys_reg_CRn(r) << 7) | (sys_reg_CRm(r) << 3) | sys_reg_Op2(r))

/* In the order a VMM restores them: the control registers first. */
static const u64 icc_regs[] = {
	SYS_ICC_SRE_EL1, SYS_ICC_CTLR_EL1, SYS_ICC_IGRPEN0_EL1, SYS_ICC_IGRPEN1_EL1,
	SYS_ICC_PMR_EL1, SYS_ICC_BPR0_EL1, SYS_ICC_BPR1_EL1, SYS_ICC_AP0R0_EL1,
	SYS_ICC_AP1R0_EL1,
};

/* The vGIC state a GICv3 without LPIs has, for NR_IRQS INTIDs. */
static void copy_vgic(struct mig_vm *b, struct mig_vm *a, u32 nr_vcpus)
{
	int dst = b->vm->arch.gic_fd, src = a->vm->arch.gic_fd;
	u32 dist = KVM_DEV_ARM_VGIC_GRP_DIST_REGS, redist = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
	u64 off, mp, val;
	u32 i, r;

	copy_gic_reg(dst, src, dist, GICD_CTLR);
	for (off = 4; off < NR_IRQS / 8; off += 4) {
		copy_gic_reg(dst, src, dist, GICD_IGROUPR + off);
		copy_gic_reg(dst, src, dist, GICD_ISENABLER + off);
		copy_gic_reg(dst, src, dist, GICD_ISPENDR + off);
		copy_gic_reg(dst, src, dist, GICD_ISACTIVER + off);
	}
	for (off = 32; off < NR_IRQS; off += 4)
		copy_gic_reg(dst, src, dist, GICD_IPRIORITYR + off);
	for (off = 8; off < NR_IRQS / 4; off += 4)
		copy_gic_reg(dst, src, dist, GICD_ICFGR + off);
	for (off = 32 * 8; off < NR_IRQS * 8; off += 4)
		copy_gic_reg(dst, src, dist, GICD_IROUTER + off);

	for (i = 0; i < nr_vcpus; i++) {
		mp = vgic_mpidr_attr(a->vcpus[i]);
		TEST_ASSERT_EQ(mp, vgic_mpidr_attr(b->vcpus[i]));
		copy_gic_reg(dst, src, redist, mp | GICR_CTLR);
		copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_IGROUPR0));
		copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_ISENABLER0));
		copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_ISPENDR0));
		copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_ISACTIVER0));
		for (off = 0; off < 32; off += 4)
			copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_IPRIORITYR0 + off));
		copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_ICFGR0));
		copy_gic_reg(dst, src, redist, mp | (SZ_64K + GICR_ICFGR0 + 4));
		for (r = 0; r < ARRAY_SIZE(icc_regs); r++) {
			u64 attr = mp | PACK_SR(icc_regs[r]);

			kvm_device_attr_get(src, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, attr, &val);
			TEST_ASSERT(!__kvm_device_attr_set(dst, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
							   attr, &val),
				    "restoring ICC register 0x%lx: errno %d", icc_regs[r], errno);
		}
	}
}

/* Is @intid edge-triggered in @vcpu's view of the vGIC (ICFGR bit 2n+1)? */
static bool intid_is_edge(struct mig_vm *m, struct kvm_vcpu *vcpu, u32 intid)
{
	u32 val, group = KVM_DEV_ARM_VGIC_GRP_DIST_REGS;
	u64 attr = GICD_ICFGR + intid / 16 * 4;

	if (intid < 32) {
		group = KVM_DEV_ARM_VGIC_GRP_REDIST_REGS;
		attr = vgic_mpidr_attr(vcpu) | (SZ_64K + attr);
	}
	kvm_device_attr_get(m->vm->arch.gic_fd, group, attr, &val);
	return val & BIT((intid % 16) * 2 + 1);
}

struct vcpu_run {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	u32 idx;
	u64 migrate[4];
	u64 refaulted[4];
	u64 result[4];
};

/* Opens pages [from, to) of vCPU @idx and serves them (after the delay). */
static void serve_pages(u32 idx, u32 from, u32 to)
{
	u64 page;

	usleep(20 * 1000);
	for (page = idx * PAGES_PER_VCPU + from; page < idx * PAGES_PER_VCPU + to; page++) {
		page_open[page] = 1;
		serve_page(uffd->uffd, region_hva + page * host_psize);
	}
}

/* A's vCPU: up to its migration point. */
static void *run_a_fn(void *arg)
{
	struct vcpu_run *r = arg;
	struct ucall uc;

	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], SYNC_MASKED);
	serve_pages(r->idx, 2, 4);
	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], SYNC_MIGRATE);
	memcpy(r->migrate, uc.args, sizeof(r->migrate));
	return NULL;
}

/* B's vCPU: serves its own pages 4-5 once they faulted again on B. */
static void *run_b_fn(void *arg)
{
	struct vcpu_run *r = arg;
	struct ucall uc;

	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], SYNC_REFAULTED);
	memcpy(r->refaulted, uc.args, sizeof(r->refaulted));
	serve_pages(r->idx, 4, PAGES_PER_VCPU);
	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], SYNC_RESULT);
	memcpy(r->result, uc.args, sizeof(r->result));
	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_DONE);
	return NULL;
}

static void restore_apf_state(struct mig_vm *b, struct kvm_arm_async_pf_state *st,
			      struct kvm_arm_async_pf_sdei *sdei, u32 nr_vcpus)
{
	u32 i;

	for (i = 0; i < nr_vcpus; i++) {
		vcpu_device_attr_set(b->vcpus[i], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st[i]);
		if (sdei)
			vcpu_device_attr_set(b->vcpus[i], KVM_ARM_VCPU_ASYNC_PF_CTRL,
					     KVM_ARM_VCPU_ASYNC_PF_SDEI, &sdei[i]);
	}
}

static void subtest_migrate(void *arg)
{
	const struct mig_params *p = arg;
	struct kvm_arm_async_pf_state st[MAX_VCPUS];
	struct kvm_arm_async_pf_sdei sdei[MAX_VCPUS];
	struct kvm_arm_async_pf_config conf, wrong;
	u64 flags = KVM_ARM_ASYNC_PF_ENABLE | (p->sdei ? KVM_ARM_ASYNC_PF_NP_SDEI : 0);
	u32 np_intid = p->sdei ? 0 : APF_NP_INTID;
	struct vcpu_run r[MAX_VCPUS] = {};
	struct mig_vm a, b;
	u64 page;
	int i, ret;

	host_psize = getpagesize();
	for (page = 0; page < MAX_PAGES; page++)
		page_open[page] = page % PAGES_PER_VCPU < 2;

	/* VM A runs until every vCPU has its faults in flight. */
	build_vm(&a, p);
	apf_enable_cap(a.vm, flags, 0, np_intid, p->ready_intid);
	region_hva = (u64)addr_gpa2hva(a.vm, TEST_GPA);
	TEST_ASSERT(a.stride == host_psize, "guest pages larger than host pages");
	uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, 20 * 1000,
					(void *)region_hva, region_size, 1, uffd_page_handler);
	for (i = 0; i < p->nr_vcpus; i++) {
		r[i].vcpu = a.vcpus[i];
		r[i].idx = i;
		pthread_create(&r[i].thread, NULL, run_a_fn, &r[i]);
	}
	for (i = 0; i < p->nr_vcpus; i++)
		pthread_join(r[i].thread, NULL);
	for (i = 0; i < p->nr_vcpus; i++)
		printf("# A, vCPU %d at the migration point: %lu not-present, %lu page-ready\n",
		       i, r[i].migrate[1], r[i].migrate[2]);

	/* Save the async PF configuration and state. */
	vcpu_device_attr_get(a.vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
			     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &conf);
	TEST_ASSERT(conf.args[0] == flags && conf.args[1] == 64 &&
		    conf.args[2] == np_intid && conf.args[3] == p->ready_intid,
		    "CONFIG read back %llu/%llu/%llu/%llu", conf.args[0], conf.args[1],
		    conf.args[2], conf.args[3]);
	for (i = 0; i < p->nr_vcpus; i++) {
		vcpu_device_attr_get(a.vcpus[i], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st[i]);
		TEST_ASSERT(st[i].flags & APF_STATE_FLAG_ENABLED, "vCPU %d not enabled on A", i);
		TEST_ASSERT(!memcmp(st[i].config, conf.args, sizeof(conf.args)),
			    "vCPU %d: the state does not carry the VM configuration", i);
		if (!p->sdei)
			continue;
		vcpu_device_attr_get(a.vcpus[i], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_SDEI, &sdei[i]);
		/* Registered and enabled, unmasked, no handler running. */
		TEST_ASSERT(sdei[i].flags == (KVM_ARM_ASYNC_PF_SDEI_REGISTERED |
					      KVM_ARM_ASYNC_PF_SDEI_ENABLED) &&
			    sdei[i].entry_point,
			    "vCPU %d: SDEI state flags 0x%llx entry 0x%llx at the migration point",
			    i, sdei[i].flags, sdei[i].entry_point);
	}

	/* VM B: the same shape, on A's memory. */
	build_vm(&b, p);
	share_memory(b.vm, a.vm);

	/* A destination configured otherwise refuses A's state. */
	apf_enable_cap(b.vm, flags, 32, np_intid, p->ready_intid);
	ret = __vcpu_device_attr_set(b.vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_STATE, &st[0]);
	TEST_ASSERT(ret && errno == EPROTO,
		    "state of a 64-slot VM restored on a 32-slot VM: ret %d errno %d", ret, errno);
	wrong = conf;
	ret = __vcpu_device_attr_set(b.vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
				     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &wrong);
	TEST_ASSERT(ret && errno == EPROTO, "CONFIG check on a 32-slot VM: ret %d errno %d",
		    ret, errno);
	apf_enable_cap(b.vm, 0, 0, 0, 0);

	/* The migration: enable with A's configuration, then restore. */
	apf_enable_cap(b.vm, conf.args[0], conf.args[1], conf.args[2], conf.args[3]);
	vcpu_device_attr_set(b.vcpus[0], KVM_ARM_VCPU_ASYNC_PF_CTRL,
			     KVM_ARM_VCPU_ASYNC_PF_CONFIG, &conf);
	if (p->state_first)
		restore_apf_state(&b, st, p->sdei ? sdei : NULL, p->nr_vcpus);
	for (i = 0; i < p->nr_vcpus; i++)
		copy_regs(b.vcpus[i], a.vcpus[i]);
	copy_vgic(&b, &a, p->nr_vcpus);
	if (!p->state_first)
		restore_apf_state(&b, st, p->sdei ? sdei : NULL, p->nr_vcpus);

	for (i = 0; i < p->nr_vcpus; i++) {
		TEST_ASSERT(p->sdei || intid_is_edge(&b, b.vcpus[i], APF_NP_INTID),
			    "B, vCPU %d: not-present INTID %d is level-triggered before B runs",
			    i, APF_NP_INTID);
		TEST_ASSERT(intid_is_edge(&b, b.vcpus[i], p->ready_intid),
			    "B, vCPU %d: page-ready INTID %u is level-triggered before B runs",
			    i, p->ready_intid);
	}

	/* B runs; A never again. */
	for (i = 0; i < p->nr_vcpus; i++) {
		r[i].vcpu = b.vcpus[i];
		pthread_create(&r[i].thread, NULL, run_b_fn, &r[i]);
	}
	for (i = 0; i < p->nr_vcpus; i++)
		pthread_join(r[i].thread, NULL);
	for (i = 0; i < p->nr_vcpus; i++) {
		printf("# B, vCPU %d: %lu not-present, %lu page-ready in all (one WAKE_ALL), %lu spurious page-ready\n",
		       i, r[i].result[1], r[i].result[2], r[i].result[3]);
		TEST_ASSERT_EQ(r[i].result[1], PAGES_PER_VCPU + 2);
	}

	kvm_vm_free(b.vm);
	kvm_vm_free(a.vm);
	uffd_stop_demand_paging(uffd);
	TEST_ASSERT(!uffd_copy_errors, "%lu userfaultfd copies failed", uffd_copy_errors);
}

static const struct mig_params ppi_2 = { 2, APF_READY_INTID, false, false };
static const struct mig_params spi_2 = { 2, SPI_INTID, false, false };
static const struct mig_params spi_2_first = { 2, SPI_INTID, true, false };
static const struct mig_params ppi_1 = { 1, APF_READY_INTID, false, false };
static const struct mig_params sdei_spi_2 = { 2, SPI_INTID, false, true };
static const struct mig_params sdei_ppi_1_first = { 1, APF_READY_INTID, true, true };

static const struct apf_subtest subtests[] = {
	{ "ppi_2_vcpus: A to B with faults in flight and page-ready queued, PPI page-ready",
	  subtest_migrate, (void *)&ppi_2, 180 },
	{ "spi_2_vcpus: A to B with faults in flight and page-ready queued, SPI page-ready",
	  subtest_migrate, (void *)&spi_2, 180 },
	{ "spi_2_vcpus_state_first: the same, async PF state restored before registers and vGIC",
	  subtest_migrate, (void *)&spi_2_first, 180 },
	{ "ppi_1_vcpu: A to B, one vCPU, PPI page-ready", subtest_migrate, (void *)&ppi_1, 180 },
	{ "sdei_spi_2_vcpus: A to B, page-not-present by SDEI, SPI page-ready",
	  subtest_migrate, (void *)&sdei_spi_2, 180 },
	{ "sdei_ppi_1_vcpu_state_first: SDEI, PPI page-ready, state restored first",
	  subtest_migrate, (void *)&sdei_ppi_1_first, 180 },
};

int main(int argc, char *argv[])
{
	return apf_main(argc, argv, subtests, ARRAY_SIZE(subtests));
}
