// --serve [HOST:]PORT: the central verifier. Each node streams its records here (--send); the
// streams are merged causally (src/merge) and verified as one cluster-wide stream. Stops on
// SIGINT / SIGTERM, --duration, or once --streams N streams have ended; everything that arrived
// is merged before the report is written.
import { hostname } from 'node:os';
import type { Session } from './session';
import { EnvError, UsageError } from '../errors';
import { MergeServer } from '../net/server';
import { annotateViolations, mergeContext } from '../merge/annotate';
import { mergeSummaryLines } from './replay';
import type { RunContext } from '../monitor/report';

export interface ServeArgs {
  host?: string;
  port: number;
  duration?: number; // s
  /** stop once this many streams have ended */
  streams?: number;
  skewUs?: number;
  lagMs?: number;
  recvWaitMs?: number;
  departMs?: number;
  /** refreshed stats line (a terminal); otherwise a plain line every 10 s unless quietStats */
  stats: boolean;
  quietStats: boolean;
}

function fmtLag(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export async function runServe(session: Session, a: ServeArgs): Promise<number> {
  const m = session.start({ source: 'serve', host: hostname(), kernel: null, flavor: null, probes: [], inputs: [] });
  const server = new MergeServer({
    host: a.host,
    port: a.port,
    merge: {
      skewBoundNs: a.skewUs !== undefined ? a.skewUs * 1000 : undefined,
      lagMs: a.lagMs,
      recvWaitMs: a.recvWaitMs,
    },
    departMs: a.departMs,
    onBatch: (b) => session.feed(b),
    stopped: () => session.stopped,
    log: session.log,
  });
  let addr;
  try {
    addr = await server.listen();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const where = `${a.host ?? '*'}:${a.port}`;
    if (code === 'EADDRINUSE') throw new EnvError(`--serve ${where}: the port is in use (another verifier?); choose another port or stop that process`);
    if (code === 'EACCES') throw new EnvError(`--serve ${where}: not allowed to listen there (ports below 1024 need root); choose a port above 1023`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new UsageError(`--serve ${where}: ${a.host} is not an address of this machine`);
    throw new EnvError(`--serve ${where}: ${(e as Error).message}`);
  }
  const shown = addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
  session.log(`dlm-rv: verifier listening on ${shown}; on each node run: sudo node collect.js --send ${a.host ?? hostname()}:${addr.port}`);
  session.log(`dlm-rv: ${a.streams ? `stops once ${a.streams} stream${a.streams === 1 ? ' has' : 's have'} ended, ` : ''}` +
    `${a.duration ? `stops after ${a.duration} s, ` : ''}Ctrl-C / SIGTERM to stop and write the report`);

  const t0 = Date.now();
  let lastPlain = Date.now();
  const statsLine = (): string => {
    const per = server.lagInfo().map((s) => `${s.name}: ${s.records} ev, lag ${fmtLag(s.lagMs)}${s.state === 'connected' ? '' : ` (${s.state})`}`);
    return `${m.eventsSeen} merged, ${m.violationCount} violations | ${per.length ? per.join(' | ') : 'no stream yet'}`;
  };
  const tick = setInterval(() => {
    if (a.stats) process.stderr.write(`\r\x1b[K${statsLine()}`);
    else if (!a.quietStats && Date.now() - lastPlain >= 10_000) { lastPlain = Date.now(); session.log(`dlm-rv: ${statsLine()}`); }
  }, 1000);

  let cleanup = (): void => undefined;
  const reason = await new Promise<string>((resolve) => {
    const onInt = (): void => resolve('SIGINT');
    const onTerm = (): void => resolve('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    const timer = a.duration ? setTimeout(() => resolve(`${a.duration} s elapsed`), a.duration * 1000) : undefined;
    const watch = setInterval(() => {
      if (session.stopped) resolve('--fail-fast');
      else if (a.streams && server.endedCount >= a.streams) resolve(`${server.endedCount} stream${server.endedCount === 1 ? '' : 's'} ended`);
    }, 50);
    cleanup = () => {
      process.removeListener('SIGINT', onInt);
      process.removeListener('SIGTERM', onTerm);
      clearInterval(watch);
      if (timer) clearTimeout(timer);
    };
  });
  cleanup();
  clearInterval(tick);
  if (a.stats) process.stderr.write('\n');
  await server.close(); // everything that arrived is merged
  const streams = server.list();
  const ctx = m.context as RunContext & { merge?: unknown };
  const uniq = (xs: string[]) => [...new Set(xs)];
  ctx.inputs = streams.map((s) => s.name);
  const kernels = uniq(streams.map((s) => s.header.meta.kernel_release));
  ctx.kernel = kernels.length ? kernels.join(', ') : null;
  const flavors = uniq(streams.map((s) => s.header.meta.flavor));
  ctx.flavor = flavors.length ? flavors.join(', ') : null;
  if (streams.length) ctx.probes = streams[0].header.meta.probes;
  annotateViolations(server.merger, [...m.violations, ...m.unconfirmed]);
  ctx.merge = mergeContext(server.merger, {
    senders: streams.map((s) => ({
      stream_id: s.streamId, name: s.name, host: s.header.meta.host, node_id: s.header.meta.node_id, kernel: s.header.meta.kernel_release,
      records: s.received, connections: s.connections, ended: s.ended, departed: s.departed,
    })),
  });
  session.log(`dlm-rv: stopped (${reason}) after ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
    (streams.length ? streams.map((s) => `${s.name}: ${s.received} records, ${s.connections} connection${s.connections === 1 ? '' : 's'}${s.departed ? ', departed' : ''}`).join('; ') : 'no stream connected'));
  if (streams.length) for (const l of mergeSummaryLines(server.merger)) session.log(l);
  return session.finish();
}
