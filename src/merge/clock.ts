// Clock alignment from the messages themselves. Each stream has its own clock (a kernel's boot
// clock, a trace clock); a message a -> b says the receive happened after the send:
//   raw_recv(b) - raw_send(a) = d(a,b) + latency,  latency > 0,  d(a,b) = off(b) - off(a)
// so d(a,b) < min(raw_recv - raw_send) over a -> b messages, and d(a,b) > -min(...) over b -> a.
// With messages both ways the offset is known to within half the smallest round trip, as NTP
// would have it. Minima are kept per second of the sender's clock (clocks drift), and the offsets
// are taken from the seconds around the merge's current position. The merge orders only
// *concurrent* records by these aligned clocks (and decides how long a receive may wait);
// causality never depends on them.
const BW = 2 ** 30; // bucket width, ns of the sender's clock (about a second)
const RING = 256; // buckets kept per ordered pair
const NEAR = 1; // buckets each side of the current one that count

class PairSamples {
  readonly idx = new Float64Array(RING).fill(NaN); // NaN: empty (any bucket index, negative too, is a number)
  readonly min = new Float64Array(RING);
  count = 0;
}

export class ClockAligner {
  private k = 0;
  private pairs: (PairSamples | null)[] = [];
  /** raw - offset = aligned (the timeline of the component's root stream) */
  offset = new Float64Array(8);
  /** the stream whose clock the offset is relative to (itself when it has no message partner) */
  root = new Int32Array(8);
  /** how well the offset is known: the half-widths of the two-way intervals along the path to the root (Infinity: a one-way link) */
  width = new Float64Array(8);
  /** bumped whenever an offset changes: cached keys must be recomputed */
  epoch = 0;
  samples = 0;
  /** new samples since the last update() */
  dirty = false;
  private at = -Infinity; // the aligned time the offsets were computed for

  get streams(): number { return this.k; }

  addStream(): number {
    const id = this.k++;
    if (this.k > this.offset.length) {
      const off = new Float64Array(this.offset.length * 2);
      off.set(this.offset);
      this.offset = off;
      const root = new Int32Array(this.root.length * 2);
      root.set(this.root);
      this.root = root;
      const width = new Float64Array(this.width.length * 2);
      width.set(this.width);
      this.width = width;
    }
    const pairs: (PairSamples | null)[] = new Array(this.k * this.k).fill(null);
    for (let i = 0; i < id; i++) for (let j = 0; j < id; j++) pairs[i * this.k + j] = this.pairs[i * id + j];
    this.pairs = pairs;
    this.root[id] = id;
    return id;
  }

  /** A message from stream a (sent at raw sendTs) received on stream b (at raw recvTs). */
  sample(a: number, b: number, sendTs: number, recvTs: number): void {
    if (a === b) return;
    this.samples++;
    let p = this.pairs[a * this.k + b];
    if (!p) p = this.pairs[a * this.k + b] = new PairSamples();
    const i = Math.floor(sendTs / BW);
    const slot = ((i % RING) + RING) % RING;
    const d = recvTs - sendTs;
    if (p.idx[slot] !== i) { p.idx[slot] = i; p.min[slot] = d; p.count++; this.dirty = true; } else if (d < p.min[slot]) { p.min[slot] = d; this.dirty = true; }
  }

  /** Upper bound of d(a,b) = off(b) - off(a) from a -> b messages sent around raw time ta of a (Infinity: none). */
  hiAt(a: number, b: number, ta: number): number {
    const p = this.pairs[a * this.k + b];
    if (!p || p.count === 0) return Infinity;
    const i = Math.floor(ta / BW);
    let m = Infinity;
    if (Number.isFinite(i)) {
      for (let j = i - NEAR; j <= i + NEAR; j++) {
        const slot = ((j % RING) + RING) % RING;
        if (p.idx[slot] === j && p.min[slot] < m) m = p.min[slot];
      }
      if (m !== Infinity) return m;
    }
    // nothing near: the nearest second that has messages
    let best = Infinity;
    for (let s = 0; s < RING; s++) {
      const j = p.idx[s];
      if (j !== j) continue;
      const dist = Number.isFinite(i) ? Math.abs(j - i) : ta < 0 ? j : -j;
      if (dist < best || (dist === best && p.min[s] < m)) { best = dist; m = p.min[s]; }
    }
    return m;
  }

  /** Half the width of the offset interval between two streams with messages both ways (at the current position); Infinity otherwise. */
  uncertainty(a: number, b: number): number {
    if (a === b) return 0;
    const hi = this.hiAt(a, b, this.at + this.offset[a]), lo = -this.hiAt(b, a, this.at + this.offset[b]);
    if (hi !== Infinity && lo !== -Infinity) return Math.max(0, (hi - lo) / 2);
    // through other streams: along both paths to the common root
    return this.root[a] === this.root[b] ? this.width[a] + this.width[b] : Infinity;
  }

  /** Do streams a and b share a timeline (connected through messages)? */
  related(a: number, b: number): boolean {
    if (a === b) return true;
    if (this.root[a] !== this.root[b]) return false;
    for (let j = 0; j < this.k; j++) {
      if (j === a) continue;
      const p = this.pairs[a * this.k + j], q = this.pairs[j * this.k + a];
      if ((p && p.count) || (q && q.count)) return true;
    }
    return false;
  }

  /** Offsets for aligned time t along a spanning forest that prefers the tightest pairs (two-way bounds first). */
  update(t: number): void {
    this.dirty = false;
    this.at = t;
    const k = this.k;
    const guess = this.offset;
    const done = new Uint8Array(k);
    const off = new Float64Array(Math.max(8, k));
    const root = new Int32Array(Math.max(8, k));
    const width = new Float64Array(Math.max(8, k));
    for (let r = 0; r < k; r++) {
      if (done[r]) continue;
      done[r] = 1; off[r] = 0; root[r] = r; width[r] = 0;
      for (;;) {
        let bestA = -1, bestB = -1, bestW = Infinity, bestD = 0, bestU = Infinity;
        for (let a = 0; a < k; a++) {
          if (!done[a] || root[a] !== r) continue;
          for (let b = 0; b < k; b++) {
            if (done[b]) continue;
            const hi = this.hiAt(a, b, t + guess[a]), lo = -this.hiAt(b, a, t + guess[b]);
            if (hi === Infinity && lo === -Infinity) continue;
            const two = hi !== Infinity && lo !== -Infinity;
            const w = two ? Math.abs(hi - lo) : 1e18;
            if (w < bestW || bestA < 0) { bestW = w; bestA = a; bestB = b; bestD = two ? (hi + lo) / 2 : hi !== Infinity ? hi : lo; bestU = two ? Math.max(0, (hi - lo) / 2) : Infinity; }
          }
        }
        if (bestA < 0) break;
        off[bestB] = off[bestA] + bestD;
        width[bestB] = width[bestA] + bestU;
        root[bestB] = r;
        done[bestB] = 1;
      }
    }
    let changed = false;
    for (let i = 0; i < k; i++) {
      if (off[i] !== this.offset[i] || root[i] !== this.root[i]) changed = true;
      this.offset[i] = off[i];
      this.root[i] = root[i];
      this.width[i] = width[i];
    }
    if (changed) this.epoch++;
  }

  /** The bucket an aligned time falls in (the merge re-estimates when it moves to the next). */
  static bucket(t: number): number { return Math.floor(t / BW); }
}
