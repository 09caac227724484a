// Mutation of a recorded capture: raise one real grant's mode to EX at a moment when another lock
// of the same resource holds a mode incompatible with EX, so that exactly one violation must follow.
//
// The grant is chosen with a small state machine of its own, written from the contract
// (docs/design.md, "Per lock, per resource": effective = granted; IV while a new request or an
// unlock is pending; meet(granted, requested) while a conversion is pending) and deliberately
// not sharing code with src/monitor: the test then checks that the monitor reports exactly the
// incident this independent reading predicts.
//
// A candidate is a non-history COMPLETION with status 0 (not synthesized, not ALTMODE) granting a
// mode below EX to a lock with a request in flight, while exactly one other lock of the resource
// has an effective mode above NL and that lock is simply holding it (nothing in flight). Raised to
// EX it conflicts with that holder. The stream is then run on in two copies of the machine, the
// original and the mutated one, until the victim's state is the same in both (its next exact
// grant, or its removal): over that window the mutated copy must see the resource's set of
// incompatible pairs become non-empty exactly once (at the mutation) and the original copy never.
// After the window the two streams are the same stream in the same state, so one incident, and
// one only, is what a correct monitor must report.
import { readFileSync, writeFileSync } from 'node:fs';
import { readCapture } from '../../src/io/capture';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';
import { Merger, runMerge } from '../../src/merge';
import { CaptureFile } from '../../src/merge/sources';
import { Kind, LKF, MODE_NONE, OFF, RECORD_SIZE, RF_HISTORY, SBF, STATUS, Src } from '../../src/record/layout';

const IV = -1, NL = 0, CR = 1, CW = 2, PR = 3, PW = 4, EX = 5;
const UNKNOWN = 99;

/** DLM compatibility matrix (modes NL..EX); IV and NL are compatible with everything. */
export function compatible(a: number, b: number): boolean {
  if (a <= NL || b <= NL) return true;
  if (a === EX || b === EX) return false;
  if (a === PW || b === PW) return a === CR || b === CR;
  if (a === CR || b === CR) return true;
  return a === b; // CW-CW, PR-PR
}

/** Strongest mode below both (NL < CR < {CW, PR} < PW < EX). */
function meet(a: number, b: number): number {
  if (a === UNKNOWN || b === UNKNOWN) return UNKNOWN;
  if (a === b) return a;
  const up = (m: number): number[] => // the modes at or above m
    m === IV ? [IV, NL, CR, CW, PR, PW, EX] : m === NL ? [NL, CR, CW, PR, PW, EX] : m === CR ? [CR, CW, PR, PW, EX]
      : m === CW ? [CW, PW, EX] : m === PR ? [PR, PW, EX] : m === PW ? [PW, EX] : [EX];
  let best = IV;
  for (const x of [NL, CR, CW, PR, PW, EX]) if (up(x).includes(a) && up(x).includes(b)) best = x;
  return best;
}

interface Lock {
  key: string;
  res: string; // "<ls hex>:<name hex>"
  node: number;
  lkb: number;
  gr: number; // IV..EX, or UNKNOWN
  pend: null | { conv: boolean; rq: number; cdl: boolean };
  second: number | null; // a second request issued while one was in flight (the kernel refuses it unless the first completed)
  rels: ('unlock' | 'cancel')[]; // releases in flight, most recent last
  leaving: boolean;
  unsure: boolean; // something this small machine does not model (ALTMODE grants, unknown modes)
}

function effective(l: Lock): number {
  if (l.leaving || l.rels.includes('unlock')) return IV;
  if (!l.pend) return l.gr;
  if (!l.pend.conv) return IV;
  if (l.gr === UNKNOWN) return UNKNOWN;
  if (l.pend.cdl) return l.gr === IV ? IV : NL;
  return meet(l.gr, l.pend.rq);
}

interface Rec {
  i: number; kind: number; node: number; ls: number; lkb: number; mode: number; flags: number; status: number;
  sbFlags: number; src: number; rflags: number; res: string;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The locks by key, indexed by resource too. */
class Table extends Map<string, Lock> {
  byRes = new Map<string, Set<string>>();
  /** the most locks seen on one resource at once */
  maxPerRes = 0;

  override set(key: string, l: Lock): this {
    this.delete(key);
    super.set(key, l);
    let s = this.byRes.get(l.res);
    if (!s) this.byRes.set(l.res, (s = new Set()));
    s.add(key);
    if (s.size > this.maxPerRes) this.maxPerRes = s.size;
    return this;
  }

  override delete(key: string): boolean {
    const l = super.get(key);
    if (!l) return false;
    const s = this.byRes.get(l.res)!;
    s.delete(key);
    if (!s.size) this.byRes.delete(l.res);
    return super.delete(key);
  }

