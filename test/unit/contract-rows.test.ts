// Contract tests, monitor.md section 6: one event file per row of the blind-spot table
// (test/fixtures/events/row-*.ndjson), each carrying its expected verdict in `# expect...`
// comment lines (grammar: test/fixtures/events/README.md). Every file is parsed with the
// real event-file parser, run through the monitor, and compared with its expectations; a few
// also go through the real CLI (`node collect.js --replay`).
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { parseEventFile } from '../../src/io/events';
import { Monitor } from '../../src/monitor/monitor';
import { MI_NAMES, compatible } from '../../src/monitor/modes';
import type { Violation } from '../../src/monitor/report';

const ROOT = resolve(__dirname, '../..');
const DIR = join(ROOT, 'test/fixtures/events');
const MODES = ['IV', 'NL', 'CR', 'CW', 'PR', 'PW', 'EX'];
const modeNum = (s: string): number => MODES.indexOf(s) - 1;

// ---------------------------------------------------------------- the expectation grammar
interface ViolationExpect {
  seq: number;
  res?: string;
  res_hex?: string;
  ls?: number;
  trigger: string; // "node:lkb"
  old?: string;
  new?: string;
  locks: string[]; // "node:lkb", sorted
  losses_so_far?: number;
}

interface FinalLock { key: string; eff: string; gr: string; withLs: boolean }

interface FileExpect {
  row: number;
  counts: Record<string, number>;
  violations: ViolationExpect[];
  final?: FinalLock[];
}

const COUNT_KEYS = ['violations', 'losses', 'resets', 'locks', 'resources', 'open', 'unknown', 'reuses', 'history_only'];
const VIOLATION_KEYS = ['seq', 'res', 'res_hex', 'ls', 'trigger', 'old', 'new', 'locks', 'losses_so_far'];
const LOCK_RE = /^\d+:\d+$/;

/** `key=value` tokens; a value is a JSON string or a run of non-space characters. The whole text must be tokens. */
function tokens(text: string, where: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /\s*([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)\s*/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(text)) !== null) {
    if (out.has(m[1])) throw new Error(`${where}: "${m[1]}" given twice`);
    out.set(m[1], m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2]);
    end = re.lastIndex;
  }
  if (text.slice(end).trim() !== '') throw new Error(`${where}: cannot read "${text.slice(end).trim()}" (want key=value tokens)`);
  return out;
}

function int(v: string, where: string): number {
  if (!/^-?\d+$/.test(v)) throw new Error(`${where}: "${v}" is not an integer`);
  return Number(v);
}

function mode(v: string, where: string): string {
  if (!MODES.includes(v)) throw new Error(`${where}: "${v}" is not a mode (${MODES.join(' ')})`);
  return v;
}

function lockId(v: string, where: string): string {
  if (!LOCK_RE.test(v)) throw new Error(`${where}: "${v}" is not NODE:LKB`);
  return v;
}

