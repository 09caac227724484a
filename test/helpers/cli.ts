// Run the real entry point (`node collect.js`) as a user would.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv from 'ajv';

export const ROOT = resolve(__dirname, '../..');
export const COLLECT = join(ROOT, 'collect.js');

export function tmp(prefix = 'dlmrv-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult { code: number; stdout: string; stderr: string }

export function cli(args: string[], opts: { cwd?: string; timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [COLLECT, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeout ?? 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'docs/report.schema.json'), 'utf8')));

/** Read a report and check it against docs/report.schema.json; throws with the schema errors. */
export function readReport(path: string): any {
  if (!existsSync(path)) throw new Error(`no report at ${path}`);
  const r = JSON.parse(readFileSync(path, 'utf8'));
  if (!validate(r)) throw new Error('report does not match docs/report.schema.json: ' + ajv.errorsText(validate.errors, { separator: '\n' }));
  return r;
}
