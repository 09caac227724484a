// SPDX-License-Identifier: GPL-2.0-only
/*
 * dlm-rv's kernel side: one libbpf CO-RE object for every kernel of
 * /work/shared/spec/kernel.md section 1. Each hook normalizes what it sees into
 * one 128-byte struct dlm_rv_record (bpf/dlm_rv.h) in ONE ring buffer, so the
 * stream has a single global order (the order of reservation).
 *
 * User space (native/) picks the programs for the running kernel from its BTF
 * and turns the others off with bpf_program__set_autoload(prog, false); several
 * programs below are alternative spellings of the same hook (argument lists
 * changed between kernels) and never load together.
 *
 * Tracepoints are hooked as raw_tp, not tp_btf: every argument is then a plain
 * u64 and every read goes through BPF_CORE_READ (bpf_probe_read_kernel). tp_btf
 * would refuse to read a `const void *` argument (dlm_lock_start's name,
 * dlm_send_message's name) before Linux 6.16 ("arg type UNKNOWN is not a
 * struct"), and from 6.12 types pointer arguments as maybe-NULL trusted pointers
 * whose address arithmetic must not be hoisted above a NULL check. The argument
 * lists are the BTF prototypes (btf_trace_<name>), checked by user space before
 * loading; the kernel checks the count again when a raw_tp program attaches.
 *
 * Every record is written by the same inline encoder helpers (rv_*), including
 * those of the test-only program test_feed, which re-encodes records that user
 * space places in an array map, so the whole pipeline can be exercised with
 * BPF_PROG_TEST_RUN on a machine without a DLM.
 *
 * Losses: a failed ring reservation is counted (per CPU, for the totals) and in
 * loss_pending; the next successful reservation on any CPU first writes a LOSS
 * record carrying that count, so the monitor resets at the right place in the
 * stream rather than reasoning on a stream with a hole in it.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "dlm_rv.h"
#include "dlm_rv_probes.h"
#include "dlm_types.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * HOOK(sec): the section of a kernel hook. A check build (-DDLM_RV_CHECK_RAW_TP)
 * turns every hook into a plain raw_tp program so the verifier and the CO-RE
 * relocations can be exercised against a dlm BTF given as btf_custom_path on a
 * machine without the dlm module (see docs/live.md, "Checking the hooks").
 */
#ifdef DLM_RV_CHECK_RAW_TP
#define HOOK(sec) SEC("raw_tp")
#else
#define HOOK(sec) SEC(sec)
#endif

#define DLM_LKF_PERSISTENT	0x80
#define DLM_MSG_REQUEST		1
#define DLM_MSG_LOOKUP		11
#define DLM_MSG_REMOVE		12
#define DLM_EUNLOCK		0x10002
#define DLM_ECANCEL		0x10001
#define EAGAIN			11
#define EDEADLK			35

/* ---- tunables, fixed at load (.rodata) ---------------------------------- */
const volatile __u32 cfg_node_id = 0;		/* mainline: this node's DLM id (configfs) */
const volatile __u32 cfg_ns_node = 0;		/* namespace kernel: node id from ls->ls_dn->our_node->id */
const volatile __u32 cfg_ns_off[3] = {};	/* ... at these byte offsets (resolved from BTF by user space) */
const volatile __u32 cfg_ls_n = 0;		/* lockspace filter: 0 = all */
const volatile __u32 cfg_ls[DLM_RV_MAX_LS_FILTER] = {};
const volatile __u32 cfg_prefix_len = 0;	/* resource name prefix filter: 0 = all */
const volatile __u8 cfg_prefix[DLM_RV_NAME_MAX] = {};

/* ---- run-time state (.bss, written by user space after attach) ----------- */
__u32 ast_rflags = 0;		/* DLM_RV_RF_HISTORY once fentry/dlm_add_cb is attached */
__u64 loss_pending = 0;		/* drops not yet reported by a LOSS record */

/* ---- maps ----------------------------------------------------------------- */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);		/* set at load: ringBytes */
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DLM_RV_P_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct rel_ls {
	__u32 ls_id;
	__u32 node;
	__u32 force;
};

/* dlm_release_lockspace entry -> exit, by task: fexit must not touch the lockspace */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct rel_ls);
} rel_by_task SEC(".maps");

/* test_feed's input: records placed here by user space (mmap), re-encoded into rb */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DLM_RV_TEST_BATCH);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct dlm_rv_record);
} test_in SEC(".maps");

/* =====================================================================
 * The encoder helpers: every record goes through these.
 * ===================================================================== */

static __always_inline void rv_hit(__u32 probe)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &probe);
	if (v)
		*v += 1;
}

