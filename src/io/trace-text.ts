// Text traces: `cat /sys/kernel/tracing/trace` (and trace_pipe), `trace-cmd report` and
// `perf script` output of the dlm tracepoints, for the 6.1 and 6.12 event formats.
// parseTraceText turns one node's trace into the normalized records of monitor.md
// section 3, as the live collector would have recorded them (docs/formats.md, "Text traces").
//
// Three passes: the first reads every line (all or nothing: the first bad dlm line throws
// InputError(file, line, reason)) and sorts the kept events stably by timestamp; the second
// follows each lock's lifetime to tell user-space (libdlm) locks from kernel ones; the
// third writes the records, undoing the 6.12 dlm_ast field swap and turning an owner's exit
// (sched_process_exit) into the unlocks the kernel does without any dlm event.
import { textLines } from './lines';
import { InputError } from '../errors';
import { RecordBuffer, type RecordFields } from '../record/buffer';
import {
  Kind, LKF, MODE_NAMES, MODE_NONE, MSG_TYPE_NAMES, NAME_MAX, RECORD_WORDS, RF_SYNTH, RF_UNSWAPPED, RF_USER, SBF,
  STATUS, Src, W,
} from '../record/layout';

export type TraceTextFormat = 'tracefs' | 'trace-cmd' | 'perf-script';

/** How the file's DLM node id was decided. */
export type NodeIdSource = 'sends' | 'recv-dst' | 'option' | 'default';

export interface TraceTextOptions {
  /** node id to use when the trace has no message events to tell (default 1) */
  nodeId?: number;
}

export interface TraceTextInfo {
  format: TraceTextFormat;
  /** what the event formats and values say about the kernel, when they say anything */
  kernelGuess?: string;
  nodeId: number;
  nodeIdFrom: NodeIdSource;
  /** lines per dlm tracepoint (all of them, also those that give no record: dlm_lock_end error=0, dlm_send, ...) */
  events: Record<string, number>;
  /** lines of other events, by name ("sched_switch", or "system:name" when perf names another system) */
  skipped: Record<string, number>;
  /** dlm tracepoints this parser does not know (counted in `events`, no records) */
  unknownDlmEvents: string[];
  /** dlm_lock_end / dlm_unlock_end lines with error=0: counted, no record */
  endsWithoutError: { lock: number; unlock: number };
  /** dlm_ast lines whose sb_flags/sb_status swap was recognised and undone (RF_UNSWAPPED) */
  unswapped: number;
  /** the trace has sched_process_exit lines, so user-space owners' exits are visible */
  ownerExitVisible: boolean;
  exitsSeen: number;
  /** COMPLETION(-DLM_EUNLOCK) records made for locks held by an exiting owner (RF_SYNTH|RF_USER) */
  syntheticUnlocks: number;
  /** event lines whose timestamp is earlier than a line before them (per-CPU buffers); sorted back */
  reordered: number;
  /** lock lifetimes seen, by kind; `undecided` had no dlm_ast/dlm_bast to tell (their kind is a fallback guess) */
  locks: { user: number; kernel: number; undecided: number };
  /** events the tracer says it lost ("CPU:N [LOST M EVENTS]", "[M EVENTS DROPPED]", entries-in-buffer < entries-written) */
  losses: { markers: number; events: number };
  /** timestamps are raw counter values (trace clock counter / x86-tsc), not seconds */
  counterClock: boolean;
  lines: number;
  records: number;
  warnings: string[];
}

export interface TraceTextResult {
  records: RecordBuffer;
  info: TraceTextInfo;
}

// ---------------------------------------------------------------------------------------
// line grammar

// tracefs trace / trace_pipe and trace-cmd report:
//   "  comm-PID [ (TGID) ] [CPU] [FLAGS]  SECS.FRAC: [system:]event: fields"
const FTRACE_LINE = /^\s*(.*?)-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[(\d+)\]\s+(?:(\S+)\s+)?(\d+)(?:\.(\d+))?:\s+(?:(\w+):)?(\w+):(.*)$/;
// perf script: "  comm PID[/TID] [CPU] SECS.FRAC: system:event: fields"
const PERF_LINE = /^\s*(.*?\S)\s+(\d+)(?:\/(\d+))?\s+\[(\d+)\]\s+(\d+)(?:\.(\d+))?:\s+(?:(\w+):)?(\w+):(.*)$/;
const TRACE_CMD_HEADER = /^(?:cpus=\d+|version = \d+|CPU \d+ is empty)$/;
// "CPU:3 [LOST 12 EVENTS]" (tracefs), "CPU:3 [12 EVENTS DROPPED]" (trace-cmd), without counts too
const LOST_LINE = /^CPU:\s*(\d+)\s+\[(?:LOST\s+(\d+)\s+EVENTS|LOST EVENTS|(\d+)\s+EVENTS DROPPED|EVENTS DROPPED)\]$/;
const ENTRIES_HEADER = /^#\s*entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/;
const DLM_MENTION = /\bdlm_\w+:/;
const KV = /(\w+)=(\S*)/g;

