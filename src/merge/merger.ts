// The causal merge of per-node record streams (docs/merge.md).
//
// Each stream is one kernel's records in that kernel's order (one DLM node on mainline kernels;
// a namespace cluster's kernel or the simulator give one stream with several nodes). The merge
// emits one stream that keeps every stream's own order and puts every MSG_RECV after the MSG_SEND
// it receives: a linear extension of happens-before. Among the records that order leaves free
// (concurrent ones), it takes the smallest timestamp on a common timeline, whose per-stream
// offsets are estimated from the messages, matched as records arrive (clock.ts). An unlock or down-conversion waits
// while another stream is about to be granted on the same resource within `raceWindowNs`: that
// only decides a race the DLM left open (had it ordered them, a message would), the way that shows it.
//
// A receive whose send is not there waits; it is let through without its send (an "orphan
// receive", ordered by clocks) when the send cannot come any more: the sender's stream ended, its
// later sends to the same node went out, its clock passed the receive's by more than the offset
// uncertainty plus the declared skew bound, the receive waited `recvWaitMs` (live) or its stream
// filled `maxQueueRecords`, or nothing else can move (offline). Every such decision is logged, and
// the verdicts whose window contains one are marked as resting on clocks (annotate.ts).
//
// When a stream ends, its nodes leave every lockspace they were seen in (a synthetic
// NODE_LEAVES_LS with RF_SYNTH, at the stream's last timestamp): the survivors purge a departed
// node's locks during recovery, with no event the monitor could see.
//
// Hot path: records are copied word by word between typed arrays; pending sends live in an
// open-addressed typed table; nothing is allocated per record.
import { Kind, LKF, RECORD_SIZE, RECORD_WORDS, RF_HISTORY, RF_SYNTH, Src, W } from '../record/layout';
import { writeRecord } from '../record/buffer';
import { ClockAligner } from './clock';
import { PairTable, SendTable } from './tables';

const RW = RECORD_WORDS;
const TWO32 = 4294967296;
/** a later send to the same node this many sequence numbers ahead: the receive's send was lost */
const SEQ_SLACK = 64;

export interface MergeOptions {
  /** declared bound on clock skew for what only clocks can order (ns; default 1 ms) */
  skewBoundNs?: number;
  /** an unlock or down-conversion waits while another stream is about to be granted on that resource this much later (ns; default 50 µs) */
  raceWindowNs?: number;
  /** live rules on: receives time out, silent streams stop holding the others back */
  live?: boolean;
  /** wall clock in ms for the live rules (tests) */
  now?: () => number;
  /** live: the longest a receive waits for its send (ms; default 5000) */
  recvWaitMs?: number;
  /** live: a stream silent this long (no records, no heartbeat) stops holding the others back (ms; default 2000) */
  lagMs?: number;
  /** live: records buffered per stream before its blocked receive is let through (default 262144 = 32 MiB) */
  maxQueueRecords?: number;
  /** sends kept while waiting for their receive (default 1 << 20); the older half is dropped when full */
  maxPendingSends?: number;
  /** records per pull (default 4096) */
  batchRecords?: number;
}

export const ORPHAN_REASONS = ['no-stream', 'missing-send', 'sender-ended', 'seq-passed', 'clock-passed', 'memory', 'timeout', 'stall'] as const;
export type OrphanReason = (typeof ORPHAN_REASONS)[number];
const R_NO_STREAM = 0, R_MISSING = 1, R_SENDER_ENDED = 2, R_SEQ = 3, R_CLOCK = 4, R_MEMORY = 5, R_TIMEOUT = 6, R_STALL = 7;

export type FallbackKind = 'orphan-receive' | 'ambiguous-match' | 'synthetic-leave' | 'leave' | 'late' | 'loss';

/** A place in the merged stream where the order rests on clocks (or a leave whose place does). */
export interface FallbackEvent {
  /** merged sequence number (1-based, as the monitor counts) */
  seq: number;
  kind: FallbackKind;
  stream: number;
  node: number;
  /** timestamp on the common timeline */
  aligned: number;
  reason?: OrphanReason;
  /** synthetic leaves: merged seq of the stream's last record (its node was alive up to there) */
  lastSeq?: number;
}

