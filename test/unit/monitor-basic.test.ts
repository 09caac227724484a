import { describe, it, expect } from 'vitest';
import { run, F } from '../helpers/events';

const grant = (node: number, lkb: number, res: string, mode?: string) => ({ ev: 'completion' as const, node, lkb, res, status: 0, ...(mode ? { mode } : {}) });
const req = (node: number, lkb: number, res: string, mode: string, flags = 0) => ({ ev: 'request' as const, node, lkb, res, mode, flags });

describe('monitor basics', () => {
  it('two EX grants on one resource from two nodes is one violation', () => {
    const m = run([req(1, 1, 'r', 'EX'), grant(1, 1, 'r'), req(2, 1, 'r', 'EX'), grant(2, 1, 'r')]);
    expect(m.violations.length).toBe(1);
    const v = m.violations[0];
    expect(v.res).toBe('r');
    expect(v.res_hex).toBe('72');
    expect(v.trigger).toMatchObject({ node: 2, lkb: 1, old_effective: 'IV', new_effective: 'EX' });
    expect(v.locks.map((l) => [l.node, l.lkb, l.granted, l.effective]).sort()).toEqual([[1, 1, 'EX', 'EX'], [2, 1, 'EX', 'EX']]);
    expect(v.pairs).toEqual([{ a: { node: 2, lkb: 1, effective: 'EX' }, b: { node: 1, lkb: 1, effective: 'EX' } }]);
    expect(v.history.map((h) => h.event)).toEqual(['request', 'completion', 'request', 'completion']);
  });

  it('PR and PR are compatible; resource freed after the last unlock', () => {
    const m = run([req(1, 1, 'r', 'PR'), grant(1, 1, 'r'), req(2, 5, 'r', 'PR'), grant(2, 5, 'r'),
      { ev: 'release', node: 1, lkb: 1 }, { ev: 'completion', node: 1, lkb: 1, res: 'r', status: -65538 },
      { ev: 'release', node: 2, lkb: 5 }, { ev: 'completion', node: 2, lkb: 5, res: 'r', status: -65538 }]);
    expect(m.violations.length).toBe(0);
    expect(m.locksTracked).toBe(0);
    expect(m.resourcesTracked).toBe(0);
    expect(m.summary().resources.peak).toBe(1);
  });

  it('an incident is reported once and a new one after it ended', () => {
    const m = run([req(1, 1, 'r', 'EX'), grant(1, 1, 'r'), req(2, 1, 'r', 'EX'), grant(2, 1, 'r'),
      req(3, 1, 'r', 'PR'), grant(3, 1, 'r'), // same incident
      { ev: 'release', node: 2, lkb: 1 }, { ev: 'release', node: 3, lkb: 1 }, // incident over
      req(4, 1, 'r', 'CR'), grant(4, 1, 'r'), // CR vs EX: a new incident
    ]);
    expect(m.violations.map((v) => v.trigger.node)).toEqual([2, 4]);
  });

  it('ALTMODE grant takes the alternate mode', () => {
    const m = run([req(1, 1, 'r', 'CW'), grant(1, 1, 'r'), req(2, 1, 'r', 'PR', F.ALTCW),
      { ev: 'completion', node: 2, lkb: 1, res: 'r', status: 0, sbflags: 0x4 }]);
    expect(m.violations.length).toBe(0);
    expect(m.dumpLocks().find((l) => l.node === 2)!.gr).toBe(3); // CW
  });

  it('LOSS forgets everything', () => {
    const m = run([req(1, 1, 'r', 'EX'), grant(1, 1, 'r'), { ev: 'loss', count: 3 }, req(2, 1, 'r', 'EX'), grant(2, 1, 'r')]);
    expect(m.violations.length).toBe(0);
    expect(m.summary().losses).toEqual({ events_dropped: 3, resets: 1 });
  });
});

describe('late completions of an earlier lock with a reused id', () => {
  it('a late EUNLOCK for the old resource does not remove the new lock with that id (dlm_ast only, >= 6.10)', () => {
    const m = run([
      req(1, 1, 'a', 'EX'), grant(1, 1, 'a'),
      { ev: 'release', node: 1, lkb: 1 },
      req(1, 1, 'b', 'PR'), // id reused on another resource before the old unlock completion was traced
      { ev: 'completion', node: 1, lkb: 1, res: 'a', status: -65538 }, // late, for the old lock
      grant(1, 1, 'b'),
      req(2, 1, 'b', 'EX'), grant(2, 1, 'b'), // wrong: PR is held on b
    ]);
    expect(m.violations.map((v) => [v.res, v.trigger.node])).toEqual([['b', 2]]);
    expect(m.summary().events_on_unknown_locks).toBe(1);
  });
});

describe('a refused release undoes only itself', () => {
  it('FORCEUNLOCK in flight, then a plain unlock refused -EBUSY: the first unlock stays pending', () => {
    const m = run([
      req(3, 2, 'r', 'EX'),
      { ev: 'release', node: 3, lkb: 2, flags: 0x20000 }, // FORCEUNLOCK while the request is in flight
      { ev: 'release', node: 3, lkb: 2, flags: 0 }, // a plain unlock: refused
      { ev: 'release_failed', node: 3, lkb: 2, error: -16 },
      grant(3, 2, 'r', 'EX'), // the request completes; the overlap unlock still pending
      req(5, 1, 'r', 'PW'), grant(5, 1, 'r', 'PW'), // the master already processed the unlock
    ]);
    expect(m.violations).toHaveLength(0);
  });
  it('a refused cancel on top of a pending unlock does not undo the unlock', () => {
    const m = run([
      req(1, 1, 'r', 'EX'), grant(1, 1, 'r'),
      { ev: 'release', node: 1, lkb: 1, flags: 0 },
      { ev: 'release', node: 1, lkb: 1, flags: 2 }, { ev: 'release_failed', node: 1, lkb: 1, error: -16 },
      req(2, 1, 'r', 'EX'), grant(2, 1, 'r'),
    ]);
    expect(m.violations).toHaveLength(0);
  });
});

describe('verdicts that rest on a user-space owner the input cannot see exit', () => {
  const evs = [
    { ev: 'request' as const, node: 1, lkb: 1, res: 'gamma', mode: 'EX', user: true }, grant(1, 1, 'gamma'),
    // the owner is SIGKILLed here: the kernel releases lkb 1 with no event
    req(1, 3, 'gamma', 'EX'), grant(1, 3, 'gamma'),
  ];
  it('is reported apart, as unconfirmed, with the reason and the cure, when exits are not visible', () => {
    const m = run(evs, { ownerExitVisible: false });
    expect(m.violations).toHaveLength(0);
    expect(m.unconfirmed).toHaveLength(1);
    const u = m.unconfirmed[0];
    expect(u.class).toBe('unconfirmed-owner-exit');
    expect(u.unconfirmed!.locks).toEqual([{ node: 1, lkb: 1, pid: 0 }]);
    expect(u.unconfirmed!.cure).toMatch(/sched_process_exit/);
    expect(m.summary().unconfirmed).toBe(1);
  });
  it('is a plain violation when exits are visible (live: dlm_clear_proc_locks would have released it)', () => {
    const m = run(evs);
    expect(m.violations).toHaveLength(1);
    expect(m.unconfirmed).toHaveLength(0);
  });
  it('a kernel lock (gfs2) is evidence either way', () => {
    const m = run([req(1, 1, 'g', 'EX'), grant(1, 1, 'g'), req(2, 1, 'g', 'EX'), grant(2, 1, 'g')], { ownerExitVisible: false });
    expect(m.violations).toHaveLength(1);
  });
});
