// A growable run of records in the wire layout of bpf/dlm_rv.h. Every producer
// that is not the BPF program (simulator, event files, text traces, captures)
// appends here, so the monitor only ever reads one format.
import { MODE_NONE, NAME_MAX, RECORD_SIZE, RECORD_WORDS, W } from './layout';

export interface RecordFields {
  kind: number;
  ts: number; // ns
  node: number;
  ls: number;
  lkb?: number;
  mode?: number; // DLM mode, or MODE_NONE (default)
  flags?: number;
  status?: number;
  error?: number;
  sbFlags?: number;
  pid?: number;
  aux?: number;
  msgSrc?: number;
  msgDst?: number;
  msgSeq?: number;
  msgType?: number;
  grmode?: number; // default IV
  src?: number;
  rflags?: number;
  name?: Uint8Array;
}

export class RecordBuffer {
  buffer: ArrayBuffer;
  u8: Uint8Array;
  u32: Uint32Array;
  i32: Int32Array;
  count = 0;

  constructor(initialRecords = 1024) {
    this.buffer = new ArrayBuffer(Math.max(1, initialRecords) * RECORD_SIZE);
    this.u8 = new Uint8Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
  }

  get capacity(): number {
    return this.buffer.byteLength / RECORD_SIZE;
  }

  private grow(minRecords: number): void {
    let cap = this.capacity;
    while (cap < minRecords) cap *= 2;
    const nb = new ArrayBuffer(cap * RECORD_SIZE);
    new Uint8Array(nb).set(this.u8.subarray(0, this.count * RECORD_SIZE));
    this.buffer = nb;
    this.u8 = new Uint8Array(nb);
    this.u32 = new Uint32Array(nb);
    this.i32 = new Int32Array(nb);
  }

  /** Reserve one zeroed record and return its index. */
  reserve(): number {
    if (this.count === this.capacity) this.grow(this.count + 1);
    const i = this.count++;
    this.u8.fill(0, i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
    return i;
  }

  push(f: RecordFields): number {
    const i = this.reserve();
    writeRecord(this.u32, this.i32, this.u8, i, f);
    return i;
  }

  /** Append raw records (a whole number of them). */
  appendRaw(bytes: Uint8Array): void {
    const n = bytes.byteLength / RECORD_SIZE;
    if (!Number.isInteger(n)) throw new Error('appendRaw: not a whole number of records');
    if (this.count + n > this.capacity) this.grow(this.count + n);
    this.u8.set(bytes, this.count * RECORD_SIZE);
    this.count += n;
  }

  /** The used part, as bytes (a view, not a copy). */
  bytes(): Uint8Array {
    return this.u8.subarray(0, this.count * RECORD_SIZE);
  }

  clear(): void {
    this.count = 0;
  }
}

/** Encode fields into record slot i of the given views (all over the same buffer). */
export function writeRecord(u32: Uint32Array, i32: Int32Array, u8: Uint8Array, i: number, f: RecordFields): void {
  const b = i * RECORD_WORDS;
  const ts = f.ts;
  u32[b + W.tsLo] = ts % 4294967296;
  u32[b + W.tsHi] = Math.floor(ts / 4294967296);
  const name = f.name;
  const len = name ? name.length : 0;
  if (len > NAME_MAX) throw new RangeError(`resource name is ${len} bytes, at most ${NAME_MAX}`);
  const mode = f.mode ?? MODE_NONE;
  u32[b + W.kindLenMode] = (f.kind & 0xffff) | (len << 16) | ((mode & 0xff) << 24);
  u32[b + W.node] = f.node >>> 0;
  u32[b + W.ls] = f.ls >>> 0;
  u32[b + W.lkb] = (f.lkb ?? 0) >>> 0;
  u32[b + W.flags] = (f.flags ?? 0) >>> 0;
  i32[b + W.status] = f.status ?? 0;
  i32[b + W.error] = f.error ?? 0;
  u32[b + W.sbFlags] = (f.sbFlags ?? 0) >>> 0;
  u32[b + W.pid] = (f.pid ?? 0) >>> 0;
  u32[b + W.aux] = (f.aux ?? 0) >>> 0;
  u32[b + W.msgSrc] = (f.msgSrc ?? 0) >>> 0;
  u32[b + W.msgDst] = (f.msgDst ?? 0) >>> 0;
  u32[b + W.msgSeq] = (f.msgSeq ?? 0) >>> 0;
  const grmode = f.grmode ?? -1;
  u32[b + W.tail] = ((f.msgType ?? 0) & 0xff) | ((grmode & 0xff) << 8) | (((f.src ?? 0) & 0xff) << 16) | (((f.rflags ?? 0) & 0xff) << 24);
  const nb = b * 4 + W.name * 4;
  u8.fill(0, nb, nb + NAME_MAX);
  if (name) u8.set(name, nb);
}
