// Simulated DLM users: tasks (pids) on every node that lock, convert and
// unlock resources the way real users do (one operation in flight per lock,
// reacting to blocking callbacks), sometimes cancelling or unlocking while a
// request is in flight, sometimes misbehaving (-EBUSY). Also drives nodes
// leaving and rejoining lockspaces, the end of the run, and the scripted
// scenario that guarantees the injected bug gets placed.
import { LKF, NAME_MAX, SBF } from '../record/layout';
import {
  EBUSY, Engine, type CbEntry, type Lkb, type LsState, type NodeLs, type Res, ST_CONVERT, ST_WAITING,
  M_CONVERT, M_REQUEST, M_UNLOCK,
} from './engine';
import { ALL_MODES, CR, CW, EX, IV, NL, PR, PW, compat, isDown, isMiddle, quecvtOk } from './modes';
import { Rng } from './rng';
import type { HazardName } from './types';

const US = 1000;

interface Task {
  pid: number;
  node: number;
  inUse: Set<Res>;
}

const enum Role { NONE, H, V, X }

class Slot {
  task: Task;
  nls: NodeLs;
  lkb: Lkb | null = null;
  gen = 0;
  opGen = 0;
  overlapDone = false;
  bast = IV;
  idleScheduled = false;
  /** When the current operation was issued. */
  opStart = 0;
  /** The current operation's completion callback was delivered (what the application knows). */
  opDone = false;
  role: Role;

  constructor(task: Task, nls: NodeLs, role: Role) {
    this.task = task;
    this.nls = nls;
    this.role = role;
  }
}

type Poke = 'cancel' | 'unlock' | 'busyConvert' | 'busyUnlock';

const MODE_WEIGHTS = [8, 14, 12, 30, 10, 26]; // NL CR CW PR PW EX
/** Resource popularity: a few hot resources, a long tail. */
const HOT: readonly number[] = Array.from({ length: 72 }, (_, i) => 1 / Math.pow(1 + i, 0.7));

export interface WorkloadConfig {
  seed: number;
  events: number;
  lockspaces: number;
  resources: number;
  inject?: string;
  hazards: Record<HazardName, boolean>;
}

export class Workload {
  sim: Engine;
  rng: Rng;
  cfg: WorkloadConfig;
  hz: Record<HazardName, boolean>;
  slots: Slot[] = [];
  slotsByNls = new Map<NodeLs, Slot[]>();
  stop = false;
  private nextLeaveAt: number;
  private leaving: NodeLs | null = null;
  private tickOn = false;
  private armAt = 0;
  private scriptFirst = false;
  private scenario: Scenario | null = null;
  private bugRes: Res | null = null;

  constructor(sim: Engine, cfg: WorkloadConfig) {
    this.sim = sim;
    this.cfg = cfg;
    this.hz = cfg.hazards;
    this.rng = new Rng(cfg.seed, 2);
    this.nextLeaveAt = this.rng.exp(Math.max(300, cfg.events / 5));
  }

  setup(): void {
    const sim = this.sim;
    const rng = this.rng;
    const nodes = sim.cfg.nodes;
    const usedIds = new Set<number>();
    for (let i = 0; i < this.cfg.lockspaces; i++) {
      let id = fnv1a(`dlm-rv-sim-ls${i}`);
      while (usedIds.has(id) || id === 0) id = (id + 0x9e3779b9) >>> 0;
      usedIds.add(id);
      const ls = sim.addLockspace(id);
      const seen = new Set<string>();
      for (let j = 0; j < this.cfg.resources; j++) {
        let name = makeName(rng, i, j);
        while (seen.has(key(name))) name = makeName(rng, i, j + 1000 + rng.int(1000));
        seen.add(key(name));
        sim.addResource(ls, name, false);
      }
      if (i === 0 && this.cfg.inject) this.bugRes = sim.addResource(ls, ascii(`rv-bug-${this.cfg.inject}`), true);
    }
    const tasksPerNode = nodes <= 2 ? 3 : 2;
    for (let n = 1; n <= nodes; n++) {
      for (let k = 0; k < tasksPerNode; k++) {
        const task: Task = { pid: 1000 * n + 100 + k, node: n, inUse: new Set() };
        for (let s = 0; s < 2; s++) {
          const ls = sim.lss[(k + s + n) % sim.lss.length];
          this.addSlot(new Slot(task, sim.nodes[n].nls[ls.idx], Role.NONE));
        }
      }
    }
    sim.hooks = {
      onCallback: (l, e) => this.onCallback(l, e),
      wake: (l) => this.wake(l),
      onVanish: (l) => this.onVanish(l),
      onResume: (ls) => this.onResume(ls),
      onUnfreeze: () => this.onUnfreeze(),
    };
    if (this.cfg.inject) {
      sim.armBug(this.cfg.inject);
      this.armAt = Math.floor(this.cfg.events * (0.15 + 0.55 * rng.float()));
      this.scriptFirst = rng.chance(0.4);
    }
  }

