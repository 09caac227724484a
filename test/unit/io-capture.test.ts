import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors';
import {
  CAPTURE_FIXED_HEADER, CAP_OFF, type CaptureHeader, type CaptureMeta, CaptureWriter, decodeCaptureHeader,
  encodeCaptureHeader, readCapture, readCaptureChunks,
} from '../../src/io/capture';
import { parseEventFile } from '../../src/io/events';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';
import { Kind, RECORD_SIZE } from '../../src/record/layout';

const FIX = path.join(__dirname, '../fixtures/io');
let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlmrv-io-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });
const tmp = (name: string): string => path.join(dir, name);

const META: CaptureMeta = {
  host: 'node1',
  kernel_release: '6.1.0-56-amd64',
  probes: [
    { name: 'tp_btf/dlm_lock_start', attached: true },
    { name: 'fentry/dlm_add_cb', attached: false, reason: 'no BTF for dlm' },
  ],
  node_id: 1,
  flavor: 'mainline-6.1',
  source: 'simulate',
  collector_version: '0.1.0',
  start_time: '2025-01-01T00:00:00.000Z',
  clock: 'sim',
};

/** n records with distinguishable contents. */
function makeRecords(n: number): RecordBuffer {
  const rb = new RecordBuffer(n);
  for (let i = 0; i < n; i++) {
    rb.push({ kind: Kind.REQUEST, ts: 1000 + i, node: 1 + (i % 3), ls: 7, lkb: i, mode: i % 6, flags: i, pid: 100 + i,
      name: new TextEncoder().encode(`res-${i}`) });
  }
  return rb;
}

function writeCapture(file: string, rb: RecordBuffer, pieces: number[], bufferSize?: number): void {
  const w = new CaptureWriter(file, META, { bufferSize });
  let at = 0;
  for (const n of pieces) {
    w.write(rb.bytes().subarray(at * RECORD_SIZE, (at + n) * RECORD_SIZE));
    at += n;
  }
  w.write(rb.bytes().subarray(at * RECORD_SIZE));
  w.close();
}

