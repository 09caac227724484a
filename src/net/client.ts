// A node's side of the wire (--send): its records, framed, to the central verifier; reconnects
// and resumes where the server says; stops reading its source while the socket is full.
import * as net from 'net';
import { encodeCaptureHeader, type CaptureMeta } from '../io/capture';
import { RECORD_SIZE, RECORD_WORDS, W, Kind, RF_SYNTH } from '../record/layout';
import { RecordBuffer, writeRecord } from '../record/buffer';
import { DATA_MAX_RECORDS, Frame, FrameReader, PROTOCOL, dataFrame, readU64, u64Frame } from './protocol';
import type { CaptureFile } from '../merge/sources';

const TWO32 = 4294967296;

/** Records by index, as far as they exist. */
export interface SendSource {
  /** up to max records from index `from` (a view; valid until the next call); empty: none yet (or none left) */
  read(from: number, max: number): Uint8Array;
  /** records that exist so far */
  readonly available: number;
  /** no more will come (available is the total) */
  readonly finished: boolean;
  /** the source's clock: no record older than this will come (NaN: unknown) */
  watermark(): number;
  /** the server holds everything before index n */
  acked(n: number): void;
  /** the oldest index still readable */
  oldest(): number;
}

/** A file read to its end (a capture read in place, or records in memory). */
export class FileSource implements SendSource {
  readonly finished = true;
  private lastSentTs = NaN;
  constructor(private readonly recs: { capture?: CaptureFile; records?: RecordBuffer }, readonly available: number) {}

  static capture(c: CaptureFile): FileSource { return new FileSource({ capture: c }, c.records); }
  static records(r: RecordBuffer): FileSource { return new FileSource({ records: r }, r.count); }

  read(from: number, max: number): Uint8Array {
    const n = Math.min(max, this.available - from);
    if (n <= 0) return new Uint8Array(0);
    const b = this.recs.capture ? this.recs.capture.readAt(from, n) : this.recs.records!.bytes().subarray(from * RECORD_SIZE, (from + n) * RECORD_SIZE);
    if (b.byteLength >= RECORD_SIZE) {
      const dv = new DataView(b.buffer, b.byteOffset + b.byteLength - RECORD_SIZE, 8);
      this.lastSentTs = dv.getUint32(W.tsLo * 4, true) + dv.getUint32(W.tsHi * 4, true) * TWO32;
    }
    return b;
  }

  watermark(): number { return this.lastSentTs; }
  acked(): void { /* the file keeps them */ }
  oldest(): number { return 0; }
}

/**
 * The live collector's batches: kept until the server holds them. When the server is away long
 * enough to fill `maxRecords`, new records are dropped and counted, and a LOSS record takes their
 * place once there is room (the stream says what it lost, as the BPF ring does).
 */
export class LiveSource implements SendSource {
  private buf = new RecordBuffer(1 << 14);
  private base = 0; // stream index of buf's first record
  private head = 0; // records at the front of buf already acknowledged (dropped in bulk)
  private dropped = 0;
  private lostTotal = 0;
  private lastTs = 0;
  private lastTsAt = 0; // process.hrtime (ms) when lastTs was seen
  finished = false;

  constructor(private readonly nodeId: number, private readonly maxRecords = 1 << 20) {}

  get available(): number { return this.base + this.buf.count - this.head; }
  /** records dropped because the verifier was away too long */
  get lost(): number { return this.lostTotal; }

  /** Append a batch of whole records. */
  add(bytes: Uint8Array): void {
    const n = bytes.byteLength / RECORD_SIZE;
    if (n === 0) return;
    const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const b = (n - 1) * RECORD_WORDS;
    const ts = u32[b + W.tsLo] + u32[b + W.tsHi] * TWO32;
    if (ts > this.lastTs) { this.lastTs = ts; this.lastTsAt = performance.now(); }
    if (this.buf.count - this.head + n + 1 > this.maxRecords) { this.dropped += n; this.lostTotal += n; return; }
    this.flushLoss();
    this.buf.appendRaw(bytes);
  }

