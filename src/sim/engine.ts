// The DLM cluster model: lock ids, resources with masters, the master's grant
// rules (grant / convert / wait queues), the node side of every operation
// (validation, waiters, overlapping unlock/cancel), messages between nodes,
// per-node callback queues, lockspace release and recovery, and the records a
// collector would see, in either hook flavor. The grant logic follows the
// Linux kernel's fs/dlm/lock.c; the code is our own.
import { RecordBuffer, type RecordFields } from '../record/buffer';
import { Kind, LKF, MODE_NONE, RF_HISTORY, SBF, Src, STATUS } from '../record/layout';
import { EventQueue, IntMinHeap } from './heap';
import { CW, EX, IV, NL, PR, compat, isDown, isMiddle, leq, meet, quecvtOk } from './modes';
import { Rng } from './rng';
import type { Flavor, GroundTruth, HazardName, SimStats } from './types';

// lkb_status
export const ST_NONE = 0, ST_WAITING = 1, ST_GRANTED = 2, ST_CONVERT = 3;

// DLM_MSG_*
export const M_REQUEST = 1, M_CONVERT = 2, M_UNLOCK = 3, M_CANCEL = 4, M_REQUEST_REPLY = 5,
  M_CONVERT_REPLY = 6, M_UNLOCK_REPLY = 7, M_CANCEL_REPLY = 8, M_GRANT = 9, M_BAST = 10;

// errno values as the DLM uses them
export const EINPROGRESS = -115, EAGAIN = -11, EDEADLK = -35, EBUSY = -16, EINVAL = -22, ENOENT = -2;
export const EUNLOCK = STATUS.EUNLOCK, ECANCEL = STATUS.ECANCEL;

const F_NOQUEUE = LKF.NOQUEUE, F_CANCEL = LKF.CANCEL, F_CONVERT = LKF.CONVERT, F_QUECVT = LKF.QUECVT,
  F_CONVDEADLK = LKF.CONVDEADLK, F_NODLCKWT = LKF.NODLCKWT, F_EXPEDITE = LKF.EXPEDITE,
  F_NOQUEUEBAST = LKF.NOQUEUEBAST, F_NOORDER = LKF.NOORDER, F_ALTPR = LKF.ALTPR, F_ALTCW = LKF.ALTCW,
  F_FORCEUNLOCK = LKF.FORCEUNLOCK;

export class Lkb {
  id: number;
  /** Incarnation of the node's lockspace the id belongs to. */
  inc: number;
  nls: NodeLs;
  node: number;
  res: Res;
  mstcpy = false;
  /** Kernel lkb_nodeid: process copy -> master node (0 when mastered locally); master copy -> owner node. */
  nodeid = 0;
  remid = 0;
  pid = 0;
  grmode = IV;
  rqmode = IV;
  status = ST_NONE;
  exflags = 0;
  sbflags = 0;
  highbast = 0;
  waitType = 0;
  waitCount = 0;
  ovUnlock = false;
  ovCancel = false;
  resend = false;
  /** Sim bookkeeping: master copy <-> process copy. */
  twin: Lkb | null = null;
  dead = false;
  idReleased = false;
  cbQueued = 0;
  /** Cancel replies still in flight after the kernel zapped their overlap (see removeFromWaiters). */
  strays = 0;
  qseq = 0;
  /** The mode the current operation asked for (the namespace dlm_ast mode argument). */
  opRq = IV;
  /** The workload slot that owns this lock. */
  owner: unknown = null;
  // What the monitor has been told so far (its per-lock state, monitor.md section 4).
  vGr = IV;
  vReq = false;
  vRq = IV;
  vFlags = 0;
  /** 0 none, 1 unlock, 2 cancel */
  vRel = 0;
  /** Held still by the bug injection until the victim's completion is recorded. */
  frozen = false;
  /** An ignored holder after the truth: its owner must unlock it now. */
  release = false;
  /** Recovery: a cancel of a middle conversion sent to the departed master (see waitersPre). */
  cancelFix = false;
  /** The current conversion was demoted to NL (CONVDEADLK). */
  demoted = false;

  constructor(nls: NodeLs, id: number, res: Res) {
    this.nls = nls;
    this.node = nls.node.id;
    this.id = id;
    this.inc = nls.inc;
    this.res = res;
  }
}

export class Res {
  ls: LsState;
  idx: number;
  name: Uint8Array;
  master = 0;
  grant: Lkb[] = [];
  convert: Lkb[] = [];
  wait: Lkb[] = [];
  /** Node-side locks (process copies and locally mastered locks) on every node. */
  plocks: Lkb[] = [];
  recoverGrant = false;
  dedicated: boolean;

  constructor(ls: LsState, idx: number, name: Uint8Array, dedicated: boolean) {
    this.ls = ls;
    this.idx = idx;
    this.name = name;
    this.dedicated = dedicated;
  }
}

export class LsState {
  idx: number;
  id: number;
  res: Res[] = [];
  recovering = false;
  departed = 0;
  held: Msg[] = [];

  constructor(idx: number, id: number) {
    this.idx = idx;
    this.id = id;
  }
}

export class NodeLs {
  node: NodeState;
  ls: LsState;
  member = true;
  inc = 1;
  map = new Map<number, Lkb>();
  nextId = 1;
  free = new IntMinHeap();
  /** Workload: draining before a release. */
  draining = false;
  leaveAtEnd = false;
  released = false;

  constructor(node: NodeState, ls: LsState) {
    this.node = node;
    this.ls = ls;
  }
}

export interface CbEntry {
  lkb: Lkb;
  cast: boolean;
  mode: number;
  status: number;
  sbflags: number;
  rq: number;
  id: number;
  ls: LsState;
}

export class NodeState {
  id: number;
  nls: NodeLs[] = [];
  cbq: CbEntry[] = [];
  cbHead = 0;
  cbTimer = false;
  sendSeq: number[];
  lastArrive: number[];
  /** pid of the task releasing lockspaces (umount) */
  adminPid: number;

  constructor(id: number, nodes: number) {
    this.id = id;
    this.sendSeq = new Array<number>(nodes + 1).fill(0);
    this.lastArrive = new Array<number>(nodes + 1).fill(0);
    this.adminPid = 700 + id;
  }
}

export interface Msg {
  type: number;
  from: number;
  to: number;
  ls: LsState;
  res: Res;
  lkid: number;
  remid: number;
  exflags: number;
  sbflags: number;
  status: number;
  grmode: number;
  rqmode: number;
  result: number;
  bastmode: number;
  pid: number;
  seq: number;
  fromInc: number;
  toInc: number;
  sentAt: number;
  stub: boolean;
}

export interface Hooks {
  /** A callback was delivered to the lock's owner. */
  onCallback(lkb: Lkb, e: CbEntry): void;
  /** Kernel state of a node-side lock changed (the owner may be able to act). */
  wake(lkb: Lkb): void;
  /** The lock vanished with its node's lockspace. */
  onVanish(lkb: Lkb): void;
  /** The lockspace finished recovery (or a node rejoined it). */
  onResume(ls: LsState): void;
  /** The bug's victim completion was recorded: frozen locks may move again. */
  onUnfreeze(): void;
}

export interface EngineConfig {
  nodes: number;
  flavor: Flavor;
  messages: boolean;
  hazards: Record<HazardName, boolean>;
  seed: number;
}

interface BugState {
  kind: string;
  armed: boolean;
  fired: boolean;
  pending: boolean;
  victim: Lkb | null;
  victimMode: number;
  ignored: { lkb: Lkb; eff: number }[];
  /** Master-side lkbs of the ignored holders. */
  held: Lkb[];
  /** After the truth: the ignored holders are being released; the victim stays still until the master has dropped them. */
  repairing: boolean;
  truth: GroundTruth | null;
}

export function newStats(): SimStats {
  return {
    records: 0, grants: 0, refusals: 0, cancels: 0, cancelRaces: 0, deadlocks: 0, demotions: 0,
    demotedCancels: 0, altGrants: 0, overlapUnlocks: 0, busyRefusals: 0, lockEndErrors: 0,
    upConverts: 0, downConverts: 0, middleConverts: 0, quecvtConverts: 0, sameNodeShares: 0,
    leaves: 0, leaveRefused: 0, recoveries: 0, purged: 0, remasters: 0, resends: 0, rejoins: 0,
    lkbReuses: 0, messages: 0, messagesDropped: 0, reorders: 0, lateCallbackStalls: 0, basts: 0,
    pendingDemotions: 0, lossDropped: 0, lossRecords: 0, simTimeNs: 0,
  };
}

const NO_HOOKS: Hooks = { onCallback() {}, wake() {}, onVanish() {}, onResume() {}, onUnfreeze() {} };

