// Text traces from real kernels (test/fixtures/traces: copies of the captures made under qemu
// with Debian's 6.1.0-56 and 6.12.117 kernels; each folder's MANIFEST.txt says what ran and what
// a correct checker concludes). Every dlm line must parse, the counts must be the MANIFEST's, and
// replaying them through the real CLI must not cry wolf.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { parseTraceText } from '../../src/io/trace-text';
import { decodeRecord } from '../../src/record/decode';
import type { RecordBuffer } from '../../src/record/buffer';
import { KIND_NAMES, Kind, MSG_TYPE_NAMES, RF_UNSWAPPED, RF_USER, Src } from '../../src/record/layout';
import { cli, readReport, tmp } from '../helpers/cli';

const T = path.join(__dirname, '../fixtures/traces');
const K61 = '6.1.0-56-amd64', K612 = '6.12.117+deb12-amd64';

interface Trace { id: string; file: string; manifest: string; label: RegExp }
const TRACES: Trace[] = [
  { id: '6.1 a-libdlm', file: `${K61}/a-libdlm/trace.txt`, manifest: `${K61}/a-libdlm/MANIFEST.txt`, label: /^Event counts:/ },
  { id: '6.1 b-gfs2', file: `${K61}/b-gfs2/trace.txt`, manifest: `${K61}/b-gfs2/MANIFEST.txt`, label: /^Event counts:/ },
  { id: '6.12 a-libdlm', file: `${K612}/a-libdlm/trace.txt`, manifest: `${K612}/a-libdlm/MANIFEST.txt`, label: /^Event counts:/ },
  { id: '6.12 c-gfs2 node1', file: `${K612}/c-gfs2-2node/trace-node1.txt`, manifest: `${K612}/c-gfs2-2node/MANIFEST.txt`, label: /^Event counts node1:/ },
  { id: '6.12 c-gfs2 node2', file: `${K612}/c-gfs2-2node/trace-node2.txt`, manifest: `${K612}/c-gfs2-2node/MANIFEST.txt`, label: /^Event counts node2:/ },
];

const text = (f: string): string => fs.readFileSync(path.join(T, f), 'latin1');
const parsed = new Map<string, ReturnType<typeof parseTraceText>>();
function parse(t: Trace): ReturnType<typeof parseTraceText> {
  let p = parsed.get(t.id);
  if (!p) parsed.set(t.id, (p = parseTraceText(text(t.file), t.file)));
  return p;
}
function recs(rb: RecordBuffer) {
  const out = [];
  for (let i = 0; i < rb.count; i++) out.push(decodeRecord(rb.u8, rb.u32, rb.i32, i));
  return out;
}

/** "Event counts: 174 events, 23815 bytes: dlm_ast=52, ..." -> { total, counts } */
function manifestCounts(t: Trace): { total: number; counts: Record<string, number> } {
  const line = text(t.manifest).split('\n').find((l) => t.label.test(l));
  if (!line) throw new Error(`${t.manifest}: no line ${t.label}`);
  const total = Number(/(\d+) events/.exec(line)![1]);
  const counts: Record<string, number> = {};
  for (const m of line.slice(line.indexOf('bytes:')).matchAll(/(\w+)=(\d+)/g)) counts[m[1]] = Number(m[2]);
  return { total, counts };
}

/** Raw dlm event lines of a trace: event name and its fields, straight from the text. */
function rawLines(t: Trace): { ev: string; kv: Record<string, string> }[] {
  const out = [];
  for (const l of text(t.file).split('\n')) {
    const m = /\s(dlm_\w+): (.*)$/.exec(l);
    if (m) out.push({ ev: m[1], kv: Object.fromEntries([...m[2].matchAll(/(\w+)=(\S*)/g)].map((x) => [x[1], x[2]])) });
  }
  return out;
}