  private addSlot(s: Slot): void {
    this.slots.push(s);
    let a = this.slotsByNls.get(s.nls);
    if (!a) this.slotsByNls.set(s.nls, (a = []));
    a.push(s);
  }

  start(): void {
    for (const s of this.slots) this.schedule(s, this.rng.exp(20 * US));
    this.ensureTick();
  }

  // ------------------------------------------------------------ scheduling

  private schedule(s: Slot, delay: number): void {
    const g = ++s.gen;
    this.sim.at(delay, () => {
      if (s.gen === g) this.step(s);
    });
  }

  private poke(s: Slot, kind: Poke, delay: number): void {
    const g = s.opGen;
    this.sim.at(delay, () => this.onPoke(s, kind, g));
  }

  private ensureTick(): void {
    if (this.tickOn) return;
    this.tickOn = true;
    this.sim.at(100 * US, () => this.tick());
  }

  // ---------------------------------------------------------------- hooks

  private onCallback(l: Lkb, e: CbEntry): void {
    const s = l.owner as Slot | null;
    if (!s || s.lkb !== l) return;
    if (e.cast) s.opDone = true;
    else {
      if (!l.dead && l.grmode !== IV && !compat(l.grmode, e.mode)) {
        s.bast = e.mode;
        if (this.sim.idle(l) && s.role === Role.NONE) {
          s.idleScheduled = true;
          this.schedule(s, 5 * US + this.rng.exp(20 * US));
          return;
        }
      }
    }
    this.wake(l);
  }

  private wake(l: Lkb): void {
    const s = l.owner as Slot | null;
    if (!s || s.lkb !== l || s.idleScheduled) return;
    if (l.dead ? l.cbQueued === 0 : this.sim.idle(l)) {
      s.idleScheduled = true;
      if (s.role !== Role.NONE) this.sim.at(1 * US, () => this.scenario?.poll());
      else this.schedule(s, l.dead ? this.rng.exp(50 * US) : this.rng.exp(120 * US));
    }
  }

  private onVanish(l: Lkb): void {
    const s = l.owner as Slot | null;
    if (s && s.lkb === l) this.dropLock(s);
  }

  private onResume(ls: LsState): void {
    for (const s of this.slots) if (s.nls.ls === ls) this.schedule(s, this.rng.exp(30 * US));
  }

  private onUnfreeze(): void {
    for (const s of this.slots) {
      if (s.lkb && s.lkb.release && !s.lkb.dead) this.releaseNow(s);
      else if (s.role === Role.NONE && (!s.lkb || this.sim.idle(s.lkb))) this.schedule(s, this.rng.exp(40 * US));
    }
    if (this.scenario) this.sim.at(1 * US, () => this.scenario?.poll());
  }

  /** An ignored holder after the injected bug: unlock it, even mid-operation. */
  private releaseNow(s: Slot): void {
    const l = s.lkb;
    if (!l || l.dead || !l.nls.member || l.res.ls.recovering) return;
    if (this.sim.idle(l)) this.doUnlock(s, l);
    else if (!l.ovUnlock && l.waitType !== M_UNLOCK && !(l.exflags & LKF.FORCEUNLOCK)) {
      this.sim.unlock(l, LKF.FORCEUNLOCK);
      s.overlapDone = true;
    }
  }

  private dropLock(s: Slot): void {
    if (s.lkb) s.task.inUse.delete(s.lkb.res);
    s.lkb = null;
    s.bast = IV;
  }

