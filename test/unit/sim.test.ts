// The simulator: API, determinism, record streams of both hook flavors,
// messages, per-lock event order, lkb id reuse, hazards, collector loss.
import { describe, expect, it } from 'vitest';
import { BUG_KINDS, HAZARD_NAMES, simulate, type Flavor, type HazardName, type SimStats } from '../../src/sim';
import { RecordBuffer } from '../../src/record/buffer';
import { decodeRecord } from '../../src/record/decode';
import { Kind, LKF, MODE_NONE, NAME_MAX, RECORD_SIZE, RF_HISTORY, SBF, Src, STATUS } from '../../src/record/layout';

type Rec = ReturnType<typeof decodeRecord>;

function decodeAll(b: RecordBuffer): Rec[] {
  const out: Rec[] = [];
  for (let i = 0; i < b.count; i++) out.push(decodeRecord(b.u8, b.u32, b.i32, i));
  return out;
}

const FLAVORS: Flavor[] = ['mainline', 'namespace'];
const LOCK_KINDS = new Set<number>([Kind.REQUEST, Kind.REQUEST_FAILED, Kind.RELEASE, Kind.RELEASE_FAILED, Kind.COMPLETION, Kind.BLOCKING]);

describe('simulate(): API', () => {
  it('exports the bug kinds', () => {
    expect([...BUG_KINDS]).toEqual(['ignore-remote-holder', 'ignore-local-holder', 'ignore-converting-holder']);
  });

  it('rejects an unknown bug kind, listing the valid ones', () => {
    expect(() => simulate({ nodes: 2, seed: 1, events: 100, inject: 'grant-everything' })).toThrow(
      /unknown bug kind 'grant-everything'.*ignore-remote-holder, ignore-local-holder, ignore-converting-holder/,
    );
  });

  it('rejects bad options', () => {
    expect(() => simulate({ nodes: 0, seed: 1, events: 100 })).toThrow(/nodes/);
    expect(() => simulate({ nodes: 9, seed: 1, events: 100 })).toThrow(/nodes/);
    expect(() => simulate({ nodes: 2, seed: 1, events: -1 })).toThrow(/events/);
    expect(() => simulate({ nodes: 2, seed: 1, events: 10, hazards: { nope: true } as never })).toThrow(/unknown hazard 'nope'/);
    expect(() => simulate({ nodes: 1, seed: 1, events: 100, inject: 'ignore-remote-holder' })).toThrow(/nodes >= 2/);
    expect(() => simulate({ nodes: 2, seed: 1, events: 10, lossRate: 2 })).toThrow(/lossRate/);
  });

  it('stops near the target number of records and drains', () => {
    for (const flavor of FLAVORS) {
      const r = simulate({ nodes: 4, seed: 5, events: 2000, flavor });
      expect(r.records.count).toBeGreaterThanOrEqual(2000);
      expect(r.records.count).toBeLessThan(2000 * 1.5);
      expect(r.stats.records).toBe(r.records.count);
      expect(r.truth).toBeUndefined();
    }
    expect(simulate({ nodes: 1, seed: 5, events: 0 }).records.count).toBeGreaterThanOrEqual(0);
  });
});

describe('simulate(): determinism', () => {
  it('same options give byte-identical records, different seeds differ', () => {
    const cfgs = [
      { nodes: 3, seed: 42, events: 1500, flavor: 'mainline' as Flavor },
      { nodes: 8, seed: 7, events: 1500, flavor: 'namespace' as Flavor },
      { nodes: 4, seed: 9, events: 800, flavor: 'mainline' as Flavor, inject: 'ignore-converting-holder' },
      { nodes: 2, seed: 3, events: 1200, flavor: 'namespace' as Flavor, lossRate: 0.03 },
    ];
    for (const c of cfgs) {
      const a = simulate(c);
      const b = simulate(c);
      expect(Buffer.compare(Buffer.from(a.records.bytes()), Buffer.from(b.records.bytes()))).toBe(0);
      expect(a.stats).toEqual(b.stats);
      expect(a.truth).toEqual(b.truth);
      const other = simulate({ ...c, seed: c.seed + 1 });
      expect(Buffer.compare(Buffer.from(a.records.bytes()), Buffer.from(other.records.bytes()))).not.toBe(0);
    }
  });
});

