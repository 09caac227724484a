// --serve / --send on loopback (127.0.0.1 only): the wire, reconnection with resumption, and the
// verifier's verdict against the offline merge of the same files.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTraceText } from '../../src/io/trace-text';
import { CaptureWriter } from '../../src/io/capture';
import { Merger, runMerge, CaptureFile } from '../../src/merge';
import { Monitor } from '../../src/monitor/monitor';
import { RecordBuffer } from '../../src/record/buffer';
import { EX, Kind, LKF, PR, RECORD_SIZE, RECORD_WORDS, W } from '../../src/record/layout';
import { Frame, FrameReader, dataFrame, jsonFrame, parseHostPort, readU64, u64Frame, ProtocolError } from '../../src/net/protocol';
import { MergeServer } from '../../src/net/server';
import { FileSource, LiveSource, StreamSender } from '../../src/net/client';
import { COLLECT, ROOT, cli, readReport, tmp } from '../helpers/cli';

const DIR = path.join(__dirname, '../fixtures/traces/6.12.117+deb12-amd64/c-gfs2-2node');

// ------------------------------------------------------------------ fixtures

/** The real two-node traces as captures, one node's PR grant made EX while the other holds PR (one real conflict). */
function writeCaptures(dir: string): string[] {
  const ts = [1, 2].map((n) => parseTraceText(fs.readFileSync(path.join(DIR, `trace-node${n}.txt`), 'latin1'), `n${n}`).records);
  // find node 2's first new PR request while node 1 holds PR on the same resource, in the merged order
  let target: { ts: number; lkb: number } | undefined;
  const m = new Merger();
  const mon = new Monitor();
  runMerge(m, ts.map((records, i) => ({ name: `n${i + 1}`, nodes: [i + 1], records })), (b) => {
    for (let off = 0; off < b.byteLength; off += RECORD_SIZE) {
      const rec = b.slice(off, off + RECORD_SIZE);
      const u32 = new Uint32Array(rec.buffer);
      if (!target && (u32[W.kindLenMode] & 0xffff) === Kind.REQUEST && u32[W.node] === 2 && u32[W.kindLenMode] >> 24 === PR && !(u32[W.flags] & LKF.CONVERT)) {
        const hex = Buffer.from(rec.subarray(64, 64 + ((u32[W.kindLenMode] >>> 16) & 0xff))).toString('hex');
        if (mon.dumpLocks().some((l) => l.node === 1 && l.res === `${u32[W.ls]}:${hex}` && l.eff === PR + 1 && l.pend === 0)) {
          target = { ts: u32[W.tsHi] * 4294967296 + u32[W.tsLo], lkb: u32[W.lkb] };
        }
      }
      mon.consume(rec);
    }
  });
  const n2 = ts[1];
  for (let i = 0; i < n2.count; i++) {
    const b = i * RECORD_WORDS;
    if ((n2.u32[b + W.kindLenMode] & 0xffff) === Kind.REQUEST && n2.u32[b + W.lkb] === target!.lkb && n2.u32[b + W.tsHi] * 4294967296 + n2.u32[b + W.tsLo] === target!.ts) {
      n2.u32[b + W.kindLenMode] = (n2.u32[b + W.kindLenMode] & 0x00ffffff) | ((EX & 0xff) << 24);
    }
  }
  return ts.map((records, i) => {
    const f = path.join(dir, `node${i + 1}.cap`);
    const w = new CaptureWriter(f, {
      host: `node${i + 1}`, kernel_release: '6.12.117+deb12-amd64', probes: [], node_id: i + 1, flavor: 'mainline-6.10', source: 'live',
      collector_version: 'test', start_time: new Date(0).toISOString(), clock: 'boot',
    });
    w.write(records.bytes());
    w.close();
    return f;
  });
}

/** Verdicts by resource and locks (sequence numbers differ between merges). */
function verdicts(rep: { violations: { ls: number; res_hex: string; pairs: { a: { node: number; lkb: number }; b: { node: number; lkb: number } }[] }[] }): string[] {
  return rep.violations.map((v) => `${v.ls}:${v.res_hex}: ${v.pairs.map((p) => [`${p.a.node}/${p.a.lkb}`, `${p.b.node}/${p.b.lkb}`].sort().join('~')).sort().join(',')}`).sort();
}

interface Proc { child: ChildProcess; stderr: () => string; exit: Promise<number> }

function run(args: string[]): Proc {
  const child = spawn(process.execPath, [COLLECT, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : -1))));
  return { child, stderr: () => err, exit };
}

