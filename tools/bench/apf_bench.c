// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_bench: what asynchronous page faults buy, and what they cost.
 *
 * A benchmark, not a test: it prints figures and exits 0 whenever it could
 * run (KSFT_SKIP if there is no provider and /kvm_apf.ko cannot be loaded,
 * 1 if a measurement could not be taken at all). Targets that are missed are
 * reported as MISSED on the APF-BENCH-RESULT lines, not by the exit status.
 *
 * 1. Remote stalls (post-copy stand-in). NR_REMOTE guest pages are backed
 *    by userfaultfd (MISSING) and served by a VMM thread after a delay D
 *    (1 ms, then 10 ms). The guest (EL1 only) has two "tasks":
 *      A  touches the pages one after the other;
 *      B  a work loop (counter + CNTVCT samples of (t, work) every 100 us).
 *    In mode "async" the VMM enables KVM_CAP_ARM_ASYNC_PF with ALLOW_EL1 and
 *    the guest ENABLEs with NOTIFY_EL1. On page-not-present the IRQ handler
 *    reads and clears not_present_token (no hypercall) and switches to B (B
 *    runs nested in the handler, with interrupts unmasked, i.e. A is
 *    "asleep" below it); on page-ready for A's token the handler reads and
 *    clears ready_token (ACK_READY only if the record's ack_ready is set), B
 *    stops and A resumes (re-executes the access, which now finds the page
 *    in). A notification whose token is 0 is spurious: counted, ignored. In
 *    mode "sync" the capability is not enabled: the access blocks the vCPU
 *    in the host for D.
 *
 *    Definitions (all times from the guest's CNTVCT, which keeps counting
 *    while the vCPU is blocked in the host):
 *      stall_i     = [t before A's access to page i, t after it completes]:
 *                    the wall time A waits for remote page i;
 *      B time      = sum over B's runs of [B start, entry of the page-ready
 *                    interrupt that ends it]; B only runs inside stalls;
 *      utilization = B time / sum of stall_i: the share of the remote-stall
 *                    wall time the vCPU spent running guest work. In sync
 *                    mode B never runs: 0 by construction, measured the same
 *                    way.
 *      util_work   = cross-check that also counts time lost to exits while
 *                    B "runs": B's iterations during the stalls / (B's
 *                    fault-free iteration rate, measured in the same VM
 *                    just before, x sum of stall_i).
 *    One extra remote page is touched first as a warm-up and not counted
 *    (one-off start-up costs of the worker and the uffd thread).
 *    Exits per async fault: the vCPU's binary stat "exits" over the remote
 *    phase (minus the ucall that ends it) / not-present notifications the
 *    guest received. "net" subtracts the background exits of a running vCPU
 *    (host ticks, ...), measured in the same VM over a fault-free run of B
 *    and scaled to B's time in the phase; "raw" does not. With this ABI on
 *    a vGICv3 the floor is 2: the stage-2 fault and the kick that injects
 *    page-ready into the running vCPU (the host maps the page then, so the
 *    re-executed access does not fault). There is no ACK_NOT_PRESENT (the guest clears the token in
 *    the record), no EOI maintenance exit (both notifications are
 *    edge-triggered), and ACK_READY only when completions queue up behind
 *    an unread page-ready (ack_ready set; "acks" on the result line).
 *
 *    Cost of one exit, measured in the same VM right after B's fault-free
 *    run: the guest times NR_NULL_HVC back-to-back null hypercalls
 *    (SMCCC_VERSION over hvc, answered in the kernel by KVM: an exit to the
 *    host and straight back, no VMM involved):
 *      exit_us              = CNTVCT time of those calls / NR_NULL_HVC, in
 *                             microseconds: the mean cost of one exit round
 *                             trip (it includes the share of background
 *                             exits that fall into the span, as the remote
 *                             phase does);
 *      not_b_per_page_ms    = (sum of stall_i - B time) / NR_REMOTE: the
 *                             wall time per remote page in which B does not
 *                             run (in async mode: per async fault);
 *      lost_exits_per_fault = not_b_per_page / exit_us: that lost time
 *                             counted in exit round trips of the same VM.
 *                             Unlike the times, it does not depend on the
 *                             speed of the emulator (TCG inflates every exit
 *                             to a fraction of a millisecond).
 *    The table also shows, per delay D, a PROJECTION (not a measurement):
 *      utilization_projected(e) = 1 - lost_exits_per_fault * e / (D in us)
 *    with e = 2 us, a typical VM exit round trip on hardware (an assumed
 *    figure, not measured here). The MET/MISSED verdicts use the measured
 *    utilization only.
 *
 * 2. Present-page demand paging. NR_PRESENT pages, present in the host
 *    (the VMM memsets them, no userfaultfd) but not in stage 2, are written
 *    once each by the guest; pages/s from CNTVCT. Configurations:
 *      loaded_cap    module loaded, capability enabled (ALLOW_EL1), guest
 *                    ENABLEd with NOTIFY_EL1: every fault goes through the
 *                    provider;
 *      loaded_nocap  module loaded, capability not enabled on the VM;
 *      unloaded      kvm_apf unloaded (delete_module) -- the patched kernel
 *                    without a provider.
 *    Five rounds, alternating; each figure is the second of two runs (the
 *    first is thrown away: see present_measure()); the median of each;
 *    ratio loaded_cap / unloaded. The module is loaded again (finit_module /kvm_apf.ko) after
 *    each "unloaded" run, so the system ends as it began.
 *
 * "apf_bench remote" runs part 1 only (e.g. to trace its exits).
 *
 * Each VM runs in a child process (a failed assertion costs one figure, not
 * the run) with results in shared memory. Under TCG with nested KVM absolute
 * times are meaningless: only the ratios are.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>

