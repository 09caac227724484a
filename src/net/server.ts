// The central verifier's side of the wire: one stream per sender (a node's collector), merged
// causally (src/merge) and handed on in batches. Reconnections resume by record index; a stream
// whose sender stays away departs (its nodes leave their lockspaces); on close everything that
// arrived is merged before the report is written.
import * as net from 'net';
import { decodeCaptureHeader, type CaptureHeader } from '../io/capture';
import { InputError } from '../errors';
import { Merger, type MergeOptions } from '../merge/merger';
import { RECORD_SIZE } from '../record/layout';
import { DATA_MAX_RECORDS, Frame, FrameReader, PROTOCOL, ProtocolError, jsonFrame, readU64, u64Frame } from './protocol';

export interface ServerOptions {
  host?: string;
  port: number;
  merge?: MergeOptions;
  /** a stream whose sender is away (disconnected, or silent) this long departs (ms; default 30000) */
  departMs?: number;
  /** records buffered for one stream before its socket is paused (backpressure; default 1 << 18) */
  highWater?: number;
  /** merged batches, in order */
  onBatch: (bytes: Uint8Array) => void;
  /** stop merging (--fail-fast) */
  stopped?: () => boolean;
  log: (line: string) => void;
  /** a stream's capture header arrived (first connection only) */
  onStream?: (s: StreamInfo) => void;
}

export interface StreamInfo {
  streamId: string;
  name: string;
  header: CaptureHeader;
  /** the merge's stream ids (a stream that came back after departing gets another) */
  mergeIds: number[];
  received: number;
  connections: number;
  connected: boolean;
  ended: boolean;
  departed: boolean;
  lastFrameMs: number;
  awaySince: number;
}

interface Conn {
  socket: net.Socket;
  reader: FrameReader;
  stream?: StreamInfo;
  peer: string;
  lastAck: number;
  paused: boolean;
}

export class MergeServer {
  readonly merger: Merger;
  private server?: net.Server;
  private readonly streams = new Map<string, StreamInfo>();
  private readonly conns = new Set<Conn>();
  private readonly departMs: number;
  private readonly highWater: number;
  private timer?: NodeJS.Timeout;
  private closing = false;

  constructor(private readonly o: ServerOptions) {
    this.merger = new Merger({ ...o.merge, live: true });
    this.departMs = o.departMs ?? 30_000;
    this.highWater = o.highWater ?? 1 << 18;
  }

  /** Listen; rejects with the socket error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((s) => this.accept(s));
      this.server = srv;
      srv.once('error', reject);
      srv.listen(this.o.port, this.o.host, () => {
        srv.removeListener('error', reject);
        srv.on('error', (e) => this.o.log(`dlm-rv: server error: ${e.message}`));
        this.timer = setInterval(() => this.tick(), 100);
        resolve(srv.address() as net.AddressInfo);
      });
    });
  }

  list(): StreamInfo[] { return [...this.streams.values()]; }

  /** Streams that have ended (END received, or departed). */
  get endedCount(): number { let n = 0; for (const s of this.streams.values()) if (s.ended) n++; return n; }

