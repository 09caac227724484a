// Binary min-heaps for the simulator: the discrete-event queue on (time, insertion sequence), so
// events at the same instant run in the order they were scheduled, and the free lkb ids (the
// kernel's idr hands out the lowest free id). One sift implementation, ordered by `less`.

export class MinHeap<T> {
  private h: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.h.length;
  }

  clear(): void {
    this.h.length = 0;
  }

  push(x: T): void {
    const h = this.h, less = this.less;
    let i = h.length;
    h.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(x, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = x;
  }

  /** The least element, or undefined when empty. */
  pop(): T | undefined {
    const h = this.h, less = this.less;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && less(h[r], h[l]) ? r : l;
        if (!less(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

export interface SimEvent {
  t: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap = new MinHeap<SimEvent>((a, b) => a.t < b.t || (a.t === b.t && a.seq < b.seq));
  private seq = 0;

  get size(): number {
    return this.heap.size;
  }

  push(t: number, run: () => void): void {
    this.heap.push({ t, seq: this.seq++, run });
  }

  pop(): SimEvent | undefined {
    return this.heap.pop();
  }
}

/** Min-heap of small integers (free lkb ids). */
export class IntMinHeap extends MinHeap<number> {
  constructor() {
    super((a, b) => a < b);
  }
}
