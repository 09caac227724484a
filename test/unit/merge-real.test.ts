// The real two-node gfs2 traces (test/fixtures/traces/6.12.117+deb12-amd64/c-gfs2-2node: two qemu
// guests, gfs2 on a shared disk, both writing the same files): each node's trace alone, merged.
// The receiving node's clock reads earlier than the sender's for the same message, so clocks
// cannot order them: a timestamp merge reports 137 conflicts that never happened. The causal
// merge must report none, with 6.12's destination field and without it (6.1), and must still
// catch a grant made incompatible on purpose.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { parseTraceText } from '../../src/io/trace-text';
import { Merger, runMerge, annotateViolations, type MergeInput } from '../../src/merge';
import { mergeByTime } from '../../src/cli/replay';
import { Monitor } from '../../src/monitor/monitor';
import { RecordBuffer } from '../../src/record/buffer';
import { CaptureWriter } from '../../src/io/capture';
import { Kind, LKF, RECORD_WORDS, W, EX, PR } from '../../src/record/layout';
import type { Violation } from '../../src/monitor/report';
import { cli, readReport, tmp } from '../helpers/cli';

const DIR = path.join(__dirname, '../fixtures/traces/6.12.117+deb12-amd64/c-gfs2-2node');
const FILES = [path.join(DIR, 'trace-node1.txt'), path.join(DIR, 'trace-node2.txt')];

function traces(): { node: number; records: RecordBuffer }[] {
  return FILES.map((f) => {
    const p = parseTraceText(fs.readFileSync(f, 'latin1'), f);
    return { node: p.info.nodeId, records: p.records };
  });
}

function clone(rb: RecordBuffer): RecordBuffer {
  const c = new RecordBuffer(rb.count);
  c.appendRaw(rb.bytes());
  return c;
}

function mergeAll(ts: { node: number; records: RecordBuffer }[], onRecord?: (mon: Monitor, b: Uint8Array) => void): { mon: Monitor; m: Merger } {
  const m = new Merger();
  const mon = new Monitor();
  const inputs: MergeInput[] = ts.map((t) => ({ name: `node${t.node}`, nodes: [t.node], records: t.records }));
  runMerge(m, inputs, (b) => {
    if (onRecord) for (let off = 0; off < b.byteLength; off += 128) onRecord(mon, b.subarray(off, off + 128));
    else mon.consume(b);
  });
  annotateViolations(m, mon.violations);
  return { mon, m };
}

describe('the real two-node gfs2 traces (6.12), each node\'s trace alone, merged', () => {
  it('by timestamps: 137 false conflicts (the receiver\'s clock reads earlier than the sender\'s)', () => {
    const mon = new Monitor();
    mon.consume(mergeByTime(traces().map((t) => t.records)).bytes());
    expect(mon.violations.length).toBe(137);
  });

  it('causally: no violation; every message matched, none waits for clocks', () => {
    const { mon, m } = mergeAll(traces());
    expect(mon.violations).toEqual([]);
    expect(mon.unconfirmed).toEqual([]);
    const st = m.stats();
    expect(st.map((s) => s.nodes)).toEqual([[1], [2]]);
    expect(st.map((s) => [s.sends, s.receives, s.matched, s.orphans])).toEqual([[767, 765, 765, 0], [765, 767, 767, 0]]);
    expect(m.pendingSends).toBe(0);
    // node 2's trace clock reads about 71 ms more than node 1's for the same instant, known to well under a millisecond
    expect(st[1].clockOffsetNs).toBeGreaterThan(70e6);
    expect(st[1].clockOffsetNs).toBeLessThan(72e6);
    expect(st[1].offsetUncertaintyNs).toBeLessThan(1e6);
    // both nodes leave the lockspace at the end of their traces (gfs2 unmounts)
    expect(st.map((s) => s.syntheticLeaves)).toEqual([1, 1]);
  });

  it('with 6.1 semantics (no destination in the message events): no violation, every message matched', () => {
    const ts = traces();
    for (const t of ts) {
      for (let i = 0; i < t.records.count; i++) {
        const b = i * RECORD_WORDS, k = t.records.u32[b + W.kindLenMode] & 0xffff;
        if (k === Kind.MSG_SEND || k === Kind.MSG_RECV) t.records.u32[b + W.msgDst] = 0;
      }
    }
    const { mon, m } = mergeAll(ts);
    expect(mon.violations).toEqual([]);
    expect(m.stats().map((s) => [s.matched, s.orphans])).toEqual([[765, 0], [767, 0]]);
    expect(m.ambiguousMatches).toBe(0);
  });

  it('one of node 2\'s shared (PR) grants made EX while node 1 holds PR: caught, on that glock, resting on messages', () => {
    const ts = traces();
    // find a PR request of node 2 while node 1 holds PR on the same resource, in the merged order
    let target: { ts: number; lkb: number; res: string; holder: number } | undefined;
    mergeAll(ts, (mon, rec) => {
      const u32 = new Uint32Array(rec.buffer, rec.byteOffset, 32);
      const mode = u32[W.kindLenMode] >> 24;
      if (!target && (u32[W.kindLenMode] & 0xffff) === Kind.REQUEST && u32[W.node] === 2 && mode === PR && !(u32[W.flags] & LKF.CONVERT)) {
        const len = (u32[W.kindLenMode] >>> 16) & 0xff;
        const hex = Buffer.from(rec.subarray(64, 64 + len)).toString('hex');
        const holder = mon.dumpLocks().find((l) => l.node === 1 && l.res === `${u32[W.ls]}:${hex}` && l.eff === PR + 1 && l.pend === 0);
        if (holder) target = { ts: u32[W.tsHi] * 4294967296 + u32[W.tsLo], lkb: u32[W.lkb], res: hex, holder: holder.lkb };
      }
      mon.consume(rec.slice());
    });
    expect(target).toBeDefined();
    const n2 = clone(ts[1].records);
    let mutated = 0;
    for (let i = 0; i < n2.count; i++) {
      const b = i * RECORD_WORDS;
      if ((n2.u32[b + W.kindLenMode] & 0xffff) !== Kind.REQUEST || n2.u32[b + W.lkb] !== target!.lkb) continue;
      if (n2.u32[b + W.tsHi] * 4294967296 + n2.u32[b + W.tsLo] !== target!.ts) continue;
      n2.u32[b + W.kindLenMode] = (n2.u32[b + W.kindLenMode] & 0x00ffffff) | ((EX & 0xff) << 24);
      mutated++;
    }
    expect(mutated).toBe(1);
    const { mon } = mergeAll([ts[0], { node: 2, records: n2 }]);
    expect(mon.violations.length).toBe(1);
    const v = mon.violations[0] as Violation & { ordering?: string };
    expect(v.res_hex).toBe(target!.res);
    expect(v.gfs2).not.toBeNull();
    const inPairs = (n: number, l: number) => v.pairs.some((p) => (p.a.node === n && p.a.lkb === l) || (p.b.node === n && p.b.lkb === l));
    expect(inPairs(2, target!.lkb)).toBe(true);
    expect(inPairs(1, target!.holder)).toBe(true);
    expect(v.ordering).toBe('causal');
  });
});

