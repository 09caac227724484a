// Small open-addressed tables in typed arrays for the merge's per-record paths: no object,
// string or boxed number is created per lookup.
import { W } from '../record/layout';

function mix2(a: number, b: number): number {
  let h = Math.imul(a ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 13;
  return h;
}

/**
 * (u32, u32) -> u32. Insert and update only; removal is not needed (node pairs, (node, ls) pairs).
 * Slots: key a, key b, value, used.
 */
export class PairTable {
  private t: Uint32Array;
  private mask: number;
  count = 0;

  constructor(cap = 64) {
    let c = 16;
    while (c < cap * 2) c *= 2;
    this.t = new Uint32Array(c * 4);
    this.mask = c - 1;
  }

  private slot(a: number, b: number): number {
    const t = this.t, mask = this.mask;
    let s = mix2(a, b) & mask;
    for (;;) {
      const o = s * 4;
      if (t[o + 3] === 0 || (t[o] === a && t[o + 1] === b)) return o;
      s = (s + 1) & mask;
    }
  }

  /** The value, or `missing` when absent. */
  get(a: number, b: number, missing = -1): number {
    const o = this.slot(a >>> 0, b >>> 0);
    return this.t[o + 3] === 0 ? missing : this.t[o + 2];
  }

  has(a: number, b: number): boolean {
    return this.t[this.slot(a >>> 0, b >>> 0) + 3] !== 0;
  }

  /** Set; returns true when the pair was new. */
  set(a: number, b: number, v: number): boolean {
    a >>>= 0; b >>>= 0;
    let o = this.slot(a, b);
    if (this.t[o + 3] !== 0) { this.t[o + 2] = v; return false; }
    if ((this.count + 1) * 2 > this.mask + 1) {
      this.grow();
      o = this.slot(a, b);
    }
    this.t[o] = a; this.t[o + 1] = b; this.t[o + 2] = v; this.t[o + 3] = 1;
    this.count++;
    return true;
  }

  private grow(): void {
    const old = this.t;
    const cap = (this.mask + 1) * 2;
    this.t = new Uint32Array(cap * 4);
    this.mask = cap - 1;
    for (let o = 0; o < old.length; o += 4) {
      if (old[o + 3] === 0) continue;
      const n = this.slot(old[o], old[o + 1]);
      this.t.set(old.subarray(o, o + 4), n);
    }
  }

  /** Every entry (allocates: reports and slow paths only). */
  entries(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (let o = 0; o < this.t.length; o += 4) if (this.t[o + 3] !== 0) out.push([this.t[o], this.t[o + 1], this.t[o + 2]]);
    return out;
  }
}

// ---- pending sends ---------------------------------------------------------------
// One slot per emitted MSG_SEND not yet matched by a MSG_RECV: the fields a receive is
// compared with, where it came from, and when it was emitted.
const S_USED = 0, S_SRC = 1, S_SEQ = 2, S_DST = 3, S_TYPE = 4, S_LKB = 5, S_AUX = 6, S_LS = 7;
const S_MODES = 8, S_FLAGS = 9, S_STATUS = 10, S_ERROR = 11, S_SBF = 12, S_STREAM = 13, S_TSLO = 14, S_TSHI = 15;
// the emit index (may pass 2^32) lives in a parallel Float64Array
const STRIDE = 16;

export interface MatchResult {
  /** stream the send came from */
  stream: number;
  /** its raw timestamp */
  ts: number;
  /** other pending sends that matched just as well (6.1: no destination to tell them apart) */
  ambiguous: number;
}

export class SendTable {
  private t: Uint32Array;
  private emit: Float64Array;
  private mask: number;
  count = 0;
  evicted = 0;
  readonly res: MatchResult = { stream: -1, ts: 0, ambiguous: 0 };

  constructor(private readonly maxEntries: number, initial = 4096) {
    let c = 16;
    while (c < initial * 2) c *= 2;
    this.t = new Uint32Array(c * STRIDE);
    this.emit = new Float64Array(c);
    this.mask = c - 1;
  }

  /** Remember the MSG_SEND record at word offset b of u32 (emitted as number emitIdx by `stream`). */
  insert(u32: Uint32Array, b: number, stream: number, emitIdx: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) {
      if (this.count >= this.maxEntries) this.evictOldest();
      else this.grow();
    }
    const src = u32[b + W.msgSrc], seq = u32[b + W.msgSeq];
    const t = this.t, mask = this.mask;
    let s = mix2(src, seq) & mask;
    while (t[s * STRIDE + S_USED] !== 0) s = (s + 1) & mask;
    const o = s * STRIDE;
    const tail = u32[b + W.tail], klm = u32[b + W.kindLenMode];
    t[o + S_USED] = 1;
    t[o + S_SRC] = src;
    t[o + S_SEQ] = seq;
    t[o + S_DST] = u32[b + W.msgDst];
    t[o + S_TYPE] = tail & 0xff;
    t[o + S_LKB] = u32[b + W.lkb];
    t[o + S_AUX] = u32[b + W.aux];
    t[o + S_LS] = u32[b + W.ls];
    t[o + S_MODES] = ((klm >>> 24) & 0xff) | (((tail >>> 8) & 0xff) << 8);
    t[o + S_FLAGS] = u32[b + W.flags];
    t[o + S_STATUS] = u32[b + W.status];
    t[o + S_ERROR] = u32[b + W.error];
    t[o + S_SBF] = u32[b + W.sbFlags];
    t[o + S_STREAM] = stream;
    t[o + S_TSLO] = u32[b + W.tsLo];
    t[o + S_TSHI] = u32[b + W.tsHi];
    this.emit[s] = emitIdx;
    this.count++;
  }

  /**
   * Find and remove the pending send a MSG_RECV (word offset b) receives. With a destination on
   * both sides (6.2 and later) sender, destination, sequence, type and lock ids must agree; without
   * (6.1) every message field must. Several candidates: the earliest emitted wins. Returns false
   * when none is pending; else fills `res` (and `res.ambiguous`: how many others matched too).
   */
  take(u32: Uint32Array, b: number): boolean {
    const best = this.find(u32, b);
    if (best < 0) return false;
    const o = best * STRIDE;
    this.res.stream = this.t[o + S_STREAM];
    this.res.ts = this.t[o + S_TSHI] * 4294967296 + this.t[o + S_TSLO];
    this.removeSlot(best);
    return true;
  }

  /** Is the send this MSG_RECV receives pending (without taking it)? */
  has(u32: Uint32Array, b: number): boolean {
    return this.find(u32, b) >= 0;
  }

  private find(u32: Uint32Array, b: number): number {
    const src = u32[b + W.msgSrc], seq = u32[b + W.msgSeq], dst = u32[b + W.msgDst];
    const tail = u32[b + W.tail], klm = u32[b + W.kindLenMode];
    const type = tail & 0xff, lkb = u32[b + W.lkb], aux = u32[b + W.aux];
    const modes = ((klm >>> 24) & 0xff) | (((tail >>> 8) & 0xff) << 8);
    const t = this.t, mask = this.mask;
    let s = mix2(src, seq) & mask;
    let best = -1, bestEmit = Infinity, n = 0;
    for (;;) {
      const o = s * STRIDE;
      if (t[o + S_USED] === 0) break;
      if (t[o + S_SRC] === src && t[o + S_SEQ] === seq && t[o + S_TYPE] === type && t[o + S_LKB] === lkb && t[o + S_AUX] === aux) {
        const sd = t[o + S_DST];
        let ok: boolean;
        if (sd !== 0 && dst !== 0) ok = sd === dst;
        else {
          ok = t[o + S_LS] === u32[b + W.ls] && t[o + S_MODES] === modes && t[o + S_FLAGS] === u32[b + W.flags] &&
            t[o + S_STATUS] === u32[b + W.status] && t[o + S_ERROR] === u32[b + W.error] && t[o + S_SBF] === u32[b + W.sbFlags];
        }
        if (ok) {
          n++;
          if (this.emit[s] < bestEmit) { bestEmit = this.emit[s]; best = s; }
        }
      }
      s = (s + 1) & mask;
    }
    this.res.ambiguous = best < 0 ? 0 : n - 1;
    return best;
  }

  private removeSlot(hole: number): void {
    const t = this.t, mask = this.mask;
    t[hole * STRIDE + S_USED] = 0;
    this.count--;
    let s = (hole + 1) & mask;
    for (;;) {
      const so = s * STRIDE;
      if (t[so + S_USED] === 0) return;
      const home = mix2(t[so + S_SRC], t[so + S_SEQ]) & mask;
      if (((s - home) & mask) >= ((s - hole) & mask)) {
        t.copyWithin(hole * STRIDE, so, so + STRIDE);
        this.emit[hole] = this.emit[s];
        t[so + S_USED] = 0;
        hole = s;
      }
      s = (s + 1) & mask;
    }
  }

  private grow(): void {
    this.rebuild((this.mask + 1) * 2, -Infinity);
  }

  /** Full: forget the older half (sends whose receive was never seen: unmonitored peers, losses). */
  private evictOldest(): void {
    const ages: number[] = [];
    for (let s = 0; s <= this.mask; s++) if (this.t[s * STRIDE + S_USED] !== 0) ages.push(this.emit[s]);
    ages.sort((a, b) => a - b);
    const cut = ages[Math.floor(ages.length / 2)];
    const before = this.count;
    this.rebuild(this.mask + 1, cut);
    this.evicted += before - this.count;
  }

  private rebuild(cap: number, keepFrom: number): void {
    const old = this.t, oldEmit = this.emit, oldCap = this.mask + 1;
    this.t = new Uint32Array(cap * STRIDE);
    this.emit = new Float64Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    for (let s = 0; s < oldCap; s++) {
      const o = s * STRIDE;
      if (old[o + S_USED] === 0 || oldEmit[s] < keepFrom) continue;
      let n = mix2(old[o + S_SRC], old[o + S_SEQ]) & this.mask;
      while (this.t[n * STRIDE + S_USED] !== 0) n = (n + 1) & this.mask;
      this.t.set(old.subarray(o, o + STRIDE), n * STRIDE);
      this.emit[n] = oldEmit[s];
      this.count++;
    }
  }
}
