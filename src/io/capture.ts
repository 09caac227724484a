// Capture files: a fixed binary header, UTF-8 JSON metadata, then 128-byte
// records (bpf/dlm_rv.h) back to back until end of file. The live collector
// streams them (possibly for hours, possibly killed mid-write), the simulator
// writes them, `--send` will put the same framing on a TCP stream.
// Layout and rules: docs/formats.md, "Capture files".
import * as fs from 'fs';
import { InputError } from '../errors';
import { RecordBuffer } from '../record/buffer';
import { RECORD_SIZE, RECORD_VERSION } from '../record/layout';

/** The 8 magic bytes, "DLMRVCAP". */
export const CAPTURE_MAGIC = Uint8Array.of(0x44, 0x4c, 0x4d, 0x52, 0x56, 0x43, 0x41, 0x50);
export const CAPTURE_MAGIC_TEXT = 'DLMRVCAP';
/** Version of the capture framing (header layout), not of the records. */
export const CAPTURE_FORMAT_VERSION = 1;
/** Bytes of the fixed part of the header, before the metadata JSON. */
export const CAPTURE_FIXED_HEADER = 32;
/** Upper bound on the header length; anything larger is a corrupt file. */
export const CAPTURE_MAX_HEADER = 1 << 20;

/** Fixed-header byte offsets (all u32 little-endian after the magic). */
export const CAP_OFF = {
  magic: 0,
  formatVersion: 8,
  headerLength: 12,
  recordSize: 16,
  recordVersion: 20,
  metaLength: 24,
  reserved: 28,
  meta: 32,
} as const;

export interface ProbeInfo {
  /** hook name, e.g. "tp_btf/dlm_lock_start", "fentry/dlm_add_cb" */
  name: string;
  attached: boolean;
  /** why it is not attached (or any note) */
  reason?: string;
}

/** The metadata JSON object. Unknown keys are kept (later versions may add some). */
export interface CaptureMeta {
  host: string;
  kernel_release: string;
  probes: ProbeInfo[];
  /** DLM node id of the traced node, null when not known */
  node_id: number | null;
  /** kernel flavor the collector detected, e.g. "mainline-6.1", "mainline-6.10", "namespace", "sim" */
  flavor: string;
  /** who produced the file: "live", "simulate", "replay-convert", ... */
  source: string;
  collector_version: string;
  /** wall clock when the capture started, ISO 8601 */
  start_time: string;
  /** optional: what ts_ns counts ("boot", "mono", "sim", ...) */
  clock?: string;
  [key: string]: unknown;
}

export interface CaptureHeader {
  formatVersion: number;
  /** bytes from the start of the file to the first record (multiple of 8) */
  headerLength: number;
  recordSize: number;
  recordVersion: number;
  meta: CaptureMeta;
}

/** decodeCaptureHeader could not decide yet: give it at least minBytes bytes. */
export interface NeedMore {
  needMore: true;
  minBytes: number;
}

const utf8 = new TextEncoder();
const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Check a metadata object; returns the first problem, or undefined if it is valid. */
export function checkCaptureMeta(m: unknown): string | undefined {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'metadata is not a JSON object';
  const o = m as Record<string, unknown>;
  for (const k of ['host', 'kernel_release', 'flavor', 'source', 'collector_version', 'start_time']) {
    if (typeof o[k] !== 'string') return `metadata "${k}" must be a string`;
  }
  const nid = o.node_id;
  if (nid !== null && !(typeof nid === 'number' && Number.isInteger(nid) && nid >= 0 && nid <= 0xffffffff)) {
    return 'metadata "node_id" must be an unsigned 32-bit integer or null';
  }
  if (o.clock !== undefined && typeof o.clock !== 'string') return 'metadata "clock" must be a string';
  if (!Array.isArray(o.probes)) return 'metadata "probes" must be an array';
  for (let i = 0; i < o.probes.length; i++) {
    const p = o.probes[i] as Record<string, unknown> | null;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) return `metadata probes[${i}] is not an object`;
    if (typeof p.name !== 'string') return `metadata probes[${i}].name must be a string`;
    if (typeof p.attached !== 'boolean') return `metadata probes[${i}].attached must be true or false`;
    if (p.reason !== undefined && typeof p.reason !== 'string') return `metadata probes[${i}].reason must be a string`;
  }
  return undefined;
}

