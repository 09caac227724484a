// The monitor core: monitor.md sections 2 to 5 over a stream of dlm_rv records.
//
// Layout, chosen for the hot path (one record in, usually two cache lines touched):
// - locks live *in* an open-addressed hash table keyed by (node, ls, lkb), 8 int32
//   per slot, so a lookup lands on the lock's own data: its resource id, its
//   granted / requested / effective modes and the mode it contributes to its
//   resource's counts;
// - resources are 16 int32 each: per-mode counts of the effective modes of their
//   locks plus a bit set of the modes present, so the compatibility check is one
//   AND; names live in a separate arena, read only when a lock is created;
// - nothing a report needs is maintained per event: a report walks the lock table
//   for the resource's holders and reads its history out of a ring of the last
//   raw records, copied once per batch.
import { NAME_MAX, RECORD_SIZE, RECORD_WORDS, W, Kind, KIND_NAMES, LKF, SBF, STATUS, RF_HISTORY, RF_USER } from '../record/layout';
import { INCOMPAT, LEQ, MEET, MI_IV, MI_NL, MI_CR, MI_CW, MI_PR, MI_UNKNOWN } from './modes';
import { DLM_MODEL, compileModel, E_ALL_UNLOCK, E_INCOMPATIBLE, E_WITH_OTHERS_COMPATIBLE } from './model';
import { buildViolation, type RunContext, type Summary, type Violation, type ViolationInput } from './report';

// ---- lock slot fields (int32 offsets within a slot)
const L_NODE = 0, L_LS = 1, L_LKB = 2, L_RES = 3, L_MODES = 4, L_STATE = 5, L_SINCE = 6, L_PID = 7;
const LSTRIDE = 8;
const EMPTY = -1; // L_RES of a free slot

// L_MODES: gr | rq << 4 | eff << 8 | contrib << 12 (all mode indexes, see modes.ts)
// L_STATE bits:
const PEND_MASK = 0x3, PEND_NONE = 0, PEND_NEW = 1, PEND_CONV = 2;
const REL_SHIFT = 2, REL_MASK = 0x3 << REL_SHIFT;
const REL_NONE = 0, REL_UNLOCK = 1, REL_CANCEL = 2, REL_LEAVING = 3;
const RELPREV_SHIFT = 4, RELPREV_MASK = 0x3 << RELPREV_SHIFT; // the release under a later one, restored on failure
const ST_UNCERTAIN = 1 << 6; // first seen after a LOSS through an unexplained completion: not evidence
const ST_CDL = 1 << 7, ST_ALTPR = 1 << 8, ST_ALTCW = 1 << 9; // flags of the pending request
// a second request issued while one was in flight (the kernel refuses it unless the first has completed)
const P2_PRESENT = 1 << 10, P2_CDL = 1 << 11, P2_ALTPR = 1 << 12, P2_ALTCW = 1 << 13, P2_RQ_SHIFT = 16;
const ST_MIDFLIGHT = 1 << 14; // first seen mid-flight (a completion or a conversion of a lock we never saw requested)
const R2_PRESENT = 1 << 15; // a release issued while another was pending: a RELEASE_FAILED undoes that one
const ST_USER = 1 << 20; // a user-space (libdlm) lock: its owner's exit releases it with no event of its own

// ---- resource fields
const R_LS = 0, R_LEN = 1, R_HASH = 2, R_HOLDERS = 3, R_MASK = 4, R_CNT = 5; // R_CNT + mi for mi in 2..6 -> 7..11
const R_STATE = 12, R_CREATED = 14, R_NEXT = 15; // 13: spare
const R_NAME = 16; // the name's 16 words, inline: the line after the header, so interning reads no other table
const RSTRIDE = 32;
const R_ERROR = -1; // model state while an incident is open (the RV monitor was reset by the error)

const MODEL_T = compileModel(DLM_MODEL);
const NEV = DLM_MODEL.events.length;
// states where with_others_compatible loops back: the common step costs nothing to run
const WOC_LOOP = new Uint8Array(DLM_MODEL.states.map((_, st) => (MODEL_T[st * NEV + E_WITH_OTHERS_COMPATIBLE] === st ? 1 : 0)));

const CONVERT = LKF.CONVERT, CANCEL = LKF.CANCEL, CONVDEADLK = LKF.CONVDEADLK, ALTPR = LKF.ALTPR, ALTCW = LKF.ALTCW;
const ALTMODE = SBF.ALTMODE, DEMOTED = SBF.DEMOTED, EUNLOCK = STATUS.EUNLOCK;

export interface MonitorOptions {
  /** events of the resource in each report (default 32) */
  history?: number;
  /** raw records kept for report history, a fixed cost of historyWindow * 128 bytes (default 65536) */
  historyWindow?: number;
  /** initial lock-table sizing; the tables grow as needed */
  expectedLocks?: number;
  /**
   * The caller keeps each batch's bytes unchanged until historyWindow more records have
   * been consumed (pre-read files, a rotating pool of drain buffers): the history then
   * refers to the batches instead of copying them.
   */
  stableBatches?: boolean;
  /** called the moment an incident is found (the printk reactor); return false to stop (the panic reactor) */
  onViolation?: (v: Violation) => boolean | void;
  /** every automaton step, in the RV event_dlm / error_dlm style */
  modelTrace?: (line: string) => void;
  context?: Partial<RunContext>;
  /**
   * Whether the input shows user-space owners exiting (live: dlm_clear_proc_locks; text
   * traces: sched_process_exit). When it does not, an incident that rests on a user-space
   * lock is reported apart, as unconfirmed: the kernel may have released that lock silently.
   */
  ownerExitVisible?: boolean;
}

export interface LockView {
  node: number; ls: number; lkb: number; pid: number;
  gr: number; rq: number; eff: number; contrib: number; // mode indexes
  pend: number; rel: number; relPrev: number; uncertain: boolean; midFlight: boolean; user: boolean;
  flags: number; sinceSeq: number;
}

/** Interning hash of (ls, name) of the record at word offset b. */
function nameHash(u32: Uint32Array, b: number, len: number): number {
  const words = (len + 3) >> 2;
  const lastMask = (len & 3) === 0 ? 0xffffffff : (1 << ((len & 3) * 8)) - 1;
  let h = Math.imul(u32[b + W.ls] ^ 0x27d4eb2f, 0x165667b1) ^ len;
  for (let i = 0; i < words; i++) {
    const w = i === words - 1 ? (u32[b + W.name + i] & lastMask) >>> 0 : u32[b + W.name + i];
    h = Math.imul(h ^ w, 0x9e3779b1);
    h ^= h >>> 16;
  }
  return h;
}

