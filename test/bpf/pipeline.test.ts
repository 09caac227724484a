// The whole live pipeline without a DLM: simulator records -> addon feed() -> BPF test
// program (the same encoder helpers as every hook) -> the ring buffer -> the addon's drain
// -> Monitor. What comes out must be what went in, byte for byte, and the monitor's
// verdicts must be those of feeding it directly.
import { describe, it, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import { simulate, BUG_KINDS } from '../../src/sim';
import { Monitor } from '../../src/monitor/monitor';
import { RecordBuffer } from '../../src/record/buffer';
import { Kind, RECORD_SIZE, W, RF_SYNTH } from '../../src/record/layout';
import { toHex } from '../../src/record/names';
import { openCollector, type Collector } from '../../src/live';
import { bpfAvailable, title } from './helpers';

const bpf = bpfAvailable();
const open: Collector[] = [];
afterEach(() => {
  while (open.length) open.pop()!.close();
});

function collector(o: Partial<Parameters<typeof openCollector>[0]> = {}): Collector {
  const c = openCollector({ mode: 'test', ...o });
  open.push(c);
  return c;
}

/** Everything the collector delivers, concatenated (batches are views of a reused buffer: copy). */
function sink(c: Collector): RecordBuffer {
  const out = new RecordBuffer(1024);
  c.onBatch((b) => out.appendRaw(b));
  return out;
}

function verdicts(m: Monitor) {
  return m.violations.map((v) => ({ seq: v.seq, res: v.res_hex, node: v.trigger.node, lkb: v.trigger.lkb, why: v.why }));
}

function monitorOf(bytes: Uint8Array, batch = 1000): Monitor {
  const m = new Monitor({ historyWindow: 4096 });
  for (let off = 0; off < bytes.byteLength; off += batch * RECORD_SIZE) m.consume(bytes.subarray(off, Math.min(bytes.byteLength, off + batch * RECORD_SIZE)));
  return m;
}

describe.skipIf(!bpf.ok)('BPF test program -> ring -> addon', () => {
  it(title('records come out byte-identical, in order, across test-run batches'), () => {
    const c = collector();
    const out = sink(c);
    const sim = simulate({ nodes: 4, seed: 11, events: 30000 });
    const n = c.feed(sim.records);
    expect(n).toBe(sim.records.count);
    expect(n).toBeGreaterThan(8192 * 2); // several BPF_PROG_TEST_RUN batches
    expect(out.count).toBe(sim.records.count);
    expect(Buffer.compare(out.bytes(), sim.records.bytes())).toBe(0);
    const s = c.stats();
    expect(s.drops).toBe(0);
    expect(s.perProbe['raw_tp/test_feed']).toBe(n);
    expect(s.records).toBe(n);
  });

  it(title('every field survives the encoder, names of 0..64 bytes, extreme values'), () => {
    const c = collector();
    const out = sink(c);
    const rb = new RecordBuffer(128);
    for (let len = 0; len <= 64; len++) {
      const name = new Uint8Array(len).map((_, i) => (i * 37 + len) & 0xff);
      rb.push({
        kind: 1 + (len % 11), ts: 2 ** 52 + len * 1e6, node: 0xffffffff - len, ls: len * 0x01010101, lkb: 0x80000000 + len,
        mode: (len % 8) - 2, flags: 0xffffffff, status: -65538 + len, error: -(len + 1), sbFlags: len, pid: 0xfffffffe,
        aux: 0xdeadbeef, msgSrc: 7, msgDst: 8, msgSeq: 0xffffffff, msgType: 255, grmode: (len % 7) - 1, src: len % 17, rflags: len & 0xf, name,
      });
    }
    c.feed(rb);
    expect(Buffer.compare(out.bytes(), rb.bytes())).toBe(0);
  });

  it(title('the lockspace and name-prefix filters run in BPF'), () => {
    const sim = simulate({ nodes: 3, seed: 5, events: 5000, lockspaces: 3 });
    const u32 = sim.records.u32;
    const lsIds = [...new Set(Array.from({ length: sim.records.count }, (_, i) => u32[i * 32 + W.ls]))];
    expect(lsIds.length).toBeGreaterThan(1);
    const keep = lsIds[0];
    const c = collector({ lockspaces: [keep] });
    const out = sink(c);
    c.feed(sim.records);
    const want = new RecordBuffer(1024);
    for (let i = 0; i < sim.records.count; i++) if (u32[i * 32 + W.ls] === keep) want.appendRaw(sim.records.bytes().subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
    expect(out.count).toBe(want.count);
    expect(Buffer.compare(out.bytes(), want.bytes())).toBe(0);

    const rb = new RecordBuffer(8);
    const enc = new TextEncoder();
    for (const n of ['gfs2-a', 'gfs2-bb', 'other', 'gf', '']) rb.push({ kind: Kind.REQUEST, ts: 1, node: 1, ls: 1, lkb: 1, name: enc.encode(n) });
    const c2 = collector({ namePrefix: 'gfs2-' });
    const out2 = sink(c2);
    c2.feed(rb);
    const names = Array.from({ length: out2.count }, (_, i) => new TextDecoder().decode(out2.u8.subarray(i * 128 + 64, i * 128 + 64 + ((out2.u32[i * 32 + 2] >>> 16) & 0xff))));
    expect(names).toEqual(['gfs2-a', 'gfs2-bb', '']); // records without a name pass
  });

  it(title('drains from the event loop (uv_poll on the ring) as well as synchronously'), async () => {
    const c = collector();
    const out = sink(c);
    c.start();
    const sim = simulate({ nodes: 2, seed: 3, events: 20000 });
    c.feed(sim.records, { drain: false });
    const t0 = Date.now();
    while (out.count < sim.records.count && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 5));
    expect(out.count).toBe(sim.records.count);
    expect(Buffer.compare(out.bytes(), sim.records.bytes())).toBe(0);
    expect(c.drain()).toBe(0);
  });

  it(title('a throwing batch callback surfaces to the caller of feed()/drain()'), () => {
    const c = collector();
    c.onBatch(() => { throw new Error('boom'); });
    const sim = simulate({ nodes: 1, seed: 1, events: 200 });
    expect(() => c.feed(sim.records)).toThrow('boom');
  });

  it(title('close() is idempotent and keeps the final stats'), () => {
    const c = collector();
    sink(c);
    c.feed(simulate({ nodes: 1, seed: 2, events: 500 }).records);
    c.close();
    c.close();
    expect(c.closed).toBe(true);
    expect(c.stats().records).toBeGreaterThan(0);
    expect(() => c.drain()).toThrow(/closed/);
  });
});

const RUNS_OK = Number(process.env.DLMRV_BPF_RUNS ?? 50);
const RUNS_BUG = Number(process.env.DLMRV_BPF_BUG_RUNS ?? 20);

describe.skipIf(!bpf.ok)('monitor verdicts through the BPF pipeline equal direct verdicts', () => {
  let c: Collector | undefined;
  let out: RecordBuffer;
  const through = (rb: RecordBuffer): RecordBuffer => {
    if (!c || c.closed) {
      c = collector();
      out = new RecordBuffer(4096);
      c.onBatch((b) => out.appendRaw(b));
    }
    out.clear();
    c.feed(rb);
    return out;
  };

  it(title(`${RUNS_OK} correct executions: identical bytes, zero violations both ways`), () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 200, max: 3000 }),
        fc.constantFrom<'mainline' | 'namespace'>('mainline', 'namespace'),
        (nodes, seed, events, flavor) => {
          const sim = simulate({ nodes, seed, events, flavor });
          const got = through(sim.records);
          expect(Buffer.compare(got.bytes(), sim.records.bytes())).toBe(0);
          const direct = monitorOf(sim.records.bytes());
          const viaBpf = monitorOf(got.bytes(), 333);
          expect(viaBpf.violationCount).toBe(0);
          expect(verdicts(viaBpf)).toEqual(verdicts(direct));
        }),
      { numRuns: RUNS_OK, seed: 424242 },
    );
  });

  for (const kind of BUG_KINDS) {
    it(title(`${RUNS_BUG} executions with ${kind}: the injected violation is found through BPF, as directly`), () => {
      fc.assert(
        fc.property(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 300, max: 3000 }),
          fc.constantFrom<'mainline' | 'namespace'>('mainline', 'namespace'),
          (nodes, seed, events, flavor) => {
            const sim = simulate({ nodes, seed, events, flavor, inject: kind });
            const t = sim.truth!;
            const got = through(sim.records);
            expect(Buffer.compare(got.bytes(), sim.records.bytes())).toBe(0);
            const viaBpf = monitorOf(got.bytes(), 777);
            expect(verdicts(viaBpf)).toEqual(verdicts(monitorOf(sim.records.bytes())));
            const v = viaBpf.violations[0];
            expect(v, `${kind} not found (nodes=${nodes} seed=${seed} events=${events} ${flavor})`).toBeDefined();
            expect(v.seq).toBe(t.recordIndex + 1);
            expect(v.res_hex).toBe(toHex(t.name));
            expect({ node: v.trigger.node, lkb: v.trigger.lkb }).toEqual({ node: t.victim.node, lkb: t.victim.lkb });
          }),
        { numRuns: RUNS_BUG, seed: 99 },
      );
    });
  }
});