static __always_inline void rv_count_drop(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&drops, &k);
	if (v)
		*v += 1;
	__sync_fetch_and_add(&loss_pending, 1);
}

static __always_inline void rv_hdr(struct dlm_rv_record *r, __u64 ts, __u16 kind, __u8 src,
				   __u32 node, __u32 ls_id, __u32 lkb_id)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->ts_ns = ts;
	r->kind = kind;
	r->mode = DLM_RV_MODE_NONE;
	r->grmode = -1;
	r->node = node;
	r->ls_id = ls_id;
	r->lkb_id = lkb_id;
	r->src = src;
	r->pid = bpf_get_current_pid_tgid() >> 32;
}

/*
 * Reserve one record. If events were dropped since the last LOSS record, write
 * that LOSS record first (it takes the place in the stream where the hole is).
 */
static __always_inline struct dlm_rv_record *rv_reserve(__u64 ts)
{
	struct dlm_rv_record *r;

	if (loss_pending) {
		r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
		if (!r) {
			rv_count_drop();
			return 0;
		}
		__u64 n = __sync_lock_test_and_set(&loss_pending, 0);
		if (!n) {
			/* another CPU reported them meanwhile */
			bpf_ringbuf_discard(r, 0);
		} else {
			rv_hdr(r, ts, DLM_RV_EV_LOSS, DLM_RV_SRC_NONE, cfg_node_id, 0, 0);
			r->aux = n > 0xffffffffULL ? 0xffffffffU : (__u32)n;
			r->rflags = DLM_RV_RF_SYNTH;
			bpf_ringbuf_submit(r, 0);
		}
	}
	r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
	if (!r)
		rv_count_drop();
	return r;
}

static __always_inline struct dlm_rv_record *rv_begin(__u64 ts, __u16 kind, __u8 src, __u32 node,
						       __u32 ls_id, __u32 lkb_id)
{
	struct dlm_rv_record *r = rv_reserve(ts);
	if (r)
		rv_hdr(r, ts, kind, src, node, ls_id, lkb_id);
	return r;
}

/* copy a resource name (kernel memory) into the record */
static __always_inline void rv_name(struct dlm_rv_record *r, const void *src, __u64 len)
{
	if (!src || len == 0)
		return;
	if (len > DLM_RV_NAME_MAX)
		len = DLM_RV_NAME_MAX;
	if (bpf_probe_read_kernel(r->name, len, src) == 0)
		r->name_len = len;
}

static __always_inline void rv_name_rsb(struct dlm_rv_record *r, struct dlm_rsb *res)
{
	if (!res)
		return;
	int len = BPF_CORE_READ(res, res_length);
	if (len <= 0)
		return;
	rv_name(r, (const void *)&res->res_name, len);
}

static __always_inline int rv_ls_ok(__u32 ls_id)
{
	if (!cfg_ls_n)
		return 1;
	for (int i = 0; i < DLM_RV_MAX_LS_FILTER; i++) {
		if (i >= cfg_ls_n)
			break;
		if (cfg_ls[i] == ls_id)
			return 1;
	}
	return 0;
}

static __always_inline int rv_prefix_ok(const struct dlm_rv_record *r)
{
	if (!cfg_prefix_len || !r->name_len)
		return 1;	/* records without a name (leaves, losses) always pass */
	if (r->name_len < cfg_prefix_len)
		return 0;
	for (int i = 0; i < DLM_RV_NAME_MAX; i++) {
		if (i >= cfg_prefix_len)
			break;
		if (r->name[i] != cfg_prefix[i])
			return 0;
	}
	return 1;
}

static __always_inline void rv_commit(struct dlm_rv_record *r)
{
	if (rv_prefix_ok(r))
		bpf_ringbuf_submit(r, 0);
	else
		bpf_ringbuf_discard(r, 0);
}

/* ---- lkb helpers ---------------------------------------------------------- */

static __always_inline int rv_lkb_is_user(struct dlm_lkb *lkb)
{
	struct dlm_lkb___v64 *l64 = (void *)lkb;
	struct dlm_lkb___v61 *l61 = (void *)lkb;

	if (bpf_core_field_exists(l64->lkb_dflags))
		return BPF_CORE_READ(l64, lkb_dflags) & 1;
	if (bpf_core_field_exists(l61->lkb_flags))
		return BPF_CORE_READ(l61, lkb_flags) & 1;
	return 0;
}