/** Kernel threads: a user-space lock's callbacks never run in one of these. */
const KTHREAD_COMM = /^(?:kworker\/|ksoftirqd\/|swapper\/|<idle>$|kthreadd$|migration\/|irq\/|rcu_|dlm_recoverd$|dlm_scand$|dlm_recv$|dlm_send$|gfs2_quotad$|gfs2_logd$|glock_workqueue$)/;

const FIX_FORMAT = 'is it a dlm event of kernel 6.1 or 6.12 as the kernel printed it? check that the line was not cut or edited';

/** The dlm tracepoints that become records. */
const LOCK_EVENTS = new Set(['dlm_lock_start', 'dlm_lock_end', 'dlm_unlock_start', 'dlm_unlock_end', 'dlm_ast', 'dlm_bast']);
const MSG_EVENTS = new Set(['dlm_send_message', 'dlm_recv_message']);
/** Known dlm tracepoints that carry no lock state (counted, skipped). */
const OTHER_DLM_EVENTS = new Set(['dlm_send', 'dlm_recv', 'dlm_send_rcom', 'dlm_recv_rcom', 'dlm_plock_read', 'dlm_plock_write']);

const SBF_MASK = SBF.DEMOTED | SBF.VALNOTVALID | SBF.ALTMODE;
const MODE_TABLE: Readonly<Record<string, number>> = Object.fromEntries(MODE_NAMES.map((n, i) => [n, i - 1]));

/** A problem with one line; parseTraceText adds the file and line number. */
class LineError extends Error {}

function fail(reason: string): never {
  throw new LineError(reason);
}

function show(v: string): string {
  return v.length > 40 ? JSON.stringify(v.slice(0, 37) + '...') : JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------
// field readers (ev = the event name, for the messages)

type Fields = Map<string, string>;

function fieldsOf(rest: string): Fields {
  const m = new Map<string, string>();
  KV.lastIndex = 0;
  for (let x = KV.exec(rest); x; x = KV.exec(rest)) if (!m.has(x[1])) m.set(x[1], x[2]);
  return m;
}

function raw(kv: Fields, ev: string, k: string): string {
  const v = kv.get(k);
  if (v === undefined) fail(`${ev}: missing field "${k}"; ${FIX_FORMAT}`);
  return v;
}

/** %u */
function dec32(kv: Fields, ev: string, k: string): number {
  const v = raw(kv, ev, k);
  if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffffffff) fail(`${ev}: field "${k}" must be an unsigned decimal 32-bit number (%u), got ${show(v)}; ${FIX_FORMAT}`);
  return Number(v);
}

/** %x */
function hex32(kv: Fields, ev: string, k: string): number {
  const v = raw(kv, ev, k);
  if (!/^[0-9a-fA-F]{1,8}$/.test(v)) {
    fail(`${ev}: field "${k}" must be a hexadecimal 32-bit number (the kernel prints it with %x), got ${show(v)}; ${FIX_FORMAT}`);
  }
  return parseInt(v, 16);
}

/** %d */
function s32(kv: Fields, ev: string, k: string): number {
  const v = raw(kv, ev, k);
  const n = /^-?\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!(n >= -0x80000000 && n <= 0x7fffffff)) fail(`${ev}: field "${k}" must be a signed decimal 32-bit number (%d), got ${show(v)}; ${FIX_FORMAT}`);
  return n;
}

/** __print_symbolic: a name, or the kernel's 0x... for a value with no name. */
function symbolic(kv: Fields, ev: string, k: string, table: Readonly<Record<string, number>>, what: string): number {
  const v = raw(kv, ev, k);
  if (Object.prototype.hasOwnProperty.call(table, v)) return table[v];
  if (/^0x[0-9a-fA-F]{1,16}$/.test(v)) {
    const n = BigInt.asIntN(32, BigInt(v));
    return Number(n);
  }
  return fail(`${ev}: field "${k}" must be ${what} (${Object.keys(table).join(' ')}) or a 0x number, got ${show(v)}; ${FIX_FORMAT}`);
}

function lockMode(kv: Fields, ev: string, k: string): number {
  const m = symbolic(kv, ev, k, MODE_TABLE, 'a DLM mode');
  if (m < -1 || m > 5) fail(`${ev}: field "${k}" is ${kv.get(k)}, not a DLM mode (${MODE_NAMES.join(' ')}); ${FIX_FORMAT}`);
  return m;
}

function msgMode(kv: Fields, ev: string, k: string): number {
  const m = symbolic(kv, ev, k, MODE_TABLE, 'a DLM mode');
  if (m < -128 || m > 127) fail(`${ev}: field "${k}" is ${kv.get(k)}, not a DLM mode (${MODE_NAMES.join(' ')}); ${FIX_FORMAT}`);
  return m;
}

