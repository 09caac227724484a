// Event files: hand-written (or converted) scenarios, one JSON object per line.
//   {"t": 1000, "node": 1, "ls": 7, "lkb": 1, "res": "name", "ev": "request", "mode": "EX", "flags": 0}
// Grammar: docs/formats.md, "Event files". parseEventFile turns a file into records
// (all or nothing: the first bad line throws InputError with its line number);
// recordsToEventLines turns records back into lines.
import { textLines } from './lines';
import { InputError } from '../errors';
import { RecordBuffer, type RecordFields } from '../record/buffer';
import { decodeRecord, recKind } from '../record/decode';
import {
  IV, KIND_NAMES, Kind, LKF, MODE_NAMES, MODE_NONE, MSG_TYPE_NAMES, NAME_MAX, RF_HISTORY, RF_SYNTH, RF_UNSWAPPED,
  RF_USER, SBF, SRC_NAMES, STATUS, flagNames, modeFromName,
} from '../record/layout';
import { fromHex, toHex } from '../record/names';

/** rflags bit names for event files. */
export const RF: Readonly<Record<string, number>> = { HISTORY: RF_HISTORY, USER: RF_USER, UNSWAPPED: RF_UNSWAPPED, SYNTH: RF_SYNTH };

/** Completion status names for event files. */
export const STATUS_NAMES: Readonly<Record<string, number>> = {
  granted: STATUS.GRANTED, EUNLOCK: STATUS.EUNLOCK, ECANCEL: STATUS.ECANCEL, EAGAIN: STATUS.EAGAIN, EDEADLK: STATUS.EDEADLK,
};

interface KindSpec {
  kind: number;
  required: readonly string[];
  optional: readonly string[];
  /** needs exactly one of res / res_hex (else: at most one, where allowed) */
  needsRes: boolean;
}

const COMMON_REQ = ['t', 'node', 'ls', 'ev'];
const COMMON_OPT = ['pid', 'rflags', 'grmode'];
const LOCK_OPT = [...COMMON_OPT, 'src', 'res', 'res_hex'];
const LS_OPT = [...COMMON_OPT, 'src'];
const MSG_REQ = ['src', 'seq', 'type'];
const MSG_OPT = [...COMMON_OPT, 'hook', 'dst', 'lkid', 'remid', 'res', 'res_hex', 'flags', 'status', 'result', 'sbflags', 'mode'];

function spec(kind: number, req: string[], opt: string[], needsRes: boolean): KindSpec {
  return { kind, required: [...COMMON_REQ, ...req], optional: opt, needsRes };
}

const SPECS: Readonly<Record<string, KindSpec>> = {
  request: spec(Kind.REQUEST, ['lkb', 'mode', 'flags'], LOCK_OPT, true),
  request_failed: spec(Kind.REQUEST_FAILED, ['lkb', 'error'], LOCK_OPT, true),
  release: spec(Kind.RELEASE, ['lkb', 'flags'], LOCK_OPT, true),
  release_failed: spec(Kind.RELEASE_FAILED, ['lkb', 'error'], LOCK_OPT, true),
  completion: spec(Kind.COMPLETION, ['lkb', 'status'], [...LOCK_OPT, 'mode', 'sbflags'], true),
  blocking: spec(Kind.BLOCKING, ['lkb', 'mode'], LOCK_OPT, true),
  node_leaves_ls: spec(Kind.NODE_LEAVES_LS, [], [...LS_OPT, 'force'], false),
  node_leave_failed: spec(Kind.NODE_LEAVE_FAILED, ['error'], LS_OPT, false),
  loss: spec(Kind.LOSS, ['count'], LS_OPT, false),
  msg_send: spec(Kind.MSG_SEND, MSG_REQ, MSG_OPT, false),
  msg_recv: spec(Kind.MSG_RECV, MSG_REQ, MSG_OPT, false),
  // node: the survivor whose recovery removed node `removed` from the lockspace
  node_removed: spec(Kind.NODE_REMOVED, ['removed'], LS_OPT, false),
};