describe.each(TRACES)('$id', (t) => {
  it('every dlm line parses; the per-event counts are the MANIFEST\'s', () => {
    const { info } = parse(t);
    const m = manifestCounts(t);
    expect(info.events).toEqual(m.counts);
    expect(Object.values(info.events).reduce((a, b) => a + b, 0)).toBe(m.total);
    expect(info.skipped).toEqual({});
    expect(info.unknownDlmEvents).toEqual([]);
    expect(info.warnings).toEqual([]);
    expect(info.reordered).toBe(0);
    expect(info.losses).toEqual({ markers: 0, events: 0 });
    expect(info.format).toBe('tracefs');
  });

  it('records per kind follow from the events', () => {
    const { records, info } = parse(t);
    const e = (k: string): number => info.events[k] ?? 0;
    const raw = rawLines(t);
    const failed = (ev: string): number => raw.filter((x) => x.ev === ev && x.kv.error !== '0').length;
    const byKind: Record<string, number> = {};
    for (const r of recs(records)) byKind[KIND_NAMES[r.kind]] = (byKind[KIND_NAMES[r.kind]] ?? 0) + 1;
    const want: Record<string, number> = {
      request: e('dlm_lock_start'), request_failed: failed('dlm_lock_end'), release: e('dlm_unlock_start'),
      release_failed: failed('dlm_unlock_end'), completion: e('dlm_ast'), blocking: e('dlm_bast'),
      msg_send: e('dlm_send_message'), msg_recv: e('dlm_recv_message'),
    };
    for (const k of Object.keys(want)) if (want[k] === 0) delete want[k];
    expect(byKind).toEqual(want);
    // none of these traces has a refused lock or unlock: every end is error=0
    expect(info.endsWithoutError).toEqual({ lock: e('dlm_lock_end'), unlock: e('dlm_unlock_end') });
  });

  it('lkb ids are read as the hex the kernel prints (%x), m_lkid/m_remid as decimal (%u)', () => {
    const { records } = parse(t);
    const raw = rawLines(t).filter((x) => x.kv.lkb_id !== undefined);
    const fromText = raw.map((x) => parseInt(x.kv.lkb_id, 16)).sort((a, b) => a - b);
    const fromRecs = recs(records).filter((r) => r.kind <= Kind.BLOCKING).map((r) => r.lkb);
    // lock_end / unlock_end with error=0 give no record: add them back from the text
    const noRec = raw.filter((x) => (x.ev === 'dlm_lock_end' || x.ev === 'dlm_unlock_end') && x.kv.error === '0').map((x) => parseInt(x.kv.lkb_id, 16));
    expect([...fromRecs, ...noRec].sort((a, b) => a - b)).toEqual(fromText);
    // gfs2 uses hundreds of ids: past 9 is where %x and %u differ (libdlm's are 1..4)
    if (t.file.includes('gfs2')) expect(Math.max(...fromText)).toBeGreaterThan(0x80);
    const msgs = rawLines(t).filter((x) => x.ev.endsWith('_message'));
    const msgRecs = recs(records).filter((r) => r.kind === Kind.MSG_SEND || r.kind === Kind.MSG_RECV);
    expect(msgRecs.map((r) => [r.lkb, r.aux])).toEqual(msgs.map((x) => [Number(x.kv.m_lkid), Number(x.kv.m_remid)]));
  });

  it('user-space (libdlm) and kernel (gfs2) locks are told apart', () => {
    const { records, info } = parse(t);
    const lockRecs = recs(records).filter((r) => r.kind <= Kind.BLOCKING);
    const user = t.file.includes('libdlm');
    expect(lockRecs.every((r) => (r.rflags & RF_USER) === (user ? RF_USER : 0))).toBe(true);
    expect(info.locks.undecided).toBe(0);
    expect(user ? info.locks.kernel : info.locks.user).toBe(0);
    expect(info.ownerExitVisible).toBe(false);
    expect(info.syntheticUnlocks).toBe(0);
  });
});