describe('simulate(): record streams', () => {
  for (const flavor of FLAVORS) {
    it(`${flavor}: timestamps, names, kinds and hook sources`, () => {
      for (let seed = 1; seed <= 6; seed++) {
        const r = simulate({ nodes: 1 + seed, seed, events: 2500, flavor });
        const recs = decodeAll(r.records);
        let lastTs = 0;
        const kinds = new Set<number>();
        for (const d of recs) {
          expect(d.ts).toBeGreaterThanOrEqual(lastTs);
          lastTs = d.ts;
          expect(d.name.length).toBeLessThanOrEqual(NAME_MAX);
          kinds.add(d.kind);
          if (LOCK_KINDS.has(d.kind)) {
            expect(d.name.length).toBeGreaterThan(0);
            expect(d.lkb).toBeGreaterThan(0);
            expect(d.pid).toBeGreaterThan(0);
          }
          expect(d.node).toBeGreaterThanOrEqual(1);
          expect(d.node).toBeLessThanOrEqual(1 + seed);
          const hist = (d.rflags & RF_HISTORY) !== 0;
          if (flavor === 'mainline') {
            switch (d.kind) {
              case Kind.REQUEST: expect(d.src).toBe(Src.LOCK_START); break;
              case Kind.REQUEST_FAILED: expect(d.src).toBe(Src.LOCK_END); expect(d.error).not.toBe(0); break;
              case Kind.RELEASE: expect(d.src).toBe(Src.UNLOCK_START); break;
              case Kind.RELEASE_FAILED: expect(d.src).toBe(Src.UNLOCK_END); expect(d.error).not.toBe(0); break;
              case Kind.COMPLETION:
                if (hist) {
                  expect(d.src).toBe(Src.AST);
                  expect(d.mode).toBe(MODE_NONE);
                } else {
                  expect(d.src).toBe(Src.ADD_CB);
                  expect(d.mode).not.toBe(MODE_NONE); // the exact mode
                  expect(d.mode).toBeGreaterThanOrEqual(-1);
                }
                break;
              case Kind.BLOCKING: expect(d.src).toBe(hist ? Src.BAST : Src.ADD_CB); expect(d.mode).toBeGreaterThanOrEqual(0); break;
              case Kind.NODE_LEAVES_LS: expect(d.src).toBe(Src.RELEASE_LS); break;
              case Kind.NODE_LEAVE_FAILED: expect(d.src).toBe(Src.RELEASE_LS_RET); expect(d.error).toBe(-16); break;
              case Kind.MSG_SEND: expect(d.src).toBe(Src.SEND_MESSAGE); break;
              case Kind.MSG_RECV: expect(d.src).toBe(Src.RECV_MESSAGE); break;
              case Kind.NODE_REMOVED: expect(d.src).toBe(Src.RECOVER_PURGE); expect(d.aux).not.toBe(d.node); break;
              default: throw new Error(`unexpected kind ${d.kind}`);
            }
            if (hist) expect([Kind.COMPLETION, Kind.BLOCKING]).toContain(d.kind);
          } else {
            expect(hist).toBe(false);
            switch (d.kind) {
              case Kind.REQUEST: expect(d.src).toBe(Src.LOCK_VALIDATED); break;
              case Kind.RELEASE: expect(d.src).toBe(Src.UNLOCK_VALIDATED); break;
              case Kind.COMPLETION: expect(d.src).toBe(Src.AST); expect(d.mode).toBe(MODE_NONE); break;
              case Kind.BLOCKING: expect(d.src).toBe(Src.BAST); expect(d.mode).toBeGreaterThanOrEqual(0); break;
              case Kind.NODE_LEAVES_LS: expect(d.src).toBe(Src.RELEASE_LS); break;
              case Kind.NODE_REMOVED: expect(d.src).toBe(Src.RECOVER_PURGE); expect(d.aux).not.toBe(d.node); break;
              default: throw new Error(`namespace flavor emitted kind ${d.kind}`);
            }
          }
        }
        for (const k of [Kind.REQUEST, Kind.RELEASE, Kind.COMPLETION, Kind.BLOCKING]) expect(kinds.has(k)).toBe(true);
        if (flavor === 'mainline') for (const k of [Kind.REQUEST_FAILED, Kind.MSG_SEND, Kind.MSG_RECV]) expect(kinds.has(k)).toBe(true);
      }
    });
  }

  it('namespace: ALTMODE grants are visible through sb_flags (mode unknown)', () => {
    let alt = 0;
    for (let seed = 1; seed <= 8; seed++) {
      for (const d of decodeAll(simulate({ nodes: 3, seed, events: 2000, flavor: 'namespace' }).records)) {
        if (d.kind === Kind.COMPLETION && d.status === 0 && d.sbFlags & SBF.ALTMODE) alt++;
      }
    }
    expect(alt).toBeGreaterThan(0);
  });

  it('mainline messages: per-pair sequence from 1, FIFO per pair, every receive matches a send', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const recs = decodeAll(simulate({ nodes: 5, seed, events: 3000 }).records);
      const lastSend = new Map<string, number>();
      const lastRecv = new Map<string, number>();
      const sent = new Map<string, Rec>();
      let sends = 0;
      let recvs = 0;
      for (const d of recs) {
        if (d.kind !== Kind.MSG_SEND && d.kind !== Kind.MSG_RECV) continue;
        const pair = `${d.msgSrc}>${d.msgDst}`;
        expect(d.msgType).toBeGreaterThanOrEqual(1);
        expect(d.msgType).toBeLessThanOrEqual(14);
        expect(d.msgSrc).not.toBe(d.msgDst);
        if (d.kind === Kind.MSG_SEND) {
          sends++;
          expect(d.node).toBe(d.msgSrc);
          expect(d.msgSeq).toBe((lastSend.get(pair) ?? 0) + 1);
          lastSend.set(pair, d.msgSeq);
          expect(d.name.length).toBeGreaterThan(0);
          sent.set(`${pair}#${d.msgSeq}`, d);
        } else {
          recvs++;
          expect(d.node).toBe(d.msgDst);
          expect(d.msgSeq).toBe((lastRecv.get(pair) ?? 0) + 1); // reliable and in order
          lastRecv.set(pair, d.msgSeq);
          const s = sent.get(`${pair}#${d.msgSeq}`);
          expect(s).toBeDefined();
          expect([d.msgType, d.lkb, d.aux, d.status, d.error, d.mode, d.grmode]).toEqual([s!.msgType, s!.lkb, s!.aux, s!.status, s!.error, s!.mode, s!.grmode]);
          if (d.msgType === 1) expect(Buffer.from(d.name)).toEqual(Buffer.from(s!.name));
          else expect(d.name.length).toBe(0);
        }
      }
      expect(sends).toBeGreaterThan(100);
      expect(recvs).toBeLessThanOrEqual(sends);
      expect(recvs).toBeGreaterThan(sends - 20); // only those in flight at the very end are missing
    }
  });

  it('messages: false and the namespace flavor emit no message records', () => {
    for (const o of [{ messages: false }, { flavor: 'namespace' as Flavor }]) {
      const recs = decodeAll(simulate({ nodes: 4, seed: 2, events: 1500, ...o }).records);
      expect(recs.some((d) => d.kind === Kind.MSG_SEND || d.kind === Kind.MSG_RECV)).toBe(false);
    }
  });

  it('per-lock order: no REQUEST while an operation is in flight unless REQUEST_FAILED follows', () => {
    for (const flavor of FLAVORS) {
      let busy = 0;
      for (let seed = 1; seed <= 8; seed++) {
        const recs = decodeAll(simulate({ nodes: 1 + (seed % 8), seed, events: 2500, flavor }).records);
        const inFlight = new Map<string, boolean>();
        const mustFail = new Set<string>();
        const known = new Set<string>();
        const granted = new Set<string>();
        let stash: [string, boolean][] = [];
        for (const d of recs) {
          if (d.kind === Kind.NODE_LEAVES_LS) {
            stash = [];
            for (const k of [...known]) {
              if (k.startsWith(`${d.node}:${d.ls}:`)) {
                stash.push([k, granted.has(k)]);
                known.delete(k);
                granted.delete(k);
                inFlight.delete(k);
              }
            }
            continue;
          }
          if (d.kind === Kind.NODE_LEAVE_FAILED) {
            for (const [k, g] of stash) {
              known.add(k);
              if (g) granted.add(k);
            }
            continue;
          }
          if (!LOCK_KINDS.has(d.kind) || d.rflags & RF_HISTORY || d.kind === Kind.BLOCKING) continue;
          const key = `${d.node}:${d.ls}:${d.lkb}`;
          if (mustFail.has(key)) {
            expect(d.kind, key).toBe(Kind.REQUEST_FAILED);
            mustFail.delete(key);
            busy++;
            continue;
          }
          switch (d.kind) {
            case Kind.REQUEST:
              if (!(d.flags & LKF.CONVERT)) expect(known.has(key), `${key}: new lock on a live id`).toBe(false);
              else expect(known.has(key), `${key}: conversion of unknown lock`).toBe(true);
              known.add(key);
              if (inFlight.get(key)) mustFail.add(key);
              else inFlight.set(key, true);
              break;
            case Kind.REQUEST_FAILED:
              inFlight.set(key, false);
              break;
            case Kind.RELEASE:
            case Kind.RELEASE_FAILED:
              expect(known.has(key), `${key}: release of unknown lock`).toBe(true);
              break;
            case Kind.COMPLETION:
              expect(known.has(key), `${key}: completion of unknown lock`).toBe(true);
              inFlight.set(key, false);
              if (d.status === 0) granted.add(key);
              else if (d.status === STATUS.EUNLOCK || d.mode === -1 || (d.mode === MODE_NONE && !granted.has(key))) {
                known.delete(key); // unlocked, or a new request refused/cancelled: the lock is gone
                granted.delete(key);
              }
              break;
          }
        }
      }
      if (flavor === 'mainline') expect(busy).toBeGreaterThan(0);
      else expect(busy).toBe(0);
    }
  });

  it('lkb ids are reused after the lock is gone (lowest free id)', () => {
    let reused = 0;
    let stats = 0;
    for (const flavor of FLAVORS) {
      const r = simulate({ nodes: 3, seed: 11, events: 3000, flavor });
      stats += r.stats.lkbReuses;
      const ended = new Set<string>();
      for (const d of decodeAll(r.records)) {
        if (d.rflags & RF_HISTORY) continue;
        const key = `${d.node}:${d.ls}:${d.lkb}`;
        if (d.kind === Kind.COMPLETION && d.status === STATUS.EUNLOCK) ended.add(key);
        if (d.kind === Kind.REQUEST && !(d.flags & LKF.CONVERT) && ended.has(key)) {
          reused++;
          ended.delete(key);
        }
      }
    }
    expect(stats).toBeGreaterThan(0);
    expect(reused).toBeGreaterThan(0);
  });
});

