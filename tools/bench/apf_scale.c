// SPDX-License-Identifier: GPL-2.0-only
/*
 * apf_scale: many faults in flight. A benchmark, not a test.
 *
 * A VM of NR_VCPUS vCPUs, the capability enabled with SLOTS slots per vCPU
 * (mode "async") or not enabled ("sync"). Each vCPU reads PAGES_PER_VCPU
 * pages of its own, one after the other, all backed by userfaultfd
 * (MISSING) and served by NR_READERS VMM threads after DELAY_US each. The
 * guest models one task per page: when the load of a page takes a
 * not-present, the interrupt handler resumes after the load (the task
 * sleeps) and the vCPU goes on with the next page; a page-ready completes
 * the task. Once every page was touched the vCPU waits for the last
 * page-ready, then reads every page again (each is mapped by then) and
 * checks its contents.
 *
 *   completions/s = NR_VCPUS * PAGES_PER_VCPU / (CNTVCT time from the first
 *                   load to the last vCPU's last completion)
 *   host CPU time per async fault = (busy time of all host CPUs in the
 *                   phase, from /proc/stat, minus the same for the vCPU
 *                   threads' own time, from their /proc/self/task/TID/stat)
 *                   / async faults: the module's and the fault-in
 *                   workers' share, the VMM's page servers included
 *
 * Output: APF-SCALE lines, and every figure as an APF-BENCH-JSON line
 * (the format of apf_bench, tools/bench/results.py), with the clock from
 * apf_clock= on the kernel command line.
 *
 * Usage: apf_scale [async|sync] (both if no argument)
 */
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>

#include "apf_util.h"
#include "gic.h"
#include "userfaultfd_util.h"

#define NR_VCPUS		4
#define SLOTS			64
#define PAGES_PER_VCPU		512
#define NR_PAGES		(NR_VCPUS * PAGES_PER_VCPU)
#define DELAY_US		1000
#define NR_READERS		16
#define WAIT_MS			60000
#define SCALE_SLOT		10
#define SCALE_GPA		0xc0000000UL
#define PATTERN			0x5a5aa5a5c3c33c3cUL
#define PROBE_SKIPPED		0xdeadbeefcafe0001UL

struct scale_cfg {
	u64 record_gpa[NR_VCPUS];
	u64 base_gva;
	u64 stride;
	u64 apf;
};

static struct scale_cfg cfg;

struct scale_vstate {
	struct apf_record record;
	volatile u64 np_count;
	volatile u64 ready_count;
	volatile u64 t_start, t_end;	/* CNTVCT: first load, last completion */
	volatile u64 data_errors;
	volatile u64 spurious;
} __aligned(64);

static struct scale_vstate svs[NR_VCPUS];

/*
 * u64 scale_probe(u64 addr): one load from addr; if the not-present
 * interrupt is taken at it, the handler resumes after it with
 * PROBE_SKIPPED in x0.
 */
u64 scale_probe(u64 addr);
extern char scale_probe_insn[], scale_probe_done[];
asm(
"	.pushsection .text\n"
"	.global	scale_probe\n"
"	.type	scale_probe, %function\n"
"scale_probe:\n"
"	.global	scale_probe_insn\n"
"scale_probe_insn:\n"
"	ldr	x0, [x0]\n"
"	.global	scale_probe_done\n"
"scale_probe_done:\n"
"	ret\n"
"	.size	scale_probe, . - scale_probe\n"
"	.popsection\n");

static void scale_irq_handler(struct ex_regs *regs)
{
	struct scale_vstate *v = &svs[guest_get_vcpuid()];
	u32 intid = gic_get_and_ack_irq();
	u64 tok;

	if (intid == IAR_SPURIOUS)
		return;
	if (intid == APF_NP_INTID) {
		tok = apf_take_not_present(&v->record);
		if (tok && regs->pc == (u64)scale_probe_insn) {
			v->np_count++;
			regs->pc = (u64)scale_probe_done;
			regs->regs[0] = PROBE_SKIPPED;
		} else {
			v->spurious++;
		}
	} else if (intid == APF_READY_INTID) {
		tok = apf_take_ready(&v->record, NULL);
		if (tok && tok != APF_WAKE_ALL)
			v->ready_count++;
		else
			v->spurious++;
	} else {
		v->spurious++;
	}
	gic_set_eoi(intid);
}