/**
 * Encode the header (fixed part, metadata JSON, zero padding to a multiple of 8).
 * Records follow it directly. Throws TypeError on invalid metadata (a programming error).
 */
export function encodeCaptureHeader(meta: CaptureMeta): Uint8Array {
  const bad = checkCaptureMeta(meta);
  if (bad) throw new TypeError(`encodeCaptureHeader: ${bad}`);
  const json = utf8.encode(JSON.stringify(meta));
  const headerLength = (CAPTURE_FIXED_HEADER + json.length + 7) & ~7;
  if (headerLength > CAPTURE_MAX_HEADER) throw new RangeError(`encodeCaptureHeader: metadata too large (${json.length} bytes)`);
  const out = new Uint8Array(headerLength);
  const dv = new DataView(out.buffer);
  out.set(CAPTURE_MAGIC, CAP_OFF.magic);
  dv.setUint32(CAP_OFF.formatVersion, CAPTURE_FORMAT_VERSION, true);
  dv.setUint32(CAP_OFF.headerLength, headerLength, true);
  dv.setUint32(CAP_OFF.recordSize, RECORD_SIZE, true);
  dv.setUint32(CAP_OFF.recordVersion, RECORD_VERSION, true);
  dv.setUint32(CAP_OFF.metaLength, json.length, true);
  dv.setUint32(CAP_OFF.reserved, 0, true);
  out.set(json, CAP_OFF.meta);
  return out;
}

/**
 * Decode a header from the first bytes of a capture file or stream. Pure: looks only at `bytes`.
 * Returns NeedMore when `bytes` is a valid but incomplete prefix; throws InputError(source) when
 * the bytes cannot be a dlm-rv capture this version reads. `source` names the file or peer.
 */
export function decodeCaptureHeader(bytes: Uint8Array, source = '<capture>'): CaptureHeader | NeedMore {
  const fail = (reason: string): never => {
    throw new InputError(source, undefined, reason);
  };
  const n = Math.min(bytes.length, CAPTURE_MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== CAPTURE_MAGIC[i]) {
      fail(`not a dlm-rv capture (bad magic ${JSON.stringify(printableHead(bytes))}, expected "${CAPTURE_MAGIC_TEXT}"); ` +
        'give a capture written by dlm-rv, or an event file (.ndjson)');
    }
  }
  if (bytes.length < CAPTURE_FIXED_HEADER) return { needMore: true, minBytes: CAPTURE_FIXED_HEADER };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const formatVersion = dv.getUint32(CAP_OFF.formatVersion, true);
  if (formatVersion !== CAPTURE_FORMAT_VERSION) {
    fail(`capture format version ${formatVersion} is not supported (this dlm-rv reads version ${CAPTURE_FORMAT_VERSION}); ` +
      'read it with the dlm-rv version that wrote it, or convert it to an event file with that version');
  }
  const headerLength = dv.getUint32(CAP_OFF.headerLength, true);
  const metaLength = dv.getUint32(CAP_OFF.metaLength, true);
  if (headerLength % 8 !== 0 || headerLength < CAPTURE_FIXED_HEADER || headerLength > CAPTURE_MAX_HEADER ||
      metaLength > headerLength - CAPTURE_FIXED_HEADER) {
    fail(`corrupt capture header (header length ${headerLength}, metadata length ${metaLength}); ` +
      'the file is damaged: re-record it');
  }
  const recordSize = dv.getUint32(CAP_OFF.recordSize, true);
  const recordVersion = dv.getUint32(CAP_OFF.recordVersion, true);
  if (recordSize !== RECORD_SIZE || recordVersion !== RECORD_VERSION) {
    fail(`records are ${recordSize} bytes, record version ${recordVersion}; this dlm-rv reads ${RECORD_SIZE}-byte records, ` +
      `record version ${RECORD_VERSION} (bpf/dlm_rv.h); use the dlm-rv version that wrote the capture`);
  }
  if (bytes.length < headerLength) return { needMore: true, minBytes: headerLength };
  let meta: unknown;
  try {
    meta = JSON.parse(utf8Fatal.decode(bytes.subarray(CAP_OFF.meta, CAP_OFF.meta + metaLength)));
  } catch (e) {
    fail(`corrupt capture header: metadata is not valid UTF-8 JSON (${(e as Error).message}); the file is damaged: re-record it`);
  }
  const bad = checkCaptureMeta(meta);
  if (bad) fail(`corrupt capture header: ${bad}; the file is damaged or was not written by dlm-rv`);
  return { formatVersion, headerLength, recordSize, recordVersion, meta: meta as CaptureMeta };
}