describe('through the command line', () => {
  it('--replay trace-node1.txt trace-node2.txt: exit 0, the report says how they were merged', () => {
    const d = tmp();
    const out = path.join(d, 'r.json');
    const r = cli(['--replay', ...FILES, '--output', out]);
    expect(r.stderr).toMatch(/merged 2 streams causally/);
    expect(r.stderr).toMatch(/1532 messages matched, 0 receives without their send/);
    expect(r.code).toBe(0);
    const rep = readReport(out);
    expect(rep.summary.violations).toBe(0);
    expect(rep.context.merge.ordering).toBe('causal');
    expect(rep.context.merge.streams.map((s: { nodes: number[] }) => s.nodes)).toEqual([[1], [2]]);
    expect(rep.context.trace_text.length).toBe(2);
  });

  it('--replay node1.cap node2.cap (captures recorded on each node) merge the same way, read a piece at a time', () => {
    const d = tmp();
    const caps = traces().map((t) => {
      const f = path.join(d, `node${t.node}.cap`);
      const w = new CaptureWriter(f, {
        host: `node${t.node}`, kernel_release: '6.12.117+deb12-amd64', probes: [], node_id: t.node, flavor: 'mainline-6.10', source: 'live',
        collector_version: 'test', start_time: new Date(0).toISOString(), clock: 'boot',
      });
      w.write(t.records.bytes());
      w.close();
      return f;
    });
    const out = path.join(d, 'r.json');
    const r = cli(['--replay', ...caps, '--output', out]);
    expect(r.code).toBe(0);
    const rep = readReport(out);
    expect(rep.summary.violations).toBe(0);
    expect(rep.context.merge.matched_messages).toBe(1532);
    expect(rep.context.kernel).toBe('6.12.117+deb12-amd64');
  });

  it('events files of two nodes with no message events: merged by timestamps, and the verdict says it rests on them', () => {
    const d = tmp();
    const f1 = path.join(d, 'n1.ndjson'), f2 = path.join(d, 'n2.ndjson');
    fs.writeFileSync(f1, [
      '{"t": 1000, "node": 1, "ls": 7, "lkb": 1, "res": "r", "ev": "request", "mode": "EX", "flags": 0}',
      '{"t": 1100, "node": 1, "ls": 7, "lkb": 1, "res": "r", "ev": "completion", "status": "granted", "mode": "EX"}',
      '{"t": 9000, "node": 1, "ls": 7, "lkb": 1, "res": "r", "ev": "release", "flags": 0}',
    ].join('\n') + '\n');
    fs.writeFileSync(f2, [
      '{"t": 2000, "node": 2, "ls": 7, "lkb": 1, "res": "r", "ev": "request", "mode": "EX", "flags": 0}',
      '{"t": 2100, "node": 2, "ls": 7, "lkb": 1, "res": "r", "ev": "completion", "status": "granted", "mode": "EX"}',
      '{"t": 9000, "node": 2, "ls": 7, "lkb": 1, "res": "r", "ev": "release", "flags": 0}',
    ].join('\n') + '\n');
    const out = path.join(d, 'r.json');
    const r = cli(['--replay', f1, f2, '--output', out, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/2 streams have no message events/);
    const rep = readReport(out);
    expect(rep.violations.length).toBe(1);
    expect(rep.violations[0].ordering).toBe('clock-fallback');
    expect(rep.context.merge.ordering).toBe('clock-fallback');
  });
});