static void scale_guest_code(void)
{
	u32 cpu = guest_get_vcpuid();
	struct scale_vstate *v = &svs[cpu];
	u64 first = cfg.base_gva + (u64)cpu * PAGES_PER_VCPU * cfg.stride;
	u64 i, gva, val, limit;

	gic_init(GIC_V3, NR_VCPUS);
	gic_irq_enable(APF_NP_INTID);
	gic_irq_enable(APF_READY_INTID);
	local_irq_enable();
	if (cfg.apf) {
		GUEST_ASSERT_EQ(apf_hvc0(APF_OP_SET_RECORD, cfg.record_gpa[cpu]), APF_SUCCESS);
		GUEST_ASSERT_EQ(apf_hvc0(APF_OP_ENABLE, APF_ENABLE_NOTIFY_EL1), APF_SUCCESS);
	}
	GUEST_SYNC(1);

	v->t_start = read_sysreg(cntvct_el0);
	for (i = 0; i < PAGES_PER_VCPU; i++)
		scale_probe(first + i * cfg.stride);
	/* The tasks that slept: wait for their page-ready. */
	limit = read_sysreg(cntfrq_el0) * WAIT_MS / 1000;
	while (READ_ONCE(v->ready_count) < READ_ONCE(v->np_count))
		__GUEST_ASSERT(read_sysreg(cntvct_el0) - v->t_start < limit,
			       "vCPU %u: %lu page-ready of %lu", cpu, v->ready_count,
			       v->np_count);
	v->t_end = read_sysreg(cntvct_el0);

	for (i = 0; i < PAGES_PER_VCPU; i++) {
		gva = first + i * cfg.stride;
		val = scale_probe(gva);
		if (val != (gva ^ PATTERN))
			v->data_errors++;
	}
	GUEST_DONE();
}

/* ---- Host side */

struct scale_result {
	int ok;
	u64 freq;
	u64 np, ready, data_errors, spurious;
	u64 t_start, t_end;		/* earliest start, latest end (CNTVCT) */
	double host_busy_s;		/* all CPUs, /proc/stat */
	double vcpu_busy_s;		/* the vCPU threads */
	double wall_s;
};

static size_t psize;
static u64 region_hva;

static int scale_uffd_handler(int mode, int uffd, struct uffd_msg *msg)
{
	static __thread u64 *buf;
	u64 addr = msg->arg.pagefault.address & ~((u64)psize - 1);
	struct uffdio_range range = { .start = addr, .len = psize };
	struct uffdio_copy copy = { .dst = addr, .len = psize };
	u64 gva = SCALE_GPA + (addr - region_hva);
	u64 i;

	if (!buf) {
		buf = aligned_alloc(psize, psize);
		TEST_ASSERT(buf, "aligned_alloc");
	}
	for (i = 0; i < psize / sizeof(u64); i++)
		buf[i] = gva ^ PATTERN;
	copy.src = (u64)buf;
	/* EEXIST: the vCPU and a worker both faulted on it; wake both. */
	if (ioctl(uffd, UFFDIO_COPY, &copy))
		ioctl(uffd, UFFDIO_WAKE, &range);
	return 0;
}

/* Busy seconds of all CPUs so far: /proc/stat's first line minus idle and iowait. */
static double host_busy(void)
{
	unsigned long long v[10] = {}, busy = 0;
	FILE *f = fopen("/proc/stat", "r");
	int i;

	TEST_ASSERT(f, "/proc/stat");
	TEST_ASSERT(fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
			   &v[9]) >= 8, "/proc/stat format");
	fclose(f);
	for (i = 0; i < 8; i++)
		if (i != 3 && i != 4)
			busy += v[i];
	return (double)busy / sysconf(_SC_CLK_TCK);
}

