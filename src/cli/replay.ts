// --replay FILE...: captures and event files, format detected from content.
// Every file is checked before the first record reaches the monitor, so a bad
// line or a bad header stops the run with nothing half-processed.
import { detectFormat, describeUnknown, readHead, readInputFile } from '../io/detect';
import { readCaptureChunks, type CaptureHeader } from '../io/capture';
import { InputError } from '../errors';
import { RecordBuffer } from '../record/buffer';
import { RECORD_SIZE, RECORD_WORDS, W } from '../record/layout';
import type { Session } from './session';
import type { ProbeInfo } from '../monitor/report';

const BATCH = 4096;

function contextFrom(headers: CaptureHeader[], files: string[]) {
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
  for (const f of files) {
    const inp = readInputFile(f);
    if (inp.format === 'trace-text') {
      throw new InputError(f, undefined, 'text traces (ftrace, trace-cmd report, perf script) are not supported yet; record with dlm-rv, or convert the trace to an event file');
    }
    if (inp.format === 'unknown') throw new InputError(f, undefined, inp.reason ?? describeUnknown(readHead(f)));
    for (const w of inp.warnings) session.log(`dlm-rv: warning: ${w}`);
    if (inp.format === 'capture') headers.push(inp.header);
    parts.push(inp.records);
  }
  session.start(contextFrom(headers, files));
  const all = mergeByTime(parts);
  const bytes = all.bytes();
  for (let off = 0; off < bytes.byteLength && !session.stopped; off += BATCH * RECORD_SIZE) {
    session.feed(bytes.subarray(off, Math.min(bytes.byteLength, off + BATCH * RECORD_SIZE)));
  }
  return session.finish();
}
