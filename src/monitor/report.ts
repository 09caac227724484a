// The JSON a DLM developer reads (monitor.md section 7; schema in docs/report-schema.md).
// Built only when an incident is found or the run ends: allocation is fine here.
import { LKF, SBF, W, RECORD_WORDS, SRC_NAMES, KIND_NAMES, Kind, MSG_TYPE_NAMES, RF_HISTORY, flagNames } from '../record/layout';
import { decodeGfs2, toHex, toPrintable, type Gfs2Glock } from '../record/names';
import { INCOMPAT, MI_NAMES } from './modes';
import type { LockView } from './monitor';

export const REPORT_SCHEMA = 'dlm-rv/report@1';

export interface ProbeInfo { name: string; attached: boolean; reason?: string }

export interface RunContext {
  collector: string;
  version: string;
  /** live, simulate, replay */
  source: string;
  kernel: string | null;
  host: string | null;
  /** namespace / mainline / mixed, when known */
  flavor: string | null;
  probes: ProbeInfo[];
  inputs?: string[];
  simulation?: Record<string, unknown>;
  /** replay of text traces: one entry per text file (src/io/trace-text.ts, docs/formats.md "Text traces") */
  trace_text?: {
    file: string;
    format: 'tracefs' | 'trace-cmd' | 'perf-script';
    node_id: number;
    /** sends (h_nodeid of its dlm_send_message), recv-dst, option, default (1) */
    node_id_from: string;
    kernel_guess: string | null;
    /** false: no sched_process_exit lines, a user-space owner's exit (its locks released silently) cannot be seen */
    owner_exit_visible: boolean;
    exits_seen: number;
    synthetic_unlocks: number;
    unswapped: number;
    reordered: number;
    locks: { user: number; kernel: number; undecided: number };
    losses: { markers: number; events: number };
    events: Record<string, number>;
    skipped: Record<string, number>;
  }[];
}

export interface LockReport {
  node: number;
  lkb: number;
  pid: number;
  granted: string;
  pending: null | { op: 'request' | 'convert'; mode: string; flags: string };
  release: null | 'unlock' | 'cancel' | 'leaving';
  effective: string;
  /** the monitor does not use this lock as evidence (mode unknown, or seen mid-flight after a loss) */
  evidence: boolean;
  /** first seen mid-flight: its request was before the monitor started (or before a loss) */
  mid_flight: boolean;
  since_seq: number;
}

export interface HistoryEntry {
  seq: number;
  ts: number;
  node: number;
  lkb?: number;
  event: string;
  src: string;
  mode?: string;
  flags?: string;
  status?: number;
  sbflags?: string;
  error?: number;
  count?: number;
  /** node_removed: the node a survivor's recovery removed from the lockspace */
  removed?: number;
  pid?: number;
  history_only?: boolean;
  msg?: { type: string; from: number; to: number; seq: number; remid: number };
}

export interface Violation {
  id: number;
  seq: number;
  ts: number;
  ls: number;
  res: string;
  res_hex: string;
  res_len: number;
  gfs2: Gfs2Glock | null;
  trigger: {
    node: number; lkb: number; pid: number; event: string; src: string;
    status?: number; mode?: string; sbflags?: string;
    old_effective: string; new_effective: string;
  };
  locks: LockReport[];
  pairs: { a: { node: number; lkb: number; effective: string }; b: { node: number; lkb: number; effective: string } }[];
  why: string;
  history: HistoryEntry[];
  history_complete: boolean;
  losses_so_far: number;
  /** "violation", or "unconfirmed-owner-exit": the verdict rests on a user-space lock whose owner's exit the input cannot show */
  class: 'violation' | 'unconfirmed-owner-exit';
  unconfirmed?: { reason: string; cure: string; locks: { node: number; lkb: number; pid: number }[] };
  context: RunContext;
}

interface RecRef { u8: Uint8Array; u32: Uint32Array; i32: Int32Array; index: number }