/* utime + stime of one thread of this process, in seconds. */
static double thread_busy(pid_t tid)
{
	unsigned long long ut = 0, st = 0;
	char path[64], line[1024], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f)) {
		/* After "(comm)": state is field 3, utime 14, stime 15. */
		p = strrchr(line, ')');
		if (p)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			       &ut, &st);
	}
	fclose(f);
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

struct vcpu_runner {
	struct kvm_vcpu *vcpu;
	pid_t tid;
	volatile int at_start;
	volatile int go;
	double busy;
};

static void *scale_vcpu_fn(void *arg)
{
	struct vcpu_runner *r = arg;
	struct ucall uc;

	r->tid = syscall(SYS_gettid);
	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_SYNC);
	r->at_start = 1;
	while (!r->go)
		usleep(1000);
	TEST_ASSERT_EQ(apf_run_to_ucall(r->vcpu, &uc), UCALL_DONE);
	r->busy = thread_busy(r->tid);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct scale_job {
	struct scale_result *r;
	bool async;
};

static void scale_run(void *arg)
{
	struct scale_job *job = arg;
	struct scale_result *r = job->r;
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vcpu_runner run[NR_VCPUS] = {};
	pthread_t threads[NR_VCPUS];
	struct uffd_desc *uffd;
	struct kvm_vm *vm;
	double b0, b1, w0, start_busy = 0;
	u64 gpages;
	int i;

	vm = vm_create_with_vcpus(NR_VCPUS, scale_guest_code, vcpus);
	TEST_REQUIRE(vm->arch.has_gic);
	vm_init_descriptor_tables(vm);
	for (i = 0; i < NR_VCPUS; i++)
		vcpu_init_descriptor_tables(vcpus[i]);
	vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, scale_irq_handler);

	psize = getpagesize();
	memset(&cfg, 0, sizeof(cfg));
	cfg.stride = max_t(u64, psize, vm->page_size);
	gpages = NR_PAGES * cfg.stride / vm->page_size;
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SCALE_GPA, SCALE_SLOT, gpages, 0);
	virt_map(vm, SCALE_GPA, SCALE_GPA, gpages);
	cfg.base_gva = SCALE_GPA;
	cfg.apf = job->async;
	for (i = 0; i < NR_VCPUS; i++)
		cfg.record_gpa[i] = addr_gva2gpa(vm, (gva_t)&svs[i].record);
	sync_global_to_guest(vm, cfg);
	if (job->async)
		apf_enable_cap(vm, KVM_ARM_ASYNC_PF_ENABLE | KVM_ARM_ASYNC_PF_ALLOW_EL1, SLOTS,
			       APF_NP_INTID, APF_READY_INTID);

	region_hva = (u64)addr_gpa2hva(vm, SCALE_GPA);
	uffd = uffd_setup_demand_paging(UFFDIO_REGISTER_MODE_MISSING, DELAY_US,
					(void *)region_hva, NR_PAGES * cfg.stride, NR_READERS,
					scale_uffd_handler);

	for (i = 0; i < NR_VCPUS; i++) {
		run[i].vcpu = vcpus[i];
		pthread_create(&threads[i], NULL, scale_vcpu_fn, &run[i]);
	}
	for (i = 0; i < NR_VCPUS; i++)
		while (!run[i].at_start)
			usleep(1000);
	for (i = 0; i < NR_VCPUS; i++)
		start_busy += thread_busy(run[i].tid);
	b0 = host_busy();
	w0 = now_s();
	for (i = 0; i < NR_VCPUS; i++)
		run[i].go = 1;
	for (i = 0; i < NR_VCPUS; i++)
		pthread_join(threads[i], NULL);
	b1 = host_busy();
	r->wall_s = now_s() - w0;

	sync_global_from_guest(vm, svs);
	r->freq = read_sysreg(cntfrq_el0);
	r->t_start = ~0ULL;
	for (i = 0; i < NR_VCPUS; i++) {
		r->np += svs[i].np_count;
		r->ready += svs[i].ready_count;
		r->data_errors += svs[i].data_errors;
		r->spurious += svs[i].spurious;
		r->t_start = min_t(u64, r->t_start, svs[i].t_start);
		r->t_end = max_t(u64, r->t_end, svs[i].t_end);
		r->vcpu_busy_s += run[i].busy;
	}
	r->vcpu_busy_s -= start_busy;
	r->host_busy_s = b1 - b0;
	kvm_vm_free(vm);
	uffd_stop_demand_paging(uffd);
	r->ok = 1;
}

