// Live mode on the machine the tests run on. Without the dlm module (this project's
// development hosts), opening must fail with DLM_NOT_LOADED and its fix; with it (a
// guest that ran `modprobe dlm`), the probe set must attach.
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { loadNative } from '../../src/native';
import { openCollector, PROBES, LiveError, planProbes } from '../../src/live';
import { bpfAvailable, title } from './helpers';

const bpf = bpfAvailable();
const dlmLoaded = existsSync('/sys/kernel/btf/dlm');

describe.skipIf(!bpf.ok)('live collector on this host', () => {
  it(title('the addon\'s probe table is src/live/probes.ts\'s'), () => {
    const n = loadNative();
    expect(n.probeTable()).toEqual(PROBES.map((p) => ({ ...p })));
    expect(n.recordSize).toBe(128);
  });

  it(title('programs the kernel refuses are dropped with libbpf\'s or the verifier\'s words; the rest loads'), () => {
    const c = new (loadNative().Collector)({ mode: 'test', programs: ['add_cb', 'lock_start', 'release_ls_ret'] });
    try {
      const st = Object.fromEntries(c.probes().map((p) => [p.prog, p]));
      expect(st.test_feed.loaded).toBe(true);
      for (const p of ['add_cb', 'lock_start', 'release_ls_ret']) {
        expect(st[p].loaded, p).toBe(false);
        expect(st[p].reason, p).toMatch(/^not loaded: /);
      }
      expect(st.add_cb.reason).toMatch(/BTF type ID of 'dlm_add_cb'/);
      expect(st.lock_start.reason).toMatch(/CO-RE relocation/);
    } finally {
      c.close();
    }
  });

  it(title('the addon reads this kernel\'s BTF'), () => {
    const f = loadNative().btfFacts();
    expect(f.vmlinux).toBe(true);
    expect(f.dlm).toBe(dlmLoaded ? 'module' : existsSync('/sys/module/dlm') ? 'builtin' : 'none');
  });

  it.skipIf(dlmLoaded)(title(`without the dlm module: DLM_NOT_LOADED, exit code 3, and the fix${dlmLoaded ? ' [SKIPPED: the dlm module is loaded here]' : ''}`), () => {
    let err: unknown;
    try {
      openCollector({ mode: 'live', handleSignals: false }).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LiveError);
    expect((err as LiveError).code).toBe('DLM_NOT_LOADED');
    expect((err as LiveError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/modprobe dlm/);
  });

  it.skipIf(!dlmLoaded)(title(`with the dlm module: the planned probes load and attach${dlmLoaded ? '' : ' [SKIPPED: no dlm module here (no /sys/kernel/btf/dlm); runs in the qemu guests]'}`), () => {
    const c = openCollector({ mode: 'live', handleSignals: false });
    try {
      const plan = planProbes(loadNative().btfFacts());
      expect(c.flavor).toBe(plan.flavor);
      const attached = c.probes.filter((p) => p.attached).map((p) => p.prog).sort();
      expect(attached).toEqual(plan.probes.filter((p) => p.load).map((p) => p.prog).sort());
      expect(c.probes.some((p) => p.attached && p.role === 'completion')).toBe(true);
    } finally {
      c.close();
    }
  });
});
