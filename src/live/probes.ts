// Which BPF programs to load on this kernel, decided from what its BTF says (BtfFacts):
// tracepoint prototypes, function prototypes, struct members. One build of
// bpf/dlm_rv.bpf.c carries every spelling of every hook; this picks the ones whose
// argument lists match and turns the rest off (bpf_program__set_autoload(prog, false)).
// Pure function of the facts, so it is unit-tested for every kernel of kernel.md
// section 1 without that kernel (test/bpf/probes.test.ts).
import type { BtfFacts } from '../native';

/** Mirror of native/probes.h (enum dlm_rv_probe order). */
export const PROBES = [
  { id: 0, prog: 'lock_start', hook: 'raw_tp/dlm_lock_start' },
  { id: 1, prog: 'lock_start_old', hook: 'raw_tp/dlm_lock_start' },
  { id: 2, prog: 'lock_end', hook: 'raw_tp/dlm_lock_end' },
  { id: 3, prog: 'lock_end_old', hook: 'raw_tp/dlm_lock_end' },
  { id: 4, prog: 'unlock_start', hook: 'raw_tp/dlm_unlock_start' },
  { id: 5, prog: 'unlock_end', hook: 'raw_tp/dlm_unlock_end' },
  { id: 6, prog: 'add_cb', hook: 'fentry/dlm_add_cb' },
  { id: 7, prog: 'ast_ptr', hook: 'raw_tp/dlm_ast' },
  { id: 8, prog: 'ast_scalar', hook: 'raw_tp/dlm_ast' },
  { id: 9, prog: 'ast_ns', hook: 'raw_tp/dlm_ast' },
  { id: 10, prog: 'bast_ptr', hook: 'raw_tp/dlm_bast' },
  { id: 11, prog: 'bast_scalar', hook: 'raw_tp/dlm_bast' },
  { id: 12, prog: 'lock_validated', hook: 'raw_tp/dlm_lock_validated' },
  { id: 13, prog: 'unlock_validated', hook: 'raw_tp/dlm_unlock_validated' },
  { id: 14, prog: 'release_ls_tp', hook: 'raw_tp/dlm_release_lockspace' },
  { id: 15, prog: 'release_ls', hook: 'fentry/dlm_release_lockspace' },
  { id: 16, prog: 'release_ls_ret', hook: 'fexit/dlm_release_lockspace' },
  { id: 17, prog: 'clear_proc', hook: 'fentry/dlm_clear_proc_locks' },
  { id: 18, prog: 'send_msg', hook: 'raw_tp/dlm_send_message' },
  { id: 19, prog: 'send_msg_61', hook: 'raw_tp/dlm_send_message' },
  { id: 20, prog: 'recv_msg', hook: 'raw_tp/dlm_recv_message' },
  { id: 21, prog: 'recv_msg_61', hook: 'raw_tp/dlm_recv_message' },
  { id: 22, prog: 'recover_purge', hook: 'fentry/dlm_recover_purge' },
  { id: 23, prog: 'test_feed', hook: 'raw_tp/test_feed' },
] as const;

export type ProgName = (typeof PROBES)[number]['prog'];

/** What a probe contributes (monitor.md section 3). */
export type ProbeRole =
  | 'request' | 'request-failed' | 'release' | 'release-failed'
  | 'completion' | 'completion-history' | 'blocking' | 'blocking-history'
  | 'leave' | 'leave-failed' | 'owner-exit' | 'message' | 'node-removed' | 'test';

export interface PlannedProbe {
  prog: ProgName;
  hook: string;
  load: boolean;
  role: ProbeRole;
  /** the prototype this program expects, for the report */
  expects: string;
  /** why it is off (or a note when on) */
  reason?: string;
}

export type Flavor = 'namespace' | 'mainline-6.10' | 'mainline-6.1' | 'mainline-5.16' | 'none';

export interface ProbePlan {
  flavor: Flavor;
  /** namespace kernel: node ids come from ls->ls_dn->our_node->id, not from user space */
  nsNodeIds: boolean;
  /** ... at these byte offsets */
  nsNodeOffsets?: number[];
  probes: PlannedProbe[];
  /** things the operator should know (missing sources, unknown node id, ...) */
  notes: string[];
}

const isPtr = (t: string | undefined): boolean => t !== undefined && /\*\s*$/.test(t);
const isPtrTo = (t: string | undefined, s: string): boolean => t !== undefined && new RegExp(`struct ${s}\\s*\\*\\s*$`).test(t);
const isScalar = (t: string | undefined): boolean => t !== undefined && !isPtr(t);

