// coreCheck({btf, programs?, nsNodeOffsets?}): load each hook program of the check build
// (bpf/dlm_rv.bpf.c compiled with -DDLM_RV_CHECK_RAW_TP: every hook as a plain raw_tp
// program) with CO-RE relocated against the given BTF file (btf_custom_path), one program
// per load, and report what the verifier said. This exercises the relocations against a
// real kernel's dlm types and the verifier on the program logic, on a machine without
// the dlm module; it does not exercise fentry argument typing (see docs/live.md).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>
#include <string.h>

#include <string>
#include <vector>
#include <algorithm>

#include "../bpf/dlm_rv.h"
#include "dlm_rv_check.skel.h"

std::string CapturedLog();
void ClearLog();
void InstallPrint();
std::string VerifierTail(const std::string &log, size_t n);

Napi::Value CoreCheck(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsObject())
		throw Napi::TypeError::New(env, "coreCheck({btf, programs?, nsNodeOffsets?})");
	Napi::Object o = info[0].As<Napi::Object>();
	std::string btf = o.Get("btf").ToString().Utf8Value();
	std::vector<std::string> want;
	if (o.Get("programs").IsArray()) {
		Napi::Array a = o.Get("programs").As<Napi::Array>();
		for (uint32_t i = 0; i < a.Length(); i++)
			want.push_back(a.Get(i).ToString().Utf8Value());
	}
	bool ns = o.Get("nsNodeOffsets").IsArray();
	uint32_t off[3] = {0, 0, 0};
	if (ns) {
		Napi::Array a = o.Get("nsNodeOffsets").As<Napi::Array>();
		for (uint32_t i = 0; i < 3 && i < a.Length(); i++)
			off[i] = a.Get(i).As<Napi::Number>().Uint32Value();
	}
	InstallPrint();
	// the program names, from one open
	std::vector<std::string> names;
	{
		struct dlm_rv_check *s = dlm_rv_check::open();
		if (!s)
			throw Napi::Error::New(env, "coreCheck: cannot open the check object");
		struct bpf_program *p;
		bpf_object__for_each_program(p, s->obj) {
			std::string n = bpf_program__name(p);
			if (want.empty() || std::find(want.begin(), want.end(), n) != want.end())
				names.push_back(n);
		}
		dlm_rv_check::destroy(s);
	}
	Napi::Array out = Napi::Array::New(env);
	uint32_t j = 0;
	for (const std::string &name : names) {
		ClearLog();
		LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = btf.c_str());
		struct dlm_rv_check *s = dlm_rv_check::open(&oo);
		Napi::Object r = Napi::Object::New(env);
		r.Set("prog", name);
		if (!s) {
			r.Set("loaded", false);
			r.Set("error", "open failed: " + VerifierTail(CapturedLog(), 6));
			out.Set(j++, r);
			continue;
		}
		s->rodata->cfg_ns_node = ns ? 1 : 0;
		for (int i = 0; i < 3; i++)
			s->rodata->cfg_ns_off[i] = off[i];
		struct bpf_program *p;
		bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, name == bpf_program__name(p));
		int err = dlm_rv_check::load(s);
		r.Set("loaded", err == 0);
		if (err) {
			r.Set("error", std::string(strerror(-err)) + ":\n" + VerifierTail(CapturedLog(), 10));
		} else {
			struct bpf_program *q = bpf_object__find_program_by_name(s->obj, name.c_str());
			struct bpf_prog_info pi;
			memset(&pi, 0, sizeof pi);
			__u32 len = sizeof pi;
			if (q && bpf_obj_get_info_by_fd(bpf_program__fd(q), &pi, &len) == 0)
				r.Set("insns", pi.xlated_prog_len / 8);
		}
		dlm_rv_check::destroy(s);
		out.Set(j++, r);
	}
	return out;
}
