// Probe selection from BTF facts, for the three kernel kinds of kernel.md section 1
// (plus the pre-2022 lock_start spelling), with facts taken from Debian's real 6.1 and
// 6.12 dlm.ko BTF (fixtures/btf-facts-*.json, made by the addon's btfFacts()) and from the
// tp_btf signatures the vmlab guests printed. No BPF needed here.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { planProbes, parseTpSignatures, flavorOf, PROBES, type ProbePlan } from '../../src/live/probes';
import { planLive } from '../../src/live/collector';
import { bpfPrivilegeProblem, configfsNodeId, ringSize, LiveError } from '../../src/live/env';
import type { BtfFacts, NativeBinding } from '../../src/native';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const fx = (f: string) => join(__dirname, 'fixtures', f);
const facts = (v: string): BtfFacts => JSON.parse(readFileSync(fx(`btf-facts-${v}.json`), 'utf8')) as BtfFacts;
const loaded = (p: ProbePlan) => p.probes.filter((x) => x.load).map((x) => x.prog).sort();
const probe = (p: ProbePlan, prog: string) => p.probes.find((x) => x.prog === prog)!;

describe('probe selection (planProbes)', () => {
  it('every program of the object is decided, test_feed never in live', () => {
    const p = planProbes(facts('6.1'));
    expect(p.probes.map((x) => x.prog).sort()).toEqual(PROBES.filter((x) => x.prog !== 'test_feed').map((x) => x.prog).sort());
    for (const x of p.probes) if (!x.load) expect(x.reason, x.prog).toBeTruthy();
  });

  it('mainline 6.1 (Debian 6.1.0-56 BTF): name args, pointer dlm_ast/dlm_bast as history, 6.1 message prototypes', () => {
    const p = planProbes(facts('6.1'));
    expect(p.flavor).toBe('mainline-6.1');
    expect(p.nsNodeIds).toBe(false);
    expect(loaded(p)).toEqual(['add_cb', 'ast_ptr', 'bast_ptr', 'clear_proc', 'lock_end', 'lock_start', 'recover_purge', 'recv_msg_61',
      'release_ls', 'release_ls_ret', 'send_msg_61', 'unlock_end', 'unlock_start']);
    expect(probe(p, 'recover_purge').role).toBe('node-removed');
    expect(probe(p, 'add_cb').role).toBe('completion');
    expect(probe(p, 'ast_ptr').role).toBe('completion-history');
    expect(probe(p, 'bast_ptr').role).toBe('blocking-history');
    expect(probe(p, 'lock_start_old').reason).toMatch(/prototype differs/);
    expect(probe(p, 'ast_scalar').reason).toMatch(/prototype differs/);
    expect(probe(p, 'lock_validated').reason).toMatch(/not in this kernel/);
    expect(p.notes).toEqual([]);
  });

  it('mainline 6.12 (Debian 6.12.117 BTF): scalar dlm_ast/dlm_bast, messages with dst and h_seq', () => {
    const p = planProbes(facts('6.12'));
    expect(p.flavor).toBe('mainline-6.10');
    expect(loaded(p)).toEqual(['add_cb', 'ast_scalar', 'bast_scalar', 'clear_proc', 'lock_end', 'lock_start', 'recover_purge', 'recv_msg',
      'release_ls', 'release_ls_ret', 'send_msg', 'unlock_end', 'unlock_start']);
    expect(p.notes).toEqual([]);
    expect(probe(p, 'ast_scalar').role).toBe('completion-history');
    expect(probe(p, 'send_msg_61').reason).toMatch(/prototype differs/);
  });

  it('dlm_recover_purge (6.1: ls; 6.12: ls, root_list) hooked where it and dlm_member are in the BTF, else a note', () => {
    for (const v of ['6.1', '6.12']) {
      const f = facts(v);
      expect(f.functions.dlm_recover_purge.params.length).toBe(v === '6.1' ? 1 : 2);
      delete f.structs.dlm_member;
      const p = planProbes(f);
      expect(probe(p, 'recover_purge').reason).toMatch(/BTF lacks dlm_member.list, dlm_member.nodeid/);
      expect(p.notes.join('\n')).toMatch(/dlm_recover_purge not hooked/);
      const g = facts(v);
      g.functions.dlm_recover_purge.params = ['int nodeid'];
      expect(probe(planProbes(g), 'recover_purge').reason).toMatch(/prototype differs/);
    }
  });

  it('without BTF for dlm_add_cb, dlm_ast becomes the completion source', () => {
    for (const v of ['6.1', '6.12']) {
      const f = facts(v);
      delete f.functions.dlm_add_cb;
      const p = planProbes(f);
      expect(probe(p, 'add_cb').load).toBe(false);
      expect(probe(p, 'add_cb').reason).toMatch(/not in this kernel's BTF/);
      const ast = p.probes.find((x) => x.hook === 'raw_tp/dlm_ast' && x.load)!;
      expect(ast.role).toBe('completion');
      expect(p.probes.find((x) => x.hook === 'raw_tp/dlm_bast' && x.load)!.role).toBe('blocking');
    }
  });

  it('the namespace-cluster kernel: validated hooks, its dlm_ast and release tracepoint, node ids from ls_dn', () => {
    const p = planProbes(facts('namespace'));
    expect(p.flavor).toBe('namespace');
    expect(p.nsNodeIds).toBe(true);
    expect(p.nsNodeOffsets).toEqual([4096, 16, 40]);
    expect(loaded(p)).toEqual(['add_cb', 'ast_ns', 'clear_proc', 'lock_validated', 'recv_msg', 'release_ls_ret', 'release_ls_tp',
      'send_msg', 'unlock_validated']);
    expect(probe(p, 'lock_start').reason).toMatch(/dlm_lock_validated is the REQUEST source/);
    expect(probe(p, 'unlock_start').reason).toMatch(/dlm_unlock_validated is the RELEASE source/);
    expect(probe(p, 'release_ls').reason).toMatch(/tracepoint gives the node id/);
    expect(probe(p, 'ast_ns').role).toBe('completion-history');
  });

  it('the namespace kernel without a readable node id refuses the hooks that need it, and says so', () => {
    const f = facts('namespace');
    delete f.nsNode;
    const p = planProbes(f);
    expect(p.nsNodeIds).toBe(false);
    expect(probe(p, 'lock_validated').load).toBe(false);
    expect(probe(p, 'lock_validated').reason).toMatch(/cannot read node ids/);
    expect(probe(p, 'add_cb').load).toBe(false);
    expect(probe(p, 'ast_ns').load).toBe(true); // carries our_nodeid itself
    expect(probe(p, 'ast_ns').role).toBe('completion');
    expect(p.notes.join('\n')).toMatch(/no REQUEST source/);
  });

  it('kernels before the 2022 name arguments: lock_start/lock_end without name, namelen', () => {
    const f = facts('6.1');
    f.tracepoints.dlm_lock_start = ['struct dlm_ls *', 'struct dlm_lkb *', 'int', '__u32'];
    f.tracepoints.dlm_lock_end = ['struct dlm_ls *', 'struct dlm_lkb *', 'int', '__u32', 'int'];
    delete f.tracepoints.dlm_send_message;
    delete f.tracepoints.dlm_recv_message;
    const p = planProbes(f);
    expect(p.flavor).toBe('mainline-5.16');
    expect(probe(p, 'lock_start_old').load).toBe(true);
    expect(probe(p, 'lock_end_old').load).toBe(true);
    expect(probe(p, 'lock_start').load).toBe(false);
    expect(probe(p, 'send_msg_61').reason).toMatch(/not in this kernel/);
  });

  it('the vmlab guests\' printed tp_btf signatures give the same tracepoint decisions as the BTF fixtures', () => {
    for (const [sig, v] of [['tp_btf-signatures-6.1.0-56.txt', '6.1'], ['tp_btf-signatures-6.12.117.txt', '6.12']]) {
      const f = facts(v);
      const tps = parseTpSignatures(readFileSync(fx(sig), 'utf8'));
      expect(Object.keys(tps).length).toBeGreaterThan(8);
      const mine = planProbes(f);
      const theirs = planProbes({ ...f, tracepoints: tps });
      expect(loaded(theirs)).toEqual(loaded(mine));
      expect(flavorOf({ ...f, tracepoints: tps })).toBe(mine.flavor);
    }
  });

  it('a BTF missing a field the program reads turns that program off with the field named', () => {
    const f = facts('6.12');
    delete f.structs.dlm_user_proc.unlocking;
    const p = planProbes(f);
    expect(probe(p, 'clear_proc').load).toBe(false);
    expect(probe(p, 'clear_proc').reason).toMatch(/dlm_user_proc\.unlocking/);
    expect(p.notes.join('\n')).toMatch(/phantom locks/);
  });
});

describe('live environment checks', () => {
  const fake = (f: BtfFacts) => ({ btfFacts: () => f }) as unknown as NativeBinding;

  it('no dlm BTF: DLM_NOT_LOADED with the fix', () => {
    const f: BtfFacts = { vmlinux: true, dlm: 'none', tracepoints: {}, functions: {}, structs: {} };
    let err: unknown;
    try { planLive(fake(f), { vmlinux: 'given' }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(LiveError);
    expect((err as LiveError).code).toBe('DLM_NOT_LOADED');
    expect((err as LiveError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/modprobe dlm/);
  });

  it('dlm loaded but no known hook: NO_DLM_HOOKS listing each hook and why', () => {
    const f: BtfFacts = { vmlinux: true, dlm: 'module', tracepoints: { dlm_ast: ['int'] }, functions: {}, structs: {} };
    let err: unknown;
    try { planLive(fake(f), { vmlinux: 'given' }); } catch (e) { err = e; }
    expect((err as LiveError).code).toBe('NO_DLM_HOOKS');
    expect((err as Error).message).toMatch(/raw_tp\/dlm_ast \[ast_ptr\]: prototype differs/);
  });

  it('unreadable vmlinux BTF: NO_BTF', () => {
    const f: BtfFacts = { vmlinux: false, dlm: 'none', tracepoints: {}, functions: {}, structs: {} };
    expect(() => planLive(fake(f), { vmlinux: 'given' })).toThrow(/BTF/);
  });

  it('privileges from CapEff: root-like, CAP_BPF+CAP_PERFMON, and neither', () => {
    expect(bpfPrivilegeProblem(1n << 21n)).toBeUndefined();
    expect(bpfPrivilegeProblem((1n << 39n) | (1n << 38n))).toBeUndefined();
    expect(bpfPrivilegeProblem(1n << 39n)).toMatch(/CAP_PERFMON no/);
    expect(bpfPrivilegeProblem(0n)).toMatch(/needs root, or CAP_BPF and CAP_PERFMON/);
  });

  it('node id from configfs: the comms entry with local = 1', () => {
    const d = mkdtempSync(join(tmpdir(), 'dlmrv-comms-'));
    for (const [id, local] of [[1, 0], [2, 1], [3, 0]]) {
      mkdirSync(join(d, String(id)));
      writeFileSync(join(d, String(id), 'local'), `${local}\n`);
      writeFileSync(join(d, String(id), 'nodeid'), `${id}\n`);
    }
    expect(configfsNodeId(d)).toBe(2);
    expect(configfsNodeId(join(d, 'nope'))).toBeUndefined();
  });

  it('ring sizes round up to a power of two of at least a page', () => {
    expect(ringSize(undefined)).toBe(16 << 20);
    expect(ringSize(1)).toBe(4096);
    expect(ringSize(5000)).toBe(8192);
    expect(() => ringSize(-1)).toThrow(/positive/);
  });
});