/* lkb id, lkb_grmode (history), the user-space mark and the resource name */
static __always_inline void rv_lkb(struct dlm_rv_record *r, struct dlm_lkb *lkb)
{
	r->lkb_id = BPF_CORE_READ(lkb, lkb_id);
	r->grmode = BPF_CORE_READ(lkb, lkb_grmode);
	if (rv_lkb_is_user(lkb))
		r->rflags |= DLM_RV_RF_USER;
	rv_name_rsb(r, BPF_CORE_READ(lkb, lkb_resource));
}

static __always_inline __u32 rv_ls_id(struct dlm_ls *ls)
{
	return ls ? BPF_CORE_READ(ls, ls_global_id) : 0;
}

/* the DLM node id the event happened on */
static __always_inline __u32 rv_node(struct dlm_ls *ls)
{
	if (cfg_ns_node) {
		__u64 dn = 0, nd = 0;
		int id = 0;
		if (!ls)
			return 0;
		bpf_probe_read_kernel(&dn, sizeof(dn), (void *)ls + cfg_ns_off[0]);
		if (dn)
			bpf_probe_read_kernel(&nd, sizeof(nd), (void *)(dn + cfg_ns_off[1]));
		if (nd)
			bpf_probe_read_kernel(&id, sizeof(id), (void *)(nd + cfg_ns_off[2]));
		return id;
	}
	return cfg_node_id;
}

/* dlm_ast's sb_flags/sb_status as the hook gives them, with the 6.10+ swap undone */
static __always_inline void rv_ast_status(struct dlm_rv_record *r, __u32 sb_flags, int sb_status)
{
	sb_flags &= 0xff;
	if (sb_flags > 7) {
		/* swapped: sb_flags holds the status' low byte, sb_status the flags */
		int s;
		switch (sb_flags) {
		case 0xfe: s = -DLM_EUNLOCK; break;
		case 0xff: s = -DLM_ECANCEL; break;
		case 0xf5: s = -EAGAIN; break;
		case 0xdd: s = -EDEADLK; break;
		default: s = (__s8)sb_flags; break;
		}
		r->status = s;
		r->sb_flags = (__u32)sb_status;
		r->rflags |= DLM_RV_RF_UNSWAPPED;
	} else if (sb_flags == 0 && sb_status >= 1 && sb_status <= 7) {
		/* swapped grant: no status is positive, so this is sb_flags */
		r->status = 0;
		r->sb_flags = (__u32)sb_status;
		r->rflags |= DLM_RV_RF_UNSWAPPED;
	} else {
		r->status = sb_status;
		r->sb_flags = sb_flags;
	}
}

/* the start of every hook that gets (ls, lkb): counted, filtered, a record about that lkb;
 * NULL when there is nothing to write (no lock, another lockspace, the ring full) */
static __always_inline struct dlm_rv_record *rv_lkb_begin(__u32 probe, __u16 kind, __u8 src,
							   struct dlm_ls *ls, struct dlm_lkb *lkb)
{
	rv_hit(probe);
	if (!ls || !lkb)
		return NULL;
	__u32 ls_id = rv_ls_id(ls);
	if (!rv_ls_ok(ls_id))
		return NULL;
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), kind, src, rv_node(ls), ls_id, 0);
	if (r)
		rv_lkb(r, lkb);
	return r;
}

/* =====================================================================
 * Mainline lock/unlock tracepoints
 * ===================================================================== */

static __always_inline int rv_lock_event(__u32 probe, __u16 kind, __u8 src, struct dlm_ls *ls,
					 struct dlm_lkb *lkb, const void *name, __u64 namelen,
					 int mode, __u32 flags, int error)
{
	struct dlm_rv_record *r = rv_lkb_begin(probe, kind, src, ls, lkb);
	if (!r)
		return 0;
	if (!r->name_len)	/* a new request: lkb_resource is still NULL */
		rv_name(r, name, namelen);
	r->mode = mode;
	r->flags = flags;
	r->error = error;
	rv_commit(r);
	return 0;
}

HOOK("raw_tp/dlm_lock_start")
int BPF_PROG(lock_start, struct dlm_ls *ls, struct dlm_lkb *lkb, const void *name,
	     unsigned int namelen, int mode, __u32 flags)
{
	return rv_lock_event(DLM_RV_P_LOCK_START, DLM_RV_EV_REQUEST, DLM_RV_SRC_LOCK_START,
			     ls, lkb, name, namelen, mode, flags, 0);
}

HOOK("raw_tp/dlm_lock_start")
int BPF_PROG(lock_start_old, struct dlm_ls *ls, struct dlm_lkb *lkb, int mode, __u32 flags)
{
	return rv_lock_event(DLM_RV_P_LOCK_START_OLD, DLM_RV_EV_REQUEST, DLM_RV_SRC_LOCK_START,
			     ls, lkb, 0, 0, mode, flags, 0);
}

