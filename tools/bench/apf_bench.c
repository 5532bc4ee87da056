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
 *      wait per page = stall_i averaged over the pages, per mode: what the
 *                    faulting task pays; async / sync is the price of
 *                    letting B run (target at most 1.10).
 *    One extra remote page is touched first as a warm-up and not counted
 *    (one-off start-up costs of the worker and the uffd thread).
 *    Exits per async fault, attributed (see "Exit attribution" below): the
 *    vCPU thread's kvm_exit events and the module's tracepoints over the
 *    remote phase; the exits in which a not-present was announced (the
 *    stage-2 abort), a page-ready was delivered (the kick), ACK_READY was
 *    called, or a stage-2 abort announced nothing (a re-fault), per
 *    not-present notification. Host interrupts that delivered nothing
 *    (timer ticks, IPIs) are background, printed apart. With this ABI on a
 *    vGICv3 the floor is 2: the stage-2 fault and the kick that injects
 *    page-ready into the running vCPU (the host maps the page then, so the
 *    re-executed access does not fault). There is no ACK_NOT_PRESENT (the
 *    guest clears the token in the record), no EOI maintenance exit (both
 *    notifications are edge-triggered), and ACK_READY only when completions
 *    queue up behind an unread page-ready (ack_ready set; "acks" on the
 *    result line). The vCPU's stat "exits" is printed beside it as a check.
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
 *      helpers              = CPU time of the page server and of all
 *                             kworkers (the fault-in items) over the remote
 *                             phase, per page, from schedstat; in exit round
 *                             trips, the part of lost_exits_per_fault that
 *                             these tasks ran on a one-CPU host, where they
 *                             share B's CPU. "rest" = lost_exits_per_fault -
 *                             helpers: the vCPU's own cost (its exits, the
 *                             abort path, delivery, the guest's handlers,
 *                             the switches to and from the helpers). Only
 *                             on one CPU: with more, a task's CPU time on
 *                             the instruction clock also counts the turns
 *                             the other CPUs took meanwhile.
 *    The vCPU thread runs on the last CPU (place_vcpu_thread_last()).
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
 * "apf_bench remote [sync|async] [DELAY_MS]" runs part 1 only, or one run of
 * it (e.g. to trace it).
 *
 * Clock: the emulated host's, named by apf_clock= on its command line
 * (tools/run-host.sh, APF_CLOCK=icount|icount-1cpu|wall) and printed with
 * every figure.
 * The targets are meant for the instruction clock. Every figure is also
 * printed as an APF-BENCH-JSON line (json_fig()) for tools/bench/results.py.
 *
 * Each VM runs in a child process (a failed assertion costs one figure, not
 * the run) with results in shared memory. Under TCG with nested KVM absolute
 * times are meaningless: only the ratios are.
 */
#include <ctype.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

/* Targets (issue 10; meant for the instruction clock, APF_CLOCK=icount). */
#define TARGET_WAIT_RATIO	1.10	/* async wait per page / sync wait, at most */
#define TARGET_LOST_EXITS	6.0	/* time lost per async fault, exit round trips */
#define TARGET_EXITS		2.0	/* exits per async fault, attributed */
#define TARGET_RATE_RATIO	0.99
#define TARGET_UTIL_SYNC	0.05	/* "about 0" */

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
	u64 page_cycles[NR_REMOTE];	/* stall_i of each remote page */
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

/* A's access to remote page i; the stall is counted from t1 to t2. */
static void task_a_touch(u64 i)
{
	u64 gva = cfg.base_gva + i * cfg.stride;
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
	if (i < NR_REMOTE)
		gs.page_cycles[i] = t2 - t1;
	if (val != (gva ^ PATTERN))
		gs.data_errors++;
	gs.cur_token = 0;
}