export interface StreamStats {
  name: string;
  nodes: number[];
  records: number;
  emitted: number;
  queued: number;
  sends: number;
  receives: number;
  matched: number;
  orphans: number;
  losses: number;
  syntheticLeaves: number;
  ended: boolean;
  /** offset of this stream's clock from its timeline's root stream (ns), and that root */
  clockOffsetNs: number;
  clockRoot: string;
  /** half-width of the offset interval to the root (two-way message bounds), null when unknown */
  offsetUncertaintyNs: number | null;
  /** has message events: its cross-node order comes from them */
  causal: boolean;
  lastTs: number;
}

class Stream {
  u8: Uint8Array;
  u32: Uint32Array;
  head = 0;
  tail = 0;
  ended = false;
  nodesKnown: boolean;
  readonly pairs = new PairTable(16); // (node, ls) seen
  lastNode = -1;
  lastLs = -1;
  lastTs = -Infinity; // raw, the largest pushed
  wm = -Infinity; // raw heartbeat watermark
  lastEmittedTs = -Infinity;
  lastEmitSeq = 0; // merged seq of its last record
  messages = 0;
  leavesDone = false;
  // head cache
  hstate = 0; // 0 unknown, 1 ready, 2 blocked on its send
  hkey = 0;
  hepoch = -1;
  hcheck = -1;
  orphan = -1; // reason code when the blocked head is let through
  blockedSince = 0;
  lastDataMs = 0;
  stale = false;
  visit = 0;
  // stats
  records = 0;
  emitted = 0;
  sends = 0;
  receives = 0;
  matched = 0;
  orphans = 0;
  losses = 0;
  synthLeaves = 0;

  constructor(readonly id: number, readonly name: string, nodes: number[] | undefined, now: number) {
    this.u8 = new Uint8Array(64 * RECORD_SIZE);
    this.u32 = new Uint32Array(this.u8.buffer);
    this.nodesKnown = nodes !== undefined;
    this.lastDataMs = now;
  }

  get queued(): number { return this.tail - this.head; }
}

export class Merger {
  private readonly streams: Stream[] = [];
  private readonly clock = new ClockAligner();
  private readonly sends: SendTable;
  // the same matching as records arrive, for the clocks only: offsets are known before merging
  private readonly joinSends: SendTable;
  private readonly joinRecvs: SendTable;
  private pushed = 0;
  private clockBucket = NaN;
  private readonly lastSent = new PairTable(64); // (src, dst) -> last send seq emitted
  private readonly nodeOwner = new PairTable(64); // (node, 0) -> stream id + 1
  private readonly unmonitored = new PairTable(16); // (node, 0) -> 1: receives from it do not wait (live)
  private readonly skew: number;
  private readonly race: number;
  private readonly live: boolean;
  private readonly nowFn: () => number;
  private readonly recvWaitMs: number;
  private readonly lagMs: number;
  private readonly maxQueue: number;
  private readonly batch: number;
  private sealed = false;
  private visitMark = 1; // raceHolder's visited marks
  private unknownNodeStreams = 0; // streams whose node ids are not all known yet
  private sendsEmitted = 0;
  private emittedTotal = 0;
  private frontier = -Infinity;
  // output
  private out: Uint8Array;
  private outU32: Uint32Array;
  private outI32: Int32Array;
  private outN = 0;
  // what the report needs
  readonly fallbacks: FallbackEvent[] = [];
  private fallbackCap = 100_000;
  /** merged seq from which fallbacks were no longer logged one by one (Infinity: none dropped) */
  fallbackOverflowSeq = Infinity;
  readonly orphanCounts = new Float64Array(ORPHAN_REASONS.length);
  ambiguousMatches = 0;
  lateRecords = 0;
  stallBreaks = 0;

