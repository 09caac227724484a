// dlm-rv native addon: the BPF collector (native/collector.cc) and BTF facts
// (native/btf_facts.cc). Its whole surface is declared in src/native.ts.
#include <bpf/libbpf.h>
#include <napi.h>

#include "../bpf/dlm_rv.h"
#include "btf_facts.h"
#include "probes.h"
#include "produce.h"
#include <sys/mman.h>
#include <unistd.h>

Napi::Function CollectorClass(Napi::Env env);
Napi::Value CoreCheck(const Napi::CallbackInfo &info);

static Napi::Value ProbeTable(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Array a = Napi::Array::New(env, DLM_RV_P_MAX);
	for (int i = 0; i < DLM_RV_P_MAX; i++) {
		Napi::Object o = Napi::Object::New(env);
		o.Set("id", kProbes[i].id);
		o.Set("prog", kProbes[i].prog);
		o.Set("hook", kProbes[i].hook);
		a.Set(i, o);
	}
	return a;
}

static Napi::Value LibbpfVersion(const Napi::CallbackInfo &info)
{
	return Napi::String::New(info.Env(), libbpf_version_string());
}

// produce({testFeed, testIn, records, total, rate?, batch?}): the benchmark producer,
// synchronous: run it in a worker thread while the main thread drains
static Napi::Value Produce(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsObject())
		throw Napi::TypeError::New(env, "produce(options)");
	Napi::Object o = info[0].As<Napi::Object>();
	Napi::Uint8Array recs = o.Get("records").As<Napi::Uint8Array>();
	struct rv_produce a;
	memset(&a, 0, sizeof a);
	a.prog_fd = o.Get("testFeed").As<Napi::Number>().Int32Value();
	int mapFd = o.Get("testIn").As<Napi::Number>().Int32Value();
	a.recs = recs.Data();
	a.nrecs = recs.ByteLength() / DLM_RV_RECORD_SIZE;
	a.total = (uint64_t)o.Get("total").As<Napi::Number>().DoubleValue();
	a.rate = o.Get("rate").IsNumber() ? o.Get("rate").As<Napi::Number>().DoubleValue() : 0;
	a.batch = o.Get("batch").IsNumber() ? o.Get("batch").As<Napi::Number>().Uint32Value() : 0;
	if (!a.nrecs)
		throw Napi::RangeError::New(env, "produce: no records");
	size_t len = (size_t)DLM_RV_TEST_BATCH * DLM_RV_RECORD_SIZE;
	long pg = sysconf(_SC_PAGESIZE);
	len = (len + pg - 1) / pg * pg;
	void *m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
	if (m == MAP_FAILED)
		throw Napi::Error::New(env, "produce: mmap of test_in failed");
	a.test_in = (uint8_t *)m;
	rv_produce_run(&a);
	munmap(m, len);
	if (a.err)
		throw Napi::Error::New(env, "produce: BPF_PROG_TEST_RUN failed");
	Napi::Object r = Napi::Object::New(env);
	r.Set("produced", (double)a.produced);
	r.Set("runs", (double)a.runs);
	r.Set("runNs", (double)a.run_ns);
	return r;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	exports.Set("Collector", CollectorClass(env));
	exports.Set("btfFacts", Napi::Function::New(env, BtfFacts, "btfFacts"));
	exports.Set("coreCheck", Napi::Function::New(env, CoreCheck, "coreCheck"));
	exports.Set("probeTable", Napi::Function::New(env, ProbeTable, "probeTable"));
	exports.Set("produce", Napi::Function::New(env, Produce, "produce"));
	exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion, "libbpfVersion"));
	exports.Set("recordSize", Napi::Number::New(env, DLM_RV_RECORD_SIZE));
	exports.Set("recordVersion", Napi::Number::New(env, DLM_RV_RECORD_VERSION));
	exports.Set("testBatch", Napi::Number::New(env, DLM_RV_TEST_BATCH));
	exports.Set("maxLockspaceFilter", Napi::Number::New(env, DLM_RV_MAX_LS_FILTER));
	return exports;
}

NODE_API_MODULE(dlm_rv, Init)
