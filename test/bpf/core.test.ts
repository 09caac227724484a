// The hook programs against real dlm types, without a dlm module: every program of the
// check build (bpf/dlm_rv.bpf.c with -DDLM_RV_CHECK_RAW_TP, each hook a plain raw_tp) is
// loaded with its CO-RE relocations resolved against the dlm types of Debian's 6.1 and
// 6.12 kernels (fixtures/dlm-types-*.btf.o: BTF only, made from their dlm.ko as
// docs/live.md says), and must pass this machine's verifier. The fentry argument
// typing (BTF pointers) is only exercised on the real kernels (the qemu guests).
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { loadNative, type BtfFacts } from '../../src/native';
import { planProbes, PROBES } from '../../src/live/probes';
import { bpfAvailable, title } from './helpers';

const bpf = bpfAvailable();
const fx = (f: string) => join(__dirname, 'fixtures', f);

describe.skipIf(!bpf.ok)('CO-RE relocations and verifier, against real dlm BTF', () => {
  for (const v of ['6.1', '6.12']) {
    it(title(`every hook program loads against the dlm types of ${v}`), () => {
      const res = loadNative().coreCheck({ btf: fx(`dlm-types-${v}.btf.o`) });
      expect(res.map((r) => r.prog).sort()).toEqual(PROBES.map((p) => p.prog).sort());
      const bad = res.filter((r) => !r.loaded);
      expect(bad.map((r) => `${r.prog}: ${r.error}`)).toEqual([]);
    });

    it(title(`the probes planned for ${v} load, with node ids from configfs or from ls_dn offsets`), () => {
      const f = JSON.parse(readFileSync(fx(`btf-facts-${v}.json`), 'utf8')) as BtfFacts;
      const progs = planProbes(f).probes.filter((p) => p.load).map((p) => p.prog);
      expect(progs.length).toBeGreaterThan(8);
      for (const nsNodeOffsets of [undefined, [8, 16, 24]]) {
        const res = loadNative().coreCheck({ btf: fx(`dlm-types-${v}.btf.o`), programs: progs, nsNodeOffsets });
        expect(res.filter((r) => !r.loaded).map((r) => `${r.prog}: ${r.error}`)).toEqual([]);
        expect(res.length).toBe(progs.length);
      }
    });
  }

  it(title('a relocation that cannot be resolved is reported with the verifier\'s words'), () => {
    // the vmlinux BTF of this host has no dlm types at all
    const res = loadNative().coreCheck({ btf: '/sys/kernel/btf/vmlinux', programs: ['add_cb', 'test_feed'] });
    const addcb = res.find((r) => r.prog === 'add_cb')!;
    expect(addcb.loaded).toBe(false);
    expect(addcb.error).toMatch(/CO-RE relocation|relo/i);
    expect(res.find((r) => r.prog === 'test_feed')!.loaded).toBe(true);
  });
});