function printableHead(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < Math.min(8, b.length); i++) {
    const c = b[i];
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

export interface CaptureWriterOptions {
  /** bytes buffered before a write(2); default 1 MiB (rounded up to whole records) */
  bufferSize?: number;
  /** fsync on close; default false */
  fsync?: boolean;
}

/**
 * Streams a capture file: the header is written (and flushed) at once, so a file whose
 * collector was killed early is still readable; records are buffered and written in
 * large blocks. Whatever is buffered when the process dies is lost; call flush() at a
 * steady pace (e.g. each second) to bound that.
 */
export class CaptureWriter {
  private fd: number;
  private readonly ownsFd: boolean;
  private readonly buf: Uint8Array;
  private fill = 0;
  private readonly doFsync: boolean;
  private closed = false;
  /** records accepted so far (buffered or written) */
  records = 0;
  /** bytes written to the file so far, header included */
  bytesWritten = 0;
  readonly headerLength: number;

  /** `target`: a path (created or truncated), or an open file descriptor (left open by close()). */
  constructor(target: string | { fd: number }, meta: CaptureMeta, opts: CaptureWriterOptions = {}) {
    const size = Math.max(RECORD_SIZE, Math.ceil((opts.bufferSize ?? 1 << 20) / RECORD_SIZE) * RECORD_SIZE);
    this.buf = new Uint8Array(size);
    this.doFsync = opts.fsync ?? false;
    const header = encodeCaptureHeader(meta);
    this.headerLength = header.length;
    if (typeof target === 'string') {
      this.fd = fs.openSync(target, 'w', 0o644);
      this.ownsFd = true;
    } else {
      this.fd = target.fd;
      this.ownsFd = false;
    }
    this.writeAll(header);
  }

  /** Append whole records (length a multiple of 128). The bytes are copied. */
  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error('CaptureWriter.write after close');
    if (bytes.length % RECORD_SIZE !== 0) {
      throw new RangeError(`CaptureWriter.write: ${bytes.length} bytes is not a whole number of ${RECORD_SIZE}-byte records`);
    }
    this.records += bytes.length / RECORD_SIZE;
    if (this.fill + bytes.length <= this.buf.length) {
      this.buf.set(bytes, this.fill);
      this.fill += bytes.length;
      if (this.fill === this.buf.length) this.flush();
      return;
    }
    this.flush();
    if (bytes.length >= this.buf.length) {
      this.writeAll(bytes);
    } else {
      this.buf.set(bytes, 0);
      this.fill = bytes.length;
    }
  }

  /** Write out what is buffered. */
  flush(): void {
    if (this.fill === 0) return;
    this.writeAll(this.buf.subarray(0, this.fill));
    this.fill = 0;
  }

  /** Flush, optionally fsync, and close the file (if the writer opened it). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.doFsync) fs.fsyncSync(this.fd);
    if (this.ownsFd) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private writeAll(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) {
      const n = fs.writeSync(this.fd, b, off, b.length - off);
      off += n;
    }
    this.bytesWritten += b.length;
  }
}

export interface ReadCaptureOptions {
  /** size of the reused read buffer; default 4 MiB, rounded to whole records */
  chunkBytes?: number;
}

export interface CaptureReadResult {
  header: CaptureHeader;
  /** whole records delivered */
  records: number;
  /** non-fatal problems (a truncated last record) */
  warnings: string[];
}

/**
 * Stream a capture file. onHeader is called once, then onChunk with whole records.
 * The chunk is a view into one reused buffer (byteOffset 0, so 8-aligned): use or copy it
 * before returning. Return false from onChunk to stop early.
 * Bad header -> InputError; a truncated final record -> dropped, with a warning in the result.
 */