  // ------------------------------------------------------------- the task

  private step(s: Slot): void {
    if (s.role !== Role.NONE) return;
    s.idleScheduled = false;
    const sim = this.sim;
    const l = s.lkb;
    if (l) {
      if (l.dead) {
        if (l.cbQueued > 0) return;
        this.dropLock(s);
      } else if (!sim.idle(l)) return;
    }
    const nls = s.nls;
    if (!nls.member || nls.ls.recovering || nls.draining || nls.released) return;
    if (s.lkb && s.lkb.frozen) return;
    if (s.lkb && s.lkb.release) {
      this.releaseNow(s);
      return;
    }
    if (this.stop) {
      this.endStep(s);
      return;
    }
    if (!s.lkb) this.newLock(s);
    else this.holding(s);
  }

  private opIssued(s: Slot, waits: boolean): void {
    s.opGen++;
    s.opStart = this.sim.now;
    s.opDone = false;
    s.overlapDone = false;
    s.idleScheduled = false;
    if (!waits || s.role !== Role.NONE) return;
    const rng = this.rng;
    const hz = this.hz;
    const l = s.lkb;
    if (hz.cancel && l && l.exflags & LKF.CONVDEADLK && this.sim.mainline && hz.cancelDemoted && rng.chance(0.4)) {
      this.poke(s, 'cancel', rng.exp(150 * US)); // late enough that a demotion may have happened
    } else if (hz.cancel && rng.chance(0.1)) this.poke(s, 'cancel', rng.exp(60 * US));
    else if (hz.overlapUnlock && rng.chance(0.05)) this.poke(s, 'unlock', rng.exp(60 * US));
    if (hz.busy && rng.chance(0.04)) this.poke(s, rng.chance(0.5) ? 'busyConvert' : 'busyUnlock', rng.exp(25 * US));
  }

  /**
   * Users give up on requests that wait too long (4 ms; 300 us once the run is
   * winding down): this also resolves waits that nothing else would end.
   */
  private timeouts(): void {
    const limit = this.stop ? 300 * US : 4000 * US;
    for (const s of this.slots) {
      const l = s.lkb;
      if (s.role !== Role.NONE || !l || l.dead || s.opDone || s.overlapDone || l.frozen || l.release) continue;
      if (this.sim.now - s.opStart < limit || this.sim.idle(l) || !waiting(l) || !this.cancellable(l)) continue;
      if (!l.nls.member || l.res.ls.recovering) continue;
      this.sim.unlock(l, LKF.CANCEL);
      s.overlapDone = true;
      this.wake(l);
    }
  }

  private pickRes(s: Slot): Res | null {
    const all = s.nls.ls.res;
    const w: number[] = [];
    const cand: Res[] = [];
    for (let i = 0; i < all.length; i++) {
      const r = all[i];
      if (r.dedicated || s.task.inUse.has(r)) continue;
      if (!this.hz.sameNode && r.plocks.some((o) => o.node === s.task.node)) continue;
      cand.push(r);
      w.push(HOT[i] ?? 0.05);
    }
    if (cand.length === 0) return null;
    return cand[this.rng.weighted(w)];
  }

  private newLock(s: Slot): void {
    const rng = this.rng;
    const r = this.pickRes(s);
    if (!r) {
      this.schedule(s, rng.exp(80 * US));
      return;
    }
    const mode = ALL_MODES[rng.weighted(MODE_WEIGHTS)];
    let flags = rng.chance(0.3) ? LKF.VALBLK : 0;
    if (this.hz.noqueue && rng.chance(0.12)) flags |= LKF.NOQUEUE;
    if (this.hz.altmode && rng.chance(0.2)) {
      if (mode === PR) flags |= LKF.ALTCW;
      else if (mode === CW) flags |= LKF.ALTPR;
    }
    s.task.inUse.add(r);
    const l = this.sim.lockNew(s.nls, r, mode, flags, s.task.pid, s);
    s.lkb = l;
    this.opIssued(s, true);
    this.wake(l);
  }

