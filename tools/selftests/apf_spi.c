// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_spi: page-ready on an SPI for guests of any size (ABI 1.1,
 * GET_READY), against the same flow on a PPI.
 *
 * The VMM backs a test region with userfaultfd (MISSING mode, each page
 * served after a delay by one reader thread per vCPU) and runs every vCPU
 * in its own thread. Each vCPU's EL0 task faults on its own pages one
 * after the other (the not-present handler puts it to sleep and the next
 * task faults), so all vCPUs have faults in flight at once; then each
 * vCPU waits until every one of its tasks was woken, resumes them (each
 * reads its page's data) and checks that nothing more arrives.
 *
 * Page-ready on a PPI uses the record handshake of apf_util.h on the vCPU
 * that announced the token. Page-ready on the SPI is taken by whichever
 * vCPU the SPI is routed to (vCPU 0: the distributor's reset routing),
 * which calls GET_READY until it answers x3 == 0 and wakes the task of the
 * vCPU that x2 names (its MPIDR affinity): sleepers are keyed by (vCPU,
 * token). Against a 1.0 host (no GET_READY) the guest falls back to the
 * 1.0 handler, which reads the taking vCPU's own record: the test then
 * shows the lost wake-ups of issue 11 (every vCPU but the SPI's target
 * waits for ever).
 *
 * Sub-tests (each in its own process and VM, one TAP line each):
 *   spi_{1,2,4}_vcpus    SPI page-ready, 8 pages per vCPU in flight at once
 *                        on every vCPU: each task woken exactly once, by
 *                        its own token and vCPU; page-ready == not-present
 *                        per vCPU; only NOT_REQUIRED handler runs spurious
 *   ppi_{1,2,4}_vcpus    the same with a PPI page-ready
 *   get_ready_ppi        GET_READY with a PPI page-ready: NOT_SUPPORTED on
 *                        every vCPU
 *   get_ready_empty      GET_READY with nothing queued: NOT_REQUIRED, x1..x3
 *                        zero, on every vCPU; ACK_READY with an SPI:
 *                        NOT_REQUIRED; VERSION 1.2
 *   wake_all_queued      2 vCPUs, the SPI disabled in the distributor while
 *                        both vCPUs' pages come in (their page-ready wait in
 *                        the VM queue); vCPU 1 calls DISABLE; once the SPI is
 *                        enabled again vCPU 0 gets its own token and exactly
 *                        one WAKE_ALL for vCPU 1, none of vCPU 1's void tokens
 */
#include <pthread.h>
#include <linux/sizes.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "apf_util.h"
#include "apf_el0.h"
#include "gic.h"
#include "userfaultfd_util.h"

#define TEST_SLOT		10
#define TEST_GPA		0xc0000000UL
#define MAX_VCPUS		4
#define PAGES_PER_VCPU		8
#define MAX_PAGES		(MAX_VCPUS * PAGES_PER_VCPU)
#define MAX_EVENTS		64
#define PATTERN			0x5aa5a55aa55a5aa5UL
#define SPI_INTID		40	/* the selftests' vGIC has 64 INTIDs */


/* ldr x0, [x1]; svc #0 */
static const u32 el0_task_code[] = { 0xf9400020, 0xd4000001 };

enum mode {
	MODE_CONCURRENT,
	MODE_GET_READY_PPI,
	MODE_GET_READY_EMPTY,
	MODE_WAKE_ALL_QUEUED,
};

/* ---- Guest side */

struct guest_cfg {
	u64 record_gpa[MAX_VCPUS];
	u64 code_gva;
	u64 page_gva[MAX_PAGES];	/* identity mapped: also the IPA */
	u64 token[MAX_PAGES];		/* host-page-aligned IPA */
	u64 nr_pages;			/* per vCPU */
	u64 wait_ms;
	u32 np_intid;
	u32 ready_intid;
	u32 nr_vcpus;
	u32 mode;
};

static struct guest_cfg cfg;

struct vstate {
	struct apf_record record;
	u64 mpidr;			/* MPIDR_EL1 affinity */
	volatile u64 np_count;
	volatile u64 np_spurious;
	volatile u64 ready_count;	/* page-ready for this vCPU's tokens */
	volatile u64 wake_alls;
	volatile u64 ready_spurious;	/* handler runs with nothing to do */
	volatile u64 get_ready_calls;	/* GET_READY made on this vCPU */
	volatile u64 ready_token[MAX_EVENTS];
	volatile u64 handled_elsewhere;	/* entries of this vCPU's woken on another */
	volatile u64 preempted;
	volatile u64 sleeping_pc;
	volatile u64 el1_daif;
	volatile u64 setup_done;
} __attribute__((aligned(64)));

static struct vstate vs[MAX_VCPUS];
/* Host 1.1: the SPI handler uses GET_READY (else the 1.0 record path). */
static volatile u64 vm_wide;
/* wake_all_queued: the step vCPU 0 allows vCPU 1 to take. */
static volatile u64 step;


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

/* Wake the task of @v sleeping on @tok (all of them for WAKE_ALL). */
static void wake(struct vstate *v, u64 tok)
{
	u64 n;

	if (tok == APF_WAKE_ALL) {
		v->wake_alls++;
		return;
	}
	n = v->ready_count;
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

/* The SPI handler of ABI 1.1: any vCPU, for any vCPU. */
static void vm_page_ready(struct vstate *self)
{
	struct arm_smccc_res res;
	struct vstate *v;
	bool fetched = false;

	for (;;) {
		apf_hvc(APF_OP_GET_READY, 0, &res);
		self->get_ready_calls++;
		if (res.a0 != APF_SUCCESS) {
			__GUEST_ASSERT(res.a0 == APF_NOT_REQUIRED, "GET_READY: 0x%lx", res.a0);
			break;
		}
		fetched = true;
		v = vs_of_mpidr(res.a2);
		__GUEST_ASSERT(v, "GET_READY named MPIDR 0x%lx: no such vCPU", res.a2);
		__GUEST_ASSERT(res.a3 <= 1, "GET_READY x3 = %lu", res.a3);
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
	bool from_el0 = (regs->pstate & PSR_MODE_MASK) == PSR_MODE_EL0t;
	u32 intid = gic_get_and_ack_irq();
	u64 tok;

	if (intid == IAR_SPURIOUS)
		return;

	if (intid == cfg.np_intid) {
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
	} else if (intid == cfg.ready_intid && vm_wide) {
		vm_page_ready(v);
	} else if (intid == cfg.ready_intid) {
		/* PPI, or the 1.0 SPI path: this vCPU's own record. */
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

/* Spin until *p == want, at most wait_ms. */
static void wait_for(volatile u64 *p, u64 want, const char *what)
{
	u64 start = read_sysreg(cntvct_el0), limit = ms_to_cycles(cfg.wait_ms);

	while (*p != want)
		__GUEST_ASSERT(read_sysreg(cntvct_el0) - start < limit,
			       "vCPU %u: %s: %lu after %lu ms, want %lu (np %lu, ready %lu)",
			       guest_get_vcpuid(), what, *p, cfg.wait_ms, want,
			       this_vs()->np_count, this_vs()->ready_count);
}

static void guest_setup(u32 cpu)
{
	struct vstate *v = &vs[cpu];
	u32 i;

	v->mpidr = read_sysreg(mpidr_el1) & APF_MPIDR_AFF_MASK;
	if (!cpu)
		vm_wide = cfg.ready_intid >= 32 &&
			  apf_hvc0(APF_OP_VERSION, 0) >= APF_VERSION_1_1;
	gic_init(GIC_V3, cfg.nr_vcpus);
	gic_irq_enable(cfg.np_intid);
	gic_irq_enable(cfg.ready_intid);
	if (cfg.ready_intid >= 32)
		gic_irq_set_config(cfg.ready_intid, true);
	local_irq_enable();

	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_SET_RECORD, cfg.record_gpa[cpu]), APF_SUCCESS);
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_ENABLE, 0), APF_SUCCESS);
	dmb(ish);
	v->setup_done = 1;
	/* Every vCPU's MPIDR is known before any page-ready is handled. */
	for (i = 0; i < cfg.nr_vcpus; i++)
		wait_for(&vs[i].setup_done, 1, "setup of the other vCPUs");
}

static void guest_concurrent(u32 cpu)
{
	struct vstate *v = &vs[cpu];
	u64 sleeping[PAGES_PER_VCPU], seen = 0, i, j, page, val;

	for (i = 0; i < cfg.nr_pages; i++) {
		page = cpu * cfg.nr_pages + i;
		run_el0(cfg.code_gva, cfg.page_gva[page]);
		__GUEST_ASSERT(v->preempted, "vCPU %u page %lu: task not put to sleep (np %lu)",
			       cpu, i, v->np_count);
		sleeping[i] = v->sleeping_pc;
	}
	GUEST_ASSERT_EQ(v->np_count, cfg.nr_pages);

	/* The "other task": wait until every sleeper was woken. */
	wait_for(&v->ready_count, cfg.nr_pages, "page-ready");
	dmb(ish);
	for (j = 0; j < cfg.nr_pages; j++) {
		for (i = 0; i < cfg.nr_pages; i++)
			if (v->ready_token[j] == cfg.token[cpu * cfg.nr_pages + i])
				break;
		__GUEST_ASSERT(i < cfg.nr_pages, "vCPU %u: ready token 0x%lx is none of its pages",
			       cpu, v->ready_token[j]);
		__GUEST_ASSERT(!(seen & BIT(i)), "vCPU %u: page %lu readied twice", cpu, i);
		seen |= BIT(i);
	}

	/* Resume every task: each reads its page, no new not-present. */
	for (i = 0; i < cfg.nr_pages; i++) {
		page = cpu * cfg.nr_pages + i;
		val = run_el0(sleeping[i], cfg.page_gva[page]);
		GUEST_ASSERT(!v->preempted);
		GUEST_ASSERT_EQ(val, cfg.token[page] ^ PATTERN);
	}
	guest_settle(100);
	GUEST_ASSERT_EQ(v->np_count, cfg.nr_pages);
	GUEST_ASSERT_EQ(v->ready_count, cfg.nr_pages);
	GUEST_ASSERT_EQ(v->wake_alls, 0);
	GUEST_SYNC4(v->np_count, v->ready_count, v->ready_spurious, v->handled_elsewhere);
	/* After the sync: the other vCPUs' page-ready are all fetched. */
	GUEST_SYNC1(v->get_ready_calls);
}

static void guest_get_ready_ppi(void)
{
	struct arm_smccc_res res;

	apf_hvc(APF_OP_GET_READY, 0, &res);
	GUEST_ASSERT_EQ(res.a0, APF_NOT_SUPPORTED);
	GUEST_ASSERT_EQ(res.a1 | res.a2 | res.a3, 0);
	GUEST_SYNC4(0, 0, 0, 0);
}

static void guest_get_ready_empty(void)
{
	struct arm_smccc_res res;

	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_VERSION, 0), APF_VERSION_1_2);
	apf_hvc(APF_OP_GET_READY, 0, &res);
	GUEST_ASSERT_EQ(res.a0, APF_NOT_REQUIRED);
	GUEST_ASSERT_EQ(res.a1 | res.a2 | res.a3, 0);
	/* Arguments are ignored. */
	apf_hvc(APF_OP_GET_READY, ~0UL, &res);
	GUEST_ASSERT_EQ(res.a0, APF_NOT_REQUIRED);
	/* Nothing is ever queued behind ready_token with an SPI. */
	GUEST_ASSERT_EQ(apf_hvc0(APF_OP_ACK_READY, 0), APF_NOT_REQUIRED);
	GUEST_ASSERT_EQ(this_vs()->record.ready_token, 0);
	GUEST_ASSERT_EQ(this_vs()->record.ack_ready, 0);
	GUEST_SYNC4(0, 0, 0, 0);
}