#include "apf_util.h"
#include "gic.h"
#include "userfaultfd_util.h"

#define NR_REMOTE		16
#define NR_PRESENT		4096
#define MAX_SAMPLES		16384
#define SAMPLE_PERIOD_US	100
#define CTRL_MS			30
#define WAIT_MS			10000	/* bound on one wait for page-ready */
#define PRESENT_ROUNDS		5
#define SETTLE_S		2	/* after a module unload or load */
#define SERIES_POINTS		250	/* printed points per series, at most */
#define PATTERN			0x5a5aa5a5c3c33c3cUL
#define NR_NULL_HVC		2000	/* null hypercalls timed for exit_us */
/*
 * Assumed cost of one VM exit round trip on hardware, for the projection in
 * the table only: a typical figure, not measured by this benchmark.
 */
#define PROJ_EXIT_US		2.0

#define REMOTE_SLOT		10
#define SAMPLE_SLOT		11
#define PRESENT_SLOT		12
#define REMOTE_GPA		0xc0000000UL
#define SAMPLE_GPA		0xd0000000UL
#define PRESENT_GPA		0xe0000000UL

/* Targets of the issue. */
#define TARGET_UTIL		0.95
#define TARGET_RATE_RATIO	0.98
#define TARGET_EXITS		3.0

enum bench_mode { BENCH_REMOTE, BENCH_PRESENT };

/* ucall SYNC stages */
enum { ST_CTRL_START = 1, ST_CTRL_END, ST_REMOTE_START, ST_REMOTE_END,
       ST_PRESENT_START, ST_PRESENT_END, ST_EXIT_START, ST_EXIT_END };

struct sample {
	u64 t;		/* CNTVCT */
	u64 work;	/* B's iterations so far */
};

/* ---- Guest side */

struct bench_cfg {
	u64 mode;
	u64 apf;		/* register + ENABLE(NOTIFY_EL1) */
	u64 record_gpa;
	u64 nr_pages;
	u64 base_gva;		/* identity mapped */
	u64 stride;
	u64 np_intid;
	u64 ready_intid;
};

static struct bench_cfg cfg;

struct bench_state {
	struct apf_record record;
	/* notifications */
	volatile u64 np_count;
	volatile u64 ready_count;
	volatile u64 np_other;		/* np for a token that is not A's */
	volatile u64 spurious;		/* token 0, or an unexpected INTID */
	u64 ready_acks;			/* ACK_READY calls (ack_ready was set) */
	volatile u64 cur_token;		/* A's page */
	volatile u64 ready_for_cur;
	volatile u64 ready_at;		/* CNTVCT at the page-ready entry */
	volatile u64 b_running;
	volatile u64 b_timeouts;
	/* B */
	volatile u64 work;
	u64 b_cycles;
	u64 stall_cycles;
	u64 stall_work;
	u64 ctrl_cycles;
	u64 ctrl_work;
	u64 exit_cycles;		/* NR_NULL_HVC null hypercalls */
	u64 exit_ret;			/* what the last one returned */
	u64 data_errors;
	u64 nsamples;
	/* present pass */
	u64 present_cycles;
	u64 freq;
} __attribute__((aligned(64)));

static struct bench_state gs;

static inline u64 now(void)
{
	isb();
	return read_sysreg(cntvct_el0);
}

static void sample(u64 t)
{
	struct sample *s = (struct sample *)SAMPLE_GPA;
	u64 n = gs.nsamples;

	if (n < MAX_SAMPLES) {
		s[n].t = t;
		s[n].work = gs.work;
		gs.nsamples = n + 1;
	}
}

/*
 * Task B: count until *stop is set or deadline passes, sampling (t, work)
 * every period cycles if asked. Returns the CNTVCT at which it stopped: the
 * page-ready entry if that is what stopped it.
 */
static u64 task_b(volatile u64 *stop, u64 deadline, bool sampling)
{
	u64 period = gs.freq * SAMPLE_PERIOD_US / 1000000;
	u64 t = now(), next = t + period;

	while (!*stop && t < deadline) {
		gs.work++;
		t = read_sysreg(cntvct_el0);
		if (sampling && t >= next) {
			sample(t);
			next = t + period;
		}
	}
	if (*stop && gs.ready_at && gs.ready_at < t)
		t = gs.ready_at;
	return t;
}

