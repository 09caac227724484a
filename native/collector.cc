// The collector: loads bpf/dlm_rv.bpf.c through its skeleton with the programs that
// src/live/probes.ts chose, attaches them, and drains the ring buffer on the JS thread.
//
// Drain model: a uv_poll on ring_buffer__epoll_fd(); when it fires, ring_buffer__consume()
// copies records into ONE reused ArrayBuffer; each full buffer (or the end of the ring) is
// handed to JS in one call, as a Uint8Array view valid only during that call. No native
// thread, no queue: a consumer that falls behind leaves the records in the ring, and the
// BPF side turns what no longer fits into counted drops and LOSS records.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../bpf/dlm_rv.h"
#include "dlm_rv.skel.h"
#include "probes.h"

namespace {

// ---- libbpf log capture -------------------------------------------------------
std::string g_log;
bool g_log_debug = getenv("DLM_RV_LIBBPF_DEBUG") != nullptr;
bool g_log_echo = getenv("DLM_RV_LIBBPF_LOG") != nullptr;

int PrintFn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !g_log_debug)
		return 0;
	char line[4096];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(line, sizeof line, fmt, ap2);
	va_end(ap2);
	if (n > 0 && g_log.size() < (4u << 20))
		g_log.append(line, std::min<size_t>(n, sizeof line - 1));
	if (g_log_echo)
		fputs(line, stderr);
	return 0;
}

std::vector<std::string> Lines(const std::string &s)
{
	std::vector<std::string> out;
	size_t a = 0;
	while (a < s.size()) {
		size_t b = s.find('\n', a);
		if (b == std::string::npos)
			b = s.size();
		if (b > a)
			out.push_back(s.substr(a, b - a));
		a = b + 1;
	}
	return out;
}

// the verifier's last lines: the tail of the last PROG LOAD LOG block, else of the log
std::string LogTail(const std::string &log, size_t n = 12)
{
	std::string body = log;
	size_t b = log.rfind("-- BEGIN PROG LOAD LOG --");
	if (b != std::string::npos) {
		size_t e = log.find("-- END PROG LOAD LOG --", b);
		body = log.substr(b + 26, e == std::string::npos ? std::string::npos : e - b - 26);
	}
	std::vector<std::string> all = Lines(body), ls;
	for (const std::string &l : all)	// libbpf's own epilogue says nothing new
		if (l.find("failed to load object") == std::string::npos && l.find("failed to load BPF skeleton") == std::string::npos)
			ls.push_back(l);
	std::string out;
	for (size_t i = ls.size() > n ? ls.size() - n : 0; i < ls.size(); i++)
		out += ls[i] + "\n";
	return out;
}

// the program libbpf last failed to load, from "prog 'NAME': failed to load"
std::string FailedProg(const std::string &log)
{
	const std::string key = "prog '";
	std::string who;
	for (size_t p = log.find(key); p != std::string::npos; p = log.find(key, p + 1)) {
		size_t q = log.find("'", p + key.size());
		if (q == std::string::npos)
			break;
		if (log.compare(q, 17, "': failed to load") == 0)
			who = log.substr(p + key.size(), q - p - key.size());
	}
	return who;
}

}  // namespace

// shared with corecheck.cc
std::string CapturedLog() { return g_log; }
void ClearLog() { g_log.clear(); }
void InstallPrint() { libbpf_set_print(PrintFn); }
std::string VerifierTail(const std::string &log, size_t n) { return LogTail(log, n); }

namespace {

[[noreturn]] void Throw(Napi::Env env, const char *code, const std::string &msg)
{
	Napi::Error e = Napi::Error::New(env, msg);
	e.Set("code", Napi::String::New(env, code));
	throw e;
}

const ProbeDef *ProbeByProg(const std::string &prog)
{
	for (const ProbeDef &p : kProbes)
		if (prog == p.prog)
			return &p;
	return nullptr;
}

struct ProbeStatus {
	std::string prog, hook, reason;
	bool loaded = false, attached = false;
};

}  // namespace