static void guest_remote(void)
{
	static volatile u64 never;
	struct arm_smccc_res res = {};
	struct sample *smp = (struct sample *)SAMPLE_GPA;
	u64 i, t1, t2, w0;

	/*
	 * Map the sample buffer now: its stage-2 faults would otherwise fall
	 * into the remote phase, one per page of samples.
	 */
	for (i = 0; i < MAX_SAMPLES; i += 4096 / sizeof(*smp))
		WRITE_ONCE(smp[i].t, 0);

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
	task_a_touch(NR_REMOTE);
	gs.np_count = gs.ready_count = gs.ready_acks = 0;
	gs.work = gs.b_cycles = gs.stall_cycles = gs.stall_work = 0;
	gs.nsamples = 0;

	GUEST_SYNC(ST_REMOTE_START);
	sample(now());
	for (i = 0; i < cfg.nr_pages; i++)
		task_a_touch(i);
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

/*
 * ---- Exit attribution, from tracepoints
 *
 * Over the remote phase the vCPU thread's kvm:kvm_exit events and the
 * module's kvm_apf:* events are recorded into a tracefs instance of our own
 * (the global buffer stays free for a trace of the whole system), filtered
 * to the vCPU thread. Each exit is then attributed by what happened between
 * it and the next one: a not-present announced (the stage-2 abort of an
 * async fault), a page-ready delivered (the kick, or an exit that happened
 * to come first), an ACK_READY (hypercall exits: the guest makes no other
 * call in the phase); a stage-2 abort that announced nothing is a blocking
 * fault (sync mode) or a re-fault; the rest -- host interrupts that
 * delivered nothing, i.e. timer ticks and IPIs -- is background, shown
 * apart. The exit of the ucall that ends the phase is not counted.
 */
#define TRACE_INSTANCE	"/sys/kernel/debug/tracing/instances/apf_bench"

static const char * const attr_events[] = {
	"kvm/kvm_exit", "kvm_apf/kvm_apf_not_present", "kvm_apf/kvm_apf_ready",
	"kvm_apf/kvm_apf_sync",
};

enum attr_class { ATTR_FAULT, ATTR_READY, ATTR_ACK, ATTR_ABORT, ATTR_BG_IRQ, ATTR_BG_OTHER,
		  NR_ATTR };

static const char * const attr_names[NR_ATTR] = {
	"fault", "ready", "ack_ready", "abort", "bg_irq", "bg_other",
};

struct exit_attr {
	int ok;			/* the trace was recorded and read */
	u64 exits;		/* kvm_exit events, the closing ucall excluded */
	u64 n[NR_ATTR];
	u64 np, ready, sync;	/* the module's events */
};

static int trace_write(const char *file, const char *val)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), TRACE_INSTANCE "/%s", file);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

/* Record the attribution events of the calling thread (the vCPU's). */
static int attr_start(void)
{
	char buf[32], ev[96];
	unsigned int i;
	int ret;

	if (mkdir(TRACE_INSTANCE, 0755) && errno != EEXIST)
		return -errno;
	ret = trace_write("tracing_on", "0");
	if (!ret)
		ret = trace_write("trace", "");
	if (!ret)
		ret = trace_write("buffer_size_kb", "1024");
	snprintf(buf, sizeof(buf), "%ld", (long)syscall(SYS_gettid));
	if (!ret)
		ret = trace_write("set_event_pid", buf);
	for (i = 0; !ret && i < ARRAY_SIZE(attr_events); i++) {
		snprintf(ev, sizeof(ev), "events/%s/enable", attr_events[i]);
		ret = trace_write(ev, "1");
	}
	if (!ret)
		ret = trace_write("tracing_on", "1");
	return ret;
}

static enum attr_class attr_exit_class(const char *line)
{
	if (strstr(line, "kvm_exit: IRQ:"))
		return ATTR_BG_IRQ;
	if (strstr(line, "(DABT_LOW)"))
		return ATTR_ABORT;
	if (strstr(line, "(HVC64)"))
		return ATTR_ACK;
	return ATTR_BG_OTHER;
}

/* Stop recording and attribute the recorded exits. */
static void attr_stop(struct exit_attr *x)
{
	enum attr_class cur = NR_ATTR;	/* class of the last exit so far */
	bool decided = true;		/* cur cannot change any more */
	char line[512];
	FILE *f;

	memset(x, 0, sizeof(*x));
	if (trace_write("tracing_on", "0"))
		return;
	f = fopen(TRACE_INSTANCE "/trace", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (strstr(line, ": kvm_exit: ")) {
			if (cur != NR_ATTR)
				x->n[cur]++;
			x->exits++;
			cur = attr_exit_class(line);
			decided = cur == ATTR_ACK;
		} else if (strstr(line, ": kvm_apf_not_present: ")) {
			x->np++;
			if (!decided && cur != NR_ATTR)
				cur = ATTR_FAULT;
			decided = true;
		} else if (strstr(line, ": kvm_apf_ready: ")) {
			x->ready++;
			if (!decided && cur != NR_ATTR)
				cur = ATTR_READY;
			decided = true;
		} else if (strstr(line, ": kvm_apf_sync: ")) {
			x->sync++;
		}
	}
	fclose(f);
	/* The last exit is the ucall that ends the phase. */
	if (x->exits)
		x->exits--;
	x->ok = 1;
}

static void attr_cleanup(void)
{
	char buf[96];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(attr_events); i++) {
		snprintf(buf, sizeof(buf), "events/%s/enable", attr_events[i]);
		trace_write(buf, "0");
	}
	rmdir(TRACE_INSTANCE);
}

/* Exits that belong to the async faults: everything but the background. */
static u64 attr_apf_exits(const struct exit_attr *x)
{
	return x->n[ATTR_FAULT] + x->n[ATTR_READY] + x->n[ATTR_ACK] + x->n[ATTR_ABORT];
}

static u64 attr_bg_exits(const struct exit_attr *x)
{
	return x->n[ATTR_BG_IRQ] + x->n[ATTR_BG_OTHER];
}

