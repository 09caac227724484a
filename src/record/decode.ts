// Off-the-hot-path decoding of single records into plain objects, for reports,
// history, event-file output and tests. The monitor itself reads the words in place.
import { KIND_NAMES, MODE_NONE, RECORD_SIZE, RECORD_WORDS, W, modeName } from './layout';
import type { RecordFields } from './buffer';

export function recTs(u32: Uint32Array, i: number): number {
  const b = i * RECORD_WORDS;
  return u32[b + W.tsHi] * 4294967296 + u32[b + W.tsLo];
}

export function recKind(u32: Uint32Array, i: number): number {
  return u32[i * RECORD_WORDS + W.kindLenMode] & 0xffff;
}

export function recNameLen(u32: Uint32Array, i: number): number {
  return (u32[i * RECORD_WORDS + W.kindLenMode] >>> 16) & 0xff;
}

export function recMode(u32: Uint32Array, i: number): number {
  return u32[i * RECORD_WORDS + W.kindLenMode] >> 24; // sign-extends the s8
}

export function recName(u8: Uint8Array, u32: Uint32Array, i: number): Uint8Array {
  const off = i * RECORD_SIZE + W.name * 4;
  return u8.slice(off, off + recNameLen(u32, i));
}

/** Decode record i into the RecordFields shape (copies the name). */
export function decodeRecord(u8: Uint8Array, u32: Uint32Array, i32: Int32Array, i: number): Required<RecordFields> {
  const b = i * RECORD_WORDS;
  const tail = u32[b + W.tail];
  return {
    kind: recKind(u32, i),
    ts: recTs(u32, i),
    node: u32[b + W.node],
    ls: u32[b + W.ls],
    lkb: u32[b + W.lkb],
    mode: recMode(u32, i),
    flags: u32[b + W.flags],
    status: i32[b + W.status],
    error: i32[b + W.error],
    sbFlags: u32[b + W.sbFlags],
    pid: u32[b + W.pid],
    aux: u32[b + W.aux],
    msgSrc: u32[b + W.msgSrc],
    msgDst: u32[b + W.msgDst],
    msgSeq: u32[b + W.msgSeq],
    msgType: tail & 0xff,
    grmode: (tail << 16) >> 24,
    src: (tail >>> 16) & 0xff,
    rflags: tail >>> 24,
    name: recName(u8, u32, i),
  };
}

export function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? `kind(${kind})`;
}

export function optModeName(m: number): string | undefined {
  return m === MODE_NONE ? undefined : modeName(m);
}