static char bench_clock[16] = "unknown";

static void read_clock(void)
{
	apf_read_clock(bench_clock, sizeof(bench_clock));
}

static void json(const char *name, const char *mode, double value, const char *unit)
{
	printf("APF-BENCH-JSON {\"clock\":\"%s\",\"name\":\"%s\",\"mode\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n",
	       bench_clock, name, mode, value, unit);
}

int main(int argc, char *argv[])
{
	double rate[2] = {};
	int a, status;

	setbuf(stdout, NULL);
	read_clock();
	apf_force_el1_guests();
	if (!kvm_has_cap(KVM_CAP_ARM_ASYNC_PF) && apf_load_module())
		printf("APF-SCALE note: cannot load %s: %s\n", APF_MODULE_PATH, strerror(errno));
	if (!kvm_has_cap(KVM_CAP_ARM_ASYNC_PF)) {
		printf("APF-SCALE skip: no async page fault provider\n");
		return KSFT_SKIP;
	}
	printf("APF-SCALE begin: clock %s; %d vCPUs x %d remote pages, %d slots, %d page servers, %d us each\n",
	       bench_clock, NR_VCPUS, PAGES_PER_VCPU, SLOTS, NR_READERS, DELAY_US);

	for (a = 0; a < 2; a++) {
		const char *mode = a ? "async" : "sync";
		struct scale_job job;
		struct scale_result *r;
		double t, cpu_us;

		r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		TEST_ASSERT(r != MAP_FAILED, "mmap: errno %d", errno);
		if (argc > 1 && strcmp(argv[1], mode))
			continue;
		job = (struct scale_job){ r, a };
		if (apf_run_child("APF-SCALE run", scale_run, &job, 900, &status) !=
		    APF_CHILD_EXITED || !WIFEXITED(status) || WEXITSTATUS(status) != KSFT_PASS ||
		    !r->ok) {
			printf("APF-SCALE mode=%s FAILED (no figures)\n", mode);
			continue;
		}
		t = (double)(r->t_end - r->t_start) / r->freq;
		rate[a] = t > 0 ? NR_PAGES / t : 0;
		cpu_us = r->np ? (r->host_busy_s - r->vcpu_busy_s) * 1e6 / r->np : 0;
		printf("APF-SCALE mode=%s clock=%s completions_per_s=%.0f phase_ms=%.1f async_faults=%lu page_ready=%lu data_errors=%lu spurious=%lu host_busy_s=%.3f vcpu_threads_busy_s=%.3f host_cpu_us_per_async_fault=%.1f wall_s=%.2f\n",
		       mode, bench_clock, rate[a], t * 1e3, (unsigned long)r->np,
		       (unsigned long)r->ready, (unsigned long)r->data_errors,
		       (unsigned long)r->spurious, r->host_busy_s, r->vcpu_busy_s, cpu_us,
		       r->wall_s);
		json("scale_completions_per_s", mode, rate[a], "pages/s");
		if (a && r->np)
			json("scale_host_cpu_per_async_fault", mode, cpu_us, "us");
	}
	if (rate[0] > 0 && rate[1] > 0) {
		printf("APF-SCALE-RESULT completions_per_s clock=%s async=%.0f sync=%.0f ratio=x%.2f\n",
		       bench_clock, rate[1], rate[0], rate[1] / rate[0]);
		json("scale_completions_ratio", "async/sync", rate[1] / rate[0], "");
	}
	return 0;
}
