// SPDX-License-Identifier: GPL-2.0
/*
 * The L2 guest's workload: one process reads through a buffer touching
 * each page (the pages a VMM serves lazily are remote the first time), one
 * process is CPU bound and counts loop iterations until the reader is done.
 * Both print their results on one line each, "APF-WORK: ...".
 *
 *   apf_work [-m MIB] [-w MS] [-c]
 *   apf_work -b LATENCIES [-m MIB]
 *
 *   -m MIB  buffer size (default 64)
 *   -w MS   after filling the buffer, print "APF-WORK: filled" and wait MS
 *           milliseconds before reading it (a VMM may make RAM remote
 *           again meanwhile, as a snapshot restore would); default 0
 *   -c      no CPU-bound process
 *   -b LATENCIES
 *           the benchmark (bench() below): a present-memory baseline, then
 *           one phase per latency of the comma-separated list (per-page
 *           latencies in ms, the VMM's --remote-latency), each started by
 *           the line "APF-L2BENCH-RESTORE phase=N" for the VMM's
 *           --remote-after; results on "APF-L2BENCH ..." lines
 *
 * Exit status 0 if every page read back what was written, 1 otherwise,
 * 2 on a usage or system error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PATTERN 0x9e3779b97f4a7c15ULL

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Counts iterations until @stop_fd becomes readable (the reader is done). */
static int cpu_bound(int stop_fd)
{
	struct pollfd p = { .fd = stop_fd, .events = POLLIN };
	uint64_t iterations = 0;
	double start = now(), secs;
	uint64_t i;

	for (;;) {
		for (i = 0; i < (1 << 20); i++) {
			iterations++;
			/* Keeps the loop: the count is in a register, opaque. */
			__asm__ __volatile__("" : "+r" (iterations));
		}
		if (poll(&p, 1, 0) != 0)
			break;
	}
	secs = now() - start;
	printf("APF-WORK: cpu iterations=%llu seconds=%.3f rate=%.0f/s\n",
	       (unsigned long long)iterations, secs, iterations / secs);
	return 0;
}

static int reader(size_t bytes, long wait_ms)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = bytes / page, i, bad = 0;
	double start, secs;
	uint64_t *w;
	char *buf;

	buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "apf_work: mmap %zu bytes: %s\n", bytes, strerror(errno));
		return 2;
	}
	for (i = 0; i < pages; i++) {
		w = (uint64_t *)(buf + i * page);
		*w = i ^ PATTERN;
	}
	printf("APF-WORK: filled pages=%zu\n", pages);
	fflush(stdout);
	if (wait_ms > 0)
		usleep(wait_ms * 1000);

	start = now();
	for (i = 0; i < pages; i++) {
		w = (uint64_t *)(buf + i * page);
		/* One load per page, never elided. */
		if (__atomic_load_n(w, __ATOMIC_RELAXED) != (i ^ PATTERN))
			bad++;
	}
	secs = now() - start;
	printf("APF-WORK: mem pages=%zu seconds=%.3f rate=%.0f/s mismatches=%zu\n",
	       pages, secs, pages / secs, bad);
	munmap(buf, bytes);
	return bad ? 1 : 0;
}

/*
 * The benchmark (-b). One reader (this process) and one CPU-bound child,
 * which runs a fixed number of iterations per phase when told to, and
 * publishes its progress in a shared page.
 *
 * Present-memory baseline: the child alone calibrates its rate (at least
 * CAL_SECS of guest time), the reader reads the present buffer alone.
 *
 * Remote phase N, per-page latency L: the child's work is the iterations
 * that take, at the calibrated rate, as long as the reader's synchronous
 * read would (pages x L). The reader prints the restore marker; the VMM
 * stops the vCPU right after it and makes all of guest RAM remote (its
 * kernel too), so everything after the write runs on remote memory, as
 * right after a snapshot restore. Then t0; the child is started and the
 * reader reads every page. pre_s is from just before the marker to t0:
 * the VMM's stop (which it reports) plus what the guest needed after the
 * restore to get back to user mode (its kernel's pages, synchronously). Figures, all from t0, in guest CLOCK_MONOTONIC:
 * the reader's completion time, the child's, both finished (the later of
 * the two), and the child's throughput while the reader runs (over
 * [t0, reader done], or over its own run if it finished first) as a share
 * of its calibrated rate. The guest driver's counters before and after
 * give what happened in the phase; the line "APF-L2BENCH-END", once both
 * finished, has the VMM print how many pages it served (--served-at).
 */
#define CHUNK (1 << 16)
#define CAL_SECS 0.5
#define MAX_PHASES 8