function parseExpectations(text: string, file: string): FileExpect {
  let row: number | undefined;
  let counts: Record<string, number> | undefined;
  const violations: ViolationExpect[] = [];
  let final: FinalLock[] | undefined;
  text.split('\n').forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const m = /^#\s*(row|expect|expect-violation|expect-final):\s*(.*)$/.exec(line);
    if (!m) {
      if (/^#\s*expect/.test(line)) throw new Error(`${where}: unknown expectation line "${line}"`);
      return;
    }
    const [, kind, rest] = m;
    if (kind === 'row') {
      if (row !== undefined) throw new Error(`${where}: second "row:" line`);
      row = int(rest.trim(), where);
      if (row < 1 || row > 13) throw new Error(`${where}: row ${row} is not in monitor.md section 6 (1..13)`);
    } else if (kind === 'expect') {
      if (counts) throw new Error(`${where}: second "expect:" line`);
      counts = {};
      for (const [k, v] of tokens(rest, where)) {
        if (!COUNT_KEYS.includes(k)) throw new Error(`${where}: unknown key "${k}" (known: ${COUNT_KEYS.join(' ')})`);
        counts[k] = int(v, where);
      }
      if (counts.violations === undefined) throw new Error(`${where}: "expect:" needs violations=N`);
    } else if (kind === 'expect-violation') {
      const t = tokens(rest, where);
      for (const k of t.keys()) if (!VIOLATION_KEYS.includes(k)) throw new Error(`${where}: unknown key "${k}" (known: ${VIOLATION_KEYS.join(' ')})`);
      for (const k of ['seq', 'trigger', 'locks']) if (!t.has(k)) throw new Error(`${where}: expect-violation needs ${k}=`);
      if (!t.has('res') && !t.has('res_hex')) throw new Error(`${where}: expect-violation needs res= or res_hex=`);
      violations.push({
        seq: int(t.get('seq')!, where),
        res: t.get('res'),
        res_hex: t.get('res_hex')?.toLowerCase(),
        ls: t.has('ls') ? int(t.get('ls')!, where) : undefined,
        trigger: lockId(t.get('trigger')!, where),
        old: t.has('old') ? mode(t.get('old')!, where) : undefined,
        new: t.has('new') ? mode(t.get('new')!, where) : undefined,
        locks: t.get('locks')!.split(',').map((x) => lockId(x, where)).sort(),
        losses_so_far: t.has('losses_so_far') ? int(t.get('losses_so_far')!, where) : undefined,
      });
    } else {
      if (final) throw new Error(`${where}: second "expect-final:" line`);
      final = [];
      if (rest.trim() === 'none') return;
      for (const tok of rest.trim().split(/\s+/)) {
        const f = /^(\d+:\d+)(@\d+)?=([A-Z]+)\/([A-Z]+)$/.exec(tok);
        if (!f) throw new Error(`${where}: "${tok}" is not NODE:LKB[@LS]=EFF/GR`);
        final.push({ key: f[1] + (f[2] ?? ''), eff: mode(f[3], where), gr: mode(f[4], where), withLs: f[2] !== undefined });
      }
    }
  });
  if (row === undefined) throw new Error(`${file}: no "# row: N" line`);
  if (!counts) throw new Error(`${file}: no "# expect: violations=N ..." line`);
  if (violations.length !== counts.violations) {
    throw new Error(`${file}: expect: violations=${counts.violations} but ${violations.length} expect-violation lines`);
  }
  return { row, counts, violations, final };
}

// ---------------------------------------------------------------- running and comparing
const lockKey = (l: { node: number; lkb: number }): string => `${l.node}:${l.lkb}`;

function pairLocks(v: Violation): string[] {
  const s = new Set<string>();
  for (const p of v.pairs) { s.add(lockKey(p.a)); s.add(lockKey(p.b)); }
  return [...s].sort();
}

function runFile(file: string): { m: Monitor; exp: FileExpect; text: string } {
  const text = readFileSync(join(DIR, file), 'utf8');
  const exp = parseExpectations(text, file);
  const rb = parseEventFile(text, file);
  const m = new Monitor();
  m.consume(rb.bytes());
  return { m, exp, text };
}