HOOK("raw_tp/dlm_lock_end")
int BPF_PROG(lock_end, struct dlm_ls *ls, struct dlm_lkb *lkb, const void *name,
	     unsigned int namelen, int mode, __u32 flags, int error)
{
	if (!error) {
		rv_hit(DLM_RV_P_LOCK_END);
		return 0;
	}
	return rv_lock_event(DLM_RV_P_LOCK_END, DLM_RV_EV_REQUEST_FAILED, DLM_RV_SRC_LOCK_END,
			     ls, lkb, name, namelen, mode, flags, error);
}

HOOK("raw_tp/dlm_lock_end")
int BPF_PROG(lock_end_old, struct dlm_ls *ls, struct dlm_lkb *lkb, int mode, __u32 flags, int error)
{
	if (!error) {
		rv_hit(DLM_RV_P_LOCK_END_OLD);
		return 0;
	}
	return rv_lock_event(DLM_RV_P_LOCK_END_OLD, DLM_RV_EV_REQUEST_FAILED, DLM_RV_SRC_LOCK_END,
			     ls, lkb, 0, 0, mode, flags, error);
}

HOOK("raw_tp/dlm_unlock_start")
int BPF_PROG(unlock_start, struct dlm_ls *ls, struct dlm_lkb *lkb, __u32 flags)
{
	return rv_lock_event(DLM_RV_P_UNLOCK_START, DLM_RV_EV_RELEASE, DLM_RV_SRC_UNLOCK_START,
			     ls, lkb, 0, 0, DLM_RV_MODE_NONE, flags, 0);
}

HOOK("raw_tp/dlm_unlock_end")
int BPF_PROG(unlock_end, struct dlm_ls *ls, struct dlm_lkb *lkb, __u32 flags, int error)
{
	if (!error) {
		rv_hit(DLM_RV_P_UNLOCK_END);
		return 0;
	}
	return rv_lock_event(DLM_RV_P_UNLOCK_END, DLM_RV_EV_RELEASE_FAILED, DLM_RV_SRC_UNLOCK_END,
			     ls, lkb, 0, 0, DLM_RV_MODE_NONE, flags, error);
}

/* =====================================================================
 * Namespace-cluster kernel: validated requests, its dlm_ast and release
 * ===================================================================== */

HOOK("raw_tp/dlm_lock_validated")
int BPF_PROG(lock_validated, struct dlm_ls *ls, struct dlm_lkb *lkb, struct dlm_args *args,
	     const char *res_name, __u64 res_length)
{
	int mode = DLM_RV_MODE_NONE;
	__u32 flags = 0;

	if (args) {
		mode = BPF_CORE_READ(args, mode);
		flags = BPF_CORE_READ(args, flags);
	}
	return rv_lock_event(DLM_RV_P_LOCK_VALIDATED, DLM_RV_EV_REQUEST, DLM_RV_SRC_LOCK_VALIDATED,
			     ls, lkb, res_name, res_length, mode, flags, 0);
}

HOOK("raw_tp/dlm_unlock_validated")
int BPF_PROG(unlock_validated, struct dlm_ls *ls, struct dlm_lkb *lkb, struct dlm_args *args)
{
	__u32 flags = args ? BPF_CORE_READ(args, flags) : 0;

	return rv_lock_event(DLM_RV_P_UNLOCK_VALIDATED, DLM_RV_EV_RELEASE, DLM_RV_SRC_UNLOCK_VALIDATED,
			     ls, lkb, 0, 0, DLM_RV_MODE_NONE, flags, 0);
}

/* =====================================================================
 * Completions and blocking callbacks
 * ===================================================================== */

/* fentry/dlm_add_cb: the moment the outcome is decided, with the exact mode */
HOOK("fentry/dlm_add_cb")
int BPF_PROG(add_cb, struct dlm_lkb *lkb, __u32 flags, int mode, int status, __u32 sbflags)
{
	rv_hit(DLM_RV_P_ADD_CB);
	if (!lkb)
		return 0;
	barrier_var(lkb);	/* no address arithmetic above the NULL check */
	struct dlm_rsb *res = BPF_CORE_READ(lkb, lkb_resource);
	struct dlm_ls *ls = res ? BPF_CORE_READ(res, res_ls) : 0;
	__u32 ls_id = rv_ls_id(ls);
	if (!rv_ls_ok(ls_id))
		return 0;
	__u64 ts = bpf_ktime_get_boot_ns();
	__u32 node = rv_node(ls);
	struct dlm_rv_record *r;

	if (flags & DLM_RV_CB_CAST) {
		r = rv_begin(ts, DLM_RV_EV_COMPLETION, DLM_RV_SRC_ADD_CB, node, ls_id, 0);
		if (r) {
			rv_lkb(r, lkb);
			r->mode = mode;
			r->status = status;
			r->sb_flags = sbflags;
			r->flags = BPF_CORE_READ(lkb, lkb_exflags);
			rv_commit(r);
		}
	}
	if (flags & DLM_RV_CB_BAST) {
		r = rv_begin(ts, DLM_RV_EV_BLOCKING, DLM_RV_SRC_ADD_CB, node, ls_id, 0);
		if (r) {
			rv_lkb(r, lkb);
			r->mode = mode;
			rv_commit(r);
		}
	}
	return 0;
}

