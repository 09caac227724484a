// What the VM tests read out of a guest run: the capture's records counted per kind the way
// dlmload and tracefs count them, dlmload's expectations, tracefs counts, the probe lines the
// collector printed, and the probe set each kernel must get.
import { existsSync, readFileSync } from 'node:fs';
import { readCapture, type CaptureMeta } from '../../src/io/capture';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord, recKind, recTs } from '../../src/record/decode';
import { KIND_NAMES, Kind, LKF, RECORD_SIZE, RECORD_WORDS, RF_HISTORY, RF_USER, SRC_NAMES, STATUS, Src, W } from '../../src/record/layout';

/** "KEY N" / "expect KEY N" counts, keys in tracecount.awk's vocabulary. */
export type Counts = Record<string, number>;

export const STATUSES = [0, -11, -35, -65537, -65538] as const;

export interface CaptureCounts {
  meta: CaptureMeta;
  records: number;
  /** every record per kind name (what the report's summary.events counts) */
  byKind: Counts;
  /**
   * The events the workload caused, one per DLM operation or callback: records that are not
   * history-only and not owner-exit bookkeeping. Keys: requests, request_failed, releases,
   * releases_cancel, release_failed, completion_<status>, blockings, node_leaves_ls,
   * node_leave_failed, loss, msg_send, msg_recv.
   */
  main: Counts;
  /** history-only records (rflags & HISTORY): completion_<status> from dlm_ast, blockings from dlm_bast */
  history: Counts;
  /** history records from any other hook (must be none) */
  historyOther: number;
  /** the hooks the main completions and blockings came from */
  mainSrc: Counts;
  /**
   * REQUEST_FAILED records of kernel locks with -EAGAIN / -EDEADLK (key request_failed_raw in
   * `main`, not request_failed): the raw_tp sees dlm_lock_end's error before dlm_lock() turns it
   * into 0, while tracefs prints it already zeroed (TP_fast_assign does the same); the refusal
   * itself is the COMPLETION with that status just before (docs/design.md, "Kernel facts").
   * `rawUnmatched` counts those not preceded by their lock's COMPLETION with the same status.
   */
  rawUnmatched: number;
  /** locks of exited owners: COMPLETION -EUNLOCK synthesized at dlm_clear_proc_locks, and the dlm_add_cb -EUNLOCK that follows for each */
  ownerExit: { synthesized: number; addCbUnlock: number };
}

/**
 * Count a capture the way dlmload states its expectations.
 *
 * dlmload counts what its workers did and read: one request per dlm_ls_lock() (request_failed when
 * the write was refused), one release per dlm_ls_unlock() (cancels included, release_failed when
 * refused and the kernel still traced it), one completion per callback a worker read, by status,
 * one blocking per blocking callback read. dlm-rv sees each of those once as a main record (from
 * dlm_lock_start/_end, dlm_unlock_start/_end and dlm_add_cb), and, on kernels where dlm_add_cb is
 * hooked, again as a history-only record from dlm_ast/dlm_bast (rflags & HISTORY). Those are
 * counted apart (`history`): they must match the same expectations, since the tracepoints fire
 * exactly when a worker gets the callback.
 *
 * What dlmload cannot count: the locks a SIGKILLed worker held or waited for
 * (`vanished_on_kill`, 3 per round). The kernel frees them in dlm_clear_proc_locks(), whose
 * fentry hook makes one synthesized COMPLETION -EUNLOCK per lock (src dlm_clear_proc_locks, rflags
 * SYNTH), and then calls dlm_add_cb(-EUNLOCK) for each as it unlocks them (the callback is never
 * delivered: no dlm_ast, the owner is gone). Both are counted in `ownerExit` and left out of
 * `main`: a dlm_add_cb COMPLETION -EUNLOCK is owner-exit bookkeeping when its lock (node, ls,
 * lkb) was cleared by a dlm_clear_proc_locks record and not requested anew since. So, exactly:
 *   main.completion_<st> = expect completion_<st>, history.completion_<st> = the same,
 *   ownerExit.synthesized = ownerExit.addCbUnlock = vanished_on_kill.
 */
