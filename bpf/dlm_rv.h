/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * dlm-rv record format: the one fixed-size, little-endian record that the BPF
 * program writes into its ring buffer, that capture files store back to back,
 * and that the TypeScript monitor reads in place (src/record/layout.ts mirrors
 * every offset below; test/unit/layout.test.ts compiles this header and checks).
 *
 * Bump DLM_RV_RECORD_VERSION on any change to the layout or to a field's meaning.
 */
#ifndef DLM_RV_H
#define DLM_RV_H

#ifdef __BPF__
/* the BPF side gets the __u* types from its own headers */
#else
#include <linux/types.h>
#endif

#define DLM_RV_RECORD_VERSION	1
#define DLM_RV_RECORD_SIZE	128
#define DLM_RV_NAME_MAX		64	/* DLM_RESNAME_MAXLEN */

/* normalized events (monitor.md section 3), plus the message events that
 * the cluster-wide merge orders streams by (kernel.md section 7) */
enum dlm_rv_kind {
	DLM_RV_EV_REQUEST		= 1,	/* mode = rqmode, flags = lock flags */
	DLM_RV_EV_REQUEST_FAILED	= 2,	/* error */
	DLM_RV_EV_RELEASE		= 3,	/* flags (CANCEL 0x2) */
	DLM_RV_EV_RELEASE_FAILED	= 4,	/* error */
	DLM_RV_EV_COMPLETION		= 5,	/* status, mode (or DLM_RV_MODE_NONE), sb_flags */
	DLM_RV_EV_BLOCKING		= 6,	/* mode = mode the waiter wants */
	DLM_RV_EV_NODE_LEAVES_LS	= 7,	/* aux = force */
	DLM_RV_EV_NODE_LEAVE_FAILED	= 8,	/* error */
	DLM_RV_EV_LOSS			= 9,	/* aux = number of events dropped */
	DLM_RV_EV_MSG_SEND		= 10,	/* msg_* fields, see below */
	DLM_RV_EV_MSG_RECV		= 11,
	DLM_RV_EV_NODE_REMOVED		= 12,	/* aux = the node recovery removed; node = who saw it */
	DLM_RV_EV_MAX			= 13,
};

/* mode field: DLM modes IV -1 .. EX 5, or "the hook does not know" */
#define DLM_RV_MODE_NONE	(-2)

/* src: which hook produced the record (for history and the report) */
enum dlm_rv_src {
	DLM_RV_SRC_NONE			= 0,	/* event file, hand-written */
	DLM_RV_SRC_SIM			= 1,	/* simulator */
	DLM_RV_SRC_LOCK_START		= 2,
	DLM_RV_SRC_LOCK_END		= 3,
	DLM_RV_SRC_UNLOCK_START		= 4,
	DLM_RV_SRC_UNLOCK_END		= 5,
	DLM_RV_SRC_LOCK_VALIDATED	= 6,	/* namespace kernel */
	DLM_RV_SRC_UNLOCK_VALIDATED	= 7,	/* namespace kernel */
	DLM_RV_SRC_ADD_CB		= 8,	/* fentry/dlm_add_cb: exact mode */
	DLM_RV_SRC_AST			= 9,
	DLM_RV_SRC_BAST			= 10,
	DLM_RV_SRC_RELEASE_LS		= 11,	/* entry / tracepoint */
	DLM_RV_SRC_RELEASE_LS_RET	= 12,	/* fexit */
	DLM_RV_SRC_CLEAR_PROC_LOCKS	= 13,	/* owner exit: kernel unlocks */
	DLM_RV_SRC_SEND_MESSAGE		= 14,
	DLM_RV_SRC_RECV_MESSAGE		= 15,
	DLM_RV_SRC_PROCESS_EXIT		= 16,	/* sched_process_exit in a text trace */
	DLM_RV_SRC_RECOVER_PURGE	= 17,	/* fentry/dlm_recover_purge: a survivor's recovery */
	DLM_RV_SRC_MAX			= 18,
};

/* rflags */
#define DLM_RV_RF_HISTORY	0x01	/* second source of an event already recorded: history only */
#define DLM_RV_RF_USER		0x02	/* user-space (libdlm) lock */
#define DLM_RV_RF_UNSWAPPED	0x04	/* dlm_ast sb_flags/sb_status swap recognised and undone */
#define DLM_RV_RF_SYNTH		0x08	/* made by dlm-rv, not by a hook (e.g. an owner's exit) */

struct dlm_rv_record {
	__u64 ts_ns;		/*  0 source clock, ns */
	__u16 kind;		/*  8 enum dlm_rv_kind */
	__u8  name_len;		/* 10 resource name length, 0..64 */
	__s8  mode;		/* 11 rqmode / granted mode / blocking mode / DLM_RV_MODE_NONE */
	__u32 node;		/* 12 DLM node id the event happened on */
	__u32 ls_id;		/* 16 lockspace global id */
	__u32 lkb_id;		/* 20 lock id (per node and lockspace); message: m_lkid */
	__u32 flags;		/* 24 lock flags (DLM_LKF_*); message: m_exflags */
	__s32 status;		/* 28 completion status; message: m_status */
	__s32 error;		/* 32 error of a refused operation; message: m_result */
	__u32 sb_flags;		/* 36 DLM_SBF_*; message: m_sbflags */
	__u32 pid;		/* 40 tgid of the task the hook ran in */
	__u32 aux;		/* 44 LOSS: count; NODE_LEAVES_LS: force; NODE_REMOVED: node id; message: m_remid */
	__u32 msg_src;		/* 48 message: h_nodeid (sender) */
	__u32 msg_dst;		/* 52 message: dst, 0 when the kernel does not say (6.1) */
	__u32 msg_seq;		/* 56 message: per-peer sequence (seq / h_seq) */
	__u8  msg_type;		/* 60 message: m_type (DLM_MSG_*) */
	__s8  grmode;		/* 61 lkb_grmode seen by the hook, for history; message: m_grmode */
	__u8  src;		/* 62 enum dlm_rv_src */
	__u8  rflags;		/* 63 DLM_RV_RF_* */
	__u8  name[DLM_RV_NAME_MAX];	/* 64 resource name bytes, zero padded */
};

#if defined(__cplusplus)
static_assert(sizeof(struct dlm_rv_record) == DLM_RV_RECORD_SIZE, "dlm_rv_record size");
#else
_Static_assert(sizeof(struct dlm_rv_record) == DLM_RV_RECORD_SIZE, "dlm_rv_record size");
#endif

#endif /* DLM_RV_H */