class Collector : public Napi::ObjectWrap<Collector> {
public:
	static Napi::Function Init(Napi::Env env)
	{
		return DefineClass(env, "Collector",
				   {
					   InstanceMethod<&Collector::Probes>("probes"),
					   InstanceMethod<&Collector::OnBatch>("onBatch"),
					   InstanceMethod<&Collector::Start>("start"),
					   InstanceMethod<&Collector::Stop>("stop"),
					   InstanceMethod<&Collector::Drain>("drain"),
					   InstanceMethod<&Collector::Feed>("feed"),
					   InstanceMethod<&Collector::Stats>("stats"),
					   InstanceMethod<&Collector::TakeLoss>("takeLoss"),
					   InstanceMethod<&Collector::ProgStats>("progStats"),
					   InstanceMethod<&Collector::EnableStats>("enableStats"),
					   InstanceMethod<&Collector::Fds>("fds"),
					   InstanceMethod<&Collector::Close>("close"),
				   });
	}

	Collector(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Collector>(info), env_(info.Env())
	{
		Napi::Env env = info.Env();
		if (info.Length() < 1 || !info[0].IsObject())
			throw Napi::TypeError::New(env, "Collector(options): options object required");
		Napi::Object o = info[0].As<Napi::Object>();
		test_ = o.Get("mode").ToString().Utf8Value() == "test";
		std::vector<std::string> want;
		if (o.Get("programs").IsArray()) {
			Napi::Array a = o.Get("programs").As<Napi::Array>();
			for (uint32_t i = 0; i < a.Length(); i++)
				want.push_back(a.Get(i).ToString().Utf8Value());
		}
		if (test_ && std::find(want.begin(), want.end(), "test_feed") == want.end())
			want.push_back("test_feed");
		uint32_t ring = o.Get("ringBytes").IsNumber() ? o.Get("ringBytes").As<Napi::Number>().Uint32Value() : 16u << 20;
		uint32_t node = o.Get("nodeId").IsNumber() ? o.Get("nodeId").As<Napi::Number>().Uint32Value() : 0;
		bool nsNode = o.Get("nsNodeIds").ToBoolean();
		uint32_t nsOff[3] = {0, 0, 0};
		if (o.Get("nsNodeOffsets").IsArray()) {
			Napi::Array a = o.Get("nsNodeOffsets").As<Napi::Array>();
			for (uint32_t i = 0; i < 3 && i < a.Length(); i++)
				nsOff[i] = a.Get(i).As<Napi::Number>().Uint32Value();
		} else if (nsNode) {
			throw Napi::TypeError::New(env, "nsNodeIds needs nsNodeOffsets");
		}
		std::vector<uint32_t> lss;
		if (o.Get("lockspaces").IsArray()) {
			Napi::Array a = o.Get("lockspaces").As<Napi::Array>();
			for (uint32_t i = 0; i < a.Length(); i++)
				lss.push_back(a.Get(i).As<Napi::Number>().Uint32Value());
		}
		if (lss.size() > DLM_RV_MAX_LS_FILTER)
			Throw(env, "BAD_OPTION", "at most " + std::to_string(DLM_RV_MAX_LS_FILTER) + " lockspace ids in the filter");
		std::string prefix;
		if (o.Get("namePrefix").IsTypedArray()) {
			Napi::Uint8Array p = o.Get("namePrefix").As<Napi::Uint8Array>();
			prefix.assign((const char *)p.Data(), p.ByteLength());
		}
		if (prefix.size() > DLM_RV_NAME_MAX)
			Throw(env, "BAD_OPTION", "the name prefix is longer than 64 bytes");
		cap_ = o.Get("batchRecords").IsNumber() ? o.Get("batchRecords").As<Napi::Number>().Uint32Value() : 8192;
		cap_ = std::max<size_t>(1, std::min<size_t>(cap_, 1 << 20));

		libbpf_set_print(PrintFn);

		// ---- load, dropping programs the verifier refuses (each with its reason)
		std::map<std::string, std::string> failed;
		for (int attempt = 0;; attempt++) {
			g_log.clear();
			skel_ = dlm_rv_bpf::open();
			if (!skel_)
				Throw(env, "BPF_OPEN_FAILED", "libbpf could not open the BPF object: " + LogTail(g_log));
			skel_->rodata->cfg_node_id = node;
			skel_->rodata->cfg_ns_node = nsNode ? 1 : 0;
			for (int i = 0; i < 3; i++)
				skel_->rodata->cfg_ns_off[i] = nsOff[i];
			skel_->rodata->cfg_ls_n = lss.size();
			for (size_t i = 0; i < lss.size(); i++)
				skel_->rodata->cfg_ls[i] = lss[i];
			skel_->rodata->cfg_prefix_len = prefix.size();
			memcpy(skel_->rodata->cfg_prefix, prefix.data(), prefix.size());
			bpf_map__set_max_entries(skel_->maps.rb, ring);
			size_t nload = 0;
			struct bpf_program *p;
			bpf_object__for_each_program(p, skel_->obj) {
				std::string name = bpf_program__name(p);
				bool on = std::find(want.begin(), want.end(), name) != want.end() && !failed.count(name);
				bpf_program__set_autoload(p, on);
				nload += on;
			}
			if (nload == 0) {
				dlm_rv_bpf::destroy(skel_);
				skel_ = nullptr;
				std::string why;
				for (auto &f : failed)
					why += "\n" + f.first + ":\n" + f.second;
				Throw(env, "BPF_LOAD_FAILED", "no BPF program could be loaded:" + why);
			}
			int err = dlm_rv_bpf::load(skel_);
			if (!err)
				break;
			std::string who = FailedProg(g_log);
			std::string tail = LogTail(g_log);
			dlm_rv_bpf::destroy(skel_);
			skel_ = nullptr;
			if (who.empty() && (err == -EPERM || err == -EACCES))
				Throw(env, "NOT_PRIVILEGED",
				      "the kernel refused BPF (" + std::string(strerror(-err)) +
					      "): run as root, or with CAP_BPF and CAP_PERFMON\n" + tail);
			if (who.empty() || who == "test_feed" || failed.count(who) || attempt > DLM_RV_P_MAX)
				Throw(env, "BPF_LOAD_FAILED",
				      "libbpf could not load the BPF object (" + std::string(strerror(-err)) + "); last lines:\n" + tail);
			failed[who] = tail;
		}

		// ---- status table, attach (dlm_add_cb first: it decides dlm_ast's role)
		for (const std::string &w : want) {
			ProbeStatus s;
			s.prog = w;
			const ProbeDef *d = ProbeByProg(w);
			s.hook = d ? d->hook : "?";
			struct bpf_program *p = bpf_object__find_program_by_name(skel_->obj, w.c_str());
			if (!p) {
				s.reason = "no such BPF program in this build";
			} else if (failed.count(w)) {
				s.reason = "not loaded: " + failed[w];
			} else {
				s.loaded = bpf_program__fd(p) >= 0;
			}
			status_.push_back(s);
		}
		if (!test_) {
			std::vector<size_t> order;
			for (size_t i = 0; i < status_.size(); i++)
				if (status_[i].prog == "add_cb")
					order.insert(order.begin(), i);
				else
					order.push_back(i);
			bool addcb = false;
			for (size_t i : order) {
				ProbeStatus &s = status_[i];
				if (!s.loaded || s.prog == "test_feed")
					continue;
				if (s.prog == "ast_ptr" || s.prog == "ast_scalar" || s.prog == "ast_ns" || s.prog == "bast_ptr" ||
				    s.prog == "bast_scalar")
					skel_->bss->ast_rflags = addcb ? DLM_RV_RF_HISTORY : 0;
				struct bpf_program *p = bpf_object__find_program_by_name(skel_->obj, s.prog.c_str());
				g_log.clear();
				struct bpf_link *l = bpf_program__attach(p);
				int err = libbpf_get_error(l);
				if (err || !l) {
					s.reason = "attach failed: " + std::string(strerror(err ? -err : EINVAL));
					std::string t = LogTail(g_log, 3);
					if (!t.empty())
						s.reason += " (" + t.substr(0, t.size() - 1) + ")";
					continue;
				}
				links_.push_back(l);
				s.attached = true;
				if (s.prog == "add_cb")
					addcb = true;
			}
		}

		rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.rb), &Collector::OnSample, this, nullptr);
		if (!rb_) {
			int e = errno;
			Destroy();
			Throw(env, "BPF_LOAD_FAILED", "ring_buffer__new: " + std::string(strerror(e)));
		}
		if (test_) {
			testInBytes_ = (size_t)DLM_RV_TEST_BATCH * DLM_RV_RECORD_SIZE;
			long pg = sysconf(_SC_PAGESIZE);
			testInBytes_ = (testInBytes_ + pg - 1) / pg * pg;
			void *m = mmap(nullptr, testInBytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
				       bpf_map__fd(skel_->maps.test_in), 0);
			if (m == MAP_FAILED) {
				int e = errno;
				Destroy();
				Throw(env, "BPF_LOAD_FAILED", "mmap of the test input map: " + std::string(strerror(e)));
			}
			testIn_ = (uint8_t *)m;
		}
		Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, cap_ * DLM_RV_RECORD_SIZE);
		buf_ = (uint8_t *)ab.Data();
		bufRef_ = Napi::Persistent(ab);
		asyncCtx_ = std::make_unique<Napi::AsyncContext>(env, "dlm-rv:ring");
	}

	~Collector() override { Destroy(); }