  constructor(opts: MergeOptions = {}) {
    this.skew = opts.skewBoundNs ?? 1_000_000;
    this.race = opts.raceWindowNs ?? 50_000;
    this.live = opts.live ?? false;
    this.nowFn = opts.now ?? Date.now;
    this.recvWaitMs = opts.recvWaitMs ?? 5000;
    this.lagMs = opts.lagMs ?? 2000;
    this.maxQueue = opts.maxQueueRecords ?? 1 << 18;
    this.batch = opts.batchRecords ?? 4096;
    this.sends = new SendTable(opts.maxPendingSends ?? 1 << 20);
    this.joinSends = new SendTable(opts.maxPendingSends ?? 1 << 20);
    this.joinRecvs = new SendTable(opts.maxPendingSends ?? 1 << 20);
    this.out = new Uint8Array(this.batch * RECORD_SIZE);
    this.outU32 = new Uint32Array(this.out.buffer);
    this.outI32 = new Int32Array(this.out.buffer);
  }

  get skewBoundNs(): number { return this.skew; }
  get raceWindowNs(): number { return this.race; }
  get streamCount(): number { return this.streams.length; }
  /** records handed out so far (the monitor's seq of the last one) */
  get emitted(): number { return this.emittedTotal; }

  // =====================================================================
  // input
  // =====================================================================

  /** A new stream; `nodes`: the DLM node ids it carries, when known up front (capture header, text trace). */
  addStream(name: string, opts: { nodes?: number[] } = {}): number {
    if (this.sealed) throw new Error('Merger.addStream after seal()');
    const id = this.streams.length;
    const s = new Stream(id, name, opts.nodes, this.live ? this.nowFn() : 0);
    this.streams.push(s);
    if (!s.nodesKnown) this.unknownNodeStreams++;
    this.clock.addStream();
    for (const n of opts.nodes ?? []) this.claimNode(n, id);
    return id;
  }

  /** No stream will be added any more (offline): receives from nodes no stream carries need not wait. */
  seal(): void { this.sealed = true; }

  /** Append whole records to a stream (copied). */
  push(id: number, bytes: Uint8Array): void {
    const s = this.streams[id];
    if (s.ended) throw new Error(`Merger.push: stream ${s.name} has ended`);
    const n = Math.floor(bytes.byteLength / RECORD_SIZE);
    if (this.live) s.lastDataMs = this.nowFn();
    if (n === 0) return;
    this.reserve(s, n);
    s.u8.set(n * RECORD_SIZE === bytes.byteLength ? bytes : bytes.subarray(0, n * RECORD_SIZE), s.tail * RECORD_SIZE);
    const u32 = s.u32;
    for (let i = s.tail, e = s.tail + n; i < e; i++) {
      const b = i * RW;
      const kind = u32[b + W.kindLenMode] & 0xffff;
      const ts = u32[b + W.tsHi] * TWO32 + u32[b + W.tsLo];
      if (ts > s.lastTs) s.lastTs = ts;
      if (kind === Kind.MSG_SEND) {
        s.messages++;
        if (this.joinRecvs.take(u32, b)) this.clock.sample(id, this.joinRecvs.res.stream, ts, this.joinRecvs.res.ts);
        else this.joinSends.insert(u32, b, id, this.pushed);
      } else if (kind === Kind.MSG_RECV) {
        s.messages++;
        if (this.joinSends.take(u32, b)) this.clock.sample(this.joinSends.res.stream, id, this.joinSends.res.ts, ts);
        else this.joinRecvs.insert(u32, b, id, this.pushed);
      } else if (kind === Kind.LOSS) continue;
      const node = u32[b + W.node], ls = u32[b + W.ls];
      if (node !== s.lastNode || ls !== s.lastLs) {
        s.lastNode = node; s.lastLs = ls;
        if (s.pairs.set(node, ls, 1)) this.claimNode(node, id);
      }
    }
    s.tail += n;
    s.records += n;
    this.pushed += n;
  }

  /** The stream's clock reads rawTs: no record older than that will come (live senders, idle nodes). */
  heartbeat(id: number, rawTs: number): void {
    const s = this.streams[id];
    if (rawTs > s.wm) s.wm = rawTs;
    if (this.live) s.lastDataMs = this.nowFn();
  }

  /** The stream is complete: what is queued is merged, then its nodes leave their lockspaces. */
  end(id: number): void {
    const s = this.streams[id];
    if (s.ended) return;
    s.ended = true;
    if (!s.nodesKnown) this.unknownNodeStreams--;
    s.nodesKnown = true;
  }