export function countCapture(path: string): CaptureCounts {
  const cap = readCapture(path);
  if (cap.warnings.length) throw new Error(`${path}: ${cap.warnings.join('; ')}`);
  const rb = cap.records;
  const byKind: Counts = {}, main: Counts = {}, history: Counts = {}, mainSrc: Counts = {};
  for (const k of KIND_NAMES.slice(1)) byKind[k] = 0;
  const inc = (c: Counts, k: string, n = 1) => { c[k] = (c[k] ?? 0) + n; };
  let historyOther = 0, synthesized = 0, addCbUnlock = 0, rawUnmatched = 0;
  const cleared = new Set<string>();
  const lastStatus = new Map<string, number>(); // the last COMPLETION status of a lock since its last REQUEST
  for (let i = 0; i < rb.count; i++) {
    const d = decodeRecord(rb.u8, rb.u32, rb.i32, i);
    inc(byKind, KIND_NAMES[d.kind] ?? `kind(${d.kind})`);
    const key = `${d.node}:${d.ls}:${d.lkb}`;
    if (d.rflags & RF_HISTORY) {
      if (d.kind === Kind.COMPLETION && d.src === Src.AST) inc(history, `completion_${d.status}`);
      else if (d.kind === Kind.BLOCKING && d.src === Src.BAST) inc(history, 'blockings');
      else historyOther++;
      continue;
    }
    switch (d.kind) {
      case Kind.REQUEST:
        inc(main, 'requests');
        if (!(d.flags & LKF.CONVERT)) cleared.delete(key);
        lastStatus.delete(key);
        break;
      case Kind.REQUEST_FAILED:
        if ((d.error === STATUS.EAGAIN || d.error === STATUS.EDEADLK) && !(d.rflags & RF_USER)) {
          inc(main, 'request_failed_raw');
          if (lastStatus.get(key) !== d.error) rawUnmatched++;
        } else inc(main, 'request_failed');
        break;
      case Kind.RELEASE:
        inc(main, 'releases');
        if (d.flags & LKF.CANCEL) inc(main, 'releases_cancel');
        break;
      case Kind.RELEASE_FAILED: inc(main, 'release_failed'); break;
      case Kind.COMPLETION:
        if (d.src === Src.CLEAR_PROC_LOCKS) { synthesized++; cleared.add(key); break; }
        if (d.status === STATUS.EUNLOCK && cleared.delete(key)) { addCbUnlock++; break; }
        lastStatus.set(key, d.status);
        inc(main, `completion_${d.status}`);
        inc(mainSrc, SRC_NAMES[d.src] ?? String(d.src));
        break;
      case Kind.BLOCKING:
        inc(main, 'blockings');
        inc(mainSrc, SRC_NAMES[d.src] ?? String(d.src));
        break;
      case Kind.NODE_REMOVED:
        inc(main, 'node_removed');
        inc(main, `node_removed_${d.aux}`);
        break;
      default:
        inc(main, KIND_NAMES[d.kind] ?? `kind(${d.kind})`);
    }
  }
  return { meta: cap.header.meta, records: rb.count, byKind, main, history, historyOther, mainSrc, rawUnmatched, ownerExit: { synthesized, addCbUnlock } };
}

/** "KEY N" lines (tracecount.awk output), or "expect KEY N" lines (dlmload) with prefix "expect". */
export function readCounts(path: string, prefix?: string): Counts {
  const out: Counts = {};
  if (!existsSync(path)) throw new Error(`missing ${path}`);
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (prefix) { if (f[0] === prefix && f.length === 3) out[f[1]] = Number(f[2]); } else if (f.length === 2 && /^-?\d+$/.test(f[1])) out[f[0]] = Number(f[1]);
  }
  return out;
}

export function get(c: Counts, k: string): number {
  return c[k] ?? 0;
}

// ---------------------------------------------------------------------------- probe sets
export interface ProbeLine { hook: string; attached: boolean; role: string; reason?: string }

/** The probe lines the collector prints at start ("  attached HOOK (role)" / "  skipped  HOOK (role): reason"). */
export function parseProbeLines(log: string): { header: string; probes: ProbeLine[] } {
  const lines = log.split('\n');
  const header = lines.find((l) => l.startsWith('dlm-rv ') && l.includes('probe set')) ?? '';
  const probes: ProbeLine[] = [];
  for (const l of lines) {
    const m = /^ {2}(attached|skipped ) (\S+) \(([^)]+)\)(?:: (.*))?$/.exec(l);
    if (m) probes.push({ hook: m[2], attached: m[1] === 'attached', role: m[3], ...(m[4] ? { reason: m[4] } : {}) });
  }
  return { header, probes };
}