export class Engine {
  cfg: EngineConfig;
  mainline: boolean;
  rng: Rng;
  q = new EventQueue();
  now = 0;
  clock = 0;
  buf: RecordBuffer;
  nodes: NodeState[] = [];
  lss: LsState[] = [];
  stats: SimStats = newStats();
  hooks: Hooks = NO_HOOKS;
  bug: BugState | null = null;
  private f: RecordFields;
  private qseq = 0;
  private maxSentDelivered = 0;
  /** Overlapping unlocks to carry out once recovery has rebuilt the masters. */
  private recoverUnlocks: Lkb[] = [];

  constructor(cfg: EngineConfig, initialRecords: number) {
    this.cfg = cfg;
    this.mainline = cfg.flavor === 'mainline';
    this.rng = new Rng(cfg.seed, 1);
    this.buf = new RecordBuffer(initialRecords);
    this.f = {
      kind: 0, ts: 0, node: 0, ls: 0, lkb: 0, mode: MODE_NONE, flags: 0, status: 0, error: 0, sbFlags: 0,
      pid: 0, aux: 0, msgSrc: 0, msgDst: 0, msgSeq: 0, msgType: 0, grmode: IV, src: 0, rflags: 0, name: undefined,
    };
    for (let n = 0; n <= cfg.nodes; n++) this.nodes.push(new NodeState(n, cfg.nodes));
  }

  addLockspace(id: number): LsState {
    const ls = new LsState(this.lss.length, id);
    this.lss.push(ls);
    for (let n = 1; n <= this.cfg.nodes; n++) this.nodes[n].nls.push(new NodeLs(this.nodes[n], ls));
    return ls;
  }

  addResource(ls: LsState, name: Uint8Array, dedicated: boolean): Res {
    const r = new Res(ls, ls.res.length, name, dedicated);
    ls.res.push(r);
    return r;
  }

  at(delay: number, run: () => void): void {
    this.q.push(this.now + Math.max(0, Math.round(delay)), run);
  }

  // ---------------------------------------------------------------- records

  private tick(): number {
    this.clock = Math.max(this.clock + 37, this.now);
    return this.clock;
  }

  /** Append one lock-event record; returns its index. */
  private rec(kind: number, src: number, lkb: Lkb | null, node: number, lsId: number, lkbId: number,
    mode: number, grmode: number, flags: number, status: number, error: number, sbFlags: number,
    aux: number, rflags: number, pid: number, name: Uint8Array | undefined): number {
    const f = this.f;
    f.kind = kind;
    f.ts = this.tick();
    f.node = node;
    f.ls = lsId;
    f.lkb = lkbId;
    f.mode = mode;
    f.grmode = grmode;
    f.flags = flags;
    f.status = status;
    f.error = error;
    f.sbFlags = sbFlags;
    f.aux = aux;
    f.rflags = rflags;
    f.pid = pid;
    f.src = src;
    f.name = name;
    f.msgSrc = 0;
    f.msgDst = 0;
    f.msgSeq = 0;
    f.msgType = 0;
    void lkb;
    return this.buf.push(f);
  }

  private recMsg(send: boolean, m: Msg): void {
    const f = this.f;
    f.kind = send ? Kind.MSG_SEND : Kind.MSG_RECV;
    f.ts = this.tick();
    f.node = send ? m.from : m.to;
    f.ls = m.ls.id;
    f.lkb = m.lkid;
    f.mode = m.rqmode;
    f.grmode = m.grmode;
    f.flags = m.exflags;
    f.status = m.status;
    f.error = m.result;
    f.sbFlags = m.sbflags;
    f.aux = m.remid;
    f.rflags = 0;
    f.pid = m.pid;
    f.src = send ? Src.SEND_MESSAGE : Src.RECV_MESSAGE;
    // dlm_send_message prints the rsb's name; on receive only REQUEST carries it (m_extra)
    f.name = send || m.type === M_REQUEST ? m.res.name : undefined;
    f.msgSrc = m.from;
    f.msgDst = m.to;
    f.msgSeq = m.seq;
    f.msgType = m.type;
    this.buf.push(f);
  }

  get records(): number {
    return this.buf.count;
  }

  // ------------------------------------------------- monitor-view bookkeeping
  // Mirrors what a monitor following monitor.md knows about each lock; used to
  // place the injected bug where it is observable.

  private visCompletion(l: Lkb, status: number, exact: number, sbflags: number): void {
    if (status === 0) {
      let gr = exact;
      if (gr === MODE_NONE) gr = sbflags & SBF.ALTMODE ? (l.vFlags & F_ALTPR ? PR : CW) : l.vRq;
      l.vGr = gr;
    } else if (status === EUNLOCK) {
      l.vGr = IV;
      l.vRel = 0;
    } else if (exact !== MODE_NONE) {
      l.vGr = exact;
    }
    l.vReq = false;
    if (l.vRel === 2) l.vRel = 0;
  }

  /** Effective mode per monitor.md section 4, from what the monitor was told. */
  vEff(l: Lkb): number {
    if (l.vRel === 1) return IV;
    if (l.vReq) {
      if (l.vGr === IV) return IV;
      if (l.vFlags & F_CONVDEADLK) return NL;
      if (leq(l.vGr, l.vRq)) return l.vGr;
      if (leq(l.vRq, l.vGr)) return l.vRq;
      return meet(l.vGr, l.vRq);
    }
    return l.vGr;
  }

  // ---------------------------------------------------------------- lkb ids

  private createLkb(nls: NodeLs, res: Res, mstcpy: boolean): Lkb {
    let id: number;
    let reused = false;
    if (nls.free.size > 0) {
      id = nls.free.pop()!;
      reused = true;
    } else {
      id = nls.nextId++;
    }
    const l = new Lkb(nls, id, res);
    l.mstcpy = mstcpy;
    nls.map.set(id, l);
    if (!mstcpy) {
      res.plocks.push(l);
      if (reused) this.stats.lkbReuses++;
    }
    return l;
  }

  /** The lock is gone (freed by the kernel). */
  private kill(l: Lkb): void {
    if (l.dead) return;
    l.dead = true;
    if (l.nls.map.get(l.id) === l) l.nls.map.delete(l.id);
    if (!l.mstcpy) {
      const i = l.res.plocks.indexOf(l);
      if (i >= 0) l.res.plocks.splice(i, 1);
    }
    if (l.twin && l.twin.twin === l) l.twin.twin = null;
    l.twin = null;
    // Mainline (>= 6.10) callbacks carry copies: the id is free at once. The
    // namespace flavor keeps it until the last callback is delivered, so a new
    // lock never reuses an id before the old lock's completion is traced.
    if (this.mainline || l.mstcpy || l.cbQueued === 0) this.releaseId(l);
    this.maybeReleaseMaster(l.res);
    if (this.bug !== null && this.bug.repairing) this.repairCheck();
  }

  private releaseId(l: Lkb): void {
    if (l.idReleased) return;
    l.idReleased = true;
    if (l.nls.inc === l.inc) l.nls.free.push(l.id);
  }

  private maybeReleaseMaster(r: Res): void {
    if (r.plocks.length === 0 && r.grant.length === 0 && r.convert.length === 0 && r.wait.length === 0) r.master = 0;
  }

  // ------------------------------------------------------- master queues

  private addLkb(r: Res, l: Lkb, st: number): void {
    l.status = st;
    if (st === ST_GRANTED) r.grant.push(l);
    else {
      l.qseq = ++this.qseq;
      if (l.twin) l.twin.qseq = l.qseq;
      (st === ST_CONVERT ? r.convert : r.wait).push(l);
    }
  }

  private delLkb(r: Res, l: Lkb): void {
    const q = l.status === ST_GRANTED ? r.grant : l.status === ST_CONVERT ? r.convert : l.status === ST_WAITING ? r.wait : null;
    if (q) {
      const i = q.indexOf(l);
      if (i >= 0) q.splice(i, 1);
    }
    l.status = ST_NONE;
  }

  private moveLkb(r: Res, l: Lkb, st: number): void {
    this.delLkb(r, l);
    this.addLkb(r, l, st);
  }

  /** Node-side lock of a master-side lkb (itself when mastered locally). */
  nodeSide(l: Lkb): Lkb | null {
    return l.mstcpy ? l.twin : l;
  }

  // ------------------------------------------------------------ callbacks

  private queueCast(l: Lkb, rv: number): void {
    if (l.mstcpy) return;
    this.addCb(l, true, l.grmode, rv, l.sbflags);
  }

  private queueBast(r: Res, l: Lkb, mode: number): void {
    if (l.mstcpy) this.sendMsg(M_BAST, l.node, l.nodeid, l, r, 0, mode);
    else this.addCb(l, false, mode, 0, 0);
  }