// which statistic shows that a hazard happened
const EVIDENCE: Record<HazardName, (keyof SimStats)[]> = {
  reorder: ['reorders'],
  lateCallbacks: ['lateCallbackStalls'],
  noqueue: ['refusals'],
  altmode: ['altGrants'],
  quecvt: ['quecvtConverts'],
  convdeadlk: ['demotions'],
  upConvert: ['upConverts', 'deadlocks'],
  downConvert: ['downConverts'],
  middleConvert: ['middleConverts'],
  cancel: ['cancels', 'cancelRaces'],
  overlapUnlock: ['overlapUnlocks'],
  busy: ['busyRefusals'],
  sameNode: ['sameNodeShares'],
  leave: ['leaves', 'recoveries', 'purged', 'remasters', 'rejoins', 'resends'],
  leaveRefused: ['leaveRefused'],
  lockEndError: ['lockEndErrors'],
  cancelDemoted: ['demotedCancels'],
};
const MAINLINE_ONLY: HazardName[] = ['leaveRefused', 'lockEndError', 'cancelDemoted'];

function sumStats(flavor: Flavor, runs: number, hazards?: Partial<Record<HazardName, boolean>>): SimStats {
  const sum = {} as Record<string, number>;
  for (let i = 0; i < runs; i++) {
    const r = simulate({ nodes: 2 + (i % 7), seed: 100 + i, events: 2500, flavor, hazards });
    for (const [k, v] of Object.entries(r.stats)) sum[k] = (sum[k] ?? 0) + v;
  }
  return sum as unknown as SimStats;
}