type Want = 'attached' | 'proto' | 'nobtf';
/** One row per program, in the collector's order (src/live/probes.ts PROBES, test_feed left out). */
const ROWS: { prog: string; hook: string; role: string; k61: Want; k612: Want; expects?: string }[] = [
  { prog: 'lock_start', hook: 'raw_tp/dlm_lock_start', role: 'request', k61: 'attached', k612: 'attached' },
  { prog: 'lock_start_old', hook: 'raw_tp/dlm_lock_start', role: 'request', k61: 'proto', k612: 'proto', expects: '(ls, lkb, mode, flags)' },
  { prog: 'lock_end', hook: 'raw_tp/dlm_lock_end', role: 'request-failed', k61: 'attached', k612: 'attached' },
  { prog: 'lock_end_old', hook: 'raw_tp/dlm_lock_end', role: 'request-failed', k61: 'proto', k612: 'proto', expects: '(ls, lkb, mode, flags, error' },
  { prog: 'unlock_start', hook: 'raw_tp/dlm_unlock_start', role: 'release', k61: 'attached', k612: 'attached' },
  { prog: 'unlock_end', hook: 'raw_tp/dlm_unlock_end', role: 'release-failed', k61: 'attached', k612: 'attached' },
  { prog: 'add_cb', hook: 'fentry/dlm_add_cb', role: 'completion', k61: 'attached', k612: 'attached' },
  { prog: 'ast_ptr', hook: 'raw_tp/dlm_ast', role: 'completion-history', k61: 'attached', k612: 'proto', expects: '(struct dlm_ls *, struct dlm_lkb *)' },
  { prog: 'ast_scalar', hook: 'raw_tp/dlm_ast', role: 'completion-history', k61: 'proto', k612: 'attached', expects: '(u32 ls_id, u32 lkb_id, u8 sb_flags' },
  { prog: 'ast_ns', hook: 'raw_tp/dlm_ast', role: 'completion-history', k61: 'proto', k612: 'proto', expects: '(our_nodeid, ls_id, lkb_id' },
  { prog: 'bast_ptr', hook: 'raw_tp/dlm_bast', role: 'blocking-history', k61: 'attached', k612: 'proto', expects: '(struct dlm_ls *, struct dlm_lkb *, int mode)' },
  { prog: 'bast_scalar', hook: 'raw_tp/dlm_bast', role: 'blocking-history', k61: 'proto', k612: 'attached', expects: '(u32 ls_id, u32 lkb_id, int mode' },
  { prog: 'lock_validated', hook: 'raw_tp/dlm_lock_validated', role: 'request', k61: 'nobtf', k612: 'nobtf' },
  { prog: 'unlock_validated', hook: 'raw_tp/dlm_unlock_validated', role: 'release', k61: 'nobtf', k612: 'nobtf' },
  { prog: 'release_ls_tp', hook: 'raw_tp/dlm_release_lockspace', role: 'leave', k61: 'nobtf', k612: 'nobtf' },
  { prog: 'release_ls', hook: 'fentry/dlm_release_lockspace', role: 'leave', k61: 'attached', k612: 'attached' },
  { prog: 'release_ls_ret', hook: 'fexit/dlm_release_lockspace', role: 'leave-failed', k61: 'attached', k612: 'attached' },
  { prog: 'clear_proc', hook: 'fentry/dlm_clear_proc_locks', role: 'owner-exit', k61: 'attached', k612: 'attached' },
  { prog: 'send_msg', hook: 'raw_tp/dlm_send_message', role: 'message', k61: 'proto', k612: 'attached', expects: '(u32 dst, u32 h_seq' },
  { prog: 'send_msg_61', hook: 'raw_tp/dlm_send_message', role: 'message', k61: 'attached', k612: 'proto', expects: '(u32 seq, const struct dlm_message *, const void *name' },
  { prog: 'recv_msg', hook: 'raw_tp/dlm_recv_message', role: 'message', k61: 'proto', k612: 'attached', expects: '(u32 dst, u32 h_seq' },
  { prog: 'recv_msg_61', hook: 'raw_tp/dlm_recv_message', role: 'message', k61: 'attached', k612: 'proto', expects: '(u32 seq, const struct dlm_message *)' },
  { prog: 'recover_purge', hook: 'fentry/dlm_recover_purge', role: 'node-removed', k61: 'attached', k612: 'attached' },
];

export interface ExpectedProbe { prog: string; hook: string; role: string; attached: boolean; reason?: RegExp }

/**
 * The probe set Debian's kernels must get (docs/live.md, "Probe sets per kernel"): on 6.1 the
 * pointer variants of dlm_ast/dlm_bast and the seq-only message tracepoints, on 6.12 the scalar
 * dlm_ast/dlm_bast (>= 6.10) and the (dst, h_seq) message tracepoints; the other variants are
 * skipped because their prototype differs, the namespace kernel's tracepoints because this
 * kernel's BTF has none; dlm_add_cb is the completion source on both, dlm_ast/dlm_bast history.
 */