  private holding(s: Slot): void {
    const rng = this.rng;
    const hz = this.hz;
    const l = s.lkb!;
    const gr = l.grmode;
    if (s.bast !== IV && !compat(gr, s.bast)) {
      const b = s.bast;
      s.bast = IV;
      if (hz.downConvert && gr > NL && rng.chance(0.6)) {
        const t = compat(CR, b) && isDown(gr, CR) && rng.chance(0.5) ? CR : NL;
        this.doConvert(s, l, t, 0);
      } else this.doUnlock(s, l);
      return;
    }
    s.bast = IV;
    if (rng.chance(0.35)) {
      this.doUnlock(s, l);
      return;
    }
    const opts: number[] = [];
    for (const t of ALL_MODES) {
      if (t === gr) continue;
      if (isMiddle(gr, t)) {
        if (hz.middleConvert) opts.push(t);
      } else if (t < gr) {
        if (hz.downConvert) opts.push(t);
      } else if (hz.upConvert) opts.push(t);
    }
    if (opts.length === 0) {
      this.doUnlock(s, l);
      return;
    }
    // shared holders often want more (PR -> EX): the pattern of conversion deadlocks
    const ups = opts.filter((t) => t > gr && !isMiddle(gr, t));
    const t = ups.length > 0 && gr <= PR && rng.chance(0.5) ? (ups.includes(EX) && rng.chance(0.7) ? EX : rng.pick(ups)) : rng.pick(opts);
    let flags = rng.chance(0.25) ? LKF.VALBLK : 0;
    if (!isDown(gr, t)) {
      if (hz.convdeadlk && rng.chance(t === EX && gr >= CR ? 0.3 : 0.15)) flags |= LKF.CONVDEADLK;
      else if (hz.noqueue && rng.chance(0.12)) flags |= LKF.NOQUEUE;
      if (hz.quecvt && quecvtOk(gr, t) && rng.chance(0.2)) flags |= LKF.QUECVT;
    }
    this.doConvert(s, l, t, flags);
  }

  private doConvert(s: Slot, l: Lkb, mode: number, flags: number): void {
    const gr = l.grmode;
    this.sim.convert(l, mode, flags);
    this.opIssued(s, !isDown(gr, mode));
    this.wake(l);
  }

  private doUnlock(s: Slot, l: Lkb): void {
    this.sim.unlock(l, 0);
    this.opIssued(s, false);
    this.wake(l);
  }

  private onPoke(s: Slot, kind: Poke, g: number): void {
    if (s.opGen !== g || s.opDone) return;
    const sim = this.sim;
    const l = s.lkb;
    if (!l || l.dead || l.frozen || l.release || sim.idle(l)) return;
    const nls = s.nls;
    if (!nls.member || nls.ls.recovering) return;
    switch (kind) {
      case 'cancel': {
        if (s.overlapDone || !this.cancellable(l)) return;
        sim.unlock(l, LKF.CANCEL);
        s.overlapDone = true;
        break;
      }
      case 'unlock':
        if (s.overlapDone) return;
        sim.unlock(l, LKF.FORCEUNLOCK);
        s.overlapDone = true;
        break;
      case 'busyConvert': {
        const m = l.grmode === EX ? NL : EX;
        if (sim.convertRefusal(l, m, 0) === EBUSY) sim.convert(l, m, 0);
        break;
      }
      case 'busyUnlock':
        if (sim.unlockBusy(l)) sim.unlock(l, 0);
        break;
    }
    this.wake(l);
  }

  // ------------------------------------------------------- end of the run

  private doStop(): void {
    this.stop = true;
    for (const a of this.slotsByNls.keys()) a.leaveAtEnd = this.hz.leave && a.member && this.rng.chance(0.35);
    for (const s of this.slots) if (s.role === Role.NONE) this.schedule(s, this.rng.exp(30 * US));
  }

  private endStep(s: Slot): void {
    const l = s.lkb;
    if (!l || !this.sim.idle(l)) return;
    if (s.nls.leaveAtEnd) return; // held until the node leaves the lockspace
    this.doUnlock(s, l);
  }

  // ------------------------------------------------------------ lockspaces

  private leavesFrozen(): boolean {
    const bug = this.sim.bug;
    return (bug !== null && (bug.pending || bug.repairing)) || (this.scenario !== null && !this.scenario.done);
  }