export const EVENT_NAMES: readonly string[] = Object.keys(SPECS);

/** A problem with one line; parseEventFile adds the file and line number. */
class LineError extends Error {}

function fail(reason: string): never {
  throw new LineError(reason);
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? s.slice(0, 37) + '...' : s;
}

function u32(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    fail(`"${k}" must be an unsigned 32-bit integer (0..4294967295), got ${show(v)}`);
  }
  return v;
}

function s32(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
    fail(`"${k}" must be a signed 32-bit integer, got ${show(v)}`);
  }
  return v;
}

function errno(o: Record<string, unknown>, k: string): number {
  const v = s32(o, k);
  if (v === 0) fail(`"${k}" must be the non-zero error the kernel returned (e.g. -16 for -EBUSY), got 0`);
  return v;
}

function mode(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  const m = typeof v === 'string' ? modeFromName(v) : undefined;
  if (m === undefined) fail(`"${k}" must be one of ${MODE_NAMES.join(' ')}, got ${show(v)}`);
  return m;
}

/** A number, or names joined by "|" (hex/decimal numbers allowed as parts; "" = 0). */
function flagSet(o: Record<string, unknown>, k: string, table: Readonly<Record<string, number>>): number {
  const v = o[k];
  const names = Object.keys(table).join(' ');
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(`"${k}" must be an unsigned 32-bit integer or names like "${Object.keys(table).slice(0, 2).join('|')}", got ${show(v)}`);
    return v;
  }
  if (typeof v !== 'string') fail(`"${k}" must be a number or a string of names joined by "|" (${names}), got ${show(v)}`);
  let out = 0;
  if (v.trim() === '') return 0;
  for (const part of v.split('|')) {
    const p = part.trim();
    if (Object.prototype.hasOwnProperty.call(table, p)) out |= table[p];
    else if (/^0x[0-9a-fA-F]{1,8}$/.test(p) || /^[0-9]{1,10}$/.test(p)) {
      const n = Number(p);
      if (n > 0xffffffff) fail(`"${k}" part "${p}" does not fit in 32 bits`);
      out |= n;
    } else fail(`"${k}" has unknown flag "${p}"; known: ${names} (or a number)`);
  }
  return out >>> 0;
}

function status(o: Record<string, unknown>): number {
  const v = o.status;
  if (typeof v === 'string') {
    if (Object.prototype.hasOwnProperty.call(STATUS_NAMES, v)) return STATUS_NAMES[v];
    fail(`"status" must be a number or one of ${Object.keys(STATUS_NAMES).join(' ')}, got ${show(v)}`);
  }
  if (typeof v !== 'number') fail(`"status" must be a number or one of ${Object.keys(STATUS_NAMES).join(' ')}, got ${show(v)}`);
  return s32(o, 'status');
}

function msgType(o: Record<string, unknown>): number {
  const v = o.type;
  if (typeof v === 'string') {
    const i = MSG_TYPE_NAMES.indexOf(v);
    if (i > 0) return i;
    fail(`"type" must be a message type name (${MSG_TYPE_NAMES.slice(1).join(' ')}) or a number 0..255, got ${show(v)}`);
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
    fail(`"type" must be a message type name (${MSG_TYPE_NAMES.slice(1).join(' ')}) or a number 0..255, got ${show(v)}`);
  }
  return v;
}

function hook(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v === 'string') {
    const i = SRC_NAMES.indexOf(v);
    if (i >= 0) return i;
  } else if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255) {
    return v;
  }
  return fail(`"${k}" must be a hook name (${SRC_NAMES.join(' ')}) or a number 0..255, got ${show(v)}`);
}

