/* The benchmark producer, shared by the addon (produce()) and bench/transport_c.c so
 * both consumers are fed exactly the same way: BPF_PROG_TEST_RUN of test_feed, each run
 * re-encoding up to DLM_RV_TEST_BATCH records (copied, cycling, from `recs` into the
 * mmapped test_in map) into the ring, optionally paced to `rate` records/s. */
#ifndef DLM_RV_PRODUCE_H
#define DLM_RV_PRODUCE_H
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "../bpf/dlm_rv_probes.h"

struct rv_produce {
	int prog_fd;			/* test_feed */
	uint8_t *test_in;		/* mmapped test_in map */
	const uint8_t *recs;		/* input records (128 bytes each) */
	uint64_t nrecs;
	uint64_t total;			/* records to produce */
	double rate;			/* records/s, 0 = as fast as possible */
	uint32_t batch;			/* records per test run (<= DLM_RV_TEST_BATCH) */
	volatile int *stop;
	/* out */
	uint64_t produced, runs, run_ns;
	int err;
};

static inline uint64_t rv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline void rv_produce_run(struct rv_produce *a)
{
	uint64_t t0 = rv_now_ns(), src = 0;
	uint32_t batch = a->batch ? a->batch : DLM_RV_TEST_BATCH;
	if (batch > DLM_RV_TEST_BATCH)
		batch = DLM_RV_TEST_BATCH;
	a->produced = a->runs = a->run_ns = 0;
	a->err = 0;
	while (a->produced < a->total && !(a->stop && *a->stop)) {
		uint64_t k = a->total - a->produced;
		if (k > batch)
			k = batch;
		for (uint64_t i = 0; i < k;) {
			uint64_t m = a->nrecs - src;
			if (m > k - i)
				m = k - i;
			memcpy(a->test_in + i * 128, a->recs + src * 128, m * 128);
			i += m;
			src = (src + m) % a->nrecs;
		}
		__u64 args[1] = {k};
		LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = sizeof args);
		uint64_t r0 = rv_now_ns();
		if (bpf_prog_test_run_opts(a->prog_fd, &o)) {
			a->err = -1;
			break;
		}
		a->run_ns += rv_now_ns() - r0;
		a->runs++;
		a->produced += k;
		if (a->rate > 0) {
			uint64_t due = t0 + (uint64_t)((double)a->produced * 1e9 / a->rate);
			uint64_t now = rv_now_ns();
			if (due > now) {
				struct timespec d = {(time_t)((due - now) / 1000000000ull), (long)((due - now) % 1000000000ull)};
				nanosleep(&d, NULL);
			}
		}
	}
}
#endif