  private addCb(l: Lkb, cast: boolean, mode: number, status: number, sbflags: number): void {
    const st = this.stats;
    if (cast) {
      if (status === 0) {
        st.grants++;
        if (sbflags & SBF.ALTMODE) st.altGrants++;
        for (const o of l.res.plocks) {
          if (o !== l && o.node === l.node && o.grmode !== IV && !o.dead) {
            st.sameNodeShares++;
            break;
          }
        }
      } else if (status === EAGAIN) st.refusals++;
      else if (status === EDEADLK) st.deadlocks++;
      else if (status === ECANCEL) {
        st.cancels++;
        if (l.demoted) st.demotedCancels++;
      }
    } else st.basts++;
    const e: CbEntry = { lkb: l, cast, mode, status, sbflags, rq: l.opRq, id: l.id, ls: l.res.ls };
    if (this.mainline) {
      const idx = this.rec(cast ? Kind.COMPLETION : Kind.BLOCKING, Src.ADD_CB, l, l.node, l.res.ls.id, l.id,
        mode, cast ? mode : l.grmode, 0, cast ? status : 0, 0, cast ? sbflags : 0, 0, 0, l.pid, l.res.name);
      if (cast) {
        this.visCompletion(l, status, mode, sbflags);
        this.checkTruth(l, status, idx);
      }
    }
    const node = this.nodes[l.node];
    node.cbq.push(e);
    l.cbQueued++;
    this.scheduleCb(node);
  }

  private scheduleCb(node: NodeState): void {
    if (node.cbTimer) return;
    node.cbTimer = true;
    let d = 2000 + this.rng.exp(6000);
    if (this.cfg.hazards.lateCallbacks && this.rng.chance(0.015)) {
      d += 200_000 + this.rng.exp(600_000);
      this.stats.lateCallbackStalls++;
    }
    this.at(d, () => this.runCb(node));
  }

  private runCb(node: NodeState): void {
    node.cbTimer = false;
    const q = node.cbq;
    let i = node.cbHead;
    while (i < q.length && q[i].ls.recovering) i++;
    if (i >= q.length) return; // all held by recovery; resumed by recover()
    const e = q[i];
    if (i === node.cbHead) node.cbHead++;
    else q.splice(i, 1);
    if (node.cbHead > 256 && node.cbHead * 2 > q.length) {
      node.cbq = q.slice(node.cbHead);
      node.cbHead = 0;
    }
    this.deliverCb(e);
    if (node.cbHead < node.cbq.length) this.scheduleCb(node);
  }

  private deliverCb(e: CbEntry): void {
    const l = e.lkb;
    const name = l.res.name;
    if (this.mainline) {
      if (e.cast) {
        this.rec(Kind.COMPLETION, Src.AST, l, l.node, e.ls.id, e.id, MODE_NONE, l.dead ? IV : l.grmode, 0,
          e.status, 0, e.sbflags, 0, RF_HISTORY, l.pid, name);
      } else {
        this.rec(Kind.BLOCKING, Src.BAST, l, l.node, e.ls.id, e.id, e.mode, l.dead ? IV : l.grmode, 0, 0, 0, 0, 0,
          RF_HISTORY, l.pid, name);
      }
    } else if (e.cast) {
      // the namespace kernel's dlm_ast: its mode argument is the requested mode
      const idx = this.rec(Kind.COMPLETION, Src.AST, l, l.node, e.ls.id, e.id, MODE_NONE, e.rq, 0, e.status, 0,
        e.sbflags, 0, 0, l.pid, name);
      this.visCompletion(l, e.status, MODE_NONE, e.sbflags);
      this.checkTruth(l, e.status, idx);
    } else {
      this.rec(Kind.BLOCKING, Src.BAST, l, l.node, e.ls.id, e.id, e.mode, l.dead ? IV : l.grmode, 0, 0, 0, 0, 0, 0,
        l.pid, name);
    }
    l.cbQueued--;
    if (l.dead && l.cbQueued === 0) this.releaseId(l);
    this.hooks.onCallback(l, e);
  }

  // ------------------------------------------------------------- messages

  private sendMsg(type: number, from: number, to: number, l: Lkb, r: Res, result: number, bastmode: number): void {
    const src = this.nodes[from];
    const ls = r.ls;
    const m: Msg = {
      type, from, to, ls, res: r, lkid: l.id, remid: l.remid, exflags: l.exflags, sbflags: l.sbflags,
      status: l.status, grmode: l.grmode, rqmode: l.rqmode, result, bastmode, pid: l.pid,
      seq: ++src.sendSeq[to], fromInc: src.nls[ls.idx].inc, toInc: this.nodes[to].nls[ls.idx].inc,
      sentAt: this.now, stub: false,
    };
    this.stats.messages++;
    if (this.cfg.messages) this.recMsg(true, m);
    let d: number;
    if (this.cfg.hazards.reorder) {
      d = 15_000 + this.rng.exp(35_000);
      if (this.rng.chance(0.02)) d += this.rng.exp(300_000);
    } else d = 50_000;
    // reliable, ordered links: FIFO per (sender, receiver)
    const arrive = Math.max(this.now + d, src.lastArrive[to] + 1);
    src.lastArrive[to] = arrive;
    this.q.push(arrive, () => this.deliver(m));
  }

  private deliver(m: Msg): void {
    // dlm_recv_message fires in the midcomms layer, in sequence order, before
    // the lockspace looks at the message (held during recovery, or dropped)
    if (m.sentAt < this.maxSentDelivered) this.stats.reorders++;
    else this.maxSentDelivered = m.sentAt;
    if (this.cfg.messages) this.recMsg(false, m);
    const dst = this.nodes[m.to].nls[m.ls.idx];
    if (!dst.member || dst.inc !== m.toInc) {
      this.stats.messagesDropped++;
      return;
    }
    if (m.ls.recovering) {
      m.ls.held.push(m); // dlm_add_requestqueue: processed after recovery
      return;
    }
    this.processMsg(m);
  }

  private processMsg(m: Msg): void {
    const srcNls = this.nodes[m.from].nls[m.ls.idx];
    if (!srcNls.member || srcNls.inc !== m.fromInc) {
      this.stats.messagesDropped++; // from a node that left the lockspace
      return;
    }
    const nls = this.nodes[m.to].nls[m.ls.idx];
    switch (m.type) {
      case M_REQUEST: this.receiveRequest(nls, m); break;
      case M_CONVERT: this.receiveConvert(nls, m); break;
      case M_UNLOCK: this.receiveUnlock(nls, m); break;
      case M_CANCEL: this.receiveCancel(nls, m); break;
      case M_REQUEST_REPLY: this.receiveRequestReply(nls, m); break;
      case M_CONVERT_REPLY: this.receiveConvertReply(nls, m); break;
      case M_UNLOCK_REPLY: this.receiveUnlockReply(nls, m); break;
      case M_CANCEL_REPLY: this.receiveCancelReply(nls, m); break;
      case M_GRANT: this.receiveGrant(nls, m); break;
      case M_BAST: this.receiveBast(nls, m); break;
      default: throw new Error(`sim: unknown message type ${m.type}`);
    }
  }

  private stub(type: number, result: number, from: number, ls: LsState, res: Res): Msg {
    return {
      type, from, to: 0, ls, res, lkid: 0, remid: 0, exflags: 0, sbflags: 0, status: 0, grmode: IV, rqmode: IV,
      result, bastmode: 0, pid: 0, seq: 0, fromInc: 0, toInc: 0, sentAt: this.now, stub: true,
    };
  }

  // ------------------------------------------------------------ waiters

  private addToWaiters(l: Lkb, mstype: number): number {
    if (l.ovUnlock || (l.ovCancel && mstype === M_CANCEL)) return EINVAL;
    if (l.waitType || l.ovCancel) {
      if (mstype === M_UNLOCK) l.ovUnlock = true;
      else if (mstype === M_CANCEL) l.ovCancel = true;
      else return EBUSY;
      l.waitCount++;
      return 0;
    }
    l.waitCount++;
    l.waitType = mstype;
    return 0;
  }

  private removeFromWaiters(l: Lkb, mstype: number, m: Msg | null): number {
    let overlapDone = false;
    if (l.ovUnlock && mstype === M_UNLOCK_REPLY) {
      l.ovUnlock = false;
      overlapDone = true;
    } else if (l.ovCancel && mstype === M_CANCEL_REPLY) {
      l.ovCancel = false;
      overlapDone = true;
    } else if (mstype === M_CANCEL_REPLY && l.waitType !== M_CANCEL) {
      return -1; // cancel made moot by a successful convert reply
    } else if (mstype === M_CONVERT_REPLY && l.waitType === M_CONVERT && l.ovCancel && m && m.result === 0) {
      l.waitType = 0; // convert granted: the outstanding cancel is moot
      l.ovCancel = false;
      l.waitCount--;
      l.strays++;
      this.stats.cancelRaces++;
    } else if (l.waitType) {
      l.waitType = 0;
    } else {
      return -1;
    }
    if (overlapDone && l.waitType) {
      l.waitCount--;
      l.waitType = 0;
    }
    if (l.waitCount <= 0) throw new Error(`sim: wait count underflow on lkb ${l.node}/${l.id}`);
    l.resend = false;
    l.waitCount--;
    return 0;
  }

