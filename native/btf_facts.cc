// What the running kernel's BTF says about the dlm hooks: tracepoint prototypes
// (btf_trace_<name> typedefs), the prototypes of the functions we fentry/fexit, and
// the members of the structs the BPF program reads. src/live/probes.ts turns these
// facts into the probe set (planProbes), so the decision is unit-testable from JS.
#include "btf_facts.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <string>

namespace {

const char *kTracepoints[] = {
	"dlm_lock_start", "dlm_lock_end", "dlm_unlock_start", "dlm_unlock_end", "dlm_ast", "dlm_bast",
	"dlm_lock_validated", "dlm_unlock_validated", "dlm_release_lockspace", "dlm_send_message",
	"dlm_recv_message",
};
const char *kFunctions[] = {"dlm_add_cb", "dlm_release_lockspace", "dlm_clear_proc_locks", "dlm_recover_purge"};
const char *kStructs[] = {"dlm_ls", "dlm_lkb", "dlm_rsb", "dlm_user_proc", "dlm_lksb", "dlm_args",
			  "dlm_message", "dlm_header", "dlm_net", "dlm_node", "dlm_member"};

std::string TypeStr(const struct btf *btf, __u32 id, int depth = 0)
{
	if (id == 0)
		return "void";
	if (depth > 16)
		return "?";
	const struct btf_type *t = btf__type_by_id(btf, id);
	if (!t)
		return "?";
	const char *name = btf__name_by_offset(btf, t->name_off);
	std::string n = name ? name : "";
	switch (btf_kind(t)) {
	case BTF_KIND_INT:
	case BTF_KIND_FLOAT:
	case BTF_KIND_TYPEDEF:
		return n;
	case BTF_KIND_PTR:
		return TypeStr(btf, t->type, depth + 1) + " *";
	case BTF_KIND_CONST:
		return "const " + TypeStr(btf, t->type, depth + 1);
	case BTF_KIND_VOLATILE:
		return "volatile " + TypeStr(btf, t->type, depth + 1);
	case BTF_KIND_RESTRICT:
	case BTF_KIND_TYPE_TAG:
		return TypeStr(btf, t->type, depth + 1);
	case BTF_KIND_STRUCT:
		return n.empty() ? "struct {...}" : "struct " + n;
	case BTF_KIND_UNION:
		return n.empty() ? "union {...}" : "union " + n;
	case BTF_KIND_FWD:
		return (btf_kflag(t) ? "union " : "struct ") + n;
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		return n.empty() ? "enum {...}" : "enum " + n;
	case BTF_KIND_ARRAY: {
		const struct btf_array *a = btf_array(t);
		return TypeStr(btf, a->type, depth + 1) + "[" + std::to_string(a->nelems) + "]";
	}
	case BTF_KIND_FUNC_PROTO:
		return "fn";
	default:
		return "?";
	}
}

// Find a named type of one kind, in the dlm module BTF first (split: it sees the
// base types too), else in vmlinux (dlm built in).
const struct btf *Find(const struct btf *dlm, const struct btf *vm, const char *name, __u32 kind,
		       __s32 *id_out)
{
	if (dlm) {
		__s32 id = btf__find_by_name_kind(dlm, name, kind);
		if (id > 0) {
			*id_out = id;
			return dlm;
		}
	}
	if (vm) {
		__s32 id = btf__find_by_name_kind(vm, name, kind);
		if (id > 0) {
			*id_out = id;
			return vm;
		}
	}
	return nullptr;
}

// the FUNC_PROTO behind a typedef/ptr chain (btf_trace_x is a typedef of a pointer to a proto)
const struct btf_type *Proto(const struct btf *btf, __u32 id)
{
	for (int i = 0; i < 8 && id; i++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		if (!t)
			return nullptr;
		if (btf_is_func_proto(t))
			return t;
		if (btf_is_typedef(t) || btf_is_ptr(t) || btf_is_func(t) || btf_is_mod(t))
			id = t->type;
		else
			return nullptr;
	}
	return nullptr;
}

// the struct a member points to (through typedefs/modifiers), or 0
__u32 PointeeStruct(const struct btf *btf, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	for (int i = 0; t && i < 8 && (btf_is_typedef(t) || btf_is_mod(t)); i++)
		t = btf__type_by_id(btf, id = t->type);
	if (!t || !btf_is_ptr(t))
		return 0;
	id = t->type;
	t = btf__type_by_id(btf, id);
	for (int i = 0; t && i < 8 && (btf_is_typedef(t) || btf_is_mod(t)); i++)
		t = btf__type_by_id(btf, id = t->type);
	return t && btf_is_struct(t) ? id : 0;
}

// byte offset and type id of a named (non-bitfield) member of struct `sid`
bool Member(const struct btf *btf, __u32 sid, const char *name, __u32 *off, __u32 *type)
{
	const struct btf_type *t = btf__type_by_id(btf, sid);
	if (!t || !btf_is_struct(t))
		return false;
	const struct btf_member *m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *mn = btf__name_by_offset(btf, m[i].name_off);
		if (mn && !strcmp(mn, name) && btf_member_bitfield_size(t, i) == 0) {
			*off = btf_member_bit_offset(t, i) / 8;
			*type = m[i].type;
			return true;
		}
	}
	return false;
}

}  // namespace