struct remote_result {
	int ok;
	u64 freq;
	u64 np, ready, acks, np_other, spurious, b_timeouts, data_errors;
	u64 stall_cycles, b_cycles, stall_work, ctrl_cycles, ctrl_work;
	u64 exit_cycles, exit_ret, exits_null_hvc, hvc_null_hvc;
	u64 exits_ctrl, exits_remote, hvc_remote;
	u64 uffd_msgs, uffd_errors;
	u64 helpers_ns;		/* helpers_cpu_ns() over the remote phase */
	u64 page_cycles[NR_REMOTE];
	struct exit_attr attr;
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

/* The first number of a schedstat file: the task's CPU time in ns. */
static u64 schedstat_ns(const char *path)
{
	unsigned long long ns = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;	/* the task is gone: its time is not counted */
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/*
 * CPU time, in ns, of the host tasks that serve a fault besides the vCPU
 * thread (this one): the other threads of this process (the page server,
 * uffd_setup_demand_paging()'s reader) and every kworker (fault-in items
 * run on unbound kworkers; the others' background is what the sync run
 * shows), from /proc/.../schedstat (CONFIG_SCHED_INFO).
 */
static u64 helpers_cpu_ns(void)
{
	char path[300], comm[32];
	struct dirent *e;
	u64 sum = 0;
	DIR *d;

	d = opendir("/proc/self/task");
	while (d && (e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]) || atoi(e->d_name) == gettid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		sum += schedstat_ns(path);
	}
	if (d)
		closedir(d);
	d = opendir("/proc");
	while (d && (e = readdir(d))) {
		FILE *f;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		if (strncmp(comm, "kworker/", 8))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/schedstat", e->d_name);
		sum += schedstat_ns(path);
	}
	if (d)
		closedir(d);
	return sum;
}

/*
 * Whether helpers_cpu_ns() splits the lost time exactly: only on a one-CPU
 * host. With more CPUs a task's CPU time on the instruction clock also
 * counts the turns the other CPUs took meanwhile.
 */
static bool helpers_split_exact(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN) == 1;
}

/*
 * Put the calling (vCPU) thread on the last online CPU, after the page
 * server's thread was created (it keeps its own placement). On the
 * instruction clock QEMU runs the emulated CPUs in turns, and an interrupt
 * raised for one CPU does not end another's turn: where the vCPU runs
 * decides how the helpers' work interleaves with the guest, so a fixed
 * CPU makes two runs alike. The last, because a round starts at CPU 0
 * after a timer deadline: the page server's timer on CPU 0 then no longer
 * waits for the vCPU's turn (it fired 30-490 us late with the vCPU on CPU
 * 0, traced). Documentation/design.rst, "The instrument's turns". No
 * effect on one CPU.
 */
static void place_vcpu_thread_last(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (n <= 1)
		return;
	CPU_ZERO(&set);
	CPU_SET(n - 1, &set);
	/* Unplaced, the figures are still right, only noisier: say so. */
	if (sched_setaffinity(0, sizeof(set), &set))
		printf("APF-BENCH note: vCPU thread not placed on CPU %ld: %s\n", n - 1,
		       strerror(errno));
}

/* Child: one remote-stall run. */
static void remote_run(struct remote_result *r, useconds_t delay_us, bool async)
{
	struct kvm_vcpu *vcpu;
	struct uffd_desc *uffd;
	struct kvm_vm *vm = bench_vm(&vcpu, BENCH_REMOTE, async);
	u64 e0, e1, e2, e3, h2, h3, x0, x1, hx0, hx1, c2;
	bool tracing;

	uffd_base_hva = (u64)addr_gpa2hva(vm, REMOTE_GPA);
	uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, delay_us,
					(void *)uffd_base_hva, (NR_REMOTE + 1) * cfg.stride,
					1, bench_uffd_handler);
	place_vcpu_thread_last();

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
	tracing = !attr_start();
	e2 = vcpu_get_stat(vcpu, exits);
	h2 = vcpu_get_stat(vcpu, hvc_exit_stat);
	c2 = helpers_cpu_ns();
	run_to_stage(vcpu, ST_REMOTE_END);
	r->helpers_ns = helpers_cpu_ns() - c2;
	e3 = vcpu_get_stat(vcpu, exits);
	h3 = vcpu_get_stat(vcpu, hvc_exit_stat);
	if (tracing)
		attr_stop(&r->attr);
	attr_cleanup();
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
	memcpy(r->page_cycles, gs.page_cycles, sizeof(r->page_cycles));
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

/* Print each remote page's stall_i, for the plot: the faulting task's waits. */
static void print_waits(const struct remote_result *r, const char *mode, unsigned int delay_ms)
{
	unsigned int i;

	for (i = 0; i < NR_REMOTE; i++)
		printf("APF-BENCH-WAIT mode=%s delay_ms=%u page=%u wait_ms=%.4f\n", mode, delay_ms,
		       i, r->page_cycles[i] * 1e3 / r->freq);
}

static const unsigned int delays_ms[] = { 1, 10 };
/* Utilization targets, per delay. */
static const double target_util[] = { 0.98, 0.995 };
#define NR_DELAYS	ARRAY_SIZE(delays_ms)

/* The emulated host's clock (apf_read_clock()). */
static char bench_clock[16] = "unknown";

static void read_clock(void)
{
	apf_read_clock(bench_clock, sizeof(bench_clock));
}

