import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors';
import { detectFormat, describeUnknown, loadRecords, readHead, readInputFile } from '../../src/io/detect';

const FIX = path.join(__dirname, '../fixtures/io');
const fx = (name: string): string => path.join(FIX, name);
const txt = (s: string): Uint8Array => new TextEncoder().encode(s);

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlmrv-detect-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('detectFormat', () => {
  it('capture: the magic', () => {
    expect(detectFormat(readHead(fx('sample.dlmrvcap')))).toBe('capture');
    expect(detectFormat(txt('DLMRVCAP'))).toBe('capture');
    expect(detectFormat(txt('DLMRV'))).toBe('unknown');
  });

  it('events: first non-comment, non-blank line starts with {', () => {
    expect(detectFormat(readHead(fx('all-events.ndjson')))).toBe('events');
    expect(detectFormat(txt('\n\n   {"t": 0}'))).toBe('events');
    expect(detectFormat(txt('\ufeff# c\r\n{"t": 0}\r\n'))).toBe('events');
    expect(detectFormat(txt('# just a comment\n\n'))).toBe('events'); // empty scenario
  });

  it('trace-text: tracefs with its "# tracer:" header', () => {
    expect(detectFormat(readHead(fx('trace-tracefs.txt')))).toBe('trace-text');
  });

  it('trace-text: trace_pipe lines without a header', () => {
    const lines = fs.readFileSync(fx('trace-tracefs.txt'), 'utf8').split('\n').filter((l) => !l.startsWith('#'));
    expect(detectFormat(txt(lines.join('\n')))).toBe('trace-text');
    expect(detectFormat(txt('  <...>-1234  ( 1234) [003] d..2.  5.000001: dlm_ast: ls_id=1 lkb_id=2\n'))).toBe('trace-text');
  });

  it('trace-text: trace-cmd report (cpus= header) and perf script', () => {
    expect(detectFormat(readHead(fx('trace-cmd-report.txt')))).toBe('trace-text');
    expect(detectFormat(txt('version = 6\nCPU 1 is empty\ncpus=2\n'))).toBe('trace-text');
    expect(detectFormat(readHead(fx('perf-script.txt')))).toBe('trace-text');
  });

  it('unknown: other text, binary, empty', () => {
    expect(detectFormat(readHead(fx('unknown.txt')))).toBe('unknown');
    expect(detectFormat(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 0, 0, 0))).toBe('unknown');
    expect(detectFormat(new Uint8Array(0))).toBe('unknown');
    expect(detectFormat(txt('[{"t": 0}]'))).toBe('unknown');
  });

  it('ignores a line cut off at the end of a full-size head', () => {
    const head = new Uint8Array(64 * 1024).fill(0x20);
    head.set(txt('# c\n'), 0);
    head.set(txt('\n{'), head.length - 2); // only the cut-off last line says "{"
    expect(detectFormat(head)).toBe('unknown');
  });
});

describe('describeUnknown', () => {
  it('names what a known foreign file is and what to do', () => {
    expect(describeUnknown(txt('\x17\x08Dtracing6\0'))).toMatch(/trace-cmd binary file \(trace\.dat\); give the text of `trace-cmd report`/);
    expect(describeUnknown(txt('PERFILE2\0\0'))).toMatch(/perf\.data file; give the text of `perf script`/);
    expect(describeUnknown(new Uint8Array(0))).toMatch(/^empty file/);
    expect(describeUnknown(txt('hello'))).toMatch(/^not a dlm-rv capture, an event file/);
  });
});

describe('readInputFile / loadRecords', () => {
  it('reads a capture', () => {
    const f = readInputFile(fx('sample.dlmrvcap'));
    expect(f.format).toBe('capture');
    if (f.format !== 'capture') return;
    expect(f.records.count).toBe(32);
    expect(f.header.meta.source).toBe('simulate');
    expect(f.warnings).toEqual([]);
  });

  it('reads an event file, same records as the capture made from it', () => {
    const e = loadRecords(fx('all-events.ndjson'));
    const c = loadRecords(fx('sample.dlmrvcap'));
    expect(e.format).toBe('events');
    expect(c.format).toBe('capture');
    expect(c.header?.meta.host).toBe('node1');
    expect(Buffer.from(e.records.bytes()).equals(Buffer.from(c.records.bytes()))).toBe(true);
  });

  it('reports the line of a bad event file', () => {
    const f = path.join(dir, 'bad.ndjson');
    fs.writeFileSync(f, '# x\n{"t": 1, "node": 1, "ls": 1, "ev": "loss", "count": -1}\n');
    expect(() => readInputFile(f)).toThrow(new InputError(f, 2, '"count" must be an unsigned 32-bit integer (0..4294967295), got -1'));
  });

  it('reads trace-text through the text-trace parser', () => {
    const f = readInputFile(fx('trace-tracefs.txt'));
    expect(f.format).toBe('trace-text');
    expect(f.format === 'trace-text' && f.records.count).toBe(12);
    expect(loadRecords(fx('trace-tracefs.txt')).records.count).toBe(12);
  });

  it('unknown files: a reason, and an InputError from loadRecords', () => {
    const f = readInputFile(fx('unknown.txt'));
    expect(f.format).toBe('unknown');
    try { loadRecords(fx('unknown.txt')); expect.unreachable(); } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).exitCode).toBe(2);
      expect((e as InputError).reason).toMatch(/^not a dlm-rv capture, an event file/);
    }
  });

  it('missing file -> InputError', () => {
    expect(() => readInputFile(path.join(dir, 'nope'))).toThrow(/nope: cannot open: ENOENT/);
  });
});
