// Test helper: build record streams from compact event objects (the same
// vocabulary as event files), without going through the NDJSON parser.
import { RecordBuffer } from '../../src/record/buffer';
import { Kind, LKF, MODE_NONE, modeFromName } from '../../src/record/layout';
import { Monitor, type MonitorOptions } from '../../src/monitor/monitor';

export type Ev =
  | { ev: 'request'; node: number; lkb: number; res: string; mode: string; flags?: number; ls?: number; user?: boolean }
  | { ev: 'request_failed'; node: number; lkb: number; res?: string; error?: number; ls?: number }
  | { ev: 'release'; node: number; lkb: number; res?: string; flags?: number; ls?: number }
  | { ev: 'release_failed'; node: number; lkb: number; res?: string; error?: number; ls?: number }
  | { ev: 'completion'; node: number; lkb: number; res: string; status?: number; mode?: string; sbflags?: number; ls?: number; history?: boolean }
  | { ev: 'blocking'; node: number; lkb: number; res: string; mode: string; ls?: number }
  | { ev: 'node_leaves_ls'; node: number; ls?: number }
  | { ev: 'node_leave_failed'; node: number; error?: number; ls?: number }
  | { ev: 'loss'; count: number };

const KINDS: Record<string, number> = {
  request: Kind.REQUEST, request_failed: Kind.REQUEST_FAILED, release: Kind.RELEASE, release_failed: Kind.RELEASE_FAILED,
  completion: Kind.COMPLETION, blocking: Kind.BLOCKING, node_leaves_ls: Kind.NODE_LEAVES_LS,
  node_leave_failed: Kind.NODE_LEAVE_FAILED, loss: Kind.LOSS,
};

export function records(evs: Ev[]): RecordBuffer {
  const rb = new RecordBuffer(evs.length + 1);
  let t = 1000;
  for (const e of evs) {
    const a = e as Record<string, unknown>;
    const mode = typeof a.mode === 'string' ? modeFromName(a.mode) : MODE_NONE;
    if (mode === undefined) throw new Error(`bad mode ${a.mode}`);
    rb.push({
      kind: KINDS[e.ev],
      ts: (t += 1000),
      node: (a.node as number) ?? 0,
      ls: (a.ls as number) ?? 7,
      lkb: (a.lkb as number) ?? 0,
      mode,
      flags: (a.flags as number) ?? 0,
      status: (a.status as number) ?? 0,
      error: (a.error as number) ?? 0,
      sbFlags: (a.sbflags as number) ?? 0,
      aux: (a.count as number) ?? 0,
      rflags: (a.history ? 1 : 0) | (a.user ? 2 : 0),
      name: typeof a.res === 'string' ? Buffer.from(a.res, 'latin1') : undefined,
    });
  }
  return rb;
}

export function run(evs: Ev[], opts: MonitorOptions = {}): Monitor {
  const m = new Monitor(opts);
  m.consume(records(evs).bytes());
  return m;
}

export const F = LKF;