  /** Put a LOSS record where dropped records were (done before the next batch, and at the end). */
  flushLoss(): void {
    if (this.dropped === 0) return;
    const i = this.buf.reserve();
    writeRecord(this.buf.u32, this.buf.i32, this.buf.u8, i, { kind: Kind.LOSS, ts: this.lastTs, node: this.nodeId, ls: 0, aux: Math.min(this.dropped, 0xffffffff), rflags: RF_SYNTH });
    this.dropped = 0;
  }

  read(from: number, max: number): Uint8Array {
    const i = from - this.base + this.head;
    const n = Math.min(max, this.buf.count - i);
    if (from < this.base) return new Uint8Array(0);
    if (i < 0 || n <= 0) return new Uint8Array(0);
    return this.buf.bytes().subarray(i * RECORD_SIZE, (i + n) * RECORD_SIZE);
  }

  /** The kernel clock now, as far as the process can tell (the records' clock advances with the monotonic one). */
  watermark(): number {
    if (!this.lastTs) return NaN;
    return this.lastTs + Math.max(0, performance.now() - this.lastTsAt - 5) * 1e6;
  }

  acked(n: number): void {
    const k = Math.min(n - this.base, this.buf.count - this.head);
    if (k <= 0) return;
    this.head += k;
    this.base += k;
    // compact once the acknowledged front is half the buffer: amortized, not a copy per ACK
    if (this.head * 2 >= this.buf.count) {
      const keep = this.buf.bytes().slice(this.head * RECORD_SIZE);
      this.buf.clear();
      this.buf.appendRaw(keep);
      this.head = 0;
    }
  }

  /** The oldest index still kept (the server acknowledged everything before it). */
  oldest(): number { return this.base; }
}

export interface SenderOptions {
  host: string;
  port: number;
  streamId: string;
  meta: CaptureMeta;
  source: SendSource;
  /** records per second, at most (default: as fast as the socket takes them) */
  rate?: number;
  /** give up after this long without a working connection (ms; default 60000) */
  retryMs?: number;
  log: (line: string) => void;
}

export type SendResult = { ok: true; records: number } | { ok: false; reason: string };

export class StreamSender {
  private socket?: net.Socket;
  private reader = new FrameReader();
  private welcomed = false;
  private pos = 0; // next index to send
  private acked = 0;
  private endSent = false;
  private blocked = false;
  private stopping = false;
  private rateStart = 0;
  private rateSent = 0;
  private backoff = 100;
  private lastGood = Date.now();
  private everConnected = false;
  private timers: NodeJS.Timeout[] = [];
  private done?: (r: SendResult) => void;
  private pumpTimer?: NodeJS.Timeout;
  /** connections made (the first and every reconnection) */
  connections = 0;

  constructor(private readonly o: SenderOptions) {}

  /** Run until the whole source is acknowledged (finished sources), stop() is done, or it gives up. */
  run(): Promise<SendResult> {
    return new Promise((resolve) => {
      this.done = (r) => {
        for (const t of this.timers) clearInterval(t);
        if (this.pumpTimer) clearTimeout(this.pumpTimer);
        this.socket?.destroy();
        resolve(r);
      };
      this.timers.push(setInterval(() => this.heartbeat(), 200));
      this.timers.push(setInterval(() => this.checkGiveUp(), 250));
      this.connect();
    });
  }

  /** No more records will be added: send what is there, END, and finish once acknowledged. */
  stop(): void {
    this.stopping = true;
    this.pump();
  }

  /** New records are available (live sources). */
  poke(): void { this.pump(); }

  get sent(): number { return this.pos; }
  get acknowledged(): number { return this.acked; }