  override clear(): void {
    super.clear();
    this.byRes?.clear();
  }
}

class Machine {
  locks = new Table();
  lost = false;

  clone(): Machine {
    const m = new Machine();
    for (const [k, l] of this.locks) m.locks.set(k, { ...l, pend: l.pend && { ...l.pend }, rels: [...l.rels] });
    m.lost = this.lost;
    return m;
  }

  onRes(res: string): Lock[] {
    return [...(this.locks.byRes.get(res) ?? [])].map((k) => this.locks.get(k)!);
  }

  /** Incompatible pairs of effective modes on a resource. */
  pairs(res: string): [Lock, Lock][] {
    const ls = this.onRes(res), out: [Lock, Lock][] = [];
    for (let a = 0; a < ls.length; a++) {
      for (let b = a + 1; b < ls.length; b++) {
        const ea = effective(ls[a]), eb = effective(ls[b]);
        if (ea === UNKNOWN || eb === UNKNOWN || ls[a].unsure || ls[b].unsure) continue;
        if (!compatible(ea, eb)) out.push([ls[a], ls[b]]);
      }
    }
    return out;
  }

  step(r: Rec): void {
    if (r.rflags & RF_HISTORY) return;
    const key = `${r.node}:${r.ls}:${r.lkb}`;
    let l = this.locks.get(key);
    switch (r.kind) {
      case Kind.REQUEST:
        this.settleLeave(r.node, r.ls);
        l = this.locks.get(key);
        if (!(r.flags & LKF.CONVERT)) {
          this.locks.set(key, { key, res: r.res, node: r.node, lkb: r.lkb, gr: IV, pend: { conv: false, rq: r.mode, cdl: false },
            second: null, rels: [], leaving: false, unsure: false });
        } else if (!l) {
          this.locks.set(key, { key, res: r.res, node: r.node, lkb: r.lkb, gr: UNKNOWN, pend: { conv: true, rq: r.mode, cdl: false },
            second: null, rels: [], leaving: false, unsure: true });
        } else if (l.pend) {
          l.second = r.mode;
        } else {
          l.pend = { conv: true, rq: r.mode, cdl: (r.flags & LKF.CONVDEADLK) !== 0 };
          if (r.flags & (LKF.ALTPR | LKF.ALTCW)) l.unsure = true;
        }
        return;
      case Kind.REQUEST_FAILED:
        if (!l) return;
        if (l.second !== null) l.second = null;
        else if (l.pend && !l.pend.conv) this.locks.delete(key);
        else l.pend = null;
        return;
      case Kind.RELEASE:
        this.settleLeave(r.node, r.ls);
        l = this.locks.get(key);
        if (l) l.rels.push(r.flags & LKF.CANCEL ? 'cancel' : 'unlock');
        return;
      case Kind.RELEASE_FAILED:
        if (l) l.rels.pop();
        return;
      case Kind.COMPLETION: {
        if (!l) {
          if (r.status === 0 && r.mode >= NL && r.mode <= EX) {
            this.locks.set(key, { key, res: r.res, node: r.node, lkb: r.lkb, gr: r.mode, pend: null, second: null, rels: [],
              leaving: false, unsure: false });
          }
          return;
        }
        if (r.status === STATUS.EUNLOCK) { this.locks.delete(key); return; }
        if (r.status === 0) {
          if (r.sbFlags & SBF.ALTMODE) l.unsure = true;
          l.gr = r.mode !== MODE_NONE ? r.mode : l.pend ? l.pend.rq : l.gr;
        } else {
          if ((l.pend && !l.pend.conv) || (!l.pend && l.gr === IV)) { this.locks.delete(key); return; }
          if (r.mode !== MODE_NONE) l.gr = r.mode;
          else if (r.sbFlags & SBF.DEMOTED) l.gr = NL;
        }
        if (l.gr === IV) { this.locks.delete(key); return; }
        l.pend = null;
        l.rels = l.rels.filter((x) => x !== 'cancel'); // the operation is decided: a cancel is over
        if (l.second !== null) { l.pend = { conv: true, rq: l.second, cdl: false }; l.second = null; }
        return;
      }
      case Kind.NODE_LEAVES_LS:
        for (const x of this.locks.values()) if (x.node === r.node && `${x.res}`.startsWith(`${r.ls.toString(16)}:`)) x.leaving = true;
        return;
      case Kind.NODE_LEAVE_FAILED:
        for (const x of this.locks.values()) if (x.node === r.node && x.res.startsWith(`${r.ls.toString(16)}:`)) x.leaving = false;
        return;
      case Kind.LOSS:
        this.locks.clear();
        this.lost = true;
        return;
      default:
        return; // BLOCKING, messages: no state
    }
  }