  private startLeave(): void {
    const cand: NodeLs[] = [];
    for (const a of this.slotsByNls.keys()) if (a.member && !a.draining && !a.ls.recovering) cand.push(a);
    if (cand.length === 0) return;
    const nls = this.rng.pick(cand);
    nls.draining = true;
    this.leaving = nls;
    for (const s of this.slotsByNls.get(nls) ?? []) {
      const l = s.lkb;
      if (s.role !== Role.NONE || !l || l.dead || s.opDone || this.sim.idle(l) || s.overlapDone || !waiting(l) || !this.cancellable(l)) continue;
      this.sim.unlock(l, LKF.CANCEL);
      s.overlapDone = true;
      this.wake(l);
    }
  }

  /**
   * Cancelling a CONVDEADLK conversion that the master demoted to NL returns
   * the lock at NL; only the exact-mode hook (mainline dlm_add_cb) says so. In
   * the namespace flavor (or with cancelDemoted off) such conversions are only
   * cancelled once the node knows they were not demoted.
   */
  private cancellable(l: Lkb): boolean {
    if (!(l.exflags & LKF.CONVDEADLK)) return true;
    if (this.sim.mainline && this.hz.cancelDemoted) return true;
    return l.waitType === 0 && l.status === ST_CONVERT && !(l.sbflags & SBF.DEMOTED);
  }

  /**
   * A draining node keeps its granted locks; one of its own waiting requests
   * that cannot be cancelled would then wait forever behind them: release
   * those holders instead.
   */
  private unblockDrain(nls: NodeLs): void {
    const slots = this.slotsByNls.get(nls) ?? [];
    for (const w of slots) {
      const wl = w.lkb;
      if (w.role !== Role.NONE || !wl || wl.dead || this.sim.idle(wl) || !waiting(wl)) continue;
      for (const h of slots) {
        const hl = h.lkb;
        if (h === w || h.role !== Role.NONE || !hl || hl.res !== wl.res || hl.frozen || !this.sim.idle(hl)) continue;
        this.doUnlock(h, hl);
      }
    }
  }

  private quiescent(nls: NodeLs): boolean {
    if (nls.ls.recovering) return false;
    for (const s of this.slotsByNls.get(nls) ?? []) {
      const l = s.lkb;
      if (!l) continue;
      if (l.dead ? l.cbQueued > 0 : !this.sim.idle(l)) return false;
    }
    return true;
  }

  private release(nls: NodeLs, force: number, atEnd: boolean): void {
    const sim = this.sim;
    const ok = sim.releaseLockspace(nls, force);
    nls.draining = false;
    if (this.leaving === nls) this.leaving = null;
    if (!ok) {
      for (const s of this.slotsByNls.get(nls) ?? []) this.schedule(s, this.rng.exp(30 * US));
      return;
    }
    if (atEnd) {
      nls.released = true;
      return;
    }
    sim.at(1000 * US + this.rng.exp(2500 * US), () => sim.rejoin(nls));
  }

  private chooseForce(nls: NodeLs): number {
    if (this.sim.mainline && this.hz.leaveRefused && this.rng.chance(0.45)) {
      const f = this.rng.chance(0.5) ? 0 : 1;
      if (this.sim.leaveBusy(nls, f) || this.rng.chance(0.3)) return f;
    }
    return this.rng.chance(0.8) ? 2 : 3;
  }

  // ------------------------------------------------------------ housekeeping