function inputError(f: () => unknown): InputError {
  try { f(); } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

describe('capture header', () => {
  it('encodes to a multiple of 8 and decodes back', () => {
    const h = encodeCaptureHeader(META);
    expect(h.length % 8).toBe(0);
    expect(new TextDecoder().decode(h.subarray(0, 8))).toBe('DLMRVCAP');
    const d = decodeCaptureHeader(h);
    expect('needMore' in d).toBe(false);
    const hd = d as CaptureHeader;
    expect(hd).toMatchObject({ formatVersion: 1, headerLength: h.length, recordSize: 128, recordVersion: 1 });
    expect(hd.meta).toEqual(META);
  });

  it('asks for more bytes on a valid prefix, then decodes', () => {
    const h = encodeCaptureHeader(META);
    for (let n = 0; n < h.length; n++) {
      const d = decodeCaptureHeader(h.subarray(0, n));
      expect(d).toEqual({ needMore: true, minBytes: n < CAPTURE_FIXED_HEADER ? CAPTURE_FIXED_HEADER : h.length });
    }
    // extra bytes after the header (the first records on a TCP stream) are fine
    const more = new Uint8Array(h.length + 300);
    more.set(h);
    expect((decodeCaptureHeader(more) as CaptureHeader).headerLength).toBe(h.length);
  });

  it('keeps unknown metadata keys and a null node id', () => {
    const m = { ...META, node_id: null, future_key: { a: 1 } };
    expect((decodeCaptureHeader(encodeCaptureHeader(m)) as CaptureHeader).meta).toEqual(m);
  });

  it('refuses invalid metadata on encode', () => {
    expect(() => encodeCaptureHeader({ ...META, probes: [{ name: 'x' }] } as unknown as CaptureMeta)).toThrow(/probes\[0\]\.attached/);
    expect(() => encodeCaptureHeader({ ...META, node_id: -1 })).toThrow(/node_id/);
  });

  it('rejects a bad magic at once, even on a short prefix', () => {
    const e = inputError(() => decodeCaptureHeader(new TextEncoder().encode('{"t"'), 'x.ndjson'));
    expect(e.file).toBe('x.ndjson');
    expect(e.line).toBeUndefined();
    expect(e.reason).toMatch(/not a dlm-rv capture \(bad magic "\{\\"t\\"", expected "DLMRVCAP"\)/);
    expect(e.exitCode).toBe(2);
  });
});

describe('capture files', () => {
  it('round-trips records written in several pieces (bigger and smaller than the buffer)', () => {
    const rb = makeRecords(200);
    const f = tmp('rt.cap');
    writeCapture(f, rb, [1, 0, 3, 50, 7, 100], 10 * RECORD_SIZE);
    const c = readCapture(f);
    expect(c.warnings).toEqual([]);
    expect(c.header.meta).toEqual(META);
    expect(c.records.count).toBe(200);
    expect(Buffer.from(c.records.bytes()).equals(Buffer.from(rb.bytes()))).toBe(true);
    expect(fs.statSync(f).size).toBe(c.header.headerLength + 200 * RECORD_SIZE);
  });

  it('writes what the golden fixture holds (the format does not drift)', () => {
    const rb = parseEventFile(fs.readFileSync(path.join(FIX, 'all-events.ndjson'), 'utf8'), 'all-events.ndjson');
    const f = tmp('golden.cap');
    writeCapture(f, rb, [5]);
    expect(fs.readFileSync(f).equals(fs.readFileSync(path.join(FIX, 'sample.dlmrvcap')))).toBe(true);
    const c = readCapture(path.join(FIX, 'sample.dlmrvcap'));
    expect(c.records.count).toBe(rb.count);
    expect(decodeRecord(c.records.u8, c.records.u32, c.records.i32, 0)).toMatchObject({ kind: Kind.REQUEST, ts: 0, node: 1, ls: 7, lkb: 1, mode: 5 });
  });

  it('streams a file bigger than its chunk in whole, 8-aligned records', () => {
    const rb = makeRecords(1000);
    const f = tmp('big.cap');
    writeCapture(f, rb, []);
    const seen: Buffer[] = [];
    let header: CaptureHeader | undefined;
    const buffers = new Set<ArrayBufferLike>();
    const res = readCaptureChunks(f, (h) => { header = h; }, (bytes) => {
      expect(bytes.byteOffset % 8).toBe(0);
      expect(bytes.length % RECORD_SIZE).toBe(0);
      expect(bytes.length).toBeGreaterThan(0);
      buffers.add(bytes.buffer);
      seen.push(Buffer.from(bytes)); // copy: the chunk buffer is reused
    }, { chunkBytes: 7 * RECORD_SIZE + 50 });
    expect(header?.meta.host).toBe('node1');
    expect(seen.length).toBe(Math.ceil(1000 / 7));
    expect(buffers.size).toBe(1); // one reused buffer
    expect(res.records).toBe(1000);
    expect(Buffer.concat(seen).equals(Buffer.from(rb.bytes()))).toBe(true);
  });

  it('stops early when onChunk returns false', () => {
    const f = tmp('stop.cap');
    writeCapture(f, makeRecords(100), []);
    let calls = 0;
    const res = readCaptureChunks(f, () => {}, () => { calls++; return false; }, { chunkBytes: 10 * RECORD_SIZE });
    expect(calls).toBe(1);
    expect(res.records).toBe(10);
  });

  it('drops a truncated last record with a warning', () => {
    const rb = makeRecords(20);
    const f = tmp('trunc.cap');
    writeCapture(f, rb, []);
    fs.truncateSync(f, fs.statSync(f).size - 78); // writer killed mid-record: 50 of 128 bytes left
    const c = readCapture(f, { chunkBytes: 4 * RECORD_SIZE });
    expect(c.records.count).toBe(19);
    expect(Buffer.from(c.records.bytes()).equals(Buffer.from(rb.bytes().subarray(0, 19 * RECORD_SIZE)))).toBe(true);
    expect(c.warnings).toEqual([`${f}: last record is truncated (50 of 128 bytes, the writer was stopped mid-write); dropped it`]);
  });

  it('leaves a readable file behind a writer that never closed (header written at once)', () => {
    const f = tmp('open.cap');
    const w = new CaptureWriter(f, META);
    w.write(makeRecords(3).bytes()); // buffered, not yet on disk
    const c = readCapture(f);
    expect(c.records.count).toBe(0);
    expect(c.header.meta).toEqual(META);
    w.flush();
    expect(readCapture(f).records.count).toBe(3);
    w.close();
    w.close(); // idempotent
  });

  it('writes to an open file descriptor and leaves it open', () => {
    const f = tmp('fd.cap');
    const fd = fs.openSync(f, 'w');
    const w = new CaptureWriter({ fd }, META);
    w.write(makeRecords(2).bytes());
    w.close();
    fs.writeSync(fd, new Uint8Array(RECORD_SIZE)); // still open
    fs.closeSync(fd);
    expect(readCapture(f).records.count).toBe(3);
    expect(w.records).toBe(2);
  });

  it('refuses partial records and writes after close', () => {
    const w = new CaptureWriter(tmp('bad-write.cap'), META);
    expect(() => w.write(new Uint8Array(100))).toThrow(RangeError);
    w.close();
    expect(() => w.write(new Uint8Array(128))).toThrow(/after close/);
  });
});

describe('bad capture files -> InputError', () => {
  const good = (): Buffer => {
    const f = tmp('good.cap');
    writeCapture(f, makeRecords(2), []);
    return fs.readFileSync(f);
  };
  const patched = (name: string, edit: (b: Buffer) => Buffer | void): string => {
    const b = good();
    const out = edit(b) ?? b;
    const f = tmp(name);
    fs.writeFileSync(f, out);
    return f;
  };
  const reasonOf = (f: string): string => {
    const e = inputError(() => readCapture(f));
    expect(e.file).toBe(f);
    expect(e.message).toBe(`${f}: ${e.reason}`);
    return e.reason;
  };

  it('bad magic', () => {
    const f = patched('magic.cap', (b) => { b.write('XXXXXXXX', 0, 'latin1'); });
    expect(reasonOf(f)).toBe('not a dlm-rv capture (bad magic "XXXXXXXX", expected "DLMRVCAP"); give a capture written by dlm-rv, or an event file (.ndjson)');
  });

  it('unsupported format version', () => {
    const f = patched('version.cap', (b) => { b.writeUInt32LE(2, CAP_OFF.formatVersion); });
    expect(reasonOf(f)).toMatch(/^capture format version 2 is not supported \(this dlm-rv reads version 1\); read it with the dlm-rv version that wrote it/);
  });

  it('record size mismatch', () => {
    const f = patched('size.cap', (b) => { b.writeUInt32LE(64, CAP_OFF.recordSize); });
    expect(reasonOf(f)).toMatch(/^records are 64 bytes, record version 1; this dlm-rv reads 128-byte records, record version 1 \(bpf\/dlm_rv\.h\)/);
  });

  it('record version mismatch', () => {
    const f = patched('recver.cap', (b) => { b.writeUInt32LE(9, CAP_OFF.recordVersion); });
    expect(reasonOf(f)).toMatch(/^records are 128 bytes, record version 9; this dlm-rv reads 128-byte records, record version 1/);
  });

  it('impossible header length', () => {
    const f = patched('hlen.cap', (b) => { b.writeUInt32LE(13, CAP_OFF.headerLength); });
    expect(reasonOf(f)).toMatch(/^corrupt capture header \(header length 13, metadata length \d+\); the file is damaged: re-record it$/);
    const g = patched('mlen.cap', (b) => { b.writeUInt32LE(1 << 20, CAP_OFF.metaLength); });
    expect(reasonOf(g)).toMatch(/^corrupt capture header \(header length \d+, metadata length 1048576\)/);
  });

  it('corrupt metadata JSON', () => {
    const f = patched('json.cap', (b) => { b[CAP_OFF.meta] = 0x5b; /* '[' instead of '{' */ });
    expect(reasonOf(f)).toMatch(/^corrupt capture header: metadata is not valid UTF-8 JSON \(.+\); the file is damaged: re-record it$/);
    const g = patched('utf8.cap', (b) => { b[CAP_OFF.meta + 2] = 0xff; });
    expect(reasonOf(g)).toMatch(/^corrupt capture header: metadata is not valid UTF-8 JSON/);
  });

  it('metadata JSON missing a field', () => {
    const h = encodeCaptureHeader({ ...META, host: 'x'.repeat(5) });
    const b = Buffer.from(h);
    b.write('"hxst"', CAP_OFF.meta + 1, 'latin1'); // {"hxst":"xxxxx",...
    const f = tmp('field.cap');
    fs.writeFileSync(f, b);
    expect(reasonOf(f)).toBe('corrupt capture header: metadata "host" must be a string; the file is damaged or was not written by dlm-rv');
  });

  it('truncated header', () => {
    const f = patched('short.cap', (b) => b.subarray(0, 100));
    expect(reasonOf(f)).toMatch(/^truncated capture header \(100 of \d+ bytes\); the collector stopped before writing it: nothing to read$/);
    const g = patched('short2.cap', (b) => b.subarray(0, 20));
    expect(reasonOf(g)).toBe('truncated capture header (20 of 32 bytes); the collector stopped before writing it: nothing to read');
  });

  it('short file with a bad magic says bad magic', () => {
    const f = tmp('tiny.txt');
    fs.writeFileSync(f, 'hi\n');
    expect(reasonOf(f)).toMatch(/^not a dlm-rv capture \(bad magic "hi\\\\x0a"/);
  });

  it('empty file', () => {
    const f = tmp('empty.cap');
    fs.writeFileSync(f, '');
    expect(reasonOf(f)).toBe('empty file, not a dlm-rv capture; give a capture or an event file');
  });

  it('missing file', () => {
    expect(reasonOf(tmp('nope.cap'))).toBe('cannot open: ENOENT');
  });
});