function resName(o: Record<string, unknown>): Uint8Array | undefined {
  const hasRes = o.res !== undefined, hasHex = o.res_hex !== undefined;
  if (hasRes && hasHex) fail('give either "res" or "res_hex", not both');
  if (hasRes) {
    const v = o.res;
    if (typeof v !== 'string') fail(`"res" must be a string (use "res_hex" for raw bytes), got ${show(v)}`);
    const out = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c > 0xff) {
        fail(`"res" has a character outside U+0000..U+00FF (U+${c.toString(16).toUpperCase().padStart(4, '0')} at position ${i}); ` +
          'each character is one byte: write other bytes with "res_hex"');
      }
      out[i] = c;
    }
    if (out.length > NAME_MAX) fail(`"res" is ${out.length} bytes, at most ${NAME_MAX} (DLM_RESNAME_MAXLEN)`);
    return out;
  }
  if (hasHex) {
    const v = o.res_hex;
    const b = typeof v === 'string' ? fromHex(v) : undefined;
    if (!b) fail(`"res_hex" must be a string of hex digit pairs (e.g. "616c706861"), got ${show(v)}`);
    if (b.length > NAME_MAX) fail(`"res_hex" is ${b.length} bytes, at most ${NAME_MAX} (DLM_RESNAME_MAXLEN)`);
    return b;
  }
  return undefined;
}

/** Check one parsed line and map it to record fields. Throws LineError. */
function toFields(o: Record<string, unknown>): RecordFields {
  if (o.ev === undefined) fail(`missing "ev" (one of ${EVENT_NAMES.join(' ')})`);
  const ev = o.ev;
  const sp = typeof ev === 'string' && Object.prototype.hasOwnProperty.call(SPECS, ev) ? SPECS[ev] : undefined;
  if (!sp) fail(`"ev" must be one of ${EVENT_NAMES.join(' ')}, got ${show(ev)}`);
  const evName = ev as string;
  for (const k of Object.keys(o)) {
    if (sp.required.includes(k) || sp.optional.includes(k)) continue;
    if (k === 'hook') fail('"hook" is only for msg_send/msg_recv (where "src" is the sender node); use "src" for the hook name');
    if (k === 'lkb' && (sp.kind === Kind.MSG_SEND || sp.kind === Kind.MSG_RECV)) fail('message events name the lock with "lkid" (m_lkid), not "lkb"');
    if (k === 'lkb' || k === 'res' || k === 'res_hex') fail(`"${k}" is not used by "${evName}" events (they concern the whole lockspace); remove it`);
    fail(`unknown field "${k}" for a "${evName}" event; allowed: ${[...sp.required, ...sp.optional].join(' ')}`);
  }
  for (const k of sp.required) if (o[k] === undefined) fail(`"${evName}" event is missing "${k}"`);
  if (sp.needsRes && o.res === undefined && o.res_hex === undefined) fail(`"${evName}" event is missing "res" (or "res_hex")`);

  const t = o.t;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
    fail(`"t" must be a non-negative integer number of nanoseconds (at most 2^53-1), got ${show(t)}`);
  }
  const f: RecordFields = { kind: sp.kind, ts: t, node: u32(o, 'node'), ls: u32(o, 'ls') };
  const has = (k: string): boolean => o[k] !== undefined;
  const name = resName(o);
  if (name) f.name = name;
  switch (sp.kind) {
    case Kind.REQUEST:
      f.lkb = u32(o, 'lkb'); f.mode = mode(o, 'mode'); f.flags = flagSet(o, 'flags', LKF);
      break;
    case Kind.REQUEST_FAILED:
    case Kind.RELEASE_FAILED:
      f.lkb = u32(o, 'lkb'); f.error = errno(o, 'error');
      break;
    case Kind.RELEASE:
      f.lkb = u32(o, 'lkb'); f.flags = flagSet(o, 'flags', LKF);
      break;
    case Kind.COMPLETION:
      f.lkb = u32(o, 'lkb'); f.status = status(o);
      if (has('mode')) f.mode = mode(o, 'mode');
      if (has('sbflags')) f.sbFlags = flagSet(o, 'sbflags', SBF);
      break;
    case Kind.BLOCKING:
      f.lkb = u32(o, 'lkb'); f.mode = mode(o, 'mode');
      break;
    case Kind.NODE_LEAVES_LS:
      if (has('force')) f.aux = u32(o, 'force');
      break;
    case Kind.NODE_LEAVE_FAILED:
      f.error = errno(o, 'error');
      break;
    case Kind.LOSS:
      f.aux = u32(o, 'count');
      break;
    case Kind.NODE_REMOVED:
      f.aux = u32(o, 'removed');
      break;
    case Kind.MSG_SEND:
    case Kind.MSG_RECV:
      f.msgSrc = u32(o, 'src'); f.msgSeq = u32(o, 'seq'); f.msgType = msgType(o);
      if (has('dst')) f.msgDst = u32(o, 'dst');
      if (has('lkid')) f.lkb = u32(o, 'lkid');
      if (has('remid')) f.aux = u32(o, 'remid');
      if (has('flags')) f.flags = flagSet(o, 'flags', LKF);
      if (has('status')) f.status = s32(o, 'status');
      if (has('result')) f.error = s32(o, 'result');
      if (has('sbflags')) f.sbFlags = flagSet(o, 'sbflags', SBF);
      if (has('mode')) f.mode = mode(o, 'mode');
      if (has('hook')) f.src = hook(o, 'hook');
      break;
  }
  if (has('pid')) f.pid = u32(o, 'pid');
  if (has('rflags')) f.rflags = flagSet(o, 'rflags', RF);
  if ((f.rflags ?? 0) > 0xff) fail(`"rflags" must fit in 8 bits (${Object.keys(RF).join(' ')}), got ${show(o.rflags)}`);
  if (has('grmode')) f.grmode = mode(o, 'grmode');
  if (sp.kind !== Kind.MSG_SEND && sp.kind !== Kind.MSG_RECV && has('src')) f.src = hook(o, 'src');
  return f;
}