export interface ViolationInput {
  id: number;
  seq: number;
  record: RecRef;
  ls: number;
  name: Uint8Array;
  trigger: LockView;
  oldEffective: number;
  newEffective: number;
  locks: LockView[];
  history: { records: (RecRef & { seq: number })[]; complete: boolean };
  historyN: number;
  losses: number;
  context: RunContext;
}

const PEND = [null, 'request', 'convert'] as const;
const REL = [null, 'unlock', 'cancel', 'leaving'] as const;

function lockReport(l: LockView): LockReport {
  return {
    node: l.node,
    lkb: l.lkb,
    pid: l.pid,
    granted: MI_NAMES[l.gr],
    pending: l.pend === 0 ? null : { op: PEND[l.pend]!, mode: MI_NAMES[l.rq], flags: flagNames(l.flags, LKF) },
    release: REL[l.rel],
    effective: MI_NAMES[l.eff],
    evidence: l.contrib !== 0 || (l.eff <= 1 && !l.uncertain),
    mid_flight: l.midFlight,
    since_seq: l.sinceSeq,
  };
}

/** One history entry from a raw record. */
export function historyEntry(ref: RecRef, seq: number): HistoryEntry {
  const { u32, i32, index } = ref;
  const b = index * RECORD_WORDS;
  const klm = u32[b + W.kindLenMode];
  const kind = klm & 0xffff;
  const mode = klm >> 24;
  const tail = u32[b + W.tail];
  const e: HistoryEntry = {
    seq,
    ts: u32[b + W.tsHi] * 4294967296 + u32[b + W.tsLo],
    node: u32[b + W.node],
    event: KIND_NAMES[kind] ?? `kind(${kind})`,
    src: SRC_NAMES[(tail >>> 16) & 0xff] ?? 'unknown',
  };
  const pid = u32[b + W.pid];
  if (pid) e.pid = pid;
  if ((tail >>> 24) & RF_HISTORY) e.history_only = true;
  const modeName = mode >= -1 && mode <= 5 ? MI_NAMES[mode + 1] : undefined;
  switch (kind) {
    case Kind.REQUEST:
      e.lkb = u32[b + W.lkb]; e.mode = modeName; e.flags = flagNames(u32[b + W.flags], LKF); break;
    case Kind.RELEASE:
      e.lkb = u32[b + W.lkb]; e.flags = flagNames(u32[b + W.flags], LKF); break;
    case Kind.REQUEST_FAILED: case Kind.RELEASE_FAILED:
      e.lkb = u32[b + W.lkb]; e.error = i32[b + W.error]; break;
    case Kind.COMPLETION:
      e.lkb = u32[b + W.lkb]; e.status = i32[b + W.status];
      if (modeName) e.mode = modeName;
      e.sbflags = flagNames(u32[b + W.sbFlags], SBF); break;
    case Kind.BLOCKING:
      e.lkb = u32[b + W.lkb]; e.mode = modeName; break;
    case Kind.NODE_LEAVE_FAILED:
      e.error = i32[b + W.error]; break;
    case Kind.LOSS:
      e.count = u32[b + W.aux]; break;
    case Kind.NODE_REMOVED:
      e.removed = u32[b + W.aux]; break;
    case Kind.MSG_SEND: case Kind.MSG_RECV:
      e.lkb = u32[b + W.lkb];
      e.msg = { type: MSG_TYPE_NAMES[tail & 0xff] ?? String(tail & 0xff), from: u32[b + W.msgSrc], to: u32[b + W.msgDst], seq: u32[b + W.msgSeq], remid: u32[b + W.aux] };
      break;
    default: break;
  }
  return e;
}