/* <= 6.9: dlm_ast(ls, lkb), at delivery; mode = lkb_grmode */
HOOK("raw_tp/dlm_ast")
int BPF_PROG(ast_ptr, struct dlm_ls *ls, struct dlm_lkb *lkb)
{
	struct dlm_rv_record *r = rv_lkb_begin(DLM_RV_P_AST_PTR, DLM_RV_EV_COMPLETION, DLM_RV_SRC_AST, ls, lkb);
	if (!r)
		return 0;
	struct dlm_lksb *lksb = BPF_CORE_READ(lkb, lkb_lksb);
	if (lksb) {
		r->status = BPF_CORE_READ(lksb, sb_status);
		r->sb_flags = (__u8)BPF_CORE_READ(lksb, sb_flags);
	}
	r->mode = r->grmode;
	r->flags = BPF_CORE_READ(lkb, lkb_exflags);
	r->rflags |= ast_rflags;
	rv_commit(r);
	return 0;
}

/* >= 6.10: dlm_ast(ls_id, lkb_id, sb_flags, sb_status, res_name, res_length): no mode */
HOOK("raw_tp/dlm_ast")
int BPF_PROG(ast_scalar, __u32 ls_id, __u32 lkb_id, __u8 sb_flags, int sb_status,
	     const char *res_name, __u64 res_length)
{
	rv_hit(DLM_RV_P_AST_SCALAR);
	if (!rv_ls_ok(ls_id))
		return 0;
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), DLM_RV_EV_COMPLETION, DLM_RV_SRC_AST,
					   cfg_node_id, ls_id, lkb_id);
	if (!r)
		return 0;
	rv_ast_status(r, sb_flags, sb_status);
	rv_name(r, res_name, res_length);
	r->rflags |= ast_rflags;
	rv_commit(r);
	return 0;
}

/* namespace kernel: dlm_ast(our_nodeid, ls_id, lkb_id, sb_flags, sb_status, res_name,
 * res_length, mode); mode is the REQUESTED mode: history only (grmode) */
HOOK("raw_tp/dlm_ast")
int BPF_PROG(ast_ns, unsigned int our_nodeid, __u32 ls_id, __u32 lkb_id, __u8 sb_flags,
	     int sb_status, const char *res_name, __u64 res_length, int mode)
{
	rv_hit(DLM_RV_P_AST_NS);
	if (!rv_ls_ok(ls_id))
		return 0;
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), DLM_RV_EV_COMPLETION, DLM_RV_SRC_AST,
					   our_nodeid, ls_id, lkb_id);
	if (!r)
		return 0;
	rv_ast_status(r, sb_flags, sb_status);
	rv_name(r, res_name, res_length);
	r->grmode = mode;
	r->rflags |= ast_rflags;
	rv_commit(r);
	return 0;
}

/* <= 6.9: dlm_bast(ls, lkb, mode) */
HOOK("raw_tp/dlm_bast")
int BPF_PROG(bast_ptr, struct dlm_ls *ls, struct dlm_lkb *lkb, int mode)
{
	struct dlm_rv_record *r = rv_lkb_begin(DLM_RV_P_BAST_PTR, DLM_RV_EV_BLOCKING, DLM_RV_SRC_BAST, ls, lkb);
	if (!r)
		return 0;
	r->mode = mode;
	r->rflags |= ast_rflags;
	rv_commit(r);
	return 0;
}

/* >= 6.10: dlm_bast(ls_id, lkb_id, mode, res_name, res_length) */
HOOK("raw_tp/dlm_bast")
int BPF_PROG(bast_scalar, __u32 ls_id, __u32 lkb_id, int mode, const char *res_name, __u64 res_length)
{
	rv_hit(DLM_RV_P_BAST_SCALAR);
	if (!rv_ls_ok(ls_id))
		return 0;
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), DLM_RV_EV_BLOCKING, DLM_RV_SRC_BAST,
					   cfg_node_id, ls_id, lkb_id);
	if (!r)
		return 0;
	rv_name(r, res_name, res_length);
	r->mode = mode;
	r->rflags |= ast_rflags;
	rv_commit(r);
	return 0;
}

