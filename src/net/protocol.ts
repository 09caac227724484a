// The stream a node sends to the central verifier (docs/merge.md, "The wire"):
//
//   sender -> server: a capture header (src/io/capture.ts, the same bytes a capture file starts
//                     with) whose metadata adds "protocol" and "stream_id"; then frames
//   server -> sender: WELCOME {"protocol", "resume_from": N}, or ERROR {"error"}; then ACKs
//
// A frame is an 8-byte header, u8 type, 3 zero bytes, u32 payload length (little-endian), and
// its payload:
//   DATA      u64 index of the first record in the stream, then whole 128-byte records
//   HEARTBEAT u64 the sender's clock (same clock as the records' ts): nothing older will follow
//   END       u64 records in the whole stream: the stream is complete
//   ACK       u64 records the server holds (the sender may forget those)
//   WELCOME   JSON; ERROR JSON
// Record indexes make reconnection exact: the server says where to resume, the sender resends
// from there, records the server already has are dropped by index (no duplicates, no gaps).
import { RECORD_SIZE } from '../record/layout';

export const PROTOCOL = 'dlm-rv-stream/1';
export const FRAME_HEADER = 8;
/** the largest payload accepted (a DATA frame of 65536 records is 8 MiB + 8) */
export const MAX_FRAME = (8 << 20) + 8;
export const DATA_MAX_RECORDS = 65536;

export const enum Frame {
  DATA = 1,
  HEARTBEAT = 2,
  END = 3,
  ACK = 4,
  WELCOME = 5,
  ERROR = 6,
}

export const FRAME_NAMES: Readonly<Record<number, string>> = { 1: 'DATA', 2: 'HEARTBEAT', 3: 'END', 4: 'ACK', 5: 'WELCOME', 6: 'ERROR' };

const TWO32 = 4294967296;

function header(out: Buffer, type: number, len: number): void {
  out[0] = type; out[1] = 0; out[2] = 0; out[3] = 0;
  out.writeUInt32LE(len, 4);
}

function writeU64(out: Buffer, off: number, v: number): void {
  out.writeUInt32LE(v % TWO32, off);
  out.writeUInt32LE(Math.floor(v / TWO32), off + 4);
}

export function readU64(b: Uint8Array, off: number): number {
  const dv = new DataView(b.buffer, b.byteOffset + off, 8);
  return dv.getUint32(0, true) + dv.getUint32(4, true) * TWO32;
}

/** A DATA frame: the records (whole ones) starting at stream index `first`. */
export function dataFrame(first: number, records: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + 8 + records.byteLength);
  header(out, Frame.DATA, 8 + records.byteLength);
  writeU64(out, FRAME_HEADER, first);
  out.set(records, FRAME_HEADER + 8);
  return out;
}

/** HEARTBEAT, END, ACK: one u64. */
export function u64Frame(type: Frame, v: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + 8);
  header(out, type, 8);
  writeU64(out, FRAME_HEADER, Math.max(0, Math.floor(v)));
  return out;
}

export function jsonFrame(type: Frame, obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const out = Buffer.allocUnsafe(FRAME_HEADER + body.length);
  header(out, type, body.length);
  body.copy(out, FRAME_HEADER);
  return out;
}

export class ProtocolError extends Error {}

/**
 * Accumulates bytes from a socket and hands out whole frames. The payload handed out is a view
 * valid until the next push().
 */
export class FrameReader {
  private buf = Buffer.alloc(1 << 16);
  private start = 0;
  private end = 0;

  /** Append received bytes. */
  push(chunk: Uint8Array): void {
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      if (live + chunk.length <= this.buf.length && this.start > 0) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        let cap = this.buf.length;
        while (cap < live + chunk.length) cap *= 2;
        const nb = Buffer.alloc(cap);
        this.buf.copy(nb, 0, this.start, this.end);
        this.buf = nb;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The bytes not consumed yet. */
  get pending(): Buffer { return this.buf.subarray(this.start, this.end); }

  /** Drop n bytes from the front (the capture header once decoded). */
  consume(n: number): void { this.start += n; }

  /** The next whole frame, or null. Throws ProtocolError on an impossible one. */
  next(): { type: number; payload: Buffer } | null {
    const have = this.end - this.start;
    if (have < FRAME_HEADER) return null;
    const b = this.buf, o = this.start;
    const type = b[o];
    if (type < Frame.DATA || type > Frame.ERROR || b[o + 1] !== 0 || b[o + 2] !== 0 || b[o + 3] !== 0) {
      throw new ProtocolError(`bad frame header (type ${type})`);
    }
    const len = b.readUInt32LE(o + 4);
    if (len > MAX_FRAME) throw new ProtocolError(`frame of ${len} bytes is too large`);
    if (type === Frame.DATA && (len < 8 || (len - 8) % RECORD_SIZE !== 0)) throw new ProtocolError(`DATA frame of ${len} bytes is not an index and whole records`);
    if ((type === Frame.HEARTBEAT || type === Frame.END || type === Frame.ACK) && len !== 8) throw new ProtocolError(`${FRAME_NAMES[type]} frame of ${len} bytes`);
    if (have < FRAME_HEADER + len) return null;
    this.start += FRAME_HEADER + len;
    return { type, payload: b.subarray(o + FRAME_HEADER, o + FRAME_HEADER + len) };
  }
}

/**
 * "HOST:PORT" ("[v6]:PORT"); with allowBare (a server's address), also "PORT" alone (host
 * undefined) and port 0 (any free port). Returns undefined when it is neither.
 */
export function parseHostPort(s: string, allowBare: boolean): { host?: string; port: number } | undefined {
  let host: string | undefined, port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(s);
  if (v6) { host = v6[1]; port = v6[2]; } else {
    const i = s.lastIndexOf(':');
    if (i < 0) {
      if (!allowBare) return undefined;
      port = s;
    } else {
      host = s.slice(0, i);
      port = s.slice(i + 1);
      if (!host || host.includes(':') || /\s/.test(host)) return undefined;
    }
  }
  if (!/^\d{1,5}$/.test(port)) return undefined;
  const p = Number(port);
  if (p < (allowBare ? 0 : 1) || p > 65535) return undefined; // a server may take 0: any free port
  return host === undefined ? { port: p } : { host, port: p };
}
