// The causal merge (src/merge) on small, hand-made streams: one rule per test.
import { describe, expect, it } from 'vitest';
import { Merger, runMerge, annotateViolations, ClockAligner, splitByNode, nodesOf, type MergeInput } from '../../src/merge';
import { Monitor } from '../../src/monitor/monitor';
import { RecordBuffer, type RecordFields } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';
import { Kind, LKF, RF_SYNTH, STATUS, modeFromName } from '../../src/record/layout';
import type { Violation } from '../../src/monitor/report';

const LS = 7;
const name = (s: string) => Buffer.from(s, 'latin1');

/** A node's stream from compact events; ts in µs. */
function stream(node: number, evs: (Partial<RecordFields> & { t: number; k: string })[]): RecordBuffer {
  const rb = new RecordBuffer(evs.length + 1);
  const kinds: Record<string, number> = {
    req: Kind.REQUEST, rel: Kind.RELEASE, comp: Kind.COMPLETION, leave: Kind.NODE_LEAVES_LS, send: Kind.MSG_SEND, recv: Kind.MSG_RECV, loss: Kind.LOSS,
  };
  for (const e of evs) {
    const { t, k, ...f } = e;
    rb.push({ node, ls: LS, ...f, kind: kinds[k], ts: t * 1000 });
  }
  return rb;
}
const req = (t: number, lkb: number, res: string, mode: string, flags = 0) => ({ t, k: 'req', lkb, name: name(res), mode: modeFromName(mode)!, flags });
const grant = (t: number, lkb: number, res: string) => ({ t, k: 'comp', lkb, name: name(res), status: 0 });
const unlock = (t: number, lkb: number, res: string) => ({ t, k: 'rel', lkb, name: name(res) });
const unlocked = (t: number, lkb: number, res: string) => ({ t, k: 'comp', lkb, name: name(res), status: STATUS.EUNLOCK });
const send = (t: number, src: number, dst: number, seq: number, type = 1, lkb = 0) => ({ t, k: 'send', msgSrc: src, msgDst: dst, msgSeq: seq, msgType: type, lkb });
const recv = (t: number, src: number, dst: number, seq: number, type = 1, lkb = 0) => ({ t, k: 'recv', msgSrc: src, msgDst: dst, msgSeq: seq, msgType: type, lkb });

function merge(inputs: MergeInput[], opts: ConstructorParameters<typeof Merger>[0] = {}): { out: RecordBuffer; m: Merger; mon: Monitor } {
  const m = new Merger(opts);
  const out = new RecordBuffer(64);
  const mon = new Monitor();
  runMerge(m, inputs, (b) => { out.appendRaw(b); mon.consume(b); });
  annotateViolations(m, mon.violations);
  return { out, m, mon };
}
const recs = (rb: RecordBuffer) => Array.from({ length: rb.count }, (_, i) => decodeRecord(rb.u8, rb.u32, rb.i32, i));
const inp = (node: number, records: RecordBuffer): MergeInput => ({ name: `node${node}`, nodes: [node], records });