/* =====================================================================
 * Leaving a lockspace
 * ===================================================================== */

static __always_inline void rv_leave(__u32 probe, __u8 src, __u32 node, __u32 ls_id, __u32 force)
{
	if (!rv_ls_ok(ls_id))
		return;
	__u64 tid = bpf_get_current_pid_tgid();
	struct rel_ls v = { .ls_id = ls_id, .node = node, .force = force };
	bpf_map_update_elem(&rel_by_task, &tid, &v, BPF_ANY);
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), DLM_RV_EV_NODE_LEAVES_LS, src, node, ls_id, 0);
	if (!r)
		return;
	r->aux = force;
	rv_commit(r);
}

/* namespace kernel: tracepoint dlm_release_lockspace(our_nodeid, ls_id) */
HOOK("raw_tp/dlm_release_lockspace")
int BPF_PROG(release_ls_tp, unsigned int our_nodeid, __u32 ls_id)
{
	rv_hit(DLM_RV_P_RELEASE_LS_TP);
	rv_leave(DLM_RV_P_RELEASE_LS_TP, DLM_RV_SRC_RELEASE_LS, our_nodeid, ls_id, 0);
	return 0;
}

/* mainline: int dlm_release_lockspace(void *lockspace, int force) */
HOOK("fentry/dlm_release_lockspace")
int BPF_PROG(release_ls, void *lockspace, int force)
{
	rv_hit(DLM_RV_P_RELEASE_LS);
	/* a void * is a scalar to the verifier: read through it with BPF_CORE_READ */
	struct dlm_ls *ls = lockspace;
	if (!ls)
		return 0;
	rv_leave(DLM_RV_P_RELEASE_LS, DLM_RV_SRC_RELEASE_LS, rv_node(ls), rv_ls_id(ls), force);
	return 0;
}

/* the return value: nonzero (-EBUSY, or a count of remaining users) = the node stays */
HOOK("fexit/dlm_release_lockspace")
int BPF_PROG(release_ls_ret, void *lockspace, int force, int ret)
{
	rv_hit(DLM_RV_P_RELEASE_LS_RET);
	/* the lockspace may be freed by now: only the map, never the pointer */
	__u64 tid = bpf_get_current_pid_tgid();
	struct rel_ls *v = bpf_map_lookup_elem(&rel_by_task, &tid);
	if (!v)
		return 0;
	struct rel_ls e = *v;
	bpf_map_delete_elem(&rel_by_task, &tid);
	if (!ret)
		return 0;
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), DLM_RV_EV_NODE_LEAVE_FAILED,
					   DLM_RV_SRC_RELEASE_LS_RET, e.node, e.ls_id, 0);
	if (!r)
		return 0;
	r->error = ret;
	r->aux = e.force;
	rv_commit(r);
	return 0;
}

/* =====================================================================
 * A user-space lock owner exits: dlm_clear_proc_locks(ls, proc) drops its
 * locks without any callback. One synthetic unlock completion per lock.
 * ===================================================================== */

struct walk {
	__u64 head;		/* address of the list head (&proc->locks, &ls->ls_nodes_gone, ...) */
	__u64 pos;		/* current element (a struct list_head inside it) */
	__u64 ts;
	__u32 node;
	__u32 ls_id;
	__u32 done;
};

/* a walk of lockspace ls: counted, filtered, its node and one timestamp for every record */
static __always_inline int rv_walk_start(struct walk *w, struct dlm_ls *ls)
{
	w->ls_id = rv_ls_id(ls);
	if (!rv_ls_ok(w->ls_id))
		return 0;
	w->node = rv_node(ls);
	w->ts = bpf_ktime_get_boot_ns();
	return 1;
}

/* in a bpf_loop callback: the end of the list stops the loop */
static __always_inline int rv_walk_end(struct walk *w)
{
	if (!w->pos || w->pos == w->head) {
		w->done = 1;
		return 1;
	}
	return 0;
}

static __always_inline void rv_walk_next(struct walk *w)
{
	struct list_head *p = (void *)w->pos;
	w->pos = (__u64)BPF_CORE_READ(p, next);
}

