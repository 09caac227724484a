// `sudo node collect.js --demo`: the simulator's namespace cluster, one injected violation,
// through the real BPF test program, ring buffer and addon; it must find exactly that one.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { bpfAvailable, title } from './helpers';
import { cli, readReport, tmp } from '../helpers/cli';

const bpf = bpfAvailable();

describe.skipIf(!bpf.ok)('the demo', () => {
  it(title('finds the injected violation through the real ring buffer, exit 0, and says what the user saw'), () => {
    const out = join(tmp(), 'demo.json');
    const r = cli(['--demo', '--output', out]);
    expect(r.stderr).toMatch(/the events go through the real BPF path: test program -> ring buffer -> addon -> monitor/);
    expect(r.stderr).toMatch(/records came out of the ring buffer, 0 dropped/);
    expect(r.stderr).toMatch(/found: +violation #1 at event \d+/);
    expect(r.code).toBe(0);
    const rep = readReport(out);
    expect(rep.context.source).toBe('demo');
    expect(rep.violations).toHaveLength(1);
    const t = rep.context.simulation.truth;
    expect(rep.violations[0]).toMatchObject({ seq: t.seq, res_hex: t.res_hex, trigger: { node: t.victim.node, lkb: t.victim.lkb } });
    expect(rep.summary.records).toBe(rep.context.simulation.records);
  });
});
