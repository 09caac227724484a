// The C header and the TypeScript mirror must agree on every offset and the size:
// compile a tiny C program against bpf/dlm_rv.h and compare with layout.ts.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OFF, RECORD_SIZE, RECORD_VERSION, NAME_MAX, W, Kind, Src, MODE_NONE, RF_HISTORY, RF_USER, RF_UNSWAPPED, RF_SYNTH } from '../../src/record/layout';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';

const header = resolve(__dirname, '../../bpf/dlm_rv.h');

function cOffsets(): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'dlmrv-layout-'));
  const fields = Object.keys(OFF);
  const src = `#include <stdio.h>
#include <stddef.h>
#include "${header}"
int main(void) {
${fields.map((f) => `  printf("${f} %zu\\n", offsetof(struct dlm_rv_record, ${f}));`).join('\n')}
  printf("sizeof %zu\\n", sizeof(struct dlm_rv_record));
  printf("version %d\\n", DLM_RV_RECORD_VERSION);
  printf("name_max %d\\n", DLM_RV_NAME_MAX);
  printf("size_macro %d\\n", DLM_RV_RECORD_SIZE);
  printf("mode_none %d\\n", DLM_RV_MODE_NONE);
  printf("kind_max %d\\n", DLM_RV_EV_MAX);
  printf("src_max %d\\n", DLM_RV_SRC_MAX);
  printf("kind_completion %d\\n", DLM_RV_EV_COMPLETION);
  printf("kind_msg_recv %d\\n", DLM_RV_EV_MSG_RECV);
  printf("src_add_cb %d\\n", DLM_RV_SRC_ADD_CB);
  printf("src_process_exit %d\\n", DLM_RV_SRC_PROCESS_EXIT);
  printf("rf %d %d %d %d\\n", DLM_RV_RF_HISTORY, DLM_RV_RF_USER, DLM_RV_RF_UNSWAPPED, DLM_RV_RF_SYNTH);
  return 0;
}
`;
  writeFileSync(join(dir, 'layout.c'), src);
  execFileSync('cc', ['-Wall', '-Werror', '-o', join(dir, 'layout'), join(dir, 'layout.c')], { stdio: 'pipe' });
  const out = execFileSync(join(dir, 'layout'), { encoding: 'utf8' });
  const m: Record<string, number> = {};
  for (const line of out.trim().split('\n')) {
    const [k, ...v] = line.split(' ');
    m[k] = Number(v[0]);
    if (k === 'rf') m.rf_all = v.map(Number).reduce((a, b) => a * 100 + b, 0);
  }
  return m;
}

describe('record layout', () => {
  const c = cOffsets();

  it('every field offset matches offsetof() in bpf/dlm_rv.h', () => {
    for (const [f, off] of Object.entries(OFF)) expect({ f, off: c[f] }).toEqual({ f, off });
  });

  it('size, version and constants match', () => {
    expect(c.sizeof).toBe(RECORD_SIZE);
    expect(c.size_macro).toBe(RECORD_SIZE);
    expect(c.version).toBe(RECORD_VERSION);
    expect(c.name_max).toBe(NAME_MAX);
    expect(c.mode_none).toBe(MODE_NONE);
    expect(c.kind_max).toBe(Kind.MAX);
    expect(c.kind_completion).toBe(Kind.COMPLETION);
    expect(c.kind_msg_recv).toBe(Kind.MSG_RECV);
    expect(c.src_max).toBe(Src.MAX);
    expect(c.src_add_cb).toBe(Src.ADD_CB);
    expect(c.src_process_exit).toBe(Src.PROCESS_EXIT);
    expect(c.rf_all).toBe([RF_HISTORY, RF_USER, RF_UNSWAPPED, RF_SYNTH].reduce((a, b) => a * 100 + b, 0));
  });

  it('word indexes agree with byte offsets', () => {
    expect(W.node * 4).toBe(OFF.node);
    expect(W.ls * 4).toBe(OFF.ls_id);
    expect(W.lkb * 4).toBe(OFF.lkb_id);
    expect(W.flags * 4).toBe(OFF.flags);
    expect(W.status * 4).toBe(OFF.status);
    expect(W.error * 4).toBe(OFF.error);
    expect(W.sbFlags * 4).toBe(OFF.sb_flags);
    expect(W.pid * 4).toBe(OFF.pid);
    expect(W.aux * 4).toBe(OFF.aux);
    expect(W.msgSrc * 4).toBe(OFF.msg_src);
    expect(W.msgDst * 4).toBe(OFF.msg_dst);
    expect(W.msgSeq * 4).toBe(OFF.msg_seq);
    expect(W.tail * 4).toBe(OFF.msg_type);
    expect(W.name * 4).toBe(OFF.name);
  });

  it('a record written by TypeScript reads back field by field, little-endian, as C lays it out', () => {
    const rb = new RecordBuffer(1);
    const f = {
      kind: Kind.COMPLETION, ts: 2 ** 40 + 12345, node: 0xfffffffe, ls: 1575360851, lkb: 0x1a, mode: 5, flags: 0x18004,
      status: -65538, error: -16, sbFlags: 4, pid: 4242, aux: 7, msgSrc: 1, msgDst: 2, msgSeq: 99, msgType: 9,
      grmode: -1, src: Src.ADD_CB, rflags: RF_USER, name: new Uint8Array(Buffer.from('       2            1231')),
    };
    rb.push(f);
    const dv = new DataView(rb.buffer);
    expect(dv.getBigUint64(OFF.ts_ns, true)).toBe(BigInt(f.ts));
    expect(dv.getUint16(OFF.kind, true)).toBe(Kind.COMPLETION);
    expect(dv.getUint8(OFF.name_len)).toBe(24);
    expect(dv.getInt8(OFF.mode)).toBe(5);
    expect(dv.getUint32(OFF.node, true)).toBe(0xfffffffe);
    expect(dv.getInt32(OFF.status, true)).toBe(-65538);
    expect(dv.getInt8(OFF.grmode)).toBe(-1);
    expect(dv.getUint8(OFF.src)).toBe(Src.ADD_CB);
    expect(new TextDecoder().decode(new Uint8Array(rb.buffer, OFF.name, 24))).toBe('       2            1231');
    const back = decodeRecord(rb.u8, rb.u32, rb.i32, 0);
    expect({ ...back, name: Buffer.from(back.name).toString('latin1') }).toEqual({ ...f, name: '       2            1231' });
  });

  it('the header compiles as C for the BPF side too (no libc types leak in)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dlmrv-layout-'));
    writeFileSync(join(dir, 'x.c'), `#include "${header}"\nint x(struct dlm_rv_record *r) { return r->kind; }\n`);
    execFileSync('cc', ['-Wall', '-Werror', '-c', '-o', join(dir, 'x.o'), join(dir, 'x.c')], { stdio: 'pipe' });
    expect(readFileSync(join(dir, 'x.o')).length).toBeGreaterThan(0);
  });
});
