// Live mode (`sudo node collect.js`) and the demo (`--demo`): records come out of the
// BPF ring buffer through the addon, in batches, straight into the monitor.
import { hostname } from 'node:os';
import type { Session } from './session';
import type { Collector } from '../live';
import { CaptureWriter } from '../io/capture';
import { VERSION } from '../version';
import { RECORD_SIZE } from '../record/layout';
import { checkWritable } from './output';
import { truthJson } from './simulate';

export interface LiveArgs {
  nodeId?: number;
  duration?: number; // seconds
  record?: string;
  ringMb?: number;
  lockspaces?: number[];
  stats: boolean; // the refreshed stats line (default: on a terminal)
}

/** The collector's probe set, one line per hook (live mode and --send print the same). */
export function probeLines(c: Collector): string[] {
  const out = [`dlm-rv ${VERSION}: kernel ${c.kernel}, probe set ${c.flavor}${c.nodeId !== null ? `, node id ${c.nodeId}` : ''}`];
  for (const p of c.probes) {
    out.push(`  ${p.attached ? 'attached' : 'skipped '} ${p.name}${p.role ? ` (${p.role})` : ''}${p.attached ? '' : `: ${p.reason ?? 'not attached'}`}`);
  }
  for (const n of c.notes) out.push(`  note: ${n}`);
  return out;
}

/** The collector's account once it stopped (live mode and --send). */
export function stoppedLine(reason: string, t0: number, c: Collector): string {
  const s = c.stats();
  return `dlm-rv: stopped (${reason}) after ${((Date.now() - t0) / 1000).toFixed(1)} s; ${s.records} records, ${s.drops} dropped; hits: ` +
    Object.entries(s.perProbe).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ');
}

function rate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n));
}

/** Run until SIGINT/SIGTERM or --duration; returns the exit code. */
export async function runLive(session: Session, a: LiveArgs): Promise<number> {
  if (a.record) checkWritable(a.record, '--record');
  const { openCollector } = await import('../live');
  const c = openCollector({
    mode: 'live',
    nodeId: a.nodeId,
    ringBytes: a.ringMb ? a.ringMb << 20 : undefined,
    lockspaces: a.lockspaces,
    handleSignals: false,
  });
  for (const l of probeLines(c)) session.log(l);
  const m = session.start({
    source: 'live',
    host: hostname(),
    kernel: c.kernel,
    flavor: c.flavor,
    probes: c.probes.map((p) => ({ name: p.name, attached: p.attached, ...(p.reason ? { reason: p.reason } : {}) })),
  });
  const cap = a.record
    ? new CaptureWriter(a.record, {
      host: hostname(), kernel_release: c.kernel, node_id: c.nodeId, flavor: c.flavor, source: 'live',
      collector_version: VERSION, start_time: new Date().toISOString(), clock: 'boot',
      probes: c.probes.map((p) => ({ name: p.name, attached: p.attached, ...(p.reason ? { reason: p.reason } : {}) })),
    })
    : undefined;
  c.onBatch((bytes) => {
    cap?.write(bytes);
    session.feed(bytes);
  });
  c.start();
  session.log(`dlm-rv: monitoring${a.duration ? ` for ${a.duration} s` : ''}; Ctrl-C to stop${a.record ? `, recording to ${a.record}` : ''}`);

  const t0 = Date.now();
  let lastN = 0, lastT = t0;
  const tty = a.stats;
  const tick = setInterval(() => {
    cap?.flush(); // bound what a crash can lose to about a second
    if (!tty) return;
    const now = Date.now(), n = m.eventsSeen;
    const s = c.stats();
    process.stderr.write(`\r\x1b[K${rate((n - lastN) * 1000 / Math.max(1, now - lastT))} events/s, ${rate(n)} total, ` +
      `${m.resourcesTracked} resources, ${m.locksTracked} locks, ${m.violationCount} violations, ${s.drops} drops`);
    lastN = n; lastT = now;
  }, 1000);

  const reason = await new Promise<string>((resolve) => {
    const stop = (why: string) => resolve(why);
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (a.duration) setTimeout(() => stop(`${a.duration} s elapsed`), a.duration * 1000).unref();
    const watch = setInterval(() => { if (session.stopped) { clearInterval(watch); stop('--fail-fast'); } }, 50);
    watch.unref();
  });
  clearInterval(tick);
  if (tty) process.stderr.write('\n');
  c.close(); // drains what is left, and reports drops after the last record as a LOSS
  cap?.close();
  const s = c.stats();
  session.log(stoppedLine(reason, t0, c));
  return session.finish((r) => {
    r.summary.probes = r.context.probes;
    (r.summary as unknown as Record<string, unknown>).collector = { records: s.records, drops: s.drops, hits: s.perProbe };
  });
}

/**
 * The embedded default on machines with no DLM: the simulator's namespace cluster, with
 * one injected violation, pushed through the real BPF ring buffer and the addon.
 */
export async function runDemo(session: Session, a: { seed: number; nodes: number; events: number }): Promise<number> {
  const { openCollector } = await import('../live');
  const { simulate } = await import('../sim');
  const inject = 'ignore-remote-holder';
  const sim = simulate({ nodes: a.nodes, seed: a.seed, events: a.events, flavor: 'namespace', inject });
  const truth = truthJson(sim.truth!);
  const c = openCollector({ mode: 'test' });
  const m = session.start({
    source: 'demo', host: hostname(), kernel: c.kernel, flavor: 'namespace (simulated)',
    probes: c.probes.map((p) => ({ name: p.name, attached: p.attached, ...(p.reason ? { reason: p.reason } : {}) })),
    simulation: { nodes: a.nodes, seed: a.seed, events: a.events, flavor: 'namespace', inject, records: sim.records.count, truth },
  });
  session.log(`dlm-rv demo: a simulated ${a.nodes}-node DLM cluster on one kernel (network namespaces, the RV tracepoints), ` +
    `${sim.records.count} events, with one grant made incompatible on purpose (${inject}).`);
  session.log('  the events go through the real BPF path: test program -> ring buffer -> addon -> monitor');
  c.onBatch((bytes) => session.feed(bytes));
  const bytes = sim.records.bytes();
  const chunk = 4096 * RECORD_SIZE;
  for (let off = 0; off < bytes.byteLength && !session.stopped; off += chunk) {
    c.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + chunk)));
  }
  c.close();
  const s = c.stats();
  const found = m.violations.find((v) => v.seq === truth.seq && v.res_hex === truth.res_hex);
  session.log(`  ${s.records} records came out of the ring buffer, ${s.drops} dropped`);
  session.log(`  injected: at event ${truth.seq}, node ${truth.victim.node} lkb 0x${truth.victim.lkb.toString(16)} was granted ${truth.victim.mode} on ${JSON.stringify(truth.res)} ` +
    `while ${truth.ignored.map((x) => `node ${x.node} lkb 0x${x.lkb.toString(16)} held ${x.effective}`).join(', ')}`);
  if (found) {
    session.log(`  found:    violation #${found.id} at event ${found.seq}: ${found.why}`);
    session.log('  That is what dlm-rv reports on a real DLM: the resource, every lock on it, the incompatible pair and the events before it (see the report).');
  } else {
    session.log('  NOT FOUND: the monitor did not report the injected violation; this is a bug in dlm-rv');
  }
  const code = session.finish();
  // the demo succeeded when it found exactly what it injected
  return found && m.violationCount === 1 ? 0 : code === 0 ? 1 : code;
}
