// dlm-rv simulator: a deterministic, seeded model of a DLM cluster that emits
// the normalized events of monitor.md section 3 as records, in true simulated
// time order, for either hook flavor. See docs/simulator.md.
import { RecordBuffer } from '../record/buffer';
import { Kind, RECORD_SIZE, Src } from '../record/layout';
import { Engine } from './engine';
import { Rng } from './rng';
import { BUG_KINDS, HAZARD_NAMES, type Flavor, type GroundTruth, type HazardName, type SimOptions, type SimStats } from './types';
import { Workload } from './workload';

export { BUG_KINDS, HAZARD_NAMES };
export type { Flavor, GroundTruth, HazardName, SimOptions, SimStats };

export interface SimResult {
  records: RecordBuffer;
  truth?: GroundTruth;
  stats: SimStats;
}

const START_NS = 1_000_000_000;

function intIn(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`simulate: ${name} must be an integer in ${lo}..${hi} (got ${String(v)})`);
  }
  return v;
}

export function simulate(opts: SimOptions): SimResult {
  const nodes = intIn('nodes', opts.nodes, 1, 8);
  if (typeof opts.seed !== 'number' || !Number.isFinite(opts.seed)) throw new RangeError('simulate: seed must be a number');
  const seed = Math.trunc(opts.seed) | 0;
  const events = intIn('events', opts.events, 0, 100_000_000);
  const flavor: Flavor = opts.flavor ?? 'mainline';
  if (flavor !== 'mainline' && flavor !== 'namespace') {
    throw new RangeError(`simulate: flavor must be 'mainline' or 'namespace' (got ${String(flavor)})`);
  }
  const lockspaces = intIn('lockspaces', opts.lockspaces ?? 2, 1, 8);
  const resources = intIn('resources', opts.resources ?? 8, 1, 64);
  const lossRate = opts.lossRate ?? 0;
  if (typeof lossRate !== 'number' || !(lossRate >= 0 && lossRate <= 1)) throw new RangeError('simulate: lossRate must be in 0..1');
  const inject = opts.inject;
  if (inject !== undefined) {
    if (!BUG_KINDS.includes(inject)) {
      throw new Error(`simulate: unknown bug kind '${inject}'; valid kinds: ${BUG_KINDS.join(', ')}`);
    }
    if (inject === 'ignore-remote-holder' && nodes < 2) {
      throw new RangeError('simulate: ignore-remote-holder needs nodes >= 2 (a holder on another node)');
    }
  }
  const hazards = {} as Record<HazardName, boolean>;
  for (const h of HAZARD_NAMES) hazards[h] = true;
  if (opts.hazards) {
    for (const [k, v] of Object.entries(opts.hazards)) {
      if (!(HAZARD_NAMES as readonly string[]).includes(k)) {
        throw new Error(`simulate: unknown hazard '${k}'; valid hazards: ${HAZARD_NAMES.join(', ')}`);
      }
      if (v !== undefined) hazards[k as HazardName] = !!v;
    }
  }
  const messages = flavor === 'mainline' && (opts.messages ?? true);

  const engine = new Engine({ nodes, flavor, messages, hazards, seed }, Math.max(64, Math.ceil(events * 1.3) + 256));
  engine.now = START_NS;
  engine.clock = START_NS;
  const wl = new Workload(engine, { seed, events, lockspaces, resources, inject, hazards });
  wl.setup();
  wl.start();
  engine.run(400 * (events + 2000));

  const truth = engine.bug?.truth ?? undefined;
  if (inject !== undefined && !truth) throw new Error(`simulate: internal error: bug ${inject} was not placed (seed ${seed})`);
  const stats = engine.stats;
  stats.simTimeNs = engine.clock - START_NS;
  let records = engine.buf;
  if (lossRate > 0) records = applyLoss(records, lossRate, seed, truth ? truth.recordIndex : -1, stats);
  stats.records = records.count;
  return truth ? { records, truth, stats } : { records, stats };
}

/**
 * The collector drops records at random; each run of drops becomes one LOSS
 * record (aux = count) where they were. Records up to the injected bug's
 * truth record are never dropped, so the truth stays observable.
 */
function applyLoss(src: RecordBuffer, rate: number, seed: number, protect: number, stats: SimStats): RecordBuffer {
  const rng = new Rng(seed, 7);
  const out = new RecordBuffer(src.count + 64);
  const bytes = src.bytes();
  let dropped = 0;
  let dropTs = 0;
  const flush = (): void => {
    out.push({ kind: Kind.LOSS, ts: dropTs, node: 0, ls: 0, aux: dropped, src: Src.SIM });
    stats.lossDropped += dropped;
    stats.lossRecords++;
    dropped = 0;
  };
  for (let i = 0; i < src.count; i++) {
    if (i > protect && rng.float() < rate) {
      dropped++;
      dropTs = src.u32[i * 32] + src.u32[i * 32 + 1] * 4294967296;
      continue;
    }
    if (dropped > 0) flush();
    out.appendRaw(bytes.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
  }
  if (dropped > 0) flush();
  return out;
}