/** Open an input file for reading; an InputError names why it cannot be (ENOENT, EACCES, ...). */
export function openInput(path: string): number {
  try {
    return fs.openSync(path, 'r');
  } catch (e) {
    throw new InputError(path, undefined, `cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function readCaptureChunks(
  path: string,
  onHeader: (h: CaptureHeader) => void,
  onChunk: (bytes: Uint8Array) => void | boolean,
  opts: ReadCaptureOptions = {},
): CaptureReadResult {
  const chunk = Math.max(RECORD_SIZE, Math.floor((opts.chunkBytes ?? 4 << 20) / RECORD_SIZE) * RECORD_SIZE);
  const fd = openInput(path);
  try {
    return readFd(fd, path, chunk, onHeader, onChunk);
  } finally {
    fs.closeSync(fd);
  }
}

function readFd(
  fd: number, path: string, chunk: number,
  onHeader: (h: CaptureHeader) => void,
  onChunk: (bytes: Uint8Array) => void | boolean,
): CaptureReadResult {
  const warnings: string[] = [];
  // Header: read until decodeCaptureHeader is satisfied.
  let hbuf = new Uint8Array(4096);
  let have = 0;
  let header: CaptureHeader | undefined;
  for (;;) {
    const r = decodeCaptureHeader(hbuf.subarray(0, have), path);
    if (!('needMore' in r)) { header = r; break; }
    if (r.minBytes > hbuf.length) {
      const nb = new Uint8Array(r.minBytes);
      nb.set(hbuf.subarray(0, have));
      hbuf = nb;
    }
    const got = readFully(fd, hbuf, have, r.minBytes - have);
    if (got === 0 || have + got < r.minBytes) {
      have += got;
      if (have === 0) throw new InputError(path, undefined, 'empty file, not a dlm-rv capture; give a capture or an event file');
      // re-check what we have (bad magic in a short file must say "bad magic")
      decodeCaptureHeader(hbuf.subarray(0, have), path);
      throw new InputError(path, undefined,
        `truncated capture header (${have} of ${r.minBytes} bytes); the collector stopped before writing it: nothing to read`);
    }
    have += got;
  }
  onHeader(header);

  // Records: one reused buffer; carry a partial record to the next read.
  const buf = new Uint8Array(chunk);
  let fill = 0;
  let records = 0;
  const extra = have - header.headerLength; // header reads may have run into the records
  if (extra > 0) { buf.set(hbuf.subarray(header.headerLength, have)); fill = extra; }
  for (;;) {
    const got = readFully(fd, buf, fill, buf.length - fill);
    fill += got;
    const whole = fill - (fill % RECORD_SIZE);
    if (whole > 0) {
      records += whole / RECORD_SIZE;
      if (onChunk(buf.subarray(0, whole)) === false) break;
      buf.copyWithin(0, whole, fill);
      fill -= whole;
    }
    if (got === 0) {
      if (fill > 0) {
        warnings.push(`${path}: last record is truncated (${fill} of ${RECORD_SIZE} bytes, the writer was stopped mid-write); dropped it`);
      }
      break;
    }
  }
  return { header, records, warnings };
}

/** Read up to len bytes at the current position (works on pipes too); fewer only at end of file. */
function readFully(fd: number, b: Uint8Array, off: number, len: number): number {
  let total = 0;
  while (total < len) {
    const n = fs.readSync(fd, b, off + total, len - total, null);
    if (n === 0) break;
    total += n;
  }
  return total;
}

export interface Capture {
  header: CaptureHeader;
  records: RecordBuffer;
  warnings: string[];
}

/** Read a whole capture into one RecordBuffer. */
export function readCapture(path: string, opts: ReadCaptureOptions = {}): Capture {
  let rb: RecordBuffer | undefined;
  let size = 0;
  try { size = fs.statSync(path).size; } catch { /* readCaptureChunks reports it */ }
  const res = readCaptureChunks(path, (h) => {
    rb = new RecordBuffer(Math.max(1, Math.floor((size - h.headerLength) / RECORD_SIZE)));
  }, (bytes) => { rb!.appendRaw(bytes); }, opts);
  return { header: res.header, records: rb!, warnings: res.warnings };
}