async function waitFor<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP relay to the verifier that can cut every connection going through it (a network hiccup). */
function relay(port: number): Promise<{ port: number; bytes: () => number; cut: () => void; close: () => void }> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let bytes = 0;
  const srv = net.createServer((a) => {
    const b = net.connect(port, '127.0.0.1');
    const p: [net.Socket, net.Socket] = [a, b];
    pairs.add(p);
    a.on('data', (d) => { bytes += d.length; b.write(d); });
    b.on('data', (d) => a.write(d));
    const end = () => { a.destroy(); b.destroy(); pairs.delete(p); };
    a.on('close', end); b.on('close', end); a.on('error', end); b.on('error', end);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    port: (srv.address() as net.AddressInfo).port,
    bytes: () => bytes,
    cut: () => { for (const [a, b] of pairs) { a.destroy(); b.destroy(); } },
    close: () => { for (const [a, b] of pairs) { a.destroy(); b.destroy(); } srv.close(); },
  })));
}

// ------------------------------------------------------------------ the wire

describe('the wire', () => {
  it('frames come out whole however the bytes are cut', () => {
    const recs = new Uint8Array(3 * RECORD_SIZE).map((_, i) => i & 0xff);
    const all = Buffer.concat([dataFrame(5, recs), u64Frame(Frame.HEARTBEAT, 2 ** 40 + 3), u64Frame(Frame.END, 8), jsonFrame(Frame.WELCOME, { a: 1 })]);
    for (const step of [1, 7, 64, all.length]) {
      const r = new FrameReader();
      const got: [number, number][] = [];
      for (let off = 0; off < all.length; off += step) {
        r.push(all.subarray(off, off + step));
        for (let f = r.next(); f; f = r.next()) got.push([f.type, f.type === Frame.WELCOME ? f.payload.length : readU64(f.payload, 0)]);
      }
      expect(got).toEqual([[Frame.DATA, 5], [Frame.HEARTBEAT, 2 ** 40 + 3], [Frame.END, 8], [Frame.WELCOME, 7]]);
    }
    const bad = new FrameReader();
    bad.push(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]));
    expect(() => bad.next()).toThrow(ProtocolError);
  });

  it('HOST:PORT', () => {
    expect(parseHostPort('10.0.0.1:7010', false)).toEqual({ host: '10.0.0.1', port: 7010 });
    expect(parseHostPort('[::1]:7010', false)).toEqual({ host: '::1', port: 7010 });
    expect(parseHostPort('verifier:1', false)).toEqual({ host: 'verifier', port: 1 });
    expect(parseHostPort('7010', true)).toEqual({ port: 7010 });
    expect(parseHostPort('127.0.0.1:0', true)).toEqual({ host: '127.0.0.1', port: 0 });
    for (const bad of ['7010', 'host', 'host:', ':80', 'host:0', 'host:65536', 'a b:1', 'host:x', '::1:80']) expect(parseHostPort(bad, false), bad).toBeUndefined();
  });

  it('a sender cut off mid-stream reconnects and resumes: the server holds every record once', async () => {
    const f = path.join(DIR, 'trace-node1.txt');
    const records = parseTraceText(fs.readFileSync(f, 'latin1'), f).records;
    const got = new RecordBuffer(records.count);
    const logs: string[] = [];
    const server = new MergeServer({ host: '127.0.0.1', port: 0, onBatch: (b) => got.appendRaw(b), log: (l) => logs.push(l), merge: { lagMs: 60_000 } });
    const addr = await server.listen();
    const r = await relay(addr.port);
    const sender = new StreamSender({
      host: '127.0.0.1', port: r.port, streamId: 'n1', source: FileSource.records(records), rate: 20_000, retryMs: 10_000, log: (l) => logs.push(l),
      meta: { host: 'n1', kernel_release: 'x', probes: [], node_id: 1, flavor: 'x', source: 'test', collector_version: 'x', start_time: 'x' },
    });
    const done = sender.run();
    await waitFor(() => r.bytes() > 100 * RECORD_SIZE, 10_000, 'some records through the relay');
    r.cut();
    const res = await done;
    expect(res).toEqual({ ok: true, records: records.count });
    expect(sender.connections).toBeGreaterThanOrEqual(2);
    await server.close();
    r.close();
    // every record once and in order, then the stream's synthetic leave
    expect(got.count).toBe(records.count + 1);
    expect(Buffer.from(got.bytes().subarray(0, records.count * RECORD_SIZE)).equals(Buffer.from(records.bytes()))).toBe(true);
    expect(logs.some((l) => /reconnected from .*resuming at record [1-9]/.test(l))).toBe(true);
    const st = server.list();
    expect(st.map((s) => [s.received, s.connections, s.ended])).toEqual([[records.count, sender.connections, true]]);
  });
});