struct cmd {
	uint64_t iterations;	/* 0: exit */
};

struct result {
	double start, end;
};

static const char *const counter_names[] = {
	"not_present", "page_ready", "sleeps", "kernel_skipped", "no_entry",
	"spurious", "ready_before_sleep", "wake_all",
};
#define NR_COUNTERS (sizeof(counter_names) / sizeof(counter_names[0]))

static void read_counters(uint64_t *v)
{
	char path[128];
	unsigned long long x;
	size_t i;
	FILE *f;

	for (i = 0; i < NR_COUNTERS; i++) {
		v[i] = 0;
		snprintf(path, sizeof(path), "/sys/kernel/debug/kvm_apf_guest/%s",
			 counter_names[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &x) == 1)
			v[i] = x;
		fclose(f);
	}
}

static int full_read(int fd, void *p, size_t n)
{
	char *c = p;
	ssize_t r;

	while (n) {
		r = read(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= r;
	}
	return 0;
}

static int full_write(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t r;

	while (n) {
		r = write(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= r;
	}
	return 0;
}

/* The CPU-bound child: runs each commanded amount of work, reports when. */
static int bench_child(int cmd_fd, int res_fd, uint64_t *progress)
{
	struct result res;
	struct cmd c;
	uint64_t done, i, n;

	while (full_read(cmd_fd, &c, sizeof(c)) == 0 && c.iterations) {
		res.start = now();
		for (done = 0; done < c.iterations; done += n) {
			n = c.iterations - done < CHUNK ? c.iterations - done : CHUNK;
			for (i = 0; i < n; i++)
				__asm__ __volatile__("" : "+r" (i));
			__atomic_store_n(progress, done + n, __ATOMIC_RELAXED);
		}
		res.end = now();
		if (full_write(res_fd, &res, sizeof(res)))
			return 2;
	}
	return 0;
}

static size_t read_pages(const char *buf, size_t pages, long page)
{
	size_t i, bad = 0;
	const uint64_t *w;

	for (i = 0; i < pages; i++) {
		w = (const uint64_t *)(buf + i * page);
		if (__atomic_load_n(w, __ATOMIC_RELAXED) != (i ^ PATTERN))
			bad++;
	}
	return bad;
}

static int bench(size_t bytes, const char *list)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = bytes / page, i, bad, total_bad = 0;
	double lat_ms[MAX_PHASES], rate0, t_mark, t0, t_read, both, iters_in, span;
	uint64_t *progress, work, c0[NR_COUNTERS], c1[NR_COUNTERS];
	int cmd[2], res[2], n = 0, k, status, ret = 0;
	struct result r;
	struct cmd c;
	char *buf, *end;
	const char *p = list;
	pid_t child;

	while (*p) {
		if (n == MAX_PHASES) {
			fprintf(stderr, "apf_work: -b: at most %d latencies\n", MAX_PHASES);
			return 2;
		}
		lat_ms[n] = strtod(p, &end);
		if (end == p || lat_ms[n] <= 0 || (*end && *end != ',')) {
			fprintf(stderr, "apf_work: -b '%s': latencies in ms, e.g. 0.2,1,10\n", list);
			return 2;
		}
		n++;
		p = *end ? end + 1 : end;
	}
	if (!n) {
		fprintf(stderr, "apf_work: -b: no latency\n");
		return 2;
	}
	buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	progress = mmap(NULL, page, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || progress == MAP_FAILED) {
		fprintf(stderr, "apf_work: mmap: %s\n", strerror(errno));
		return 2;
	}
	for (i = 0; i < pages; i++)
		*(uint64_t *)(buf + i * page) = i ^ PATTERN;
	if (pipe(cmd) || pipe(res)) {
		perror("apf_work: pipe");
		return 2;
	}
	child = fork();
	if (child < 0) {
		perror("apf_work: fork");
		return 2;
	}
	if (child == 0) {
		close(cmd[1]);
		close(res[0]);
		_exit(bench_child(cmd[0], res[1], progress));
	}
	close(cmd[0]);
	close(res[1]);

	/* Present-memory baseline: the child alone, then the reader alone. */
	c.iterations = CHUNK * 64;
	for (;;) {
		if (full_write(cmd[1], &c, sizeof(c)) || full_read(res[0], &r, sizeof(r)))
			goto child_died;
		if (r.end - r.start >= CAL_SECS || c.iterations >= (1ULL << 40))
			break;
		c.iterations *= 2;
	}
	rate0 = c.iterations / (r.end - r.start);
	t0 = now();
	bad = read_pages(buf, pages, page);
	t_read = now() - t0;
	total_bad += bad;
	printf("APF-L2BENCH present pages=%zu cpu_iterations=%llu cpu_s=%.6f cpu_rate=%.0f read_s=%.6f mismatches=%zu\n",
	       pages, (unsigned long long)c.iterations, r.end - r.start, rate0,
	       t_read, bad);

	for (k = 0; k < n; k++) {
		/* As long as the synchronous read: pages x latency. */
		work = (uint64_t)(rate0 * pages * lat_ms[k] / 1000.0);
		work = work ? work : 1;
		c.iterations = work;
		__atomic_store_n(progress, 0, __ATOMIC_RELAXED);
		read_counters(c0);
		/*
		 * The VMM stops this vCPU right after the marker's last byte;
		 * tcdrain() returns once every byte is transmitted, so t0 is
		 * after the restore.
		 */
		t_mark = now();
		printf("APF-L2BENCH-RESTORE phase=%d\n", k + 1);
		tcdrain(STDOUT_FILENO);
		t0 = now();
		if (full_write(cmd[1], &c, sizeof(c)))
			goto child_died;
		bad = read_pages(buf, pages, page);
		t_read = now();
		iters_in = (double)__atomic_load_n(progress, __ATOMIC_RELAXED);
		if (full_read(res[0], &r, sizeof(r)))
			goto child_died;
		/* For the VMM's --served-at: its count of pages served so far. */
		printf("APF-L2BENCH-END phase=%d\n", k + 1);
		tcdrain(STDOUT_FILENO);
		read_counters(c1);
		total_bad += bad;
		if (r.end <= t_read) {
			/* The CPU work ended first: its rate over its own run. */
			iters_in = work;
			span = r.end - t0;
		} else {
			span = t_read - t0;
		}
		both = (r.end > t_read ? r.end : t_read) - t0;
		printf("APF-L2BENCH phase=%d latency_ms=%g pages=%zu pre_s=%.6f read_s=%.6f cpu_s=%.6f both_s=%.6f cpu_iterations=%llu cpu_rate0=%.0f cpu_share=%.4f mismatches=%zu",
		       k + 1, lat_ms[k], pages, t0 - t_mark, t_read - t0, r.end - t0, both,
		       (unsigned long long)work, rate0,
		       span > 0 ? iters_in / span / rate0 : 0.0, bad);
		for (i = 0; i < NR_COUNTERS; i++)
			printf(" %s=%llu", counter_names[i],
			       (unsigned long long)(c1[i] - c0[i]));
		printf("\n");
	}
	c.iterations = 0;
	full_write(cmd[1], &c, sizeof(c));
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		ret = 2;
	printf("APF-WORK: bench phases=%d mismatches=%zu\n", n, total_bad);
	return ret ? ret : (total_bad ? 1 : 0);

child_died:
	fprintf(stderr, "apf_work: the CPU-bound child died\n");
	return 2;
}

int main(int argc, char **argv)
{
	long mib = 64, wait_ms = 0;
	const char *bench_list = NULL;
	int opt, stop[2], status = 0, ret;
	int cpu = 1;
	double start;
	pid_t child = -1;

	while ((opt = getopt(argc, argv, "m:w:cb:")) != -1) {
		switch (opt) {
		case 'm':
			mib = strtol(optarg, NULL, 0);
			break;
		case 'w':
			wait_ms = strtol(optarg, NULL, 0);
			break;
		case 'c':
			cpu = 0;
			break;
		case 'b':
			bench_list = optarg;
			break;
		default:
			fprintf(stderr, "usage: apf_work [-m MIB] [-w MS] [-c] | -b LATENCIES [-m MIB]\n");
			return 2;
		}
	}
	if (mib <= 0 || mib > 4096 || wait_ms < 0) {
		fprintf(stderr, "apf_work: -m 1..4096, -w >= 0\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bench_list)
		return bench((size_t)mib << 20, bench_list);
	start = now();
	if (cpu) {
		if (pipe(stop)) {
			perror("apf_work: pipe");
			return 2;
		}
		child = fork();
		if (child < 0) {
			perror("apf_work: fork");
			return 2;
		}
		if (child == 0) {
			close(stop[1]);
			_exit(cpu_bound(stop[0]));
		}
		close(stop[0]);
	}
	ret = reader((size_t)mib << 20, wait_ms);
	if (cpu) {
		close(stop[1]);
		if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			ret = ret ? ret : 2;
	}
	printf("APF-WORK: done seconds=%.3f status=%d\n", now() - start, ret);
	return ret;
}