/* every element of the list whose first element is `first`, at most max, through cb */
static __always_inline void rv_walk(struct walk *w, struct list_head *first, __u32 max,
				    long (*cb)(__u32 i, void *ctx))
{
	/* first->prev is the head itself (also when the list is empty): a scalar, no pointer
	 * arithmetic on the struct that holds it */
	w->pos = (__u64)first;
	w->head = first ? (__u64)BPF_CORE_READ(first, prev) : 0;
	w->done = 0;
	bpf_loop(max, cb, w, 0);
	if (!w->done) {
		/* more than we walk: the monitor must forget rather than keep phantoms */
		rv_count_drop();
		struct dlm_rv_record *r = rv_reserve(w->ts);	/* writes the LOSS record */
		if (r)
			bpf_ringbuf_discard(r, 0);
	}
}

static long unlock_one(__u32 i, void *ctx)
{
	struct walk *w = ctx;

	if (rv_walk_end(w))
		return 1;
	struct dlm_lkb *lkb = (void *)(w->pos - bpf_core_field_offset(struct dlm_lkb, lkb_ownqueue));
	/* persistent locks are orphaned, not unlocked: they stay granted */
	if (!(BPF_CORE_READ(lkb, lkb_exflags) & DLM_LKF_PERSISTENT)) {
		struct dlm_rv_record *r = rv_begin(w->ts, DLM_RV_EV_COMPLETION, DLM_RV_SRC_CLEAR_PROC_LOCKS,
						   w->node, w->ls_id, 0);
		if (r) {
			rv_lkb(r, lkb);
			r->status = -DLM_EUNLOCK;
			r->mode = -1;
			r->rflags |= DLM_RV_RF_SYNTH;
			rv_commit(r);
		}
	}
	rv_walk_next(w);
	return 0;
}

HOOK("fentry/dlm_clear_proc_locks")
int BPF_PROG(clear_proc, struct dlm_ls *ls, struct dlm_user_proc *proc)
{
	rv_hit(DLM_RV_P_CLEAR_PROC);
	if (!ls || !proc)
		return 0;
	barrier_var(ls);
	barrier_var(proc);
	struct walk w = {};
	if (!rv_walk_start(&w, ls))
		return 0;
	rv_walk(&w, BPF_CORE_READ(proc, locks.next), DLM_RV_PROC_LOCKS_MAX, unlock_one);
	rv_walk(&w, BPF_CORE_READ(proc, unlocking.next), DLM_RV_PROC_LOCKS_MAX, unlock_one);
	return 0;
}

/* =====================================================================
 * A survivor's recovery: dlm_recover_purge(ls[, root_list]) drops the
 * master copies of the locks of every node in ls->ls_nodes_gone (left or
 * failed since the last recovery). One NODE_REMOVED per such node, in the
 * survivor's own stream before anything recovery lets it be granted: the
 * cluster-wide view learns that a node that vanished (its stream silent, a
 * crash) holds nothing any more, in causal order.
 * ===================================================================== */

static long removed_one(__u32 i, void *ctx)
{
	struct walk *w = ctx;

	if (rv_walk_end(w))
		return 1;
	struct dlm_member *m = (void *)(w->pos - bpf_core_field_offset(struct dlm_member, list));
	struct dlm_rv_record *r = rv_begin(w->ts, DLM_RV_EV_NODE_REMOVED, DLM_RV_SRC_RECOVER_PURGE,
					   w->node, w->ls_id, 0);
	if (r) {
		r->aux = BPF_CORE_READ(m, nodeid);
		rv_commit(r);
	}
	rv_walk_next(w);
	return 0;
}

/* 6.1: (struct dlm_ls *); later: (struct dlm_ls *, const struct list_head *root_list) */
HOOK("fentry/dlm_recover_purge")
int BPF_PROG(recover_purge, struct dlm_ls *ls)
{
	rv_hit(DLM_RV_P_RECOVER_PURGE);
	if (!ls)
		return 0;
	barrier_var(ls);
	struct walk w = {};
	if (!rv_walk_start(&w, ls))
		return 0;
	rv_walk(&w, BPF_CORE_READ(ls, ls_nodes_gone.next), DLM_RV_NODES_GONE_MAX, removed_one);
	return 0;
}

/* =====================================================================
 * Messages (reliable transport): happens-before edges for the merge
 * ===================================================================== */