  isEnded(id: number): boolean { return this.streams[id].ended; }
  queued(id: number): number { return this.streams[id].queued; }
  streamName(id: number): string { return this.streams[id].name; }

  /** A stream whose next records are needed before anything more can be merged (offline readers); -1: none. */
  needs(): number {
    for (const s of this.streams) if (!s.ended && s.head === s.tail) return s.id;
    return -1;
  }

  /** Everything pushed has been merged and every stream has ended. */
  get done(): boolean {
    for (const s of this.streams) if (!s.ended || s.head !== s.tail || !s.leavesDone) return false;
    return true;
  }

  private claimNode(node: number, id: number): void {
    this.nodeOwner.set(node, 0, id + 1);
    if (this.unmonitored.get(node, 0, 0) === 1) this.unmonitored.set(node, 0, 0);
  }

  private reserve(s: Stream, n: number): void {
    const capRec = s.u8.byteLength / RECORD_SIZE;
    if (s.tail + n <= capRec) return;
    const live = s.tail - s.head;
    if (live + n <= capRec / 2 || (s.head > 0 && live + n <= capRec && s.head >= capRec / 4)) {
      s.u8.copyWithin(0, s.head * RECORD_SIZE, s.tail * RECORD_SIZE);
    } else {
      let cap = capRec;
      while (cap < 2 * (live + n)) cap *= 2;
      const nb = new Uint8Array(cap * RECORD_SIZE);
      nb.set(s.u8.subarray(s.head * RECORD_SIZE, s.tail * RECORD_SIZE));
      s.u8 = nb;
      s.u32 = new Uint32Array(nb.buffer);
    }
    s.tail = live;
    s.head = 0;
  }

  // =====================================================================
  // output
  // =====================================================================

  /**
   * Merge what can be merged now, up to `max` records. Returns whole records (a view into a
   * buffer reused by the next call), empty when nothing can move: more input is needed
   * (needs()), a receive waits for its send (live), or everything is done.
   */
  pull(max = this.batch): Uint8Array {
    this.outN = 0;
    const now = this.live ? this.nowFn() : 0;
    const streams = this.streams;
    while (this.outN < max) {
      const cb = ClockAligner.bucket(this.frontier);
      if (this.clock.dirty || cb !== this.clockBucket) {
        this.clockBucket = cb;
        this.clock.update(this.frontier);
      }
      const epoch = this.clock.epoch;
      let best = -1, bestKey = Infinity;
      let m1 = Infinity, m1id = -1, m2 = Infinity, m2id = -1; // the two smallest competition keys
      let starveKey = Infinity, starveId = -1;
      let blocked = -1, blockedKey = Infinity, blockedRank = 3;
      let open = 0;
      for (let i = 0; i < streams.length; i++) {
        const s = streams[i];
        let ck: number;
        let ready = false;
        if (s.head !== s.tail) {
          if (s.hstate === 0 || s.hepoch !== epoch || (s.hstate === 2 && s.hcheck !== this.sendsEmitted)) this.evalHead(s, now);
          ck = s.hkey;
          if (s.hstate === 1 || s.orphan >= 0) ready = true;
          else {
            const why = this.orphanReason(s, now);
            if (why >= 0) { s.orphan = why; ready = true; } else {
              const rank = this.lostRank(s);
              if (rank < blockedRank || (rank === blockedRank && ck < blockedKey)) { blockedRank = rank; blockedKey = ck; blocked = i; }
            }
          }
          if (!s.ended) open++;
        } else if (s.ended) {
          if (s.leavesDone) continue;
          if (s.lastTs === -Infinity || s.pairs.count === 0) { s.leavesDone = true; continue; }
          ck = s.lastTs - this.clock.offset[i];
          ready = true;
        } else {
          open++;
          if (this.live && now - s.lastDataMs > this.lagMs) { s.stale = true; continue; }
          const wm = Math.max(s.lastTs, s.wm);
          ck = wm === -Infinity ? -Infinity : wm - this.clock.offset[i];
          if (ck < starveKey) { starveKey = ck; starveId = i; }
        }
        if (ready && ck < bestKey) { bestKey = ck; best = i; }
        if (ck < m1) { m2 = m1; m2id = m1id; m1 = ck; m1id = i; } else if (ck < m2) { m2 = ck; m2id = i; }
      }
      if (best < 0) {
        if (starveId >= 0) break; // more input needed
        if (blocked < 0) break; // nothing at all
        // every stream with records waits for a send nobody has: break the tie by clock (offline,
        // or live once nothing is open any more); live otherwise waits for the receive's time limit
        if (this.live && open > 0) break;
        const s = streams[blocked];
        s.orphan = R_STALL;
        this.stallBreaks++;
        best = blocked;
        bestKey = blockedKey;
      }
      if (starveId >= 0 && (starveKey < bestKey || (starveKey === bestKey && starveId < best))) break; // wait for that stream
      let limit: number, limitId: number;
      if (m1id === best) { limit = m2; limitId = m2id; } else { limit = m1; limitId = m1id; }
      const bs = streams[best];
      if (this.race > 0 && bs.head !== bs.tail && bs.messages > 0 && this.lowering(bs.u32, bs.head * RW)) {
        const alt = this.raceHolder(bs);
        if (alt >= 0) { best = alt; limit = -Infinity; }
      }
      const s = streams[best];
      // a run from this stream while it stays ahead of every other
      for (;;) {
        this.emitOne(s);
        if (this.outN >= max || s.head === s.tail || ClockAligner.bucket(this.frontier) !== this.clockBucket) break; // new offsets: choose again
        this.evalHead(s, now);
        if (s.hstate !== 1) break;
        const k = s.hkey;
        if (k > limit || (k === limit && limitId < best)) break;
        if (this.race > 0 && s.messages > 0 && this.lowering(s.u32, s.head * RW)) break; // choose again, with the race rule
      }
    }
    return this.out.subarray(0, this.outN * RECORD_SIZE);
  }