describe.skipIf(!bpf.ok)('losses: a tiny ring flooded faster than it is drained', () => {
  function lossStream(c: Collector, rb: RecordBuffer, chunk: number): RecordBuffer {
    const out = sink(c);
    const bytes = rb.bytes();
    for (let off = 0; off < bytes.byteLength; off += chunk * RECORD_SIZE) {
      c.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + chunk * RECORD_SIZE)), { drain: false });
      c.drain();
    }
    c.close(); // the final LOSS for drops after the last record
    return out;
  }

  it(title('drops are counted, surface as LOSS records in stream order, and nothing is invented'), () => {
    const sim = simulate({ nodes: 4, seed: 21, events: 40000 });
    const c = collector({ ringBytes: 8192 }); // 60 records of 136 bytes
    const out = lossStream(c, sim.records, 500);
    const s = c.stats();
    expect(s.drops).toBeGreaterThan(0);
    let lossAux = 0, losses = 0, kept = 0;
    const inBytes = sim.records.bytes();
    let j = 0; // next input record that may match
    for (let i = 0; i < out.count; i++) {
      const kind = out.u32[i * 32 + W.kindLenMode] & 0xffff;
      if (kind === Kind.LOSS) {
        losses++;
        lossAux += out.u32[i * 32 + W.aux];
        expect(out.u32[i * 32 + W.tail] >>> 24).toBe(RF_SYNTH);
        continue;
      }
      // every other record is an input record, in input order
      const rec = out.bytes().subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
      while (j < sim.records.count && Buffer.compare(inBytes.subarray(j * RECORD_SIZE, (j + 1) * RECORD_SIZE), rec) !== 0) j++;
      expect(j).toBeLessThan(sim.records.count);
      j++;
      kept++;
    }
    expect(losses).toBeGreaterThan(0);
    // conservation: what was dropped is exactly what the LOSS records report
    expect(kept + lossAux).toBe(sim.records.count);
    expect(lossAux).toBe(s.drops);
  });

  it(title('the monitor resets on each LOSS and raises no false alarm'), () => {
    let anyLoss = false;
    for (const seed of [1, 2, 3, 4, 5]) {
      const sim = simulate({ nodes: 4, seed, events: 20000 });
      const c = collector({ ringBytes: 4096 });
      const out = lossStream(c, sim.records, 300 + seed * 50);
      const m = monitorOf(out.bytes());
      const sum = m.summary();
      expect(sum.violations).toBe(0);
      if (c.stats().drops > 0) {
        anyLoss = true;
        expect(sum.losses.resets).toBeGreaterThan(0);
        expect(sum.losses.events_dropped).toBe(c.stats().drops);
      }
    }
    expect(anyLoss).toBe(true);
  });

  it(title('drops after the last record are reported by close() as a final LOSS record'), () => {
    const sim = simulate({ nodes: 2, seed: 8, events: 5000 });
    const c = collector({ ringBytes: 4096 });
    const out = sink(c);
    c.feed(sim.records, { drain: false }); // overflows; nothing succeeds after the first drop... until drained
    c.close();
    const last = out.count - 1;
    expect(out.u32[last * 32 + W.kindLenMode] & 0xffff).toBe(Kind.LOSS);
    const s = c.stats();
    let lossAux = 0, kept = 0;
    for (let i = 0; i < out.count; i++) {
      if ((out.u32[i * 32 + W.kindLenMode] & 0xffff) === Kind.LOSS) lossAux += out.u32[i * 32 + W.aux];
      else kept++;
    }
    expect(kept + lossAux).toBe(sim.records.count);
    expect(lossAux).toBe(s.drops);
    expect(s.lossPending).toBe(0);
  });
});

describe('skips are never silent', () => {
  it('reports whether the BPF tests ran', () => {
    if (!bpf.ok) process.stdout.write(`[dlm-rv] BPF pipeline tests skipped: ${bpf.reason}\n`);
    expect(typeof bpf.reason).toBe('string');
  });
});