/*
 * vCPU 0 owns the SPI (routed to it) and masks it in the distributor while
 * vCPU 0 faults on one page and vCPU 1 on two; both wait until their pages
 * are surely in (their page-ready then waits in the VM queue, with the SPI
 * pending); vCPU 1 disables; vCPU 0 unmasks the SPI.
 */
static void guest_wake_all_queued(u32 cpu)
{
	struct vstate *v = &vs[cpu];
	u64 i, n = cpu ? 2 : 1;

	if (!cpu) {
		gic_irq_disable(cfg.ready_intid);
		dmb(ish);
		step = 1;
	}
	wait_for(&step, 1, "SPI masked");
	for (i = 0; i < n; i++) {
		run_el0(cfg.code_gva, cfg.page_gva[cpu * cfg.nr_pages + i]);
		__GUEST_ASSERT(v->preempted, "vCPU %u page %lu: task not put to sleep", cpu, i);
	}
	/* The pages come in after 20 ms; give the completions time. */
	guest_settle(1000);
	GUEST_ASSERT_EQ(v->ready_count, 0);
	if (cpu) {
		wait_for(&step, 2, "vCPU 0 done faulting");
		GUEST_ASSERT_EQ(apf_hvc0(APF_OP_DISABLE, 0), APF_SUCCESS);
		dmb(ish);
		step = 3;
		wait_for(&v->wake_alls, 1, "WAKE_ALL");
	} else {
		step = 2;
		wait_for(&step, 3, "vCPU 1's DISABLE");
		gic_irq_enable(cfg.ready_intid);
		wait_for(&v->ready_count, 1, "page-ready");
		GUEST_ASSERT_EQ(v->ready_token[0], cfg.token[0]);
	}
	guest_settle(200);
	GUEST_ASSERT_EQ(v->ready_count, cpu ? 0 : 1);
	GUEST_ASSERT_EQ(v->wake_alls, cpu ? 1 : 0);
	GUEST_SYNC4(v->np_count, v->ready_count, v->wake_alls, v->ready_spurious);
}

