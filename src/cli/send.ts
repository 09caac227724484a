// --send HOST:PORT: this node's records to the central verifier (--serve), framed, with the
// capture header first. The source is the live BPF collector (as in live mode), or with
// --replay FILE a recorded capture, event file or text trace (tests, re-sending a recording),
// optionally paced with --rate. Exit 0 once the server holds everything; 3 when it cannot be
// reached (or stays away longer than --retry-s); 2 for a bad HOST:PORT.
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { EXIT_OK, EnvError, InputError, UsageError } from '../errors';
import { detectFormat, describeUnknown, readHead, readInputFile } from '../io/detect';
import { CaptureWriter, type CaptureMeta } from '../io/capture';
import { CaptureFile, nodesOf } from '../merge/sources';
import { FileSource, LiveSource, StreamSender, type SendSource } from '../net/client';
import { VERSION } from '../version';
import { checkWritable } from './output';
import { probeLines, stoppedLine } from './live';

export interface SendArgs {
  host: string;
  port: number;
  /** a file to send instead of the live collector */
  replay?: string;
  /** records per second, at most */
  rate?: number;
  streamId?: string;
  retryS?: number;
  // live collector
  nodeId?: number;
  duration?: number;
  ringMb?: number;
  lockspaces?: number[];
  record?: string;
  log: (line: string) => void;
}

async function resolveHost(host: string, port: number): Promise<void> {
  try {
    await lookup(host);
  } catch (e) {
    throw new UsageError(`--send ${host}:${port}: cannot resolve "${host}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a host name or address of the verifier`);
  }
}

/** The file's records and the header that describes them. */
function fileSource(file: string): { source: SendSource; meta: CaptureMeta; close: () => void } {
  const head = readHead(file);
  const base = {
    host: hostname(), collector_version: VERSION, start_time: new Date().toISOString(), probes: [] as CaptureMeta['probes'],
  };
  if (detectFormat(head) === 'capture') {
    const cap = new CaptureFile(file);
    const meta: CaptureMeta = { ...cap.header.meta, source: `send:${cap.header.meta.source}` };
    return { source: FileSource.capture(cap), meta, close: () => cap.close() };
  }
  const inp = readInputFile(file);
  if (inp.format === 'unknown') throw new InputError(file, undefined, inp.reason ?? describeUnknown(head));
  const nodes = inp.format === 'trace-text' ? [inp.info.nodeId] : nodesOf(inp.records);
  const meta: CaptureMeta = {
    ...base,
    kernel_release: inp.format === 'trace-text' ? (inp.info.kernelGuess ?? 'unknown') : 'unknown',
    node_id: nodes.length === 1 ? nodes[0] : null,
    flavor: inp.format === 'trace-text' ? `trace-text (${inp.info.format})` : 'event-file',
    source: `send:${inp.format}`,
    clock: inp.format === 'trace-text' ? 'trace' : 'event-file',
  };
  return { source: FileSource.records(inp.records), meta, close: () => undefined };
}

export async function runSend(a: SendArgs): Promise<number> {
  await resolveHost(a.host, a.port);
  if (a.record) checkWritable(a.record, '--record');
  const retryMs = (a.retryS ?? 60) * 1000;
  if (a.replay !== undefined) {
    const { source, meta, close } = fileSource(a.replay);
    const sender = new StreamSender({
      host: a.host, port: a.port, streamId: a.streamId ?? `${hostname()}:${resolvePath(a.replay)}`, meta, source,
      rate: a.rate, retryMs, log: a.log,
    });
    a.log(`dlm-rv: sending ${a.replay} (${source.available} records${meta.node_id !== null ? `, node ${meta.node_id}` : ''}) to ${a.host}:${a.port}` +
      `${a.rate ? ` at ${a.rate} records/s` : ''}`);
    const onSig = (): void => sender.stop();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    try {
      const r = await sender.run();
      if (!r.ok) throw new EnvError(`--send ${a.host}:${a.port}: ${r.reason}`);
      a.log(`dlm-rv: the verifier holds all ${r.records} records (${sender.connections} connection${sender.connections === 1 ? '' : 's'})`);
      return EXIT_OK;
    } finally {
      process.removeListener('SIGINT', onSig);
      process.removeListener('SIGTERM', onSig);
      close();
    }
  }

  // the live collector, as live mode runs it, but streamed instead of verified here
  const { openCollector } = await import('../live');
  const c = openCollector({
    mode: 'live', nodeId: a.nodeId, ringBytes: a.ringMb ? a.ringMb << 20 : undefined, lockspaces: a.lockspaces, handleSignals: false,
  });
  const probes = c.probes.map((p) => ({ name: p.name, attached: p.attached, ...(p.reason ? { reason: p.reason } : {}) }));
  const meta: CaptureMeta = {
    host: hostname(), kernel_release: c.kernel, node_id: c.nodeId, flavor: c.flavor, source: 'live', collector_version: VERSION,
    start_time: new Date().toISOString(), clock: 'boot', probes,
  };
  for (const l of probeLines(c)) a.log(l);
  const cap = a.record ? new CaptureWriter(a.record, meta) : undefined;
  const src = new LiveSource(c.nodeId ?? 0);
  const sender = new StreamSender({
    host: a.host, port: a.port, streamId: a.streamId ?? `${hostname()}:node${c.nodeId ?? 0}:${meta.start_time}`, meta, source: src, retryMs, log: a.log,
  });
  c.onBatch((bytes) => {
    cap?.write(bytes);
    src.add(bytes);
    sender.poke();
  });
  c.start();
  const t0 = Date.now();
  a.log(`dlm-rv: streaming to ${a.host}:${a.port}${a.duration ? ` for ${a.duration} s` : ''}; Ctrl-C to stop${a.record ? `, recording to ${a.record}` : ''}`);
  let why = 'the verifier went away';
  const flush = setInterval(() => cap?.flush(), 1000);
  const stop = (reason: string): void => {
    why = reason;
    a.log(`dlm-rv: stopping (${why}): sending what is left`);
    c.close(); // drains, and reports drops after the last record as a LOSS
    src.flushLoss();
    src.finished = true;
    sender.stop();
  };
  const onInt = (): void => stop('SIGINT');
  const onTerm = (): void => stop('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  const timer = a.duration ? setTimeout(() => stop(`${a.duration} s elapsed`), a.duration * 1000) : undefined;
  try {
    const r = await sender.run();
    if (!c.closed) c.close();
    if (!r.ok) throw new EnvError(`--send ${a.host}:${a.port}: ${r.reason}`);
    a.log(stoppedLine(why, t0, c));
    a.log(`dlm-rv: the verifier holds all ${r.records} records (${sender.connections} connection${sender.connections === 1 ? '' : 's'}); ` +
      `${c.stats().drops} dropped in the kernel ring, ${src.lost} while the verifier was away`);
    return EXIT_OK;
  } finally {
    clearInterval(flush);
    if (timer) clearTimeout(timer);
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
    cap?.close();
  }
}