describe('the 6.12 user-space dlm_ast swap, on real traces', () => {
  const lib61 = TRACES[0], lib612 = TRACES[2];

  it('exactly the 22 swapped lines of 6.12 a-libdlm are recognised and undone; none on 6.1', () => {
    const swappedLines = rawLines(lib612).filter((x) => x.ev === 'dlm_ast' && /0x/.test(x.kv.sb_flags)).length;
    expect(swappedLines).toBe(22);
    expect(parse(lib612).info.unswapped).toBe(22);
    expect(recs(parse(lib612).records).filter((r) => r.rflags & RF_UNSWAPPED)).toHaveLength(22);
    expect(parse(lib612).info.kernelGuess).toMatch(/^>= 6\.10/);
    expect(parse(lib61).info.unswapped).toBe(0);
    for (const tr of TRACES.slice(3)) expect(parse(tr).info.unswapped).toBe(0); // 6.12 gfs2: kernel locks are fixed
  });

  it.each([[lib61.id, lib61, `${K61}/a-libdlm/dlmcontend.out`], [lib612.id, lib612, `${K612}/a-libdlm/dlmcontend.out`]])(
    '%s: the completion statuses are the ones the program saw (dlmcontend.out)', (_id, tr, out) => {
      // "  4 B(pid 329)   wait: EAGAIN expected  -> W ok sb_status=11 sb_flags=0 lkid=2" (libdlm reports -status)
      const seen = new Map<number, string[]>();
      for (const l of text(out).split('\n')) {
        const m = /\(pid (\d+)\).*-> W ok sb_status=(\d+) sb_flags=(\d+) lkid=(\d+)/.exec(l);
        if (!m) continue;
        const pid = Number(m[1]);
        seen.set(pid, [...(seen.get(pid) ?? []), `lkb ${m[4]} status ${-Number(m[2])} sbflags ${m[3]}`]);
      }
      const traced = new Map<number, string[]>();
      for (const r of recs(parse(tr).records)) {
        if (r.kind !== Kind.COMPLETION) continue;
        expect(r.src).toBe(Src.AST);
        traced.set(r.pid, [...(traced.get(r.pid) ?? []), `lkb ${r.lkb} status ${r.status} sbflags ${r.sbFlags}`]);
      }
      expect([...seen.values()].flat()).toHaveLength(52);
      expect(traced).toEqual(seen);
      const statuses = [...traced.values()].flat().map((s) => Number(/status (-?\d+)/.exec(s)![1]));
      expect(new Set(statuses)).toEqual(new Set([0, -11, -65537, -65538]));
    });
});

