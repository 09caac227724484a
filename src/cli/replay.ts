// --replay FILE...: captures, event files and text traces, format detected from content.
// Every file is checked before the first record reaches the monitor, so a bad
// line or a bad header stops the run with nothing half-processed. Files of
// several DLM nodes are merged causally (src/merge, docs/merge.md).
import { detectFormat, describeUnknown, readHead, readInputFile } from '../io/detect';
import { readCaptureChunks, type CaptureHeader } from '../io/capture';
import { InputError } from '../errors';
import { RecordBuffer } from '../record/buffer';
import { RECORD_SIZE, RECORD_WORDS, W } from '../record/layout';
import { CaptureFile, nodesOf } from '../merge/sources';
import type { Session } from './session';
import type { ProbeInfo, RunContext } from '../monitor/report';
import type { TraceTextInfo } from '../io/trace-text';

const BATCH = 4096;

/** What the report says about each text trace (RunContext.trace_text). */
function traceTextContext(file: string, i: TraceTextInfo): NonNullable<RunContext['trace_text']>[number] {
  return {
    file, format: i.format, node_id: i.nodeId, node_id_from: i.nodeIdFrom, kernel_guess: i.kernelGuess ?? null,
    owner_exit_visible: i.ownerExitVisible, exits_seen: i.exitsSeen, synthetic_unlocks: i.syntheticUnlocks,
    unswapped: i.unswapped, reordered: i.reordered, locks: i.locks, losses: i.losses, events: i.events, skipped: i.skipped,
  };
}

function contextFrom(headers: CaptureHeader[], files: string[], traces: { file: string; info: TraceTextInfo }[] = []) {
  const uniq = <T>(xs: T[]) => [...new Set(xs)];
  const kernels = uniq(headers.map((h) => h.meta.kernel_release));
  const hosts = uniq(headers.map((h) => h.meta.host));
  const flavors = uniq(headers.map((h) => h.meta.flavor));
  const probes: ProbeInfo[] = headers.length ? headers[0].meta.probes : [];
  return {
    source: 'replay',
    inputs: files,
    kernel: kernels.length ? kernels.join(', ') : null,
    host: hosts.length ? hosts.join(', ') : null,
    flavor: flavors.length ? flavors.join(', ') : null,
    probes,
    ...(traces.length ? { trace_text: traces.map((t) => traceTextContext(t.file, t.info)) } : {}),
  };
}

/** Merge streams by timestamp, keeping each stream's own order (ties: file order). */
export function mergeByTime(parts: RecordBuffer[]): RecordBuffer {
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((n, p) => n + p.count, 0);
  const out = new RecordBuffer(Math.max(1, total));
  const pos = parts.map(() => 0);
  const tsOf = (p: RecordBuffer, i: number) => p.u32[i * RECORD_WORDS + W.tsHi] * 4294967296 + p.u32[i * RECORD_WORDS + W.tsLo];
  for (let k = 0; k < total; k++) {
    let best = -1, bestTs = Infinity;
    for (let j = 0; j < parts.length; j++) {
      if (pos[j] >= parts[j].count) continue;
      const t = tsOf(parts[j], pos[j]);
      if (t < bestTs) { bestTs = t; best = j; }
    }
    const p = parts[best];
    out.appendRaw(p.u8.subarray(pos[best] * RECORD_SIZE, (pos[best] + 1) * RECORD_SIZE));
    pos[best]++;
  }
  return out;
}

export interface ReplayOptions {
  /** declared clock skew bound for what only clocks can order, ns (the merge of several nodes' streams) */
  skewBoundNs?: number;
}

interface Part { file: string; nodes: number[]; records?: RecordBuffer; capture?: CaptureFile }

/**
 * Streams of different DLM nodes (one kernel each) cannot be ordered by their clocks: in the real
 * two-node traces the receiver's clock reads earlier than the sender's for the same message. They
 * are merged causally (src/merge, docs/merge.md); files of one node are one stream.
 */