describe('the verifier\'s side', () => {
  const meta = (n: number) => ({ host: `n${n}`, kernel_release: 'x', probes: [], node_id: n, flavor: 'x', source: 'test', collector_version: 'x', start_time: 'x' });

  it('a sender that vanishes departs after --depart-ms: its node leaves its lockspaces; if it comes back, it is a stream of its own', async () => {
    const f = path.join(DIR, 'trace-node1.txt');
    const records = parseTraceText(fs.readFileSync(f, 'latin1'), f).records;
    const half = new RecordBuffer(1000);
    half.appendRaw(records.bytes().subarray(0, 1000 * RECORD_SIZE));
    const got = new RecordBuffer(2048);
    const logs: string[] = [];
    const server = new MergeServer({ host: '127.0.0.1', port: 0, departMs: 300, onBatch: (b) => got.appendRaw(b), log: (l) => logs.push(l), merge: { lagMs: 100 } });
    const addr = await server.listen();
    const r = await relay(addr.port);
    const src = FileSource.records(half);
    // a source that never finishes: the sender keeps the connection until it is cut
    const open = { read: (a: number, b: number) => src.read(a, b), get available() { return src.available; }, finished: false, watermark: () => src.watermark(), acked: () => undefined, oldest: () => 0 };
    const sender = new StreamSender({ host: '127.0.0.1', port: r.port, streamId: 'gone', source: open, retryMs: 60_000, log: () => undefined, meta: meta(1) });
    const done = sender.run();
    await waitFor(() => server.list()[0]?.received === 1000, 10_000, 'the records');
    r.close(); // the node vanishes: no connection, no reconnection
    await waitFor(() => logs.find((l) => /departed/.test(l)), 5000, 'the departure');
    await waitFor(() => server.merger.done, 5000, 'the merge');
    const leaves = [];
    for (let i = 0; i < got.count; i++) if ((got.u32[i * RECORD_WORDS + W.kindLenMode] & 0xffff) === Kind.NODE_LEAVES_LS) leaves.push(got.u32[i * RECORD_WORDS + W.node]);
    expect(leaves).toEqual([1]);
    expect(got.count).toBe(1001);
    // it comes back (the same stream id): resumed as a new merge stream after the departure
    const again = new StreamSender({ host: '127.0.0.1', port: addr.port, streamId: 'gone', source: FileSource.records(records), retryMs: 5000, log: () => undefined, meta: meta(1) });
    expect(await again.run()).toEqual({ ok: true, records: records.count });
    expect(logs.some((l) => /came back after it had departed; resuming at record 1000/.test(l))).toBe(true);
    await server.close();
    expect(got.count).toBe(records.count + 2);
    sender['finish']({ ok: false, reason: 'test over' });
    await done;
  });

  it('the live collector\'s side: records kept until acknowledged; when the verifier is away too long, new ones are dropped and a LOSS says how many', () => {
    const src = new LiveSource(3, 100);
    const batch = (n: number, t0: number) => {
      const rb = new RecordBuffer(n);
      for (let i = 0; i < n; i++) rb.push({ kind: Kind.REQUEST, ts: t0 + i, node: 3, ls: 1, lkb: i + 1, mode: 5 });
      return rb.bytes();
    };
    src.add(batch(60, 1000));
    src.add(batch(60, 2000)); // no room: dropped
    expect(src.available).toBe(60);
    expect(src.lost).toBe(60);
    src.acked(50); // the verifier took 50
    expect(src.oldest()).toBe(50);
    expect(src.read(40, 10).byteLength).toBe(0); // gone
    src.add(batch(10, 3000));
    expect(src.available).toBe(71); // 60, the LOSS, 10
    const loss = new Uint32Array(src.read(60, 1).slice().buffer);
    expect(loss[W.kindLenMode] & 0xffff).toBe(Kind.LOSS);
    expect(loss[W.aux]).toBe(60);
    expect(src.watermark()).toBeGreaterThanOrEqual(3009);
  });
});

// ------------------------------------------------------------------ processes