describe('simulate(): hazards', () => {
  it('every hazard actually occurs across a set of seeds', () => {
    const main = sumStats('mainline', 48);
    const ns = sumStats('namespace', 16);
    for (const h of HAZARD_NAMES) {
      for (const s of EVIDENCE[h]) {
        expect(main[s], `mainline: ${h} (${s})`).toBeGreaterThan(0);
        if (!MAINLINE_ONLY.includes(h)) expect(ns[s], `namespace: ${h} (${s})`).toBeGreaterThan(0);
      }
    }
    expect(main.pendingDemotions + ns.pendingDemotions).toBe(0);
  });

  it('a hazard turned off does not occur', () => {
    const off: HazardName[] = ['reorder', 'lateCallbacks', 'noqueue', 'altmode', 'quecvt', 'convdeadlk', 'upConvert',
      'downConvert', 'middleConvert', 'overlapUnlock', 'busy', 'sameNode', 'leave', 'leaveRefused', 'lockEndError', 'cancelDemoted'];
    for (const h of off) {
      const s = sumStats('mainline', 6, { [h]: false });
      expect(s[EVIDENCE[h][0]], h).toBe(0);
    }
  });
});

describe('simulate(): collector loss', () => {
  it('drops records into LOSS records (aux = count) and leaves the rest intact', () => {
    for (const flavor of FLAVORS) {
      const base = simulate({ nodes: 3, seed: 77, events: 2000, flavor });
      const lossy = simulate({ nodes: 3, seed: 77, events: 2000, flavor, lossRate: 0.05 });
      let dropped = 0;
      let losses = 0;
      let j = 0;
      const bb = base.records.bytes();
      const lb = lossy.records.bytes();
      for (let i = 0; i < lossy.records.count; i++) {
        const d = decodeRecord(lossy.records.u8, lossy.records.u32, lossy.records.i32, i);
        if (d.kind === Kind.LOSS) {
          expect(d.aux).toBeGreaterThan(0);
          dropped += d.aux;
          losses++;
          j += d.aux;
          continue;
        }
        // every kept record is the base run's record, in order
        expect(Buffer.compare(Buffer.from(lb.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE)), Buffer.from(bb.subarray(j * RECORD_SIZE, (j + 1) * RECORD_SIZE)))).toBe(0);
        j++;
      }
      expect(j).toBe(base.records.count);
      expect(dropped).toBe(lossy.stats.lossDropped);
      expect(losses).toBe(lossy.stats.lossRecords);
      expect(dropped).toBeGreaterThan(base.records.count * 0.02);
    }
  });

  it('never drops before the injected bug is recorded', () => {
    const r = simulate({ nodes: 4, seed: 5, events: 2000, inject: 'ignore-local-holder', lossRate: 0.2 });
    const t = r.truth!;
    for (let i = 0; i <= t.recordIndex; i++) expect(decodeRecord(r.records.u8, r.records.u32, r.records.i32, i).kind).not.toBe(Kind.LOSS);
    expect(r.stats.lossDropped).toBeGreaterThan(0);
  });
});