describe('happens-before', () => {
  it('a receive comes after its send even when the receiver\'s clock reads 70 ms earlier (the real two-node traces)', () => {
    // node 1 masters "r": it holds EX, unlocks, and grants node 2 (GRANT message); node 2's clock is 70 ms behind
    const B = 100_000; // µs; node 2's clock reads 70 ms less
    const n1 = stream(1, [req(B + 100, 1, 'r', 'EX'), grant(B + 101, 1, 'r'), recv(B + 200, 2, 1, 1), unlock(B + 300, 1, 'r'), unlocked(B + 301, 1, 'r'), send(B + 302, 1, 2, 1, 9)]);
    const n2 = stream(2, [req(B + 150 - 70_000, 1, 'r', 'EX'), send(B + 151 - 70_000, 2, 1, 1), recv(B + 350 - 70_000, 1, 2, 1, 9), grant(B + 351 - 70_000, 1, 'r')]);
    const { out, mon, m } = merge([inp(1, n1), inp(2, n2)]);
    expect(mon.violations).toEqual([]);
    const order = recs(out).filter((r) => r.kind !== Kind.NODE_LEAVES_LS).map((r) => `${r.node}:${r.kind}:${r.ts / 1000 - B}`);
    expect(order.indexOf('1:10:302')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('1:10:302')).toBeLessThan(order.indexOf('2:11:-69650'));
    expect(order.indexOf('2:10:-69849')).toBeLessThan(order.indexOf('1:11:200'));
    expect(m.stats().map((s) => s.matched)).toEqual([1, 1]);
    // a timestamp merge would have granted node 2 first
    const byTime = new Monitor();
    const all = [...recs(n1), ...recs(n2)].sort((a, b) => a.ts - b.ts);
    const rb = new RecordBuffer(16);
    for (const r of all) rb.push(r);
    byTime.consume(rb.bytes());
    expect(byTime.violations.length).toBe(1);
  });

  it('each stream keeps its own order; the merged stream holds every record once', () => {
    const n1 = stream(1, [req(1, 1, 'a', 'PR'), grant(2, 1, 'a'), send(3, 1, 2, 1), unlock(9, 1, 'a')]);
    const n2 = stream(2, [req(2, 5, 'b', 'EX'), recv(4, 1, 2, 1), grant(5, 5, 'b')]);
    const { out } = merge([inp(1, n1), inp(2, n2)]);
    const rs = recs(out).filter((r) => !(r.rflags & RF_SYNTH));
    expect(rs.length).toBe(7);
    expect(rs.filter((r) => r.node === 1).map((r) => r.ts)).toEqual(recs(n1).map((r) => r.ts));
    expect(rs.filter((r) => r.node === 2).map((r) => r.ts)).toEqual(recs(n2).map((r) => r.ts));
  });

  it('6.1 (no destination): sends of one node with the same sequence number to two peers are told apart by their fields', () => {
    // node 1 sends seq 5 to node 2 (lkid 11) and to node 3 (lkid 12); 6.1 prints no dst
    const n1 = stream(1, [send(10, 1, 0, 5, 1, 11), send(11, 1, 0, 5, 1, 12)]);
    const n2 = stream(2, [recv(12, 1, 0, 5, 1, 11)]);
    const n3 = stream(3, [recv(13, 1, 0, 5, 1, 12)]);
    const { m } = merge([inp(1, n1), inp(2, n2), inp(3, n3)]);
    expect(m.stats().map((s) => [s.matched, s.orphans])).toEqual([[0, 0], [1, 0], [1, 0]]);
    expect(m.ambiguousMatches).toBe(0);
  });
});

describe('receives without their send', () => {
  it('from a node no stream carries: let through at once (offline), counted', () => {
    const n1 = stream(1, [recv(5, 9, 1, 1), req(6, 1, 'a', 'EX'), grant(7, 1, 'a')]);
    const n2 = stream(2, [req(1, 1, 'b', 'EX')]);
    const { m } = merge([inp(1, n1), inp(2, n2)]);
    expect(m.orphanCounts[0]).toBe(1); // no-stream
    expect(m.fallbacks.find((f) => f.kind === 'orphan-receive')?.reason).toBe('no-stream');
  });

  it('lost with the sender\'s records (a LOSS): let through once the sender sent that node later sequence numbers', () => {
    const sends = Array.from({ length: 80 }, (_, i) => send(100 + i, 1, 2, i + 1));
    const n1 = stream(1, [{ t: 50, k: 'loss', aux: 3, ls: 0 }, ...sends.slice(3)]); // seq 1..3 lost
    const n2 = stream(2, Array.from({ length: 80 }, (_, i) => recv(101 + i, 1, 2, i + 1)));
    const { m } = merge([inp(1, n1), inp(2, n2)]);
    const st = m.stats();
    expect(st[1].matched).toBe(77);
    expect(st[1].orphans).toBe(3);
    expect(m.fallbacks.filter((f) => f.kind === 'orphan-receive').map((f) => f.reason)).toEqual(['seq-passed', 'seq-passed', 'seq-passed']);
  });

  it('whatever cannot move is let through by clock (a stall), never a deadlock', () => {
    // each waits for a send the other has behind its own blocked receive (mismatched sequence numbers)
    const n1 = stream(1, [recv(10, 2, 1, 7), send(11, 1, 2, 1)]);
    const n2 = stream(2, [recv(10, 1, 2, 9), send(11, 2, 1, 1)]);
    const { out, m } = merge([inp(1, n1), inp(2, n2)]);
    expect(recs(out).filter((r) => !(r.rflags & RF_SYNTH)).length).toBe(4);
    expect(m.stallBreaks).toBeGreaterThan(0);
  });

  it('live: a receive waits at most recvWaitMs for its send, and a silent stream holds the others back at most lagMs', () => {
    let now = 0;
    const m = new Merger({ live: true, now: () => now, recvWaitMs: 500, lagMs: 200 });
    const a = m.addStream('a', { nodes: [1] }), b = m.addStream('b', { nodes: [2] });
    m.push(a, stream(1, [req(1, 1, 'x', 'EX'), recv(2, 2, 1, 1), grant(3, 1, 'x')]).bytes());
    m.push(b, stream(2, [req(1, 1, 'y', 'EX')]).bytes());
    const n = (u: Uint8Array) => u.byteLength / 128;
    expect(n(m.pull())).toBe(2); // a's request, b's request; a waits for its receive's send
    now = 300; // b is silent: it stops holding a back, but a's receive still waits for its send
    expect(n(m.pull())).toBe(0);
    now = 600;
    expect(n(m.pull())).toBe(2);
    expect(m.fallbacks.find((f) => f.kind === 'orphan-receive')?.reason).toBe('timeout');
  });
});