  private sendCommon(l: Lkb, mstype: number): number {
    const err = this.addToWaiters(l, mstype);
    if (err) return err;
    this.sendMsg(mstype, l.node, l.nodeid, l, l.res, 0, 0);
    return 0;
  }

  // ================================================================ master

  private queueConflict(q: Lkb[], l: Lkb, ign: Set<Lkb> | null): boolean {
    for (let i = 0; i < q.length; i++) {
      const x = q[i];
      if (x === l || (ign !== null && ign.has(x))) continue;
      if (!compat(x.grmode, l.rqmode)) return true;
    }
    return false;
  }

  private queueEmpty(q: Lkb[], ign: Set<Lkb> | null): boolean {
    if (ign === null) return q.length === 0;
    for (const x of q) if (!ign.has(x)) return false;
    return true;
  }

  private firstIn(q: Lkb[], l: Lkb, ign: Set<Lkb> | null): boolean {
    for (const x of q) {
      if (ign !== null && ign.has(x)) continue;
      return x === l;
    }
    return false;
  }

  /** The kernel's _can_be_granted(), with an optional set of locks to pretend away (the injected bug). */
  private canGrant(r: Res, l: Lkb, now: boolean, recover: boolean, ign: Set<Lkb> | null): boolean {
    const conv = l.grmode !== IV;
    if (l.exflags & F_EXPEDITE) return true;
    if (this.queueConflict(r.grant, l, ign)) return false;
    if (this.queueConflict(r.convert, l, ign)) return false;
    if (conv && recover) return true;
    if (now && conv && !(l.exflags & F_QUECVT)) return true;
    if (now && conv && l.exflags & F_QUECVT) return this.queueEmpty(r.convert, ign);
    if (l.exflags & F_NOORDER) return true;
    if (!now && conv && this.firstIn(r.convert, l, ign)) return true;
    if (now && !conv && this.queueEmpty(r.convert, ign) && this.queueEmpty(r.wait, ign)) return true;
    if (!now && !conv && this.queueEmpty(r.convert, ign) && this.firstIn(r.wait, l, ign)) return true;
    return false;
  }

  private convDeadlock(r: Res, l2: Lkb): boolean {
    let ahead = false;
    for (const l1 of r.convert) {
      if (l1 === l2) {
        ahead = true;
        continue;
      }
      if (!ahead) {
        if (!compat(l2.grmode, l1.rqmode)) return true;
      } else if (!compat(l2.grmode, l1.rqmode) && !compat(l1.grmode, l2.rqmode)) return true;
    }
    return false;
  }

  /** The kernel's can_be_granted(): conversion deadlocks (EDEADLK or CONVDEADLK demotion) and ALTPR/ALTCW. */
  private canBeGranted(r: Res, l: Lkb, now: boolean, recover: boolean, deadlk: { v: boolean } | null): boolean {
    const rqmode = l.rqmode;
    const isConvert = l.grmode !== IV;
    if (deadlk) deadlk.v = false;
    if (this.canGrant(r, l, now, recover, null)) return true;
    if (this.bug !== null && this.bug.armed && !this.bug.fired && this.bugTry(r, l, now, recover)) return true;
    if (isConvert && !(l.exflags & F_NOQUEUE) && this.convDeadlock(r, l)) {
      if (l.exflags & F_CONVDEADLK) {
        l.grmode = NL;
        l.sbflags |= SBF.DEMOTED;
        l.demoted = true;
        this.stats.demotions++;
      } else if (deadlk) deadlk.v = true;
      return false;
    }
    let alt = IV;
    if (rqmode !== PR && l.exflags & F_ALTPR) alt = PR;
    else if (rqmode !== CW && l.exflags & F_ALTCW) alt = CW;
    if (alt !== IV) {
      l.rqmode = alt;
      if (this.canGrant(r, l, now, false, null)) {
        l.sbflags |= SBF.ALTMODE;
        return true;
      }
      l.rqmode = rqmode;
    }
    return false;
  }

  private grantLock(r: Res, l: Lkb): void {
    if (l.grmode !== l.rqmode) {
      l.grmode = l.rqmode;
      if (l.status) this.moveLkb(r, l, ST_GRANTED);
      else this.addLkb(r, l, ST_GRANTED);
    }
    l.rqmode = IV;
    l.highbast = 0;
  }

  private grantLockPending(r: Res, l: Lkb): void {
    this.grantLock(r, l);
    if (l.mstcpy) this.sendMsg(M_GRANT, l.node, l.nodeid, l, r, 0, 0);
    else this.queueCast(l, 0);
  }

  private grantPendingConvert(r: Res, high: number, cw: { v: boolean } | null): number {
    const recover = r.recoverGrant;
    let quit = false;
    for (;;) {
      let grantRestart = false;
      let demoteRestart = false;
      let hi = IV;
      const d = { v: false };
      for (const l of r.convert.slice()) {
        if (l.status !== ST_CONVERT) continue;
        const demoted = (l.sbflags & SBF.DEMOTED) !== 0;
        if (this.canBeGranted(r, l, false, recover, d)) {
          this.grantLockPending(r, l);
          grantRestart = true;
          continue;
        }
        if (!demoted && l.sbflags & SBF.DEMOTED) {
          this.stats.pendingDemotions++;
          demoteRestart = true;
          continue;
        }
        if (d.v) {
          if (l.exflags & F_NODLCKWT && l.highbast < l.rqmode) {
            this.queueBast(r, l, l.rqmode);
            l.highbast = l.rqmode;
          }
          continue;
        }
        hi = Math.max(hi, l.rqmode);
        if (cw && l.rqmode === CW) cw.v = true;
      }
      if (grantRestart) continue;
      if (demoteRestart && !quit) {
        quit = true;
        continue;
      }
      return Math.max(high, hi);
    }
  }

  private grantPendingWait(r: Res, high: number, cw: { v: boolean }): number {
    for (const l of r.wait.slice()) {
      if (l.status !== ST_WAITING) continue;
      if (this.canBeGranted(r, l, false, false, null)) this.grantLockPending(r, l);
      else {
        high = Math.max(high, l.rqmode);
        if (l.rqmode === CW) cw.v = true;
      }
    }
    return high;
  }

  private grantPendingLocks(r: Res): void {
    const cw = { v: false };
    let high = this.grantPendingConvert(r, IV, cw);
    high = this.grantPendingWait(r, high, cw);
    if (high === IV) return;
    for (const l of r.grant.slice()) {
      if (l.status !== ST_GRANTED) continue;
      let need: boolean;
      if (l.grmode === PR && cw.v) need = l.highbast < EX;
      else need = l.highbast < high && !compat(l.grmode, high);
      if (need) {
        this.queueBast(r, l, cw.v && high === PR && l.grmode === PR ? CW : high);
        l.highbast = high;
      }
    }
  }

  private sendBastQueue(r: Res, q: Lkb[], l: Lkb): void {
    for (const gr of q.slice()) {
      if (gr === l) continue;
      let need: boolean;
      if (isMiddle(gr.grmode, l.rqmode)) need = gr.highbast < EX;
      else need = gr.highbast < l.rqmode && !compat(gr.grmode, l.rqmode);
      if (need) {
        this.queueBast(r, gr, l.rqmode);
        gr.highbast = l.rqmode;
      }
    }
  }

  private doRequest(r: Res, l: Lkb): number {
    if (this.canBeGranted(r, l, true, false, null)) {
      this.grantLock(r, l);
      this.queueCast(l, 0);
      return 0;
    }
    if (!(l.exflags & F_NOQUEUE)) {
      this.addLkb(r, l, ST_WAITING);
      return EINPROGRESS;
    }
    this.queueCast(l, EAGAIN);
    return EAGAIN;
  }

  private doRequestEffects(r: Res, l: Lkb, err: number): void {
    if (err === EAGAIN) {
      if (l.exflags & F_NOQUEUEBAST) {
        this.sendBastQueue(r, r.grant, l);
        this.sendBastQueue(r, r.convert, l);
      }
    } else if (err === EINPROGRESS) this.sendBastQueue(r, r.grant, l);
  }

  private doConvert(r: Res, l: Lkb): number {
    const d = { v: false };
    if (this.canBeGranted(r, l, true, false, d)) {
      this.grantLock(r, l);
      this.queueCast(l, 0);
      return 0;
    }
    if (d.v && !(l.exflags & F_NODLCKWT)) {
      this.revertLock(r, l); // stays on the grant queue at its granted mode
      this.queueCast(l, EDEADLK);
      return EDEADLK;
    }
    if (l.sbflags & SBF.DEMOTED) {
      this.grantPendingConvert(r, IV, null);
      if (this.canGrant(r, l, true, false, null)) {
        this.grantLock(r, l);
        this.queueCast(l, 0);
        return 0;
      }
    }
    if (!(l.exflags & F_NOQUEUE)) {
      this.delLkb(r, l);
      this.addLkb(r, l, ST_CONVERT);
      return EINPROGRESS;
    }
    this.queueCast(l, EAGAIN);
    return EAGAIN;
  }