static __always_inline int rv_msg(__u32 probe, __u16 kind, __u8 src, __u32 dst, __u32 seq,
				  const struct dlm_message *ms, const void *name, __u64 namelen)
{
	rv_hit(probe);
	if (!ms)
		return 0;
	__u32 ls_id = BPF_CORE_READ(ms, m_header.u.h_lockspace);
	if (!rv_ls_ok(ls_id))
		return 0;
	__u32 from = BPF_CORE_READ(ms, m_header.h_nodeid);
	__u32 node = kind == DLM_RV_EV_MSG_SEND ? from : (dst ? dst : cfg_node_id);
	struct dlm_rv_record *r = rv_begin(bpf_ktime_get_boot_ns(), kind, src, node, ls_id,
					   BPF_CORE_READ(ms, m_lkid));
	if (!r)
		return 0;
	__u32 type = BPF_CORE_READ(ms, m_type);
	r->msg_src = from;
	r->msg_dst = dst;
	r->msg_seq = seq;
	r->msg_type = type;
	r->aux = BPF_CORE_READ(ms, m_remid);
	r->status = BPF_CORE_READ(ms, m_status);
	r->error = BPF_CORE_READ(ms, m_result);
	r->mode = BPF_CORE_READ(ms, m_rqmode);
	r->grmode = BPF_CORE_READ(ms, m_grmode);
	r->flags = BPF_CORE_READ(ms, m_exflags);
	r->sb_flags = BPF_CORE_READ(ms, m_sbflags);
	if (name) {
		rv_name(r, name, namelen);
	} else if (type == DLM_MSG_REQUEST || type == DLM_MSG_LOOKUP || type == DLM_MSG_REMOVE) {
		/* the name travels in m_extra: h_length - sizeof(struct dlm_message) bytes */
		__u32 hl = BPF_CORE_READ(ms, m_header.h_length);
		__u32 sz = bpf_core_type_size(struct dlm_message);
		if (hl > sz)
			rv_name(r, (const void *)&ms->m_extra, hl - sz);
	}
	rv_commit(r);
	return 0;
}

HOOK("raw_tp/dlm_send_message")
int BPF_PROG(send_msg, __u32 dst, __u32 h_seq, const struct dlm_message *ms, const void *name, int namelen)
{
	return rv_msg(DLM_RV_P_SEND_MSG, DLM_RV_EV_MSG_SEND, DLM_RV_SRC_SEND_MESSAGE, dst, h_seq, ms,
		      name, namelen > 0 ? namelen : 0);
}

HOOK("raw_tp/dlm_send_message")
int BPF_PROG(send_msg_61, __u32 seq, const struct dlm_message *ms, const void *name, int namelen)
{
	return rv_msg(DLM_RV_P_SEND_MSG_61, DLM_RV_EV_MSG_SEND, DLM_RV_SRC_SEND_MESSAGE, 0, seq, ms,
		      name, namelen > 0 ? namelen : 0);
}

HOOK("raw_tp/dlm_recv_message")
int BPF_PROG(recv_msg, __u32 dst, __u32 h_seq, const struct dlm_message *ms)
{
	return rv_msg(DLM_RV_P_RECV_MSG, DLM_RV_EV_MSG_RECV, DLM_RV_SRC_RECV_MESSAGE, dst, h_seq, ms, 0, 0);
}

HOOK("raw_tp/dlm_recv_message")
int BPF_PROG(recv_msg_61, __u32 seq, const struct dlm_message *ms)
{
	return rv_msg(DLM_RV_P_RECV_MSG_61, DLM_RV_EV_MSG_RECV, DLM_RV_SRC_RECV_MESSAGE, 0, seq, ms, 0, 0);
}

/* =====================================================================
 * Test-only: BPF_PROG_TEST_RUN re-encodes records placed in test_in by user
 * space, through the same helpers, into the same ring. args[0] = count.
 * ===================================================================== */

static long feed_one(__u32 i, void *ctx)
{
	struct dlm_rv_record *in = bpf_map_lookup_elem(&test_in, &i);
	if (!in)
		return 1;
	rv_hit(DLM_RV_P_TEST);
	if (!rv_ls_ok(in->ls_id))
		return 0;
	struct dlm_rv_record *r = rv_begin(in->ts_ns, in->kind, in->src, in->node, in->ls_id, in->lkb_id);
	if (!r)
		return 0;
	r->pid = in->pid;
	r->mode = in->mode;
	r->grmode = in->grmode;
	r->flags = in->flags;
	r->status = in->status;
	r->error = in->error;
	r->sb_flags = in->sb_flags;
	r->aux = in->aux;
	r->msg_src = in->msg_src;
	r->msg_dst = in->msg_dst;
	r->msg_seq = in->msg_seq;
	r->msg_type = in->msg_type;
	r->rflags = in->rflags;
	rv_name(r, in->name, in->name_len);
	rv_commit(r);
	return 0;
}

SEC("raw_tp")
int test_feed(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 n = ctx->args[0];

	if (n > DLM_RV_TEST_BATCH)
		n = DLM_RV_TEST_BATCH;
	bpf_loop(n, feed_one, 0, 0);
	return 0;
}