static void guest_code(void)
{
	u32 cpu = guest_get_vcpuid();

	guest_setup(cpu);
	switch (cfg.mode) {
	case MODE_CONCURRENT:
		guest_concurrent(cpu);
		break;
	case MODE_GET_READY_PPI:
		guest_get_ready_ppi();
		break;
	case MODE_GET_READY_EMPTY:
		guest_get_ready_empty();
		break;
	case MODE_WAKE_ALL_QUEUED:
		guest_wake_all_queued(cpu);
		break;
	default:
		GUEST_FAIL("bad mode %u", cfg.mode);
	}
	GUEST_DONE();
}

/* ---- Host side */

static u64 region_hva, region_size;
static size_t host_psize;
static u64 uffd_copy_errors;

static int uffd_page_handler(int mode, int uffd, struct uffd_msg *msg)
{
	static __thread u64 *buf;
	u64 addr = msg->arg.pagefault.address & ~((u64)host_psize - 1);
	u64 gpa = TEST_GPA + (addr - region_hva);
	int i;

	TEST_ASSERT(addr >= region_hva && addr < region_hva + region_size,
		    "userfault outside the test region: 0x%lx", addr);
	if (!buf) {
		buf = aligned_alloc(host_psize, host_psize);
		TEST_ASSERT(buf, "aligned_alloc");
	}
	for (i = 0; i < host_psize / sizeof(u64); i++)
		buf[i] = gpa ^ PATTERN;

	apf_uffd_copy(uffd, addr, buf, host_psize, &uffd_copy_errors);
	return 0;
}

