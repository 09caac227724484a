// Text traces (src/io/trace-text.ts) on hand-made input: the three text formats, the mapping of
// every dlm event to records, the 6.12 swap, user-space vs kernel locks, owner exits, ordering,
// losses, and one test per error path.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors';
import { detectFormat, loadRecords, readInputFile } from '../../src/io/detect';
import { parseTraceText, statusFromLowByte } from '../../src/io/trace-text';
import { decodeRecord } from '../../src/record/decode';
import type { RecordBuffer } from '../../src/record/buffer';
import {
  KIND_NAMES, Kind, LKF, MODE_NONE, RF_SYNTH, RF_UNSWAPPED, RF_USER, SBF, STATUS, Src,
} from '../../src/record/layout';
import { cli, readReport, tmp } from '../helpers/cli';

const SYN = path.join(__dirname, '../fixtures/traces/synthetic');
const syn = (name: string): string => path.join(SYN, name);
const read = (p: string): string => fs.readFileSync(p, 'latin1');

function recs(rb: RecordBuffer) {
  const out = [];
  for (let i = 0; i < rb.count; i++) out.push(decodeRecord(rb.u8, rb.u32, rb.i32, i));
  return out;
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** A tracefs text from "comm-pid cpu secs event fields" rows. */
function tracefs(rows: string[], header = true): string {
  const body = rows.map((r) => {
    const [task, cpu, ts, ev, ...f] = r.split(' ');
    return `${task.padStart(22)} [${cpu.padStart(3, '0')}] ..... ${ts.padStart(12)}: ${ev}: ${f.join(' ')}`;
  });
  return (header ? '# tracer: nop\n#\n' : '') + body.join('\n') + '\n';
}

function expectLineError(text: string, line: number | undefined, re: RegExp, opts = {}): void {
  try {
    parseTraceText(text, 'x.txt', opts);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    const ie = e as InputError;
    expect(ie.file).toBe('x.txt');
    expect(ie.line).toBe(line);
    expect(ie.reason).toMatch(re);
    return;
  }
  expect.unreachable('no InputError');
}

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlmrv-tt-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('the three text formats', () => {
  const files = ['small.tracefs.txt', 'small.trace-cmd.txt', 'small.perf-script.txt'];

  it('are detected as text traces and named by the parser', () => {
    const formats = files.map((f) => {
      expect(detectFormat(fs.readFileSync(syn(f)))).toBe('trace-text');
      return parseTraceText(read(syn(f)), f).info.format;
    });
    expect(formats).toEqual(['tracefs', 'trace-cmd', 'perf-script']);
  });

  it('give byte-identical records', () => {
    const [a, b, c] = files.map((f) => parseTraceText(read(syn(f)), f).records);
    expect(a.count).toBe(22);
    expect(Buffer.from(b.bytes()).equals(Buffer.from(a.bytes()))).toBe(true);
    expect(Buffer.from(c.bytes()).equals(Buffer.from(a.bytes()))).toBe(true);
  });

  it('count the same events; other events are skipped by name', () => {
    const [a, b, c] = files.map((f) => parseTraceText(read(syn(f)), f).info);
    expect(b.events).toEqual(a.events);
    expect(c.events).toEqual(a.events);
    expect(a.events).toEqual({
      dlm_lock_start: 6, dlm_lock_end: 6, dlm_ast: 7, dlm_bast: 1, dlm_unlock_start: 3, dlm_unlock_end: 3,
      dlm_send_message: 1, dlm_recv: 1, dlm_recv_message: 2,
    });
    expect(a.skipped).toEqual({ sched_switch: 1 });
    expect(c.skipped).toEqual({ 'sched:sched_switch': 1 }); // perf names the system
    expect(a.endsWithoutError).toEqual({ lock: 5, unlock: 2 });
  });
});

describe('mapping to normalized records (monitor.md section 3)', () => {
  const { records, info } = parseTraceText(read(syn('small.tracefs.txt')), 'small');
  const r = recs(records);
  const A = ascii('alpha'), B = ascii('beta'), G = '202020202020203220202020202020202020202031323331';

  it('node id from the sends; every record carries it', () => {
    expect(info.nodeId).toBe(3);
    expect(info.nodeIdFrom).toBe('sends');
    expect(r.every((x) => x.node === 3)).toBe(true);
  });

  it('dlm_lock_start -> REQUEST(mode, flags): hex lkb_id, unknown flag bits kept, ns timestamps', () => {
    expect(r[0]).toMatchObject({
      kind: Kind.REQUEST, ts: 100_000_100_000, ls: 7, lkb: 0x1a, mode: 5, flags: LKF.NOQUEUE | 0x40000000,
      pid: 500, src: Src.LOCK_START, rflags: RF_USER, grmode: -1,
    });
    expect(hex(r[0].name)).toBe(A);
  });

  it('dlm_lock_end error=0 gives nothing; error != 0 -> REQUEST_FAILED(error)', () => {
    const rf = r.filter((x) => x.kind === Kind.REQUEST_FAILED);
    expect(rf).toHaveLength(1);
    expect(rf[0]).toMatchObject({ lkb: 0x1c, error: -22, src: Src.LOCK_END, pid: 502 });
    expect(hex(rf[0].name)).toBe(B);
  });

  it('dlm_ast -> COMPLETION(status, MODE_NONE, sb_flags); the 6.12 swap undone and marked', () => {
    const c = r.filter((x) => x.kind === Kind.COMPLETION);
    expect(c.map((x) => [x.lkb, x.status, x.sbFlags, x.mode, x.rflags & RF_UNSWAPPED ? 'U' : '-'])).toEqual([
      [0x1a, 0, 0, MODE_NONE, '-'],
      [0x1a, 0, 0, MODE_NONE, '-'],
      [0x1b, 0, 0, MODE_NONE, '-'],
      [0x1b, STATUS.EAGAIN, 0, MODE_NONE, 'U'], // sb_flags=DEMOTED|ALTMODE|0xf0 sb_status=0
      [0x1b, STATUS.EUNLOCK, 0, MODE_NONE, 'U'], // sb_flags=VALNOTVALID|ALTMODE|0xf8
      [1, 0, SBF.ALTMODE, MODE_NONE, '-'], // a real ALTMODE grant is not a swap
      [0x1a, STATUS.EUNLOCK, 0, MODE_NONE, '-'],
    ]);
    expect(c.every((x) => x.src === Src.AST)).toBe(true);
    expect(info.unswapped).toBe(2);
  });

  it('dlm_bast -> BLOCKING(mode); dlm_unlock_start -> RELEASE(flags); dlm_unlock_end error -> RELEASE_FAILED', () => {
    expect(r.filter((x) => x.kind === Kind.BLOCKING).map((x) => [x.lkb, x.mode, x.src, x.pid])).toEqual([[0x1a, 3, Src.BAST, 500]]);
    expect(r.filter((x) => x.kind === Kind.RELEASE).map((x) => [x.lkb, x.flags])).toEqual([[0x1b, 0], [0xff, LKF.CANCEL], [0x1a, LKF.VALBLK]]);
    const rl = r.filter((x) => x.kind === Kind.RELEASE_FAILED);
    expect(rl.map((x) => [x.lkb, x.error, x.src])).toEqual([[0xff, -22, Src.UNLOCK_END]]);
  });

  it('dlm_send_message / dlm_recv_message -> MSG_SEND / MSG_RECV with every message field', () => {
    const s = r.find((x) => x.kind === Kind.MSG_SEND)!;
    expect(s).toMatchObject({
      ls: 9, msgSrc: 3, msgDst: 4, msgSeq: 10, msgType: 1, lkb: 1, aux: 0, status: 0, mode: 3, grmode: -1,
      flags: LKF.VALBLK | LKF.ALTCW, sbFlags: 0, error: 0, pid: 600, src: Src.SEND_MESSAGE, rflags: 0,
    });
    expect(hex(s.name)).toBe(G); // res_name=0x...
    const [reply, lookup] = r.filter((x) => x.kind === Kind.MSG_RECV);
    expect(reply).toMatchObject({
      msgSrc: 4, msgDst: 3, msgSeq: 11, msgType: 5, lkb: 1, aux: 5, status: 2, grmode: 2, mode: -1,
      sbFlags: SBF.ALTMODE, pid: 65, src: Src.RECV_MESSAGE,
    });
    expect(reply.name.length).toBe(0); // m_extra of a reply is not a name
    expect(lookup).toMatchObject({ msgType: 11, lkb: 77, mode: 5 });
    expect(hex(lookup.name)).toBe('626574610a'); // a LOOKUP's m_extra is the name
  });

  it('user-space locks (callbacks in the owner) carry RF_USER; the kworker-completed one does not', () => {
    for (const x of r) {
      if (x.kind > Kind.BLOCKING) { expect(x.rflags & RF_USER).toBe(0); continue; }
      expect(x.rflags & RF_USER, `${KIND_NAMES[x.kind]} ls ${x.ls} lkb ${x.lkb}`).toBe(x.ls === 7 ? RF_USER : 0);
    }
    const kast = r.find((x) => x.kind === Kind.COMPLETION && x.ls === 9)!;
    expect(kast.pid).toBe(65); // the kworker's pid: a kernel lock keeps each line's own pid
    expect(info.locks).toEqual({ user: 4, kernel: 1, undecided: 2 });
  });
});

describe('the 6.12 dlm_ast swap', () => {
  it('decodes the status byte: the DLM statuses first, else the sign-extended byte', () => {
    expect([0xf5, 0xfe, 0xff, 0xdd, 0x00, 0xea].map(statusFromLowByte)).toEqual([-11, -65538, -65537, -35, 0, -22]);
  });

  const ast = (fl: string, st: string): string => tracefs([`p-9 0 1.000001 dlm_ast ls_id=1 lkb_id=1 sb_flags=${fl} sb_status=${st} res_name=61`]);
  const one = (fl: string, st: string) => recs(parseTraceText(ast(fl, st), 'x').records)[0];

  it('recognised from the values, never from the kernel version', () => {
    expect(one('DEMOTED|VALNOTVALID|ALTMODE|0xf8', '0')).toMatchObject({ status: -65537, sbFlags: 0, rflags: RF_UNSWAPPED | RF_USER });
    expect(one('DEMOTED|ALTMODE|0xd8', '0')).toMatchObject({ status: -35, sbFlags: 0 });
    // status 0 with real sb_flags ALTMODE: sb_flags prints 0, sb_status 4
    expect(one('', '4')).toMatchObject({ status: 0, sbFlags: SBF.ALTMODE, rflags: RF_UNSWAPPED | RF_USER });
    // the kernel's own layout is left alone
    expect(one('ALTMODE', '0')).toMatchObject({ status: 0, sbFlags: SBF.ALTMODE, rflags: RF_USER });
    expect(one('', '-65538')).toMatchObject({ status: -65538, sbFlags: 0, rflags: RF_USER });
  });

  it('a line that is neither layout is refused', () => {
    expectLineError(ast('DEMOTED|ALTMODE|0xf0', '-11'), 3, /dlm_ast: sb_flags=DEMOTED\|ALTMODE\|0xf0 has bits outside .* sb_status=-11 is a status/);
  });
});

describe('owner exits (sched_process_exit)', () => {
  it('unlock every user-space lock the exiting owner still holds, and only those', () => {
    const { records, info } = parseTraceText(read(syn('owner-exit.tracefs.txt')), 'x');
    expect(info).toMatchObject({ ownerExitVisible: true, exitsSeen: 2, syntheticUnlocks: 2 });
    const synth = recs(records).filter((x) => x.rflags & RF_SYNTH);
    expect(synth.map((x) => [x.kind, x.ls, x.lkb, x.status, x.mode, x.pid, x.src, x.rflags, x.ts, Buffer.from(x.name).toString()])).toEqual([
      [Kind.COMPLETION, 5, 1, STATUS.EUNLOCK, MODE_NONE, 700, Src.PROCESS_EXIT, RF_SYNTH | RF_USER, 100_001_700_000, 'gamma'],
      [Kind.COMPLETION, 5, 3, STATUS.EUNLOCK, MODE_NONE, 700, Src.PROCESS_EXIT, RF_SYNTH | RF_USER, 100_001_700_000, 'delta'],
    ]);
    // the shell's gfs2 lock (completed in a kworker) is a kernel lock: its owner's exit releases nothing
    expect(recs(records).filter((x) => x.ls === 9).every((x) => (x.rflags & (RF_USER | RF_SYNTH)) === 0)).toBe(true);
  });

  it('without exit lines: ownerExitVisible false, no synthetic records', () => {
    const text = read(syn('owner-exit.tracefs.txt')).split('\n').filter((l) => !l.includes('sched_process_exit')).join('\n');
    const { records, info } = parseTraceText(text, 'x');
    expect(info).toMatchObject({ ownerExitVisible: false, exitsSeen: 0, syntheticUnlocks: 0 });
    expect(recs(records).some((x) => x.rflags & RF_SYNTH)).toBe(false);
  });

  it('a thread exit (group_dead=0) releases nothing; an exit with no locks is still seen', () => {
    const rows = [
      'p-7 0 1.000001 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61',
      'p-7 0 1.000002 dlm_ast ls_id=1 lkb_id=1 sb_flags= sb_status=0 res_name=61',
      'p-7 0 1.000003 sched_process_exit comm=p pid=7 prio=120 group_dead=0',
      'q-8 0 1.000004 sched_process_exit comm=q pid=8 prio=120',
    ];
    const { info } = parseTraceText(tracefs(rows), 'x');
    expect(info).toMatchObject({ ownerExitVisible: true, exitsSeen: 2, syntheticUnlocks: 0 });
  });

  it('replay: the owner-exit fixture gives exactly the one real conflict, nothing unconfirmed', () => {
    const d = tmp();
    const out = path.join(d, 'r.json');
    const res = cli(['--replay', syn('owner-exit.tracefs.txt'), '--output', out]);
    expect(res.code, res.stderr).toBe(1);
    const rep = readReport(out);
    expect(rep.violations.map((v: any) => [v.ls, v.res_hex])).toEqual([[9, '202020202020203220202020202020202020202031323331']]);
    expect(rep.unconfirmed ?? []).toEqual([]);
    expect(rep.context.trace_text[0]).toMatchObject({ owner_exit_visible: true, exits_seen: 2, synthetic_unlocks: 2, node_id: 1, node_id_from: 'default' });
  });
});

describe('order, node ids, losses, columns', () => {
  it('timestamps going back are sorted stably and counted', () => {
    const rows = [
      'p-7 0 1.000003 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61',
      'p-7 1 1.000001 dlm_lock_end ls_id=1 lkb_id=1 mode=EX flags= error=-16 res_name=61',
      'p-7 1 1.000002 dlm_lock_start ls_id=1 lkb_id=2 mode=PR flags= res_name=61',
      'p-7 0 1.000004 dlm_lock_start ls_id=1 lkb_id=3 mode=NL flags= res_name=61',
      'p-7 0 1.000004 dlm_lock_start ls_id=1 lkb_id=4 mode=CR flags= res_name=61',
    ];
    const { records, info } = parseTraceText(tracefs(rows), 'x');
    expect(info.reordered).toBe(2);
    expect(recs(records).map((x) => [x.ts, x.lkb])).toEqual([[1_000_001_000, 1], [1_000_002_000, 2], [1_000_003_000, 1], [1_000_004_000, 3], [1_000_004_000, 4]]);
  });

  it('timestamps: any number of decimals up to 9, exact past 2^53 ns', () => {
    const rows = [
      'p-7 0 5.1 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61',
      'p-7 0 5.123456789 dlm_lock_start ls_id=1 lkb_id=2 mode=EX flags= res_name=61',
      'p-7 0 9999999.000000001 dlm_lock_start ls_id=1 lkb_id=3 mode=EX flags= res_name=61',
    ];
    const { records } = parseTraceText(tracefs(rows), 'x');
    const w = (i: number): bigint => (BigInt(records.u32[i * 32 + 1]) << 32n) | BigInt(records.u32[i * 32]);
    expect([w(0), w(1), w(2)]).toEqual([5_100_000_000n, 5_123_456_789n, 9_999_999_000_000_001n]);
  });

  it('node id: option when there are no messages, 1 by default, the sends otherwise', () => {
    const t = tracefs(['p-7 0 1.0 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61']);
    expect(parseTraceText(t, 'x').info).toMatchObject({ nodeId: 1, nodeIdFrom: 'default' });
    expect(parseTraceText(t, 'x', { nodeId: 7 }).info).toMatchObject({ nodeId: 7, nodeIdFrom: 'option' });
    const recv = tracefs(['k-1 0 1.0 dlm_recv_message dst=5 h_seq=1 h_version=3.2 h_lockspace=1 h_nodeid=2 h_length=88 h_cmd=MSG m_type=GRANT ' +
      'm_nodeid=5 m_pid=0 m_lkid=1 m_remid=2 m_parent_lkid=0 m_parent_remid=0 m_exflags= m_sbflags= m_flags= m_lvbseq=0 m_hash=0 ' +
      'm_status=0 m_grmode=EX m_rqmode=IV m_bastmode=NL m_asts=0 m_result=0 m_extra=0x']);
    expect(parseTraceText(recv, 'x').info).toMatchObject({ nodeId: 5, nodeIdFrom: 'recv-dst' });
    expect(parseTraceText(read(syn('small.tracefs.txt')), 'x', { nodeId: 3 }).info).toMatchObject({ nodeId: 3, nodeIdFrom: 'sends' });
  });

  it('6.1 message events: seq=, no dst (msg_dst 0), res_name on sends', () => {
    const t = tracefs(['k-1 0 1.0 dlm_send_message seq=9 h_version=3.2 h_lockspace=4 h_nodeid=2 h_length=88 h_cmd=MSG m_type=CONVERT ' +
      'm_nodeid=1 m_pid=0 m_lkid=26 m_remid=3 m_parent_lkid=0 m_parent_remid=0 m_exflags=CONVERT m_sbflags= m_flags=MSTCPY m_lvbseq=0 m_hash=0 ' +
      'm_status=0 m_grmode=PR m_rqmode=EX m_bastmode=NL m_asts=0 m_result=0 m_extra=0x res_name=0x6162']);
    const { records, info } = parseTraceText(t, 'x');
    expect(info).toMatchObject({ nodeId: 2, nodeIdFrom: 'sends', kernelGuess: expect.stringMatching(/^6\.1/) });
    expect(recs(records)[0]).toMatchObject({ kind: Kind.MSG_SEND, msgSeq: 9, msgDst: 0, msgSrc: 2, msgType: 2, lkb: 26, aux: 3, mode: 5, grmode: 3, flags: LKF.CONVERT });
    expect(hex(recs(records)[0].name)).toBe('6162');
  });

  it('the (TGID) column: the record pid is the tgid; trace_pipe has no header', () => {
    const t = '   dlmcontend-290   (  281) [001] .....  21.5: dlm_ast: ls_id=1 lkb_id=1 sb_flags= sb_status=0 res_name=61\n' +
      '   dlmcontend-281   (  281) [001] .....  21.4: dlm_lock_start: ls_id=1 lkb_id=1 mode=EX flags= res_name=61\n';
    const { records, info } = parseTraceText(t, 'x');
    expect(info.format).toBe('tracefs');
    expect(recs(records).map((x) => [x.kind, x.pid, x.rflags])).toEqual([[Kind.REQUEST, 281, RF_USER], [Kind.COMPLETION, 281, RF_USER]]);
  });

  it('lost events become LOSS records where the loss ends', () => {
    const t = '# tracer: nop\n# entries-in-buffer/entries-written: 3/10   #P:2\n' + tracefs([
      'p-7 1 2.000000 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61',
      'p-7 0 3.000000 dlm_lock_start ls_id=1 lkb_id=2 mode=EX flags= res_name=61',
    ], false) + 'CPU:1 [LOST 5 EVENTS]\n' + tracefs(['p-7 1 4.000000 dlm_lock_start ls_id=1 lkb_id=3 mode=EX flags= res_name=61'], false);
    const { records, info } = parseTraceText(t, 'x');
    expect(info.losses).toEqual({ markers: 2, events: 12 });
    // header (7 overwritten): before CPU 0's first event, the latest first event of a CPU;
    // "LOST 5" on CPU 1: before that CPU's next event
    expect(recs(records).map((x) => [KIND_NAMES[x.kind], x.ts / 1e9, x.aux])).toEqual([
      ['request', 2, 0], ['loss', 3, 7], ['request', 3, 0], ['loss', 4, 5], ['request', 4, 0],
    ]);
    expect(info.warnings.join('\n')).toMatch(/lost 12 events/);
  });

  it('trace-cmd "[N EVENTS DROPPED]" is a loss too; unknown dlm events are counted and named', () => {
    const t = 'cpus=1\nCPU:0 [3 EVENTS DROPPED]\n' + tracefs([
      'p-7 0 2.0 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61',
      'p-7 0 2.1 dlm_lock_validated ls_id=1 lkb_id=1',
    ], false);
    const { records, info } = parseTraceText(t, 'x');
    expect(info.format).toBe('trace-cmd');
    expect(recs(records).map((x) => KIND_NAMES[x.kind])).toEqual(['loss', 'request']);
    expect(info.unknownDlmEvents).toEqual(['dlm_lock_validated']);
    expect(info.events).toEqual({ dlm_lock_start: 1, dlm_lock_validated: 1 });
  });

  it('lines that are neither events nor headers are ignored with a warning', () => {
    const t = tracefs(['p-7 0 2.0 dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags= res_name=61']) + 'some stray text\n';
    expect(parseTraceText(t, 'x').info.warnings).toEqual(['1 line was neither an event nor a header (first: line 4); ignored']);
  });
});

describe('bad input: InputError(file, line, reason) at the first bad dlm line', () => {
  const L = (f: string): string => tracefs(['other-1 0 0.5 sched_switch prev_comm=a', `p-7 0 1.000001 ${f}`]);

  it('no dlm events', () => {
    expectLineError(tracefs(['p-7 0 1.0 sched_switch prev_comm=a']), undefined, /^no dlm events in this trace: enable them with echo 1 > \/sys\/kernel\/tracing\/events\/dlm\/enable/);
    expectLineError('# tracer: nop\n', undefined, /^no dlm events/);
  });
  it('a dlm line whose columns cannot be read', () => {
    expectLineError('# tracer: nop\n  p-7 [000] dlm_lock_start: ls_id=1\n', 2, /columns cannot be read/);
  });
  it('a missing field', () => {
    expectLineError(L('dlm_ast ls_id=1 lkb_id=1 sb_flags= res_name=61'), 4, /^dlm_ast: missing field "sb_status"/);
  });
  it('%x, %u and %d fields', () => {
    expectLineError(L('dlm_bast ls_id=1 lkb_id=xyz mode=PR res_name=61'), 4, /field "lkb_id" must be a hexadecimal 32-bit number .*got "xyz"/);
    expectLineError(L('dlm_bast ls_id=-1 lkb_id=1 mode=PR res_name=61'), 4, /field "ls_id" must be an unsigned decimal 32-bit number/);
    expectLineError(L('dlm_lock_end ls_id=1 lkb_id=1 mode=PR flags= error=bad res_name=61'), 4, /field "error" must be a signed decimal 32-bit number/);
  });
  it('modes and flags', () => {
    expectLineError(L('dlm_lock_start ls_id=1 lkb_id=1 mode=XX flags= res_name=61'), 4, /field "mode" must be a DLM mode \(IV NL CR CW PR PW EX\)/);
    expectLineError(L('dlm_lock_start ls_id=1 lkb_id=1 mode=0x9 flags= res_name=61'), 4, /field "mode" is 0x9, not a DLM mode/);
    expectLineError(L('dlm_lock_start ls_id=1 lkb_id=1 mode=EX flags=NOQUEUE|BOGUS res_name=61'), 4, /field "flags" has unknown flag "BOGUS"/);
  });
  it('resource names', () => {
    expectLineError(L('dlm_bast ls_id=1 lkb_id=1 mode=PR res_name=616'), 4, /field "res_name" must be hex digit pairs/);
    expectLineError(L(`dlm_bast ls_id=1 lkb_id=1 mode=PR res_name=${'61'.repeat(65)}`), 4, /"res_name" is 65 bytes, a resource name is at most 64/);
  });
  const msg = (ev: string, over: Record<string, string>): string => {
    const f: Record<string, string> = {
      dst: '2', h_seq: '1', h_version: '3.2', h_lockspace: '1', h_nodeid: '1', h_length: '88', h_cmd: 'MSG', m_type: 'GRANT', m_nodeid: '2',
      m_pid: '0', m_lkid: '1', m_remid: '2', m_parent_lkid: '0', m_parent_remid: '0', m_exflags: '', m_sbflags: '', m_flags: '', m_lvbseq: '0',
      m_hash: '0', m_status: '0', m_grmode: 'EX', m_rqmode: 'IV', m_bastmode: 'NL', m_asts: '0', m_result: '0', m_extra: '0x', ...over,
    };
    return `${ev} ${Object.entries(f).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  };
  it('message events', () => {
    expectLineError(L(msg('dlm_send_message', { m_type: 'NOPE', res_name: '0x' })), 4, /field "m_type" must be a DLM message type/);
    expectLineError(L(msg('dlm_send_message', { res_name: '6162' })), 4, /field "res_name" must be hex bytes after "0x"/);
    expectLineError(L(msg('dlm_recv_message', { h_seq: 'x' })), 4, /field "h_seq" must be an unsigned decimal/);
  });
  it('one node per file: sends must agree, receives too, and with the sends', () => {
    const two = tracefs([`k-1 0 1.0 ${msg('dlm_send_message', { h_nodeid: '1', res_name: '0x' })}`, `k-1 0 1.1 ${msg('dlm_send_message', { h_nodeid: '2', res_name: '0x' })}`]);
    expectLineError(two, 4, /h_nodeid=2, but line 3 sent as node 1: a text trace must be one node's trace/);
    const rd = tracefs([`k-1 0 1.0 ${msg('dlm_recv_message', { dst: '1' })}`, `k-1 0 1.1 ${msg('dlm_recv_message', { dst: '3' })}`]);
    expectLineError(rd, 4, /dst=3, but line 3 was received by node 1/);
    const sr = tracefs([`k-1 0 1.0 ${msg('dlm_send_message', { h_nodeid: '1', res_name: '0x' })}`, `k-1 0 1.1 ${msg('dlm_recv_message', { dst: '4' })}`]);
    expectLineError(sr, 4, /dst=4, but this node sends as node 1/);
  });
  it('a node id option that the trace contradicts, or that is not a node id', () => {
    expectLineError(read(syn('small.tracefs.txt')), 34, /messages say it is node 3, but node 4 was given/, { nodeId: 4 });
    expectLineError(L('dlm_bast ls_id=1 lkb_id=1 mode=PR res_name=61'), undefined, /node id -1 is not an unsigned 32-bit integer/, { nodeId: -1 });
  });
  it('timestamps', () => {
    expectLineError(L('dlm_bast ls_id=1 lkb_id=1 mode=PR res_name=61').replace('1.000001', '1.0000000001'), 4, /more than 9 decimals/);
    const mixed = tracefs(['p-7 0 1.5 dlm_bast ls_id=1 lkb_id=1 mode=PR res_name=61', 'p-7 0 2 dlm_bast ls_id=1 lkb_id=1 mode=PR res_name=61']);
    expectLineError(mixed, undefined, /some timestamps are seconds and some are raw counter values/);
  });

  it('through readInputFile / loadRecords and the CLI: file:line: reason, exit 2, no report', () => {
    const f = path.join(dir, 'bad.txt');
    fs.writeFileSync(f, L('dlm_bast ls_id=1 lkb_id=1 mode=PR'));
    expect(() => readInputFile(f)).toThrow(new InputError(f, 4, 'dlm_bast: missing field "res_name"; is it a dlm event of kernel 6.1 or 6.12 as the kernel printed it? check that the line was not cut or edited'));
    const out = path.join(dir, 'r.json');
    const r = cli(['--replay', f, '--output', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:4: dlm_bast: missing field "res_name"`);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('loadRecords reads a text trace', () => {
    const l = loadRecords(syn('small.perf-script.txt'));
    expect(l.format).toBe('trace-text');
    expect(l.records.count).toBe(22);
    expect(l.traceInfo?.format).toBe('perf-script');
  });
});