function hashLock(node: number, ls: number, lkb: number): number {
  let h = Math.imul(node ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(ls, 0x85ebca77) ^ Math.imul(lkb, 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h;
}

export class Monitor {
  // ---- lock table
  private lk: Int32Array;
  private lkMask: number;
  private lkCount = 0;
  private lkPeak = 0;
  // ---- resources
  private rs: Int32Array;
  private rsCap: number;
  private rsFree = -1; // free list head
  private rsUsed = 0; // high-water mark of ids handed out
  private rsCount = 0;
  private rsPeak = 0;
  private rsIdx: Int32Array; // hash index of resource ids
  private rsIdxMask: number;
  // ---- history ring (raw records)
  private readonly ringCap: number;
  private ring: Uint8Array;
  private ringU32: Uint32Array;
  private ringI32: Int32Array;
  private readonly stable: boolean;
  // stableBatches: the retained batches, oldest first, with the stream index of their first record
  private segU8: Uint8Array[] = [];
  private segU32: Uint32Array[] = [];
  private segI32: Int32Array[] = [];
  private segBase: number[] = [];
  private segCount: number[] = [];
  // ---- current batch (read by the report builder)
  private bu8: Uint8Array = new Uint8Array(0);
  private bu32: Uint32Array = new Uint32Array(0);
  private bi32: Int32Array = new Int32Array(0);
  private batchBase = 0; // index of the batch's first record in the whole stream
  private lastBuffer: ArrayBufferLike | null = null;
  // ---- run state
  private nRecords = 0; // records consumed so far (seq of record i is i + 1)
  readonly kindCounts = new Float64Array(Kind.MAX + 1);
  private historyOnly = 0;
  private lossEvents = 0;
  private lossResets = 0;
  private lossSeen = false;
  private unknownLockEvents = 0;
  private idReuses = 0;
  private firstTs = -1;
  private lastTs = 0;
  private readonly startWall = Date.now();
  // pending NODE_LEAVES_LS, kept until the node's next lock event in that lockspace
  private leaveNode: number[] = [];
  private leaveLs: number[] = [];
  private leaveCount = 0;
  // ---- output
  readonly violations: Violation[] = [];
  /** incidents that rest on a user-space lock whose owner's exit the input cannot show */
  readonly unconfirmed: Violation[] = [];
  private readonly ownerExitVisible: boolean;
  private nViolations = 0;
  private stopped = false;
  private readonly historyN: number;
  private readonly onViolation?: (v: Violation) => boolean | void;
  private readonly modelTrace?: (line: string) => void;
  readonly context: RunContext;

  constructor(opts: MonitorOptions = {}) {
    this.historyN = opts.history ?? 32;
    this.ownerExitVisible = opts.ownerExitVisible ?? true;
    this.onViolation = opts.onViolation;
    this.modelTrace = opts.modelTrace;
    this.context = {
      collector: 'dlm-rv',
      version: '0.0.0',
      source: 'unknown',
      kernel: null,
      host: null,
      flavor: null,
      probes: [],
      ...opts.context,
    };
    let cap = 1024;
    const want = Math.ceil((opts.expectedLocks ?? 0) / 0.7);
    while (cap < want) cap *= 2;
    this.lk = new Int32Array(cap * LSTRIDE).fill(0);
    for (let s = 0; s < cap; s++) this.lk[s * LSTRIDE + L_RES] = EMPTY;
    this.lkMask = cap - 1;
    this.rsCap = 256;
    this.rs = new Int32Array(this.rsCap * RSTRIDE);
    this.rsIdx = new Int32Array(2 * 512).fill(-1); // pairs: id, hash
    this.rsIdxMask = 511;
    this.ringCap = Math.max(1, opts.historyWindow ?? 65536);
    this.stable = opts.stableBatches ?? false;
    this.ring = new Uint8Array(this.stable ? 0 : this.ringCap * RECORD_SIZE);
    this.ringU32 = new Uint32Array(this.ring.buffer);
    this.ringI32 = new Int32Array(this.ring.buffer);
  }

  // =====================================================================
  // The batch API: a whole number of records, read in place.
  // =====================================================================
  consume(bytes: Uint8Array): void {
    // stableBatches: the views below are retained, so they must not be reused for the next batch
    if (this.stable) this.lastBuffer = null;
    const n = Math.floor(bytes.byteLength / RECORD_SIZE);
    if (n === 0 || this.stopped) return;
    if (bytes.byteOffset & 3) bytes = bytes.slice(0, n * RECORD_SIZE); // typed views need 4-byte alignment
    if (bytes.buffer !== this.lastBuffer || bytes.byteOffset !== 0 || this.bu8.byteLength < n * RECORD_SIZE) {
      this.bu8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength - (bytes.byteLength % RECORD_SIZE));
      this.bu32 = new Uint32Array(bytes.buffer, bytes.byteOffset, this.bu8.byteLength >> 2);
      this.bi32 = new Int32Array(bytes.buffer, bytes.byteOffset, this.bu8.byteLength >> 2);
      this.lastBuffer = bytes.byteOffset === 0 ? bytes.buffer : null;
    }
    this.batchBase = this.nRecords;
    const done = this.run(this.bu32, this.bi32, n);
    this.nRecords = this.batchBase + done;
    this.saveHistory(done);
  }

  private run(u32: Uint32Array, i32: Int32Array, n: number): number {
    const counts = this.kindCounts;
    let r = 0;
    for (; r < n; r++) {
      const b = r * RECORD_WORDS;
      const klm = u32[b + W.kindLenMode];
      const kind = klm & 0xffff;
      counts[kind < Kind.MAX ? kind : Kind.MAX]++;
      if ((u32[b + W.tail] >>> 24) & RF_HISTORY) {
        this.historyOnly++;
        continue;
      }
      // a node that left a lockspace is done leaving once it issues something new there;
      // completions still arriving for its vanished locks do not bring them back
      if (this.leaveCount !== 0 && (kind === Kind.REQUEST || kind === Kind.RELEASE)) this.leaveSettle(u32[b + W.node], u32[b + W.ls], r);
      switch (kind) {
        case Kind.REQUEST: this.onRequest(u32, b, r, klm); break;
        case Kind.REQUEST_FAILED: this.onRequestFailed(u32, b, r); break;
        case Kind.RELEASE: this.onRelease(u32, b, r); break;
        case Kind.RELEASE_FAILED: this.onReleaseFailed(u32, b, r); break;
        case Kind.COMPLETION: this.onCompletion(u32, i32, b, r, klm); break;
        case Kind.NODE_LEAVES_LS: this.onNodeLeaves(u32[b + W.node], u32[b + W.ls], r); break;
        case Kind.NODE_LEAVE_FAILED: this.onNodeLeaveFailed(u32[b + W.node], u32[b + W.ls], r); break;
        case Kind.LOSS: this.onLoss(u32[b + W.aux]); break;
        case Kind.NODE_REMOVED: this.onNodeRemoved(u32[b + W.aux], u32[b + W.ls], r); break;
        default: break; // BLOCKING and message events change no lock state
      }
      if (this.stopped) { r++; break; }
    }
    if (r > 0) {
      const b0 = 0, bl = (r - 1) * RECORD_WORDS;
      const t0 = u32[b0 + W.tsHi] * 4294967296 + u32[b0 + W.tsLo];
      if (this.firstTs < 0) this.firstTs = t0;
      this.lastTs = u32[bl + W.tsHi] * 4294967296 + u32[bl + W.tsLo];
    }
    return r;
  }

  // ---- lock table ---------------------------------------------------------
  private find(node: number, ls: number, lkb: number): number {
    const lk = this.lk, mask = this.lkMask;
    let s = hashLock(node, ls, lkb) & mask;
    for (;;) {
      const o = s * LSTRIDE;
      if (lk[o + L_RES] === EMPTY) return -1;
      if (lk[o + L_LKB] === (lkb | 0) && lk[o + L_NODE] === (node | 0) && lk[o + L_LS] === (ls | 0)) return o;
      s = (s + 1) & mask;
    }
  }

  /** Insert a lock known to be absent; returns its slot offset. */
  private insert(node: number, ls: number, lkb: number, res: number, r: number): number {
    if ((this.lkCount + 1) > (this.lkMask + 1) * 0.7) this.growLocks();
    const lk = this.lk, mask = this.lkMask;
    let s = hashLock(node, ls, lkb) & mask;
    while (lk[s * LSTRIDE + L_RES] !== EMPTY) s = (s + 1) & mask;
    const o = s * LSTRIDE;
    lk[o + L_NODE] = node; lk[o + L_LS] = ls; lk[o + L_LKB] = lkb; lk[o + L_RES] = res;
    lk[o + L_MODES] = 0; lk[o + L_STATE] = 0; lk[o + L_SINCE] = this.batchBase + r; lk[o + L_PID] = 0;
    if (++this.lkCount > this.lkPeak) this.lkPeak = this.lkCount;
    this.rs[res * RSTRIDE + R_HOLDERS]++;
    return o;
  }

  private growLocks(): void {
    const old = this.lk, oldCap = this.lkMask + 1;
    const cap = oldCap * 2;
    const lk = new Int32Array(cap * LSTRIDE);
    for (let s = 0; s < cap; s++) lk[s * LSTRIDE + L_RES] = EMPTY;
    const mask = cap - 1;
    for (let s = 0; s < oldCap; s++) {
      const o = s * LSTRIDE;
      if (old[o + L_RES] === EMPTY) continue;
      let t = hashLock(old[o + L_NODE], old[o + L_LS], old[o + L_LKB]) & mask;
      while (lk[t * LSTRIDE + L_RES] !== EMPTY) t = (t + 1) & mask;
      lk.set(old.subarray(o, o + LSTRIDE), t * LSTRIDE);
    }
    this.lk = lk;
    this.lkMask = mask;
  }

  /** Remove the lock at slot offset o: its contribution, its place on the resource, its slot. */
  private removeLock(o: number, r: number): void {
    const lk = this.lk;
    const res = lk[o + L_RES];
    this.setContrib(o, 0, r, false);
    // backward-shift deletion keeps linear probing chains intact
    const mask = this.lkMask;
    let hole = o / LSTRIDE;
    let s = (hole + 1) & mask;
    for (;;) {
      const so = s * LSTRIDE;
      if (lk[so + L_RES] === EMPTY) break;
      const home = hashLock(lk[so + L_NODE], lk[so + L_LS], lk[so + L_LKB]) & mask;
      // move s into the hole if its home is not cyclically in (hole, s]
      if (((s - home) & mask) >= ((s - hole) & mask)) {
        lk.copyWithin(hole * LSTRIDE, so, so + LSTRIDE);
        hole = s;
      }
      s = (s + 1) & mask;
    }
    lk[hole * LSTRIDE + L_RES] = EMPTY;
    this.lkCount--;
    const rb = res * RSTRIDE;
    if (--this.rs[rb + R_HOLDERS] === 0) {
      this.modelStep(res, E_ALL_UNLOCK, r);
      this.freeResource(res);
    } else {
      const state = this.rs[rb + R_STATE];
      if (state < 0 || WOC_LOOP[state] === 0 || this.modelTrace !== undefined) this.modelStep(res, E_WITH_OTHERS_COMPATIBLE, r);
    }
  }

  // ---- resources ------------------------------------------------------------
  /** Resource id for (ls, name of record at word offset b), created if new. -1 if the record has no name. */
  private intern(u32: Uint32Array, b: number, klm: number, r: number): number {
    const len = (klm >>> 16) & 0xff;
    if (len === 0 || len > NAME_MAX) return -1;
    const ls = u32[b + W.ls];
    const words = (len + 3) >> 2;
    const lastMask = (len & 3) === 0 ? 0xffffffff : (1 << ((len & 3) * 8)) - 1;
    const h = nameHash(u32, b, len);
    // the index keeps each id's hash beside it: a probe touches a resource only on a likely match
    const idx = this.rsIdx, mask = this.rsIdxMask, rs = this.rs;
    let s = h & mask;
    for (;;) {
      const id = idx[2 * s];
      if (id < 0) break;
      const rb = id * RSTRIDE;
      if (idx[2 * s + 1] === h && rs[rb + R_LS] === (ls | 0) && rs[rb + R_LEN] === len) {
        let same = true;
        const nb = rb + R_NAME;
        for (let i = 0; i < words; i++) {
          const w = i === words - 1 ? (u32[b + W.name + i] & lastMask) >>> 0 : u32[b + W.name + i];
          if (rs[nb + i] !== (w | 0)) { same = false; break; }
        }
        if (same) return id;
      }
      s = (s + 1) & mask;
    }
    // new resource
    let id: number;
    if (this.rsFree >= 0) {
      id = this.rsFree;
      this.rsFree = this.rs[id * RSTRIDE + R_NEXT];
    } else {
      if (this.rsUsed === this.rsCap) this.growResources();
      id = this.rsUsed++;
    }
    const rs2 = this.rs;
    const rb = id * RSTRIDE;
    rs2.fill(0, rb, rb + RSTRIDE);
    rs2[rb + R_LS] = ls; rs2[rb + R_LEN] = len; rs2[rb + R_HASH] = h;
    rs2[rb + R_STATE] = DLM_MODEL.initial; rs2[rb + R_CREATED] = this.batchBase + r;
    const nb = rb + R_NAME;
    for (let i = 0; i < words; i++) rs2[nb + i] = i === words - 1 ? u32[b + W.name + i] & lastMask : u32[b + W.name + i];
    if (++this.rsCount > this.rsPeak) this.rsPeak = this.rsCount;
    if (this.rsCount > (this.rsIdxMask + 1) * 0.5) this.growResIndex(); // re-inserts every live id, this one too
    else this.idxInsert(id, h);
    return id;
  }

  /**
   * Whether the record at word offset b names resource `res`, by the interning hash (the
   * resource's line is about to be touched anyway; the name arena is not). A collision
   * can only make a late completion count for the lock that has the id now: a missed
   * detection at worst, never a false alarm.
   */
  private sameName(u32: Uint32Array, b: number, klm: number, res: number): boolean {
    const len = (klm >>> 16) & 0xff;
    const rb = res * RSTRIDE;
    return this.rs[rb + R_LEN] === len && this.rs[rb + R_HASH] === nameHash(u32, b, len);
  }

  private idxInsert(id: number, h: number): void {
    const idx = this.rsIdx, mask = this.rsIdxMask;
    let s = h & mask;
    while (idx[2 * s] >= 0) s = (s + 1) & mask;
    idx[2 * s] = id;
    idx[2 * s + 1] = h;
  }

  private growResources(): void {
    const cap = this.rsCap * 2;
    const rs = new Int32Array(cap * RSTRIDE);
    rs.set(this.rs);
    this.rs = rs; this.rsCap = cap;
  }

  private growResIndex(): void {
    const cap = (this.rsIdxMask + 1) * 2;
    this.rsIdx = new Int32Array(2 * cap).fill(-1);
    this.rsIdxMask = cap - 1;
    for (let id = 0; id < this.rsUsed; id++) {
      const rb = id * RSTRIDE;
      if (this.rs[rb + R_LEN] > 0) this.idxInsert(id, this.rs[rb + R_HASH]); // free ids have length 0
    }
  }

  private freeResource(id: number): void {
    const rs = this.rs, rb = id * RSTRIDE;
    const idx = this.rsIdx, mask = this.rsIdxMask;
    let s = rs[rb + R_HASH] & mask;
    while (idx[2 * s] !== id) s = (s + 1) & mask;
    // backward-shift deletion in the index
    let hole = s;
    s = (s + 1) & mask;
    for (;;) {
      const other = idx[2 * s];
      if (other < 0) break;
      const home = idx[2 * s + 1] & mask;
      if (((s - home) & mask) >= ((s - hole) & mask)) {
        idx[2 * hole] = other;
        idx[2 * hole + 1] = idx[2 * s + 1];
        hole = s;
      }
      s = (s + 1) & mask;
    }
    idx[2 * hole] = -1;
    rs[rb + R_LEN] = 0;
    rs[rb + R_NEXT] = this.rsFree;
    this.rsFree = id;
    this.rsCount--;
  }

  // ---- effective modes, counts and the check ----------------------------------
  /**
   * Make the lock at o contribute mode index `c` (0 = nothing) to its resource's
   * counts. A rise is checked against every other lock: that is the verdict.
   */
  private setContrib(o: number, c: number, r: number, check: boolean, oldEff = 0): void {
    const lk = this.lk;
    const modes = lk[o + L_MODES];
    const old = (modes >>> 12) & 0xf;
    if (old === c) return;
    lk[o + L_MODES] = (modes & ~0xf000) | (c << 12);
    const res = lk[o + L_RES];
    const rs = this.rs, rb = res * RSTRIDE;
    let mask = rs[rb + R_MASK];
    if (old >= MI_CR) {
      if (--rs[rb + R_CNT + old] === 0) mask &= ~(1 << old);
    }
    let conflict = false;
    if (c >= MI_CR) {
      if (check && LEQ[c * 8 + old] === 0 && (mask & INCOMPAT[c]) !== 0) conflict = true;
      if (rs[rb + R_CNT + c]++ === 0) mask |= 1 << c;
    }
    rs[rb + R_MASK] = mask;
    if (check) {
      if (conflict) this.incompatible(o, oldEff, r);
      else {
        const state = rs[rb + R_STATE];
        if (state < 0 || WOC_LOOP[state] === 0 || this.modelTrace !== undefined) this.modelStep(res, E_WITH_OTHERS_COMPATIBLE, r);
      }
    }
  }

  /** Recompute the effective mode of the lock at o from its state; check a rise. */
  private refresh(o: number, r: number): void {
    const lk = this.lk;
    const modes = lk[o + L_MODES], st = lk[o + L_STATE];
    const gr = modes & 0xf, rq = (modes >>> 4) & 0xf, oldEff = (modes >>> 8) & 0xf;
    const rel = (st & REL_MASK) >>> REL_SHIFT;
    let eff: number;
    if (rel === REL_UNLOCK || rel === REL_LEAVING) eff = MI_IV;
    else {
      const pend = st & PEND_MASK;
      if (pend === PEND_NONE) eff = gr;
      else if (pend === PEND_NEW) eff = MI_IV;
      else if (gr === MI_UNKNOWN) eff = MI_UNKNOWN;
      else if (st & ST_CDL) eff = gr === MI_IV ? MI_IV : MI_NL;
      else eff = MEET[gr * 8 + rq];
    }
    if (eff !== oldEff) {
      lk[o + L_MODES] = (lk[o + L_MODES] & ~0xf00) | (eff << 8);
      lk[o + L_SINCE] = this.batchBase + r;
    }
    const c = (st & ST_UNCERTAIN) !== 0 || eff === MI_UNKNOWN || eff <= MI_NL ? 0 : eff;
    this.setContrib(o, c, r, true, oldEff);
  }

  private incompatible(o: number, oldEff: number, r: number): void {
    const res = this.lk[o + L_RES];
    const rb = res * RSTRIDE;
    if (this.rs[rb + R_STATE] === R_ERROR) return; // same incident: reported once
    const state = this.rs[rb + R_STATE];
    const next = state >= 0 ? MODEL_T[state * NEV + E_INCOMPATIBLE] : -1;
    if (next >= 0) { this.rs[rb + R_STATE] = next; return; } // a model with such an edge would accept it
    if (this.modelTrace) this.traceError(res, state, E_INCOMPATIBLE, r);
    this.rs[rb + R_STATE] = R_ERROR;
    this.report(o, res, oldEff, r);
  }

  /** Feed a model event for a change on `res` that was not itself a conflict. */
  private modelStep(res: number, ev: number, r: number): void {
    const rs = this.rs, rb = res * RSTRIDE;
    let state = rs[rb + R_STATE];
    if (state === R_ERROR) {
      if (this.hasPair(rb)) return; // the incident goes on
      // the incident is over: the reset monitor starts again from its initial state
      state = DLM_MODEL.initial;
      if (this.modelTrace) this.modelTrace(`${this.tsAt(r)} event_dlm: ${this.resLabel(res)}: incident over, monitor restarts in ${DLM_MODEL.states[state]}`);
    }
    const next = MODEL_T[state * NEV + ev];
    if (this.modelTrace) {
      if (next < 0) this.traceError(res, state, ev, r);
      else this.modelTrace(`${this.tsAt(r)} event_dlm: ${this.resLabel(res)}: ${DLM_MODEL.states[state]} x ${DLM_MODEL.events[ev]} -> ${DLM_MODEL.states[next]}${DLM_MODEL.final[next] ? ' (final)' : ''}`);
    }
    rs[rb + R_STATE] = next < 0 ? DLM_MODEL.initial : next;
  }

  private traceError(res: number, state: number, ev: number, r: number): void {
    this.modelTrace!(`${this.tsAt(r)} error_dlm: ${this.resLabel(res)}: event ${DLM_MODEL.events[ev]} not expected in the state ${state >= 0 ? DLM_MODEL.states[state] : 'error'}`);
  }

  /** Whether the resource at rb still has two locks with incompatible effective modes. */
  private hasPair(rb: number): boolean {
    const rs = this.rs;
    const mask = rs[rb + R_MASK];
    for (let m = MI_CR; m <= 6; m++) {
      if ((mask & (1 << m)) === 0) continue;
      const inc = INCOMPAT[m];
      if (inc & mask & ~(1 << m)) return true;
      if ((inc & (1 << m)) && rs[rb + R_CNT + m] >= 2) return true;
    }
    return false;
  }

  // ---- event handlers ---------------------------------------------------------
  private onRequest(u32: Uint32Array, b: number, r: number, klm: number): void {
    const node = u32[b + W.node], ls = u32[b + W.ls], lkb = u32[b + W.lkb];
    const flags = u32[b + W.flags];
    const rq = (klm >> 24) + 1;
    if (rq < MI_NL || rq > 6) { this.unknownLockEvents++; return; } // a request must name a real mode
    let o = this.find(node, ls, lkb);
    if (o >= 0 && (flags & CONVERT) === 0) {
      // a new lock with the id of one we track: the kernel frees an lkb before it reuses its id
      this.idReuses++;
      this.removeLock(o, r);
      o = -1;
    }
    const fl = ((flags & CONVDEADLK) ? ST_CDL : 0) | ((flags & ALTPR) ? ST_ALTPR : 0) | ((flags & ALTCW) ? ST_ALTCW : 0);
    if (o < 0) {
      const res = this.intern(u32, b, klm, r);
      if (res < 0) { this.unknownLockEvents++; return; }
      o = this.insert(node, ls, lkb, res, r);
      const lk = this.lk;
      lk[o + L_PID] = u32[b + W.pid];
      const user = (u32[b + W.tail] >>> 24) & RF_USER ? ST_USER : 0;
      if (flags & CONVERT) {
        // a conversion of a lock granted before we started (or before a LOSS)
        lk[o + L_MODES] = MI_UNKNOWN | (rq << 4) | (MI_UNKNOWN << 8);
        lk[o + L_STATE] = PEND_CONV | fl | ST_MIDFLIGHT | user;
      } else {
        lk[o + L_MODES] = MI_IV | (rq << 4);
        lk[o + L_STATE] = PEND_NEW | fl | user;
      }
      this.refresh(o, r);
      return;
    }
    const lk = this.lk;
    const st = lk[o + L_STATE];
    if ((st & PEND_MASK) !== PEND_NONE) {
      // one operation in flight already: the kernel refuses this one (REQUEST_FAILED
      // follows) unless the first completed and its completion is still to be traced
      lk[o + L_STATE] = (st & ~(P2_PRESENT | P2_CDL | P2_ALTPR | P2_ALTCW | (0xf << P2_RQ_SHIFT))) | P2_PRESENT
        | (fl << 4) /* ST_CDL.. -> P2_CDL.. */ | (rq << P2_RQ_SHIFT);
      return;
    }
    const gr = lk[o + L_MODES] & 0xf;
    lk[o + L_MODES] = (lk[o + L_MODES] & ~0xf0) | (rq << 4);
    lk[o + L_STATE] = (st & ~(PEND_MASK | ST_CDL | ST_ALTPR | ST_ALTCW)) | (gr === MI_IV ? PEND_NEW : PEND_CONV) | fl;
    this.refresh(o, r);
  }

  private onRequestFailed(u32: Uint32Array, b: number, r: number): void {
    const o = this.find(u32[b + W.node], u32[b + W.ls], u32[b + W.lkb]);
    if (o < 0) { this.unknownLockEvents++; return; }
    const lk = this.lk, st = lk[o + L_STATE];
    if (st & P2_PRESENT) { // the refused one is the second request
      lk[o + L_STATE] = st & ~(P2_PRESENT | P2_CDL | P2_ALTPR | P2_ALTCW | (0xf << P2_RQ_SHIFT));
      return;
    }
    const pend = st & PEND_MASK;
    if (pend === PEND_NEW) { this.removeLock(o, r); return; } // the kernel frees a refused new lkb
    if (pend === PEND_CONV) {
      lk[o + L_STATE] = st & ~(PEND_MASK | ST_CDL | ST_ALTPR | ST_ALTCW);
      this.refresh(o, r);
    }
  }

  private onRelease(u32: Uint32Array, b: number, r: number): void {
    const o = this.find(u32[b + W.node], u32[b + W.ls], u32[b + W.lkb]);
    if (o < 0) { this.unknownLockEvents++; return; }
    const lk = this.lk, st = lk[o + L_STATE];
    const rel = (st & REL_MASK) >>> REL_SHIFT;
    if (u32[b + W.flags] & CANCEL) {
      // a cancel releases nothing: effective mode unchanged
      lk[o + L_STATE] = rel === REL_NONE ? st | (REL_CANCEL << REL_SHIFT) : st | R2_PRESENT;
      return;
    }
    if (rel === REL_UNLOCK || rel === REL_LEAVING) { lk[o + L_STATE] = st | R2_PRESENT; return; }
    lk[o + L_STATE] = (st & ~(REL_MASK | RELPREV_MASK)) | (REL_UNLOCK << REL_SHIFT) | (rel << RELPREV_SHIFT);
    this.refresh(o, r);
  }

  private onReleaseFailed(u32: Uint32Array, b: number, r: number): void {
    const o = this.find(u32[b + W.node], u32[b + W.ls], u32[b + W.lkb]);
    if (o < 0) { this.unknownLockEvents++; return; }
    const lk = this.lk, st = lk[o + L_STATE];
    if (st & R2_PRESENT) { lk[o + L_STATE] = st & ~R2_PRESENT; return; } // the refused one is the later release
    const rel = (st & REL_MASK) >>> REL_SHIFT;
    if (rel === REL_NONE || rel === REL_LEAVING) return;
    const prev = rel === REL_UNLOCK ? (st & RELPREV_MASK) >>> RELPREV_SHIFT : REL_NONE;
    lk[o + L_STATE] = (st & ~(REL_MASK | RELPREV_MASK)) | (prev << REL_SHIFT);
    this.refresh(o, r);
  }

  private onCompletion(u32: Uint32Array, i32: Int32Array, b: number, r: number, klm: number): void {
    const node = u32[b + W.node], ls = u32[b + W.ls], lkb = u32[b + W.lkb];
    const status = i32[b + W.status];
    let hm = (klm >> 24) + 1; // the hook's mode, as an index; -1 = the hook does not know
    if (hm < MI_IV || hm > 6) hm = -1;
    let o = this.find(node, ls, lkb);
    if (o >= 0 && status !== 0 && ((klm >>> 16) & 0xff) !== 0 && !this.sameName(u32, b, klm, this.lk[o + L_RES])) {
      // the late completion of an earlier lock with this id (callbacks delivered late,
      // >= 6.10 no longer pins the lkb): not about the lock that has the id now
      this.unknownLockEvents++;
      return;
    }
    if (o < 0) {
      if (status !== 0) { this.unknownLockEvents++; return; }
      if (this.leaveCount !== 0 && this.leaveIndex(node, ls) >= 0) { this.unknownLockEvents++; return; } // vanished with its node's leave
      // granted, but we never saw it requested: started mid-flight, or after a LOSS
      const res = this.intern(u32, b, klm, r);
      if (res < 0) { this.unknownLockEvents++; return; }
      o = this.insert(node, ls, lkb, res, r);
      const gr = hm < 0 ? MI_UNKNOWN : hm;
      this.lk[o + L_MODES] = gr | (gr << 4);
      // after a LOSS its pending operations are unknown: a lost unlock may still be in
      // flight, so it is not evidence until a request of its own is seen through
      this.lk[o + L_STATE] = ST_MIDFLIGHT | (this.lossSeen ? ST_UNCERTAIN : 0);
      this.lk[o + L_PID] = u32[b + W.pid];
      if ((u32[b + W.tail] >>> 24) & RF_USER) this.lk[o + L_STATE] |= ST_USER;
      if (gr === MI_IV) { this.removeLock(o, r); return; }
      this.refresh(o, r);
      return;
    }
    const lk = this.lk;
    let st = lk[o + L_STATE];
    const pend = st & PEND_MASK;
    let gr = lk[o + L_MODES] & 0xf;
    const rq = (lk[o + L_MODES] >>> 4) & 0xf;
    if (status === 0) {
      const alt = pend !== PEND_NONE && (u32[b + W.sbFlags] & ALTMODE) !== 0;
      if (alt && (st & (ST_ALTPR | ST_ALTCW))) {
        // granted in the alternate mode: the master's mode, even where the lock's own node was
        // not corrected (a conversion's reply), so take it over the hook's
        gr = (st & ST_ALTPR) ? MI_PR : MI_CW;
      } else if (hm >= 0) gr = hm;
      else if (pend !== PEND_NONE) gr = alt ? MI_UNKNOWN : rq;
      if (pend !== PEND_NONE && gr !== MI_UNKNOWN) st &= ~ST_UNCERTAIN; // a request seen through
      if (gr === MI_IV) { this.removeLock(o, r); return; }
    } else if (status === EUNLOCK) {
      this.removeLock(o, r);
      return;
    } else {
      // refused (-EAGAIN, -EDEADLK) or cancelled: a conversion keeps its granted mode,
      // a new request is gone
      if (pend === PEND_NEW || (pend === PEND_NONE && gr === MI_IV) || hm === MI_IV) { this.removeLock(o, r); return; }
      if (hm >= 0) gr = hm;
      else if (u32[b + W.sbFlags] & DEMOTED) gr = MI_NL; // CONVDEADLK demoted it before the refusal
    }
    // the operation is decided: a cancel that did not make it lost the race
    const rel = (st & REL_MASK) >>> REL_SHIFT;
    st &= ~(PEND_MASK | ST_CDL | ST_ALTPR | ST_ALTCW | R2_PRESENT);
    if (rel === REL_CANCEL) st &= ~REL_MASK;
    let rqNext = rq;
    if (st & P2_PRESENT) { // the second request was accepted after all
      rqNext = (st >>> P2_RQ_SHIFT) & 0xf;
      st = (st & ~(P2_PRESENT | P2_CDL | P2_ALTPR | P2_ALTCW | (0xf << P2_RQ_SHIFT))) | ((st & (P2_CDL | P2_ALTPR | P2_ALTCW)) >>> 4)
        | (gr === MI_IV ? PEND_NEW : PEND_CONV);
    }
    lk[o + L_MODES] = (lk[o + L_MODES] & ~0xff) | gr | (rqNext << 4);
    lk[o + L_STATE] = st;
    this.refresh(o, r);
  }

  private onNodeLeaves(node: number, ls: number, r: number): void {
    this.leaveSettle(node, ls, r);
    const lk = this.lk, cap = this.lkMask + 1;
    for (let s = 0; s < cap; s++) {
      const o = s * LSTRIDE;
      if (lk[o + L_RES] === EMPTY || lk[o + L_NODE] !== (node | 0) || lk[o + L_LS] !== (ls | 0)) continue;
      const st = lk[o + L_STATE];
      const rel = (st & REL_MASK) >>> REL_SHIFT;
      lk[o + L_STATE] = (st & ~(REL_MASK | RELPREV_MASK)) | (REL_LEAVING << REL_SHIFT) | (rel << RELPREV_SHIFT);
      this.refresh(o, r);
    }
    this.leaveNode.push(node);
    this.leaveLs.push(ls);
    this.leaveCount++;
  }

  /**
   * A survivor's recovery removed `node` from the lockspace and purged its locks: they are gone
   * for good, at once (no leave to settle: the node is out, whatever it was doing).
   */
  private onNodeRemoved(node: number, ls: number, r: number): void {
    const i = this.leaveIndex(node, ls);
    if (i >= 0) this.dropLeave(i);
    this.removeNodeLocks(node, ls, r, false);
  }

  private onNodeLeaveFailed(node: number, ls: number, r: number): void {
    const i = this.leaveIndex(node, ls);
    if (i < 0) return;
    this.dropLeave(i);
    const lk = this.lk, cap = this.lkMask + 1;
    for (let s = 0; s < cap; s++) {
      const o = s * LSTRIDE;
      if (lk[o + L_RES] === EMPTY || lk[o + L_NODE] !== (node | 0) || lk[o + L_LS] !== (ls | 0)) continue;
      const st = lk[o + L_STATE];
      if (((st & REL_MASK) >>> REL_SHIFT) !== REL_LEAVING) continue;
      const prev = (st & RELPREV_MASK) >>> RELPREV_SHIFT;
      lk[o + L_STATE] = (st & ~(REL_MASK | RELPREV_MASK)) | (prev << REL_SHIFT);
      this.refresh(o, r); // back exactly as they were, and checked
    }
  }

  private leaveIndex(node: number, ls: number): number {
    for (let i = 0; i < this.leaveCount; i++) if (this.leaveNode[i] === node && this.leaveLs[i] === ls) return i;
    return -1;
  }

  private dropLeave(i: number): void {
    this.leaveNode.splice(i, 1);
    this.leaveLs.splice(i, 1);
    this.leaveCount--;
  }

  /** A lock event of a node that was leaving: the leave went through, its locks are gone for good. */
  private leaveSettle(node: number, ls: number, r: number): void {
    const i = this.leaveIndex(node, ls);
    if (i < 0) return;
    this.dropLeave(i);
    this.removeNodeLocks(node, ls, r, true);
  }

  /** Remove a node's locks in a lockspace (only those marked leaving, or all). */
  private removeNodeLocks(node: number, ls: number, r: number, leavingOnly: boolean): void {
    const lk = this.lk, cap = this.lkMask + 1;
    const gone: number[] = [];
    for (let s = 0; s < cap; s++) {
      const o = s * LSTRIDE;
      if (lk[o + L_RES] === EMPTY || lk[o + L_NODE] !== (node | 0) || lk[o + L_LS] !== (ls | 0)) continue;
      if (!leavingOnly || ((lk[o + L_STATE] & REL_MASK) >>> REL_SHIFT) === REL_LEAVING) gone.push(lk[o + L_LKB]);
    }
    // removing moves slots (open addressing): look each one up again
    for (const lkb of gone) {
      const o = this.find(node, ls, lkb);
      if (o >= 0) this.removeLock(o, r);
    }
  }

  private onLoss(count: number): void {
    this.lossEvents += count;
    this.lossResets++;
    this.lossSeen = true;
    // forget everything, as the RV framework resets a monitor
    const lk = this.lk, cap = this.lkMask + 1;
    for (let s = 0; s < cap; s++) lk[s * LSTRIDE + L_RES] = EMPTY;
    this.lkCount = 0;
    this.rsIdx.fill(-1);
    this.rs.fill(0);
    this.rsFree = -1;
    this.rsUsed = 0;
    this.rsCount = 0;
    this.leaveNode = [];
    this.leaveLs = [];
    this.leaveCount = 0;
  }

  // ---- history ring -------------------------------------------------------------
  private saveHistory(n: number): void {
    const cap = this.ringCap;
    if (this.stable) {
      this.segU8.push(this.bu8); this.segU32.push(this.bu32); this.segI32.push(this.bi32);
      this.segBase.push(this.batchBase); this.segCount.push(n);
      // keep the batches that still hold one of the last `cap` records
      while (this.segBase.length > 1 && this.segBase[1] <= this.batchBase + n - cap) {
        this.segU8.shift(); this.segU32.shift(); this.segI32.shift(); this.segBase.shift(); this.segCount.shift();
      }
      return;
    }
    const from = Math.max(0, n - cap);
    let idx = this.batchBase + from; // stream index of the first record to keep
    let r = from;
    while (r < n) {
      const slot = idx % cap;
      const k = Math.min(n - r, cap - slot);
      this.ring.set(this.bu8.subarray(r * RECORD_SIZE, (r + k) * RECORD_SIZE), slot * RECORD_SIZE);
      r += k; idx += k;
    }
  }

  // ---- reports --------------------------------------------------------------------
  private tsAt(r: number): number {
    const b = r * RECORD_WORDS;
    return this.bu32[b + W.tsHi] * 4294967296 + this.bu32[b + W.tsLo];
  }

  private resName(res: number): Uint8Array {
    const len = this.rs[res * RSTRIDE + R_LEN];
    return new Uint8Array(this.rs.buffer, (res * RSTRIDE + R_NAME) * 4, NAME_MAX).slice(0, len);
  }

  private resLabel(res: number): string {
    const name = this.resName(res);
    let hex = '';
    for (const x of name) hex += (x < 16 ? '0' : '') + x.toString(16);
    return `${this.rs[res * RSTRIDE + R_LS] >>> 0}:${hex}`;
  }

  private lockView(o: number): LockView {
    const lk = this.lk, m = lk[o + L_MODES], st = lk[o + L_STATE];
    return {
      node: lk[o + L_NODE] >>> 0, ls: lk[o + L_LS] >>> 0, lkb: lk[o + L_LKB] >>> 0, pid: lk[o + L_PID] >>> 0,
      gr: m & 0xf, rq: (m >>> 4) & 0xf, eff: (m >>> 8) & 0xf, contrib: (m >>> 12) & 0xf,
      pend: st & PEND_MASK, rel: (st & REL_MASK) >>> REL_SHIFT, relPrev: (st & RELPREV_MASK) >>> RELPREV_SHIFT,
      uncertain: (st & ST_UNCERTAIN) !== 0, midFlight: (st & ST_MIDFLIGHT) !== 0, user: (st & ST_USER) !== 0,
      flags: (st & ST_CDL ? CONVDEADLK : 0) | (st & ST_ALTPR ? ALTPR : 0) | (st & ST_ALTCW ? ALTCW : 0),
      sinceSeq: (lk[o + L_SINCE] >>> 0) + 1,
    };
  }

  private report(o: number, res: number, oldEff: number, r: number): void {
    const lk = this.lk, cap = this.lkMask + 1;
    const locks: LockView[] = [];
    for (let s = 0; s < cap; s++) {
      const so = s * LSTRIDE;
      if (lk[so + L_RES] === res) locks.push(this.lockView(so));
    }
    const trigger = this.lockView(o);
    const input: ViolationInput = {
      id: ++this.nViolations,
      seq: this.batchBase + r + 1,
      record: { u8: this.bu8, u32: this.bu32, i32: this.bi32, index: r },
      ls: this.rs[res * RSTRIDE + R_LS] >>> 0,
      name: this.resName(res),
      trigger,
      oldEffective: oldEff,
      newEffective: trigger.eff,
      locks,
      history: this.collectHistory(res, r),
      historyN: this.historyN,
      losses: this.lossEvents,
      context: this.context,
    };
    const v = buildViolation(input);
    if (!this.ownerExitVisible) {
      // which held locks the verdict rests on: the trigger's partners in the incompatible pairs
      const held = new Set(v.pairs.map((p) => `${p.b.node}:${p.b.lkb}`));
      const user = locks.filter((l) => l.user && held.has(`${l.node}:${l.lkb}`));
      if (user.length) {
        v.class = 'unconfirmed-owner-exit';
        v.unconfirmed = {
          reason: `the verdict rests on user-space lock${user.length > 1 ? 's' : ''} ${user.map((l) => `node ${l.node} lkb 0x${l.lkb.toString(16)} (pid ${l.pid})`).join(', ')}; ` +
            'when a user-space owner exits the kernel releases its locks with no trace event, and this input does not show exits',
          cure: 'record with the live collector (it hooks dlm_clear_proc_locks), or include sched:sched_process_exit in the trace ' +
            '(trace-cmd record -e dlm -e sched:sched_process_exit), which the replayer then uses for user-space locks',
          locks: user.map((l) => ({ node: l.node, lkb: l.lkb, pid: l.pid })),
        };
        this.unconfirmed.push(v);
        if (this.onViolation && this.onViolation(v) === false) this.stopped = true;
        return;
      }
    }
    this.violations.push(v);
    if (this.onViolation && this.onViolation(v) === false) this.stopped = true;
  }

  /** The last N records of this resource (and lockspace-wide leaves and removals, and losses), oldest first. */
  private collectHistory(res: number, r: number): { records: { u8: Uint8Array; u32: Uint32Array; i32: Int32Array; index: number; seq: number }[]; complete: boolean } {
    const rb = res * RSTRIDE;
    const ls = this.rs[rb + R_LS], len = this.rs[rb + R_LEN];
    const nb = rb + R_NAME, nm = this.rs, words = (len + 3) >> 2;
    const created = this.rs[rb + R_CREATED];
    const out: { u8: Uint8Array; u32: Uint32Array; i32: Int32Array; index: number; seq: number }[] = [];
    const want = this.historyN;
    const matches = (u32: Uint32Array, i: number): boolean => {
      const b = i * RECORD_WORDS;
      const klm = u32[b + W.kindLenMode], kind = klm & 0xffff;
      if (kind === Kind.LOSS) return true;
      if (u32[b + W.ls] !== (ls >>> 0)) return false;
      if (kind === Kind.NODE_LEAVES_LS || kind === Kind.NODE_LEAVE_FAILED || kind === Kind.NODE_REMOVED) return true;
      if (((klm >>> 16) & 0xff) !== len) return false;
      for (let w = 0; w < words; w++) {
        let x = u32[b + W.name + w];
        if (w === words - 1 && (len & 3)) x = (x & ((1 << ((len & 3) * 8)) - 1)) >>> 0;
        if ((x | 0) !== nm[nb + w]) return false;
      }
      return true;
    };
    let complete = true;
    // the current batch, back from the triggering record
    for (let i = r; i >= 0 && out.length < want; i--) {
      if (this.batchBase + i < created) break;
      if (matches(this.bu32, i)) out.push({ u8: this.bu8, u32: this.bu32, i32: this.bi32, index: i, seq: this.batchBase + i + 1 });
    }
    // then earlier batches: the retained ones, or the ring they were copied to
    const cap = this.ringCap;
    let idx = this.batchBase - 1;
    const oldest = this.stable ? (this.segBase.length ? this.segBase[0] : this.batchBase) : Math.max(0, this.batchBase - cap);
    let seg = this.segBase.length - 1;
    for (; idx >= oldest && out.length < want; idx--) {
      if (idx < created) break;
      if (this.stable) {
        while (seg >= 0 && this.segBase[seg] > idx) seg--;
        if (seg < 0) break;
        const i = idx - this.segBase[seg];
        if (i >= this.segCount[seg]) continue;
        if (matches(this.segU32[seg], i)) out.push({ u8: this.segU8[seg], u32: this.segU32[seg], i32: this.segI32[seg], index: i, seq: idx + 1 });
        continue;
      }
      const slot = idx % cap;
      if (matches(this.ringU32, slot)) out.push({ u8: this.ring, u32: this.ringU32, i32: this.ringI32, index: slot, seq: idx + 1 });
    }
    // fewer than N found and the ring ran out before the resource's first record
    if (out.length < want && idx >= 0 && idx >= created && idx < oldest) complete = false;
    out.reverse();
    return { records: out, complete };
  }

  // ---- summary ------------------------------------------------------------------------
  get locksTracked(): number { return this.lkCount; }
  get resourcesTracked(): number { return this.rsCount; }
  get eventsSeen(): number { return this.nRecords; }
  get violationCount(): number { return this.violations.length; }
  get lossCount(): number { return this.lossEvents; }
  get stoppedEarly(): boolean { return this.stopped; }

  /** Bytes held by the monitor's tables (the history ring separately: a fixed cost). */
  memory(): { tableBytes: number; ringBytes: number; locks: number; resources: number; lockSlots: number } {
    return {
      tableBytes: this.lk.byteLength + this.rs.byteLength + this.rsIdx.byteLength,
      ringBytes: this.ring.byteLength,
      locks: this.lkCount,
      resources: this.rsCount,
      lockSlots: this.lkMask + 1,
    };
  }

  summary(): Summary {
    const events: Record<string, number> = {};
    for (let k = 1; k < Kind.MAX; k++) events[KIND_NAMES[k]] = this.kindCounts[k];
    if (this.kindCounts[Kind.MAX]) events.unknown = this.kindCounts[Kind.MAX];
    const firstTs = this.firstTs < 0 ? 0 : this.firstTs;
    return {
      records: this.nRecords,
      events,
      history_only_events: this.historyOnly,
      events_on_unknown_locks: this.unknownLockEvents,
      lkb_id_reuses: this.idReuses,
      locks: { peak: this.lkPeak, now: this.lkCount, leaving: this.countLeaving() },
      resources: { peak: this.rsPeak, now: this.rsCount },
      violations: this.violations.length,
      unconfirmed: this.unconfirmed.length,
      open_incidents: this.countOpenIncidents(),
      losses: { events_dropped: this.lossEvents, resets: this.lossResets },
      duration: { trace_ns: Math.max(0, this.lastTs - firstTs), first_ts: firstTs, last_ts: this.lastTs, wall_ms: Date.now() - this.startWall },
      stopped_early: this.stopped,
      probes: this.context.probes,
    };
  }

  /** Locks of nodes that left their lockspace (kept until the node is seen again, in case the leave fails). */
  private countLeaving(): number {
    let n = 0;
    const lk = this.lk, cap = this.lkMask + 1;
    for (let s = 0; s < cap; s++) {
      const o = s * LSTRIDE;
      if (lk[o + L_RES] !== EMPTY && ((lk[o + L_STATE] & REL_MASK) >>> REL_SHIFT) === REL_LEAVING) n++;
    }
    return n;
  }

  private countOpenIncidents(): number {
    let n = 0;
    for (let id = 0; id < this.rsUsed; id++) {
      const rb = id * RSTRIDE;
      if (this.rs[rb + R_LEN] > 0 && this.rs[rb + R_STATE] === R_ERROR) n++;
    }
    return n;
  }

  /** Test and debugging aid: every tracked lock (allocates). */
  dumpLocks(): (LockView & { res: string })[] {
    const out: (LockView & { res: string })[] = [];
    const lk = this.lk, cap = this.lkMask + 1;
    for (let s = 0; s < cap; s++) {
      const o = s * LSTRIDE;
      if (lk[o + L_RES] !== EMPTY) out.push({ ...this.lockView(o), res: this.resLabel(lk[o + L_RES]) });
    }
    return out;
  }
}