describe('nodes that leave', () => {
  it('a node whose stream ends leaves its lockspaces (synthetic NODE_LEAVES_LS): no false alarm when a survivor is then granted', () => {
    // node 2 holds EX on "r" and vanishes (its trace ends, as at an unmount or a crash); node 1 is granted EX after recovery
    const n2 = stream(2, [req(10, 1, 'r', 'EX'), grant(11, 1, 'r'), send(12, 2, 1, 1)]);
    const n1 = stream(1, [recv(13, 2, 1, 1), req(20, 3, 'r', 'EX'), grant(50_000, 3, 'r')]);
    const { out, mon } = merge([inp(1, n1), inp(2, n2)]);
    expect(mon.violations).toEqual([]);
    const leaves = recs(out).filter((r) => r.kind === Kind.NODE_LEAVES_LS);
    expect(leaves.map((r) => [r.node, r.ls, r.rflags & RF_SYNTH])).toEqual([[2, LS, RF_SYNTH], [1, LS, RF_SYNTH]]);
    // without the leave, the monitor would see node 2 holding EX still
    const plain = new Monitor();
    plain.consume(recs(out).filter((r) => r.kind !== Kind.NODE_LEAVES_LS).reduce((rb, r) => { rb.push(r); return rb; }, new RecordBuffer(16)).bytes());
    expect(plain.violations.length).toBe(1);
  });

  it('a node leaving a lockspace (a real NODE_LEAVES_LS) is placed before the survivors\' recovery by the aligned clocks', () => {
    const n2 = stream(2, [req(10, 1, 'r', 'EX'), grant(11, 1, 'r'), send(12, 2, 1, 1), recv(30, 1, 2, 2), { t: 1000, k: 'leave' }, req(5000, 1, 'z', 'NL')]);
    const n1 = stream(1, [recv(13, 2, 1, 1), send(20, 1, 2, 2), req(1500, 3, 'r', 'EX'), grant(2000, 3, 'r')]);
    const { mon } = merge([inp(1, n1), inp(2, n2)]);
    expect(mon.violations).toEqual([]);
  });
});

