// Which input format a file is, from its first bytes (docs/formats.md, "Detection"),
// and one helper that reads any supported input into records.
import * as fs from 'fs';
import { InputError } from '../errors';
import type { RecordBuffer } from '../record/buffer';
import { CAPTURE_MAGIC, type CaptureHeader, openInput, readCapture } from './capture';
import { parseEventFile } from './events';
import { parseTraceText, type TraceTextInfo, type TraceTextOptions } from './trace-text';

export type InputFormat = 'capture' | 'events' | 'trace-text' | 'unknown';

/** How many bytes detectFormat wants to see (it works with fewer). */
export const DETECT_HEAD_BYTES = 64 * 1024;

// tracefs `trace`/`trace_pipe` and trace-cmd report: "  task-pid  [cpu] flags  12.345: event: ..."
// ("task-pid (tgid) [cpu]" with the tgid option); perf script: "  task  pid [cpu]  12.345: sys:event: ...".
const TRACE_LINE = /^\s*\S.*?[-\s]\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?\d+\.\d+:\s+[\w:]+:/;
const TRACE_CMD_HEADER = /^(?:cpus=\d+|version = \d+|CPU \d+ is empty)\s*$/;
const TRACER_HEADER = /^#\s*tracer:\s*\S+/;

function startsWith(b: Uint8Array, magic: Uint8Array | readonly number[]): boolean {
  if (b.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (b[i] !== magic[i]) return false;
  return true;
}

/** Classify input from its first bytes (ideally DETECT_HEAD_BYTES of them). */
export function detectFormat(head: Uint8Array): InputFormat {
  if (startsWith(head, CAPTURE_MAGIC)) return 'capture';
  let text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
  if (text.includes('\0')) return 'unknown'; // binary, and not ours
  if (text.charCodeAt(0) === 0xef && text.startsWith('\xef\xbb\xbf')) text = text.slice(3); // UTF-8 BOM
  const lines = text.split('\n');
  // the last line may be cut off by the head limit; use it only if it is the whole text
  const n = lines.length > 1 && head.length >= DETECT_HEAD_BYTES ? lines.length - 1 : lines.length;
  let comments = false;
  for (let i = 0; i < n; i++) {
    const line = lines[i].replace(/\r$/, '');
    const t = line.trim();
    if (t === '') continue;
    if (t.startsWith('#')) {
      if (TRACER_HEADER.test(t)) return 'trace-text';
      comments = true;
      continue; // comment (both event files and ftrace headers have them)
    }
    if (t.startsWith('{')) return 'events';
    if (TRACE_CMD_HEADER.test(t) || TRACE_LINE.test(line)) return 'trace-text';
    return 'unknown';
  }
  // only comments (and no "# tracer:" line): an event file with no events yet
  return comments && n === lines.length ? 'events' : 'unknown';
}

/** A hint for a file detectFormat calls 'unknown': what it seems to be and what to do. */
export function describeUnknown(head: Uint8Array): string {
  if (head.length === 0) return 'empty file; give a capture (dlm-rv --record), an event file (.ndjson) or a text trace';
  if (startsWith(head, [0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67])) {
    return 'a trace-cmd binary file (trace.dat); give the text of `trace-cmd report` instead';
  }
  if (startsWith(head, [0x50, 0x45, 0x52, 0x46, 0x49, 0x4c, 0x45, 0x32])) {
    return 'a perf.data file; give the text of `perf script` instead';
  }
  if (head.length < CAPTURE_MAGIC.length && startsWith(CAPTURE_MAGIC, head)) {
    return 'a capture cut off inside its magic; nothing to read';
  }
  return 'not a dlm-rv capture, an event file (one JSON object per line) or a text trace (ftrace, trace-cmd report, perf script)';
}

/** Read the first bytes of a file (up to max). */
export function readHead(path: string, max = DETECT_HEAD_BYTES): Uint8Array {
  const fd = openInput(path);
  try {
    const b = new Uint8Array(max);
    let have = 0;
    while (have < max) {
      const n = fs.readSync(fd, b, have, max - have, null);
      if (n === 0) break;
      have += n;
    }
    return b.subarray(0, have);
  } finally {
    fs.closeSync(fd);
  }
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Decode an event file's bytes as UTF-8; InputError naming the first bad line if it is not. */
export function decodeEventText(bytes: Uint8Array, fileName: string): string {
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    let line = 1, start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try { utf8Fatal.decode(bytes.subarray(start, i)); } catch {
          throw new InputError(fileName, line, 'not valid UTF-8; save the file as UTF-8 (use "res_hex" for arbitrary name bytes)');
        }
        line++;
        start = i + 1;
      }
    }
    throw new InputError(fileName, undefined, 'not valid UTF-8; save the file as UTF-8');
  }
}

export type InputFile =
  | { format: 'capture'; path: string; header: CaptureHeader; records: RecordBuffer; warnings: string[] }
  | { format: 'events'; path: string; records: RecordBuffer; warnings: string[] }
  | { format: 'trace-text'; path: string; records: RecordBuffer; info: TraceTextInfo; warnings: string[] }
  | { format: 'unknown'; path: string; reason: string };

/** Read a whole input file, or InputError naming why not. */
function readWhole(path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    throw new InputError(path, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * Detect and read an input file. Captures, event files and text traces are read into
 * records (bad content -> InputError); unknown files are returned unread.
 * `trace` options apply to text traces (src/io/trace-text.ts).
 */
export function readInputFile(path: string, trace: TraceTextOptions = {}): InputFile {
  const head = readHead(path);
  const format = detectFormat(head);
  switch (format) {
    case 'capture': {
      const c = readCapture(path);
      return { format, path, header: c.header, records: c.records, warnings: c.warnings };
    }
    case 'events':
      return { format, path, records: parseEventFile(decodeEventText(readWhole(path), path), path), warnings: [] };
    case 'trace-text': {
      // latin1: every byte is kept (task names may be any bytes); the fields read are ASCII
      const { records, info } = parseTraceText(readWhole(path).toString('latin1'), path, trace);
      return { format, path, records, info, warnings: info.warnings };
    }
    default:
      return { format: 'unknown', path, reason: describeUnknown(head) };
  }
}

/**
 * Read any input into records, or throw InputError (bad content, unknown format).
 */
export function loadRecords(path: string, trace: TraceTextOptions = {}): {
  format: 'capture' | 'events' | 'trace-text'; records: RecordBuffer; warnings: string[]; header?: CaptureHeader; traceInfo?: TraceTextInfo;
} {
  const f = readInputFile(path, trace);
  switch (f.format) {
    case 'capture': return { format: f.format, records: f.records, warnings: f.warnings, header: f.header };
    case 'events': return { format: f.format, records: f.records, warnings: f.warnings };
    case 'trace-text': return { format: f.format, records: f.records, warnings: f.warnings, traceInfo: f.info };
    default:
      throw new InputError(path, undefined, f.reason);
  }
}