private:
	// ---- JS methods ------------------------------------------------------------
	Napi::Value Probes(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		Napi::Array a = Napi::Array::New(env, status_.size());
		for (size_t i = 0; i < status_.size(); i++) {
			Napi::Object o = Napi::Object::New(env);
			o.Set("prog", status_[i].prog);
			o.Set("hook", status_[i].hook);
			o.Set("loaded", status_[i].loaded);
			o.Set("attached", status_[i].attached);
			if (!status_[i].reason.empty())
				o.Set("reason", status_[i].reason);
			a.Set(i, o);
		}
		return a;
	}

	Napi::Value OnBatch(const Napi::CallbackInfo &info)
	{
		if (info.Length() < 1 || !info[0].IsFunction())
			throw Napi::TypeError::New(info.Env(), "onBatch(callback): a function is required");
		cb_ = Napi::Persistent(info[0].As<Napi::Function>());
		return info.Env().Undefined();
	}

	Napi::Value Start(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		if (poll_)
			return env.Undefined();
		uv_loop_t *loop = nullptr;
		if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop)
			Throw(env, "INTERNAL", "no libuv loop");
		poll_ = new uv_poll_t;
		poll_->data = this;
		int r = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
		if (r == 0)
			r = uv_poll_start(poll_, UV_READABLE, &Collector::OnPoll);
		if (r != 0) {
			delete poll_;
			poll_ = nullptr;
			Throw(env, "INTERNAL", std::string("uv_poll: ") + uv_strerror(r));
		}
		Ref();	// keep this object alive while the loop may call it
		return env.Undefined();
	}

	Napi::Value Stop(const Napi::CallbackInfo &info)
	{
		StopPoll();
		return info.Env().Undefined();
	}

	// drain(): consume the ring now, synchronously; returns records delivered
	Napi::Value Drain(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		return Napi::Number::New(env, (double)DrainLoop(env, INT_MAX, false));
	}

	// feed(bytes, drain = true): test mode; re-encode records through test_feed into the ring
	Napi::Value Feed(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		if (!test_)
			Throw(env, "BAD_MODE", "feed() is for collectors opened in test mode");
		if (info.Length() < 1 || !info[0].IsTypedArray())
			throw Napi::TypeError::New(env, "feed(bytes: Uint8Array, drain?: boolean)");
		Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
		bool drain = info.Length() < 2 || info[1].ToBoolean();
		size_t n = in.ByteLength() / DLM_RV_RECORD_SIZE;
		// copy the input first: a batch callback may touch the caller's buffer
		std::vector<uint8_t> copy(in.Data(), in.Data() + n * DLM_RV_RECORD_SIZE);
		int fd = bpf_program__fd(skel_->progs.test_feed);
		size_t done = 0;
		while (done < n && !closed_) {
			size_t k = std::min<size_t>(n - done, DLM_RV_TEST_BATCH);
			memcpy(testIn_, copy.data() + done * DLM_RV_RECORD_SIZE, k * DLM_RV_RECORD_SIZE);
			__u64 args[1] = {k};
			LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = sizeof args);
			int err = bpf_prog_test_run_opts(fd, &opts);
			if (err)
				Throw(env, "BPF_TEST_RUN_FAILED", "BPF_PROG_TEST_RUN: " + std::string(strerror(errno)));
			done += k;
			fedRuns_++;
			if (drain)
				DrainLoop(env, INT_MAX, false);
		}
		return Napi::Number::New(env, (double)done);
	}

	Napi::Value Stats(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		int ncpu = libbpf_num_possible_cpus();
		std::vector<__u64> vals(std::max(ncpu, 1));
		Napi::Array hits = Napi::Array::New(env, DLM_RV_P_MAX);
		int hfd = bpf_map__fd(skel_->maps.hits);
		for (__u32 k = 0; k < DLM_RV_P_MAX; k++) {
			double sum = 0;
			if (bpf_map_lookup_elem(hfd, &k, vals.data()) == 0)
				for (int c = 0; c < ncpu; c++)
					sum += (double)vals[c];
			hits.Set(k, sum);
		}
		double drops = 0;
		__u32 z = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.drops), &z, vals.data()) == 0)
			for (int c = 0; c < ncpu; c++)
				drops += (double)vals[c];
		Napi::Object o = Napi::Object::New(env);
		o.Set("hits", hits);
		o.Set("drops", drops);
		o.Set("lossPending", (double)__atomic_load_n(&skel_->bss->loss_pending, __ATOMIC_RELAXED));
		o.Set("records", (double)records_);
		o.Set("batches", (double)batches_);
		o.Set("badSize", (double)badSize_);
		o.Set("testRuns", (double)fedRuns_);
		o.Set("ringBytes", (double)bpf_map__max_entries(skel_->maps.rb));
		return o;
	}

	// drops not yet reported by a LOSS record in the stream; reading clears them
	Napi::Value TakeLoss(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		return Napi::Number::New(env, (double)__atomic_exchange_n(&skel_->bss->loss_pending, 0, __ATOMIC_SEQ_CST));
	}

	// per program: kernel run count and time (needs enableStats() or kernel.bpf_stats_enabled=1)
	Napi::Value ProgStats(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		Napi::Array a = Napi::Array::New(env);
		uint32_t j = 0;
		struct bpf_program *p;
		bpf_object__for_each_program(p, skel_->obj) {
			int fd = bpf_program__fd(p);
			if (fd < 0)
				continue;
			struct bpf_prog_info pi;
			memset(&pi, 0, sizeof pi);
			__u32 len = sizeof pi;
			if (bpf_obj_get_info_by_fd(fd, &pi, &len))
				continue;
			Napi::Object o = Napi::Object::New(env);
			o.Set("prog", bpf_program__name(p));
			o.Set("runCnt", (double)pi.run_cnt);
			o.Set("runTimeNs", (double)pi.run_time_ns);
			o.Set("xlatedBytes", (double)pi.xlated_prog_len);
			o.Set("jitedBytes", (double)pi.jited_prog_len);
			a.Set(j++, o);
		}
		return a;
	}

	Napi::Value EnableStats(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		if (statsFd_ < 0)
			statsFd_ = bpf_enable_stats(BPF_STATS_RUN_TIME);
		return Napi::Boolean::New(env, statsFd_ >= 0);
	}

	// file descriptors for the benchmark producer (bench/transport.js runs it in a worker)
	Napi::Value Fds(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		CheckOpen(env);
		Napi::Object o = Napi::Object::New(env);
		o.Set("ring", bpf_map__fd(skel_->maps.rb));
		o.Set("testIn", bpf_map__fd(skel_->maps.test_in));
		o.Set("testFeed", bpf_program__fd(skel_->progs.test_feed));
		return o;
	}

	Napi::Value Close(const Napi::CallbackInfo &info)
	{
		if (draining_)
			closeRequested_ = true;	// finished when the drain loop unwinds
		else
			Destroy();
		return info.Env().Undefined();
	}

	// ---- the drain ------------------------------------------------------------------
	static int OnSample(void *ctx, void *data, size_t size)
	{
		Collector *c = static_cast<Collector *>(ctx);
		if (size != DLM_RV_RECORD_SIZE) {
			c->badSize_++;
			return 0;
		}
		memcpy(c->buf_ + c->count_ * DLM_RV_RECORD_SIZE, data, DLM_RV_RECORD_SIZE);
		if (++c->count_ >= c->cap_) {
			c->full_ = true;
			return -ENOSPC;	// stop here: this record is consumed and stored
		}
		return 0;
	}

	static void OnPoll(uv_poll_t *h, int status, int events)
	{
		(void)events;
		Collector *c = static_cast<Collector *>(h->data);
		if (!c || c->closed_ || status < 0)
			return;
		Napi::Env env = c->env_;
		Napi::HandleScope scope(env);
		try {
			c->DrainLoop(env, 64, true);
		} catch (const Napi::Error &e) {
			// the batch callback threw: stop polling and make it an uncaught exception
			c->StopPoll();
			napi_fatal_exception(env, e.Value());
		}
	}

	size_t DrainLoop(Napi::Env env, int maxBatches, bool fromLoop)
	{
		if (!rb_ || draining_)
			return 0;
		struct Guard {
			Collector *c;
			~Guard()
			{
				c->draining_ = false;
				if (c->closeRequested_)
					c->Destroy();
			}
		} guard{this};
		draining_ = true;
		size_t total = 0;
		for (int b = 0; b < maxBatches && !closeRequested_; b++) {
			full_ = false;
			count_ = 0;
			ring_buffer__consume(rb_);
			total += count_;
			Deliver(env, fromLoop);
			if (!full_)
				break;
		}
		return total;
	}

	void Deliver(Napi::Env env, bool fromLoop)
	{
		size_t n = count_;
		count_ = 0;
		if (!n)
			return;
		records_ += n;
		batches_++;
		if (cb_.IsEmpty())
			return;
		Napi::HandleScope scope(env);
		Napi::Uint8Array view = Napi::Uint8Array::New(env, n * DLM_RV_RECORD_SIZE, bufRef_.Value(), 0);
		if (fromLoop)
			cb_.MakeCallback(Value(), {view}, *asyncCtx_);
		else
			cb_.Call(Value(), {view});
	}

	void StopPoll()
	{
		if (!poll_)
			return;
		uv_poll_stop(poll_);
		poll_->data = nullptr;
		uv_close(reinterpret_cast<uv_handle_t *>(poll_), [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
		poll_ = nullptr;
		Unref();
	}

	void CheckOpen(Napi::Env env)
	{
		if (closed_ || !skel_)
			Throw(env, "CLOSED", "the collector is closed");
	}

	void Destroy()
	{
		if (closed_)
			return;
		closed_ = true;
		// a running poll holds a reference (Start), so the finalizer never gets here with one
		StopPoll();
		if (rb_)
			ring_buffer__free(rb_);
		rb_ = nullptr;
		for (struct bpf_link *l : links_)
			bpf_link__destroy(l);
		links_.clear();
		if (testIn_)
			munmap(testIn_, testInBytes_);
		testIn_ = nullptr;
		if (skel_)
			dlm_rv_bpf::destroy(skel_);
		skel_ = nullptr;
		if (statsFd_ >= 0)
			close(statsFd_);
		statsFd_ = -1;
	}

	Napi::Env env_;
	bool test_ = false;
	struct dlm_rv_bpf *skel_ = nullptr;
	struct ring_buffer *rb_ = nullptr;
	std::vector<struct bpf_link *> links_;
	std::vector<ProbeStatus> status_;
	uv_poll_t *poll_ = nullptr;
	Napi::FunctionReference cb_;
	Napi::Reference<Napi::ArrayBuffer> bufRef_;
	std::unique_ptr<Napi::AsyncContext> asyncCtx_;
	uint8_t *buf_ = nullptr;
	size_t cap_ = 8192, count_ = 0;
	bool full_ = false, draining_ = false, closeRequested_ = false, closed_ = false;
	uint64_t records_ = 0, batches_ = 0, badSize_ = 0, fedRuns_ = 0;
	uint8_t *testIn_ = nullptr;
	size_t testInBytes_ = 0;
	int statsFd_ = -1;
};

Napi::Function CollectorClass(Napi::Env env)
{
	return Collector::Init(env);
}