async function runCausalReplay(session: Session, groups: Part[][], ctx: ReturnType<typeof contextFrom>,
  ownerExitVisible: boolean | undefined, opts: ReplayOptions): Promise<number> {
  const { Merger, runMerge, annotateViolations, mergeContext } = await import('../merge');
  const m = new Merger({ skewBoundNs: opts.skewBoundNs });
  const inputs = groups.map((g) => {
    const name = g.length === 1 ? g[0].file : g.map((p) => p.file).join(' + ');
    const nodes = g[0].nodes.length ? g[0].nodes : undefined;
    if (g.length === 1 && g[0].capture) return { name, nodes, capture: g[0].capture };
    return { name, nodes, records: mergeByTime(g.map((p) => p.records ?? loadWhole(p))) };
  });
  const mon = session.start({ ...ctx, merge: mergeContext(m) } as Partial<RunContext>, ownerExitVisible === undefined ? {} : { ownerExitVisible });
  runMerge(m, inputs, (b) => {
    session.feed(b);
    return !session.stopped;
  });
  for (const g of groups) for (const p of g) if (p.capture) { for (const w of p.capture.warnings) session.log(`dlm-rv: warning: ${w}`); p.capture.close(); }
  annotateViolations(m, [...mon.violations, ...mon.unconfirmed]);
  (mon.context as RunContext & { merge?: unknown }).merge = mergeContext(m);
  for (const l of mergeSummaryLines(m)) session.log(l);
  return session.finish();
}

function loadWhole(p: Part): RecordBuffer {
  const inp = readInputFile(p.file);
  if (inp.format === 'unknown') throw new InputError(p.file, undefined, inp.reason);
  return inp.records;
}

/** What the merge did, for the log. */
export function mergeSummaryLines(m: import('../merge').Merger): string[] {
  const st = m.stats();
  const orphans = st.reduce((a, s) => a + s.orphans, 0), matched = st.reduce((a, s) => a + s.matched, 0);
  const out = [`dlm-rv: merged ${st.length} streams causally: ` + st.map((s) => `${s.name} (node${s.nodes.length === 1 ? '' : 's'} ${s.nodes.join(',') || '-'}: ${s.records} events` +
    `${s.causal ? '' : ', no message events: ordered by timestamps'})`).join(', ') +
    `; ${matched} messages matched, ${orphans} receive${orphans === 1 ? '' : 's'} without their send, ${m.pendingSends} sends never received`];
  const fb = m.fallbacks.filter((f) => f.kind === 'orphan-receive' || f.kind === 'ambiguous-match' || f.kind === 'late').length;
  const clockOnly = st.filter((s) => !s.causal && s.records > 0).length;
  if (fb || clockOnly) {
    out.push(`dlm-rv: note: ${clockOnly ? `${clockOnly} stream${clockOnly === 1 ? ' has' : 's have'} no message events${fb ? ', and ' : ''}` : ''}` +
      `${fb ? `${fb} place${fb === 1 ? '' : 's'} in the merged order rest${fb === 1 ? 's' : ''} on clocks` : ''} (skew bound ${m.skewBoundNs} ns): ` +
      'verdicts that depend on it are marked "ordering": "clock-fallback" in the report');
  }
  return out;
}