function checkViolation(v: Violation, e: ViolationExpect, file: string, i: number): void {
  const at = `${file}: violation #${i + 1}`;
  expect(v.seq, `${at}: seq`).toBe(e.seq);
  if (e.res !== undefined) expect(v.res, `${at}: res`).toBe(e.res);
  if (e.res_hex !== undefined) expect(v.res_hex, `${at}: res_hex`).toBe(e.res_hex);
  if (e.ls !== undefined) expect(v.ls, `${at}: ls`).toBe(e.ls);
  expect(lockKey(v.trigger), `${at}: trigger lock`).toBe(e.trigger);
  if (e.old !== undefined) expect(v.trigger.old_effective, `${at}: trigger old effective`).toBe(e.old);
  if (e.new !== undefined) expect(v.trigger.new_effective, `${at}: trigger new effective`).toBe(e.new);
  expect(pairLocks(v), `${at}: locks in pairs`).toEqual(e.locks);
  if (e.losses_so_far !== undefined) expect(v.losses_so_far, `${at}: losses_so_far`).toBe(e.losses_so_far);
  // the report must be self-consistent: every pair incompatible, made of listed locks with
  // the same effective modes, and the trigger is in the first pair
  expect(v.pairs.length, `${at}: pairs`).toBeGreaterThan(0);
  expect(lockKey(v.pairs[0].a), `${at}: first pair starts with the trigger`).toBe(e.trigger);
  for (const p of v.pairs) {
    expect(compatible(modeNum(p.a.effective), modeNum(p.b.effective)), `${at}: pair ${JSON.stringify(p)} is incompatible`).toBe(false);
    for (const side of [p.a, p.b]) {
      const l = v.locks.find((x) => x.node === side.node && x.lkb === side.lkb);
      expect(l, `${at}: pair lock ${lockKey(side)} listed in locks[]`).toBeDefined();
      expect(l!.effective, `${at}: ${lockKey(side)} effective`).toBe(side.effective);
    }
  }
}

const FILES = readdirSync(DIR).filter((f) => /^row-.*\.ndjson$/.test(f)).sort();

describe('contract fixtures (monitor.md section 6)', () => {
  it('there is at least one fixture per row of the table, and a must-catch side for the rows that have one', () => {
    const rows = new Map<number, string[]>();
    for (const f of FILES) {
      const { row } = parseExpectations(readFileSync(join(DIR, f), 'utf8'), f);
      rows.set(row, [...(rows.get(row) ?? []), f]);
    }
    for (let r = 1; r <= 13; r++) expect(rows.get(r)?.length ?? 0, `row ${r} has a fixture`).toBeGreaterThan(0);
    // rows where dlm-rv must report something, or where a no-alarm case has a must-catch twin
    for (const r of [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13]) {
      const withViolation = rows.get(r)!.filter((f) => parseExpectations(readFileSync(join(DIR, f), 'utf8'), f).counts.violations > 0);
      expect(withViolation.length, `row ${r} has a must-catch fixture`).toBeGreaterThan(0);
    }
  });

  for (const file of FILES) {
    it(file, () => {
      const { m, exp } = runFile(file);
      const s = m.summary();
      expect(m.violations.length, `${file}: violations`).toBe(exp.counts.violations);
      expect(s.violations, `${file}: summary.violations`).toBe(exp.counts.violations);
      exp.violations.forEach((e, i) => checkViolation(m.violations[i], e, file, i));
      const c = exp.counts;
      if (c.losses !== undefined) expect(s.losses.events_dropped, `${file}: losses`).toBe(c.losses);
      if (c.resets !== undefined) expect(s.losses.resets, `${file}: resets`).toBe(c.resets);
      if (c.locks !== undefined) expect(s.locks.now, `${file}: locks now`).toBe(c.locks);
      if (c.resources !== undefined) expect(s.resources.now, `${file}: resources now`).toBe(c.resources);
      if (c.open !== undefined) expect(s.open_incidents, `${file}: open incidents`).toBe(c.open);
      if (c.unknown !== undefined) expect(s.events_on_unknown_locks, `${file}: events on unknown locks`).toBe(c.unknown);
      if (c.reuses !== undefined) expect(s.lkb_id_reuses, `${file}: lkb id reuses`).toBe(c.reuses);
      if (c.history_only !== undefined) expect(s.history_only_events, `${file}: history-only events`).toBe(c.history_only);
      if (exp.final) {
        const withLs = exp.final.some((f) => f.withLs);
        const actual = m.dumpLocks().map((l) => `${l.node}:${l.lkb}${withLs ? '@' + l.ls : ''}=${MI_NAMES[l.eff]}/${MI_NAMES[l.gr]}`).sort();
        const wanted = exp.final.map((f) => `${f.key}=${f.eff}/${f.gr}`).sort();
        expect(actual, `${file}: locks tracked at the end (effective/granted)`).toEqual(wanted);
      }
    });
  }

  it('the same verdicts when the stream arrives one record at a time', () => {
    for (const file of FILES) {
      const { m: whole, text } = runFile(file);
      const rb = parseEventFile(text, file);
      const bytes = rb.bytes();
      const m = new Monitor();
      for (let off = 0; off < bytes.byteLength; off += 128) m.consume(bytes.slice(off, off + 128));
      expect(m.violations.map((v) => [v.seq, v.res, lockKey(v.trigger), pairLocks(v)]), file)
        .toEqual(whole.violations.map((v) => [v.seq, v.res, lockKey(v.trigger), pairLocks(v)]));
    }
  });
});