  /** Decide the head record's key and, for a receive, find its send. */
  private evalHead(s: Stream, now: number): void {
    const u32 = s.u32, b = s.head * RW;
    if (s.hepoch !== this.clock.epoch || s.hstate === 0) {
      const ts = u32[b + W.tsHi] * TWO32 + u32[b + W.tsLo];
      s.hkey = ts - this.clock.offset[s.id];
      s.hepoch = this.clock.epoch;
    }
    if (s.hstate === 1) return;
    if ((u32[b + W.kindLenMode] & 0xffff) !== Kind.MSG_RECV) { s.hstate = 1; return; }
    if (s.hstate === 0) s.blockedSince = now;
    s.hcheck = this.sendsEmitted;
    if (this.sends.take(u32, b)) {
      s.matched++;
      s.orphan = -1;
      if (this.sends.res.ambiguous > 0) {
        this.ambiguousMatches++;
        this.logFallback('ambiguous-match', s, u32[b + W.node], s.hkey);
      }
      s.hstate = 1;
    } else {
      s.hstate = 2;
    }
  }

  /** An unlock, or a conversion that gives something up (down, or PR <-> CW) when the hook saw the granted mode. */
  private lowering(u32: Uint32Array, b: number): boolean {
    const klm = u32[b + W.kindLenMode], kind = klm & 0xffff, fl = u32[b + W.flags];
    if (kind === Kind.RELEASE) return (fl & LKF.CANCEL) === 0;
    if (kind !== Kind.REQUEST || (fl & LKF.CONVERT) === 0) return false;
    const rq = klm >> 24, gr = (u32[b + W.tail] << 16) >> 24;
    return gr >= 0 && rq >= 0 && (rq < gr || (rq === 3 && gr === 2));
  }