static void guest_irq_handler(struct ex_regs *regs)
{
	u64 entry = read_sysreg(cntvct_el0);
	u32 intid = gic_get_and_ack_irq();
	u64 tok, start, end, w0;

	if (intid == IAR_SPURIOUS)
		return;

	if (intid == cfg.np_intid) {
		/* Read and clear: the next fault may be asynchronous again. */
		tok = apf_take_not_present(&gs.record);
		gic_set_eoi(intid);
		if (!tok) {
			gs.spurious++;
			return;
		}
		gs.np_count++;
		if (tok != gs.cur_token || gs.b_running) {
			gs.np_other++;
			return;
		}
		if (gs.ready_for_cur)
			return;	/* page-ready came first: A goes on */

		/* A sleeps on tok: run B until its page-ready. */
		gs.b_running = 1;
		w0 = gs.work;
		start = now();
		local_irq_enable();
		end = task_b(&gs.ready_for_cur, start + gs.freq * WAIT_MS / 1000, true);
		local_irq_disable();
		if (!gs.ready_for_cur)
			gs.b_timeouts++;
		gs.b_cycles += end - start;
		gs.stall_work += gs.work - w0;
		gs.b_running = 0;
	} else if (intid == cfg.ready_intid) {
		/* Clear, then ACK_READY only if more completions wait. */
		tok = apf_take_ready(&gs.record, &gs.ready_acks);
		gic_set_eoi(intid);
		if (!tok) {
			gs.spurious++;
			return;
		}
		gs.ready_count++;
		if (tok == gs.cur_token || tok == APF_WAKE_ALL) {
			gs.ready_at = entry;
			gs.ready_for_cur = 1;
		}
	} else {
		gic_set_eoi(intid);
		gs.spurious++;
	}
}

/* A's access to one remote page; the stall is counted from t1 to t2. */
static void task_a_touch(u64 gva)
{
	u64 t1, t2, val;

	gs.ready_at = 0;
	gs.ready_for_cur = 0;
	gs.cur_token = gva;	/* identity map: the IPA; 4K host pages */
	t1 = now();
	sample(t1);
	val = READ_ONCE(*(volatile u64 *)gva);
	t2 = now();
	sample(t2);
	gs.stall_cycles += t2 - t1;
	if (val != (gva ^ PATTERN))
		gs.data_errors++;
	gs.cur_token = 0;
}

static void guest_remote(void)
{
	static volatile u64 never;
	struct arm_smccc_res res = {};
	u64 i, t1, t2, w0;

	/* Fault-free run of B: its rate and the background exits. */
	GUEST_SYNC(ST_CTRL_START);
	w0 = gs.work;
	t1 = now();
	t2 = task_b(&never, t1 + gs.freq * CTRL_MS / 1000, false);
	gs.ctrl_cycles = t2 - t1;
	gs.ctrl_work = gs.work - w0;
	GUEST_SYNC(ST_CTRL_END);

	/*
	 * Cost of one exit round trip: null hypercalls that KVM answers in
	 * the kernel (SMCCC_VERSION), back to back.
	 */
	GUEST_SYNC(ST_EXIT_START);
	t1 = now();
	for (i = 0; i < NR_NULL_HVC; i++)
		smccc_hvc(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	t2 = now();
	gs.exit_cycles = t2 - t1;
	gs.exit_ret = res.a0;
	GUEST_SYNC(ST_EXIT_END);

	/*
	 * Warm-up: one remote page (the last one) not counted, so that the
	 * one-off costs of the first fault (worker and uffd thread start-up)
	 * stay out of the steady-state figures.
	 */
	task_a_touch(cfg.base_gva + NR_REMOTE * cfg.stride);
	gs.np_count = gs.ready_count = gs.ready_acks = 0;
	gs.work = gs.b_cycles = gs.stall_cycles = gs.stall_work = 0;
	gs.nsamples = 0;

	GUEST_SYNC(ST_REMOTE_START);
	sample(now());
	for (i = 0; i < cfg.nr_pages; i++)
		task_a_touch(cfg.base_gva + i * cfg.stride);
	GUEST_SYNC(ST_REMOTE_END);
}

static void guest_present(void)
{
	u64 i, t1;

	GUEST_SYNC(ST_PRESENT_START);
	t1 = now();
	for (i = 0; i < cfg.nr_pages; i++)
		WRITE_ONCE(*(volatile u64 *)(cfg.base_gva + i * cfg.stride), i);
	gs.present_cycles = now() - t1;
	GUEST_SYNC(ST_PRESENT_END);
}

static void guest_code(void)
{
	gs.freq = read_sysreg(cntfrq_el0);
	gic_init(GIC_V3, 1);
	gic_irq_enable(cfg.np_intid);
	gic_irq_enable(cfg.ready_intid);
	local_irq_enable();

	if (cfg.apf) {
		GUEST_ASSERT_EQ(apf_hvc0(APF_OP_SET_RECORD, cfg.record_gpa), APF_SUCCESS);
		GUEST_ASSERT_EQ(apf_hvc0(APF_OP_ENABLE, APF_ENABLE_NOTIFY_EL1), APF_SUCCESS);
	}
	if (cfg.mode == BENCH_REMOTE)
		guest_remote();
	else
		guest_present();
	GUEST_DONE();
}

/* ---- Host side */

struct remote_result {
	int ok;
	u64 freq;
	u64 np, ready, acks, np_other, spurious, b_timeouts, data_errors;
	u64 stall_cycles, b_cycles, stall_work, ctrl_cycles, ctrl_work;
	u64 exit_cycles, exit_ret, exits_null_hvc, hvc_null_hvc;
	u64 exits_ctrl, exits_remote, hvc_remote;
	u64 uffd_msgs, uffd_errors;
	u64 nsamples;
	struct sample samples[MAX_SAMPLES];
};

struct present_result {
	int ok;
	u64 freq, cycles, exits;
};

static size_t host_psize;
static u64 uffd_base_hva;
static u64 uffd_msgs, uffd_errors;

static int bench_uffd_handler(int mode, int uffd, struct uffd_msg *msg)
{
	static __thread u64 *buf;
	u64 addr = msg->arg.pagefault.address & ~((u64)host_psize - 1);
	u64 gpa = REMOTE_GPA + (addr - uffd_base_hva);
	struct uffdio_range range = { .start = addr, .len = host_psize };
	struct uffdio_copy copy = {
		.dst = addr, .len = host_psize, .mode = 0,
	};
	size_t i;

	if (!buf) {
		buf = aligned_alloc(host_psize, host_psize);
		TEST_ASSERT(buf, "aligned_alloc");
	}
	for (i = 0; i < host_psize / sizeof(u64); i++)
		buf[i] = gpa ^ PATTERN;
	copy.src = (u64)buf;
	__atomic_add_fetch(&uffd_msgs, 1, __ATOMIC_RELAXED);
	if (ioctl(uffd, UFFDIO_COPY, &copy)) {
		/* EEXIST: a second message for a page already copied. */
		if (errno != EEXIST)
			__atomic_add_fetch(&uffd_errors, 1, __ATOMIC_RELAXED);
		ioctl(uffd, UFFDIO_WAKE, &range);
	}
	return 0;
}

static struct kvm_vm *bench_vm(struct kvm_vcpu **vcpu, enum bench_mode mode, bool apf)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);
	u64 npages = mode == BENCH_REMOTE ? NR_REMOTE + 1 : NR_PRESENT;	/* + warm-up */
	u64 gpa = mode == BENCH_REMOTE ? REMOTE_GPA : PRESENT_GPA;
	u64 stride, guest_pages, spages;

	TEST_REQUIRE(vm->arch.has_gic);
	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(*vcpu);
	vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, guest_irq_handler);

	host_psize = getpagesize();
	stride = max_t(u64, host_psize, vm->page_size);
	guest_pages = npages * stride / vm->page_size;
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, gpa,
				    mode == BENCH_REMOTE ? REMOTE_SLOT : PRESENT_SLOT,
				    guest_pages, 0);
	virt_map(vm, gpa, gpa, guest_pages);

	spages = vm_calc_num_guest_pages(vm->mode, MAX_SAMPLES * sizeof(struct sample));
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SAMPLE_GPA, SAMPLE_SLOT,
				    spages, 0);
	virt_map(vm, SAMPLE_GPA, SAMPLE_GPA, spages);

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = mode;
	cfg.apf = apf;
	cfg.record_gpa = addr_gva2gpa(vm, (gva_t)&gs.record);
	cfg.nr_pages = mode == BENCH_REMOTE ? NR_REMOTE : NR_PRESENT;
	cfg.base_gva = gpa;
	cfg.stride = stride;
	cfg.np_intid = APF_NP_INTID;
	cfg.ready_intid = APF_READY_INTID;
	sync_global_to_guest(vm, cfg);

	if (apf)
		apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_ALLOW_EL1, 0,
			       APF_NP_INTID, APF_READY_INTID);
	return vm;
}