  private connect(): void {
    if (!this.done) return;
    const s = net.connect({ host: this.o.host, port: this.o.port });
    this.socket = s;
    this.reader = new FrameReader();
    this.welcomed = false;
    this.blocked = false;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.connections++;
      const meta = { ...this.o.meta, protocol: PROTOCOL, stream_id: this.o.streamId } as CaptureMeta;
      s.write(encodeCaptureHeader(meta));
    });
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('drain', () => { this.blocked = false; this.pump(); });
    s.on('error', (e) => {
      if (!this.everConnected && (e as NodeJS.ErrnoException).code === 'ENOTFOUND') {
        this.finish({ ok: false, reason: `cannot resolve ${this.o.host}` });
      }
    });
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = undefined;
      if (!this.done) return;
      if (this.welcomed) this.o.log(`dlm-rv: connection to ${this.o.host}:${this.o.port} lost after ${this.acked} acknowledged records; reconnecting`);
      this.welcomed = false;
      const t = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(2000, this.backoff * 2);
      this.timers.push(t);
    });
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    try {
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        if (f.type === Frame.WELCOME) {
          const w = JSON.parse(f.payload.toString('utf8')) as { resume_from?: unknown; protocol?: unknown };
          if (w.protocol !== PROTOCOL || typeof w.resume_from !== 'number') throw new Error(`the server speaks ${JSON.stringify(w.protocol)}, not ${PROTOCOL}`);
          this.welcomed = true;
          this.everConnected = true;
          this.lastGood = Date.now();
          this.backoff = 100;
          this.pos = w.resume_from;
          if (this.pos < this.acked) this.acked = this.pos;
          if (this.pos > this.o.source.available) throw new Error(`the server has ${this.pos} records of this stream, the source only ${this.o.source.available}`);
          if (this.pos < this.o.source.oldest()) throw new Error(`the server asks for record ${this.pos}, but it had acknowledged up to ${this.o.source.oldest()} (a restarted server): start a new stream`);
          this.o.log(`dlm-rv: sending to ${this.o.host}:${this.o.port} as stream ${this.o.streamId}${this.pos ? `, resuming at record ${this.pos}` : ''}`);
          this.endSent = false;
          this.heartbeat();
          this.pump();
        } else if (f.type === Frame.ACK) {
          const n = readU64(f.payload, 0);
          if (n > this.acked) { this.acked = n; this.o.source.acked(n); }
          this.lastGood = Date.now();
          if (this.endSent && n === this.pos) this.finish({ ok: true, records: n });
        } else if (f.type === Frame.ERROR) {
          const e = JSON.parse(f.payload.toString('utf8')) as { error?: string };
          this.finish({ ok: false, reason: `the server refused the stream: ${e.error ?? 'no reason given'}` });
          return;
        }
      }
    } catch (e) {
      this.finish({ ok: false, reason: (e as Error).message });
    }
  }

  private pump(): void {
    const s = this.socket;
    if (!s || !this.welcomed || this.blocked || this.endSent || !this.done) return;
    const src = this.o.source;
    for (;;) {
      let max = DATA_MAX_RECORDS / 4;
      if (this.o.rate) {
        const now = performance.now();
        if (!this.rateStart) this.rateStart = now;
        const allowed = Math.floor(((now - this.rateStart) / 1000) * this.o.rate) - this.rateSent;
        if (allowed <= 0) {
          if (!this.pumpTimer) this.pumpTimer = setTimeout(() => { this.pumpTimer = undefined; this.pump(); }, Math.max(5, Math.ceil(1000 / this.o.rate)));
          return;
        }
        max = Math.min(max, allowed);
      }
      const b = src.read(this.pos, max);
      if (!b.byteLength) break;
      const n = b.byteLength / RECORD_SIZE;
      const ok = s.write(dataFrame(this.pos, b));
      this.pos += n;
      this.rateSent += n;
      if (!ok) { this.blocked = true; return; }
    }
    if ((src.finished || this.stopping) && this.pos >= src.available) {
      this.endSent = true;
      s.write(u64Frame(Frame.END, this.pos));
    }
  }

  private heartbeat(): void {
    if (!this.socket || !this.welcomed || this.endSent) return;
    const w = this.o.source.watermark();
    if (w === w) this.socket.write(u64Frame(Frame.HEARTBEAT, w));
  }

  private checkGiveUp(): void {
    const limit = this.o.retryMs ?? 60_000;
    if (this.welcomed) { this.lastGood = Date.now(); return; }
    if (Date.now() - this.lastGood > limit) {
      this.finish({ ok: false, reason: `${this.everConnected ? 'lost the connection to' : 'cannot connect to'} ${this.o.host}:${this.o.port} for ${(limit / 1000).toFixed(0)} s` +
        `${this.everConnected ? ` (${this.o.source.available - this.acked} records not delivered)` : ''}` });
    }
  }

  private finish(r: SendResult): void {
    const d = this.done;
    if (!d) return;
    this.done = undefined;
    d(r);
  }
}