/*
 * One figure as a machine-readable line, collected by tools/run-demo.sh into
 * results.json and compared by tools/bench/compare.py:
 *   APF-BENCH-JSON {"clock":..., "name":..., "delay_ms":..., "mode":...,
 *                   "value":..., "unit":..., "target":..., "verdict":...}
 * delay_ms 0, a NULL mode, unit or target are left out; a figure that
 * could not be measured has "value":null. Written with one call so that
 * console messages cannot split it.
 */
static void json_fig(const char *name, unsigned int delay_ms, const char *mode, bool valid,
		     double value, const char *unit, const char *target, bool met)
{
	char line[512];
	int n;

	n = snprintf(line, sizeof(line), "APF-BENCH-JSON {\"clock\":\"%s\",\"name\":\"%s\"",
		     bench_clock, name);
	if (delay_ms)
		n += snprintf(line + n, sizeof(line) - n, ",\"delay_ms\":%u", delay_ms);
	if (mode)
		n += snprintf(line + n, sizeof(line) - n, ",\"mode\":\"%s\"", mode);
	if (valid)
		n += snprintf(line + n, sizeof(line) - n, ",\"value\":%.6g", value);
	else
		n += snprintf(line + n, sizeof(line) - n, ",\"value\":null");
	if (unit)
		n += snprintf(line + n, sizeof(line) - n, ",\"unit\":\"%s\"", unit);
	if (target)
		n += snprintf(line + n, sizeof(line) - n, ",\"target\":\"%s\",\"verdict\":\"%s\"",
			      target, verdict(valid && met));
	snprintf(line + n, sizeof(line) - n, "}\n");
	fputs(line, stdout);
}

/* Figures of one remote-stall run. */
struct remote_fig {
	bool ok;
	double util, util_work, stall_ms, wait_ms, b_ms, not_b_ms, exit_us, lost_exits;
	double helpers_us;	/* helpers' CPU time per remote page */
	double exits_raw;	/* vCPU stat "exits" / not-present notifications */
	double exits_attr;	/* attributed exits / not-present notifications */
	double bg_per_ms;	/* background exits per ms of the phase */
};

static void remote_figures(const struct remote_result *r, struct remote_fig *f)
{
	memset(f, 0, sizeof(*f));
	f->ok = true;
	f->stall_ms = r->stall_cycles * 1e3 / r->freq;
	f->wait_ms = f->stall_ms / NR_REMOTE;
	f->b_ms = r->b_cycles * 1e3 / r->freq;
	f->util = ratio(r->b_cycles, r->stall_cycles);
	f->util_work = ratio(r->stall_work, ratio(r->ctrl_work, r->ctrl_cycles) * r->stall_cycles);
	f->not_b_ms = not_b_per_page_ms_of(r);
	f->exit_us = exit_us_of(r);
	f->lost_exits = ratio(f->not_b_ms * 1e3, f->exit_us);
	f->helpers_us = r->helpers_ns / 1e3 / NR_REMOTE;
	f->exits_raw = ratio(r->exits_remote, r->np);
	f->exits_attr = ratio(attr_apf_exits(&r->attr), r->np);
	f->bg_per_ms = ratio(attr_bg_exits(&r->attr), f->stall_ms);
}

