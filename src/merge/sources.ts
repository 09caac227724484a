// Captures read a piece at a time (the offline merge reads a stream only when the merge needs
// it; --send --replay seeks to where the server asks it to resume), and splitting one stream by
// node (the simulator's global stream into the per-node streams real kernels would give).
import * as fs from 'fs';
import { InputError } from '../errors';
import { decodeCaptureHeader, openInput, type CaptureHeader } from '../io/capture';
import { RecordBuffer } from '../record/buffer';
import { Kind, RECORD_SIZE, RECORD_WORDS, W } from '../record/layout';

/** A capture file opened for reading records by index (header checked at open). */
export class CaptureFile {
  readonly header: CaptureHeader;
  private fd: number;
  private buf: Uint8Array;
  /** next record index next() reads */
  pos = 0;
  readonly warnings: string[] = [];
  private warnedTruncated = false;

  constructor(readonly path: string, chunkRecords = 32768) {
    this.fd = openInput(path);
    try {
      let head = new Uint8Array(4096);
      let have = fs.readSync(this.fd, head, 0, head.length, 0);
      if (have === 0) throw new InputError(path, undefined, 'empty file, not a dlm-rv capture; give a capture or an event file');
      for (;;) {
        const r = decodeCaptureHeader(head.subarray(0, have), path);
        if (!('needMore' in r)) { this.header = r; break; }
        if (r.minBytes <= have) throw new InputError(path, undefined, 'corrupt capture header');
        const nb = new Uint8Array(r.minBytes);
        const got = fs.readSync(this.fd, nb, 0, r.minBytes, 0);
        if (got < r.minBytes) {
          throw new InputError(path, undefined, `truncated capture header (${got} of ${r.minBytes} bytes); the collector stopped before writing it: nothing to read`);
        }
        head = nb; have = got;
      }
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
    this.buf = new Uint8Array(Math.max(1, chunkRecords) * RECORD_SIZE);
  }

  /** Whole records in the file now (a file still being written grows). */
  get records(): number {
    const size = fs.fstatSync(this.fd).size;
    const bytes = size - this.header.headerLength;
    if (bytes % RECORD_SIZE !== 0 && !this.warnedTruncated) {
      this.warnedTruncated = true;
      this.warnings.push(`${this.path}: last record is truncated (${bytes % RECORD_SIZE} of ${RECORD_SIZE} bytes, the writer was stopped mid-write); dropped it`);
    }
    return Math.max(0, Math.floor(bytes / RECORD_SIZE));
  }

  /** Up to `max` records from index `from` (a view into a reused buffer); empty at the end. */
  readAt(from: number, max = this.buf.byteLength / RECORD_SIZE): Uint8Array {
    const want = Math.min(max, this.buf.byteLength / RECORD_SIZE) * RECORD_SIZE;
    let got = 0;
    const at = this.header.headerLength + from * RECORD_SIZE;
    while (got < want) {
      const n = fs.readSync(this.fd, this.buf, got, want - got, at + got);
      if (n === 0) break;
      got += n;
    }
    const whole = got - (got % RECORD_SIZE);
    if (got !== whole && !this.warnedTruncated) {
      this.warnedTruncated = true;
      this.warnings.push(`${this.path}: last record is truncated (${got - whole} of ${RECORD_SIZE} bytes, the writer was stopped mid-write); dropped it`);
    }
    return this.buf.subarray(0, whole);
  }

  /** The next chunk in order; empty at the end. */
  next(): Uint8Array {
    const b = this.readAt(this.pos);
    this.pos += b.byteLength / RECORD_SIZE;
    return b;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** The distinct node ids of a run of records (LOSS records, which carry none, left out). */
export function nodesOf(rb: RecordBuffer): number[] {
  const set = new Set<number>();
  for (let i = 0; i < rb.count; i++) {
    const b = i * RECORD_WORDS;
    if ((rb.u32[b + W.kindLenMode] & 0xffff) === Kind.LOSS) continue;
    set.add(rb.u32[b + W.node]);
  }
  return [...set].sort((a, b) => a - b);
}

/**
 * One stream per node, each in the input's order: what each node's own kernel would have
 * recorded. A LOSS record goes to the stream of its node, or to every stream when its node is 0.
 */
export function splitByNode(rb: RecordBuffer): Map<number, RecordBuffer> {
  const out = new Map<number, RecordBuffer>();
  const nodes = nodesOf(rb);
  for (const n of nodes) out.set(n, new RecordBuffer(Math.max(16, Math.ceil(rb.count / Math.max(1, nodes.length)))));
  const bytes = rb.bytes();
  for (let i = 0; i < rb.count; i++) {
    const b = i * RECORD_WORDS;
    const node = rb.u32[b + W.node];
    const rec = bytes.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
    if ((rb.u32[b + W.kindLenMode] & 0xffff) === Kind.LOSS && !out.has(node)) {
      for (const p of out.values()) p.appendRaw(rec);
      continue;
    }
    let p = out.get(node);
    if (!p) { p = new RecordBuffer(16); out.set(node, p); }
    p.appendRaw(rec);
  }
  return out;
}
