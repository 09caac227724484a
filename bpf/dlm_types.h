/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Minimal CO-RE views of the dlm module's types, for bpf/dlm_rv.bpf.c.
 *
 * Only the fields the collector reads are declared; libbpf relocates every
 * access against the running kernel's BTF (/sys/kernel/btf/dlm, or vmlinux when
 * dlm is built in), so nothing here depends on the build host's kernel. Field
 * offsets and sizes below are irrelevant; names and kinds are what count.
 *
 * Checked against the BTF of Debian's dlm.ko 6.1.0-56 and 6.12.117. Where the
 * kernels differ, a flavor (`struct x___flavor`) declares the other spelling and
 * the code branches on bpf_core_field_exists().
 */
#ifndef DLM_RV_TYPES_H
#define DLM_RV_TYPES_H

#define __co_re __attribute__((preserve_access_index))

struct list_head {
	struct list_head *next, *prev;
} __co_re;

struct dlm_ls {
	__u32 ls_global_id;
	struct list_head ls_nodes_gone;	/* struct dlm_member.list: nodes removed, until recovery ends */
	/* namespace kernel: ls->ls_dn->our_node->id is read by byte offsets that user
	 * space resolves from BTF (the series' type names are not known here) */
} __co_re;

struct dlm_member {
	struct list_head list;
	int nodeid;
} __co_re;

struct dlm_rsb {
	struct dlm_ls *res_ls;
	int res_length;
	char res_name[65];		/* DLM_RESNAME_MAXLEN + 1 */
} __co_re;

struct dlm_lksb {
	int sb_status;
	__u32 sb_lkid;
	char sb_flags;
} __co_re;

struct dlm_lkb {
	struct dlm_rsb *lkb_resource;
	__u32 lkb_id;
	__u32 lkb_exflags;
	__s8 lkb_rqmode;
	__s8 lkb_grmode;
	struct list_head lkb_ownqueue;	/* on dlm_user_proc.locks / .unlocking */
	struct dlm_lksb *lkb_lksb;
} __co_re;

/* <= 6.3: internal flags in one u32; DLM_IFL_USER = 0x1 */
struct dlm_lkb___v61 {
	__u32 lkb_flags;
} __co_re;

/* >= 6.4: lkb_dflags bit DLM_DFL_USER_BIT (0) marks a user-space (libdlm) lock */
struct dlm_lkb___v64 {
	unsigned long lkb_dflags;
} __co_re;

struct dlm_user_proc {
	struct list_head locks;
	struct list_head unlocking;
} __co_re;

/* namespace kernel: the validated request's arguments */
struct dlm_args {
	__u32 flags;
	int mode;
} __co_re;

struct dlm_header {
	__u32 h_version;
	union {
		__u32 h_lockspace;
		__u32 h_seq;
	} u;
	__u32 h_nodeid;
	__u16 h_length;
	__u8 h_cmd;
} __co_re;

/* fields are __le32 in the kernel; the collector only runs on little-endian hosts */
struct dlm_message {
	struct dlm_header m_header;
	__u32 m_type;
	__u32 m_lkid;
	__u32 m_remid;
	__u32 m_exflags;
	__u32 m_sbflags;
	__s32 m_status;
	__s32 m_grmode;
	__s32 m_rqmode;
	__s32 m_result;
	char m_extra[0];
} __co_re;

#endif /* DLM_RV_TYPES_H */