  private doConvertEffects(r: Res, l: Lkb, err: number): void {
    if (err === 0) this.grantPendingLocks(r);
    else if (err === EAGAIN) {
      if (l.exflags & F_NOQUEUEBAST) {
        this.sendBastQueue(r, r.grant, l);
        this.sendBastQueue(r, r.convert, l);
      }
    } else if (err === EINPROGRESS) this.sendBastQueue(r, r.grant, l);
  }

  /** rv: 0 nothing to do, 1 conversion back on the grant queue, -1 waiting request removed. */
  private revertLock(r: Res, l: Lkb): number {
    l.rqmode = IV;
    switch (l.status) {
      case ST_GRANTED:
        return 0;
      case ST_CONVERT:
        this.moveLkb(r, l, ST_GRANTED);
        return 1;
      case ST_WAITING:
        this.delLkb(r, l);
        l.grmode = IV;
        return -1;
      default:
        return 0;
    }
  }

  private revertLockPc(l: Lkb): number {
    l.rqmode = IV;
    switch (l.status) {
      case ST_CONVERT:
        l.status = ST_GRANTED;
        return 1;
      case ST_WAITING:
        l.status = ST_NONE;
        l.grmode = IV;
        return -1;
      default:
        return 0;
    }
  }

  private grantLockPc(l: Lkb): void {
    if (l.grmode !== l.rqmode) {
      l.grmode = l.rqmode;
      l.status = ST_GRANTED;
    }
    l.rqmode = IV;
    l.highbast = 0;
  }

  private mungeAltmode(l: Lkb): void {
    if (l.exflags & F_ALTPR) l.rqmode = PR;
    else if (l.exflags & F_ALTCW) l.rqmode = CW;
  }

  // ------------------------------------------------- master: messages in

  private receiveRequest(nls: NodeLs, m: Msg): void {
    const r = m.res;
    if (r.master !== nls.node.id) throw new Error(`sim: request for ${r.ls.id}/${r.idx} at non-master ${nls.node.id}`);
    const l = this.createLkb(nls, r, true);
    l.exflags = m.exflags;
    l.sbflags = m.sbflags;
    l.nodeid = m.from;
    l.pid = m.pid;
    l.remid = m.lkid;
    l.grmode = IV;
    l.rqmode = m.rqmode;
    const pc = this.nodes[m.from].nls[r.ls.idx].map.get(m.lkid);
    if (pc && !pc.mstcpy) {
      l.twin = pc;
      pc.twin = l;
    }
    const err = this.doRequest(r, l);
    this.sendMsg(M_REQUEST_REPLY, l.node, l.nodeid, l, r, err, 0);
    this.doRequestEffects(r, l, err);
    if (err === EAGAIN) this.kill(l);
  }

  private findMstcpy(nls: NodeLs, m: Msg, checkRemid: boolean): Lkb | null {
    const l = nls.map.get(m.remid);
    if (!l || !l.mstcpy || l.nodeid !== m.from) return null;
    if (checkRemid && l.remid !== m.lkid) return null;
    return l;
  }

  private receiveConvert(nls: NodeLs, m: Msg): void {
    const l = this.findMstcpy(nls, m, true);
    if (!l) return;
    const r = l.res;
    l.exflags = m.exflags;
    l.sbflags = m.sbflags;
    if (l.status !== ST_GRANTED) {
      this.sendMsg(M_CONVERT_REPLY, l.node, l.nodeid, l, r, EBUSY, 0);
      return;
    }
    l.rqmode = m.rqmode;
    const reply = !isDown(l.grmode, l.rqmode);
    const err = this.doConvert(r, l);
    if (reply) this.sendMsg(M_CONVERT_REPLY, l.node, l.nodeid, l, r, err, 0);
    this.doConvertEffects(r, l, err);
  }

  private receiveUnlock(nls: NodeLs, m: Msg): void {
    const l = this.findMstcpy(nls, m, true);
    if (!l) return;
    const r = l.res;
    l.exflags = m.exflags;
    l.sbflags = m.sbflags;
    this.delLkb(r, l);
    l.grmode = IV;
    this.sendMsg(M_UNLOCK_REPLY, l.node, l.nodeid, l, r, EUNLOCK, 0);
    this.grantPendingLocks(r);
    this.kill(l);
  }

  private receiveCancel(nls: NodeLs, m: Msg): void {
    const l = this.findMstcpy(nls, m, false);
    if (!l) return;
    const r = l.res;
    l.exflags = m.exflags;
    l.sbflags = m.sbflags;
    const rv = this.revertLock(r, l);
    const err = rv ? ECANCEL : 0;
    this.sendMsg(M_CANCEL_REPLY, l.node, l.nodeid, l, r, err, 0);
    if (err) this.grantPendingLocks(r);
    if (rv < 0) this.kill(l);
  }

  // ------------------------------------------ node side: replies and asts

  private findPc(nls: NodeLs, m: Msg): Lkb | null {
    const l = nls.map.get(m.remid);
    if (!l || l.mstcpy || l.nodeid !== m.from) return null;
    return l;
  }

  private receiveRequestReply(nls: NodeLs, m: Msg): void {
    const l = this.findPc(nls, m);
    if (!l) return;
    if (this.removeFromWaiters(l, M_REQUEST_REPLY, m)) return;
    const result = m.result;
    if (result === EAGAIN) {
      this.queueCast(l, EAGAIN);
      l.ovCancel = l.ovUnlock = false;
      this.kill(l);
      this.hooks.wake(l);
      return;
    }
    if (result === EINPROGRESS || result === 0) {
      l.sbflags = m.sbflags;
      l.remid = m.lkid;
      if (l.sbflags & SBF.ALTMODE) this.mungeAltmode(l);
      if (result) l.status = ST_WAITING;
      else {
        this.grantLockPc(l);
        this.queueCast(l, 0);
      }
    } else throw new Error(`sim: unexpected request reply ${result}`);
    if (l.ovUnlock && (result === 0 || result === EINPROGRESS)) {
      l.ovUnlock = l.ovCancel = false;
      this.sendCommon(l, M_UNLOCK);
    } else if (l.ovCancel && result === EINPROGRESS) {
      l.ovUnlock = l.ovCancel = false;
      this.sendCommon(l, M_CANCEL);
    } else {
      if (l.ovCancel) this.stats.cancelRaces++;
      l.ovUnlock = l.ovCancel = false;
    }
    this.hooks.wake(l);
  }

  private receiveConvertReply(nls: NodeLs, m: Msg): void {
    const l = this.findPc(nls, m);
    if (!l) return;
    if (this.removeFromWaiters(l, M_CONVERT_REPLY, m)) return;
    this.convertReplyBody(l, m);
    this.hooks.wake(l);
  }

  private convertReplyBody(l: Lkb, m: Msg): void {
    switch (m.result) {
      case EAGAIN:
        this.queueCast(l, EAGAIN);
        break;
      case EDEADLK:
        if (!m.stub) l.sbflags = m.sbflags;
        this.revertLockPc(l);
        this.queueCast(l, EDEADLK);
        break;
      case EINPROGRESS:
        if (!m.stub) l.sbflags = m.sbflags;
        if (l.sbflags & SBF.DEMOTED) {
          l.grmode = NL;
          l.demoted = true;
        }
        l.status = ST_CONVERT;
        break;
      case 0:
        if (!m.stub) l.sbflags = m.sbflags;
        if (l.sbflags & SBF.DEMOTED) l.grmode = NL;
        this.grantLockPc(l);
        this.queueCast(l, 0);
        break;
      default:
        // -EBUSY from a master whose copy is not granted: nothing to do
        break;
    }
  }

  private receiveUnlockReply(nls: NodeLs, m: Msg): void {
    const l = this.findPc(nls, m);
    if (!l) return;
    this.unlockReplyBody(l, m);
    this.hooks.wake(l);
  }

  private unlockReplyBody(l: Lkb, m: Msg): void {
    if (this.removeFromWaiters(l, M_UNLOCK_REPLY, m)) return;
    if (m.result === EUNLOCK) {
      if (!m.stub) l.sbflags = m.sbflags;
      l.status = ST_NONE;
      l.grmode = IV;
      this.queueCast(l, EUNLOCK);
      this.kill(l);
    }
  }

  private receiveCancelReply(nls: NodeLs, m: Msg): void {
    const l = this.findPc(nls, m);
    if (!l) return;
    this.cancelReplyBody(l, m);
    this.hooks.wake(l);
  }

