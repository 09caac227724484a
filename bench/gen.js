'use strict';
// Deterministic generators of dlm-rv record streams for the benchmark
// (docs/performance.md). Everything here runs outside the timed sections.
//
//  - Gfs2Stream: a gfs2-like mainline stream (one DLM lock per glock per node,
//    NL <-> PR <-> EX conversions with blocking callbacks and demotions, ALTCW
//    "any" requests, NOQUEUE try locks, unlocks with lkb id reuse), correct by
//    construction: a grant never meets an incompatible effective mode.
//    Used for the "realistic", "cache-resident" and "1M-lock" streams.
//  - ChurnStream: short-lived resources (each: a few locks, a conversion, all
//    unlocked, resource freed), 10^5 alive at once, new names all the time.
//
// Records are written word by word in the layout of bpf/dlm_rv.h, through the
// word indexes of src/record/layout.ts; selfCheck() compares the encoding with
// src/record/buffer.ts writeRecord() so the two cannot drift apart.

const { W, RECORD_SIZE, RECORD_WORDS } = require('../dist/record/layout.js');

// enum dlm_rv_kind / dlm_rv_src (const enums in layout.ts: not emitted at run time)
const K_REQUEST = 1, K_COMPLETION = 5, K_RELEASE = 3, K_BLOCKING = 6;
const SRC_LOCK_START = 2, SRC_UNLOCK_START = 4, SRC_ADD_CB = 8, SRC_BAST = 10;
const IV = -1, NL = 0, CW = 2, PR = 3, EX = 5;
const LKF_NOQUEUE = 0x1, LKF_CONVERT = 0x4, LKF_VALBLK = 0x8, LKF_ALTCW = 0x10000;
const SBF_ALTMODE = 0x4;
const ST_EUNLOCK = -65538, ST_EAGAIN = -11;
const NAME_LEN = 24; // gfs2 "%8x%16x"
const BATCH = 4096;

// compatibility for NL..EX (IV, NL compatible with all): COMPAT[(a+1)*8 + (b+1)]
const COMPAT = new Uint8Array(64);
{
  const ok = [
    /*        IV NL CR CW PR PW EX */
    /* IV */ [1, 1, 1, 1, 1, 1, 1],
    /* NL */ [1, 1, 1, 1, 1, 1, 1],
    /* CR */ [1, 1, 1, 1, 1, 1, 0],
    /* CW */ [1, 1, 1, 1, 0, 0, 0],
    /* PR */ [1, 1, 1, 0, 1, 0, 0],
    /* PW */ [1, 1, 1, 0, 0, 0, 0],
    /* EX */ [1, 1, 0, 0, 0, 0, 0],
  ];
  for (let a = 0; a < 7; a++) for (let b = 0; b < 7; b++) COMPAT[a * 8 + b] = ok[a][b];
}
const compat = (a, b) => COMPAT[(a + 1) * 8 + (b + 1)] === 1;