describe('expectation grammar', () => {
  it('reads quoted values and rejects unknown keys, stray text and miscounts', () => {
    const ok = parseExpectations([
      '# row: 3',
      '# expect: violations=1 open=1',
      '# expect-violation: seq=4 res="  a b" trigger=2:1 locks=2:1,1:1 old=IV new=EX',
      '# expect-final: 1:1@7=PR/PR',
    ].join('\n'), 'x');
    expect(ok.violations[0]).toMatchObject({ seq: 4, res: '  a b', trigger: '2:1', locks: ['1:1', '2:1'] });
    expect(ok.final).toEqual([{ key: '1:1@7', eff: 'PR', gr: 'PR', withLs: true }]);
    expect(() => parseExpectations('# row: 1\n# expect: violations=0 bogus=1', 'x')).toThrow(/unknown key "bogus"/);
    expect(() => parseExpectations('# row: 1\n# expect: violations=0 junk', 'x')).toThrow(/cannot read/);
    expect(() => parseExpectations('# row: 1\n# expect: violations=1', 'x')).toThrow(/1 but 0/);
    expect(() => parseExpectations('# expect: violations=0', 'x')).toThrow(/row/);
    expect(() => parseExpectations('# row: 1\n# expect: violations=0\n# expect-finale: none', 'x')).toThrow(/unknown expectation/);
  });
});

// ---------------------------------------------------------------- through the real CLI
describe('contract fixtures through the CLI (node collect.js --replay)', () => {
  let tmp = '';
  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
      const b = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
      if (b.status !== 0) throw new Error(`build failed: ${b.stdout}${b.stderr}`);
    }
    tmp = mkdtempSync(join(tmpdir(), 'dlm-rv-contract-'));
    return () => rmSync(tmp, { recursive: true, force: true });
  });

  const CLI_FILES = [
    'row-01-unlock-grant-race.ndjson',
    'row-09-overlap-unlock.ndjson',
    'row-03-up-conversion-pending.ndjson',
    'row-11-node-leave-refused-rise.ndjson',
  ];
  for (const file of CLI_FILES) {
    it(file, () => {
      const exp = parseExpectations(readFileSync(join(DIR, file), 'utf8'), file);
      const out = join(tmp, file.replace(/\.ndjson$/, '.json'));
      const r = spawnSync(process.execPath, ['collect.js', '--replay', join(DIR, file), '--output', out, '--quiet'], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, `exit code; stderr: ${r.stderr}`).toBe(exp.counts.violations > 0 ? 1 : 0);
      const report = JSON.parse(readFileSync(out, 'utf8')) as { schema: string; violations: Violation[]; summary: { violations: number } };
      expect(report.schema).toBe('dlm-rv/report@1');
      expect(report.summary.violations).toBe(exp.counts.violations);
      expect(report.violations.map((v) => [v.seq, v.res, lockKey(v.trigger), pairLocks(v)]))
        .toEqual(exp.violations.map((e) => [e.seq, e.res, e.trigger, e.locks]));
    });
  }
});