struct spi_params {
	enum mode mode;
	u32 nr_vcpus;
	u32 ready_intid;
	u64 slots;
	useconds_t uffd_delay_us;
};

struct vcpu_run {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	u64 sync[4];
	u64 get_ready_calls;
	u64 exits;		/* the vCPU's "exits" stat at the end */
};

static void *run_vcpu_fn(void *arg)
{
	struct vcpu_run *r = arg;
	struct ucall uc;
	u64 cmd;

	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_SYNC);
	memcpy(r->sync, uc.args, sizeof(r->sync));
	cmd = apf_run_to_ucall(r->vcpu, &uc);
	if (cmd == UCALL_SYNC) {
		r->get_ready_calls = uc.args[0];
		cmd = apf_run_to_ucall(r->vcpu, &uc);
	}
	TEST_ASSERT_EQ(cmd, UCALL_DONE);
	r->exits = vcpu_get_stat(r->vcpu, exits);
	return NULL;
}

/* Builds the VM, runs every vCPU to its sync and DONE; r[i].sync has x. */
static void spi_run(const struct spi_params *p, struct vcpu_run *r)
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	u64 stride, npages, code;
	struct uffd_desc *uffd;
	struct kvm_vm *vm;
	int i;

	host_psize = getpagesize();
	vm = vm_create_with_vcpus(p->nr_vcpus, guest_code, vcpus);
	TEST_REQUIRE(vm->arch.has_gic);

	vm_init_descriptor_tables(vm);
	for (i = 0; i < p->nr_vcpus; i++)
		vcpu_init_descriptor_tables(vcpus[i]);
	vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, guest_irq_handler);
	vm_install_exception_handler(vm, VECTOR_IRQ_LOWER_64, guest_irq_handler);
	vm_install_sync_handler(vm, VECTOR_SYNC_LOWER_64, ESR_ELx_EC_SVC64, el0_svc_handler);

	stride = max_t(u64, host_psize, vm->page_size);
	npages = (u64)PAGES_PER_VCPU * p->nr_vcpus;
	region_size = npages * stride;
	apf_el0_data_region(vm, TEST_GPA, TEST_SLOT, region_size);
	code = apf_el0_code_page(vm, el0_task_code, sizeof(el0_task_code));

	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < p->nr_vcpus; i++)
		cfg.record_gpa[i] = addr_gva2gpa(vm, (gva_t)&vs[i].record);
	cfg.code_gva = code;
	for (i = 0; i < npages; i++) {
		cfg.page_gva[i] = TEST_GPA + i * stride;
		cfg.token[i] = (TEST_GPA + i * stride) & ~((u64)host_psize - 1);
	}
	cfg.nr_pages = PAGES_PER_VCPU;
	cfg.wait_ms = 20000;
	cfg.np_intid = APF_NP_INTID;
	cfg.ready_intid = p->ready_intid;
	cfg.nr_vcpus = p->nr_vcpus;
	cfg.mode = p->mode;
	sync_global_to_guest(vm, cfg);

	apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE, p->slots, APF_NP_INTID, p->ready_intid);

	region_hva = (u64)addr_gpa2hva(vm, TEST_GPA);
	uffd_copy_errors = 0;
	uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, p->uffd_delay_us,
					(void *)region_hva, region_size,
					p->nr_vcpus, uffd_page_handler);

	for (i = 0; i < p->nr_vcpus; i++) {
		r[i].vcpu = vcpus[i];
		pthread_create(&r[i].thread, NULL, run_vcpu_fn, &r[i]);
	}
	for (i = 0; i < p->nr_vcpus; i++)
		pthread_join(r[i].thread, NULL);

	kvm_vm_free(vm);
	uffd_stop_demand_paging(uffd);
	TEST_ASSERT(!uffd_copy_errors, "%lu userfaultfd copies failed", uffd_copy_errors);
}