  private tick(): void {
    this.tickOn = false;
    const sim = this.sim;
    const rec = sim.records;
    if (!this.stop && rec >= this.cfg.events) this.doStop();
    const bug = sim.bug;
    if (bug !== null) {
      if (!bug.armed && (rec >= this.armAt || this.stop)) {
        bug.armed = true;
        if (this.scriptFirst) this.startScenario();
      }
      if (!bug.fired && this.stop) this.startScenario();
      if (this.scenario && !this.scenario.done) this.scenario.poll();
    }
    this.timeouts();
    if (this.hz.leave && !this.stop && !this.leaving && rec >= this.nextLeaveAt && !this.leavesFrozen()) {
      this.startLeave();
      this.nextLeaveAt = rec + this.rng.exp(Math.max(400, this.cfg.events / 6));
    }
    if (this.leaving && !this.leavesFrozen()) {
      const nls = this.leaving;
      if (this.quiescent(nls)) this.release(nls, this.chooseForce(nls), false);
      else this.unblockDrain(nls);
    }
    let more = !this.stop || this.leaving !== null;
    if (this.stop) {
      for (const a of this.slotsByNls.keys()) {
        if (!a.leaveAtEnd || a.released || !a.member) continue;
        // end-of-run releases wait for the injected bug to be placed
        if (this.leavesFrozen() || (bug !== null && !bug.fired) || a.ls.recovering || !this.quiescent(a)) {
          if (!a.ls.recovering) this.unblockDrain(a);
          more = true;
          continue;
        }
        // end of the run: no new work, the node leaves while still holding its locks
        this.release(a, this.rng.chance(0.8) ? 2 : 3, true);
        more = true;
      }
    }
    if (bug !== null && (!bug.fired || bug.pending || bug.repairing)) more = true;
    if (this.stop && !more) for (const s of this.slots) if (s.lkb) more = true;
    if (this.scenario && !this.scenario.done) more = true;
    if (more) this.ensureTick();
  }

  private startScenario(): void {
    if (this.scenario || !this.bugRes) return;
    const sc = new Scenario(this, this.bugRes, this.cfg.inject!);
    if (sc.setup()) this.scenario = sc;
  }

  // for the scenario
  newRoleSlot(node: number, pid: number, ls: LsState, role: Role): Slot {
    const task: Task = { pid, node, inUse: new Set() };
    const s = new Slot(task, this.sim.nodes[node].nls[ls.idx], role);
    this.addSlot(s);
    return s;
  }

  roleLock(s: Slot, r: Res, mode: number): void {
    s.lkb = this.sim.lockNew(s.nls, r, mode, 0, s.task.pid, s);
    s.task.inUse.add(r);
    this.opIssued(s, true);
  }

  roleConvert(s: Slot, mode: number): void {
    this.sim.convert(s.lkb!, mode, 0);
    this.opIssued(s, true);
  }

  roleUnlock(s: Slot): void {
    this.sim.unlock(s.lkb!, 0);
    this.opIssued(s, false);
  }

  leavingNow(): NodeLs | null {
    return this.leaving;
  }
}

/** A waiting request or conversion (not an unlock or cancel in progress). */
function waiting(l: Lkb): boolean {
  return l.status === ST_WAITING || l.status === ST_CONVERT || l.waitType === M_REQUEST || l.waitType === M_CONVERT;
}

/**
 * Forces a situation where the armed bug fires: a dedicated resource in the
 * first lockspace, a holder H (and for the converting kind a CR holder X that
 * keeps H's up-conversion queued), then a victim V that only H blocks.
 */
class Scenario {
  wl: Workload;
  r: Res;
  kind: string;
  phase = 0;
  done = false;
  H!: Slot;
  V!: Slot;
  X: Slot | null = null;
  private hMode = EX;
  /** Phase deadline: a stuck attempt (e.g. X lost its lock to a drain) is cleaned up and retried. */
  private deadline = 0;
  private retry = false;

  constructor(wl: Workload, r: Res, kind: string) {
    this.wl = wl;
    this.r = r;
    this.kind = kind;
  }

  setup(): boolean {
    const wl = this.wl;
    const sim = wl.sim;
    const ls = this.r.ls;
    if (ls.recovering) return false;
    const leaving = wl.leavingNow();
    const members = sim.members(ls).filter((n) => !(leaving && leaving.ls === ls && leaving.node.id === n));
    const rng = wl.rng;
    if (this.kind === 'ignore-remote-holder' && members.length < 2) return false;
    if (members.length < 1) return false;
    const a = rng.pick(members);
    let b = a;
    if (this.kind === 'ignore-remote-holder') {
      const others = members.filter((n) => n !== a);
      b = rng.pick(others);
    } else if (this.kind === 'ignore-converting-holder') b = rng.pick(members);
    this.H = wl.newRoleSlot(a, 9000 + 10 * a + 1, ls, Role.H);
    this.V = wl.newRoleSlot(b, 9000 + 10 * b + 2, ls, Role.V);
    if (this.kind === 'ignore-converting-holder') {
      const c = rng.pick(members);
      this.X = wl.newRoleSlot(c, 9000 + 10 * c + 3, ls, Role.X);
      this.hMode = PR;
    }
    sim.bug!.armed = true;
    return true;
  }