/** Fields each program reads through CO-RE (struct.member), checked against the BTF. */
const NEEDS: Record<string, string[]> = {
  lkb: ['dlm_lkb.lkb_id', 'dlm_lkb.lkb_grmode', 'dlm_lkb.lkb_resource', 'dlm_rsb.res_name', 'dlm_rsb.res_length'],
  ls: ['dlm_ls.ls_global_id'],
  addcb: ['dlm_rsb.res_ls', 'dlm_lkb.lkb_exflags'],
  lksb: ['dlm_lkb.lkb_lksb', 'dlm_lksb.sb_status', 'dlm_lksb.sb_flags'],
  args: ['dlm_args.mode', 'dlm_args.flags'],
  proc: ['dlm_user_proc.locks', 'dlm_user_proc.unlocking', 'dlm_lkb.lkb_ownqueue', 'dlm_lkb.lkb_exflags'],
  member: ['dlm_ls.ls_nodes_gone', 'dlm_member.list', 'dlm_member.nodeid'],
  msg: ['dlm_message.m_header', 'dlm_message.m_type', 'dlm_message.m_lkid', 'dlm_header.h_nodeid', 'dlm_header.h_length'],
};

function missing(f: BtfFacts, groups: string[]): string[] {
  const out: string[] = [];
  for (const g of groups) {
    for (const sf of NEEDS[g]) {
      const [s, m] = sf.split('.');
      if (!f.structs[s] || !(m in f.structs[s])) out.push(sf);
    }
  }
  return out;
}

export function flavorOf(f: BtfFacts): Flavor {
  const tp = f.tracepoints;
  if (tp.dlm_lock_validated || (tp.dlm_ast && tp.dlm_ast.length === 8)) return 'namespace';
  if (tp.dlm_ast && isScalar(tp.dlm_ast[0])) return 'mainline-6.10';
  if (tp.dlm_lock_start && tp.dlm_lock_start.length === 4) return 'mainline-5.16';
  if (tp.dlm_lock_start || tp.dlm_ast || f.functions.dlm_add_cb) return 'mainline-6.1';
  return 'none';
}

/**
 * The probe set for a kernel described by its BTF facts. Every program of PROBES
 * except test_feed appears once, with load true/false and a reason when false.
 */