static void run_to_stage(struct kvm_vcpu *vcpu, u64 stage)
{
	struct ucall uc;

	TEST_ASSERT_EQ(apf_run_to_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] == stage, "guest at stage %lu, expected %lu",
		    (unsigned long)uc.args[1], (unsigned long)stage);
}

static void run_to_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_EQ(apf_run_to_ucall(vcpu, &uc), UCALL_DONE);
}

/* Child: one remote-stall run. */
static void remote_run(struct remote_result *r, useconds_t delay_us, bool async)
{
	struct kvm_vcpu *vcpu;
	struct uffd_desc *uffd;
	struct kvm_vm *vm = bench_vm(&vcpu, BENCH_REMOTE, async);
	u64 e0, e1, e2, e3, h2, h3, x0, x1, hx0, hx1;

	uffd_base_hva = (u64)addr_gpa2hva(vm, REMOTE_GPA);
	uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, delay_us,
					(void *)uffd_base_hva, (NR_REMOTE + 1) * cfg.stride,
					1, bench_uffd_handler);

	run_to_stage(vcpu, ST_CTRL_START);
	e0 = vcpu_get_stat(vcpu, exits);
	run_to_stage(vcpu, ST_CTRL_END);
	e1 = vcpu_get_stat(vcpu, exits);
	run_to_stage(vcpu, ST_EXIT_START);
	x0 = vcpu_get_stat(vcpu, exits);
	hx0 = vcpu_get_stat(vcpu, hvc_exit_stat);
	run_to_stage(vcpu, ST_EXIT_END);
	x1 = vcpu_get_stat(vcpu, exits);
	hx1 = vcpu_get_stat(vcpu, hvc_exit_stat);
	run_to_stage(vcpu, ST_REMOTE_START);
	e2 = vcpu_get_stat(vcpu, exits);
	h2 = vcpu_get_stat(vcpu, hvc_exit_stat);
	run_to_stage(vcpu, ST_REMOTE_END);
	e3 = vcpu_get_stat(vcpu, exits);
	h3 = vcpu_get_stat(vcpu, hvc_exit_stat);
	run_to_done(vcpu);

	sync_global_from_guest(vm, gs);
	r->freq = gs.freq;
	r->np = gs.np_count;
	r->ready = gs.ready_count;
	r->acks = gs.ready_acks;
	r->np_other = gs.np_other;
	r->spurious = gs.spurious;
	r->b_timeouts = gs.b_timeouts;
	r->data_errors = gs.data_errors;
	r->stall_cycles = gs.stall_cycles;
	r->b_cycles = gs.b_cycles;
	r->stall_work = gs.stall_work;
	r->ctrl_cycles = gs.ctrl_cycles;
	r->ctrl_work = gs.ctrl_work;
	r->exit_cycles = gs.exit_cycles;
	r->exit_ret = gs.exit_ret;
	/* Each span ends with the exit of its closing ucall: not counted. */
	r->exits_ctrl = e1 - e0 - 1;
	r->exits_remote = e3 - e2 - 1;
	r->hvc_remote = h3 - h2;
	/* A check: each null call is one hvc exit (the ucall is an MMIO exit). */
	r->exits_null_hvc = x1 - x0 - 1;
	r->hvc_null_hvc = hx1 - hx0;
	r->nsamples = min_t(u64, gs.nsamples, MAX_SAMPLES);
	memcpy(r->samples, addr_gpa2hva(vm, SAMPLE_GPA), r->nsamples * sizeof(struct sample));

	/* VM first: its teardown may wait for work that waits for the uffd. */
	kvm_vm_free(vm);
	uffd_stop_demand_paging(uffd);
	r->uffd_msgs = uffd_msgs;
	r->uffd_errors = uffd_errors;
	r->ok = 1;
}