/** mulberry32: small, fast, deterministic; returns uint32. */
function makeRng(seed) {
  let a = seed >>> 0;
  return function rng() {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// --- gfs2 glock names: sprintf("%8x%16llx", type, number), space padded ---
const HEX = Buffer.from('0123456789abcdef');
const nameTmp8 = new Uint8Array(NAME_LEN);
const nameTmp32 = new Uint32Array(nameTmp8.buffer);
/** Write the 24-byte name of glock (type, number < 2^32) as 6 little-endian words at out[o..o+5]. */
function gfs2NameWords(type, number, out, o) {
  nameTmp8.fill(0x20);
  let p = 7, t = type >>> 0;
  do { nameTmp8[p--] = HEX[t & 15]; t >>>= 4; } while (t !== 0);
  p = 23; t = number >>> 0;
  do { nameTmp8[p--] = HEX[t & 15]; t >>>= 4; } while (t !== 0);
  for (let i = 0; i < 6; i++) out[o + i] = nameTmp32[i];
}

/**
 * Write one record (all 32 words, so reused buffers need no clearing).
 * names/no: the 6 name words. grmode is the lock's granted mode seen by the hook (history only).
 */
function writeRec(u32, i32, idx, ts, kind, mode, node, ls, lkb, flags, status, sbFlags, pid, grmode, src, names, no) {
  const b = idx * RECORD_WORDS;
  u32[b + W.tsLo] = ts % 4294967296;
  u32[b + W.tsHi] = (ts / 4294967296) >>> 0;
  u32[b + W.kindLenMode] = kind | (NAME_LEN << 16) | ((mode & 0xff) << 24);
  u32[b + W.node] = node;
  u32[b + W.ls] = ls;
  u32[b + W.lkb] = lkb;
  u32[b + W.flags] = flags;
  i32[b + W.status] = status;
  i32[b + W.error] = 0;
  u32[b + W.sbFlags] = sbFlags;
  u32[b + W.pid] = pid;
  u32[b + W.aux] = 0;
  u32[b + W.msgSrc] = 0;
  u32[b + W.msgDst] = 0;
  u32[b + W.msgSeq] = 0;
  u32[b + W.tail] = ((grmode & 0xff) << 8) | (src << 16);
  const nb = b + W.name;
  u32[nb] = names[no]; u32[nb + 1] = names[no + 1]; u32[nb + 2] = names[no + 2];
  u32[nb + 3] = names[no + 3]; u32[nb + 4] = names[no + 4]; u32[nb + 5] = names[no + 5];
  for (let w = nb + 6; w < b + RECORD_WORDS; w++) u32[w] = 0;
}

// event tuple in an op's event list
const EV_KIND = 0, EV_NODE = 1, EV_LKB = 2, EV_MODE = 3, EV_FLAGS = 4, EV_STATUS = 5, EV_SBF = 6, EV_GR = 7, EV_SRC = 8, EVW = 9;

/**
 * gfs2-like cluster: `nodes` nodes mount one file system (one lockspace); each
 * glock (resource) has at most one DLM lock per node. Operations (a node wants
 * mode t on a glock; a node unlocks a glock) are started on idle resources and
 * up to `window` of them are in flight at once; their events are interleaved
 * at random, as completions and callbacks of many processes are on a real node.
 * One operation per resource at a time keeps the stream correct by construction;
 * within an operation, every holder's demotion request precedes the grant that
 * needed it, and completions come in random order (kernel.md 5: unordered completions).
 */
class Gfs2Stream {
  constructor(o) {
    this.R = o.resources;
    this.N = o.nodes || 8;
    this.target = o.targetLocks;
    this.window = o.window || 256;
    this.ls = (o.ls === undefined ? 0x6e0a6b3c : o.ls) >>> 0;
    this.rng = makeRng(o.seed || 1);
    this.ts = 1_000_000_000_000 + (this.rng() % 1000000); // ~1000 s of uptime, ns
    const R = this.R, N = this.N;
    // names: pairs of inode (2) and iopen (5) glocks on the same block number, some rgrp (3)
    this.names = new Uint32Array(R * 6);
    let block = 0x8000 + (this.rng() & 0xfff);
    for (let r = 0; r < R; r++) {
      const x = this.rng() % 100;
      let type;
      if (x < 8) type = 3; else type = (r & 1) ? 5 : 2;
      if (type !== 5) block += 1 + (this.rng() % 61);
      gfs2NameWords(type, block, this.names, r * 6);
    }
    this.hmode = new Int8Array(R * N).fill(IV);
    this.hlkb = new Uint32Array(R * N);
    this.nh = new Uint8Array(R);
    this.busy = new Uint8Array(R);
    this.live = new Int32Array(R * N);
    this.livePos = new Int32Array(R * N).fill(-1);
    this.nLive = 0;
    this.peakLive = 0;
    this.lkbNext = new Uint32Array(N).fill(1);
    this.lkbFree = Array.from({ length: N }, () => []);
    this.pids = Array.from({ length: N }, (_, n) => 2000 + n * 97);
    this.ops = [];
    this.touched = new Uint8Array(R);
    this.stats = {
      events: 0, byKind: { request: 0, completion: 0, release: 0, blocking: 0 },
      ops: { new: 0, convert_up: 0, convert_down: 0, unlock: 0, try_refused: 0, altmode_grant: 0, ex_pingpong: 0 },
      resourcesTouched: 0,
    };
  }

  rand(n) { return this.rng() % n; }
  rand01() { return this.rng() / 4294967296; }

  allocLkb(n) {
    const f = this.lkbFree[n];
    return f.length ? f.pop() : this.lkbNext[n]++;
  }

  addLive(s) { this.livePos[s] = this.nLive; this.live[this.nLive++] = s; if (this.nLive > this.peakLive) this.peakLive = this.nLive; }
  removeLive(s) {
    const p = this.livePos[s], last = this.live[--this.nLive];
    this.live[p] = last; this.livePos[last] = p; this.livePos[s] = -1;
  }

  newOp(r) {
    this.busy[r] = 1;
    if (!this.touched[r]) { this.touched[r] = 1; this.stats.resourcesTouched++; }
    return { r, ev: [], i: 0, freeNode: -1, freeLkb: 0 };
  }
  static push(op, kind, node, lkb, mode, flags, status, sbf, gr, src) {
    op.ev.push(kind, node, lkb, mode, flags, status, sbf, gr, src);
  }

  /** Start one operation; false if no idle candidate was found quickly. */
  startOp() {
    const deficit = (this.target - this.nLive) / this.target;
    const pNew = Math.min(1, Math.max(0.02, 0.08 + 4 * deficit));
    const pUnlock = Math.max(0.02, 0.08 - 4 * deficit);
    const x = this.rand01();
    if (x < pNew || this.nLive === 0) return this.newLockOp();
    if (x < pNew + pUnlock) return this.unlockOp();
    return this.convertOp();
  }

  newLockOp() {
    const N = this.N;
    for (let a = 0; a < 16; a++) {
      const r = this.rand(this.R);
      if (this.busy[r] || this.nh[r] >= N) continue;
      let n = this.rand(N);
      while (this.hmode[r * N + n] !== IV) n = (n + 1) % N;
      const x = this.rand(100);
      const t = x < 30 ? NL : x < 75 ? PR : x < 95 ? EX : CW;
      this.stats.ops.new++;
      return this.acquire(r, n, IV, t);
    }
    return false;
  }

  pickLive() {
    for (let a = 0; a < 16; a++) {
      const s = this.live[this.rand(this.nLive)];
      if (!this.busy[(s / this.N) | 0]) return s;
    }
    return -1;
  }

  convertOp() {
    const s = this.pickLive();
    if (s < 0) return false;
    const g = this.hmode[s], x = this.rand(100);
    let t;
    if (g === NL) t = x < 55 ? PR : x < 90 ? EX : CW;
    else if (g === PR) t = x < 50 ? NL : EX;
    else if (g === CW) t = x < 60 ? NL : EX;
    else t = x < 60 ? NL : x < 95 ? PR : CW; // EX
    return this.acquire((s / this.N) | 0, s % this.N, g, t);
  }

  unlockOp() {
    const s = this.pickLive();
    if (s < 0) return false;
    const N = this.N, r = (s / N) | 0, n = s % N, g = this.hmode[s], lkb = this.hlkb[s];
    const op = this.newOp(r);
    Gfs2Stream.push(op, K_RELEASE, n, lkb, IV, 0, 0, 0, g, SRC_UNLOCK_START);
    Gfs2Stream.push(op, K_COMPLETION, n, lkb, IV, 0, ST_EUNLOCK, 0, IV, SRC_ADD_CB);
    this.hmode[s] = IV;
    this.removeLive(s);
    this.nh[r]--;
    op.freeNode = n; op.freeLkb = lkb; // the lkb id is free once the unlock completed
    this.stats.ops.unlock++;
    this.ops.push(op);
    return true;
  }

  /** Node n wants mode t on resource r; g is its granted mode (IV: new lock). */
  acquire(r, n, g, t) {
    const N = this.N, base = r * N, s = base + n, isNew = g === IV;
    const lkb = isNew ? this.allocLkb(n) : this.hlkb[s];
    let flags = isNew ? 0 : LKF_CONVERT;
    if (t >= PR) flags |= LKF_VALBLK;
    const conflicts = [];
    let allCW = true, anyEX = false;
    for (let h = 0; h < N; h++) {
      const hm = this.hmode[base + h];
      if (h === n || hm === IV || compat(t, hm)) continue;
      conflicts.push(h);
      if (hm !== CW) allCW = false;
      if (hm === EX) anyEX = true;
    }
    const op = this.newOp(r);
    const st = this.stats.ops;
    if (!isNew) { if (t === NL || (g === EX && t !== EX)) st.convert_down++; else st.convert_up++; }
    if (t === PR && this.rand(5) === 0) flags |= LKF_ALTCW; // gfs2 LM_FLAG_ANY on a shared request
    if (conflicts.length && allCW && (flags & LKF_ALTCW)) {
      // granted in the alternate mode: CW with sb_flags ALTMODE (exact mode from dlm_add_cb)
      Gfs2Stream.push(op, K_REQUEST, n, lkb, t, flags, 0, 0, g, SRC_LOCK_START);
      Gfs2Stream.push(op, K_COMPLETION, n, lkb, CW, 0, 0, SBF_ALTMODE, CW, SRC_ADD_CB);
      t = CW;
      st.altmode_grant++;
    } else if (conflicts.length && !isNew && this.rand(10) === 0) {
      // try lock (NOQUEUE) refused: the conversion returns to its granted mode
      Gfs2Stream.push(op, K_REQUEST, n, lkb, t, flags | LKF_NOQUEUE, 0, 0, g, SRC_LOCK_START);
      Gfs2Stream.push(op, K_COMPLETION, n, lkb, g, 0, ST_EAGAIN, 0, g, SRC_ADD_CB);
      st.try_refused++;
      this.ops.push(op);
      return true;
    } else {
      Gfs2Stream.push(op, K_REQUEST, n, lkb, t, flags, 0, 0, g, SRC_LOCK_START);
      const comps = [];
      for (const h of conflicts) {
        const hs = base + h, hm = this.hmode[hs], hl = this.hlkb[hs];
        // gfs2_glock_cb: a bast for EX demotes to unlocked (NL), for PR to shared, for CW to deferred
        let d;
        if (t === EX) d = NL;
        else if (t === PR) d = hm === EX ? PR : NL;
        else d = CW; // t === CW: EX -> CW (down), PR -> CW (the middle conversion)
        Gfs2Stream.push(op, K_BLOCKING, h, hl, t, 0, 0, 0, hm, SRC_BAST);
        Gfs2Stream.push(op, K_REQUEST, h, hl, d, LKF_CONVERT, 0, 0, hm, SRC_LOCK_START);
        comps.push([K_COMPLETION, h, hl, d, 0, 0, 0, d, SRC_ADD_CB]);
        this.hmode[hs] = d;
      }
      if (t === EX && anyEX) st.ex_pingpong++;
      comps.push([K_COMPLETION, n, lkb, t, 0, 0, 0, t, SRC_ADD_CB]);
      for (let i = comps.length - 1; i > 0; i--) { // completions in random order
        const j = this.rand(i + 1), tmp = comps[i]; comps[i] = comps[j]; comps[j] = tmp;
      }
      for (const c of comps) op.ev.push(...c);
    }
    this.hmode[s] = t;
    if (isNew) { this.hlkb[s] = lkb; this.addLive(s); this.nh[r]++; }
    this.ops.push(op);
    return true;
  }

  /** Write the next event of a random in-flight operation into record slot idx; false when none is left. */
  emit(u32, i32, idx, startNew) {
    const ops = this.ops;
    if (startNew) {
      for (let a = 0; ops.length < this.window && a < 4; a++) if (!this.startOp()) break;
    }
    if (ops.length === 0) return false;
    const k = this.rand(ops.length), op = ops[k], e = op.ev, i = op.i;
    this.ts += 50 + this.rand(2000);
    const node = e[i + EV_NODE];
    writeRec(u32, i32, idx, this.ts, e[i + EV_KIND], e[i + EV_MODE], node, this.ls, e[i + EV_LKB], e[i + EV_FLAGS],
      e[i + EV_STATUS], e[i + EV_SBF], this.pids[node], e[i + EV_GR], e[i + EV_SRC], this.names, op.r * 6);
    const bk = this.stats.byKind;
    switch (e[i + EV_KIND]) {
      case K_REQUEST: bk.request++; break;
      case K_COMPLETION: bk.completion++; break;
      case K_RELEASE: bk.release++; break;
      default: bk.blocking++;
    }
    this.stats.events++;
    op.i = i + EVW;
    if (op.i === e.length) {
      this.busy[op.r] = 0;
      if (op.freeNode >= 0) this.lkbFree[op.freeNode].push(op.freeLkb);
      ops[k] = ops[ops.length - 1];
      ops.pop();
    }
    return true;
  }

  /**
   * Generate `events` records (or, with stopAtLive, until that many locks are
   * live, then let every in-flight operation finish) into chunks of
   * `chunkRecords` records (a multiple of BATCH). Returns a Stream.
   */
  generate(events, { chunkRecords = 1 << 20, stopAtLive = 0 } = {}) {
    const chunks = [];
    let u8 = null, u32 = null, i32 = null, fill = chunkRecords, count = 0, draining = false;
    for (;;) {
      if (!draining && ((stopAtLive && this.nLive >= stopAtLive) || (!stopAtLive && count >= events))) {
        if (!stopAtLive) break;
        draining = true;
      }
      if (fill === chunkRecords) {
        u8 = new Uint8Array(chunkRecords * RECORD_SIZE);
        u32 = new Uint32Array(u8.buffer); i32 = new Int32Array(u8.buffer);
        chunks.push(u8); fill = 0;
      }
      if (!this.emit(u32, i32, fill, !draining)) break;
      fill++; count++;
    }
    if (chunks.length && fill < chunkRecords) chunks[chunks.length - 1] = chunks[chunks.length - 1].subarray(0, fill * RECORD_SIZE);
    if (chunks.length && fill === 0) chunks.pop();
    return new Stream(chunks, count, this.describe());
  }

  describe() {
    const N = this.N;
    let withLocks = 0, several = 0, sumH = 0;
    const modes = { NL: 0, CW: 0, PR: 0, EX: 0 };
    for (let r = 0; r < this.R; r++) {
      const h = this.nh[r];
      if (h) { withLocks++; sumH += h; if (h >= 2) several++; }
      for (let n = 0; n < N; n++) {
        const m = this.hmode[r * N + n];
        if (m === NL) modes.NL++; else if (m === CW) modes.CW++; else if (m === PR) modes.PR++; else if (m === EX) modes.EX++;
      }
    }
    return {
      generator: 'gfs2', nodes: N, resources: this.R, lockspaces: 1, window: this.window,
      ...this.stats,
      liveLocksEnd: this.nLive, liveLocksPeak: this.peakLive,
      resourcesWithLocksEnd: withLocks,
      meanHoldersPerResource: withLocks ? +(sumH / withLocks).toFixed(2) : 0,
      shareWithSeveralHolders: withLocks ? +(several / withLocks).toFixed(3) : 0,
      modesEnd: modes,
    };
  }
}

/** Pre-generated records: chunks of whole records, fed to monitors in batches of BATCH records. */
class Stream {
  constructor(chunks, count, info) {
    this.chunks = chunks;
    this.count = count;
    this.info = info;
  }
  /** Batch views (subarrays, no copies) of the first `limit` records. */
  batches(limit = this.count, batch = BATCH) {
    const out = [];
    let left = Math.min(limit, this.count);
    for (const c of this.chunks) {
      const n = c.byteLength / RECORD_SIZE;
      for (let i = 0; i < n && left > 0; i += batch) {
        const k = Math.min(batch, n - i, left);
        out.push(c.subarray(i * RECORD_SIZE, (i + k) * RECORD_SIZE));
        left -= k;
      }
      if (left <= 0) break;
    }
    return out;
  }
  get bytes() { return this.chunks.reduce((a, c) => a + c.byteLength, 0); }
}

/**
 * Churn: `slots` resources alive at once; each lives through a short script
 * (k = 1..3 nodes take new locks, one conversion, all unlock; 4k + 2 events,
 * 10 on average) and its slot then moves on to a fresh glock name. Slots are
 * picked at random per event. fill() writes into a caller's (reused) buffer.
 */
class ChurnStream {
  constructor(o) {
    this.S = o.slots || 100000;
    this.N = o.nodes || 8;
    this.ls = (o.ls === undefined ? 0x6e0a6b3d : o.ls) >>> 0;
    this.rng = makeRng(o.seed || 4);
    this.ts = 1_000_000_000_000;
    const S = this.S;
    this.names = new Uint32Array(S * 6);
    this.k = new Uint8Array(S);
    this.step = new Uint8Array(S);
    this.nodes = new Uint8Array(S * 3);
    this.modes = new Int8Array(S * 3);
    this.lkbs = new Uint32Array(S * 3);
    this.conv = new Int8Array(S);
    this.lkbNext = new Uint32Array(this.N).fill(1);
    this.lkbFree = Array.from({ length: this.N }, () => []);
    this.serial = 0;
    this.events = 0;
    for (let s = 0; s < S; s++) this.startResource(s);
  }

  startResource(s) {
    const rng = this.rng, serial = this.serial++;
    gfs2NameWords((serial & 1) ? 5 : 2, 0x100000 + (serial >>> 1) * 3 + (serial & 1), this.names, s * 6);
    const k = 1 + (rng() % 3);
    this.k[s] = k; this.step[s] = 0;
    let used = 0;
    for (let h = 0; h < k; h++) {
      let n = rng() % this.N;
      while (used & (1 << n)) n = (n + 1) % this.N;
      used |= 1 << n;
      this.nodes[s * 3 + h] = n;
      this.modes[s * 3 + h] = k === 1 ? ((rng() & 1) ? EX : PR) : ((rng() & 1) ? PR : NL);
    }
    const m0 = this.modes[s * 3];
    this.conv[s] = m0 === EX ? ((rng() & 1) ? NL : PR) : m0 === PR ? (k === 1 ? EX : NL) : PR;
  }

  /** Write `count` records into u32/i32 starting at record 0. */
  fill(u32, i32, count) {
    const rng = this.rng, S = this.S, ls = this.ls, names = this.names;
    for (let idx = 0; idx < count; idx++) {
      const s = rng() % S, k = this.k[s], st = this.step[s];
      this.ts += 20 + (rng() & 511);
      let h, kind, mode, flags = 0, status = 0, gr = IV, src;
      if (st < 2 * k) { // new locks
        h = st >> 1;
        mode = this.modes[s * 3 + h];
        if ((st & 1) === 0) {
          kind = K_REQUEST; src = SRC_LOCK_START;
          const f = this.lkbFree[this.nodes[s * 3 + h]];
          this.lkbs[s * 3 + h] = f.length ? f.pop() : this.lkbNext[this.nodes[s * 3 + h]]++;
        } else { kind = K_COMPLETION; src = SRC_ADD_CB; gr = mode; }
      } else if (st < 2 * k + 2) { // one conversion of holder 0
        h = 0;
        mode = this.conv[s];
        if (st === 2 * k) { kind = K_REQUEST; src = SRC_LOCK_START; flags = LKF_CONVERT; gr = this.modes[s * 3]; }
        else { kind = K_COMPLETION; src = SRC_ADD_CB; gr = mode; this.modes[s * 3] = mode; }
      } else { // unlocks
        const j = st - 2 * k - 2;
        h = j >> 1;
        mode = IV;
        if ((j & 1) === 0) { kind = K_RELEASE; src = SRC_UNLOCK_START; gr = this.modes[s * 3 + h]; }
        else { kind = K_COMPLETION; src = SRC_ADD_CB; status = ST_EUNLOCK; }
      }
      const node = this.nodes[s * 3 + h], lkb = this.lkbs[s * 3 + h];
      writeRec(u32, i32, idx, this.ts, kind, mode, node, ls, lkb, flags, status, 0, 3000 + node, gr, src, names, s * 6);
      if (status === ST_EUNLOCK) this.lkbFree[node].push(lkb);
      if (st + 1 === 4 * k + 2) this.startResource(s); else this.step[s] = st + 1;
    }
    this.events += count;
  }
}

/** Compare writeRec() with the project's writeRecord() on a few records; throws on any difference. */
function selfCheck() {
  const { writeRecord } = require('../dist/record/buffer.js');
  const a = new Uint8Array(2 * RECORD_SIZE), b = new Uint8Array(2 * RECORD_SIZE);
  const names = new Uint32Array(6);
  gfs2NameWords(2, 0x1a2b3, names, 0);
  const nameBytes = new Uint8Array(names.buffer);
  if (Buffer.from(nameBytes).toString('latin1') !== '       2           1a2b3') throw new Error('gen: gfs2 name encoding');
  const cases = [
    [1234567890123, K_REQUEST, PR, 3, 0x6e0a6b3c, 77, LKF_CONVERT | LKF_ALTCW, 0, 0, 4242, NL, SRC_LOCK_START],
    [9007199254740, K_COMPLETION, IV, 7, 1, 0xffffffff, 0, ST_EUNLOCK, SBF_ALTMODE, 1, IV, SRC_ADD_CB],
  ];
  cases.forEach((c, i) => {
    writeRec(new Uint32Array(a.buffer), new Int32Array(a.buffer), i, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], names, 0);
    writeRecord(new Uint32Array(b.buffer), new Int32Array(b.buffer), b, i, {
      ts: c[0], kind: c[1], mode: c[2], node: c[3], ls: c[4], lkb: c[5], flags: c[6], status: c[7],
      sbFlags: c[8], pid: c[9], grmode: c[10], src: c[11], name: nameBytes,
    });
  });
  if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) throw new Error('gen: record encoding differs from src/record/buffer.ts writeRecord');
}

// stream presets (docs/performance.md)
const PRESETS = {
  realistic: { resources: 131072, nodes: 8, targetLocks: 500000, window: 256, seed: 0x5eed0001 },
  cached: { resources: 2000, nodes: 8, targetLocks: Math.round(500000 * 2000 / 131072), window: 64, seed: 0x5eed0002 },
  mem: { resources: 250000, nodes: 8, targetLocks: 1020000, window: 256, seed: 0x5eed0003 },
};

module.exports = { Gfs2Stream, ChurnStream, Stream, PRESETS, BATCH, selfCheck, makeRng, gfs2NameWords };