/** __print_flags: names joined by "|", unknown bits as a trailing 0x... part; "" = 0. */
function flagSet(kv: Fields, ev: string, k: string, table: Readonly<Record<string, number>>): number {
  const v = raw(kv, ev, k);
  if (v === '') return 0;
  let out = 0;
  for (const p of v.split('|')) {
    if (Object.prototype.hasOwnProperty.call(table, p)) out |= table[p];
    else if (/^0x[0-9a-fA-F]{1,8}$/.test(p)) out |= parseInt(p, 16);
    else fail(`${ev}: field "${k}" has unknown flag "${p}" in ${show(v)}; known: ${Object.keys(table).join(' ')} (and 0x bits); ${FIX_FORMAT}`);
  }
  return out >>> 0;
}

/** __print_hex_str bytes ("616c70", or "0x616c70" where the format prints a 0x prefix). */
function hexBytes(kv: Fields, ev: string, k: string, prefixed: boolean, maxLen = NAME_MAX): Uint8Array {
  let v = raw(kv, ev, k);
  if (prefixed) {
    if (!v.startsWith('0x')) fail(`${ev}: field "${k}" must be hex bytes after "0x", got ${show(v)}; ${FIX_FORMAT}`);
    v = v.slice(2);
  }
  if (v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) fail(`${ev}: field "${k}" must be hex digit pairs, got ${show(v)}; ${FIX_FORMAT}`);
  const n = v.length / 2;
  if (n > maxLen) fail(`${ev}: field "${k}" is ${n} bytes, a resource name is at most ${maxLen} (DLM_RESNAME_MAXLEN); ${FIX_FORMAT}`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = parseInt(v.substr(i * 2, 2), 16);
  return out;
}

const MSG_TYPES: Readonly<Record<string, number>> = Object.fromEntries(MSG_TYPE_NAMES.slice(1).map((n, i) => [n, i + 1]));
const MSG_REQUEST = 1, MSG_REMOVE = 12, MSG_LOOKUP = 11;

/**
 * The status a swapped dlm_ast line's sb_flags byte stands for: the DLM's own statuses
 * first (0xfe -DLM_EUNLOCK, 0xff -DLM_ECANCEL), else the sign-extended byte (0xf5 -EAGAIN, 0xdd -EDEADLK).
 */
export function statusFromLowByte(b: number): number {
  b &= 0xff;
  if (b === 0xfe) return STATUS.EUNLOCK;
  if (b === 0xff) return STATUS.ECANCEL;
  return b >= 0x80 ? b - 0x100 : b;
}

// ---------------------------------------------------------------------------------------
// pass 1: lines -> items

const enum It { LOCK_START, LOCK_END, UNLOCK_START, UNLOCK_END, AST, BAST, SEND, RECV, EXIT, LOSS }

interface Item {
  t: It;
  line: number;
  order: number; // file order (sort tie-break)
  sec: number;
  ns: number;
  pid: number; // tgid when the trace shows it, else the TASK-PID column
  comm: string;
  ls: number;
  lkb: number;
  mode: number;
  flags: number;
  status: number;
  error: number;
  sbFlags: number;
  name?: Uint8Array;
  unswapped?: boolean;
  // messages
  msgSrc?: number;
  msgDst?: number;
  msgSeq?: number;
  msgType?: number;
  aux?: number;
  grmode?: number;
  // sched_process_exit: the exiting pid; LOSS: events lost
  num?: number;
  // pass 2
  inst?: number;
  candidates?: number[];
}

interface Inst {
  owner: number;
  ownerComm: string;
  ls: number;
  lkb: number;
  name?: Uint8Array;
  granted: boolean;
  alive: boolean;
  inOwner: number; // dlm_ast/dlm_bast lines run by the owner
  inKthread: number; // ... by a kernel thread
  inOther: number; // ... by another user task
  user: boolean;
  decided: boolean;
}

function isKthread(comm: string): boolean {
  return KTHREAD_COMM.test(comm);
}

function before(a: Item, b: Item): boolean {
  return a.sec !== b.sec ? a.sec < b.sec : a.ns !== b.ns ? a.ns < b.ns : a.order < b.order;
}

/**
 * Parse one node's text trace (tracefs, trace-cmd report or perf script) into records.
 * All or nothing: the first bad dlm event line throws InputError(fileName, line, reason).
 */
export function parseTraceText(text: string, fileName: string, opts: TraceTextOptions = {}): TraceTextResult {
  if (opts.nodeId !== undefined && !(Number.isInteger(opts.nodeId) && opts.nodeId >= 0 && opts.nodeId <= 0xffffffff)) {
    throw new InputError(fileName, undefined, `node id ${opts.nodeId} is not an unsigned 32-bit integer`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  else if (text.startsWith('\xef\xbb\xbf')) text = text.slice(3);

  const items: Item[] = [];
  const events: Record<string, number> = {};
  const skipped: Record<string, number> = {};
  const unknownDlm = new Set<string>();
  const warnings: string[] = [];
  let sawTracer = false, sawTraceCmd = false, perfLines = 0, ftraceLines = 0;
  let dlmLines = 0, exits = 0, unrecognized = 0, firstUnrecognized = 0, counterClock = false, fracClock = false;
  let swapSeen = 0, seqStyle = 0, hseqStyle = 0;
  let sendNode = -1, sendNodeLine = 0, recvDst = -1, recvDstLine = 0;
  const endsOk = { lock: 0, unlock: 0 };
  let entriesLost = 0;
  const firstPerCpu = new Map<number, Item>();
  let pendingLoss: { line: number; count: number } | undefined;
  const losses = { markers: 0, events: 0 };
  let lineNo = 0, order = 0;

  const lossItem = (line: number, count: number, at: Item | undefined): Item => ({
    t: It.LOSS, line, order: at ? at.order - 0.5 : order++, sec: at?.sec ?? 0, ns: at?.ns ?? 0, pid: 0, comm: '',
    ls: 0, lkb: 0, mode: MODE_NONE, flags: 0, status: 0, error: 0, sbFlags: 0, num: count,
  });

  for (const [no, line] of textLines(text)) {
    lineNo = no;
    const t = line.trim();
    if (t === '') continue;
    if (t.startsWith('#')) {
      if (/^#\s*tracer:/.test(t)) sawTracer = true;
      const m = ENTRIES_HEADER.exec(t);
      if (m && Number(m[2]) > Number(m[1])) entriesLost += Number(m[2]) - Number(m[1]);
     
      continue;
    }
    if (TRACE_CMD_HEADER.test(t)) { sawTraceCmd = true; continue; }
    const lost = LOST_LINE.exec(t);
    if (lost) {
      const n = Number(lost[2] ?? lost[3] ?? 0);
      losses.markers++;
      losses.events += n;
      // the lost events precede that CPU's next event, which is the next line
      pendingLoss = pendingLoss ? { line: pendingLoss.line, count: pendingLoss.count + n } : { line: lineNo, count: n };
     
      continue;
    }
    if (/PERF_RECORD_LOST/.test(t)) {
      const n = Number(/lost[:\s]+(\d+)/i.exec(t)?.[1] ?? 0);
      losses.markers++;
      losses.events += n;
      pendingLoss = pendingLoss ? { line: pendingLoss.line, count: pendingLoss.count + n } : { line: lineNo, count: n };
     
      continue;
    }

    // an event line: comm, pid, (tgid), cpu, seconds, fraction, system, event, fields
    let comm: string, tid: number, tgid: number | undefined, cpu: number, secS: string, frac: string | undefined;
    let system: string | undefined, ev: string, rest: string;
    const preferPerf = perfLines > ftraceLines;
    let m = preferPerf ? null : FTRACE_LINE.exec(line);
    let p = m ? null : PERF_LINE.exec(line);
    if (!m && !p && preferPerf) m = FTRACE_LINE.exec(line);
    if (m) {
      ftraceLines++;
      [, comm] = m;
      tid = Number(m[2]);
      tgid = m[3] !== undefined && /^\d+$/.test(m[3]) ? Number(m[3]) : undefined;
      cpu = Number(m[4]);
      secS = m[6]; frac = m[7]; system = m[8]; ev = m[9]; rest = m[10];
    } else if (p) {
      perfLines++;
      comm = p[1].trim();
      // perf prints "pid/tid" when asked for both, else the tid alone
      tid = Number(p[3] ?? p[2]);
      tgid = p[3] !== undefined ? Number(p[2]) : undefined;
      cpu = Number(p[4]);
      secS = p[5]; frac = p[6]; system = p[7]; ev = p[8]; rest = p[9];
    } else {
      if (DLM_MENTION.test(line)) {
        throw new InputError(fileName, lineNo,
          'a dlm event line whose columns cannot be read: expected "TASK-PID [CPU] [FLAGS] SECONDS.FRACTION: dlm_event: fields" ' +
          '(tracefs, trace-cmd report) or "COMM PID [CPU] SECONDS.FRACTION: dlm:dlm_event: fields" (perf script); ' +
          'check that the line was not cut or edited');
      }
      unrecognized++;
      if (!firstUnrecognized) firstUnrecognized = lineNo;
     
      continue;
    }
    const isDlm = system === undefined ? ev.startsWith('dlm_') : system === 'dlm';
    if (frac === undefined) counterClock = true; else fracClock = true;

    const item: Item = {
      t: It.LOSS, line: lineNo, order: order++, sec: Number(secS), ns: 0, pid: tgid ?? tid, comm,
      ls: 0, lkb: 0, mode: MODE_NONE, flags: 0, status: 0, error: 0, sbFlags: 0,
    };
    if (frac !== undefined) {
      if (frac.length > 9) {
        if (isDlm) throw new InputError(fileName, lineNo, `timestamp ${secS}.${frac} has more than 9 decimals (nanoseconds); ${FIX_FORMAT}`);
      } else item.ns = Number(frac) * 10 ** (9 - frac.length);
    }
    if (!Number.isSafeInteger(item.sec)) {
      if (isDlm) throw new InputError(fileName, lineNo, `timestamp ${secS} is too large; ${FIX_FORMAT}`);
    }
    if (!firstPerCpu.has(cpu)) firstPerCpu.set(cpu, item);
    if (pendingLoss) {
      items.push(lossItem(pendingLoss.line, pendingLoss.count, item));
      pendingLoss = undefined;
    }

    if (!isDlm) {
      if (ev === 'sched_process_exit' && (system === undefined || system === 'sched')) {
        const kv = fieldsOf(rest);
        const pidS = / pid=(\d+)/.exec(rest)?.[1] ?? kv.get('pid');
        if (pidS !== undefined && /^\d+$/.test(pidS)) {
          exits++;
          // group_dead=0 (kernels that print it): a thread ended, its process lives on
          if (kv.get('group_dead') === '0') { continue; }
          item.t = It.EXIT;
          item.num = Number(pidS);
          items.push(item);
         
          continue;
        }
      }
      const name = system !== undefined ? `${system}:${ev}` : ev;
      skipped[name] = (skipped[name] ?? 0) + 1;
     
      continue;
    }

    dlmLines++;
    events[ev] = (events[ev] ?? 0) + 1;
    if (!LOCK_EVENTS.has(ev) && !MSG_EVENTS.has(ev)) {
      if (!OTHER_DLM_EVENTS.has(ev)) unknownDlm.add(ev);
     
      continue;
    }
    try {
      const kv = fieldsOf(rest);
      if (LOCK_EVENTS.has(ev)) {
        item.ls = dec32(kv, ev, 'ls_id');
        item.lkb = hex32(kv, ev, 'lkb_id');
        switch (ev) {
          case 'dlm_lock_start':
            item.t = It.LOCK_START;
            item.mode = lockMode(kv, ev, 'mode');
            item.flags = flagSet(kv, ev, 'flags', LKF);
            break;
          case 'dlm_lock_end':
            item.t = It.LOCK_END;
            item.mode = lockMode(kv, ev, 'mode');
            item.flags = flagSet(kv, ev, 'flags', LKF);
            item.error = s32(kv, ev, 'error');
            break;
          case 'dlm_unlock_start':
            item.t = It.UNLOCK_START;
            item.flags = flagSet(kv, ev, 'flags', LKF);
            break;
          case 'dlm_unlock_end':
            item.t = It.UNLOCK_END;
            item.flags = flagSet(kv, ev, 'flags', LKF);
            item.error = s32(kv, ev, 'error');
            break;
          case 'dlm_ast': {
            item.t = It.AST;
            const fl = flagSet(kv, ev, 'sb_flags', SBF);
            const st = s32(kv, ev, 'sb_status');
            if ((fl & ~SBF_MASK) !== 0 || st > 0) {
              // 6.12 user-space callbacks (and 6.10-6.12 kernel ones before the fix): the status's
              // low byte printed as sb_flags, the real sb_flags as sb_status
              if (st < 0) {
                fail(`dlm_ast: sb_flags=${kv.get('sb_flags')} has bits outside DEMOTED|VALNOTVALID|ALTMODE, but sb_status=${st} is a status: ` +
                  `neither the kernel's layout nor its sb_flags/sb_status swap; ${FIX_FORMAT}`);
              }
              item.status = statusFromLowByte(fl);
              item.sbFlags = st;
              item.unswapped = true;
              swapSeen++;
            } else {
              item.status = st;
              item.sbFlags = fl;
            }
            break;
          }
          case 'dlm_bast':
            item.t = It.BAST;
            item.mode = lockMode(kv, ev, 'mode');
            break;
        }
        item.name = hexBytes(kv, ev, 'res_name', false);
        if (item.t === It.LOCK_END && item.error === 0) endsOk.lock++;
        if (item.t === It.UNLOCK_END && item.error === 0) endsOk.unlock++;
      } else {
        // dlm_send_message / dlm_recv_message
        const send = ev === 'dlm_send_message';
        item.t = send ? It.SEND : It.RECV;
        if (kv.has('h_seq')) { item.msgSeq = dec32(kv, ev, 'h_seq'); hseqStyle++; }
        else { item.msgSeq = dec32(kv, ev, 'seq'); seqStyle++; }
        item.msgDst = kv.has('dst') ? dec32(kv, ev, 'dst') : 0;
        item.ls = dec32(kv, ev, 'h_lockspace');
        item.msgSrc = dec32(kv, ev, 'h_nodeid');
        const type = symbolic(kv, ev, 'm_type', MSG_TYPES, 'a DLM message type');
        if (type < 0 || type > 255) fail(`${ev}: field "m_type" is ${kv.get('m_type')}, not a DLM message type; ${FIX_FORMAT}`);
        item.msgType = type;
        item.lkb = dec32(kv, ev, 'm_lkid');
        item.aux = dec32(kv, ev, 'm_remid');
        item.flags = flagSet(kv, ev, 'm_exflags', LKF);
        item.sbFlags = flagSet(kv, ev, 'm_sbflags', SBF);
        item.status = s32(kv, ev, 'm_status');
        item.grmode = msgMode(kv, ev, 'm_grmode');
        item.mode = msgMode(kv, ev, 'm_rqmode');
        item.error = s32(kv, ev, 'm_result');
        let name: Uint8Array | undefined;
        if (kv.has('res_name')) name = hexBytes(kv, ev, 'res_name', true);
        if ((!name || name.length === 0) && (type === MSG_REQUEST || type === MSG_LOOKUP || type === MSG_REMOVE)) {
          name = hexBytes(kv, ev, 'm_extra', true);
        }
        if (name && name.length) item.name = name;
        if (send) {
          if (sendNode < 0) { sendNode = item.msgSrc; sendNodeLine = lineNo; }
          else if (item.msgSrc !== sendNode) {
            fail(`dlm_send_message: h_nodeid=${item.msgSrc}, but line ${sendNodeLine} sent as node ${sendNode}: a text trace must be one node's ` +
              'trace (give each node\'s trace as its own file)');
          }
        } else if (item.msgDst) {
          if (recvDst < 0) { recvDst = item.msgDst; recvDstLine = lineNo; }
          else if (item.msgDst !== recvDst) {
            fail(`dlm_recv_message: dst=${item.msgDst}, but line ${recvDstLine} was received by node ${recvDst}: a text trace must be one node's ` +
              'trace (give each node\'s trace as its own file)');
          }
        }
      }
    } catch (e) {
      if (e instanceof LineError) throw new InputError(fileName, lineNo, e.message);
      throw e;
    }
    items.push(item);
   
  }

  if (dlmLines === 0) {
    throw new InputError(fileName, undefined,
      'no dlm events in this trace: enable them with echo 1 > /sys/kernel/tracing/events/dlm/enable ' +
      '(trace-cmd record -e dlm; perf record -a -e \'dlm:*\') and trace again');
  }
  if (counterClock && fracClock) {
    throw new InputError(fileName, undefined, 'some timestamps are seconds and some are raw counter values: one trace clock per file');
  }
  if (pendingLoss) items.push(lossItem(pendingLoss.line, pendingLoss.count, undefined));
  if (entriesLost > 0) {
    // overwritten oldest events: each CPU's buffer starts at a different time; only after the
    // latest first event is the picture whole again
    let latest: Item | undefined;
    for (const it of firstPerCpu.values()) if (!latest || before(latest, it)) latest = it;
    items.push(lossItem(0, entriesLost, latest));
    losses.markers++;
    losses.events += entriesLost;
  }

  // node id: the sender of its own messages
  let nodeId: number, nodeIdFrom: NodeIdSource;
  if (sendNode >= 0) { nodeId = sendNode; nodeIdFrom = 'sends'; }
  else if (recvDst > 0) { nodeId = recvDst; nodeIdFrom = 'recv-dst'; }
  else if (opts.nodeId !== undefined) { nodeId = opts.nodeId; nodeIdFrom = 'option'; }
  else { nodeId = 1; nodeIdFrom = 'default'; }
  if (sendNode >= 0 && recvDst > 0 && recvDst !== sendNode) {
    throw new InputError(fileName, recvDstLine, `dlm_recv_message: dst=${recvDst}, but this node sends as node ${sendNode} (line ${sendNodeLine}): ` +
      'a text trace must be one node\'s trace');
  }
  if (opts.nodeId !== undefined && nodeIdFrom !== 'option' && opts.nodeId !== nodeId) {
    throw new InputError(fileName, nodeIdFrom === 'sends' ? sendNodeLine : recvDstLine,
      `the trace's own messages say it is node ${nodeId}, but node ${opts.nodeId} was given for it`);
  }

  // stable sort by timestamp; count the lines that went back in time
  let reordered = 0;
  {
    let max: Item | undefined;
    for (const it of items) {
      if (it.t === It.LOSS) continue;
      if (max && (it.sec < max.sec || (it.sec === max.sec && it.ns < max.ns))) reordered++;
      else max = it;
    }
  }
  items.sort((a, b) => (a.sec - b.sec) || (a.ns - b.ns) || (a.order - b.order));

  // pass 2: lock lifetimes, keyed on (ls, lkb); a dlm_lock_start without CONVERT starts a new one
  const insts: Inst[] = [];
  const live = new Map<string, number>();
  const byOwner = new Map<number, Set<number>>();
  const newInst = (it: Item, owner: number, ownerComm: string): number => {
    const k = `${it.ls}:${it.lkb}`;
    const old = live.get(k);
    if (old !== undefined) endInst(old);
    const i = insts.length;
    insts.push({ owner, ownerComm, ls: it.ls, lkb: it.lkb, granted: false, alive: true, inOwner: 0, inKthread: 0, inOther: 0, user: false, decided: false });
    live.set(k, i);
    let s = byOwner.get(owner);
    if (!s) byOwner.set(owner, (s = new Set()));
    s.add(i);
    return i;
  };
  const endInst = (i: number): void => {
    const L = insts[i];
    if (!L.alive) return;
    L.alive = false;
    const k = `${L.ls}:${L.lkb}`;
    if (live.get(k) === i) live.delete(k);
    byOwner.get(L.owner)?.delete(i);
  };
  for (const it of items) {
    if (it.t === It.EXIT) {
      // the owner's locks still alive; whether they are user-space locks is decided below.
      // They leave byOwner (a reused pid must not unlock them twice) but stay live: a
      // kernel lock outlives the task that asked for it.
      const s = byOwner.get(it.num!);
      if (s && s.size) { it.candidates = [...s]; s.clear(); }
      continue;
    }
    if (it.t > It.BAST) continue;
    const k = `${it.ls}:${it.lkb}`;
    let i = live.get(k);
    if (it.t === It.LOCK_START && (i === undefined || !(it.flags & LKF.CONVERT))) {
      i = newInst(it, it.pid, it.comm);
    } else if (i === undefined) {
      // first seen mid-flight: its owner is whoever acts on it, unless that is a callback's worker
      const cb = it.t === It.AST || it.t === It.BAST;
      i = newInst(it, cb && isKthread(it.comm) ? 0 : it.pid, cb && isKthread(it.comm) ? '' : it.comm);
    }
    it.inst = i;
    const L = insts[i];
    if (it.name && it.name.length) L.name = it.name;
    switch (it.t) {
      case It.LOCK_END:
        if (it.error !== 0 && !L.granted) endInst(i);
        break;
      case It.AST:
      case It.BAST:
        if (isKthread(it.comm)) L.inKthread++;
        else if (it.pid === L.owner || (L.owner === 0 && !isKthread(it.comm))) L.inOwner++;
        else L.inOther++;
        if (it.t === It.AST) {
          if (it.status === 0) L.granted = true;
          else if (it.status === STATUS.EUNLOCK) endInst(i);
          else if (!L.granted) endInst(i); // a refused or cancelled new request: that lkb is gone
        }
        break;
    }
  }
  // decide: a lock is user-space when its callbacks ran in its owner, kernel when in a kernel thread
  const lsVotes = new Map<number, { user: number; kernel: number }>();
  const locks = { user: 0, kernel: 0, undecided: 0 };
  for (const L of insts) {
    if (L.inKthread) { L.user = false; L.decided = true; }
    else if (L.inOwner) { L.user = true; L.decided = true; }
    else if (L.inOther) { L.user = false; L.decided = true; }
    if (L.decided) {
      let v = lsVotes.get(L.ls);
      if (!v) lsVotes.set(L.ls, (v = { user: 0, kernel: 0 }));
      if (L.user) v.user++; else v.kernel++;
    }
  }
  for (const L of insts) {
    if (!L.decided) {
      // no callback at all (still waiting at the end, or its owner died first): like the other
      // locks of its lockspace when they agree, else by who asked for it
      const v = lsVotes.get(L.ls);
      if (v && v.user && !v.kernel) L.user = true;
      else if (v && v.kernel && !v.user) L.user = false;
      else L.user = L.owner !== 0 && !isKthread(L.ownerComm);
      locks.undecided++;
    }
    if (L.user) locks.user++; else locks.kernel++;
  }

  // pass 3: records
  const rb = new RecordBuffer(Math.max(16, items.length + 16));
  let syntheticUnlocks = 0, unswapped = 0;
  const put = (it: Item, f: RecordFields): void => {
    const i = rb.push(f);
    if (!Number.isSafeInteger(f.ts)) {
      // beyond 2^53 ns (about 104 days of uptime): write the exact value
      const ts = BigInt(it.sec) * 1000000000n + BigInt(it.ns);
      rb.u32[i * RECORD_WORDS + W.tsLo] = Number(ts & 0xffffffffn);
      rb.u32[i * RECORD_WORDS + W.tsHi] = Number((ts >> 32n) & 0xffffffffn);
    }
  };
  for (const it of items) {
    const ts = counterClock ? it.sec : it.sec * 1e9 + it.ns;
    if (it.t === It.LOSS) {
      put(it, { kind: Kind.LOSS, ts, node: nodeId, ls: 0, aux: it.num ?? 0 });
      continue;
    }
    if (it.t === It.EXIT) {
      for (const i of it.candidates ?? []) {
        const L = insts[i];
        if (!L.user) continue; // a kernel lock outlives the task that asked for it
        put(it, {
          kind: Kind.COMPLETION, ts, node: nodeId, ls: L.ls, lkb: L.lkb, status: STATUS.EUNLOCK, mode: MODE_NONE,
          pid: L.owner, src: Src.PROCESS_EXIT, rflags: RF_SYNTH | RF_USER, name: L.name,
        });
        syntheticUnlocks++;
      }
      continue;
    }
    if (it.t === It.SEND || it.t === It.RECV) {
      put(it, {
        kind: it.t === It.SEND ? Kind.MSG_SEND : Kind.MSG_RECV, ts, node: nodeId, ls: it.ls, lkb: it.lkb, mode: it.mode,
        flags: it.flags, status: it.status, error: it.error, sbFlags: it.sbFlags, pid: it.pid, aux: it.aux,
        msgSrc: it.msgSrc, msgDst: it.msgDst, msgSeq: it.msgSeq, msgType: it.msgType, grmode: it.grmode,
        src: it.t === It.SEND ? Src.SEND_MESSAGE : Src.RECV_MESSAGE, name: it.name,
      });
      continue;
    }
    const L = insts[it.inst!];
    const rflags = (L.user ? RF_USER : 0) | (it.unswapped ? RF_UNSWAPPED : 0);
    const pid = L.user ? L.owner : it.pid;
    const base = { ts, node: nodeId, ls: it.ls, lkb: it.lkb, pid, rflags, name: it.name };
    switch (it.t) {
      case It.LOCK_START:
        put(it, { ...base, kind: Kind.REQUEST, mode: it.mode, flags: it.flags, src: Src.LOCK_START });
        break;
      case It.LOCK_END:
        if (it.error !== 0) put(it, { ...base, kind: Kind.REQUEST_FAILED, error: it.error, src: Src.LOCK_END });
        break;
      case It.UNLOCK_START:
        put(it, { ...base, kind: Kind.RELEASE, flags: it.flags, src: Src.UNLOCK_START });
        break;
      case It.UNLOCK_END:
        if (it.error !== 0) put(it, { ...base, kind: Kind.RELEASE_FAILED, error: it.error, src: Src.UNLOCK_END });
        break;
      case It.AST:
        put(it, { ...base, kind: Kind.COMPLETION, status: it.status, mode: MODE_NONE, sbFlags: it.sbFlags, src: Src.AST });
        if (it.unswapped) unswapped++;
        break;
      case It.BAST:
        put(it, { ...base, kind: Kind.BLOCKING, mode: it.mode, src: Src.BAST });
        break;
    }
  }

  const format: TraceTextFormat = sawTracer ? 'tracefs' : sawTraceCmd ? 'trace-cmd' : perfLines > ftraceLines ? 'perf-script' : 'tracefs';
  let kernelGuess: string | undefined;
  if (swapSeen) kernelGuess = '>= 6.10 (dlm_ast shows the sb_flags/sb_status swap of fs/dlm/user.c)';
  else if (hseqStyle) kernelGuess = 'newer than 6.1 (message events print dst= and h_seq=)';
  else if (seqStyle) kernelGuess = '6.1 (message events print seq=, no dst=)';

  if (unrecognized) warnings.push(`${unrecognized} line${unrecognized === 1 ? ' was' : 's were'} neither an event nor a header (first: line ${firstUnrecognized}); ignored`);
  if (unknownDlm.size) warnings.push(`dlm events this dlm-rv does not know were counted and skipped: ${[...unknownDlm].sort().join(', ')}`);
  if (losses.markers) {
    warnings.push(`the tracer lost ${losses.events ? losses.events + ' ' : ''}events (${losses.markers} marker${losses.markers === 1 ? '' : 's'}): ` +
      'the monitor restarts from scratch at each (a LOSS record); trace with a larger buffer (buffer_size_kb, trace-cmd record -b)');
  }
  if (counterClock) warnings.push('timestamps are raw counter values (trace clock counter or x86-tsc), kept as they are: they order this file, not files against each other');

  const info: TraceTextInfo = {
    format, nodeId, nodeIdFrom, events, skipped, unknownDlmEvents: [...unknownDlm].sort(), endsWithoutError: endsOk,
    unswapped, ownerExitVisible: exits > 0, exitsSeen: exits, syntheticUnlocks, reordered, locks, losses, counterClock,
    lines: lineNo, records: rb.count, warnings,
  };
  if (kernelGuess) info.kernelGuess = kernelGuess;
  return { records: rb, info };
}