  /** The node issues something new in the lockspace: a leave it announced went through. */
  private settleLeave(node: number, ls: number): void {
    for (const [k, x] of this.locks) if (x.leaving && x.node === node && x.res.startsWith(`${ls.toString(16)}:`)) this.locks.delete(k);
  }
}

function sameLock(a: Lock | undefined, b: Lock | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export interface LockRef { node: number; lkb: number; mode: string }

export interface Mutation {
  /** 1-based position of the mutated record in the stream (the report's seq) */
  seq: number;
  /** lockspace global id and resource name (hex) */
  ls: number;
  res: string;
  /** the lock whose grant was raised: its real granted mode in `mode` */
  victim: LockRef;
  /** the lock holding an incompatible mode at that moment, with its effective mode */
  holder: LockRef;
  /** grants looked at until this one */
  grants: number;
}

export interface MutationSearch {
  mutation: Mutation | null;
  /** why none was found, when none was */
  reason?: string;
  /** the most locks this machine saw on one resource at once (up to the mutation, if one was found) */
  maxLocksPerResource: number;
}

const MODE = ['IV', 'NL', 'CR', 'CW', 'PR', 'PW', 'EX'];
const mname = (m: number): string => (m === UNKNOWN ? 'unknown' : MODE[m + 1] ?? String(m));

/** Find the grant to raise (see the file comment): the first candidate at or after record index `from`. */
export function findMutation(rb: RecordBuffer, opts: { from?: number } = {}): MutationSearch {
  const from = opts.from ?? 0;
  const recs: Rec[] = new Array(rb.count);
  for (let i = 0; i < rb.count; i++) {
    const d = decodeRecord(rb.u8, rb.u32, rb.i32, i);
    recs[i] = { i, kind: d.kind, node: d.node, ls: d.ls, lkb: d.lkb, mode: d.mode, flags: d.flags, status: d.status,
      sbFlags: d.sbFlags, src: d.src, rflags: d.rflags, res: `${d.ls.toString(16)}:${hex(d.name)}` };
  }
  const m = new Machine();
  let found: Mutation | null = null, grants = 0;
  for (const r of recs) {
    if (m.lost || found) break;
    if (r.i >= from && r.kind === Kind.COMPLETION && !(r.rflags & RF_HISTORY) && r.status === 0 && r.src !== Src.CLEAR_PROC_LOCKS &&
        r.mode >= NL && r.mode < EX && !(r.sbFlags & SBF.ALTMODE)) {
      grants++;
      const v = m.locks.get(`${r.node}:${r.ls}:${r.lkb}`);
      if (v && v.pend && v.rels.length === 0 && v.second === null && !v.unsure && !v.leaving) {
        const others = m.onRes(v.res).filter((x) => x !== v);
        const strong = others.filter((x) => { const e = effective(x); return e === UNKNOWN || x.unsure || e > NL; });
        const h = strong[0];
        if (strong.length === 1 && !h.unsure && h.pend === null && h.rels.length === 0 && !h.leaving && h.gr > NL && h.gr !== UNKNOWN &&
            checkWindow(m, recs, r, v.key, h.key)) {
          found = {
            seq: r.i + 1, ls: r.ls, res: v.res.slice(v.res.indexOf(':') + 1),
            victim: { node: v.node, lkb: v.lkb, mode: mname(r.mode) }, holder: { node: h.node, lkb: h.lkb, mode: mname(effective(h)) },
            grants: 0,
          };
        }
      }
    }
    m.step(r);
  }
  const maxLocks = m.locks.maxPerRes;
  if (found) {
    found.grants = grants;
    return { mutation: found, maxLocksPerResource: maxLocks };
  }
  return {
    mutation: null, maxLocksPerResource: maxLocks,
    reason: maxLocks <= 1
      ? 'no resource ever had two locks at once in this stream (gfs2 keeps one DLM lock per glock per node): no grant can be made to conflict'
      : `${grants} grants looked at, none had exactly one other lock holding a mode incompatible with EX with a clean window after it`,
  };
}

/**
 * Run the original and the mutated stream from record `at` on until the victim's state is the
 * same in both: the mutated one must open exactly one incident (at `at`), the original none.
 */
function checkWindow(m0: Machine, recs: Rec[], at: Rec, victim: string, holder: string): boolean {
  const orig = m0.clone(), mut = m0.clone();
  const res = orig.locks.get(victim)!.res;
  orig.step(at);
  mut.step({ ...at, mode: EX });
  const p = mut.pairs(res);
  if (p.length !== 1 || !p[0].some((x) => x.key === holder) || orig.pairs(res).length !== 0) return false;
  let open = true;
  for (let j = at.i + 1; j < recs.length; j++) {
    if (sameLock(orig.locks.get(victim), mut.locks.get(victim))) return true;
    const r = recs[j];
    if (r.kind === Kind.LOSS || r.kind === Kind.NODE_LEAVE_FAILED) return false;
    orig.step(r);
    mut.step(r);
    if (orig.pairs(res).length !== 0) return false;
    const now = mut.pairs(res).length !== 0;
    if (now && !open) return false; // a second incident
    open = now;
  }
  return true;
}

/** Raise the chosen grant in place (the record's mode byte, offset 11). */
export function applyMutation(rb: RecordBuffer, m: Mutation): void {
  const off = (m.seq - 1) * RECORD_SIZE + OFF.mode;
  if (((rb.u8[off] << 24) >> 24) !== MODE.indexOf(m.victim.mode) - 1) throw new Error(`applyMutation: record ${m.seq} does not grant ${m.victim.mode}`);
  rb.u8[off] = EX;
}

/**
 * Write `out`: the capture `inPath` with the one mode byte (record offset 11) of the chosen grant
 * raised to EX; every other byte is the same. Returns the search result (mutation null: nothing
 * written).
 */
export function mutateCapture(inPath: string, out: string): MutationSearch {
  const cap = readCapture(inPath);
  const s = findMutation(cap.records);
  if (!s.mutation) return s;
  const bytes = readFileSync(inPath);
  const off = cap.header.headerLength + (s.mutation.seq - 1) * RECORD_SIZE + OFF.mode;
  if (bytes.readInt8(off) !== (MODE.indexOf(s.mutation.victim.mode) - 1)) throw new Error(`mutateCapture: byte ${off} is not the grant's mode`);
  bytes.writeInt8(EX, off);
  writeFileSync(out, bytes);
  return s;
}

export interface MergedMutation extends MutationSearch {
  /** the capture whose record was raised (index into the inputs) and the record's index in it */
  file?: number;
  index?: number;
  /** records in the merged stream */
  merged: number;
}

/**
 * The cluster-wide version: merge the captures (one per node) in the order `collect.js --replay`
 * gives them (src/merge, default options), find a grant to raise in that order from the fraction
 * `fromFraction` of it on (a victim on one node, its holder on another), and write `outs[file]`: that node's
 * capture with the one mode byte raised. The mutation's seq is its position in the merged stream,
 * which is the report's seq when the same files are replayed together.
 */
export function mutateMergedCaptures(paths: string[], outs: string[], opts: { fromFraction?: number } = {}): MergedMutation {
  const caps = paths.map((p) => new CaptureFile(p));
  const merged = new RecordBuffer(1 << 14);
  try {
    runMerge(new Merger({}), caps.map((c, i) => ({ name: paths[i], nodes: c.header.meta.node_id !== null ? [c.header.meta.node_id] : undefined, capture: c })),
      (b) => { merged.appendRaw(b); });
  } finally {
    for (const c of caps) c.close();
  }
  const s = findMutation(merged, { from: Math.floor(merged.count * (opts.fromFraction ?? 0)) });
  if (!s.mutation) return { ...s, merged: merged.count };
  const m = s.mutation;
  // the merge hands each stream's records over unchanged: find the grant, byte for byte, in its node's capture
  const rec = merged.bytes().subarray((m.seq - 1) * RECORD_SIZE, m.seq * RECORD_SIZE);
  for (let f = 0; f < paths.length; f++) {
    const cap = readCapture(paths[f]);
    const all = cap.records.bytes();
    const hits: number[] = [];
    for (let i = 0; i < cap.records.count; i++) if (Buffer.compare(all.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE), rec) === 0) hits.push(i);
    if (hits.length === 0) continue;
    if (hits.length > 1) throw new Error(`mutateMergedCaptures: the grant's record occurs ${hits.length} times in ${paths[f]}`);
    const bytes = readFileSync(paths[f]);
    const off = cap.header.headerLength + hits[0] * RECORD_SIZE + OFF.mode;
    if (bytes.readInt8(off) !== (MODE.indexOf(m.victim.mode) - 1)) throw new Error(`mutateMergedCaptures: byte ${off} of ${paths[f]} is not the grant's mode`);
    bytes.writeInt8(EX, off);
    writeFileSync(outs[f], bytes);
    return { ...s, merged: merged.count, file: f, index: hits[0] };
  }
  throw new Error('mutateMergedCaptures: the merged grant is in none of the captures');
}