/* Child: one present-page demand-paging pass. */
static void present_run(struct present_result *r, bool apf)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = bench_vm(&vcpu, BENCH_PRESENT, apf);
	u64 e0, e1;

	/* Present in the host, not yet in stage 2. */
	memset(addr_gpa2hva(vm, PRESENT_GPA), 0x11, NR_PRESENT * cfg.stride);

	run_to_stage(vcpu, ST_PRESENT_START);
	e0 = vcpu_get_stat(vcpu, exits);
	run_to_stage(vcpu, ST_PRESENT_END);
	e1 = vcpu_get_stat(vcpu, exits);
	run_to_done(vcpu);
	sync_global_from_guest(vm, gs);
	r->freq = gs.freq;
	r->cycles = gs.present_cycles;
	r->exits = e1 - e0 - 1;
	kvm_vm_free(vm);
	r->ok = 1;
}

/*
 * Run fn in a child process with a time limit; its results go to shared
 * memory. Returns true if the child finished and reported ok.
 */
static bool in_child(void (*fn)(void *), void *arg, const int *ok, unsigned int timeout_s)
{
	int status;

	if (apf_run_child("APF-BENCH run", fn, arg, timeout_s, &status) != APF_CHILD_EXITED)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS && *ok;
}

struct remote_job {
	struct remote_result *r;
	useconds_t delay_us;
	bool async;
};

static void remote_job_fn(void *arg)
{
	struct remote_job *j = arg;

	remote_run(j->r, j->delay_us, j->async);
}

struct present_job {
	struct present_result *r;
	bool apf;
};

static void present_job_fn(void *arg)
{
	struct present_job *j = arg;

	present_run(j->r, j->apf);
}

/*
 * One present-page figure: a run that is thrown away, then the measured
 * one, in every configuration alike. The first run after a module unload
 * was up to 8x slower here in some benchmark runs and not in others (most
 * likely the emulator translating code again): a one-off cost, not one of
 * the configuration.
 */
static bool present_measure(struct present_job *job, struct present_result *pr)
{
	memset(pr, 0, sizeof(*pr));
	in_child(present_job_fn, job, &pr->ok, 240);
	memset(pr, 0, sizeof(*pr));
	return in_child(present_job_fn, job, &pr->ok, 240);
}


static void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap shared: errno %d", errno);
	memset(p, 0, size);
	return p;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static double median(double *v, int n)
{
	double s[PRESENT_ROUNDS], x;
	int i, j;

	if (!n)
		return 0;
	memcpy(s, v, n * sizeof(*v));
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && s[j - 1] > s[j]; j--) {
			x = s[j];
			s[j] = s[j - 1];
			s[j - 1] = x;
		}
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Mean CNTVCT time of one exit round trip (a null hypercall), in us. */
static double exit_us_of(const struct remote_result *r)
{
	return ratio(r->exit_cycles * 1e6, (double)r->freq * NR_NULL_HVC);
}

/* Time per remote page in which B does not run, in ms. */
static double not_b_per_page_ms_of(const struct remote_result *r)
{
	return ratio(((double)r->stall_cycles - (double)r->b_cycles) * 1e3, r->freq) / NR_REMOTE;
}

static const char *verdict(bool met)
{
	return met ? "MET" : "MISSED";
}

