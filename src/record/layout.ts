// Mirror of bpf/dlm_rv.h. test/unit/layout.test.ts compiles the header and
// checks every offset here against offsetof(), so the two cannot drift apart.

export const RECORD_VERSION = 1;
export const RECORD_SIZE = 128;
export const RECORD_WORDS = RECORD_SIZE / 4;
export const NAME_MAX = 64;

/** Byte offsets of struct dlm_rv_record fields. */
export const OFF = {
  ts_ns: 0,
  kind: 8,
  name_len: 10,
  mode: 11,
  node: 12,
  ls_id: 16,
  lkb_id: 20,
  flags: 24,
  status: 28,
  error: 32,
  sb_flags: 36,
  pid: 40,
  aux: 44,
  msg_src: 48,
  msg_dst: 52,
  msg_seq: 56,
  msg_type: 60,
  grmode: 61,
  src: 62,
  rflags: 63,
  name: 64,
} as const;

/** 32-bit word indexes, for reading records through Uint32Array/Int32Array views. */
export const W = {
  tsLo: 0,
  tsHi: 1,
  kindLenMode: 2, // kind (u16) | name_len << 16 | mode << 24
  node: 3,
  ls: 4,
  lkb: 5,
  flags: 6,
  status: 7,
  error: 8,
  sbFlags: 9,
  pid: 10,
  aux: 11,
  msgSrc: 12,
  msgDst: 13,
  msgSeq: 14,
  tail: 15, // msg_type | grmode << 8 | src << 16 | rflags << 24
  name: 16,
} as const;

export const enum Kind {
  REQUEST = 1,
  REQUEST_FAILED = 2,
  RELEASE = 3,
  RELEASE_FAILED = 4,
  COMPLETION = 5,
  BLOCKING = 6,
  NODE_LEAVES_LS = 7,
  NODE_LEAVE_FAILED = 8,
  LOSS = 9,
  MSG_SEND = 10,
  MSG_RECV = 11,
  NODE_REMOVED = 12,
  MAX = 13,
}

export const KIND_NAMES: readonly string[] = [
  'none', 'request', 'request_failed', 'release', 'release_failed', 'completion',
  'blocking', 'node_leaves_ls', 'node_leave_failed', 'loss', 'msg_send', 'msg_recv', 'node_removed',
];

export const enum Src {
  NONE = 0, SIM = 1, LOCK_START = 2, LOCK_END = 3, UNLOCK_START = 4, UNLOCK_END = 5,
  LOCK_VALIDATED = 6, UNLOCK_VALIDATED = 7, ADD_CB = 8, AST = 9, BAST = 10,
  RELEASE_LS = 11, RELEASE_LS_RET = 12, CLEAR_PROC_LOCKS = 13, SEND_MESSAGE = 14,
  RECV_MESSAGE = 15, PROCESS_EXIT = 16, RECOVER_PURGE = 17, MAX = 18,
}

export const SRC_NAMES: readonly string[] = [
  'event-file', 'simulator', 'dlm_lock_start', 'dlm_lock_end', 'dlm_unlock_start', 'dlm_unlock_end',
  'dlm_lock_validated', 'dlm_unlock_validated', 'dlm_add_cb', 'dlm_ast', 'dlm_bast',
  'dlm_release_lockspace', 'dlm_release_lockspace(ret)', 'dlm_clear_proc_locks', 'dlm_send_message',
  'dlm_recv_message', 'sched_process_exit', 'dlm_recover_purge',
];

/** rflags bits */
export const RF_HISTORY = 0x01;
export const RF_USER = 0x02;
export const RF_UNSWAPPED = 0x04;
export const RF_SYNTH = 0x08;

/** DLM modes as the kernel numbers them. */
export const MODE_NONE = -2;
export const IV = -1, NL = 0, CR = 1, CW = 2, PR = 3, PW = 4, EX = 5;
export const MODE_NAMES: readonly string[] = ['IV', 'NL', 'CR', 'CW', 'PR', 'PW', 'EX'];

export function modeName(m: number): string {
  if (m === MODE_NONE) return 'none';
  return MODE_NAMES[m + 1] ?? `mode(${m})`;
}

export function modeFromName(s: string): number | undefined {
  const i = MODE_NAMES.indexOf(s);
  return i < 0 ? undefined : i - 1;
}

/** Lock flags (DLM_LKF_*), kernel.md section 4. */
export const LKF = {
  NOQUEUE: 0x1, CANCEL: 0x2, CONVERT: 0x4, VALBLK: 0x8, QUECVT: 0x10, IVVALBLK: 0x20,
  CONVDEADLK: 0x40, PERSISTENT: 0x80, NODLCKWT: 0x100, NODLCKBLK: 0x200, EXPEDITE: 0x400,
  NOQUEUEBAST: 0x800, HEADQUE: 0x1000, NOORDER: 0x2000, ORPHAN: 0x4000, ALTPR: 0x8000,
  ALTCW: 0x10000, FORCEUNLOCK: 0x20000, TIMEOUT: 0x40000,
} as const;

/** sb_flags (DLM_SBF_*) */
export const SBF = { DEMOTED: 0x1, VALNOTVALID: 0x2, ALTMODE: 0x4 } as const;

/** Completion statuses. */
export const STATUS = { GRANTED: 0, EUNLOCK: -65538, ECANCEL: -65537, EAGAIN: -11, EDEADLK: -35 } as const;

/** DLM message types (m_type). */
export const MSG_TYPE_NAMES: readonly string[] = [
  '0', 'REQUEST', 'CONVERT', 'UNLOCK', 'CANCEL', 'REQUEST_REPLY', 'CONVERT_REPLY', 'UNLOCK_REPLY',
  'CANCEL_REPLY', 'GRANT', 'BAST', 'LOOKUP', 'REMOVE', 'LOOKUP_REPLY', 'PURGE',
];

export function flagNames(flags: number, table: Record<string, number>): string {
  const out: string[] = [];
  let rest = flags >>> 0;
  for (const [k, v] of Object.entries(table)) if (rest & v) { out.push(k); rest &= ~v; }
  if (rest) out.push('0x' + rest.toString(16));
  return out.join('|');
}
