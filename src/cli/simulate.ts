// --simulate: the seeded DLM cluster model, verified end to end. With --inject
// the simulator makes exactly one grant incompatible and says which; the run
// prints whether the monitor found that very incident.
import { hostname } from 'node:os';
import { simulate, BUG_KINDS, type GroundTruth } from '../sim';
import { CaptureWriter } from '../io/capture';
import { UsageError } from '../errors';
import { RECORD_SIZE } from '../record/layout';
import { toHex, toPrintable } from '../record/names';
import { modeName } from '../record/layout';
import { VERSION } from '../version';
import type { Session } from './session';
import { checkWritable } from './output';

export interface SimulateArgs {
  nodes: number;
  seed: number;
  events: number;
  inject?: string;
  flavor: 'mainline' | 'namespace';
  record?: string;
}

const BATCH = 4096;

export function truthJson(t: GroundTruth) {
  return {
    kind: t.kind,
    seq: t.recordIndex + 1,
    ts: t.ts,
    ls: t.ls,
    res: toPrintable(t.name),
    res_hex: toHex(t.name),
    victim: { node: t.victim.node, lkb: t.victim.lkb, mode: modeName(t.victim.mode) },
    ignored: t.ignored.map((x) => ({ node: x.node, lkb: x.lkb, effective: modeName(x.effectiveMode) })),
  };
}

export async function runSimulate(session: Session, a: SimulateArgs): Promise<number> {
  if (a.inject !== undefined && !BUG_KINDS.includes(a.inject)) {
    throw new UsageError(`--inject: unknown bug kind "${a.inject}"; choose one of ${BUG_KINDS.join(', ')}`);
  }
  if (a.record) checkWritable(a.record, '--record');
  const t0 = Date.now();
  const sim = simulate({ nodes: a.nodes, seed: a.seed, events: a.events, flavor: a.flavor, inject: a.inject });
  const genMs = Date.now() - t0;
  const truth = sim.truth ? truthJson(sim.truth) : undefined;
  const m = session.start({
    source: 'simulate',
    host: hostname(),
    kernel: null,
    flavor: a.flavor,
    probes: [],
    simulation: { nodes: a.nodes, seed: a.seed, events: a.events, flavor: a.flavor, inject: a.inject ?? null, records: sim.records.count, truth: truth ?? null },
  });
  const bytes = sim.records.bytes();
  if (a.record) {
    const w = new CaptureWriter(a.record, {
      host: hostname(), kernel_release: 'simulated', probes: [], node_id: null, flavor: `sim-${a.flavor}`,
      source: 'simulate', collector_version: VERSION, start_time: new Date().toISOString(), clock: 'sim',
      simulation: { nodes: a.nodes, seed: a.seed, events: a.events, inject: a.inject ?? null },
    });
    w.write(bytes);
    w.close();
  }
  const t1 = Date.now();
  for (let off = 0; off < bytes.byteLength && !session.stopped; off += BATCH * RECORD_SIZE) {
    session.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + BATCH * RECORD_SIZE)));
  }
  const monMs = Date.now() - t1;
  session.log(`dlm-rv: simulated ${a.nodes} node(s), ${a.flavor} hooks, seed ${a.seed}: ${sim.records.count} events in ${genMs} ms; verified in ${monMs} ms`);
  if (truth) {
    const found = m.violations.find((v) => v.seq === truth.seq && v.res_hex === truth.res_hex);
    session.log(`dlm-rv: injected ${truth.kind} at seq ${truth.seq} on ls ${truth.ls} res ${JSON.stringify(truth.res)}: ` +
      `node ${truth.victim.node} lkb 0x${truth.victim.lkb.toString(16)} granted ${truth.victim.mode} over ` +
      truth.ignored.map((x) => `node ${x.node} lkb 0x${x.lkb.toString(16)}`).join(', ') +
      ` -> ${found ? `found as violation #${found.id}` : 'NOT FOUND by the monitor'}`);
  }
  return session.finish();
}