  /**
   * The head of `s` gives something up on a resource. Is another stream, ready now, about to be
   * granted on that same resource within raceWindowNs (on the common timeline)? Then that stream
   * goes first: if the two were ordered by the DLM, a message would make the grant wait (its
   * receive blocks), so this only decides a race the DLM left open, the way that shows it.
   * When that stream's own head gives something up that a third stream is about to be granted,
   * the third goes first, and so on along the chain.
   */
  private raceHolder(s: Stream): number {
    if (!this.holdable(s)) return -1;
    // follow the chain: s waits for x, x's head gives something up that z is about to be granted, ...
    let cur = s, hops = 0, first: Stream | undefined, firstGap = 0;
    this.visitMark++;
    s.visit = 0;
    for (;;) {
      let next: Stream | undefined, gap = 0;
      for (let i = 0; i < this.streams.length; i++) {
        const x = this.streams[i];
        if (x === cur || x.visit === this.visitMark) continue;
        const t = this.raisesOn(x, cur.u32, cur.head * RW, cur.hkey + this.race);
        if (t === t) { next = x; gap = t - cur.hkey; break; } // not NaN
      }
      if (!next) return cur === s ? -1 : cur.id;
      if (!first) { first = next; firstGap = gap; }
      // a cycle (each about to be granted what another gives up): the tighter race wins
      if (next === s) return firstGap <= gap ? first.id : -1;
      if (!this.lowering(next.u32, next.head * RW) || ++hops >= this.streams.length || !this.holdable(next)) return next.id;
      next.visit = this.visitMark;
      cur = next;
    }
  }

  /**
   * May the stream's head be held back for a race? Only when what follows it within the window is
   * known (queued, or the stream ended): a live stream may still deliver it. (A leave among it is
   * no reason: survivors' grants after a node leaves wait for recovery, a membership change that
   * takes far longer than the window.)
   */
  private holdable(s: Stream): boolean {
    if (s.ended) return true;
    const u32 = s.u32, lim = u32[s.head * RW + W.tsHi] * TWO32 + u32[s.head * RW + W.tsLo] + this.race;
    const last = s.tail - 1;
    return last > s.head && u32[last * RW + W.tsHi] * TWO32 + u32[last * RW + W.tsLo] > lim;
  }

  /**
   * Is stream x, ready now, about to be granted (up to aligned time lim) on the resource of record
   * b of u32? The grant's aligned time, or NaN.
   */
  private raisesOn(x: Stream, u32: Uint32Array, b: number, lim: number): number {
    if (x.head === x.tail || x.hstate !== 1 || x.messages === 0) return NaN;
    const klm = u32[b + W.kindLenMode], len = (klm >>> 16) & 0xff, ls = u32[b + W.ls];
    const words = (len + 3) >> 2;
    const xu = x.u32, off = this.clock.offset[x.id];
    for (let j = x.head, e = Math.min(x.tail, x.head + 64); j < e; j++) {
      const c = j * RW;
      const t = xu[c + W.tsHi] * TWO32 + xu[c + W.tsLo] - off;
      if (t > lim) return NaN;
      const xk = xu[c + W.kindLenMode];
      const kind = xk & 0xffff;
      if (kind === Kind.MSG_RECV && j > x.head && !this.sends.has(xu, c)) return NaN; // waits for a send: not "about to"
      if (kind !== Kind.COMPLETION || xu[c + W.status] !== 0) continue;
      if (((xu[c + W.tail] >>> 24) & RF_HISTORY) !== 0 || xu[c + W.ls] !== ls || ((xk >>> 16) & 0xff) !== len) continue;
      let same = true;
      for (let w = 0; w < words && same; w++) same = xu[c + W.name + w] === u32[b + W.name + w];
      if (same) return t;
    }
    return NaN;
  }

  /**
   * When nothing can move, which blocked receive is let through first: 0 its sender already sent
   * that node a later sequence number, 1 its sender's stream lost records (or is unknown), 2 no
   * sign its send is lost (the clocks decide among equals).
   */
  private lostRank(s: Stream): number {
    const u32 = s.u32, b = s.head * RW;
    const src = u32[b + W.msgSrc], dst = u32[b + W.msgDst];
    if (dst !== 0) {
      const last = this.lastSent.get(src, dst, -1);
      if (last >= 0) {
        const d = (last - u32[b + W.msgSeq]) >>> 0;
        if (d >= 1 && d < 1 << 20) return 0;
      }
    }
    const owner = this.nodeOwner.get(src, 0, 0) - 1;
    return owner < 0 || this.streams[owner].losses > 0 ? 1 : 2;
  }