static void subtest_concurrent(void *arg)
{
	struct spi_params p = {
		.mode = MODE_CONCURRENT,
		.nr_vcpus = (unsigned long)arg & 0xff,
		.ready_intid = (unsigned long)arg >> 8,
		.uffd_delay_us = 20 * 1000,
	};
	struct vcpu_run r[MAX_VCPUS] = {};
	u64 spurious = 0, elsewhere = 0, calls = 0, exits = 0, np = 0;
	int i;

	spi_run(&p, r);
	for (i = 0; i < p.nr_vcpus; i++) {
		calls += r[i].get_ready_calls;
		exits += r[i].exits;
		np += r[i].sync[0];
		printf("# vCPU %d: %lu not-present, %lu page-ready (%lu handled on another vCPU), %lu spurious page-ready\n",
		       i, r[i].sync[0], r[i].sync[1], r[i].sync[3], r[i].sync[2]);
		TEST_ASSERT_EQ(r[i].sync[0], PAGES_PER_VCPU);
		TEST_ASSERT_EQ(r[i].sync[1], r[i].sync[0]);
		spurious += r[i].sync[2];
		elsewhere += r[i].sync[3];
	}
	if (p.ready_intid >= 32 && p.nr_vcpus > 1)
		TEST_ASSERT(elsewhere > 0, "no page-ready was delivered through another vCPU");
	printf("# %u vCPUs, page-ready INTID %u: %lu spurious handler runs in all, %lu GET_READY for %lu page-ready; %lu vCPU exits in all (setup, ucalls and timer included)\n",
	       p.nr_vcpus, p.ready_intid, spurious, calls, np, exits);
}