export function buildViolation(v: ViolationInput): Violation {
  const locks = v.locks.map(lockReport);
  const t = v.trigger;
  const pairs: Violation['pairs'] = [];
  // the pairs the trigger broke, then any other pair still standing on the resource
  const ev = (l: LockView) => (l.contrib !== 0 ? l.contrib : -1);
  for (let i = 0; i < v.locks.length; i++) {
    for (let j = i + 1; j < v.locks.length; j++) {
      const a = v.locks[i], bb = v.locks[j];
      const ma = ev(a), mb = ev(bb);
      if (ma < 0 || mb < 0 || (INCOMPAT[ma] & (1 << mb)) === 0) continue;
      const aIsT = a.node === t.node && a.lkb === t.lkb && a.ls === t.ls;
      const bIsT = bb.node === t.node && bb.lkb === t.lkb && bb.ls === t.ls;
      const [x, y] = bIsT && !aIsT ? [bb, a] : [a, bb];
      pairs.push({ a: { node: x.node, lkb: x.lkb, effective: MI_NAMES[x.eff] }, b: { node: y.node, lkb: y.lkb, effective: MI_NAMES[y.eff] } });
    }
  }
  pairs.sort((p, q) => Number(q.a.node === t.node && q.a.lkb === t.lkb) - Number(p.a.node === t.node && p.a.lkb === t.lkb));
  const rec = historyEntry(v.record, v.seq);
  const name = v.name;
  const res = toPrintable(name);
  const why = pairs.length
    ? pairs.map((p) => `${p.a.effective} (node ${p.a.node} lkb ${hex(p.a.lkb)}) vs ${p.b.effective} (node ${p.b.node} lkb ${hex(p.b.lkb)})`).join('; ') + ' are incompatible'
    : 'incompatible effective modes';
  return {
    id: v.id,
    seq: v.seq,
    ts: rec.ts,
    ls: v.ls,
    res,
    res_hex: toHex(name),
    res_len: name.length,
    gfs2: decodeGfs2(name) ?? null,
    trigger: {
      node: t.node, lkb: t.lkb, pid: t.pid, event: rec.event, src: rec.src,
      ...(rec.status !== undefined ? { status: rec.status } : {}),
      ...(rec.mode !== undefined ? { mode: rec.mode } : {}),
      ...(rec.sbflags !== undefined ? { sbflags: rec.sbflags } : {}),
      old_effective: MI_NAMES[v.oldEffective], new_effective: MI_NAMES[v.newEffective],
    },
    locks,
    pairs,
    why,
    history: v.history.records.map((r) => historyEntry(r, r.seq)),
    history_complete: v.history.complete,
    losses_so_far: v.losses,
    class: 'violation',
    context: v.context,
  };
}

function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16);
}

/** One line for stderr, the printk reactor. */
export function violationLine(v: Violation): string {
  const where = v.gfs2 ? `${v.gfs2.type_name} ${v.gfs2.number}` : JSON.stringify(v.res);
  const head = v.class === 'violation' ? 'VIOLATION' : 'UNCONFIRMED (a user-space owner may have exited)';
  return `dlm-rv: ${head} #${v.id} at seq ${v.seq} ts ${v.ts}: ls ${v.ls} res ${where} (${v.res_hex}): ${v.why}; trigger ${v.trigger.event} node ${v.trigger.node} lkb ${hex(v.trigger.lkb)} ${v.trigger.old_effective}->${v.trigger.new_effective}`;
}

export interface Summary {
  records: number;
  events: Record<string, number>;
  history_only_events: number;
  events_on_unknown_locks: number;
  lkb_id_reuses: number;
  /** now: tracked at the end, `leaving` of them on a node that left its lockspace (gone, unless the leave failed) */
  locks: { peak: number; now: number; leaving: number };
  resources: { peak: number; now: number };
  violations: number;
  unconfirmed: number;
  open_incidents: number;
  losses: { events_dropped: number; resets: number };
  duration: { trace_ns: number; first_ts: number; last_ts: number; wall_ms: number };
  stopped_early: boolean;
  probes: ProbeInfo[];
}

export interface Report {
  schema: typeof REPORT_SCHEMA;
  context: RunContext;
  violations: Violation[];
  /** incidents that rest on a user-space lock whose owner's exit the input cannot show */
  unconfirmed: Violation[];
  summary: Summary;
}

export function buildReport(context: RunContext, violations: Violation[], summary: Summary, unconfirmed: Violation[] = []): Report {
  return { schema: REPORT_SCHEMA, context, violations, unconfirmed, summary };
}
