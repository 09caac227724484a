/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared between bpf/dlm_rv.bpf.c and the addon (native/): probe indexes of the
 * per-CPU hit counters, and the collector's fixed sizes. The probe table with
 * program names lives in src/live/probes.ts (probe selection) and in
 * native/probes.h (the addon), both indexed by these numbers.
 */
#ifndef DLM_RV_PROBES_H
#define DLM_RV_PROBES_H

enum dlm_rv_probe {
	DLM_RV_P_LOCK_START = 0,	/* raw_tp/dlm_lock_start (ls, lkb, name, namelen, mode, flags) */
	DLM_RV_P_LOCK_START_OLD,	/* raw_tp/dlm_lock_start (ls, lkb, mode, flags): before the 2022 name args */
	DLM_RV_P_LOCK_END,
	DLM_RV_P_LOCK_END_OLD,
	DLM_RV_P_UNLOCK_START,
	DLM_RV_P_UNLOCK_END,
	DLM_RV_P_ADD_CB,		/* fentry/dlm_add_cb */
	DLM_RV_P_AST_PTR,		/* raw_tp/dlm_ast (ls, lkb): <= 6.9 */
	DLM_RV_P_AST_SCALAR,		/* raw_tp/dlm_ast (ls_id, lkb_id, sb_flags, sb_status, res_name, res_length): >= 6.10 */
	DLM_RV_P_AST_NS,		/* raw_tp/dlm_ast (our_nodeid, ls_id, lkb_id, sb_flags, sb_status, res_name, res_length, mode) */
	DLM_RV_P_BAST_PTR,		/* raw_tp/dlm_bast (ls, lkb, mode): <= 6.9 */
	DLM_RV_P_BAST_SCALAR,		/* raw_tp/dlm_bast (ls_id, lkb_id, mode, res_name, res_length): >= 6.10 */
	DLM_RV_P_LOCK_VALIDATED,	/* namespace kernel */
	DLM_RV_P_UNLOCK_VALIDATED,	/* namespace kernel */
	DLM_RV_P_RELEASE_LS_TP,		/* raw_tp/dlm_release_lockspace (our_nodeid, ls_id): namespace kernel */
	DLM_RV_P_RELEASE_LS,		/* fentry/dlm_release_lockspace */
	DLM_RV_P_RELEASE_LS_RET,	/* fexit/dlm_release_lockspace */
	DLM_RV_P_CLEAR_PROC,		/* fentry/dlm_clear_proc_locks */
	DLM_RV_P_SEND_MSG,		/* raw_tp/dlm_send_message (dst, h_seq, ms, name, namelen): >= 6.2 */
	DLM_RV_P_SEND_MSG_61,		/* raw_tp/dlm_send_message (seq, ms, name, namelen): 6.1.y */
	DLM_RV_P_RECV_MSG,		/* raw_tp/dlm_recv_message (dst, h_seq, ms) */
	DLM_RV_P_RECV_MSG_61,		/* raw_tp/dlm_recv_message (seq, ms) */
	DLM_RV_P_RECOVER_PURGE,		/* fentry/dlm_recover_purge (ls[, root_list]) */
	DLM_RV_P_TEST,			/* raw_tp test_feed: BPF_PROG_TEST_RUN only */
	DLM_RV_P_MAX,
};

#define DLM_RV_MAX_LS_FILTER	16	/* lockspace ids in the filter */
#define DLM_RV_TEST_BATCH	8192	/* records per BPF_PROG_TEST_RUN of test_feed */
#define DLM_RV_PROC_LOCKS_MAX	16384	/* dlm_clear_proc_locks: locks walked per list before a LOSS */
#define DLM_RV_NODES_GONE_MAX	256	/* dlm_recover_purge: removed nodes walked before a LOSS */

/* kernel DLM callback flags (fs/dlm/dlm_internal.h) */
#define DLM_RV_CB_CAST		0x1
#define DLM_RV_CB_BAST		0x2

#endif /* DLM_RV_PROBES_H */