describe('c-gfs2-2node: one file per node', () => {
  it('node ids 1 and 2, from each file\'s own sends', () => {
    expect(parse(TRACES[3]).info).toMatchObject({ nodeId: 1, nodeIdFrom: 'sends' });
    expect(parse(TRACES[4]).info).toMatchObject({ nodeId: 2, nodeIdFrom: 'sends' });
    for (const [tr, node] of [[TRACES[3], 1], [TRACES[4], 2]] as const) {
      const r = recs(parse(tr).records);
      expect(r.every((x) => x.node === node)).toBe(true);
      expect(r.filter((x) => x.kind === Kind.MSG_SEND).every((x) => x.msgSrc === node && x.msgDst === 3 - node)).toBe(true);
      expect(r.filter((x) => x.kind === Kind.MSG_RECV).every((x) => x.msgSrc === 3 - node && x.msgDst === node)).toBe(true);
    }
  });

  it('each node\'s sends match the other node\'s receives, (src, seq, type, lkid) for (src, seq, type, lkid)', () => {
    const key = (x: ReturnType<typeof recs>[number]): string => `${x.msgSrc}>${x.msgDst}#${x.msgSeq} ${MSG_TYPE_NAMES[x.msgType]} ${x.lkb}/${x.aux}`;
    const [n1, n2] = [recs(parse(TRACES[3]).records), recs(parse(TRACES[4]).records)];
    const sends1 = n1.filter((x) => x.kind === Kind.MSG_SEND).map(key).sort();
    const recvs2 = n2.filter((x) => x.kind === Kind.MSG_RECV).map(key).sort();
    const sends2 = n2.filter((x) => x.kind === Kind.MSG_SEND).map(key).sort();
    const recvs1 = n1.filter((x) => x.kind === Kind.MSG_RECV).map(key).sort();
    expect(recvs2).toEqual(sends1);
    expect(recvs1).toEqual(sends2);
  });

  it('a sent REQUEST/LOOKUP names the lock its m_lkid is (hex lkb_id = decimal m_lkid)', () => {
    for (const tr of [TRACES[3], TRACES[4]]) {
      const lastName = new Map<number, string>();
      let checked = 0;
      for (const r of recs(parse(tr).records)) {
        if (r.kind === Kind.REQUEST) lastName.set(r.lkb, Buffer.from(r.name).toString('hex'));
        if (r.kind === Kind.MSG_SEND && (r.msgType === 1 || r.msgType === 11)) {
          expect(Buffer.from(r.name).toString('hex')).toBe(lastName.get(r.lkb));
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(50);
    }
  });
});

describe('replay through the CLI', () => {
  const replay = (files: string[]) => {
    const out = path.join(tmp(), 'r.json');
    const r = cli(['--replay', ...files.map((f) => path.join(T, f)), '--output', out]);
    return { ...r, report: r.code === 0 || r.code === 1 ? readReport(out) : undefined };
  };

  it('6.1 b-gfs2: 0 violations, exit 0', () => {
    const r = replay([TRACES[1].file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.report.violations).toEqual([]);
    expect(r.report.unconfirmed ?? []).toEqual([]);
    expect(r.report.summary.records).toBe(1291 + 1724 + 433);
    expect(r.report.context.trace_text).toEqual([expect.objectContaining({
      format: 'tracefs', node_id: 1, node_id_from: 'default', owner_exit_visible: false, locks: { user: 0, kernel: 438, undecided: 0 },
    })]);
  });

  it.each([[TRACES[3]], [TRACES[4]]])('$id alone: 0 violations', (tr) => {
    const r = replay([tr.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.report.violations).toEqual([]);
    expect(r.report.context.trace_text[0]).toMatchObject({ node_id: tr.file.endsWith('node1.txt') ? 1 : 2, node_id_from: 'sends' });
  });

  // The SIGKILLed owner's locks are released with no dlm event: exactly the two gamma conflicts
  // remain, on B's lkb 1 (until the report classifies them, they may be violations or unconfirmed)
  it.each([[TRACES[0], [282, 283], 281], [TRACES[2], [329, 330], 328]])('$id: only the 2 conflicts of the killed owner', (tr, bPids, aPid) => {
    const r = replay([tr.file]);
    expect([0, 1]).toContain(r.code);
    const found = [...r.report.violations, ...(r.report.unconfirmed ?? [])];
    expect(found.map((v: any) => v.res).sort()).toEqual(['gamma-1', 'gamma-2']);
    for (const v of found) {
      const round = v.res === 'gamma-1' ? 0 : 1;
      expect(v.locks.map((l: any) => [l.lkb, l.pid, l.effective]).sort()).toEqual([[1, bPids[round], 'EX'], [3, aPid, 'EX']]);
    }
    expect(r.report.context.trace_text[0].owner_exit_visible).toBe(false);
    expect(r.stderr).toMatch(/no sched_process_exit lines/);
  });

  it.each([[TRACES[0], [282, 283]], [TRACES[2], [329, 330]]])('$id with the owners\' exits added (sched_process_exit): 0 conflicts', (tr, bPids) => {
    // B is killed after its last event of each round: add its exit 1 us later
    const lines = text(tr.file).split('\n');
    for (const pid of bPids) {
      const last = lines.reduce((at, l, i) => (l.includes(`-${pid} `) ? i : at), -1);
      const ts = Number(/\s(\d+\.\d+):/.exec(lines[last])![1]);
      const next = Number(/\s(\d+\.\d+):/.exec(lines[last + 1])![1]);
      expect(ts + 0.000001).toBeLessThan(next);
      lines.splice(last + 1, 0, `      dlmcontend-${pid}     [000] .....    ${(ts + 0.000001).toFixed(6)}: sched_process_exit: comm=dlmcontend pid=${pid} prio=120`);
    }
    const f = path.join(tmp(), 'with-exits.txt');
    fs.writeFileSync(f, lines.join('\n'), 'latin1');
    const info = parseTraceText(lines.join('\n'), f).info;
    expect(info).toMatchObject({ ownerExitVisible: true, exitsSeen: 2, syntheticUnlocks: 4 }); // gamma EX + delta PR, each round
    const out = path.join(tmp(), 'r.json');
    const r = cli(['--replay', f, '--output', out]);
    expect(r.code, r.stderr).toBe(0);
    const rep = readReport(out);
    expect(rep.violations).toEqual([]);
    expect(rep.unconfirmed ?? []).toEqual([]);
  });
});
