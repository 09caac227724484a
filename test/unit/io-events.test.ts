import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors';
import { decodeEventText } from '../../src/io/detect';
import { parseEventFile, recordsToEventLines } from '../../src/io/events';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';
import { Kind, LKF, MODE_NONE, RF_HISTORY, SBF, STATUS, Src } from '../../src/record/layout';

const FIX = path.join(__dirname, '../fixtures/io');
const ALL = fs.readFileSync(path.join(FIX, 'all-events.ndjson'), 'utf8');

const rec = (rb: RecordBuffer, i: number) => decodeRecord(rb.u8, rb.u32, rb.i32, i);
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('event files', () => {
  it('maps each kind to its record', () => {
    const rb = parseEventFile(ALL, 'all.ndjson');
    expect(rb.count).toBe(32);
    expect(rec(rb, 0)).toEqual({
      kind: Kind.REQUEST, ts: 0, node: 1, ls: 7, lkb: 1, mode: 5, flags: 0, status: 0, error: 0, sbFlags: 0, pid: 0,
      aux: 0, msgSrc: 0, msgDst: 0, msgSeq: 0, msgType: 0, grmode: -1, src: Src.NONE, rflags: 0, name: latin1('alpha'),
    });
    expect(rec(rb, 1)).toMatchObject({ mode: 3, flags: LKF.NOQUEUE | LKF.CONVERT, pid: 281, src: Src.LOCK_START });
    expect(rec(rb, 2)).toMatchObject({ flags: LKF.ALTCW, grmode: 0 });
    expect(rec(rb, 3)).toMatchObject({ mode: 2, flags: LKF.QUECVT | 0x80000 });
    expect(rec(rb, 4)).toMatchObject({ kind: Kind.REQUEST_FAILED, error: -22, mode: MODE_NONE, name: Uint8Array.of(0, 0xff, 0x10) });
    expect(rec(rb, 5)).toMatchObject({ kind: Kind.COMPLETION, status: 0, mode: 5, src: Src.ADD_CB });
    expect(rec(rb, 6)).toMatchObject({ kind: Kind.COMPLETION, mode: MODE_NONE, rflags: RF_HISTORY, src: Src.AST });
    expect(rec(rb, 7)).toMatchObject({ status: STATUS.EAGAIN, mode: MODE_NONE, sbFlags: 0 });
    expect(rec(rb, 8)).toMatchObject({ status: STATUS.EDEADLK, mode: 0, sbFlags: SBF.DEMOTED | SBF.ALTMODE });
    expect(rec(rb, 9)).toMatchObject({ status: STATUS.ECANCEL, sbFlags: SBF.VALNOTVALID });
    expect(rec(rb, 10)).toMatchObject({ status: STATUS.EUNLOCK, rflags: 10 });
    expect(rec(rb, 11)).toMatchObject({ status: STATUS.EUNLOCK, rflags: 6 });
    expect(rec(rb, 13)).toMatchObject({ kind: Kind.BLOCKING, mode: 3, src: Src.BAST });
    expect(rec(rb, 14)).toMatchObject({ kind: Kind.RELEASE, flags: 0, mode: MODE_NONE });
    expect(rec(rb, 15)).toMatchObject({ kind: Kind.RELEASE, flags: LKF.CANCEL });
    expect(rec(rb, 17)).toMatchObject({ kind: Kind.RELEASE_FAILED, error: -16 });
    expect(rec(rb, 18)).toMatchObject({ ls: 0xffffffff, lkb: 0xffffffff, name: latin1('       2           1a2b3') });
    expect(rec(rb, 19).name).toEqual(Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x01));
    expect(rec(rb, 21).name.length).toBe(0);
    expect(rec(rb, 22).name.length).toBe(64);
    expect(rec(rb, 23).name).toEqual(latin1('ABC'));
    expect(rec(rb, 24)).toMatchObject({ kind: Kind.NODE_LEAVES_LS, aux: 0, lkb: 0, name: new Uint8Array(0) });
    expect(rec(rb, 25)).toMatchObject({ kind: Kind.NODE_LEAVES_LS, aux: 2, src: Src.RELEASE_LS });
    expect(rec(rb, 26)).toMatchObject({ kind: Kind.NODE_LEAVE_FAILED, error: -16, src: Src.RELEASE_LS_RET });
    expect(rec(rb, 27)).toMatchObject({ kind: Kind.LOSS, aux: 5 });
    expect(rec(rb, 28)).toMatchObject({ kind: Kind.MSG_SEND, msgSrc: 1, msgDst: 2, msgSeq: 10, msgType: 1, lkb: 1, aux: 0, src: Src.SEND_MESSAGE, name: latin1('alpha') });
    expect(rec(rb, 29)).toMatchObject({ kind: Kind.MSG_RECV, msgSrc: 1, msgDst: 0, msgSeq: 10, msgType: 9 });
    expect(rec(rb, 30)).toMatchObject({
      kind: Kind.MSG_RECV, msgDst: 2, msgSeq: 11, msgType: 9, lkb: 3, aux: 1, flags: LKF.CONVERT, status: -11, error: -11,
      sbFlags: SBF.DEMOTED, mode: 3, grmode: 0, pid: 7, src: Src.RECV_MESSAGE, rflags: 8, name: Uint8Array.of(0xff, 0),
    });
    expect(rec(rb, 31)).toMatchObject({ ts: Number.MAX_SAFE_INTEGER, node: 0xffffffff, pid: 0xffffffff });
  });

  it('round-trips file -> records -> lines -> records byte for byte', () => {
    const a = parseEventFile(ALL, 'all.ndjson');
    const lines = recordsToEventLines(a);
    expect(lines.length).toBe(a.count);
    const b = parseEventFile(lines.join('\n') + '\n', 'lines.ndjson');
    expect(Buffer.from(b.bytes()).equals(Buffer.from(a.bytes()))).toBe(true);
    expect(recordsToEventLines(b)).toEqual(lines); // canonical form is stable
  });

  it('writes only the fields a kind uses, res as text when printable, else res_hex', () => {
    const lines = recordsToEventLines(parseEventFile(ALL, 'all.ndjson'));
    expect(lines[0]).toBe('{"t": 0, "node": 1, "ls": 7, "lkb": 1, "res": "alpha", "ev": "request", "mode": "EX", "flags": 0}');
    expect(lines[4]).toBe('{"t": 20, "node": 1, "ls": 7, "lkb": 2, "res_hex": "00ff10", "ev": "request_failed", "error": -22}');
    expect(lines[6]).toBe('{"t": 30, "node": 1, "ls": 7, "lkb": 1, "res": "alpha", "ev": "completion", "status": "granted", "src": "dlm_ast", "rflags": "HISTORY"}');
    expect(lines[19]).toContain('"res_hex": "636166e901"');
    expect(lines[20]).toContain('"res": "ÿé"');
    expect(lines[24]).toBe('{"t": 70, "node": 1, "ls": 7, "ev": "node_leaves_ls"}');
    expect(lines[27]).toBe('{"t": 80, "node": 2, "ls": 7, "ev": "loss", "count": 5}');
    expect(lines[29]).toBe('{"t": 91, "node": 2, "ls": 7, "ev": "msg_recv", "src": 1, "dst": 0, "seq": 10, "type": "GRANT", "lkid": 0, "remid": 0}');
  });

  it('drops fields a kind does not use, and comments out unknown kinds', () => {
    const rb = new RecordBuffer();
    rb.push({ kind: Kind.RELEASE, ts: 5, node: 1, ls: 2, lkb: 3, mode: 5, status: 9, flags: 2, name: latin1('r') });
    rb.push({ kind: 0, ts: 6, node: 1, ls: 2 });
    expect(recordsToEventLines(rb)).toEqual([
      '{"t": 5, "node": 1, "ls": 2, "lkb": 3, "res": "r", "ev": "release", "flags": "CANCEL"}',
      '# record 1: kind 0 has no event-file form, skipped',
    ]);
    expect(parseEventFile(recordsToEventLines(rb).join('\n'), 'x').count).toBe(1);
  });

  it('ignores comments, blank lines, CRLF and a BOM; accepts an empty file', () => {
    const text = '\ufeff# scenario\r\n\r\n   \r\n  # indented comment\r\n{"t": 1, "node": 1, "ls": 1, "ev": "loss", "count": 1}\r\n';
    expect(parseEventFile(text, 'x').count).toBe(1);
    expect(parseEventFile('', 'x').count).toBe(0);
    expect(parseEventFile('# nothing yet\n', 'x').count).toBe(0);
  });

  it('parses the example in docs/formats.md', () => {
    const md = fs.readFileSync(path.join(__dirname, '../../docs/formats.md'), 'utf8');
    const block = md.split('```')[1];
    const rb = parseEventFile(block, 'formats.md');
    expect(rb.count).toBe(14);
    expect(new Set(Array.from({ length: rb.count }, (_, i) => rec(rb, i).kind)).size).toBe(11); // every kind
  });

  it('accepts equal timestamps', () => {
    const l = '{"t": 5, "node": 1, "ls": 1, "ev": "loss", "count": 1}';
    expect(parseEventFile(`${l}\n${l}`, 'x').count).toBe(2);
  });
});