describe('clocks', () => {
  it('offsets from messages both ways, to within half the smallest round trip', () => {
    const c = new ClockAligner();
    const a = c.addStream(), b = c.addStream();
    const d = 5_000_000; // b's clock reads 5 ms ahead
    for (let i = 0; i < 100; i++) {
      const t = 1e9 + i * 1e6;
      c.sample(a, b, t, t + d + 20_000 + (i % 7) * 1000); // a -> b, 20..26 µs
      c.sample(b, a, t + d, t + 30_000 + (i % 5) * 1000); // b -> a, 30..34 µs
    }
    c.update(1e9 + 50e6);
    expect(Math.abs(c.offset[b] - c.offset[a] - d)).toBeLessThanOrEqual(25_000);
    expect(c.uncertainty(a, b)).toBe(25_000);
    expect(c.related(a, b)).toBe(true);
  });

  it('a stream without message events is ordered by its timestamps, and verdicts resting on it say so', () => {
    const n1 = stream(1, [req(1, 1, 'r', 'EX'), grant(2, 1, 'r'), unlock(10, 1, 'r')]);
    const n2 = stream(2, [req(3, 1, 'r', 'EX'), grant(4, 1, 'r'), unlock(10, 1, 'r')]);
    const { mon } = merge([inp(1, n1), inp(2, n2)]);
    expect(mon.violations.length).toBe(1);
    const v = mon.violations[0] as Violation & { ordering?: string; ordering_note?: string };
    expect(v.ordering).toBe('clock-fallback');
    expect(v.ordering_note).toMatch(/no messages relate their streams/);
  });

  it('a conflict the messages order is "causal"', () => {
    const n1 = stream(1, [req(1, 1, 'r', 'EX'), grant(2, 1, 'r'), send(3, 1, 2, 1), recv(9, 2, 1, 1), unlock(50, 1, 'r')]);
    const n2 = stream(2, [send(1, 2, 1, 1), recv(4, 1, 2, 1), req(5, 1, 'r', 'EX'), grant(6, 1, 'r'), unlock(50, 1, 'r')]);
    const { mon } = merge([inp(1, n1), inp(2, n2)]);
    expect(mon.violations.length).toBe(1);
    expect((mon.violations[0] as Violation & { ordering?: string }).ordering).toBe('causal');
  });
});

describe('races the DLM leaves open', () => {
  it('an unlock on one node and a grant on another within the race window: the grant is shown first', () => {
    // node 1 holds EX and unlocks 1 µs after node 2 was granted EX (a master that ignored it): with
    // nothing ordering them, the merge shows the overlap rather than hide it
    const n1 = stream(1, [req(1, 1, 'r', 'EX'), grant(2, 1, 'r'), send(3, 1, 2, 1), recv(8, 2, 1, 1), unlock(101, 1, 'r'), req(500, 2, 'q', 'NL')]);
    const n2 = stream(2, [send(1, 2, 1, 1), recv(6, 1, 2, 1), req(99, 1, 'r', 'EX'), grant(100, 1, 'r'), req(500, 2, 'q', 'NL')]);
    const { mon } = merge([inp(1, n1), inp(2, n2)]);
    expect(mon.violations.length).toBe(1);
    const n1b = stream(1, [req(1, 1, 'r', 'EX'), grant(2, 1, 'r'), send(3, 1, 2, 1), recv(8, 2, 1, 1), unlock(99.5, 1, 'r'), req(500, 2, 'q', 'NL')]);
    expect(merge([inp(1, n1b), inp(2, n2)]).mon.violations.length).toBe(1); // half a µs before, still within the window
    expect(merge([inp(1, n1b), inp(2, n2)], { raceWindowNs: 0 }).mon.violations.length).toBe(0);
  });
});

describe('helpers', () => {
  it('splitByNode and nodesOf', () => {
    const rb = new RecordBuffer(4);
    rb.push({ kind: Kind.REQUEST, ts: 1, node: 2, ls: 1, lkb: 1, name: name('a'), mode: 5, flags: LKF.NOQUEUE });
    rb.push({ kind: Kind.LOSS, ts: 2, node: 0, ls: 0, aux: 1 });
    rb.push({ kind: Kind.REQUEST, ts: 3, node: 1, ls: 1, lkb: 1, name: name('a'), mode: 5 });
    expect(nodesOf(rb)).toEqual([1, 2]);
    const parts = splitByNode(rb);
    expect([...parts.keys()].sort()).toEqual([1, 2]);
    expect(parts.get(2)!.count).toBe(2); // its request and the LOSS
    expect(parts.get(1)!.count).toBe(2);
  });
});