  /** Why a blocked receive may go without its send now, or -1. */
  private orphanReason(s: Stream, now: number): number {
    const u32 = s.u32, b = s.head * RW;
    const src = u32[b + W.msgSrc];
    const owner = this.nodeOwner.get(src, 0, 0) - 1;
    if (owner < 0) {
      if (this.unmonitored.get(src, 0, 0) === 1) return R_NO_STREAM;
      if (!this.live && this.sealed && this.unknownNodeStreams === 0) return R_NO_STREAM;
    } else if (owner === s.id) {
      return R_MISSING; // the send would be earlier in this very stream
    } else {
      const x = this.streams[owner];
      if (x.ended && x.head === x.tail) return R_SENDER_ENDED;
      const dst = u32[b + W.msgDst];
      if (dst !== 0) {
        const last = this.lastSent.get(src, dst, -1);
        if (last >= 0) {
          const d = (last - u32[b + W.msgSeq]) >>> 0;
          if (d >= SEQ_SLACK && d < 1 << 20) return R_SEQ;
        }
      }
      const u = this.clock.uncertainty(owner, s.id);
      if (u !== Infinity && x.lastEmittedTs !== -Infinity) {
        const xPos = x.lastEmittedTs - this.clock.offset[owner];
        const rPos = u32[b + W.tsHi] * TWO32 + u32[b + W.tsLo] - this.clock.offset[s.id];
        if (xPos > rPos + 2 * u + this.skew) return R_CLOCK;
      }
    }
    if (this.live) {
      if (s.queued >= this.maxQueue) return R_MEMORY;
      if (now - s.blockedSince > this.recvWaitMs) {
        if (owner < 0) this.unmonitored.set(src, 0, 1);
        return R_TIMEOUT;
      }
    }
    return -1;
  }

  private ensureOut(n: number): void {
    if ((this.outN + n) * RECORD_SIZE <= this.out.byteLength) return;
    let cap = this.out.byteLength / RECORD_SIZE;
    while (cap < this.outN + n) cap *= 2;
    const nb = new Uint8Array(cap * RECORD_SIZE);
    nb.set(this.out.subarray(0, this.outN * RECORD_SIZE));
    this.out = nb;
    this.outU32 = new Uint32Array(nb.buffer);
    this.outI32 = new Int32Array(nb.buffer);
  }

  private emitOne(s: Stream): void {
    if (s.head === s.tail) { this.emitLeaves(s); return; }
    this.ensureOut(1);
    const src = s.u32, out = this.outU32;
    const sb = s.head * RW, ob = this.outN * RW;
    for (let w = 0; w < RW; w++) out[ob + w] = src[sb + w];
    this.outN++;
    this.emittedTotal++;
    const kind = out[ob + W.kindLenMode] & 0xffff;
    const key = s.hkey;
    if (kind === Kind.MSG_SEND) {
      s.sends++;
      this.sends.insert(out, ob, s.id, this.emittedTotal);
      const dst = out[ob + W.msgDst];
      if (dst !== 0) this.lastSent.set(out[ob + W.msgSrc], dst, out[ob + W.msgSeq]);
      this.sendsEmitted++;
    } else if (kind === Kind.MSG_RECV) {
      s.receives++;
      if (s.orphan >= 0) {
        s.orphans++;
        this.orphanCounts[s.orphan]++;
        this.logFallback('orphan-receive', s, out[ob + W.node], key, ORPHAN_REASONS[s.orphan]);
      }
    } else if (kind === Kind.NODE_LEAVES_LS) {
      this.logFallback('leave', s, out[ob + W.node], key);
    } else if (kind === Kind.LOSS) {
      s.losses++;
      // the messages it lost took their send->receive edges with them: what they ordered
      // (a lost receive leaves its send unmatched, nothing flags it) now rests on clocks
      this.logFallback('loss', s, out[ob + W.node], key);
    }
    if (s.stale) {
      if (key < this.frontier - this.skew) {
        this.lateRecords++;
        this.logFallback('late', s, out[ob + W.node], key);
      }
      s.stale = false;
    }
    if (key > this.frontier) this.frontier = key;
    s.lastEmittedTs = out[ob + W.tsHi] * TWO32 + out[ob + W.tsLo];
    s.lastEmitSeq = this.emittedTotal;
    s.emitted++;
    s.head++;
    s.hstate = 0;
    s.orphan = -1;
  }

