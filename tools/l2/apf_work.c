// SPDX-License-Identifier: GPL-2.0
/*
 * The L2 guest's workload: one process reads through a buffer touching
 * each page (the pages a VMM serves lazily are remote the first time), one
 * process is CPU bound and counts loop iterations until the reader is done.
 * Both print their results on one line each, "APF-WORK: ...".
 *
 *   apf_work [-m MIB] [-w MS] [-c]
 *
 *   -m MIB  buffer size (default 64)
 *   -w MS   after filling the buffer, print "APF-WORK: filled" and wait MS
 *           milliseconds before reading it (a VMM may make RAM remote
 *           again meanwhile, as a snapshot restore would); default 0
 *   -c      no CPU-bound process
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

int main(int argc, char **argv)
{
	long mib = 64, wait_ms = 0;
	int opt, stop[2], status = 0, ret;
	int cpu = 1;
	double start;
	pid_t child = -1;

	while ((opt = getopt(argc, argv, "m:w:c")) != -1) {
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
		default:
			fprintf(stderr, "usage: apf_work [-m MIB] [-w MS] [-c]\n");
			return 2;
		}
	}
	if (mib <= 0 || mib > 4096 || wait_ms < 0) {
		fprintf(stderr, "apf_work: -m 1..4096, -w >= 0\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
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
