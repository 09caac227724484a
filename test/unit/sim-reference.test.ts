// The simulator's executions checked by an independent reference checker:
// correct runs give no violation, runs with an injected bug give exactly one,
// at the ground-truth record.
//
// The checker (below) replays records and keeps per-lock effective modes as
// monitor.md sections 4 and 5 describe, checking at every rise. It is
// deliberately straightforward (test code, not the monitor). Where monitor.md
// leaves a choice open, the choice made here is commented; docs/simulator.md
// lists them.
import { describe, expect, it } from 'vitest';
import { BUG_KINDS, simulate, type Flavor } from '../../src/sim';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';
import { Kind, LKF, MODE_NONE, RF_HISTORY, SBF, STATUS } from '../../src/record/layout';

const IV = -1, NL = 0, CR = 1, CW = 2, PR = 3;

const COMPAT = [
  [1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1, 0],
  [1, 1, 1, 1, 0, 0, 0],
  [1, 1, 1, 0, 1, 0, 0],
  [1, 1, 1, 0, 0, 0, 0],
  [1, 1, 0, 0, 0, 0, 0],
];
const compatible = (a: number, b: number): boolean => COMPAT[a + 1][b + 1] === 1;

function leq(a: number, b: number): boolean {
  if (a === b) return true;
  if ((a === CW && b === PR) || (a === PR && b === CW)) return false;
  return a < b;
}

function meet(a: number, b: number): number {
  if (leq(a, b)) return a;
  if (leq(b, a)) return b;
  return CR;
}

interface Req {
  rq: number;
  flags: number;
  isNew: boolean;
}

interface Snapshot {
  gr: number;
  req: Req | null;
  rel: number;
}

interface RefLock {
  key: string;
  node: number;
  ls: number;
  lkb: number;
  res: string;
  gr: number;
  req: Req | null;
  /** 0 none, 1 unlock, 2 cancel */
  rel: number;
  /** state before each REQUEST/RELEASE not yet resolved, restored by its *_FAILED */
  saved: Snapshot[];
}

interface RefViolation {
  index: number;
  res: string;
  trigger: { node: number; lkb: number; eff: number };
  conflicting: { node: number; lkb: number; eff: number }[];
}

