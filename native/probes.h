// The probe table: BPF program name (as in bpf/dlm_rv.bpf.c), the hook it attaches to,
// indexed by enum dlm_rv_probe (bpf/dlm_rv_probes.h). src/live/probes.ts holds the same
// table; test/bpf/probes.test.ts checks that they agree.
#pragma once
#include "../bpf/dlm_rv_probes.h"

struct ProbeDef {
	int id;
	const char *prog;	// BPF program (function) name
	const char *hook;	// what it attaches to, as reported
};

static const ProbeDef kProbes[DLM_RV_P_MAX] = {
	{DLM_RV_P_LOCK_START, "lock_start", "raw_tp/dlm_lock_start"},
	{DLM_RV_P_LOCK_START_OLD, "lock_start_old", "raw_tp/dlm_lock_start"},
	{DLM_RV_P_LOCK_END, "lock_end", "raw_tp/dlm_lock_end"},
	{DLM_RV_P_LOCK_END_OLD, "lock_end_old", "raw_tp/dlm_lock_end"},
	{DLM_RV_P_UNLOCK_START, "unlock_start", "raw_tp/dlm_unlock_start"},
	{DLM_RV_P_UNLOCK_END, "unlock_end", "raw_tp/dlm_unlock_end"},
	{DLM_RV_P_ADD_CB, "add_cb", "fentry/dlm_add_cb"},
	{DLM_RV_P_AST_PTR, "ast_ptr", "raw_tp/dlm_ast"},
	{DLM_RV_P_AST_SCALAR, "ast_scalar", "raw_tp/dlm_ast"},
	{DLM_RV_P_AST_NS, "ast_ns", "raw_tp/dlm_ast"},
	{DLM_RV_P_BAST_PTR, "bast_ptr", "raw_tp/dlm_bast"},
	{DLM_RV_P_BAST_SCALAR, "bast_scalar", "raw_tp/dlm_bast"},
	{DLM_RV_P_LOCK_VALIDATED, "lock_validated", "raw_tp/dlm_lock_validated"},
	{DLM_RV_P_UNLOCK_VALIDATED, "unlock_validated", "raw_tp/dlm_unlock_validated"},
	{DLM_RV_P_RELEASE_LS_TP, "release_ls_tp", "raw_tp/dlm_release_lockspace"},
	{DLM_RV_P_RELEASE_LS, "release_ls", "fentry/dlm_release_lockspace"},
	{DLM_RV_P_RELEASE_LS_RET, "release_ls_ret", "fexit/dlm_release_lockspace"},
	{DLM_RV_P_CLEAR_PROC, "clear_proc", "fentry/dlm_clear_proc_locks"},
	{DLM_RV_P_SEND_MSG, "send_msg", "raw_tp/dlm_send_message"},
	{DLM_RV_P_SEND_MSG_61, "send_msg_61", "raw_tp/dlm_send_message"},
	{DLM_RV_P_RECV_MSG, "recv_msg", "raw_tp/dlm_recv_message"},
	{DLM_RV_P_RECV_MSG_61, "recv_msg_61", "raw_tp/dlm_recv_message"},
	{DLM_RV_P_RECOVER_PURGE, "recover_purge", "fentry/dlm_recover_purge"},
	{DLM_RV_P_TEST, "test_feed", "raw_tp/test_feed"},
};
