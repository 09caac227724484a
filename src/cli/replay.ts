// --replay FILE...: captures, event files and text traces, format detected from content.
// Every file is checked before the first record reaches the monitor, so a bad
// line or a bad header stops the run with nothing half-processed.
import { detectFormat, describeUnknown, readHead, readInputFile } from '../io/detect';
import { readCaptureChunks, type CaptureHeader } from '../io/capture';
import { InputError, UsageError } from '../errors';
import { RecordBuffer } from '../record/buffer';
import { RECORD_SIZE, RECORD_WORDS, W } from '../record/layout';
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

/**
 * Streams of different DLM nodes (one kernel each) cannot be ordered by their clocks: in the
 * real two-node traces the receiver's clock reads earlier than the sender's for the same
 * message, and a timestamp merge reports conflicts that never happened. Refuse rather than
 * cry wolf; each node's stream alone is still verified exactly.
 */
function refuseClockMerge(groups: string[]): never {
  throw new UsageError(`${groups.join(' and ')} come from different DLM nodes, whose clocks cannot order their events ` +
    '(a timestamp merge reports conflicts that never happened); replay each node\'s file alone for now: the causal merge of per-node streams is not built yet');
}

export async function runReplay(session: Session, files: string[]): Promise<number> {
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
  const parts: RecordBuffer[] = [];
  const headers: CaptureHeader[] = [];
  const capFiles: string[] = [];
  const traces: { file: string; info: TraceTextInfo }[] = [];
  for (const f of files) {
    const inp = readInputFile(f);
    if (inp.format === 'unknown') throw new InputError(f, undefined, inp.reason ?? describeUnknown(readHead(f)));
    for (const w of inp.warnings) session.log(`dlm-rv: warning: ${inp.format === 'trace-text' ? `${f}: ` : ''}${w}`);
    if (inp.format === 'capture') { headers.push(inp.header); capFiles.push(f); }
    if (inp.format === 'trace-text') traces.push({ file: f, info: inp.info });
    parts.push(inp.records);
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
    if (byNode.size > 1) refuseClockMerge([...byNode].map(([node, fs]) => `${fs.join(', ')} (node ${node})`));
  }
  // captures recorded live on different machines: their clocks are as independent
  const capNodes = new Map<string, string[]>();
  headers.forEach((h, i) => {
    if (h.meta.source !== 'live' || h.meta.node_id === null) return;
    const key = `${h.meta.node_id}`;
    capNodes.set(key, [...(capNodes.get(key) ?? []), capFiles[i]]);
  });
  if (capNodes.size > 1) refuseClockMerge([...capNodes].map(([node, fs]) => `${fs.join(', ')} (node ${node})`));
  session.start(contextFrom(headers, files, traces), traces.length ? { ownerExitVisible } : {});
  const all = mergeByTime(parts);
  const bytes = all.bytes();
  for (let off = 0; off < bytes.byteLength && !session.stopped; off += BATCH * RECORD_SIZE) {
    session.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + BATCH * RECORD_SIZE)));
  }
  return session.finish();
}