Napi::Value BtfFacts(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	std::string vmPath, dlmPath;
	if (info.Length() > 0 && info[0].IsObject()) {
		Napi::Object o = info[0].As<Napi::Object>();
		if (o.Has("vmlinux") && o.Get("vmlinux").IsString())
			vmPath = o.Get("vmlinux").As<Napi::String>().Utf8Value();
		if (o.Has("dlm") && o.Get("dlm").IsString())
			dlmPath = o.Get("dlm").As<Napi::String>().Utf8Value();
	}
	Napi::Object out = Napi::Object::New(env);

	struct btf *vm = nullptr;
	if (!vmPath.empty()) {
		vm = btf__parse(vmPath.c_str(), nullptr);
	} else if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
		vm = btf__parse("/sys/kernel/btf/vmlinux", nullptr);
	}
	if (!vm || libbpf_get_error(vm)) {
		vm = nullptr;
		out.Set("vmlinux", false);
	} else {
		out.Set("vmlinux", true);
	}
	if (dlmPath.empty() && access("/sys/kernel/btf/dlm", R_OK) == 0)
		dlmPath = "/sys/kernel/btf/dlm";
	struct btf *dlm = nullptr;
	if (vm && !dlmPath.empty()) {
		dlm = btf__parse_split(dlmPath.c_str(), vm);
		if (libbpf_get_error(dlm))
			dlm = nullptr;
	}
	__s32 probe_id;
	if (dlm)
		out.Set("dlm", "module");
	else if (vm && btf__find_by_name_kind(vm, "dlm_ls", BTF_KIND_STRUCT) > 0 &&
		 Find(nullptr, vm, "btf_trace_dlm_lock_start", BTF_KIND_TYPEDEF, &probe_id))
		out.Set("dlm", "builtin");
	else
		out.Set("dlm", "none");

	Napi::Object tps = Napi::Object::New(env);
	for (const char *tp : kTracepoints) {
		std::string tn = std::string("btf_trace_") + tp;
		__s32 id;
		const struct btf *b = Find(dlm, vm, tn.c_str(), BTF_KIND_TYPEDEF, &id);
		if (!b)
			continue;
		const struct btf_type *p = Proto(b, id);
		if (!p)
			continue;
		Napi::Array params = Napi::Array::New(env);
		const struct btf_param *ps = btf_params(p);
		// the first parameter of a btf_trace_ typedef is the probe's `void *__data`
		for (int i = 1, j = 0; i < btf_vlen(p); i++)
			params.Set(j++, TypeStr(b, ps[i].type));
		tps.Set(tp, params);
	}
	out.Set("tracepoints", tps);

	Napi::Object fns = Napi::Object::New(env);
	for (const char *fn : kFunctions) {
		__s32 id;
		const struct btf *b = Find(dlm, vm, fn, BTF_KIND_FUNC, &id);
		if (!b)
			continue;
		const struct btf_type *f = btf__type_by_id(b, id);
		const struct btf_type *p = f ? btf__type_by_id(b, f->type) : nullptr;
		if (!p || !btf_is_func_proto(p))
			continue;
		Napi::Object o = Napi::Object::New(env);
		Napi::Array params = Napi::Array::New(env);
		const struct btf_param *ps = btf_params(p);
		for (int i = 0; i < btf_vlen(p); i++) {
			const char *pn = btf__name_by_offset(b, ps[i].name_off);
			params.Set(i, TypeStr(b, ps[i].type) + (pn && *pn ? std::string(" ") + pn : ""));
		}
		o.Set("params", params);
		o.Set("ret", TypeStr(b, p->type));
		fns.Set(fn, o);
	}
	out.Set("functions", fns);

	Napi::Object structs = Napi::Object::New(env);
	for (const char *sn : kStructs) {
		__s32 id;
		const struct btf *b = Find(dlm, vm, sn, BTF_KIND_STRUCT, &id);
		if (!b)
			continue;
		const struct btf_type *t = btf__type_by_id(b, id);
		Napi::Object mem = Napi::Object::New(env);
		const struct btf_member *m = btf_members(t);
		for (int i = 0; i < btf_vlen(t); i++) {
			const char *mn = btf__name_by_offset(b, m[i].name_off);
			if (mn && *mn)
				mem.Set(mn, TypeStr(b, m[i].type));
		}
		structs.Set(sn, mem);
	}
	out.Set("structs", structs);

	// namespace kernel: ls->ls_dn->our_node->id, resolved to byte offsets here so the BPF
	// side needs no type names for it (the series' struct names are not in mainline)
	{
		__s32 lsid;
		const struct btf *b = Find(dlm, vm, "dlm_ls", BTF_KIND_STRUCT, &lsid);
		__u32 o1, t1, o2, t2, o3, t3;
		__u32 dn, nd;
		if (b && Member(b, lsid, "ls_dn", &o1, &t1) && (dn = PointeeStruct(b, t1)) &&
		    Member(b, dn, "our_node", &o2, &t2) && (nd = PointeeStruct(b, t2))) {
			const char *idname = Member(b, nd, "id", &o3, &t3) ? "id" : Member(b, nd, "nodeid", &o3, &t3) ? "nodeid" : nullptr;
			if (idname) {
				Napi::Object ns = Napi::Object::New(env);
				ns.Set("path", "dlm_ls.ls_dn -> " + TypeStr(b, dn) + ".our_node -> " + TypeStr(b, nd) + "." + idname);
				Napi::Array offs = Napi::Array::New(env, 3);
				offs.Set(0u, o1);
				offs.Set(1u, o2);
				offs.Set(2u, o3);
				ns.Set("offsets", offs);
				out.Set("nsNode", ns);
			}
		}
	}

	btf__free(dlm);
	btf__free(vm);
	return out;
}