/* Print up to SERIES_POINTS (t, work) points of one run for tools/bench/plot.py. */
static void print_series(const struct remote_result *r, const char *mode, unsigned int delay_ms)
{
	u64 i, step = (r->nsamples + SERIES_POINTS - 1) / SERIES_POINTS;
	u64 t0 = r->nsamples ? r->samples[0].t : 0;

	if (!step)
		step = 1;
	for (i = 0; i < r->nsamples; i++) {
		if (i % step && i != r->nsamples - 1)
			continue;
		printf("APF-BENCH-SERIES mode=%s delay_ms=%u t_us=%.1f work=%lu\n", mode, delay_ms,
		       (double)(r->samples[i].t - t0) * 1e6 / r->freq,
		       (unsigned long)r->samples[i].work);
	}
}

static const unsigned int delays_ms[] = { 1, 10 };
#define NR_DELAYS	ARRAY_SIZE(delays_ms)

int main(int argc, char *argv[])
{
	struct remote_result *rr[NR_DELAYS][2];	/* [delay][async] */
	struct present_result *pr;
	double rate_cap[PRESENT_ROUNDS], rate_nocap[PRESENT_ROUNDS], rate_unl[PRESENT_ROUNDS];
	double exits_pp[3] = {};
	int n_cap = 0, n_nocap = 0, n_unl = 0, reload_failed = 0;
	double util[NR_DELAYS][2] = {}, exits_raw_sum = 0, exits_net_sum = 0;
	double lost_ms[NR_DELAYS][2] = {}, exit_us[NR_DELAYS][2] = {};
	double lost_exits[NR_DELAYS][2] = {};
	u64 np_sum = 0;
	bool loaded_at_start, only_remote = argc > 1 && !strcmp(argv[1], "remote");
	unsigned int d, a, round;

	setbuf(stdout, NULL);
	apf_force_el1_guests();

	loaded_at_start = apf_module_loaded();
	if (!kvm_has_cap(KVM_CAP_ARM_ASYNC_PF) && apf_load_module())
		printf("APF-BENCH note: cannot load %s: %s\n", APF_MODULE_PATH, strerror(errno));
	if (!kvm_has_cap(KVM_CAP_ARM_ASYNC_PF)) {
		printf("APF-BENCH skip: no async page fault provider (KVM_CAP_ARM_ASYNC_PF is 0)\n");
		return KSFT_SKIP;
	}

	printf("APF-BENCH begin: %d remote pages, userfaultfd delays 1 and 10 ms; %d present pages x %d rounds\n",
	       NR_REMOTE, NR_PRESENT, PRESENT_ROUNDS);

	/* ---- 1. Remote stalls */
	for (d = 0; d < NR_DELAYS; d++) {
		for (a = 0; a < 2; a++) {
			struct remote_job job;
			struct remote_result *r;
			const char *mode = a ? "async" : "sync";
			double stall_ms, b_ms, u, uw, bg, net, raw;

			r = rr[d][a] = shared_alloc(sizeof(*r));
			job = (struct remote_job){ r, delays_ms[d] * 1000, a };
			if (!in_child(remote_job_fn, &job, &r->ok, 240)) {
				printf("APF-BENCH delay_ms=%u mode=%s FAILED (no figures)\n",
				       delays_ms[d], mode);
				continue;
			}
			stall_ms = r->stall_cycles * 1e3 / r->freq;
			b_ms = r->b_cycles * 1e3 / r->freq;
			u = ratio(r->b_cycles, r->stall_cycles);
			uw = ratio(r->stall_work,
				   ratio(r->ctrl_work, r->ctrl_cycles) * r->stall_cycles);
			/* Background exits of a running vCPU, per cycle of B. */
			bg = ratio(r->exits_ctrl, r->ctrl_cycles) * r->b_cycles;
			raw = ratio(r->exits_remote, r->np);
			net = ratio(r->exits_remote - bg, r->np);
			util[d][a] = u;
			lost_ms[d][a] = not_b_per_page_ms_of(r);
			exit_us[d][a] = exit_us_of(r);
			lost_exits[d][a] = ratio(lost_ms[d][a] * 1e3, exit_us[d][a]);
			printf("APF-BENCH delay_ms=%u mode=%s utilization=%.3f util_work=%.3f "
			       "stall_ms=%.2f stall_per_page_ms=%.3f b_ms=%.2f not_b_per_page_ms=%.3f "
			       "exit_us=%.2f lost_exits_per_fault=%.2f "
			       "np=%lu ready=%lu acks=%lu "
			       "exits=%lu exits_per_page=%.2f exits_per_async_fault=%.2f "
			       "exits_per_async_fault_net=%.2f hvc_per_async_fault=%.2f "
			       "bg_exits_per_ms=%.3f uffd_msgs_incl_warmup=%lu\n",
			       delays_ms[d], mode, u, uw, stall_ms, stall_ms / NR_REMOTE, b_ms,
			       (stall_ms - b_ms) / NR_REMOTE, exit_us[d][a], lost_exits[d][a],
			       (unsigned long)r->np, (unsigned long)r->ready,
			       (unsigned long)r->acks,
			       (unsigned long)r->exits_remote, ratio(r->exits_remote, NR_REMOTE),
			       raw, net, ratio(r->hvc_remote, r->np),
			       ratio(r->exits_ctrl, r->ctrl_cycles * 1e3 / r->freq),
			       (unsigned long)r->uffd_msgs);
			if (r->data_errors || r->uffd_errors || r->np_other || r->spurious ||
			    r->b_timeouts || (a && (r->np != NR_REMOTE || r->ready != NR_REMOTE)))
				printf("APF-BENCH note: delay_ms=%u mode=%s data_errors=%lu uffd_errors=%lu "
				       "np_other=%lu spurious=%lu b_timeouts=%lu np=%lu ready=%lu\n",
				       delays_ms[d], mode, (unsigned long)r->data_errors,
				       (unsigned long)r->uffd_errors, (unsigned long)r->np_other,
				       (unsigned long)r->spurious, (unsigned long)r->b_timeouts,
				       (unsigned long)r->np, (unsigned long)r->ready);
			if (r->hvc_null_hvc != NR_NULL_HVC || (s64)r->exit_ret < 0)
				printf("APF-BENCH note: delay_ms=%u mode=%s null hypercalls: %d calls, "
				       "%lu hvc exits, %lu exits, SMCCC_VERSION returned %ld\n",
				       delays_ms[d], mode, NR_NULL_HVC,
				       (unsigned long)r->hvc_null_hvc,
				       (unsigned long)r->exits_null_hvc, (long)r->exit_ret);
			if (a && r->np) {
				np_sum += r->np;
				exits_raw_sum += r->exits_remote;
				exits_net_sum += r->exits_remote - bg;
			}
		}
	}

	/* ---- 2. Present-page demand paging ("apf_bench remote" skips it) */
	pr = shared_alloc(sizeof(*pr));
	for (round = 0; round < PRESENT_ROUNDS && !only_remote; round++) {
		struct present_job job = { pr, true };

		if (present_measure(&job, pr)) {
			rate_cap[n_cap++] = NR_PRESENT * (double)pr->freq / pr->cycles;
			exits_pp[0] = ratio(pr->exits, NR_PRESENT);
			printf("APF-BENCH present round=%u config=loaded_cap pages_per_s=%.0f exits_per_page=%.2f\n",
			       round + 1, rate_cap[n_cap - 1], exits_pp[0]);
		}

		job.apf = false;
		if (present_measure(&job, pr)) {
			rate_nocap[n_nocap++] = NR_PRESENT * (double)pr->freq / pr->cycles;
			exits_pp[1] = ratio(pr->exits, NR_PRESENT);
			printf("APF-BENCH present round=%u config=loaded_nocap pages_per_s=%.0f exits_per_page=%.2f\n",
			       round + 1, rate_nocap[n_nocap - 1], exits_pp[1]);
		}

		/*
		 * No VM of ours holds the module any more. After each module
		 * unload and load, let the kernel finish their background work
		 * (RCU callbacks, KUnit) before measuring: in the emulated host
		 * it competes with the vCPU for the two physical CPUs.
		 */
		if (apf_delete_module(O_NONBLOCK)) {
			printf("APF-BENCH note: delete_module(%s): %s; no unloaded figure this round\n",
			       APF_MODULE_NAME, strerror(errno));
		} else {
			sleep(SETTLE_S);
			if (present_measure(&job, pr)) {
				rate_unl[n_unl++] = NR_PRESENT * (double)pr->freq / pr->cycles;
				exits_pp[2] = ratio(pr->exits, NR_PRESENT);
				printf("APF-BENCH present round=%u config=unloaded pages_per_s=%.0f exits_per_page=%.2f\n",
				       round + 1, rate_unl[n_unl - 1], exits_pp[2]);
			}
			if (apf_load_module()) {
				printf("APF-BENCH note: reloading %s failed: %s\n", APF_MODULE_PATH,
				       strerror(errno));
				reload_failed = 1;
				break;
			}
			sleep(SETTLE_S);
		}
	}
	if (!loaded_at_start && apf_module_loaded())
		apf_delete_module(O_NONBLOCK);

	/* ---- Series for the plot */
	for (d = 0; d < NR_DELAYS; d++)
		for (a = 0; a < 2; a++)
			if (rr[d][a]->ok)
				print_series(rr[d][a], a ? "async" : "sync", delays_ms[d]);

	/* ---- Table and verdicts */
	{
		double m_cap = median(rate_cap, n_cap), m_nocap = median(rate_nocap, n_nocap);
		double m_unl = median(rate_unl, n_unl);
		double rate_ratio = ratio(m_cap, m_unl), rate_ratio_nocap = ratio(m_nocap, m_unl);
		double ex_net = ratio(exits_net_sum, np_sum), ex_raw = ratio(exits_raw_sum, np_sum);

		printf("\n");
		printf("APF-BENCH table ------------------------------------------------------------\n");
		printf("APF-BENCH table  remote stalls: utilization = guest time in task B while A waits\n");
		printf("APF-BENCH table  for a remote page / A's total wait (both from CNTVCT)\n");
		printf("APF-BENCH table    delay   async    sync\n");
		for (d = 0; d < NR_DELAYS; d++) {
			char ua[16] = "  n/a", us[16] = "  n/a";

			if (rr[d][1]->ok)
				snprintf(ua, sizeof(ua), "%5.3f", util[d][1]);
			if (rr[d][0]->ok)
				snprintf(us, sizeof(us), "%5.3f", util[d][0]);
			printf("APF-BENCH table    %2u ms   %s   %s\n", delays_ms[d], ua, us);
		}
		printf("APF-BENCH table  exits per async fault: %.2f net of background exits, %.2f raw\n",
		       ex_net, ex_raw);
		printf("APF-BENCH table  time per async fault in which B does not run, in exit round\n");
		printf("APF-BENCH table  trips (%d null hypercalls timed in the same VM):\n", NR_NULL_HVC);
		for (d = 0; d < NR_DELAYS; d++) {
			if (!rr[d][1]->ok) {
				printf("APF-BENCH table    %2u ms   lost per async fault: n/a\n",
				       delays_ms[d]);
				continue;
			}
			printf("APF-BENCH table    %2u ms   lost per async fault: %.2f ms = %.1f exit round trips "
			       "(one exit: %.3f ms in this emulator)\n",
			       delays_ms[d], lost_ms[d][1], lost_exits[d][1], exit_us[d][1] / 1e3);
		}
		/*
		 * A PROJECTION, not a measurement: the measured lost exit round
		 * trips per fault, priced at PROJ_EXIT_US (an assumed typical
		 * hardware exit round trip), against a stall of exactly D.
		 */
		printf("APF-BENCH table  PROJECTION, not measured: async utilization if one exit round\n");
		printf("APF-BENCH table  trip took %.0f us (assumed typical hardware figure):\n", PROJ_EXIT_US);
		printf("APF-BENCH table  1 - lost exit round trips per fault x %.0f us / delay\n",
		       PROJ_EXIT_US);
		for (d = 0; d < NR_DELAYS; d++) {
			double up = 1 - lost_exits[d][1] * PROJ_EXIT_US / (delays_ms[d] * 1e3);

			if (rr[d][1]->ok && lost_exits[d][1] > 0)
				printf("APF-BENCH table    %2u ms   projected %5.3f  (measured here: %5.3f)\n",
				       delays_ms[d], up < 0 ? 0 : up, util[d][1]);
			else
				printf("APF-BENCH table    %2u ms   projected   n/a\n", delays_ms[d]);
		}
		printf("APF-BENCH table  present-page demand paging, median of %d rounds (pages/s):\n",
		       PRESENT_ROUNDS);
		printf("APF-BENCH table    module loaded, cap enabled   %10.0f  (x%.3f)\n", m_cap, rate_ratio);
		printf("APF-BENCH table    module loaded, no cap        %10.0f  (x%.3f)\n", m_nocap,
		       rate_ratio_nocap);
		printf("APF-BENCH table    module unloaded              %10.0f  (x1)\n", m_unl);
		printf("APF-BENCH table ------------------------------------------------------------\n");

		for (d = 0; d < NR_DELAYS; d++) {
			if (rr[d][1]->ok)
				printf("APF-BENCH-RESULT utilization_async delay_ms=%u value=%.3f target>=%.2f %s\n",
				       delays_ms[d], util[d][1], TARGET_UTIL,
				       verdict(util[d][1] >= TARGET_UTIL));
			else
				printf("APF-BENCH-RESULT utilization_async delay_ms=%u value=n/a target>=%.2f MISSED\n",
				       delays_ms[d], TARGET_UTIL);
			if (rr[d][0]->ok)
				printf("APF-BENCH-RESULT utilization_sync delay_ms=%u value=%.3f target=about_0 %s\n",
				       delays_ms[d], util[d][0], verdict(util[d][0] < 0.05));
			else
				printf("APF-BENCH-RESULT utilization_sync delay_ms=%u value=n/a target=about_0 MISSED\n",
				       delays_ms[d]);
		}
		/* Informational, no target: the per-fault lost time in exits. */
		for (d = 0; d < NR_DELAYS; d++) {
			if (rr[d][1]->ok && exit_us[d][1] > 0)
				printf("APF-BENCH-RESULT lost_per_async_fault delay_ms=%u exits=%.2f exit_us=%.2f\n",
				       delays_ms[d], lost_exits[d][1], exit_us[d][1]);
			else
				printf("APF-BENCH-RESULT lost_per_async_fault delay_ms=%u exits=n/a exit_us=n/a\n",
				       delays_ms[d]);
		}
		if (np_sum)
			printf("APF-BENCH-RESULT exits_per_async_fault value=%.2f raw=%.2f target<=%.0f %s\n",
			       ex_net, ex_raw, TARGET_EXITS, verdict(ex_net <= TARGET_EXITS));
		else
			printf("APF-BENCH-RESULT exits_per_async_fault value=n/a (no async fault) target<=%.0f MISSED\n",
			       TARGET_EXITS);
		if (n_cap && n_unl)
			printf("APF-BENCH-RESULT present_rate_ratio value=%.3f (loaded_cap %.0f / unloaded %.0f pages/s, medians of %d/%d; loaded_nocap x%.3f) target>=%.2f %s\n",
			       rate_ratio, m_cap, m_unl, n_cap, n_unl, rate_ratio_nocap,
			       TARGET_RATE_RATIO, verdict(rate_ratio >= TARGET_RATE_RATIO));
		else
			printf("APF-BENCH-RESULT present_rate_ratio value=n/a target>=%.2f MISSED\n",
			       TARGET_RATE_RATIO);
	}

	if (reload_failed)
		return 1;
	for (d = 0; d < NR_DELAYS; d++)
		if (!rr[d][0]->ok && !rr[d][1]->ok)
			return 1;
	return 0;
}