  private ready(s: Slot | null, mode: number): boolean {
    if (!s || !s.lkb) return false;
    const l = s.lkb;
    return this.wl.sim.idle(l) && l.vGr === mode && !l.vReq;
  }

  poll(): void {
    if (this.done) return;
    const wl = this.wl;
    const sim = wl.sim;
    const bug = sim.bug!;
    if ((this.phase === 1 || this.phase === 2 || (this.phase === 3 && !bug.fired)) && sim.now > this.deadline) {
      this.retry = true;
      this.phase = 4;
    }
    switch (this.phase) {
      case 0:
        if (this.r.ls.recovering) break;
        wl.roleLock(this.H, this.r, this.hMode);
        if (this.X) wl.roleLock(this.X, this.r, CR);
        this.phase = 1;
        this.deadline = sim.now + 20_000_000;
        break;
      case 1:
        if (!this.ready(this.H, this.hMode) || (this.X && !this.ready(this.X, CR))) break;
        if (this.X) {
          wl.roleConvert(this.H, EX);
          this.phase = 2;
          this.deadline = sim.now + 20_000_000;
        } else {
          wl.roleLock(this.V, this.r, wl.rng.pick([CR, CW, PR, PW, EX]));
          this.phase = 3;
          this.deadline = sim.now + 20_000_000;
        }
        break;
      case 2: {
        const h = this.H.lkb!;
        const m = h.nodeid === 0 ? h : h.twin;
        if (!m || m.status !== ST_CONVERT || !h.vReq) break;
        wl.roleLock(this.V, this.r, PW);
        this.phase = 3;
        this.deadline = sim.now + 20_000_000;
        break;
      }
      case 3:
        if (bug.fired && !bug.pending) {
          this.phase = 4;
          this.cleanup();
        }
        break;
      case 4:
        this.cleanup();
        break;
    }
  }

  private cleanup(): void {
    const wl = this.wl;
    const sim = wl.sim;
    let live = 0;
    for (const s of [this.V, this.X, this.H]) {
      if (!s || !s.lkb) continue;
      const l = s.lkb;
      if (l.dead) {
        if (l.cbQueued === 0) s.lkb = null;
        else live++;
        continue;
      }
      live++;
      if (sim.idle(l) && !l.frozen && !l.release && l.nls.member && !l.res.ls.recovering) wl.roleUnlock(s);
    }
    if (live > 0) return;
    if (this.retry && !(sim.bug!.fired && !sim.bug!.pending)) {
      this.retry = false;
      this.phase = 0;
      return;
    }
    this.done = true;
  }
}

// ---------------------------------------------------------------- names

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function ascii(s: string): Uint8Array {
  const b = new Uint8Array(Math.min(s.length, NAME_MAX));
  for (let i = 0; i < b.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

function key(b: Uint8Array): string {
  return String.fromCharCode.apply(null, Array.from(b));
}

/** Resource names: gfs2 glock names, short text, raw bytes, and long names up to 64 bytes. */
function makeName(rng: Rng, ls: number, j: number): Uint8Array {
  switch (j % 4) {
    case 0: {
      const type = rng.pick([1, 2, 2, 3, 5, 5, 9]);
      const num = (rng.u32() & 0xfffff) + 0x10;
      return ascii(type.toString(16).padStart(8, ' ') + num.toString(16).padStart(16, ' '));
    }
    case 1:
      return ascii(`res-${ls}-${j}`);
    case 2: {
      const n = rng.range(1, 16);
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = rng.int(256);
      if (b[n - 1] === 0) b[n - 1] = 0x5a; // the kernel pads names with zeros: keep the last byte non-zero
      return b;
    }
    default: {
      const n = j === 3 ? NAME_MAX : rng.range(30, NAME_MAX);
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = 0x21 + ((i * 7 + j + ls * 13) % 94);
      return b;
    }
  }
}