/**
 * Parse an event file (its text) into records. All or nothing: the first bad line throws
 * InputError(fileName, line, reason), 1-based line numbers.
 */
export function parseEventFile(text: string, fileName: string): RecordBuffer {
  const rb = new RecordBuffer(256);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let lastT = -1, lastLine = 0;
  for (const [lineNo, line] of textLines(text)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    try {
      let o: unknown;
      try {
        o = JSON.parse(trimmed);
      } catch (e) {
        fail(`invalid JSON (${(e as Error).message}); each line must be one JSON object like {"t": 0, "node": 1, "ls": 1, ...}` +
          (trimmed === '{' ? ' (a pretty-printed JSON document is not an event file)' : ''));
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o)) {
        fail(`each event line must be a JSON object {...}, got ${show(o)}`);
      }
      const f = toFields(o as Record<string, unknown>);
      if (f.ts < lastT) {
        fail(`"t" is ${f.ts}, before the previous event's ${lastT} (line ${lastLine}); events must be in time order: sort the lines by "t"`);
      }
      lastT = f.ts;
      lastLine = lineNo;
      rb.push(f);
    } catch (e) {
      if (e instanceof LineError) throw new InputError(fileName, lineNo, e.message);
      throw e;
    }
  }
  return rb;
}

/** Printable Latin-1: ASCII 0x20..0x7e and 0xa1..0xff except the soft hyphen. */
function printableLatin1(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (!((c >= 0x20 && c <= 0x7e) || (c >= 0xa1 && c !== 0xad))) return false;
  }
  return true;
}

function flagsOut(v: number, table: Readonly<Record<string, number>>): number | string {
  return v === 0 ? 0 : flagNames(v, table as Record<string, number>);
}

function modeOut(m: number): string | number {
  return m >= IV && m <= 5 ? MODE_NAMES[m + 1] : m;
}

function statusOut(s: number): string | number {
  for (const [k, v] of Object.entries(STATUS_NAMES)) if (v === s) return k;
  return s;
}

/**
 * One record as the ordered [key, value] pairs of its event line (only the fields its
 * kind uses); undefined for a kind event files cannot express.
 */