  /** The stream ended: its nodes leave every lockspace they were in, as recovery purges them. */
  private emitLeaves(s: Stream): void {
    s.leavesDone = true;
    const pairs = s.pairs.entries().filter(([, ls]) => ls !== 0);
    this.ensureOut(pairs.length);
    const aligned = s.lastTs - this.clock.offset[s.id];
    for (const [node, ls] of pairs) {
      writeRecord(this.outU32, this.outI32, this.out, this.outN, {
        kind: Kind.NODE_LEAVES_LS, ts: s.lastTs, node, ls, aux: 0, src: Src.RELEASE_LS, rflags: RF_SYNTH,
      });
      this.outN++;
      this.emittedTotal++;
      s.synthLeaves++;
      this.logFallback('synthetic-leave', s, node, aligned);
      const f = this.fallbacks[this.fallbacks.length - 1];
      if (f && f.kind === 'synthetic-leave' && f.seq === this.emittedTotal) f.lastSeq = s.lastEmitSeq;
    }
    if (aligned > this.frontier) this.frontier = aligned;
  }

  private logFallback(kind: FallbackKind, s: Stream, node: number, aligned: number, reason?: OrphanReason): void {
    if (this.fallbacks.length >= this.fallbackCap) {
      if (this.fallbackOverflowSeq === Infinity) this.fallbackOverflowSeq = this.emittedTotal;
      return;
    }
    this.fallbacks.push({ seq: this.emittedTotal, kind, stream: s.id, node, aligned, ...(reason ? { reason } : {}) });
  }

  // =====================================================================
  // what the report and the stats line need (allocates; not per record)
  // =====================================================================

  /** The stream that carries this node's records (the latest one when several did), or -1. */
  streamOfNode(node: number): number {
    return this.nodeOwner.get(node, 0, 0) - 1;
  }

  /** Offset of a stream's clock on its timeline (aligned = raw - offset). */
  offsetOf(id: number): number { return this.clock.offset[id]; }

  /** Half-width of the clock offset interval between two streams (Infinity when they have no messages both ways). */
  uncertainty(a: number, b: number): number { return a === b ? 0 : this.clock.uncertainty(a, b); }

  /** Are the two streams' order decided by their messages (both have message events and share a timeline)? */
  causalPair(a: number, b: number): boolean {
    if (a === b) return true;
    const x = this.streams[a], y = this.streams[b];
    return x.messages > 0 && y.messages > 0 && this.clock.related(a, b);
  }

  /** Newest raw timestamp a stream has shown (record or heartbeat), aligned; -Infinity when none. */
  alignedPosition(id: number): number {
    const s = this.streams[id];
    const t = Math.max(s.lastTs, s.wm);
    return t === -Infinity ? t : t - this.clock.offset[id];
  }

  /** Ms since the stream last delivered anything (live). */
  idleMs(id: number): number { return this.nowFn() - this.streams[id].lastDataMs; }

  stats(): StreamStats[] {
    return this.streams.map((s) => {
      const root = this.clock.root[s.id];
      const u = this.clock.width[s.id];
      const nodes = [...new Set(s.pairs.entries().map(([n]) => n))].sort((a, b) => a - b);
      return {
        name: s.name, nodes, records: s.records, emitted: s.emitted, queued: s.queued,
        sends: s.sends, receives: s.receives, matched: s.matched, orphans: s.orphans, losses: s.losses,
        syntheticLeaves: s.synthLeaves, ended: s.ended,
        clockOffsetNs: this.clock.offset[s.id], clockRoot: this.streams[root].name,
        offsetUncertaintyNs: u === Infinity ? null : u,
        causal: s.messages > 0, lastTs: s.lastTs === -Infinity ? 0 : s.lastTs,
      };
    });
  }

  get pendingSends(): number { return this.sends.count; }
  get evictedSends(): number { return this.sends.evicted; }
  get clockSamples(): number { return this.clock.samples; }
}
