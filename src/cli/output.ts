// Outputs that must not lose anything: the report is written to a temporary file
// in the same directory and renamed into place; the NDJSON stream gets one line
// per incident, written synchronously the moment it is found.
import { closeSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync, accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors';

/** Fail before any work if PATH cannot be written (its directory must exist and be writable). */
export function checkWritable(path: string, what: string): void {
  const dir = dirname(resolve(path));
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`${what} ${path}: directory ${dir} does not exist; create it or choose another path`);
  }
  if (!st.isDirectory()) throw new UsageError(`${what} ${path}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${what} ${path}: directory ${dir} is not writable; choose another path`);
  }
  try {
    if (statSync(path).isDirectory()) throw new UsageError(`${what} ${path} is a directory; give a file name`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
}

export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* nothing to clean */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Appends lines to a file with synchronous writes, buffered up to `buffered` bytes (0: every line at once). */
export class LineWriter {
  private fd: number;
  private buf: string[] = [];
  private size = 0;
  constructor(path: string, private readonly buffered = 0) {
    this.fd = openSync(path, 'w', 0o644);
  }
  line(s: string): void {
    if (this.buffered === 0) { writeSync(this.fd, s + '\n'); return; }
    this.buf.push(s);
    this.size += s.length + 1;
    if (this.size >= this.buffered) this.flush();
  }
  flush(): void {
    if (this.buf.length) writeSync(this.fd, this.buf.join('\n') + '\n');
    this.buf = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