export function expectedProbes(series: '6.1' | '6.12'): { flavor: string; probes: ExpectedProbe[] } {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    flavor: series === '6.1' ? 'mainline-6.1' : 'mainline-6.10',
    probes: ROWS.map((r) => {
      const w = series === '6.1' ? r.k61 : r.k612;
      return {
        prog: r.prog, hook: r.hook, role: r.role, attached: w === 'attached',
        ...(w === 'proto' ? { reason: new RegExp(`^prototype differs \\(this program expects ${esc(r.expects ?? '')}`) }
          : w === 'nobtf' ? { reason: /^not in this kernel's BTF$/ } : {}),
      };
    }),
  };
}

/** One line: the programs attached and the reasons of the skipped ones. */
export function probeSummary(series: '6.1' | '6.12'): string {
  const e = expectedProbes(series).probes;
  const on = e.filter((p) => p.attached).map((p) => p.prog);
  const proto = e.filter((p) => !p.attached && /prototype/.test(String(p.reason))).map((p) => p.prog);
  const nobtf = e.filter((p) => !p.attached && /BTF/.test(String(p.reason))).map((p) => p.prog);
  return `${on.length} attached (${on.join(' ')}); skipped, prototype differs: ${proto.join(' ')}; skipped, not in BTF: ${nobtf.join(' ')}`;
}

// ---------------------------------------------------------------------------- two nodes, one order
export interface Alignment {
  /** ns to add to the second stream's timestamps (the middle of [lo, hi]) */
  offset: number;
  /** every offset in [lo, hi] puts each message's receive after its send, both ways */
  lo: number;
  hi: number;
  /** message pairs matched: first -> second, second -> first */
  pairs: [number, number];
}

/**
 * The two guests' clocks (CLOCK_BOOTTIME of each kernel) differ by their boot times. Every DLM
 * message is recorded twice, MSG_SEND on its sender and MSG_RECV on its receiver, with the same
 * (sender node, per-peer sequence): a receive happens after its send, so each pair bounds the
 * offset from one side. With both directions the bounds close in to an interval (here well
 * under a millisecond wide); any offset inside it orders every message edge, hence every
 * cross-node cause before its effect (a grant on one node always follows, through a message,
 * the release or demotion on the other).
 */
export function messageAlignment(a: RecordBuffer, b: RecordBuffer): Alignment {
  const msgs = (rb: RecordBuffer) => {
    const send = new Map<string, number>(), recv = new Map<string, number>();
    for (let i = 0; i < rb.count; i++) {
      const k = recKind(rb.u32, i);
      if (k !== Kind.MSG_SEND && k !== Kind.MSG_RECV) continue;
      const d = decodeRecord(rb.u8, rb.u32, rb.i32, i);
      const m = k === Kind.MSG_SEND ? send : recv, key = `${d.msgSrc}:${d.msgSeq}`;
      if (!m.has(key)) m.set(key, d.ts); // the first: a retransmission is not the cause
    }
    return { send, recv };
  };
  const A = msgs(a), B = msgs(b);
  let lo = -Infinity, hi = Infinity, n1 = 0, n2 = 0;
  for (const [k, t] of A.send) { const r = B.recv.get(k); if (r !== undefined) { lo = Math.max(lo, t - r); n1++; } }
  for (const [k, t] of B.send) { const r = A.recv.get(k); if (r !== undefined) { hi = Math.min(hi, r - t); n2++; } }
  return { offset: Math.round((lo + hi) / 2), lo, hi, pairs: [n1, n2] };
}

/** One stream: b's timestamps shifted by `offset`, merged with a's by time (each stream's own order kept; ties: a first). */
export function mergeShifted(a: RecordBuffer, b: RecordBuffer, offset: number): RecordBuffer {
  const out = new RecordBuffer(a.count + b.count);
  const ts = (rb: RecordBuffer, i: number) => recTs(rb.u32, i);
  let i = 0, j = 0;
  while (i < a.count || j < b.count) {
    const takeA = j >= b.count || (i < a.count && ts(a, i) <= ts(b, j) + offset);
    if (takeA) { out.appendRaw(a.u8.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE)); i++; continue; }
    const k = out.count;
    out.appendRaw(b.u8.subarray(j * RECORD_SIZE, (j + 1) * RECORD_SIZE));
    const t = ts(b, j) + offset;
    if (t < 0) throw new Error('mergeShifted: a shifted timestamp is negative');
    out.u32[k * RECORD_WORDS + W.tsLo] = t % 4294967296;
    out.u32[k * RECORD_WORDS + W.tsHi] = Math.floor(t / 4294967296);
    j++;
  }
  return out;
}