static void report_run(const struct remote_result *r, const struct remote_fig *f,
		       unsigned int delay_ms, bool async)
{
	const char *mode = async ? "async" : "sync";
	const struct exit_attr *x = &r->attr;
	unsigned int c;

	printf("APF-BENCH delay_ms=%u mode=%s utilization=%.3f clock=%s util_work=%.3f "
	       "wait_per_page_ms=%.3f stall_ms=%.2f b_ms=%.2f not_b_per_page_ms=%.3f "
	       "exit_us=%.2f lost_exits_per_fault=%.2f np=%lu ready=%lu acks=%lu "
	       "exits=%lu exits_per_page=%.2f hvc=%lu uffd_msgs_incl_warmup=%lu\n",
	       delay_ms, mode, f->util, bench_clock, f->util_work, f->wait_ms, f->stall_ms,
	       f->b_ms, f->not_b_ms, f->exit_us, f->lost_exits, (unsigned long)r->np,
	       (unsigned long)r->ready, (unsigned long)r->acks,
	       (unsigned long)r->exits_remote, ratio(r->exits_remote, NR_REMOTE),
	       (unsigned long)r->hvc_remote, (unsigned long)r->uffd_msgs);
	if (x->ok) {
		printf("APF-BENCH exits delay_ms=%u mode=%s traced=%lu", delay_ms, mode,
		       (unsigned long)x->exits);
		for (c = 0; c < NR_ATTR; c++)
			printf(" %s=%lu", attr_names[c], (unsigned long)x->n[c]);
		printf(" events_not_present=%lu events_ready=%lu events_sync=%lu\n",
		       (unsigned long)x->np, (unsigned long)x->ready, (unsigned long)x->sync);
		if (x->exits != r->exits_remote)
			printf("APF-BENCH note: delay_ms=%u mode=%s %lu exits traced, %lu counted "
			       "by the vCPU's stat: the trace lost events\n", delay_ms, mode,
			       (unsigned long)x->exits, (unsigned long)r->exits_remote);
	} else {
		printf("APF-BENCH note: delay_ms=%u mode=%s no exit attribution (tracefs at %s "
		       "unusable)\n", delay_ms, mode, TRACE_INSTANCE);
	}
	if (r->data_errors || r->uffd_errors || r->np_other || r->spurious ||
	    r->b_timeouts || (async && (r->np != NR_REMOTE || r->ready != NR_REMOTE)))
		printf("APF-BENCH note: delay_ms=%u mode=%s data_errors=%lu uffd_errors=%lu "
		       "np_other=%lu spurious=%lu b_timeouts=%lu np=%lu ready=%lu\n",
		       delay_ms, mode, (unsigned long)r->data_errors,
		       (unsigned long)r->uffd_errors, (unsigned long)r->np_other,
		       (unsigned long)r->spurious, (unsigned long)r->b_timeouts,
		       (unsigned long)r->np, (unsigned long)r->ready);
	if (r->hvc_null_hvc != NR_NULL_HVC || (s64)r->exit_ret < 0)
		printf("APF-BENCH note: delay_ms=%u mode=%s null hypercalls: %d calls, "
		       "%lu hvc exits, %lu exits, SMCCC_VERSION returned %ld\n",
		       delay_ms, mode, NR_NULL_HVC, (unsigned long)r->hvc_null_hvc,
		       (unsigned long)r->exits_null_hvc, (long)r->exit_ret);

	json_fig("wait_per_page", delay_ms, mode, true, f->wait_ms, "ms", NULL, false);
	json_fig("utilization", delay_ms, mode, true, f->util, NULL, NULL, false);
	json_fig("util_work", delay_ms, mode, true, f->util_work, NULL, NULL, false);
	json_fig("not_b_per_page", delay_ms, mode, true, f->not_b_ms, "ms", NULL, false);
	json_fig("exit_round_trip", delay_ms, mode, true, f->exit_us, "us", NULL, false);
	json_fig("helpers_cpu_per_page", delay_ms, mode, helpers_split_exact(), f->helpers_us,
		 "us", NULL, false);
	json_fig("exits_per_page_stat", delay_ms, mode, true, ratio(r->exits_remote, NR_REMOTE),
		 NULL, NULL, false);
	json_fig("background_exits_per_ms", delay_ms, mode, x->ok, f->bg_per_ms, NULL, NULL,
		 false);
	if (async) {
		json_fig("lost_per_async_fault", delay_ms, mode, f->exit_us > 0, f->lost_exits,
			 "exit round trips", NULL, false);
		json_fig("exits_per_async_fault_attributed", delay_ms, mode, x->ok && r->np,
			 f->exits_attr, NULL, NULL, false);
	}
}

