// --replay FILE...: captures, event files and text traces, format detected from content.
// Every file is checked before the first record reaches the monitor, so a bad
// line or a bad header stops the run with nothing half-processed.
import { detectFormat, describeUnknown, readHead, readInputFile } from '../io/detect';
import { readCaptureChunks, type CaptureHeader } from '../io/capture';
import { InputError } from '../errors';
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
  const traces: { file: string; info: TraceTextInfo }[] = [];
  for (const f of files) {
    const inp = readInputFile(f);
    if (inp.format === 'unknown') throw new InputError(f, undefined, inp.reason ?? describeUnknown(readHead(f)));
    for (const w of inp.warnings) session.log(`dlm-rv: warning: ${inp.format === 'trace-text' ? `${f}: ` : ''}${w}`);
    if (inp.format === 'capture') headers.push(inp.header);
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
    if (byNode.size > 1) {
      session.log(`dlm-rv: warning: text traces of ${byNode.size} nodes merged by timestamp; each machine's trace clock is its own, ` +
        'so verdicts across nodes are only as good as the clocks agree (the message events are not used to order them yet)');
    }
  }
  session.start(contextFrom(headers, files, traces), traces.length ? { ownerExitVisible } : {});
  const all = mergeByTime(parts);
  const bytes = all.bytes();
  for (let off = 0; off < bytes.byteLength && !session.stopped; off += BATCH * RECORD_SIZE) {
    session.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + BATCH * RECORD_SIZE)));
  }
  return session.finish();
}