  private cancelReplyBody(l: Lkb, m: Msg): void {
    if (this.removeFromWaiters(l, M_CANCEL_REPLY, m)) {
      if (l.strays > 0) l.strays--;
      return;
    }
    if (m.result === ECANCEL) {
      if (!m.stub) l.sbflags = m.sbflags;
      const rv = this.revertLockPc(l);
      this.queueCast(l, ECANCEL);
      if (rv < 0) this.kill(l);
    } else if (m.result === 0) this.stats.cancelRaces++;
  }

  private receiveGrant(nls: NodeLs, m: Msg): void {
    const l = this.findPc(nls, m);
    if (!l) return;
    l.sbflags = m.sbflags;
    if (l.sbflags & SBF.ALTMODE) this.mungeAltmode(l);
    this.grantLockPc(l);
    this.queueCast(l, 0);
    this.hooks.wake(l);
  }

  private receiveBast(nls: NodeLs, m: Msg): void {
    const l = this.findPc(nls, m);
    if (!l) return;
    this.addCb(l, false, m.bastmode, 0, 0);
    l.highbast = m.bastmode;
  }

  // ============================================== node side: the DLM API

  /** dlm_lock() of a new lock. The caller sets the owner on the returned lock. */
  lockNew(nls: NodeLs, r: Res, mode: number, flags: number, pid: number, owner: unknown): Lkb {
    const l = this.createLkb(nls, r, false);
    l.pid = pid;
    l.owner = owner;
    if (this.mainline) this.rec(Kind.REQUEST, Src.LOCK_START, l, l.node, r.ls.id, l.id, mode, IV, flags, 0, 0, 0, 0, 0, pid, r.name);
    else this.rec(Kind.REQUEST, Src.LOCK_VALIDATED, l, l.node, r.ls.id, l.id, mode, IV, flags, 0, 0, 0, 0, 0, pid, r.name);
    l.vReq = true;
    l.vRq = mode;
    l.vFlags = flags;
    l.exflags = flags;
    l.sbflags = 0;
    l.rqmode = mode;
    l.opRq = mode;
    const err = this.requestLock(l);
    if (err === EAGAIN) {
      this.lockEnd(l, mode, flags, err);
      this.kill(l);
    }
    return l;
  }

  /** dlm_lock_end for a local refusal: the kernel traces the raw error after the completion was queued. */
  private lockEnd(l: Lkb, mode: number, flags: number, err: number): void {
    if (this.mainline && this.cfg.hazards.lockEndError) {
      this.rec(Kind.REQUEST_FAILED, Src.LOCK_END, l, l.node, l.res.ls.id, l.id, mode, l.grmode, flags, 0, err, 0, 0, 0, l.pid, l.res.name);
      this.stats.lockEndErrors++;
    }
  }

  /** _request_lock(): the master is known through an oracle directory (the first requester masters). */
  private requestLock(l: Lkb): number {
    const r = l.res;
    if (r.master === 0) r.master = l.node;
    if (r.master === l.node) {
      l.nodeid = 0;
      const err = this.doRequest(r, l);
      this.doRequestEffects(r, l, err);
      return err;
    }
    l.nodeid = r.master;
    return this.sendCommon(l, M_REQUEST);
  }

  /** validate_lock_args() for a conversion. */
  convertRefusal(l: Lkb, mode: number, flags: number): number {
    if (flags & F_QUECVT && !quecvtOk(l.grmode, mode)) return EINVAL;
    if (l.status !== ST_GRANTED) return EBUSY;
    if (l.waitType || l.waitCount) return EBUSY;
    if (l.ovUnlock || l.ovCancel) return EBUSY;
    return 0;
  }

  /** dlm_lock(CONVERT); returns the error dlm_lock() traces at its end. */
  convert(l: Lkb, mode: number, flags: number): number {
    flags |= F_CONVERT;
    const r = l.res;
    if (this.mainline) this.rec(Kind.REQUEST, Src.LOCK_START, l, l.node, r.ls.id, l.id, mode, l.grmode, flags, 0, 0, 0, 0, 0, l.pid, r.name);
    const bad = this.convertRefusal(l, mode, flags);
    if (bad) {
      if (this.mainline) this.rec(Kind.REQUEST_FAILED, Src.LOCK_END, l, l.node, r.ls.id, l.id, mode, l.grmode, flags, 0, bad, 0, 0, 0, l.pid, r.name);
      if (bad === EBUSY) this.stats.busyRefusals++;
      return bad;
    }
    if (!this.mainline) this.rec(Kind.REQUEST, Src.LOCK_VALIDATED, l, l.node, r.ls.id, l.id, mode, l.grmode, flags, 0, 0, 0, 0, 0, l.pid, r.name);
    const gr = l.grmode;
    if (isMiddle(gr, mode)) this.stats.middleConverts++;
    else if (mode < gr) this.stats.downConverts++;
    else this.stats.upConverts++;
    if (flags & F_QUECVT) this.stats.quecvtConverts++;
    l.vReq = true;
    l.vRq = mode;
    l.vFlags = flags;
    l.exflags = flags;
    l.sbflags = 0;
    l.demoted = false;
    l.rqmode = mode;
    l.opRq = mode;
    const err = this.convertLock(l);
    if (err === EAGAIN || err === EDEADLK) this.lockEnd(l, mode, flags, err);
    return err;
  }

  private convertLock(l: Lkb): number {
    const r = l.res;
    if (l.nodeid === 0) {
      const err = this.doConvert(r, l);
      this.doConvertEffects(r, l, err);
      return err;
    }
    const err = this.sendCommon(l, M_CONVERT);
    if (!err && isDown(l.grmode, l.rqmode)) {
      // down-conversions complete at once on the lock's node; the master hears later
      this.removeFromWaiters(l, M_CONVERT_REPLY, null);
      this.convertReplyBody(l, this.stub(M_CONVERT_REPLY, 0, l.nodeid, r.ls, r));
    }
    return err;
  }

  /** validate_unlock_args(); may set an overlap flag (then returns -EBUSY, which dlm_unlock turns into 0). */
  private validateUnlock(l: Lkb, flags: number): number {
    if (flags & F_CANCEL) {
      if (l.exflags & F_CANCEL) return EINVAL;
      if (l.ovUnlock || l.ovCancel) return EINVAL;
      if (l.status === ST_GRANTED && !l.waitType) return EBUSY; // nothing to cancel
      if (l.waitType === M_REQUEST) {
        l.ovCancel = true;
        return EBUSY;
      }
      if (l.waitType === M_UNLOCK || l.waitType === M_CANCEL) return EINVAL;
    } else if (flags & F_FORCEUNLOCK) {
      if (l.exflags & F_FORCEUNLOCK) return EINVAL;
      if (l.ovUnlock) return EINVAL;
      if (l.waitType === M_REQUEST) {
        l.ovUnlock = true;
        return EBUSY;
      }
      if (l.waitType === M_UNLOCK) return EINVAL;
    } else if (l.waitType || l.waitCount) return EBUSY;
    l.exflags |= flags;
    l.sbflags = 0;
    return 0;
  }

  /** Would a plain unlock be refused with -EBUSY? */
  unlockBusy(l: Lkb): boolean {
    return l.waitType !== 0 || l.waitCount !== 0;
  }

  /** dlm_unlock(), with CANCEL or FORCEUNLOCK or neither; returns the error dlm_unlock() traces at its end. */
  unlock(l: Lkb, flags: number): number {
    const r = l.res;
    const cancel = (flags & F_CANCEL) !== 0;
    if (this.mainline) this.rec(Kind.RELEASE, Src.UNLOCK_START, l, l.node, r.ls.id, l.id, MODE_NONE, l.grmode, flags, 0, 0, 0, 0, 0, l.pid, r.name);
    const pendingOp = l.waitType === M_REQUEST || l.waitType === M_CONVERT || l.status === ST_WAITING || l.status === ST_CONVERT;
    const ovBefore = cancel ? l.ovCancel : l.ovUnlock;
    const err = this.validateUnlock(l, flags);
    const overlapSet = (cancel ? l.ovCancel : l.ovUnlock) && !ovBefore;
    const accepted = err === 0 || overlapSet;
    let final = err;
    if (final === EBUSY && flags & (F_CANCEL | F_FORCEUNLOCK)) final = 0;
    if (!this.mainline && accepted) this.rec(Kind.RELEASE, Src.UNLOCK_VALIDATED, l, l.node, r.ls.id, l.id, MODE_NONE, l.grmode, flags, 0, 0, 0, 0, 0, l.pid, r.name);
    if (this.mainline ? final === 0 : accepted) l.vRel = cancel ? 2 : 1;
    if (cancel && err === EBUSY && !overlapSet) this.stats.cancelRaces++;
    if (!cancel && accepted && pendingOp) this.stats.overlapUnlocks++;
    if (err === 0) {
      if (cancel) this.cancelLock(l);
      else this.unlockLock(l);
    }
    if (this.mainline && final !== 0) {
      this.rec(Kind.RELEASE_FAILED, Src.UNLOCK_END, l, l.node, r.ls.id, l.id, MODE_NONE, l.grmode, flags, 0, final, 0, 0, 0, l.pid, r.name);
    }
    if (final === EBUSY) this.stats.busyRefusals++;
    return final;
  }