int main(int argc, char *argv[])
{
	struct remote_result *rr[NR_DELAYS][2] = {};	/* [delay][async] */
	struct remote_fig fig[NR_DELAYS][2] = {};
	struct present_result *pr;
	double rate_cap[PRESENT_ROUNDS], rate_nocap[PRESENT_ROUNDS], rate_unl[PRESENT_ROUNDS];
	double exits_pp[3] = {};
	int n_cap = 0, n_nocap = 0, n_unl = 0, reload_failed = 0;
	struct exit_attr attr_sum = { .ok = 1 };
	double bg_ms = 0;
	u64 np_sum = 0;
	bool loaded_at_start, only_remote = argc > 1 && !strcmp(argv[1], "remote");
	int only_async = -1, only_delay = 0;
	unsigned int d, a, c, round;

	/* "remote [sync|async] [delay_ms]": one run, e.g. to trace it. */
	if (only_remote && argc > 2)
		only_async = !strcmp(argv[2], "async");
	if (only_remote && argc > 3)
		only_delay = atoi(argv[3]);

	setbuf(stdout, NULL);
	read_clock();
	apf_force_el1_guests();

	loaded_at_start = apf_module_loaded();
	if (!kvm_has_cap(KVM_CAP_ARM_ASYNC_PF) && apf_load_module())
		printf("APF-BENCH note: cannot load %s: %s\n", APF_MODULE_PATH, strerror(errno));
	if (!kvm_has_cap(KVM_CAP_ARM_ASYNC_PF)) {
		printf("APF-BENCH skip: no async page fault provider (KVM_CAP_ARM_ASYNC_PF is 0)\n");
		return KSFT_SKIP;
	}

	printf("APF-BENCH begin: clock %s; %d remote pages, userfaultfd delays 1 and 10 ms; "
	       "%d present pages x %d rounds\n", bench_clock, NR_REMOTE, NR_PRESENT,
	       PRESENT_ROUNDS);

	/* ---- 1. Remote stalls */
	for (d = 0; d < NR_DELAYS; d++) {
		for (a = 0; a < 2; a++) {
			struct remote_job job;
			struct remote_result *r;

			r = rr[d][a] = shared_alloc(sizeof(*r));
			if ((only_async >= 0 && only_async != (int)a) ||
			    (only_delay && only_delay != (int)delays_ms[d]))
				continue;
			job = (struct remote_job){ r, delays_ms[d] * 1000, a };
			if (!in_child(remote_job_fn, &job, &r->ok, 240)) {
				printf("APF-BENCH delay_ms=%u mode=%s FAILED (no figures)\n",
				       delays_ms[d], a ? "async" : "sync");
				continue;
			}
			remote_figures(r, &fig[d][a]);
			report_run(r, &fig[d][a], delays_ms[d], a);
			if (a && r->np) {
				np_sum += r->np;
				attr_sum.ok &= r->attr.ok;
				for (c = 0; c < NR_ATTR; c++)
					attr_sum.n[c] += r->attr.n[c];
				bg_ms += fig[d][a].stall_ms;
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
			if (rr[d][a]->ok) {
				print_series(rr[d][a], a ? "async" : "sync", delays_ms[d]);
				print_waits(rr[d][a], a ? "async" : "sync", delays_ms[d]);
			}

	/* ---- Table and verdicts */
	{
		double m_cap = median(rate_cap, n_cap), m_nocap = median(rate_nocap, n_nocap);
		double m_unl = median(rate_unl, n_unl);
		double rate_ratio = ratio(m_cap, m_unl), rate_ratio_nocap = ratio(m_nocap, m_unl);
		double ex_attr = ratio(attr_apf_exits(&attr_sum), np_sum);
		bool attr_ok = attr_sum.ok && np_sum;
		char tgt[32];

		printf("\n");
		printf("APF-BENCH table ------------------------------------------------------------\n");
		printf("APF-BENCH table  clock: %s%s\n", bench_clock,
		       !strcmp(bench_clock, "icount") ?
		       " (instruction clock: 1 ns per instruction, idle skipped)" :
		       !strcmp(bench_clock, "icount-1cpu") ?
		       " (instruction clock, one emulated CPU: no turns between CPUs)" :
		       !strcmp(bench_clock, "wall") ?
		       " (real time: depends on the machine's load; targets are for icount)" : "");
		printf("APF-BENCH table  remote stalls: the faulting task A's wait per remote page\n");
		printf("APF-BENCH table  (CNTVCT), and utilization = time task B ran while A waited /\n");
		printf("APF-BENCH table  A's total wait\n");
		printf("APF-BENCH table    delay  wait sync  wait async  async/sync         utilization async       sync\n");
		for (d = 0; d < NR_DELAYS; d++) {
			const struct remote_fig *fs = &fig[d][0], *fa = &fig[d][1];
			double wr = ratio(fa->wait_ms, fs->wait_ms);
			bool w_ok = fs->ok && fa->ok;

			printf("APF-BENCH table    %2u ms   ", delays_ms[d]);
			if (fs->ok)
				printf("%6.3f ms ", fs->wait_ms);
			else
				printf("   n/a    ");
			if (fa->ok)
				printf("  %6.3f ms ", fa->wait_ms);
			else
				printf("     n/a    ");
			if (w_ok)
				printf("  x%5.2f %-6s", wr, verdict(wr <= TARGET_WAIT_RATIO));
			else
				printf("    n/a MISSED");
			if (fa->ok)
				printf("      %5.3f %-6s", fa->util,
				       verdict(fa->util >= target_util[d]));
			else
				printf("        n/a MISSED");
			if (fs->ok)
				printf("  %5.3f\n", fs->util);
			else
				printf("    n/a\n");
		}
		printf("APF-BENCH table    targets: async/sync <= %.2f; utilization >= %.3f (1 ms), >= %.3f (10 ms)\n",
		       TARGET_WAIT_RATIO, target_util[0], target_util[1]);
		printf("APF-BENCH table  time per async fault in which B does not run, in exit round\n");
		printf("APF-BENCH table  trips (%d null hypercalls timed in the same VM), target <= %.0f:\n",
		       NR_NULL_HVC, TARGET_LOST_EXITS);
		for (d = 0; d < NR_DELAYS; d++) {
			const struct remote_fig *fa = &fig[d][1];

			if (!fa->ok) {
				printf("APF-BENCH table    %2u ms   lost per async fault: n/a\n",
				       delays_ms[d]);
				continue;
			}
			printf("APF-BENCH table    %2u ms   lost per async fault: %.3f ms = %.1f exit round trips "
			       "of %.2f us  %s\n", delays_ms[d], fa->not_b_ms, fa->lost_exits,
			       fa->exit_us, verdict(fa->lost_exits <= TARGET_LOST_EXITS));
		}
		/*
		 * What of that the fault-in kworkers and the page server ran. On
		 * the instruction clock the emulated CPUs take turns on one
		 * clock, so their instructions are time B does not run even on
		 * the other CPU; on hardware with a free CPU they cost B nothing.
		 * The rest is the vCPU's own: its two exits, the abort path,
		 * page-ready delivery, the guest's handlers (and, on one CPU,
		 * the switches to and from the helpers).
		 */
		printf("APF-BENCH table  of which the fault-in kworkers and the page server ran (their\n");
		printf("APF-BENCH table  CPU time, schedstat), and the rest, in exit round trips:\n");
		for (d = 0; d < NR_DELAYS; d++) {
			const struct remote_fig *fa = &fig[d][1], *fs = &fig[d][0];
			double h;

			if (!fa->ok || fa->exit_us <= 0) {
				printf("APF-BENCH table    %2u ms   n/a\n", delays_ms[d]);
				continue;
			}
			if (!helpers_split_exact()) {
				printf("APF-BENCH table    %2u ms   n/a on %ld CPUs (a task's CPU time also counts "
				       "the other CPUs' turns: see the one-CPU clock)\n", delays_ms[d],
				       sysconf(_SC_NPROCESSORS_ONLN));
				continue;
			}
			h = fa->helpers_us / fa->exit_us;
			printf("APF-BENCH table    %2u ms   helpers %.1f (sync run: %.1f per page), rest %.1f\n",
			       delays_ms[d], h, fs->ok ? ratio(fs->helpers_us, fs->exit_us) : 0,
			       fa->lost_exits - h);
			json_fig("lost_per_async_fault_helpers", delays_ms[d], "async", true, h,
				 "exit round trips", NULL, false);
			json_fig("lost_per_async_fault_rest", delays_ms[d], "async", true,
				 fa->lost_exits - h, "exit round trips", NULL, false);
		}
		/*
		 * For reference: what serving one page costs beyond the delay
		 * without async page faults (the exit, the userfaultfd round trip
		 * through the page server, the wake-up, the mapping). On the
		 * instruction clock the work of every emulated CPU advances the
		 * one clock, so this host work is time in which B cannot run in
		 * async mode either.
		 */
		printf("APF-BENCH table  for reference, a synchronous fault's cost beyond the delay:\n");
		for (d = 0; d < NR_DELAYS; d++) {
			const struct remote_fig *fs = &fig[d][0];
			double over_ms = fs->wait_ms - delays_ms[d];

			if (!fs->ok || fs->exit_us <= 0) {
				printf("APF-BENCH table    %2u ms   n/a\n", delays_ms[d]);
				continue;
			}
			printf("APF-BENCH table    %2u ms   %.3f ms = %.1f exit round trips\n",
			       delays_ms[d], over_ms, over_ms * 1e3 / fs->exit_us);
			json_fig("sync_cost_beyond_delay", delays_ms[d], "sync", true,
				 over_ms * 1e3 / fs->exit_us, "exit round trips", NULL, false);
		}
		printf("APF-BENCH table  exits per async fault, attributed from tracepoints (%lu faults):\n",
		       (unsigned long)np_sum);
		if (attr_ok) {
			printf("APF-BENCH table    stage-2 abort %.2f + page-ready %.2f + ACK_READY %.2f + "
			       "other aborts %.2f = %.2f  (target <= %.0f) %s\n",
			       ratio(attr_sum.n[ATTR_FAULT], np_sum),
			       ratio(attr_sum.n[ATTR_READY], np_sum),
			       ratio(attr_sum.n[ATTR_ACK], np_sum),
			       ratio(attr_sum.n[ATTR_ABORT], np_sum), ex_attr, TARGET_EXITS,
			       verdict(ex_attr <= TARGET_EXITS));
			printf("APF-BENCH table    background, not counted: %lu host interrupts that "
			       "delivered nothing + %lu other exits in %.1f ms (%.3f per ms)\n",
			       (unsigned long)attr_sum.n[ATTR_BG_IRQ],
			       (unsigned long)attr_sum.n[ATTR_BG_OTHER], bg_ms,
			       ratio(attr_bg_exits(&attr_sum), bg_ms));
		} else {
			printf("APF-BENCH table    n/a (no trace)\n");
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
			double up = 1 - fig[d][1].lost_exits * PROJ_EXIT_US / (delays_ms[d] * 1e3);

			if (fig[d][1].ok && fig[d][1].lost_exits > 0)
				printf("APF-BENCH table    %2u ms   projected %5.3f  (measured here: %5.3f)\n",
				       delays_ms[d], up < 0 ? 0 : up, fig[d][1].util);
			else
				printf("APF-BENCH table    %2u ms   projected   n/a\n", delays_ms[d]);
		}
		if (!only_remote) {
			printf("APF-BENCH table  present-page demand paging, median of %d rounds (pages/s):\n",
			       PRESENT_ROUNDS);
			printf("APF-BENCH table    module loaded, cap enabled   %10.0f  (x%.3f)\n", m_cap,
			       rate_ratio);
			printf("APF-BENCH table    module loaded, no cap        %10.0f  (x%.3f)\n", m_nocap,
			       rate_ratio_nocap);
			printf("APF-BENCH table    module unloaded              %10.0f  (x1)\n", m_unl);
		}
		printf("APF-BENCH table ------------------------------------------------------------\n");

		for (d = 0; d < NR_DELAYS; d++) {
			const struct remote_fig *fs = &fig[d][0], *fa = &fig[d][1];
			double wr = ratio(fa->wait_ms, fs->wait_ms);
			bool met;

			if (only_remote && !fs->ok && !fa->ok)
				continue;
			met = fs->ok && fa->ok && wr <= TARGET_WAIT_RATIO;
			snprintf(tgt, sizeof(tgt), "<=%.2f", TARGET_WAIT_RATIO);
			if (fs->ok && fa->ok)
				printf("APF-BENCH-RESULT wait_ratio delay_ms=%u clock=%s value=%.3f (async %.3f ms / sync %.3f ms per page) target%s %s\n",
				       delays_ms[d], bench_clock, wr, fa->wait_ms, fs->wait_ms, tgt,
				       verdict(met));
			else
				printf("APF-BENCH-RESULT wait_ratio delay_ms=%u clock=%s value=n/a target%s MISSED\n",
				       delays_ms[d], bench_clock, tgt);
			json_fig("wait_ratio", delays_ms[d], NULL, fs->ok && fa->ok, wr, NULL, tgt, met);

			met = fa->ok && fa->util >= target_util[d];
			snprintf(tgt, sizeof(tgt), ">=%.3f", target_util[d]);
			printf("APF-BENCH-RESULT utilization_async delay_ms=%u clock=%s value=%.3f target%s %s\n",
			       delays_ms[d], bench_clock, fa->util, tgt, verdict(met));
			json_fig("utilization_target", delays_ms[d], "async", fa->ok, fa->util, NULL,
				 tgt, met);

			met = fs->ok && fs->util < TARGET_UTIL_SYNC;
			printf("APF-BENCH-RESULT utilization_sync delay_ms=%u clock=%s value=%.3f target=about_0 %s\n",
			       delays_ms[d], bench_clock, fs->util, verdict(met));
			snprintf(tgt, sizeof(tgt), "<%.2f", TARGET_UTIL_SYNC);
			json_fig("utilization_target", delays_ms[d], "sync", fs->ok, fs->util, NULL,
				 tgt, met);

			met = fa->ok && fa->exit_us > 0 && fa->lost_exits <= TARGET_LOST_EXITS;
			snprintf(tgt, sizeof(tgt), "<=%.0f", TARGET_LOST_EXITS);
			printf("APF-BENCH-RESULT lost_per_async_fault delay_ms=%u clock=%s value=%.2f exit round trips (%.3f ms, one exit %.2f us) target%s %s\n",
			       delays_ms[d], bench_clock, fa->lost_exits, fa->not_b_ms, fa->exit_us,
			       tgt, verdict(met));
			json_fig("lost_per_async_fault_target", delays_ms[d], "async",
				 fa->ok && fa->exit_us > 0, fa->lost_exits, "exit round trips", tgt, met);
		}
		snprintf(tgt, sizeof(tgt), "<=%.0f", TARGET_EXITS);
		printf("APF-BENCH-RESULT exits_per_async_fault clock=%s value=%.2f (attributed from tracepoints, %lu faults; background %lu exits apart) target%s %s\n",
		       bench_clock, ex_attr, (unsigned long)np_sum,
		       (unsigned long)attr_bg_exits(&attr_sum), tgt,
		       verdict(attr_ok && ex_attr <= TARGET_EXITS));
		json_fig("exits_per_async_fault", 0, NULL, attr_ok, ex_attr, NULL, tgt,
			 ex_attr <= TARGET_EXITS);
		for (c = 0; c < NR_ATTR; c++) {
			char name[48];

			snprintf(name, sizeof(name), "exits_%s_per_async_fault", attr_names[c]);
			json_fig(name, 0, NULL, attr_ok, ratio(attr_sum.n[c], np_sum), NULL, NULL,
				 false);
		}
		if (!only_remote) {
			snprintf(tgt, sizeof(tgt), ">=%.2f", TARGET_RATE_RATIO);
			printf("APF-BENCH-RESULT present_rate_ratio clock=%s value=%.3f (loaded_cap %.0f / unloaded %.0f pages/s, medians of %d/%d; loaded_nocap x%.3f) target%s %s\n",
			       bench_clock, rate_ratio, m_cap, m_unl, n_cap, n_unl, rate_ratio_nocap,
			       tgt, verdict(n_cap && n_unl && rate_ratio >= TARGET_RATE_RATIO));
			json_fig("present_rate_ratio", 0, NULL, n_cap && n_unl, rate_ratio, NULL, tgt,
				 rate_ratio >= TARGET_RATE_RATIO);
			json_fig("present_rate_ratio_nocap", 0, NULL, n_nocap && n_unl,
				 rate_ratio_nocap, NULL, NULL, false);
			json_fig("present_pages_per_s", 0, "loaded_cap", n_cap, m_cap, "pages/s",
				 NULL, false);
			json_fig("present_pages_per_s", 0, "loaded_nocap", n_nocap, m_nocap,
				 "pages/s", NULL, false);
			json_fig("present_pages_per_s", 0, "unloaded", n_unl, m_unl, "pages/s",
				 NULL, false);
		}
	}

	if (reload_failed)
		return 1;
	for (d = 0; d < NR_DELAYS; d++)
		if (!rr[d][0]->ok && !rr[d][1]->ok && !only_remote)
			return 1;
	return 0;
}
