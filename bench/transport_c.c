// Plain C libbpf consumer of dlm-rv's ring, for bench/transport.js: the same BPF object
// (skeleton), the same producer (native/produce.h: test_feed via BPF_PROG_TEST_RUN in a
// second thread), and a consumer that does what the addon does per record (copy it into
// a batch buffer, hand each full batch on), but in C with ring_buffer__poll().
//
//   transport_c pipe  RECORDS_FILE TOTAL [RATE] [RING_BYTES] [BATCH_RECORDS]
//       producer thread and consumer running together
//   transport_c drain RECORDS_FILE TOTAL 0 [RING_BYTES] [BATCH_RECORDS]
//       fill the ring first (TOTAL must fit), then time the consumer alone
// prints one JSON line: records, seconds, rate, drops, process and consumer CPU.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/types.h>
#include "../bpf/dlm_rv.h"
#include "../native/produce.h"
#include "dlm_rv.skel.h"

static uint8_t *batch_buf;
static size_t batch_cap, batch_n;
static uint64_t consumed, batches, checksum;

static void deliver(void)
{
	/* stand-in for the JS call: touch the batch once */
	if (batch_n)
		checksum += batch_buf[(batch_n - 1) * 128 + 8];
	batches += batch_n != 0;
	batch_n = 0;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size != 128)
		return 0;
	memcpy(batch_buf + batch_n * 128, data, 128);
	consumed++;
	if (++batch_n == batch_cap)
		deliver();
	return 0;
}

static int quiet(enum libbpf_print_level l, const char *f, va_list ap)
{
	if (l == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, f, ap);
}

static void *producer(void *p)
{
	rv_produce_run((struct rv_produce *)p);
	return NULL;
}

static double cpu_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "pipe") && strcmp(argv[1], "drain"))) {
		fprintf(stderr, "usage: %s pipe|drain RECORDS_FILE TOTAL [RATE] [RING_BYTES] [BATCH_RECORDS]\n", argv[0]);
		return 2;
	}
	int drain_only = !strcmp(argv[1], "drain");
	argv++;
	argc--;
	uint64_t total = strtoull(argv[2], 0, 10);
	double rate = argc > 3 ? atof(argv[3]) : 0;
	uint32_t ring = argc > 4 ? (uint32_t)strtoul(argv[4], 0, 10) : 16u << 20;
	batch_cap = argc > 5 ? strtoul(argv[5], 0, 10) : 8192;
	batch_buf = malloc(batch_cap * 128);

	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	struct stat st;
	fstat(fileno(f), &st);
	uint8_t *recs = malloc(st.st_size);
	if (fread(recs, 1, st.st_size, f) != (size_t)st.st_size) {
		perror("read");
		return 2;
	}
	fclose(f);

	libbpf_set_print(quiet);
	struct dlm_rv_bpf *s = dlm_rv_bpf__open();
	if (!s)
		return 3;
	struct bpf_program *p;
	bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, p == s->progs.test_feed);
	bpf_map__set_max_entries(s->maps.rb, ring);
	if (dlm_rv_bpf__load(s)) {
		fprintf(stderr, "transport_c: BPF load failed (root?)\n");
		return 3;
	}
	size_t inlen = (size_t)DLM_RV_TEST_BATCH * 128;
	void *in = mmap(NULL, inlen, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(s->maps.test_in), 0);
	if (in == MAP_FAILED) {
		perror("mmap");
		return 3;
	}
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(s->maps.rb), on_sample, NULL, NULL);

	volatile int stop = 0;
	struct rv_produce a = {
		.prog_fd = bpf_program__fd(s->progs.test_feed),
		.test_in = in,
		.recs = recs,
		.nrecs = st.st_size / 128,
		.total = total,
		.rate = rate,
		.stop = &stop,
	};
	if (drain_only) {
		rv_produce_run(&a);
		double ccpu0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
		uint64_t t0 = rv_now_ns();
		ring_buffer__consume(rb);
		deliver();
		uint64_t t1 = rv_now_ns();
		double ccpu1 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
		double secs = (t1 - t0) / 1e9;
		printf("{\"consumer\":\"c\",\"mode\":\"drain\",\"produced\":%llu,\"records\":%llu,\"seconds\":%.6f,\"rate\":%.0f,"
		       "\"cpuConsumerS\":%.6f,\"runNs\":%llu}\n",
		       (unsigned long long)a.produced, (unsigned long long)consumed, secs, consumed / secs, ccpu1 - ccpu0,
		       (unsigned long long)a.run_ns);
		return 0;
	}
	double cpu0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID), ccpu0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
	uint64_t t0 = rv_now_ns();
	pthread_t th;
	pthread_create(&th, NULL, producer, &a);
	/* consume until the producer is done and everything produced is in or dropped */
	for (;;) {
		ring_buffer__poll(rb, 50);
		deliver();
		if (__atomic_load_n(&a.produced, __ATOMIC_RELAXED) >= total) {
			ring_buffer__consume(rb);
			deliver();
			break;
		}
	}
	pthread_join(th, NULL);
	ring_buffer__consume(rb);
	deliver();
	uint64_t t1 = rv_now_ns();
	double cpu1 = cpu_s(CLOCK_PROCESS_CPUTIME_ID), ccpu1 = cpu_s(CLOCK_THREAD_CPUTIME_ID);

	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = calloc(ncpu, 8);
	__u32 z = 0;
	uint64_t drops = 0;
	if (bpf_map_lookup_elem(bpf_map__fd(s->maps.drops), &z, vals) == 0)
		for (int c = 0; c < ncpu; c++)
			drops += vals[c];
	double secs = (t1 - t0) / 1e9;
	printf("{\"consumer\":\"c\",\"mode\":\"pipe\",\"produced\":%llu,\"records\":%llu,\"drops\":%llu,\"seconds\":%.6f,"
	       "\"rate\":%.0f,\"cpuProcessS\":%.6f,\"cpuConsumerS\":%.6f,\"runNs\":%llu,\"runs\":%llu,\"batches\":%llu}\n",
	       (unsigned long long)a.produced, (unsigned long long)consumed, (unsigned long long)drops, secs,
	       consumed / secs, cpu1 - cpu0, ccpu1 - ccpu0, (unsigned long long)a.run_ns, (unsigned long long)a.runs,
	       (unsigned long long)batches);
	ring_buffer__free(rb);
	munmap(in, inlen);
	dlm_rv_bpf__destroy(s);
	return a.err ? 1 : 0;
}