function effective(l: RefLock): number {
  if (l.rel === 1) return IV;
  const r = l.req;
  if (r) {
    if (r.isNew) return IV;
    if (r.flags & LKF.CONVDEADLK) return NL;
    if (leq(l.gr, r.rq)) return l.gr;
    if (leq(r.rq, l.gr)) return r.rq;
    return meet(l.gr, r.rq);
  }
  return l.gr;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

function resKey(ls: number, name: Uint8Array): string {
  return `${ls}:${hex(name)}`;
}

class RefChecker {
  locks = new Map<string, RefLock>();
  byRes = new Map<string, Set<RefLock>>();
  inIncident = new Set<string>();
  violations: RefViolation[] = [];
  /** locks dropped by NODE_LEAVES_LS, kept until the next event of that node in that lockspace */
  private leaving = new Map<string, RefLock[]>();
  /** sanity problems seen in the stream (the simulator's, not the monitor's) */
  problems: string[] = [];
  /** After a LOSS, locks first seen mid-operation are simply not tracked. */
  private lost = false;

  run(buf: RecordBuffer, upTo = buf.count): this {
    for (let i = 0; i < upTo; i++) this.step(buf, i);
    return this;
  }

  private problem(i: number, msg: string): void {
    if (this.lost) return;
    if (this.problems.length < 20) this.problems.push(`record ${i}: ${msg}`);
  }

  private add(l: RefLock): void {
    this.locks.set(l.key, l);
    let s = this.byRes.get(l.res);
    if (!s) this.byRes.set(l.res, (s = new Set()));
    s.add(l);
  }

  private remove(l: RefLock): void {
    this.locks.delete(l.key);
    this.byRes.get(l.res)?.delete(l);
  }

  step(buf: RecordBuffer, i: number): void {
    const d = decodeRecord(buf.u8, buf.u32, buf.i32, i);
    if (d.rflags & RF_HISTORY) return;
    if (d.kind === Kind.MSG_SEND || d.kind === Kind.MSG_RECV || d.kind === Kind.BLOCKING) return;
    if (d.kind === Kind.LOSS) {
      this.lost = true;
      this.locks.clear();
      this.byRes.clear();
      this.inIncident.clear();
      this.leaving.clear();
      return;
    }
    if (d.kind === Kind.NODE_REMOVED) {
      // a survivor's recovery purged the departed node (aux): its locks are gone for good
      this.leaving.delete(`${d.aux}:${d.ls}`);
      const touched = new Set<string>();
      for (const l of [...this.locks.values()]) {
        if (l.node === d.aux && l.ls === d.ls) { this.remove(l); touched.add(l.res); }
      }
      for (const r of touched) this.settle(r);
      return;
    }
    const nlKey = `${d.node}:${d.ls}`;
    if (d.kind !== Kind.NODE_LEAVE_FAILED) this.leaving.delete(nlKey);
    if (d.kind === Kind.NODE_LEAVES_LS) {
      const gone: RefLock[] = [];
      for (const l of this.locks.values()) if (l.node === d.node && l.ls === d.ls) gone.push(l);
      const touched = new Set<string>();
      for (const l of gone) {
        this.remove(l);
        touched.add(l.res);
      }
      this.leaving.set(nlKey, gone);
      for (const r of touched) this.settle(r);
      return;
    }
    if (d.kind === Kind.NODE_LEAVE_FAILED) {
      const back = this.leaving.get(nlKey) ?? [];
      this.leaving.delete(nlKey);
      for (const l of back) this.add(l);
      for (const l of back) this.check(i, l, IV);
      return;
    }
    const key = `${d.node}:${d.ls}:${d.lkb}`;
    const res = resKey(d.ls, d.name);
    let l = this.locks.get(key);
    if (l && l.res !== res) this.problem(i, `lock ${key} changed resource`);
    switch (d.kind) {
      case Kind.REQUEST: {
        const convert = (d.flags & LKF.CONVERT) !== 0;
        if (!l) {
          if (convert) {
            this.problem(i, `conversion of unknown lock ${key}`);
            return;
          }
          l = { key, node: d.node, ls: d.ls, lkb: d.lkb, res, gr: IV, req: null, rel: 0, saved: [] };
          this.add(l);
        } else if (!convert) {
          this.problem(i, `new request on live lock ${key} (id reused too early)`);
        }
        const before = effective(l);
        l.saved.push({ gr: l.gr, req: l.req, rel: l.rel });
        // Choice: a REQUEST on a lock that still has a request or unlock pending
        // will be refused (-EBUSY); it must not change the effective mode.
        if (l.req === null && l.rel !== 1) l.req = { rq: d.mode, flags: d.flags, isNew: l.gr === IV };
        this.check(i, l, before);
        return;
      }
      case Kind.REQUEST_FAILED:
      case Kind.RELEASE_FAILED: {
        if (!l) return; // e.g. dlm_lock_end's -EAGAIN after the refused lock was freed
        const s = l.saved.pop();
        if (!s) return; // the failure of an operation already resolved by its completion
        const before = effective(l);
        l.gr = s.gr;
        l.req = s.req;
        l.rel = s.rel;
        this.check(i, l, before);
        return;
      }
      case Kind.RELEASE: {
        if (!l) {
          this.problem(i, `release of unknown lock ${key}`);
          return;
        }
        const before = effective(l);
        l.saved.push({ gr: l.gr, req: l.req, rel: l.rel });
        if (d.flags & LKF.CANCEL) {
          if (l.rel === 0) l.rel = 2;
        } else l.rel = 1;
        this.check(i, l, before);
        return;
      }
      case Kind.COMPLETION: {
        if (!l) {
          this.problem(i, `completion (status ${d.status}) of unknown lock ${key}`);
          return;
        }
        const before = effective(l);
        l.saved.length = 0;
        const st = d.status;
        if (st === STATUS.EUNLOCK) {
          this.remove(l);
          this.settle(res);
          return;
        }
        if (st === 0) {
          let gr = d.mode;
          if (gr === MODE_NONE) {
            if (!l.req) {
              this.problem(i, `grant without a pending request on ${key}`);
              return;
            }
            gr = d.sbFlags & SBF.ALTMODE ? (l.req.flags & LKF.ALTPR ? PR : CW) : l.req.rq;
          }
          l.gr = gr;
        } else if (st === STATUS.EAGAIN || st === STATUS.EDEADLK || st === STATUS.ECANCEL) {
          // Choice: the exact mode of dlm_add_cb, when given, is the lock's mode
          // after the operation for refusals and cancels too (a cancelled
          // conversion that CONVDEADLK demoted comes back at NL).
          if (d.mode !== MODE_NONE) l.gr = d.mode;
          else if (l.req && l.req.isNew) l.gr = IV;
          if (l.gr === IV) {
            this.remove(l);
            this.settle(res);
            return;
          }
        } else this.problem(i, `unexpected completion status ${st}`);
        l.req = null;
        if (l.rel === 2) l.rel = 0;
        this.check(i, l, before);
        return;
      }
      default:
        this.problem(i, `unexpected kind ${d.kind}`);
    }
  }

  /** After a change of l: check on a rise, then end the incident if no incompatible pair is left. */
  private check(i: number, l: RefLock, before: number): void {
    const now = effective(l);
    if (!leq(now, before)) {
      const others = this.byRes.get(l.res);
      const bad: { node: number; lkb: number; eff: number }[] = [];
      if (others) {
        for (const o of others) {
          if (o === l) continue;
          const e = effective(o);
          if (!compatible(now, e)) bad.push({ node: o.node, lkb: o.lkb, eff: e });
        }
      }
      if (bad.length > 0 && !this.inIncident.has(l.res)) {
        this.inIncident.add(l.res);
        this.violations.push({ index: i, res: l.res, trigger: { node: l.node, lkb: l.lkb, eff: now }, conflicting: bad });
        return;
      }
    }
    this.settle(l.res);
  }

  private settle(res: string): void {
    if (!this.inIncident.has(res)) return;
    const s = [...(this.byRes.get(res) ?? [])];
    for (let a = 0; a < s.length; a++) {
      for (let b = a + 1; b < s.length; b++) if (!compatible(effective(s[a]), effective(s[b]))) return;
    }
    this.inIncident.delete(res);
  }
}

// ------------------------------------------------------------------ tests

const FLAVORS: Flavor[] = ['mainline', 'namespace'];

describe('reference checker on correct executions', () => {
  it('~300 executions across 1..8 nodes and both flavors give zero violations', () => {
    let runs = 0;
    let records = 0;
    for (let i = 0; i < 300; i++) {
      const nodes = 1 + (i % 8);
      const flavor = FLAVORS[(i >> 3) % 2];
      const seed = (i * 2654435761) >>> 0;
      const events = 200 + ((i * 7919) % 2800);
      const lockspaces = 1 + (i % 3);
      const resources = 2 + (i % 9);
      const sim = simulate({ nodes, seed, events, flavor, lockspaces, resources });
      const c = new RefChecker().run(sim.records);
      const where = `nodes=${nodes} seed=${seed} events=${events} flavor=${flavor} ls=${lockspaces} res=${resources}`;
      expect(c.problems, where).toEqual([]);
      if (c.violations.length) {
        const v = c.violations[0];
        throw new Error(`false alarm (${where}) at record ${v.index} on ${v.res}: ${JSON.stringify(v)}`);
      }
      runs++;
      records += sim.records.count;
    }
    expect(runs).toBe(300);
    expect(records).toBeGreaterThan(300 * 200);
  });

  it('stays clean with collector loss (LOSS resets the state)', () => {
    for (let i = 0; i < 30; i++) {
      const sim = simulate({ nodes: 1 + (i % 8), seed: 900 + i, events: 1500, flavor: FLAVORS[i % 2], lossRate: 0.02 });
      const c = new RefChecker().run(sim.records);
      expect(c.violations, `seed ${900 + i}`).toEqual([]);
    }
  });
});

describe('reference checker on injected bugs', () => {
  for (const kind of BUG_KINDS) {
    it(`${kind}: exactly one violation, at the truth record, on the victim and the ignored holders`, () => {
      for (let i = 0; i < 40; i++) {
        const nodes = kind === 'ignore-remote-holder' ? 2 + (i % 7) : 1 + (i % 8);
        const flavor = FLAVORS[i % 2];
        const seed = 31337 + i * 101;
        const events = 300 + ((i * 577) % 2700);
        const where = `${kind} nodes=${nodes} seed=${seed} events=${events} flavor=${flavor}`;
        const sim = simulate({ nodes, seed, events, flavor, inject: kind });
        const t = sim.truth!;
        expect(t, where).toBeDefined();
        expect(t.kind).toBe(kind);

        // the truth record is the victim's grant COMPLETION (the non-history one)
        const b = sim.records;
        const d = decodeRecord(b.u8, b.u32, b.i32, t.recordIndex);
        expect(d.kind, where).toBe(Kind.COMPLETION);
        expect(d.status, where).toBe(0);
        expect(d.rflags & RF_HISTORY, where).toBe(0);
        expect([d.node, d.ls, d.lkb], where).toEqual([t.victim.node, t.ls, t.victim.lkb]);
        expect(resKey(d.ls, d.name)).toBe(resKey(t.ls, t.name));
        expect(d.ts).toBe(t.ts);
        if (flavor === 'mainline') expect(d.mode).toBe(t.victim.mode);
        else expect(d.mode).toBe(MODE_NONE);

        // independent bookkeeping just before the truth record: the ignored
        // holders hold modes incompatible with the victim's grant
        const before = new RefChecker().run(b, t.recordIndex);
        expect(before.violations, where).toEqual([]);
        expect(t.ignored.length, where).toBeGreaterThan(0);
        for (const h of t.ignored) {
          const l = before.locks.get(`${h.node}:${t.ls}:${h.lkb}`);
          expect(l, `${where}: ignored ${h.node}:${h.lkb} unknown`).toBeDefined();
          expect(effective(l!), where).toBe(h.effectiveMode);
          expect(compatible(h.effectiveMode, t.victim.mode), where).toBe(false);
          if (kind === 'ignore-remote-holder') expect(h.node).not.toBe(t.victim.node);
          else if (kind === 'ignore-local-holder') {
            expect(h.node).toBe(t.victim.node);
            expect(h.lkb).not.toBe(t.victim.lkb);
          } else expect(l!.req, where).not.toBeNull(); // mid up-conversion
        }

        const c = new RefChecker().run(b);
        expect(c.problems, where).toEqual([]);
        expect(c.violations.length, `${where}: ${JSON.stringify(c.violations.slice(0, 3))}`).toBe(1);
        const v = c.violations[0];
        expect(v.index, where).toBe(t.recordIndex);
        expect(v.res).toBe(resKey(t.ls, t.name));
        expect(v.trigger.node).toBe(t.victim.node);
        expect(v.trigger.lkb).toBe(t.victim.lkb);
        const conf = new Set(v.conflicting.map((x) => `${x.node}:${x.lkb}`));
        for (const h of t.ignored) expect(conf.has(`${h.node}:${h.lkb}`), where).toBe(true);
      }
    });
  }
});