// One test per error path: the line number and the exact reason.
describe('bad event lines -> InputError(file, line, reason)', () => {
  const OK = '{"t": 1, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "request", "mode": "EX", "flags": 0}';
  /** Put `bad` on line 4, after a comment, a blank line and a good line. */
  function reason(bad: string, line = 4): string {
    const text = `# header\n\n${OK}\n${bad}\n${OK.replace('"t": 1', '"t": 99')}\n`;
    try {
      parseEventFile(text, 'scn.ndjson');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      const ie = e as InputError;
      expect(ie.file).toBe('scn.ndjson');
      expect(ie.line).toBe(line);
      expect(ie.message).toBe(`scn.ndjson:${line}: ${ie.reason}`);
      expect(ie.exitCode).toBe(2);
      return ie.reason;
    }
    throw new Error('expected an InputError');
  }
  const req = (extra: string) => `{"t": 2, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "request", "mode": "EX", "flags": 0${extra}}`;
  const withField = (k: string, v: string) => req(`, "${k}": ${v}`);
  const line = (fields: string) => `{"t": 2, "node": 1, "ls": 7, ${fields}}`;

  it('invalid JSON', () => {
    expect(reason('{"t": 2, "node": 1,')).toMatch(/^invalid JSON \(.+\); each line must be one JSON object like \{"t": 0, "node": 1, "ls": 1, \.\.\.\}$/);
  });
  it('not an object', () => {
    expect(reason('[1, 2]')).toBe('each event line must be a JSON object {...}, got [1,2]');
    expect(reason('{"a":1} trailing')).toMatch(/^invalid JSON/);
  });
  it('missing ev', () => {
    expect(reason('{"t": 2, "node": 1, "ls": 7}')).toBe(
      'missing "ev" (one of request request_failed release release_failed completion blocking node_leaves_ls node_leave_failed loss msg_send msg_recv node_removed)');
  });
  it('unknown ev', () => {
    expect(reason(line('"ev": "grant"'))).toMatch(/^"ev" must be one of request .* msg_recv node_removed, got "grant"$/);
    expect(reason(line('"ev": 5'))).toMatch(/, got 5$/);
  });
  it('unknown field', () => {
    expect(reason(withField('modde', '"EX"'))).toBe(
      'unknown field "modde" for a "request" event; allowed: t node ls ev lkb mode flags pid rflags grmode src res res_hex');
  });
  it('hook on a lock event', () => {
    expect(reason(withField('hook', '"dlm_lock_start"'))).toBe(
      '"hook" is only for msg_send/msg_recv (where "src" is the sender node); use "src" for the hook name');
  });
  it('lkb / res on a lockspace event', () => {
    expect(reason(line('"ev": "loss", "count": 1, "lkb": 3'))).toBe('"lkb" is not used by "loss" events (they concern the whole lockspace); remove it');
    expect(reason(line('"ev": "node_leaves_ls", "res": "a"'))).toBe('"res" is not used by "node_leaves_ls" events (they concern the whole lockspace); remove it');
    expect(reason(line('"ev": "node_leave_failed", "error": -16, "res_hex": "61"'))).toBe(
      '"res_hex" is not used by "node_leave_failed" events (they concern the whole lockspace); remove it');
  });
  it('lkb on a message event', () => {
    expect(reason(line('"ev": "msg_send", "src": 1, "seq": 1, "type": 1, "lkb": 2'))).toBe(
      'message events name the lock with "lkid" (m_lkid), not "lkb"');
  });
  it('missing required field', () => {
    expect(reason('{"t": 2, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "request", "flags": 0}')).toBe('"request" event is missing "mode"');
    expect(reason('{"t": 2, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "release"}')).toBe('"release" event is missing "flags"');
    expect(reason('{"node": 1, "ls": 7, "ev": "loss", "count": 1}')).toBe('"loss" event is missing "t"');
    expect(reason(line('"ev": "loss"'))).toBe('"loss" event is missing "count"');
    expect(reason(line('"ev": "msg_recv", "src": 1, "seq": 1'))).toBe('"msg_recv" event is missing "type"');
    expect(reason('{"t": 2, "node": 1, "ls": 7, "lkb": 1, "ev": "blocking", "mode": "PR"}')).toBe('"blocking" event is missing "res" (or "res_hex")');
  });
  it('null is a wrong type, not a missing field', () => {
    expect(reason(line('"ev": "loss", "count": null'))).toBe('"count" must be an unsigned 32-bit integer (0..4294967295), got null');
    expect(reason(line('"ev": "node_leaves_ls", "force": null'))).toBe('"force" must be an unsigned 32-bit integer (0..4294967295), got null');
  });
  it('both res and res_hex', () => {
    expect(reason(req(', "res_hex": "61"'))).toBe('give either "res" or "res_hex", not both');
  });
  it('bad t', () => {
    const t = (v: string) => `{"t": ${v}, "node": 1, "ls": 7, "ev": "loss", "count": 1}`;
    const msg = (got: string) => `"t" must be a non-negative integer number of nanoseconds (at most 2^53-1), got ${got}`;
    expect(reason(t('-1'))).toBe(msg('-1'));
    expect(reason(t('1.5'))).toBe(msg('1.5'));
    expect(reason(t('"1000"'))).toBe(msg('"1000"'));
    expect(reason(t('9007199254740992'))).toBe(msg('9007199254740992'));
  });
  it('t going backwards', () => {
    const text = `${OK}\n# c\n${OK.replace('"t": 1', '"t": 1000')}\n\n${OK.replace('"t": 1', '"t": 900')}\n`;
    try { parseEventFile(text, 'f'); expect.unreachable(); } catch (e) {
      expect((e as InputError).line).toBe(5);
      expect((e as InputError).reason).toBe(
        '"t" is 900, before the previous event\'s 1000 (line 3); events must be in time order: sort the lines by "t"');
    }
  });
  it('bad unsigned 32-bit fields', () => {
    const msg = (k: string, got: string) => `"${k}" must be an unsigned 32-bit integer (0..4294967295), got ${got}`;
    expect(reason('{"t": 2, "node": -1, "ls": 7, "ev": "loss", "count": 1}')).toBe(msg('node', '-1'));
    expect(reason('{"t": 2, "node": 1, "ls": 4294967296, "ev": "loss", "count": 1}')).toBe(msg('ls', '4294967296'));
    expect(reason(req('').replace('"lkb": 1', '"lkb": 1.5'))).toBe(msg('lkb', '1.5'));
    expect(reason(withField('pid', '"281"'))).toBe(msg('pid', '"281"'));
    expect(reason(line('"ev": "loss", "count": true'))).toBe(msg('count', 'true'));
    expect(reason(line('"ev": "msg_send", "src": 1, "seq": -3, "type": 1'))).toBe(msg('seq', '-3'));
  });
  it('bad mode name', () => {
    expect(reason(req('').replace('"EX"', '"XX"'))).toBe('"mode" must be one of IV NL CR CW PR PW EX, got "XX"');
    expect(reason(req('').replace('"EX"', '5'))).toBe('"mode" must be one of IV NL CR CW PR PW EX, got 5');
    expect(reason(req('').replace('"EX"', '"ex"'))).toBe('"mode" must be one of IV NL CR CW PR PW EX, got "ex"');
    expect(reason(withField('grmode', '"none"'))).toBe('"grmode" must be one of IV NL CR CW PR PW EX, got "none"');
  });
  it('bad flags', () => {
    expect(reason(req('').replace('"flags": 0', '"flags": "NOQUEUE|CONVRT"'))).toMatch(/^"flags" has unknown flag "CONVRT"; known: NOQUEUE CANCEL CONVERT .* TIMEOUT \(or a number\)$/);
    expect(reason(req('').replace('"flags": 0', '"flags": -1'))).toBe('"flags" must be an unsigned 32-bit integer or names like "NOQUEUE|CANCEL", got -1');
    expect(reason(req('').replace('"flags": 0', '"flags": ["NOQUEUE"]'))).toMatch(/^"flags" must be a number or a string of names joined by "\|" \(NOQUEUE .*\), got \["NOQUEUE"\]$/);
    expect(reason(req('').replace('"flags": 0', '"flags": "0x100000000"'))).toMatch(/^"flags" has unknown flag "0x100000000"/);
  });
  it('bad sbflags / rflags', () => {
    const c = (extra: string) => `{"t": 2, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "completion", "status": 0${extra}}`;
    expect(reason(c(', "sbflags": "DEMOTED|FOO"'))).toBe('"sbflags" has unknown flag "FOO"; known: DEMOTED VALNOTVALID ALTMODE (or a number)');
    expect(reason(c(', "rflags": "HISTORY|history"'))).toBe('"rflags" has unknown flag "history"; known: HISTORY USER UNSWAPPED SYNTH (or a number)');
    expect(reason(c(', "rflags": 256'))).toBe('"rflags" must fit in 8 bits (HISTORY USER UNSWAPPED SYNTH), got 256');
  });
  it('bad status', () => {
    const c = (v: string) => `{"t": 2, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "completion", "status": ${v}}`;
    expect(reason(c('"GRANTED"'))).toBe('"status" must be a number or one of granted EUNLOCK ECANCEL EAGAIN EDEADLK, got "GRANTED"');
    expect(reason(c('false'))).toBe('"status" must be a number or one of granted EUNLOCK ECANCEL EAGAIN EDEADLK, got false');
    expect(reason(c('2147483648'))).toBe('"status" must be a signed 32-bit integer, got 2147483648');
  });
  it('bad error', () => {
    const f = (v: string) => `{"t": 2, "node": 1, "ls": 7, "lkb": 1, "res": "a", "ev": "request_failed", "error": ${v}}`;
    expect(reason(f('0'))).toBe('"error" must be the non-zero error the kernel returned (e.g. -16 for -EBUSY), got 0');
    expect(reason(f('"EBUSY"'))).toBe('"error" must be a signed 32-bit integer, got "EBUSY"');
  });
  it('res not a string', () => {
    expect(reason(req('').replace('"res": "a"', '"res": 12'))).toBe('"res" must be a string (use "res_hex" for raw bytes), got 12');
  });
  it('res with a character outside Latin-1', () => {
    expect(reason(req('').replace('"res": "a"', '"res": "ab\u20ac"'))).toBe(
      '"res" has a character outside U+0000..U+00FF (U+20AC at position 2); each character is one byte: write other bytes with "res_hex"');
  });
  it('res too long', () => {
    expect(reason(req('').replace('"res": "a"', `"res": "${'x'.repeat(65)}"`))).toBe('"res" is 65 bytes, at most 64 (DLM_RESNAME_MAXLEN)');
  });
  it('bad res_hex', () => {
    expect(reason(req('').replace('"res": "a"', '"res_hex": "abc"'))).toBe('"res_hex" must be a string of hex digit pairs (e.g. "616c706861"), got "abc"');
    expect(reason(req('').replace('"res": "a"', '"res_hex": "zz"'))).toMatch(/^"res_hex" must be a string of hex digit pairs/);
    expect(reason(req('').replace('"res": "a"', `"res_hex": "${'00'.repeat(65)}"`))).toBe('"res_hex" is 65 bytes, at most 64 (DLM_RESNAME_MAXLEN)');
  });
  it('bad message type', () => {
    const m = (v: string) => line(`"ev": "msg_send", "src": 1, "seq": 1, "type": ${v}`);
    expect(reason(m('"GRANTED"'))).toMatch(/^"type" must be a message type name \(REQUEST CONVERT .* PURGE\) or a number 0\.\.255, got "GRANTED"$/);
    expect(reason(m('256'))).toMatch(/or a number 0\.\.255, got 256$/);
  });
  it('bad hook name', () => {
    expect(reason(withField('src', '"lock_start"'))).toMatch(/^"src" must be a hook name \(event-file simulator dlm_lock_start .*\) or a number 0\.\.255, got "lock_start"$/);
    expect(reason(line('"ev": "msg_send", "src": 1, "seq": 1, "type": 1, "hook": "x"'))).toMatch(/^"hook" must be a hook name/);
  });
  it('sender node given as a hook name on a message event', () => {
    expect(reason(line('"ev": "msg_send", "src": "dlm_send_message", "seq": 1, "type": 1'))).toBe(
      '"src" must be an unsigned 32-bit integer (0..4294967295), got "dlm_send_message"');
  });
  it('the first bad line wins and nothing is returned', () => {
    expect(reason(`${req('').replace('"EX"', '"XX"')}\n{broken`)).toBe('"mode" must be one of IV NL CR CW PR PW EX, got "XX"');
  });
  it('invalid UTF-8 bytes (reading a file)', () => {
    const bytes = Buffer.concat([Buffer.from(`${OK}\n${OK}\n{"t": 3, "res": "`), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    try { decodeEventText(bytes, 'latin1.ndjson'); expect.unreachable(); } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).message).toBe('latin1.ndjson:3: not valid UTF-8; save the file as UTF-8 (use "res_hex" for arbitrary name bytes)');
    }
    expect(decodeEventText(Buffer.from('{"res": "é"}'), 'x')).toBe('{"res": "é"}');
  });
});