describe('node collect.js --serve / --send, two senders on loopback', () => {
  let dir: string;
  let caps: string[];
  let offline: { violations: { ls: number; res_hex: string; pairs: { a: { node: number; lkb: number }; b: { node: number; lkb: number } }[] }[] };
  beforeAll(() => {
    dir = tmp('dlmrv-net-');
    caps = writeCaptures(dir);
    const out = path.join(dir, 'offline.json');
    const r = cli(['--replay', ...caps, '--output', out, '--quiet']);
    expect(r.code).toBe(1);
    offline = readReport(out);
    expect(offline.violations.length).toBe(1);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('one sender disconnects and comes back (resumes); the verifier\'s verdict is the offline merge\'s', async () => {
    const out = path.join(dir, 'served.json');
    const srv = run(['--serve', '127.0.0.1:0', '--streams', '2', '--output', out, '--quiet', '--lag-ms', '20000', '--depart-ms', '20000']);
    const port = Number(await waitFor(() => /listening on 127\.0\.0\.1:(\d+)/.exec(srv.stderr())?.[1], 10_000, 'the verifier to listen'));
    const r = await relay(port);
    const s1 = run(['--send', `127.0.0.1:${r.port}`, '--replay', caps[0], '--rate', '4000', '--retry-s', '10']);
    const s2 = run(['--send', `127.0.0.1:${port}`, '--replay', caps[1], '--rate', '4000']);
    await waitFor(() => r.bytes() > 800 * RECORD_SIZE, 15_000, 'node 1 half way');
    r.cut(); // node 1's connection drops; it reconnects through the relay and resumes
    const [c1, c2, cs] = await Promise.all([s1.exit, s2.exit, srv.exit]);
    r.close();
    expect([c1, c2], s1.stderr() + s2.stderr()).toEqual([0, 0]);
    expect(s1.stderr()).toMatch(/resuming at record [1-9]\d*/);
    expect(cs, srv.stderr()).toBe(1); // the one conflict
    expect(srv.stderr()).toMatch(/reconnected from/);
    const rep = readReport(out);
    expect(verdicts(rep)).toEqual(verdicts(offline));
    expect(rep.violations[0].ordering).toBe('causal');
    expect(rep.context.source).toBe('serve');
    const senders = rep.context.merge.senders as { node_id: number; records: number; connections: number; ended: boolean }[];
    const n1 = new CaptureFile(caps[0]), n2 = new CaptureFile(caps[1]);
    expect(senders.map((s) => [s.node_id, s.records, s.ended]).sort()).toEqual([[1, n1.records, true], [2, n2.records, true]]);
    expect(senders.find((s) => s.node_id === 1)!.connections).toBeGreaterThanOrEqual(2);
    n1.close(); n2.close();
    expect(rep.summary.records).toBe(rep.context.merge.streams.reduce((a: number, s: { records: number }) => a + s.records, 0) + 2); // + two synthetic leaves
  }, 60_000);

  it('SIGINT to the verifier: what arrived is merged and the report is written', async () => {
    const out = path.join(dir, 'sigint.json');
    const srv = run(['--serve', '127.0.0.1:0', '--output', out, '--no-stats']);
    const port = Number(await waitFor(() => /listening on 127\.0\.0\.1:(\d+)/.exec(srv.stderr())?.[1], 10_000, 'the verifier to listen'));
    const s1 = run(['--send', `127.0.0.1:${port}`, '--replay', caps[0], '--rate', '2000', '--retry-s', '2']);
    await waitFor(() => /connected from/.test(srv.stderr()), 10_000, 'the sender');
    await new Promise((r) => setTimeout(r, 600));
    srv.child.kill('SIGINT');
    const code = await srv.exit;
    expect(code, srv.stderr()).toBe(0);
    expect(srv.stderr()).toMatch(/stopped \(SIGINT\)/);
    const rep = readReport(out);
    expect(rep.summary.records).toBeGreaterThan(100);
    expect(rep.context.merge.senders[0].records + 1).toBe(rep.summary.records); // everything that arrived, and its leave
    s1.child.kill('SIGKILL');
    await s1.exit;
  }, 30_000);

  it('bad HOST:PORT: exit 2 with a clear message', () => {
    for (const [args, msg] of [
      [['--send', 'nohostport', '--replay', caps[0]], /--send needs HOST:PORT/],
      [['--send', '127.0.0.1:99999', '--replay', caps[0]], /--send needs HOST:PORT/],
      [['--send', 'no-such-host.invalid:7010', '--replay', caps[0]], /cannot resolve "no-such-host.invalid"/],
      [['--serve', 'x:y'], /--serve needs a port/],
      [['--send', '127.0.0.1:7010', '--replay', caps[0], caps[1]], /--send --replay takes one file/],
      [['--send', '127.0.0.1:7010', '--output', '/tmp/x.json'], /--output does not go with --send/],
      [['--serve', '7010', '--rate', '5'], /--rate only goes with --send/],
    ] as const) {
      const r = cli([...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });

  it('port in use: exit 3; nobody listening: the sender gives up with exit 3', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    const r = cli(['--serve', `127.0.0.1:${port}`, '--output', path.join(dir, 'busy.json')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/the port is in use/);
    await new Promise<void>((res) => busy.close(() => res()));
    const s = cli(['--send', `127.0.0.1:${port}`, '--replay', caps[0], '--retry-s', '1']);
    expect(s.code).toBe(3);
    expect(s.stderr).toMatch(/cannot connect to 127\.0\.0\.1:\d+ for 1 s/);
  }, 30_000);
});