  private unlockLock(l: Lkb): void {
    const r = l.res;
    if (l.nodeid === 0) {
      this.delLkb(r, l);
      l.grmode = IV;
      this.queueCast(l, EUNLOCK);
      this.kill(l);
      this.grantPendingLocks(r);
      return;
    }
    this.sendCommon(l, M_UNLOCK);
  }

  private cancelLock(l: Lkb): void {
    const r = l.res;
    if (l.nodeid === 0) {
      const rv = this.revertLock(r, l);
      if (rv) {
        this.queueCast(l, ECANCEL);
        if (rv < 0) this.kill(l);
        this.grantPendingLocks(r);
      }
      return;
    }
    this.sendCommon(l, M_CANCEL);
  }

  /** The owner may act: the lock is granted with nothing pending and every callback delivered. */
  idle(l: Lkb): boolean {
    // (A real application could issue its next operation while a moot cancel's
    // reply is still in flight; if it then cancels again, the kernel takes the
    // stale reply for the new cancel and the lock hangs. The simulated users
    // wait for such stray replies, so executions stay live.)
    return !l.dead && l.status === ST_GRANTED && l.waitType === 0 && l.waitCount === 0 && !l.ovUnlock &&
      !l.ovCancel && l.cbQueued === 0 && l.strays === 0;
  }

  // ================================================ lockspace release

  /** Node ids that are members of the lockspace. */
  members(ls: LsState): number[] {
    const out: number[] = [];
    for (let n = 1; n <= this.cfg.nodes; n++) if (this.nodes[n].nls[ls.idx].member) out.push(n);
    return out;
  }

  /** lockspace_busy() */
  leaveBusy(nls: NodeLs, force: number): boolean {
    if (force === 0) return nls.map.size > 0;
    if (force === 1) {
      for (const l of nls.map.values()) if (!l.mstcpy && l.nodeid === 0 && l.grmode !== IV) return true;
      return false;
    }
    return false;
  }

  /** dlm_release_lockspace(); returns false when refused. */
  releaseLockspace(nls: NodeLs, force: number): boolean {
    const node = nls.node;
    const ls = nls.ls;
    this.rec(Kind.NODE_LEAVES_LS, Src.RELEASE_LS, null, node.id, ls.id, 0, MODE_NONE, IV, 0, 0, 0, 0, force, 0, node.adminPid, undefined);
    if (this.leaveBusy(nls, force)) {
      if (this.mainline) {
        this.rec(Kind.NODE_LEAVE_FAILED, Src.RELEASE_LS_RET, null, node.id, ls.id, 0, MODE_NONE, IV, 0, 0, EBUSY, 0, force, 0, node.adminPid, undefined);
      }
      this.stats.leaveRefused++;
      return false;
    }
    this.stats.leaves++;
    nls.member = false;
    nls.inc++;
    const gone = [...nls.map.values()];
    nls.map.clear();
    nls.free.clear();
    nls.nextId = 1;
    for (const l of gone) {
      l.dead = true;
      l.idReleased = true;
      if (!l.mstcpy) {
        const i = l.res.plocks.indexOf(l);
        if (i >= 0) l.res.plocks.splice(i, 1);
        this.hooks.onVanish(l);
      }
    }
    // its queued callbacks for this lockspace are dropped with it
    const q = node.cbq;
    const keep: CbEntry[] = [];
    for (let i = node.cbHead; i < q.length; i++) if (q[i].ls !== ls) keep.push(q[i]);
    node.cbq = keep;
    node.cbHead = 0;
    if (this.members(ls).length === 0) {
      for (const r of ls.res) {
        r.grant.length = r.convert.length = r.wait.length = 0;
        r.plocks.length = 0;
        r.master = 0;
      }
      return true;
    }
    ls.recovering = true;
    ls.departed = node.id;
    this.at(300_000 + this.rng.exp(900_000), () => this.recover(ls));
    return true;
  }

  rejoin(nls: NodeLs): void {
    nls.member = true;
    this.stats.rejoins++;
    this.hooks.onResume(nls.ls);
  }

  // ================================================ recovery

  private recover(ls: LsState): void {
    const X = ls.departed;
    const survivors = this.members(ls);
    this.stats.recoveries++;
    // dlm_recover_purge on each survivor, before its recovery grants anything (the collector's
    // fentry hook: NODE_REMOVED, node = the survivor, aux = the departed node)
    for (const n of survivors) {
      if (n === X) continue; // it rejoined before this recovery ran
      this.rec(Kind.NODE_REMOVED, Src.RECOVER_PURGE, null, n, ls.id, 0, MODE_NONE, IV, 0, 0, 0, 0, X, 0, 0, undefined);
    }
    // waiters_pre: operations waiting on the departed master
    for (const n of survivors) {
      for (const l of [...this.nodes[n].nls[ls.idx].map.values()]) {
        if (l.mstcpy || l.dead || l.nodeid !== X) continue;
        this.waitersPre(l, X);
      }
    }
    // purge the departed node's locks on surviving masters
    for (const r of ls.res) {
      if (r.master === 0 || r.master === X) continue;
      for (const q of [r.grant, r.convert, r.wait]) {
        for (let i = q.length - 1; i >= 0; i--) {
          const x = q[i];
          if (x.mstcpy && x.nodeid === X) {
            q.splice(i, 1);
            x.status = ST_NONE;
            this.kill(x);
            this.stats.purged++;
            r.recoverGrant = true;
          }
        }
      }
    }
    // re-master the departed node's resources, rebuilt from the survivors' locks
    for (const r of ls.res) if (r.master === X) this.remaster(r);
    ls.recovering = false;
    for (const l of this.recoverUnlocks.splice(0)) {
      if (l.dead) continue;
      l.exflags |= F_FORCEUNLOCK;
      this.unlockLock(l);
    }
    ls.departed = 0;
    const held = ls.held;
    ls.held = [];
    for (const m of held) this.processMsg(m);
    // waiters_post: resend requests and conversions to the new masters
    for (const n of survivors) {
      for (const l of [...this.nodes[n].nls[ls.idx].map.values()]) if (l.resend && !l.dead) this.waitersPost(l);
    }
    for (const r of ls.res) {
      if (r.recoverGrant && r.master !== 0) this.grantPendingLocks(r);
      r.recoverGrant = false;
    }
    for (const n of survivors) if (this.nodes[n].cbHead < this.nodes[n].cbq.length) this.scheduleCb(this.nodes[n]);
    this.hooks.onResume(ls);
    for (const n of survivors) for (const l of [...this.nodes[n].nls[ls.idx].map.values()]) if (!l.mstcpy) this.hooks.wake(l);
  }

  private waitersPre(l: Lkb, X: number): void {
    l.strays = 0; // replies from the departed master will never come
    let wt = l.waitType;
    let unlockRes: number = EUNLOCK;
    let cancelRes: number = ECANCEL;
    if (!wt) {
      if (l.ovCancel) {
        wt = M_CANCEL;
        if (l.grmode === IV) cancelRes = 0;
      }
      if (l.ovUnlock) {
        wt = M_UNLOCK;
        if (l.grmode === IV) unlockRes = ENOENT;
      }
    }
    const r = l.res;
    switch (wt) {
      case 0:
        return;
      case M_REQUEST:
        l.resend = true;
        break;
      case M_CONVERT:
        // up and middle conversions are resent; the rebuilt lock keeps its granted mode
        if (!isDown(l.grmode, l.rqmode)) l.resend = true;
        break;
      case M_UNLOCK:
        this.unlockReplyBody(l, this.stub(M_UNLOCK_REPLY, unlockRes, X, r.ls, r));
        break;
      case M_CANCEL:
        if (l.waitType === M_CANCEL && l.status === ST_CONVERT && !l.ovUnlock && isMiddle(l.grmode, l.rqmode)) {
          // Faking -DLM_ECANCEL would put the lock back at its old mode, but the
          // departed master may have granted the conversion (and others
          // against it) with the grant lost in flight: decide in remaster().
          l.cancelFix = true;
          break;
        }
        this.cancelReplyBody(l, this.stub(M_CANCEL_REPLY, cancelRes, X, r.ls, r));
        break;
    }
  }