export function planProbes(f: BtfFacts): ProbePlan {
  const tp = f.tracepoints, fn = f.functions;
  const flavor = flavorOf(f);
  const ns = flavor === 'namespace';
  const nsNodeMissing = ns && !f.nsNode ? ['a readable ls->ls_dn->our_node->id (dlm_ls.ls_dn, .our_node, .id)'] : [];
  const nsNodeOk = ns && !!f.nsNode;
  const notes: string[] = [];
  const out = new Map<ProgName, PlannedProbe>();
  const hookOf = (p: ProgName) => PROBES.find((x) => x.prog === p)!.hook;

  // decide one program: `shape` says whether the prototype matches; `groups` the fields it reads
  const put = (prog: ProgName, role: ProbeRole, expects: string, present: boolean, shape: boolean, groups: string[], off?: string): boolean => {
    let reason: string | undefined;
    if (!present) reason = `not in this kernel's BTF`;
    else if (!shape) reason = `prototype differs (this program expects ${expects})`;
    else if (off) reason = off;
    else {
      const m = missing(f, groups);
      if (m.length) reason = `BTF lacks ${m.join(', ')}`;
    }
    out.set(prog, { prog, hook: hookOf(prog), load: reason === undefined, role, expects, reason });
    return reason === undefined;
  };
  const nsOff = ns && !nsNodeOk ? `namespace kernel: cannot read node ids (BTF lacks ${nsNodeMissing.join(', ')})` : undefined;

  // ---- requests and releases
  const ls = tp.dlm_lock_start, le = tp.dlm_lock_end, us = tp.dlm_unlock_start, ue = tp.dlm_unlock_end;
  const lv = tp.dlm_lock_validated, uv = tp.dlm_unlock_validated;
  const vReq = put('lock_validated', 'request', '(struct dlm_ls *, struct dlm_lkb *, struct dlm_args *, const char *res_name, size_t res_length)',
    !!lv, !!lv && lv.length >= 5 && isPtrTo(lv[0], 'dlm_ls') && isPtrTo(lv[1], 'dlm_lkb') && isPtr(lv[2]) && isPtr(lv[3]),
    ['ls', 'lkb', 'args'], nsOff);
  const vRel = put('unlock_validated', 'release', '(struct dlm_ls *, struct dlm_lkb *, struct dlm_args *)',
    !!uv, !!uv && uv.length >= 3 && isPtrTo(uv[0], 'dlm_ls') && isPtrTo(uv[1], 'dlm_lkb') && isPtr(uv[2]),
    ['ls', 'lkb', 'args'], nsOff);
  const reqOff = vReq ? 'namespace kernel: dlm_lock_validated is the REQUEST source' : ns ? nsOff : undefined;
  const relOff = vRel ? 'namespace kernel: dlm_unlock_validated is the RELEASE source' : ns ? nsOff : undefined;
  const lsNew = !!ls && ls.length === 6 && isPtrTo(ls[0], 'dlm_ls') && isPtrTo(ls[1], 'dlm_lkb') && isPtr(ls[2]) && isScalar(ls[4]);
  const lsOld = !!ls && ls.length === 4 && isPtrTo(ls[0], 'dlm_ls') && isPtrTo(ls[1], 'dlm_lkb') && isScalar(ls[2]);
  put('lock_start', 'request', '(ls, lkb, name, namelen, mode, flags)', !!ls, lsNew, ['ls', 'lkb'], reqOff);
  put('lock_start_old', 'request', '(ls, lkb, mode, flags)', !!ls, lsOld, ['ls', 'lkb'], reqOff);
  const leNew = !!le && le.length >= 7 && isPtrTo(le[0], 'dlm_ls') && isPtrTo(le[1], 'dlm_lkb') && isPtr(le[2]) && isScalar(le[6]);
  const leOld = !!le && le.length >= 5 && le.length <= 6 && isPtrTo(le[0], 'dlm_ls') && isPtrTo(le[1], 'dlm_lkb') && isScalar(le[2]) && isScalar(le[4]);
  put('lock_end', 'request-failed', '(ls, lkb, name, namelen, mode, flags, error[, kernel_lock])', !!le, leNew, ['ls', 'lkb'], reqOff);
  put('lock_end_old', 'request-failed', '(ls, lkb, mode, flags, error[, kernel_lock])', !!le, leOld, ['ls', 'lkb'], reqOff);
  put('unlock_start', 'release', '(ls, lkb, flags)', !!us,
    !!us && us.length === 3 && isPtrTo(us[0], 'dlm_ls') && isPtrTo(us[1], 'dlm_lkb') && isScalar(us[2]), ['ls', 'lkb'], relOff);
  put('unlock_end', 'release-failed', '(ls, lkb, flags, error)', !!ue,
    !!ue && ue.length === 4 && isPtrTo(ue[0], 'dlm_ls') && isPtrTo(ue[1], 'dlm_lkb') && isScalar(ue[3]), ['ls', 'lkb'], relOff);

  // ---- completions: dlm_add_cb is THE source; dlm_ast/dlm_bast history, or fallback
  const ac = fn.dlm_add_cb;
  const addcb = put('add_cb', 'completion', 'dlm_add_cb(struct dlm_lkb *, u32 flags, int mode, int status, u32 sbflags)',
    !!ac, !!ac && ac.params.length === 5 && isPtrTo(ac.params[0].replace(/\s+\w+$/, ''), 'dlm_lkb'),
    ['lkb', 'ls', 'addcb'], nsOff);
  const cRole: ProbeRole = addcb ? 'completion-history' : 'completion';
  const bRole: ProbeRole = addcb ? 'blocking-history' : 'blocking';
  const ast = tp.dlm_ast, bast = tp.dlm_bast;
  put('ast_ptr', cRole, '(struct dlm_ls *, struct dlm_lkb *)', !!ast,
    !!ast && ast.length === 2 && isPtrTo(ast[0], 'dlm_ls') && isPtrTo(ast[1], 'dlm_lkb'), ['ls', 'lkb', 'lksb'], ns ? nsOff : undefined);
  put('ast_scalar', cRole, '(u32 ls_id, u32 lkb_id, u8 sb_flags, int sb_status, const char *res_name, size_t res_length)', !!ast,
    !!ast && ast.length === 6 && isScalar(ast[0]) && isScalar(ast[3]) && isPtr(ast[4]), [],
    ns ? 'namespace kernel: this dlm_ast has no node id' : undefined);
  put('ast_ns', cRole, '(our_nodeid, ls_id, lkb_id, sb_flags, sb_status, res_name, res_length, mode)', !!ast,
    !!ast && ast.length === 8 && isScalar(ast[0]) && isScalar(ast[4]) && isPtr(ast[5]) && isScalar(ast[7]), []);
  put('bast_ptr', bRole, '(struct dlm_ls *, struct dlm_lkb *, int mode)', !!bast,
    !!bast && bast.length === 3 && isPtrTo(bast[0], 'dlm_ls') && isPtrTo(bast[1], 'dlm_lkb'), ['ls', 'lkb'], ns ? nsOff : undefined);
  put('bast_scalar', bRole, '(u32 ls_id, u32 lkb_id, int mode, const char *res_name, size_t res_length)', !!bast,
    !!bast && bast.length === 5 && isScalar(bast[0]) && isScalar(bast[2]) && isPtr(bast[3]), [],
    ns ? 'namespace kernel: this dlm_bast has no node id (BLOCKING comes from dlm_add_cb)' : undefined);

  // ---- leaving a lockspace
  const rt = tp.dlm_release_lockspace, rf = fn.dlm_release_lockspace;
  const relTp = put('release_ls_tp', 'leave', '(unsigned int our_nodeid, u32 ls_id)', !!rt,
    !!rt && rt.length === 2 && isScalar(rt[0]) && isScalar(rt[1]), []);
  put('release_ls', 'leave', 'dlm_release_lockspace(void *lockspace, int force)', !!rf,
    !!rf && rf.params.length >= 2 && isPtr(rf.params[0].replace(/\s+\w+$/, '')), ['ls'],
    relTp ? 'namespace kernel: the dlm_release_lockspace tracepoint gives the node id' : ns ? nsOff : undefined);
  put('release_ls_ret', 'leave-failed', 'int dlm_release_lockspace(...)', !!rf,
    !!rf && rf.params.length >= 1 && /^(int|long|s32|__s32|int32_t)$/.test(rf.ret), []);

  // ---- an owner's exit, messages
  const cp = fn.dlm_clear_proc_locks;
  put('clear_proc', 'owner-exit', 'dlm_clear_proc_locks(struct dlm_ls *, struct dlm_user_proc *)', !!cp,
    !!cp && cp.params.length === 2 && isPtrTo(cp.params[0].replace(/\s+\w+$/, ''), 'dlm_ls') &&
      isPtrTo(cp.params[1].replace(/\s+\w+$/, ''), 'dlm_user_proc'),
    ['ls', 'lkb', 'proc'], ns ? nsOff : undefined);
  const sm = tp.dlm_send_message, rm = tp.dlm_recv_message;
  put('send_msg', 'message', '(u32 dst, u32 h_seq, const struct dlm_message *, const void *name, int namelen)', !!sm,
    !!sm && sm.length === 5 && isScalar(sm[0]) && isScalar(sm[1]) && isPtrTo(sm[2], 'dlm_message'), ['msg']);
  put('send_msg_61', 'message', '(u32 seq, const struct dlm_message *, const void *name, int namelen)', !!sm,
    !!sm && sm.length === 4 && isScalar(sm[0]) && isPtrTo(sm[1], 'dlm_message'), ['msg']);
  put('recv_msg', 'message', '(u32 dst, u32 h_seq, const struct dlm_message *)', !!rm,
    !!rm && rm.length === 3 && isScalar(rm[0]) && isPtrTo(rm[2], 'dlm_message'), ['msg']);
  put('recv_msg_61', 'message', '(u32 seq, const struct dlm_message *)', !!rm,
    !!rm && rm.length === 2 && isScalar(rm[0]) && isPtrTo(rm[1], 'dlm_message'), ['msg']);

  // ---- a survivor's recovery removes departed nodes (their locks purged)
  const rp = fn.dlm_recover_purge;
  put('recover_purge', 'node-removed', 'dlm_recover_purge(struct dlm_ls *[, const struct list_head *root_list])', !!rp,
    !!rp && rp.params.length >= 1 && rp.params.length <= 2 && isPtrTo(rp.params[0].replace(/\s+\w+$/, ''), 'dlm_ls'),
    ['ls', 'member'], ns ? nsOff : undefined);

  const probes = PROBES.filter((p) => p.prog !== 'test_feed').map((p) => out.get(p.prog)!);
  const on = (r: ProbeRole) => probes.some((p) => p.load && p.role === r);
  if (!on('request')) notes.push('no REQUEST source: locks are tracked from their first completion only');
  if (!on('completion')) notes.push('no COMPLETION source: grants are not seen, nothing can be checked');
  if (!on('release')) notes.push('no RELEASE source');
  if (!on('owner-exit') && flavor !== 'none') notes.push('dlm_clear_proc_locks not hooked: a user-space owner that exits leaves phantom locks');
  if (!on('node-removed') && flavor !== 'none') notes.push('dlm_recover_purge not hooked: in a cluster-wide merge, a node that fails keeps its locks until its stream is declared departed');
  if (ns && !nsNodeOk) notes.push(`namespace kernel without readable node ids: ${nsNodeMissing.join(', ')}`);
  return { flavor, nsNodeIds: nsNodeOk, ...(nsNodeOk ? { nsNodeOffsets: f.nsNode!.offsets } : {}), probes, notes };
}

/** Parse a tp_btf-signatures file ("typedef void (*btf_trace_X)(void *, A, B);" lines). */
export function parseTpSignatures(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of text.split('\n')) {
    const m = /typedef void \(\*btf_trace_(\w+)\)\((.*)\);/.exec(line);
    if (!m) continue;
    const params = m[2].split(',').map((s) => s.trim()).filter(Boolean);
    out[m[1]] = params.slice(1); // drop the leading void *
  }
  return out;
}