export function recordToEventEntries(rb: RecordBuffer, i: number): Array<[string, unknown]> | undefined {
  const r = decodeRecord(rb.u8, rb.u32, rb.i32, i);
  const ev = KIND_NAMES[r.kind];
  if (r.kind <= 0 || r.kind >= Kind.MAX || ev === undefined) return undefined;
  const e: Array<[string, unknown]> = [['t', r.ts], ['node', r.node], ['ls', r.ls]];
  const isMsg = r.kind === Kind.MSG_SEND || r.kind === Kind.MSG_RECV;
  const lockKind = r.kind <= Kind.BLOCKING;
  if (lockKind) e.push(['lkb', r.lkb]);
  if (lockKind || (isMsg && r.name.length > 0)) {
    if (printableLatin1(r.name)) e.push(['res', String.fromCharCode(...r.name)]);
    else e.push(['res_hex', toHex(r.name)]);
  }
  e.push(['ev', ev]);
  switch (r.kind) {
    case Kind.REQUEST: e.push(['mode', modeOut(r.mode)], ['flags', flagsOut(r.flags, LKF)]); break;
    case Kind.REQUEST_FAILED: case Kind.RELEASE_FAILED: case Kind.NODE_LEAVE_FAILED: e.push(['error', r.error]); break;
    case Kind.RELEASE: e.push(['flags', flagsOut(r.flags, LKF)]); break;
    case Kind.COMPLETION:
      e.push(['status', statusOut(r.status)]);
      if (r.mode !== MODE_NONE) e.push(['mode', modeOut(r.mode)]);
      if (r.sbFlags !== 0) e.push(['sbflags', flagsOut(r.sbFlags, SBF)]);
      break;
    case Kind.BLOCKING: e.push(['mode', modeOut(r.mode)]); break;
    case Kind.NODE_LEAVES_LS: if (r.aux !== 0) e.push(['force', r.aux]); break;
    case Kind.LOSS: e.push(['count', r.aux]); break;
    case Kind.NODE_REMOVED: e.push(['removed', r.aux]); break;
    case Kind.MSG_SEND: case Kind.MSG_RECV:
      e.push(['src', r.msgSrc], ['dst', r.msgDst], ['seq', r.msgSeq],
        ['type', r.msgType > 0 && r.msgType < MSG_TYPE_NAMES.length ? MSG_TYPE_NAMES[r.msgType] : r.msgType],
        ['lkid', r.lkb], ['remid', r.aux]);
      if (r.flags !== 0) e.push(['flags', flagsOut(r.flags, LKF)]);
      if (r.status !== 0) e.push(['status', r.status]);
      if (r.error !== 0) e.push(['result', r.error]);
      if (r.sbFlags !== 0) e.push(['sbflags', flagsOut(r.sbFlags, SBF)]);
      if (r.mode !== MODE_NONE) e.push(['mode', modeOut(r.mode)]);
      break;
  }
  if (r.pid !== 0) e.push(['pid', r.pid]);
  if (r.src !== 0) e.push([isMsg ? 'hook' : 'src', SRC_NAMES[r.src] ?? r.src]);
  if (r.rflags !== 0) e.push(['rflags', flagsOut(r.rflags, RF)]);
  if (r.grmode !== IV) e.push(['grmode', modeOut(r.grmode)]);
  return e;
}

/** Format [key, value] pairs as one event line, `{"t": 1, "node": 2, ...}`. */
export function formatEventLine(entries: Array<[string, unknown]>): string {
  return '{' + entries.map(([k, v]) => JSON.stringify(k) + ': ' + JSON.stringify(v)).join(', ') + '}';
}

/**
 * Records to event-file lines, one per record, with only the fields each kind uses
 * (others, e.g. a release record's mode, are dropped). A record of an unknown kind
 * becomes a `#` comment line, so the output stays a valid event file.
 */
export function recordsToEventLines(rb: RecordBuffer): string[] {
  const out: string[] = new Array(rb.count);
  for (let i = 0; i < rb.count; i++) {
    const e = recordToEventEntries(rb, i);
    out[i] = e ? formatEventLine(e) : `# record ${i}: kind ${recKind(rb.u32, i)} has no event-file form, skipped`;
  }
  return out;
}