  /**
   * Stop: no new connections, every stream ends where its data ends, everything that arrived is
   * merged and handed on. Then the connections are closed.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    const srv = this.server;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
    for (const c of this.conns) c.socket.pause();
    for (const s of this.streams.values()) {
      if (!s.ended) {
        s.ended = true;
        for (const id of s.mergeIds) this.merger.end(id);
      }
    }
    this.pump();
    for (const c of this.conns) c.socket.destroy();
    this.conns.clear();
  }

  // ---------------------------------------------------------------- connections

  private accept(socket: net.Socket): void {
    if (this.closing) { socket.destroy(); return; }
    socket.setNoDelay(true);
    const c: Conn = { socket, reader: new FrameReader(), peer: `${socket.remoteAddress}:${socket.remotePort}`, lastAck: 0, paused: false };
    this.conns.add(c);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.onData(c, chunk);
      } catch (e) {
        this.reject(c, e instanceof ProtocolError || e instanceof InputError ? e.message : `internal error: ${(e as Error).message}`);
      }
    });
    socket.on('error', () => { /* close follows */ });
    socket.on('close', () => this.onClose(c));
  }

  private reject(c: Conn, why: string): void {
    this.o.log(`dlm-rv: ${c.stream ? `stream ${c.stream.name}` : c.peer}: ${why}; closing the connection`);
    if (!c.socket.destroyed) c.socket.end(jsonFrame(Frame.ERROR, { error: why }));
    c.socket.destroySoon();
  }

  private onData(c: Conn, chunk: Buffer): void {
    c.reader.push(chunk);
    if (!c.stream) {
      const r = decodeCaptureHeader(c.reader.pending, c.peer);
      if ('needMore' in r) return;
      c.reader.consume(r.headerLength);
      this.hello(c, r);
      if (!c.stream) return;
    }
    const s = c.stream;
    s.lastFrameMs = Date.now();
    let got = false;
    for (let f = c.reader.next(); f; f = c.reader.next()) {
      if (f.type === Frame.DATA) {
        const first = readU64(f.payload, 0);
        const n = (f.payload.length - 8) / RECORD_SIZE;
        if (first > s.received) throw new ProtocolError(`records ${s.received}..${first - 1} are missing (DATA from ${first})`);
        const skip = s.received - first; // already here: a resend after a reconnection
        if (skip < n) {
          this.merger.push(s.mergeIds[s.mergeIds.length - 1], f.payload.subarray(8 + skip * RECORD_SIZE));
          s.received += n - skip;
          got = true;
        }
      } else if (f.type === Frame.HEARTBEAT) {
        this.merger.heartbeat(s.mergeIds[s.mergeIds.length - 1], readU64(f.payload, 0));
      } else if (f.type === Frame.END) {
        const total = readU64(f.payload, 0);
        if (total !== s.received) throw new ProtocolError(`END says ${total} records, ${s.received} arrived`);
        s.ended = true;
        this.merger.end(s.mergeIds[s.mergeIds.length - 1]);
        this.o.log(`dlm-rv: stream ${s.name} ended: ${s.received} records`);
        c.socket.end(u64Frame(Frame.ACK, s.received));
        c.lastAck = s.received;
        this.pump();
        return;
      } else {
        throw new ProtocolError(`unexpected ${f.type} frame from a sender`);
      }
    }
    if (got) {
      this.pump();
      if (s.received - c.lastAck >= DATA_MAX_RECORDS / 4) this.ack(c);
    }
  }

  private hello(c: Conn, h: CaptureHeader): void {
    const meta = h.meta as Record<string, unknown>;
    if (meta.protocol !== PROTOCOL) throw new ProtocolError(`protocol ${JSON.stringify(meta.protocol)} is not ${PROTOCOL}: use the same dlm-rv version on both sides`);
    if (typeof meta.stream_id !== 'string' || !meta.stream_id) throw new ProtocolError('the header has no "stream_id"');
    const id = meta.stream_id;
    let s = this.streams.get(id);
    const now = Date.now();
    const nodes = h.meta.node_id !== null ? [h.meta.node_id] : undefined;
    if (!s) {
      let name = `${h.meta.host}${h.meta.node_id !== null ? ` (node ${h.meta.node_id})` : ''}`;
      const taken = new Set([...this.streams.values()].map((x) => x.name));
      for (let k = 2; taken.has(name); k++) name = `${h.meta.host}${h.meta.node_id !== null ? ` (node ${h.meta.node_id})` : ''} #${k}`;
      s = { streamId: id, name, header: h, mergeIds: [this.merger.addStream(name, nodes ? { nodes } : {})], received: 0, connections: 0, connected: false,
        ended: false, departed: false, lastFrameMs: now, awaySince: 0 };
      this.streams.set(id, s);
      this.o.onStream?.(s);
      this.o.log(`dlm-rv: stream ${s.name} connected from ${c.peer}`);
    } else {
      if (s.ended && !s.departed) throw new ProtocolError(`stream ${id} has already ended`);
      for (const o of this.conns) if (o !== c && o.stream === s) { o.stream = undefined; o.socket.destroy(); }
      if (s.departed) {
        // back after it was given up: its records go on in a stream of their own (its locks were dropped)
        s.mergeIds.push(this.merger.addStream(`${s.name} #${s.mergeIds.length + 1}`, nodes ? { nodes } : {}));
        s.ended = false;
        s.departed = false;
        this.o.log(`dlm-rv: stream ${s.name} came back after it had departed; resuming at record ${s.received} (its locks were dropped at the departure)`);
      } else {
        this.o.log(`dlm-rv: stream ${s.name} reconnected from ${c.peer}; resuming at record ${s.received}`);
      }
    }
    s.connections++;
    s.connected = true;
    s.lastFrameMs = now;
    c.stream = s;
    c.lastAck = s.received;
    c.socket.write(jsonFrame(Frame.WELCOME, { protocol: PROTOCOL, resume_from: s.received }));
  }

  private ack(c: Conn): void {
    if (!c.stream || c.socket.destroyed) return;
    c.lastAck = c.stream.received;
    c.socket.write(u64Frame(Frame.ACK, c.stream.received));
  }

  private onClose(c: Conn): void {
    this.conns.delete(c);
    const s = c.stream;
    if (!s || this.closing) return;
    let other = false;
    for (const o of this.conns) if (o.stream === s) other = true;
    if (other) return;
    s.connected = false;
    if (!s.ended) {
      s.awaySince = Date.now();
      this.o.log(`dlm-rv: stream ${s.name} disconnected after ${s.received} records; it departs unless it is back within ${(this.departMs / 1000).toFixed(1)} s`);
    }
  }

  // ---------------------------------------------------------------- merging

  /** Hand on what can be merged now; pause senders whose streams pile up. */
  pump(): void {
    const stopped = this.o.stopped ?? (() => false);
    for (;;) {
      if (stopped()) break;
      const b = this.merger.pull();
      if (!b.byteLength) break;
      this.o.onBatch(b);
    }
    for (const c of this.conns) {
      const s = c.stream;
      if (!s) continue;
      const q = this.merger.queued(s.mergeIds[s.mergeIds.length - 1]);
      if (!c.paused && q > this.highWater) { c.paused = true; c.socket.pause(); } else if (c.paused && q < this.highWater / 2) { c.paused = false; c.socket.resume(); }
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.streams.values()) {
      if (s.ended) continue;
      const away = s.connected ? now - s.lastFrameMs : now - s.awaySince;
      if (away > this.departMs) {
        s.ended = true;
        s.departed = true;
        s.connected = false;
        for (const o of this.conns) if (o.stream === s) { o.stream = undefined; o.socket.destroy(); }
        this.merger.end(s.mergeIds[s.mergeIds.length - 1]);
        this.o.log(`dlm-rv: stream ${s.name} departed: nothing for ${(away / 1000).toFixed(1)} s after ${s.received} records; its nodes leave their lockspaces`);
      }
    }
    for (const c of this.conns) if (c.stream && c.stream.received > c.lastAck) this.ack(c);
    this.pump();
  }

  /** Per stream: records, lag (how far its newest record is behind the newest of all, on the common timeline), state. */
  lagInfo(): { name: string; records: number; lagMs: number | null; state: string }[] {
    const pos = [...this.streams.values()].map((s) => this.merger.alignedPosition(s.mergeIds[s.mergeIds.length - 1]));
    const newest = Math.max(...pos.filter((p) => Number.isFinite(p)), -Infinity);
    return [...this.streams.values()].map((s, i) => ({
      name: s.name,
      records: s.received,
      lagMs: Number.isFinite(pos[i]) && Number.isFinite(newest) ? (newest - pos[i]) / 1e6 : null,
      state: s.ended ? (s.departed ? 'departed' : 'ended') : s.connected ? 'connected' : 'away',
    }));
  }
}