static void subtest_one(void *arg)
{
	struct spi_params p = {
		.mode = (unsigned long)arg,
		.nr_vcpus = 2,
		.ready_intid = (unsigned long)arg == MODE_GET_READY_PPI ? APF_READY_INTID : SPI_INTID,
		.uffd_delay_us = 20 * 1000,
	};
	struct vcpu_run r[MAX_VCPUS] = {};

	spi_run(&p, r);
	if (p.mode == MODE_WAKE_ALL_QUEUED) {
		printf("# vCPU 0: %lu not-present, %lu page-ready; vCPU 1: %lu not-present, %lu WAKE_ALL\n",
		       r[0].sync[0], r[0].sync[1], r[1].sync[0], r[1].sync[2]);
		TEST_ASSERT_EQ(r[0].sync[0], 1);
		TEST_ASSERT_EQ(r[1].sync[0], 2);
	}
}

#define CONC(n, intid)	((void *)(unsigned long)((n) | ((intid) << 8)))

static const struct apf_subtest subtests[] = {
	{ "spi_1_vcpu: SPI page-ready, 8 faults in flight, every task woken once",
	  subtest_concurrent, CONC(1, SPI_INTID), 120 },
	{ "spi_2_vcpus: SPI page-ready, 8 faults in flight per vCPU, every task woken once",
	  subtest_concurrent, CONC(2, SPI_INTID), 120 },
	{ "spi_4_vcpus: SPI page-ready, 8 faults in flight per vCPU, every task woken once",
	  subtest_concurrent, CONC(4, SPI_INTID), 180 },
	{ "ppi_1_vcpu: PPI page-ready, 8 faults in flight, every task woken once",
	  subtest_concurrent, CONC(1, APF_READY_INTID), 120 },
	{ "ppi_2_vcpus: PPI page-ready, 8 faults in flight per vCPU, every task woken once",
	  subtest_concurrent, CONC(2, APF_READY_INTID), 120 },
	{ "ppi_4_vcpus: PPI page-ready, 8 faults in flight per vCPU, every task woken once",
	  subtest_concurrent, CONC(4, APF_READY_INTID), 180 },
	{ "get_ready_ppi: GET_READY with a PPI page-ready is NOT_SUPPORTED",
	  subtest_one, (void *)MODE_GET_READY_PPI, 60 },
	{ "get_ready_empty: GET_READY with nothing queued is NOT_REQUIRED; VERSION 1.2",
	  subtest_one, (void *)MODE_GET_READY_EMPTY, 60 },
	{ "wake_all_queued: DISABLE with page-ready queued: one WAKE_ALL, no void token",
	  subtest_one, (void *)MODE_WAKE_ALL_QUEUED, 120 },
};

int main(int argc, char *argv[])
{
	return apf_main(argc, argv, subtests, ARRAY_SIZE(subtests));
}