export async function runReplay(session: Session, files: string[], opts: ReplayOptions = {}): Promise<number> {
  // one capture alone is streamed: captures can be far larger than memory wants
  if (files.length === 1 && detectFormat(readHead(files[0])) === 'capture') {
    let started = false;
    const res = readCaptureChunks(files[0], (h) => {
      session.start(contextFrom([h], files));
      started = true;
    }, (bytes) => {
      for (let off = 0; off < bytes.byteLength && !session.stopped; off += BATCH * RECORD_SIZE) {
        session.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + BATCH * RECORD_SIZE)));
      }
      return !session.stopped;
    });
    if (!started) throw new InputError(files[0], undefined, 'no capture header');
    for (const w of res.warnings) session.log(`dlm-rv: warning: ${w}`);
    return session.finish();
  }
  const parts: Part[] = [];
  const headers: CaptureHeader[] = [];
  const capFiles: string[] = [];
  const traces: { file: string; info: TraceTextInfo }[] = [];
  for (const f of files) {
    if (detectFormat(readHead(f)) === 'capture') {
      // a live capture names its node: read it as the merge needs it; others are read whole
      const cap = new CaptureFile(f);
      headers.push(cap.header);
      capFiles.push(f);
      if (cap.header.meta.node_id !== null && cap.header.meta.source === 'live') {
        parts.push({ file: f, nodes: [cap.header.meta.node_id], capture: cap });
        continue;
      }
      cap.close();
      const inp = readInputFile(f);
      if (inp.format !== 'capture') throw new InputError(f, undefined, 'not a capture any more');
      for (const w of inp.warnings) session.log(`dlm-rv: warning: ${w}`);
      parts.push({ file: f, nodes: nodesOf(inp.records), records: inp.records });
      continue;
    }
    const inp = readInputFile(f);
    if (inp.format === 'unknown') throw new InputError(f, undefined, inp.reason ?? describeUnknown(readHead(f)));
    for (const w of inp.warnings) session.log(`dlm-rv: warning: ${inp.format === 'trace-text' ? `${f}: ` : ''}${w}`);
    if (inp.format === 'trace-text') {
      traces.push({ file: f, info: inp.info });
      parts.push({ file: f, nodes: [inp.info.nodeId], records: inp.records });
    } else {
      parts.push({ file: f, nodes: nodesOf(inp.records), records: inp.records });
    }
  }
  // text traces cannot show a user-space owner's exit unless they hold sched_process_exit
  // lines; captures can (the collector hooks dlm_clear_proc_locks)
  const ownerExitVisible = traces.every((t) => t.info.ownerExitVisible);
  for (const t of traces) {
    if (!t.info.ownerExitVisible && t.info.locks.user > 0) {
      session.log(`dlm-rv: note: ${t.file}: ${t.info.locks.user} user-space lock${t.info.locks.user === 1 ? '' : 's'} and no sched_process_exit lines: ` +
        'locks the kernel releases when their owner exits are invisible; trace with -e sched:sched_process_exit to see them');
    }
  }
  if (traces.length > 1) {
    const byNode = new Map<number, string[]>();
    for (const t of traces) byNode.set(t.info.nodeId, [...(byNode.get(t.info.nodeId) ?? []), t.file]);
    for (const [node, fs] of byNode) {
      if (fs.length > 1) {
        session.log(`dlm-rv: warning: ${fs.join(', ')} are all node ${node}: read as one node's events (right for consecutive traces of one ` +
          'machine, wrong for different machines: their lock ids would collide)');
      }
    }
  }
  // one stream per node: the files of one node (consecutive traces or captures of one machine)
  // are one stream in timestamp order; a file with several nodes' events (a single kernel's view,
  // the simulator) is a stream of its own
  const groups: Part[][] = [];
  const byNode = new Map<number, Part[]>();
  for (const p of parts) {
    if (p.nodes.length !== 1) { groups.push([p]); continue; }
    let g = byNode.get(p.nodes[0]);
    if (!g) { g = []; byNode.set(p.nodes[0], g); groups.push(g); }
    g.push(p);
  }
  const ctx = contextFrom(headers, files, traces);
  if (groups.length > 1) return runCausalReplay(session, groups, ctx, traces.length ? ownerExitVisible : undefined, opts);
  session.start(ctx, traces.length ? { ownerExitVisible } : {});
  const all = mergeByTime(parts.map((p) => p.records ?? loadWhole(p)));
  for (const p of parts) p.capture?.close();
  const bytes = all.bytes();
  for (let off = 0; off < bytes.byteLength && !session.stopped; off += BATCH * RECORD_SIZE) {
    session.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + BATCH * RECORD_SIZE)));
  }
  return session.finish();
}