  private waitersPost(l: Lkb): void {
    const mstype = l.waitType;
    const oc = l.ovCancel;
    const ou = l.ovUnlock;
    l.resend = false;
    l.ovUnlock = l.ovCancel = false;
    l.waitType = 0;
    l.waitCount = 0;
    this.stats.resends++;
    if (oc || ou) {
      if (mstype === M_REQUEST) {
        this.queueCast(l, ou ? EUNLOCK : ECANCEL);
        this.kill(l);
      } else if (mstype === M_CONVERT) {
        if (oc) {
          l.rqmode = IV;
          this.queueCast(l, ECANCEL);
        } else {
          l.exflags |= F_FORCEUNLOCK;
          this.unlockLock(l);
        }
      }
    } else if (mstype === M_REQUEST) {
      const err = this.requestLock(l);
      if (err === EAGAIN) this.kill(l);
    } else if (mstype === M_CONVERT) {
      this.convertLock(l);
    }
    this.hooks.wake(l);
  }

  private remaster(r: Res): void {
    r.grant.length = r.convert.length = r.wait.length = 0;
    const P = r.plocks.filter((l) => !l.dead);
    if (P.length === 0) {
      r.master = 0;
      return;
    }
    const candidates = [...new Set(P.map((l) => l.node))].sort((a, b) => a - b);
    const M = candidates[this.rng.int(candidates.length)];
    r.master = M;
    this.stats.remasters++;
    P.sort((a, b) => a.qseq - b.qseq || a.node - b.node || a.id - b.id);
    const mnls = this.nodes[M].nls[r.ls.idx];
    for (const pc of P) {
      pc.nodeid = pc.node === M ? 0 : M;
      if (pc.twin && pc.twin.twin === pc) pc.twin.twin = null;
      pc.twin = null;
      if (pc.status === ST_NONE) continue; // request being resent
      let ml = pc;
      if (pc.node !== M) {
        ml = this.createLkb(mnls, r, true);
        ml.nodeid = pc.node;
        ml.remid = pc.id;
        ml.pid = pc.pid;
        ml.exflags = pc.exflags;
        ml.sbflags = pc.sbflags;
        ml.grmode = pc.grmode;
        pc.remid = ml.id;
        pc.twin = ml;
        ml.twin = pc;
      }
      const st = pc.status;
      if (st === ST_GRANTED) {
        if (ml !== pc) ml.rqmode = IV;
        this.addLkb(r, ml, ST_GRANTED);
      } else {
        ml.rqmode = pc.rqmode;
        this.addLkb(r, ml, st);
      }
    }
    // A middle conversion (PR <-> CW) whose reply was lost with the departed
    // master, rebuilt at its old granted mode, may conflict with a lock the
    // departed master granted afterwards: then the conversion had been
    // granted (the kernel's recover_conversion() draws the same conclusion).
    for (const pc of P) {
      if (!pc.resend || pc.waitType !== M_CONVERT || !isMiddle(pc.grmode, pc.rqmode)) continue;
      const ml = pc.node === M ? pc : pc.twin;
      if (!ml) continue;
      if (!r.grant.some((x) => x !== ml && !compat(x.grmode, pc.grmode))) continue;
      const ou = pc.ovUnlock;
      if (pc.ovCancel) this.stats.cancelRaces++;
      pc.resend = false;
      pc.waitType = 0;
      pc.waitCount = 0;
      pc.ovUnlock = pc.ovCancel = false;
      pc.grmode = ml.grmode = pc.rqmode;
      pc.rqmode = ml.rqmode = IV;
      pc.highbast = ml.highbast = 0;
      this.queueCast(pc, 0);
      if (ou) this.recoverUnlocks.push(pc);
    }
    // The same for a cancel of a middle conversion lost with the departed master.
    for (const pc of P) {
      if (!pc.cancelFix) continue;
      pc.cancelFix = false;
      const ml = pc.node === M ? pc : pc.twin;
      pc.waitType = 0;
      pc.waitCount = 0;
      if (!ml || ml.status !== ST_CONVERT) continue;
      if (r.grant.some((x) => !compat(x.grmode, pc.grmode))) {
        this.stats.cancelRaces++;
        this.grantLock(r, ml);
        if (ml !== pc) this.grantLockPc(pc);
        this.queueCast(pc, 0);
      } else {
        this.revertLock(r, ml);
        if (ml !== pc) this.revertLockPc(pc);
        this.queueCast(pc, ECANCEL);
      }
    }
    r.recoverGrant = true;
  }

  // ================================================ injected bug

  armBug(kind: string): void {
    this.bug = {
      kind, armed: false, fired: false, pending: false, victim: null, victimMode: IV, ignored: [], held: [],
      repairing: false, truth: null,
    };
  }

  /**
   * Called when a request is about to be refused or queued: if the armed bug
   * can make it an observable incompatible grant by ignoring holders of its
   * kind, do so (the caller grants it).
   */
  private bugTry(r: Res, l: Lkb, now: boolean, recover: boolean): boolean {
    const bug = this.bug!;
    if (r.ls.recovering) return false;
    if (l.exflags & (F_ALTPR | F_ALTCW | F_CONVDEADLK)) return false;
    if (l.grmode !== IV && isDown(l.grmode, l.rqmode)) return false;
    if (l.sbflags & SBF.DEMOTED) return false;
    const v = this.nodeSide(l);
    if (!v || v.dead || v.frozen || !v.vReq || v.vRel !== 0 || v.ovCancel || v.ovUnlock) return false;
    if (v.waitType === M_CANCEL || v.waitType === M_UNLOCK) return false;
    const mode = l.rqmode;
    const conf: Lkb[] = [];
    for (const x of r.grant) if (x !== l && !compat(x.grmode, mode)) conf.push(x);
    const nGranted = conf.length;
    for (const x of r.convert) if (x !== l && !compat(x.grmode, mode)) conf.push(x);
    if (conf.length === 0) return false;
    const ignored: { lkb: Lkb; eff: number }[] = [];
    for (let i = 0; i < conf.length; i++) {
      const x = conf[i];
      const inGrant = i < nGranted;
      const h = this.nodeSide(x);
      if (!h || h.dead || h.frozen || h.vRel === 1) return false;
      const eff = this.vEff(h);
      if (eff !== x.grmode || compat(eff, mode)) return false;
      switch (bug.kind) {
        case 'ignore-remote-holder':
          if (!inGrant || h.node === v.node || h.vReq) return false;
          break;
        case 'ignore-local-holder':
          if (!inGrant || h.node !== v.node || h.vReq) return false;
          break;
        case 'ignore-converting-holder':
          if (inGrant || !h.vReq || h.vGr === IV || isMiddle(x.grmode, x.rqmode) || !leq(x.grmode, x.rqmode) ||
            x.grmode === x.rqmode || x.exflags & F_CONVDEADLK || x.sbflags & SBF.DEMOTED) return false;
          break;
        default:
          return false;
      }
      ignored.push({ lkb: h, eff });
    }
    if (!this.canGrant(r, l, now, recover, new Set(conf))) return false;
    bug.fired = true;
    bug.pending = true;
    bug.victim = v;
    bug.victimMode = mode;
    bug.ignored = ignored;
    bug.held = conf;
    v.frozen = true;
    for (const g of ignored) g.lkb.frozen = true;
    return true;
  }

  private checkTruth(l: Lkb, status: number, idx: number): void {
    const bug = this.bug;
    if (bug === null || !bug.pending || bug.victim !== l || status !== 0) return;
    const r = l.res;
    bug.truth = {
      kind: bug.kind,
      recordIndex: idx,
      ts: this.clock,
      ls: r.ls.id,
      name: r.name.slice(),
      victim: { node: l.node, lkb: l.id, mode: bug.victimMode },
      ignored: bug.ignored.map((g) => ({ node: g.lkb.node, lkb: g.lkb.id, effectiveMode: g.eff })),
    };
    bug.pending = false;
    // The master now holds an incompatible pair, against which its own rules
    // would misbehave (e.g. block a down-conversion that the node already
    // completed). Keep it to exactly one incompatible grant: the ignored
    // holders unlock, and the victim stays still until the master dropped them.
    bug.repairing = true;
    for (const g of bug.ignored) {
      g.lkb.frozen = false;
      g.lkb.release = true;
    }
    this.hooks.onUnfreeze();
    this.repairCheck();
  }

  private repairCheck(): void {
    const bug = this.bug;
    if (bug === null || !bug.repairing) return;
    for (const h of bug.held) if (!h.dead) return;
    bug.repairing = false;
    if (bug.victim) bug.victim.frozen = false;
    this.hooks.onUnfreeze();
  }

  // ================================================ run loop

  run(maxEvents: number): void {
    let n = 0;
    for (;;) {
      const e = this.q.pop();
      if (!e) break;
      if (e.t > this.now) this.now = e.t;
      e.run();
      if (++n > maxEvents) throw new Error(`sim: no quiescence after ${maxEvents} steps (seed ${this.cfg.seed})`);
    }
  }
}


