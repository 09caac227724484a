// The offline driver: whole inputs are pushed at once, captures are read a chunk at a time when
// the merge needs their next records; merged batches go to onBatch (Monitor.consume, Session.feed).
import type { RecordBuffer } from '../record/buffer';
import type { Merger } from './merger';
import type { CaptureFile } from './sources';

export interface MergeInput {
  name: string;
  /** node ids of the stream when known up front */
  nodes?: number[];
  /** the whole stream in memory ... */
  records?: RecordBuffer;
  /** ... or a capture read as needed */
  capture?: CaptureFile;
}

/** Merge the inputs to the end; onBatch returning false stops early. Returns the stream ids. */
export function runMerge(m: Merger, inputs: MergeInput[], onBatch: (bytes: Uint8Array) => boolean | void): number[] {
  const ids = inputs.map((inp) => m.addStream(inp.name, inp.nodes ? { nodes: inp.nodes } : {}));
  const byId = new Map<number, MergeInput>();
  inputs.forEach((inp, i) => {
    byId.set(ids[i], inp);
    if (!inp.capture) {
      if (inp.records && inp.records.count) m.push(ids[i], inp.records.bytes());
      m.end(ids[i]);
    }
  });
  m.seal();
  for (;;) {
    const b = m.pull();
    if (b.byteLength) {
      if (onBatch(b) === false) break;
      continue;
    }
    const s = m.needs();
    if (s < 0) break;
    const cap = byId.get(s)?.capture;
    const chunk = cap ? cap.next() : new Uint8Array(0);
    if (chunk.byteLength) m.push(s, chunk);
    else m.end(s);
  }
  return ids;
}
