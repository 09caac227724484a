// dlm-rv against a real DLM: Debian's 6.1 and 6.12 kernels booted in qemu (test/vm/run.sh), the
// live collector running in every guest while a workload runs, recording a capture and writing a
// report back to the host. Per kernel: one node running dlmload (libdlm contention, cancels,
// refused operations, an owner SIGKILLed while holding and waiting) then gfs2 (mount, thousands
// of glock requests, unmount without unlocks), in one boot; and two nodes contending on one
// shared gfs2 (same files, same directories, both unmount); three nodes the same way (6.12); and
// a node that crashes holding locks while the other recovers without it (6.1 and 6.12). At most two
// guests run at a time, except the three-node run, alone.
// In the two-node runs each guest streams its records live (collect.js --send, and --record) to
// the central verifier running here (collect.js --serve), which merges them causally into one
// cluster-wide verdict; each node's own verdict then comes from replaying its capture here.
//
// Checked for every node and workload: the probe set is the one this kernel must get; the events
// counted from the capture are exactly what the workload did (dlmload's own account, and tracefs,
// which the guest scripts run beside the collector); zero violations, zero unconfirmed, zero
// losses; the capture replayed on the host gives the same verdict; the capture with one real
// grant raised to a conflicting mode gives exactly that one violation (test/helpers/mutate.ts).
//
// Needs root (apt-get, qemu, a 9p export of /). The first run installs the packages and downloads
// the two kernels into test/vm/cache/ (170 MB of .deb, 800 MB extracted). If the VMs cannot run, these tests FAIL
// with the reason; DLMRV_SKIP_VM=1 skips them (the reason is in each title).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, COLLECT, readReport, ROOT } from '../helpers/cli';
import { applyMutation, compatible, findMutation, mutateCapture, mutateMergedCaptures, type MutationSearch } from '../helpers/mutate';
import { readCapture } from '../../src/io/capture';
import { decodeRecord } from '../../src/record/decode';
import { RecordBuffer } from '../../src/record/buffer';
import { Kind, RECORD_SIZE, RECORD_WORDS, RF_HISTORY, STATUS, Src, W } from '../../src/record/layout';
import { Merger, runMerge } from '../../src/merge';
import { CaptureFile } from '../../src/merge/sources';
import { Monitor } from '../../src/monitor/monitor';
import { PROBES } from '../../src/live/probes';
import { countCapture, expectedProbes, get, mergeShifted, messageAlignment, parseProbeLines, probeSummary, readCounts, STATUSES, type CaptureCounts } from './analyze';

const VMDIR = join(ROOT, 'test/vm');
const RUN_SH = join(VMDIR, 'run.sh');
const OUTBASE = join(VMDIR, 'cache/out/vitest');
const SKIP = process.env.DLMRV_SKIP_VM ? `DLMRV_SKIP_VM=${process.env.DLMRV_SKIP_VM} is set` : '';
if (SKIP) process.stdout.write(`\n[dlm-rv VM tests SKIPPED] ${SKIP}\n`);
const title = (t: string) => (SKIP ? `${t} [SKIPPED: ${SKIP}]` : t);
// development: DLMRV_VM_REUSE=1 checks the results of the last runs again without booting anything
const REUSE = process.env.DLMRV_VM_REUSE === '1';

// the collector each guest runs around each workload; $VM_NODE_OUT and $VM_WORKLOAD are the guest's
const COLLECTOR = `${process.execPath} ${COLLECT} --record $VM_NODE_OUT/$VM_WORKLOAD.cap --output $VM_NODE_OUT/$VM_WORKLOAD.json --no-stats`;
// ... or, streaming to the verifier on the host (run.sh --verifier-port: $VM_VERIFIER)
const SENDER = `${process.execPath} ${COLLECT} --send $VM_VERIFIER --record $VM_NODE_OUT/$VM_WORKLOAD.cap --no-stats`;

type Series = '6.1' | '6.12';
interface Run {
  id: string;
  /** suite: one node, dlmload then gfs2; pair: two nodes on one gfs2; crash: node2 dies holding locks */
  kind: 'suite' | 'pair' | 'trio' | 'crash';
  series: Series;
  nodes: 1 | 2 | 3;
  script: string;
  timeout: number;
  workloads: ('libdlm' | 'gfs2')[];
  what: string;
  out: string;
  /** the guests stream to a verifier (--serve) on the host */
  send: boolean;
  rc?: number;
  secs?: number;
  tries?: number;
  log?: string;
}
const mk = (series: Series, nodes: 1 | 2): Run => ({
  id: `${series}-${nodes}node`, kind: nodes === 1 ? 'suite' : 'pair', series, nodes,
  script: nodes === 1 ? 'suite-1node' : 'gfs2-shared',
  timeout: nodes === 1 ? 240 : 300,
  workloads: nodes === 1 ? ['libdlm', 'gfs2'] : ['gfs2'],
  what: nodes === 1 ? 'one node: dlmload, then gfs2' : 'two nodes contending on one gfs2, streaming to a verifier on the host',
  out: join(OUTBASE, `${series}-${nodes}node`),
  send: nodes > 1,
});
const trio = (series: Series): Run => ({
  id: `${series}-3node`, kind: 'trio', series, nodes: 3, script: 'gfs2-shared', timeout: 360, workloads: ['gfs2'],
  what: 'three nodes contending on one gfs2, streaming to a verifier on the host',
  out: join(OUTBASE, `${series}-3node`), send: true,
});
const crash = (series: Series): Run => ({
  id: `${series}-crash`, kind: 'crash', series, nodes: 2, script: 'gfs2-crash', timeout: 360, workloads: [],
  what: 'node2 crashes holding gfs2 locks, node1 recovers without it and takes them; both stream to the verifier',
  out: join(OUTBASE, `${series}-crash`), send: true,
});
// the verifier's report and log sit beside the run's directory (run.sh empties that one)
const liveReport = (r: Run) => `${r.out}.serve.json`;
const serveLog = (r: Run) => `${r.out}.serve.log`;
// the two single-node runs go together, then each two-node run alone: never more than 2 guests
// development: DLMRV_VM_ONLY=6.12-2node[,...] runs (and tests) only those
const ONLY = process.env.DLMRV_VM_ONLY?.split(',').filter(Boolean);
const RUNS: Run[] = [mk('6.1', 1), mk('6.12', 1), mk('6.1', 2), mk('6.12', 2), trio('6.12'), crash('6.1'), crash('6.12')].filter((r) => !ONLY || ONLY.includes(r.id));
if (ONLY) process.stdout.write(`\n[dlm-rv VM tests] DLMRV_VM_ONLY=${ONLY.join(',')}: only ${RUNS.map((r) => r.id).join(', ') || 'nothing'}\n`);
const MAX_GUESTS = 2;

let prepareSecs = 0, totalSecs = 0, setupError: Error | undefined;

function sh(cmd: string, args: string[], logFile?: string): Promise<{ code: number; out: string; secs: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', (e) => { out += `\n${e.message}\n`; });
    p.on('close', (code, sig) => {
      if (logFile) writeFileSync(logFile, out);
      resolve({ code: code ?? (sig ? 128 : -1), out, secs: (Date.now() - t0) / 1000 });
    });
  });
}

const tail = (s: string, n = 30) => s.trimEnd().split('\n').slice(-n).join('\n');

async function runOne(r: Run, t0: number): Promise<void> {
  mkdirSync(r.out, { recursive: true });
  if (REUSE) {
    const txt = existsSync(join(r.out, 'run.txt')) ? readFileSync(join(r.out, 'run.txt'), 'utf8') : '';
    const m = /exit (\d+)\s*$/.exec(txt);
    process.stdout.write(`[vm] DLMRV_VM_REUSE=1: ${r.id}: the results of an earlier run (${m ? `exit ${m[1]}` : 'none'}), nothing booted\n`);
    r.rc = m ? Number(m[1]) : -1; r.secs = 0; r.log = txt;
    return;
  }
  const args = ['--kernel', r.series, '--nodes', String(r.nodes), '--script', join(VMDIR, 'guest', `${r.script}.sh`),
    '--timeout', String(r.timeout), '--out', r.out, '--env', `COLLECTOR=${r.send ? SENDER : COLLECTOR}`,
    '--env', `COLLECTOR_READY=${r.send ? 'streaming to' : 'monitoring'}`];
  for (r.tries = 1; ; r.tries++) {
    const serve = r.send ? await startServe(r) : undefined;
    const res = await sh(RUN_SH, serve ? [...args, '--verifier-port', String(serve.port)] : args, `${r.out}.log`);
    r.rc = res.code; r.secs = (r.secs ?? 0) + res.secs; r.log = res.out;
    if (serve) await serve.done(res.code === 0 ? 60_000 : 0);
    // 101: a guest did not reach the end of its script (boot, cluster stack): the harness, not
    // dlm-rv; one retry while the time budget allows, said out loud
    if (res.code !== 101 || r.tries >= 2 || Date.now() - t0 > 8 * 60_000) break;
    process.stdout.write(`[vm] ${r.id}: a guest did not finish (exit 101), retrying once:\n${tail(res.out, 12)}\n`);
  }
}

/**
 * The central verifier for a run's guests: collect.js --serve on a free loopback port, until both
 * streams have ended (the guests' senders stop at the end of their script). done(wait) waits that
 * long for it to stop on its own, then stops it with SIGINT (it still writes its report); its log and
 * exit code go to serveLog(r).
 */
function startServe(r: Run): Promise<{ port: number; done: (waitMs: number) => Promise<void> }> {
  return new Promise((resolve, reject) => {
    // a crashed node's stream never ends: it departs after --depart-ms without a connection
    const args = ['--serve', '127.0.0.1:0', '--streams', String(r.nodes), '--output', liveReport(r), ...(r.kind === 'crash' ? ['--depart-ms', '15000'] : [])];
    const p = spawn(process.execPath, [COLLECT, ...args],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '', port = 0, code: number | undefined;
    const exited = new Promise<void>((res) => p.on('close', (c, sig) => {
      code = c ?? (sig ? 128 : -1);
      writeFileSync(serveLog(r), log + `[exit ${code}]\n`);
      res();
    }));
    const onData = (d: Buffer): void => {
      log += d;
      const m = /verifier listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m && !port) {
        port = Number(m[1]);
        resolve({
          port,
          done: async (waitMs) => {
            const timer = setTimeout(() => p.kill('SIGINT'), waitMs);
            await exited;
            clearTimeout(timer);
          },
        });
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    void exited.then(() => { if (!port) reject(new Error(`collect.js --serve did not start (exit ${code}):\n${log}`)); });
  });
}

/** What a --send collector said when it stopped (src/cli/send.ts, live.ts stoppedLine). */
function senderAccount(log: string): { records: number; drops: number; held: number; connections: number; lostAway: number } {
  const a = /stopped \(.*?\) after [\d.]+ s; (\d+) records, (\d+) dropped/.exec(log);
  const b = /the verifier holds all (\d+) records \((\d+) connections?\); (\d+) dropped in the kernel ring, (\d+) while the verifier was away/.exec(log);
  if (!a || !b) throw new Error(`the sender's log has no final account:\n${log}`);
  return { records: Number(a[1]), drops: Number(a[2]), held: Number(b[1]), connections: Number(b[2]), lostAway: Number(b[4]) };
}

/** Run the list, in order, with at most MAX_GUESTS guests at once. */
async function schedule(runs: Run[], t0: number): Promise<void> {
  let used = 0, next = 0;
  const running = new Set<Promise<void>>();
  while (next < runs.length || running.size) {
    // a run with more guests than MAX_GUESTS runs alone
    while (next < runs.length && (used + runs[next].nodes <= MAX_GUESTS || used === 0)) {
      const r = runs[next++];
      used += r.nodes;
      const p: Promise<void> = runOne(r, t0).then(() => { used -= r.nodes; running.delete(p); });
      running.add(p);
    }
    if (running.size) await Promise.race(running);
  }
}

beforeAll(async () => {
  if (SKIP) return;
  const t0 = Date.now();
  try {
    if (process.getuid?.() !== 0) {
      throw new Error('the VM tests need root (apt-get, qemu, a 9p export of /): run them as root, or set DLMRV_SKIP_VM=1 to skip them');
    }
    mkdirSync(OUTBASE, { recursive: true });
    // packages, both kernels (apt-get download on a fresh machine), dlmload, initramfs: once,
    // before the parallel runs, which would otherwise queue on the harness's cache lock
    for (const s of REUSE ? [] : ['6.1', '6.12']) {
      const p = await sh(RUN_SH, ['--kernel', s, '--prepare'], join(OUTBASE, `prepare-${s}.log`));
      if (p.code !== 0) throw new Error(`VM harness: preparing kernel ${s} failed (exit ${p.code}; 100 = packages, download or build):\n${tail(p.out)}`);
    }
    prepareSecs = (Date.now() - t0) / 1000;
    await schedule(RUNS, t0);
  } catch (e) {
    setupError = e as Error;
  }
  totalSecs = (Date.now() - t0) / 1000;
}, 18 * 60_000);

function mustRun(r: Run): void {
  if (setupError) throw setupError;
  if (r.rc !== 0) {
    const runTxt = existsSync(join(r.out, 'run.txt')) ? readFileSync(join(r.out, 'run.txt'), 'utf8') : '(no run.txt)';
    throw new Error(`${r.id}: test/vm/run.sh exited ${r.rc} (101 a guest did not finish, 102 timeout, else the guest script's code: ` +
      `3/4 collector did not start / exited badly, 2 tracefs counts, 1 workload)\n${runTxt}\n${tail(r.log ?? '')}\nsee ${r.out}.log and ${r.out}/`);
  }
}

// ---- what the table at the end shows
interface Row {
  run: string; node: number; wl: string; c?: CaptureCounts; rep?: any; drops?: number; replay?: string; mutation?: string;
  merged?: { records: number; violations: number; unconfirmed: number; window: number; offset: number };
}
const rows: Row[] = [];
function row(r: Run, node: number, wl: string): Row {
  let x = rows.find((y) => y.run === r.id && y.node === node && y.wl === wl);
  if (!x) { x = { run: r.id, node, wl }; rows.push(x); }
  return x;
}
/**
 * A node's own verdict: its live report, or for the runs that streamed to the verifier, the replay
 * of its capture (made once).
 */
const replays = new Map<string, any>();
function nodeReport(r: Run, dir: string, wl: string): any {
  if (!r.send) return readReport(join(dir, `${wl}.json`));
  const out = join(dir, `${wl}.replay.json`);
  if (!replays.has(out)) {
    const res = cli(['--replay', join(dir, `${wl}.cap`), '--output', out, '--quiet']);
    if (res.code !== 0) throw new Error(`collect.js --replay ${join(dir, `${wl}.cap`)} exited ${res.code}: ${res.stderr}`);
    replays.set(out, readReport(out));
  }
  return replays.get(out);
}
/** The collector's own account: records and drops (live report, or the --send log). */
function collectorAccount(r: Run, dir: string, wl: string): { records: number; drops: number } {
  if (!r.send) return nodeReport(r, dir, wl).summary.collector;
  const a = senderAccount(readFileSync(join(dir, `collector-${wl}.log`), 'utf8'));
  expect(a.held, 'the verifier holds every record the collector read').toBe(a.records);
  expect(a.lostAway).toBe(0);
  return a;
}
const cache = new Map<string, CaptureCounts>();
function counts(cap: string): CaptureCounts {
  if (!cache.has(cap)) cache.set(cap, countCapture(cap));
  return cache.get(cap)!;
}

describe('VM test plumbing (no VM needed)', () => {
  it('the expected probe table lists the collector\'s programs in its order', () => {
    const progs = PROBES.filter((p) => p.prog !== 'test_feed');
    for (const s of ['6.1', '6.12'] as const) {
      const e = expectedProbes(s).probes;
      expect(e.map((p) => [p.prog, p.hook])).toEqual(progs.map((p) => [p.prog, p.hook]));
    }
  });
});

describe.skipIf(!!SKIP)(title('dlm-rv on a real DLM (Debian 6.1 and 6.12 in qemu)'), () => {
  for (const r of RUNS) {
    describe(`${r.id}: ${r.what}`, () => {
      it(title(`the guest script${r.nodes > 1 ? 's' : ''} ran to the end with the collector (exit 0)`), () => mustRun(r));

      for (let n = 1; n <= r.nodes; n++) {
        const dir = join(r.out, `node${n}`);
        for (const wl of r.workloads) {
          const cap = join(dir, `${wl}.cap`);

          it(title(`node${n} ${wl}: the probe set is ${r.series}'s`), () => {
            mustRun(r);
            const want = expectedProbes(r.series);
            const log = parseProbeLines(readFileSync(join(dir, `collector-${wl}.log`), 'utf8'));
            expect(log.header).toContain(`probe set ${want.flavor}, node id ${n}`);
            expect(log.probes.map((p) => [p.hook, p.role, p.attached])).toEqual(want.probes.map((p) => [p.hook, p.role, p.attached]));
            want.probes.forEach((p, i) => {
              if (p.reason) expect(log.probes[i].reason, `${p.prog} (${p.hook})`).toMatch(p.reason);
              else expect(log.probes[i].reason, `${p.prog} (${p.hook})`).toBeUndefined();
            });
            const report = nodeReport(r, dir, wl);
            const c = counts(cap);
            expect(report.context.flavor).toBe(want.flavor);
            expect(c.meta.flavor).toBe(want.flavor);
            expect(c.meta.node_id).toBe(n);
            expect(c.meta.kernel_release.startsWith(r.series + '.')).toBe(true);
            // report and capture carry the same probe list as the log
            expect(report.context.probes).toEqual(log.probes.map((p) => ({ name: p.hook, attached: p.attached, ...(p.reason ? { reason: p.reason } : {}) })));
            expect(c.meta.probes).toEqual(report.context.probes);
          });

          it(title(`node${n} ${wl}: the events counted from the capture are exactly what the workload did`), () => {
            mustRun(r);
            const c = counts(cap);
            const report = nodeReport(r, dir, wl);
            const x = row(r, n, wl);
            x.c = c; x.rep = report;
            // the report counted what the capture holds, which is what the collector read
            expect(report.summary.records).toBe(c.records);
            expect(report.summary.events).toEqual(c.byKind);
            expect(collectorAccount(r, dir, wl).records).toBe(c.records);
            // every history record is a dlm_ast/dlm_bast; every main completion/blocking is dlm_add_cb's
            expect(c.historyOther).toBe(0);
            expect(Object.keys(c.mainSrc)).toEqual(['dlm_add_cb']);
            // tracefs ran beside the collector over a window enclosing it (guest/lib.sh): the
            // tracepoint-sourced records must match its counts one for one
            const tr = readCounts(join(dir, `trace-${wl}.counts`));
            expect(get(tr, 'trace_overrun')).toBe(0);
            for (const k of ['requests', 'request_failed', 'releases', 'releases_cancel', 'release_failed']) expect(get(c.main, k), `${k} vs tracefs`).toBe(get(tr, k));
            const stKeys = new Set([...Object.keys(tr), ...Object.keys(c.history), ...Object.keys(c.main)].filter((k) => k.startsWith('completion_')));
            for (const k of stKeys) expect(get(c.history, k), `history ${k} (dlm_ast) vs tracefs`).toBe(get(tr, k));
            expect(get(c.history, 'blockings'), 'history blockings (dlm_bast) vs tracefs').toBe(get(tr, 'blockings'));
            expect(get(c.main, 'msg_send'), 'msg_send vs tracefs dlm_send_message').toBe(get(tr, 'tp.dlm_send_message'));
            expect(get(c.main, 'msg_recv'), 'msg_recv vs tracefs dlm_recv_message').toBe(get(tr, 'tp.dlm_recv_message'));
            expect(c.rawUnmatched, 'REQUEST_FAILED -EAGAIN/-EDEADLK of kernel locks not right after their refusal\'s COMPLETION').toBe(0);
            if (wl === 'libdlm') expect(get(c.main, 'request_failed_raw')).toBe(0);
            expect(get(c.main, 'loss')).toBe(0);
            expect(get(c.main, 'node_leave_failed')).toBe(0);
            // dlm_recover_purge: the nodes unmount from the highest id down, and each recovery of a
            // node that stays removes the one that just left: node n removes nodes n+1 .. N, once each
            expect(get(c.main, 'node_removed'), 'NODE_REMOVED records (dlm_recover_purge)').toBe(r.nodes - n);
            for (let k = n + 1; k <= r.nodes; k++) expect(get(c.main, `node_removed_${k}`), `node ${k} removed`).toBe(1);
            if (wl === 'libdlm') {
              // dlmload's own account (see analyze.ts countCapture for why this is exact)
              const out = join(dir, 'dlmload.out');
              const exp = readCounts(out, 'expect');
              const vanished = get(readCounts(out), 'vanished_on_kill');
              expect(Object.keys(exp).length).toBeGreaterThanOrEqual(11);
              for (const [k, v] of Object.entries(exp)) expect(get(c.main, k), `${k} vs dlmload`).toBe(v);
              for (const k of stKeys) expect(get(c.main, k), `${k}: a status dlmload never expects`).toBe(get(exp, k));
              for (const s of STATUSES) expect(get(c.history, `completion_${s}`), `history completion_${s} vs dlmload`).toBe(get(exp, `completion_${s}`));
              expect(get(c.history, 'blockings')).toBe(get(exp, 'blockings'));
              expect(vanished).toBe(6);
              expect(c.ownerExit).toEqual({ synthesized: vanished, addCbUnlock: vanished });
              expect(get(c.main, 'node_leaves_ls'), 'dlmload -x releases its lockspace').toBe(1);
              expect(get(c.main, 'msg_send') + get(c.main, 'msg_recv')).toBe(0);
            } else {
              // gfs2: one dlm_add_cb per completion dlm_ast delivers, by status (kernel locks: no owner exits)
              for (const k of stKeys) expect(get(c.main, k), `${k}: dlm_add_cb vs dlm_ast`).toBe(get(c.history, k));
              // a blocking callback may be dropped after dlm_add_cb's entry (dlm_may_skip_callback)
              expect(get(c.main, 'blockings')).toBeGreaterThanOrEqual(get(c.history, 'blockings'));
              expect(c.ownerExit).toEqual({ synthesized: 0, addCbUnlock: 0 });
              expect(get(c.main, 'node_leaves_ls'), 'the unmount releases the lockspace').toBe(1);
              expect(c.records, 'gfs2 makes thousands of DLM events').toBeGreaterThan(2000);
              if (r.nodes > 1) {
                expect(get(c.main, 'blockings'), 'contention: another node asked for our locks').toBeGreaterThan(0);
                expect(get(c.main, 'msg_send')).toBeGreaterThan(0);
              }
            }
          });

          it(title(`node${n} ${wl}: zero violations, zero unconfirmed, zero losses${wl === 'libdlm' ? ' (an owner SIGKILLed)' : ' (unmount without unlocks)'}`), () => {
            mustRun(r);
            const report = nodeReport(r, dir, wl);
            const rep = r.send ? join(dir, `${wl}.replay.json`) : join(dir, `${wl}.json`);
            expect(readFileSync(join(dir, `collector-${wl}.rc`), 'utf8').trim()).toBe('0');
            if (report.violations.length || report.unconfirmed.length) {
              // a violation on a real DLM is a dlm-rv bug (or a DLM one): keep the evidence
              writeFileSync(join(dir, `${wl}.VIOLATION.json`), JSON.stringify(report, null, 1));
            }
            expect(report.violations, `report ${rep}`).toEqual([]);
            expect(report.unconfirmed, `report ${rep}`).toEqual([]);
            expect(report.summary.violations).toBe(0);
            expect(report.summary.unconfirmed).toBe(0);
            expect(report.summary.open_incidents).toBe(0);
            expect(report.summary.losses).toEqual({ events_dropped: 0, resets: 0 });
            const drops = collectorAccount(r, dir, wl).drops;
            row(r, n, wl).drops = drops;
            expect(drops).toBe(0);
            const c = counts(cap);
            if (wl === 'libdlm') expect(c.ownerExit.synthesized, 'the collector saw dlm_clear_proc_locks').toBeGreaterThan(0);
            else expect(get(c.main, 'node_leaves_ls'), 'the collector saw dlm_release_lockspace').toBe(1);
          });

          it(title(r.send
            ? `node${n} ${wl}: the verifier received exactly the records of the capture; with one grant raised to conflict, exactly that violation`
            : `node${n} ${wl}: replayed, the capture gives the same verdict; with one grant raised to conflict, exactly that violation`), () => {
            mustRun(r);
            const x = row(r, n, wl);
            if (r.send) {
              // the collector wrote each batch to the capture and to the stream: same records, same order
              const live = readReport(liveReport(r));
              const st = live.context.merge.streams.find((y: { nodes: number[] }) => y.nodes.length === 1 && y.nodes[0] === n);
              expect(st, `stream of node ${n} in ${liveReport(r)}`).toBeDefined();
              expect(st.records).toBe(counts(cap).records);
              x.replay = 'sent = cap';
            } else {
              const live = readReport(join(dir, `${wl}.json`));
              const rp = join(dir, `${wl}.replay.json`);
              const res = cli(['--replay', cap, '--output', rp, '--quiet']);
              expect(res.code, res.stderr).toBe(0);
              const again = readReport(rp);
              expect(again.violations).toEqual([]);
              expect(again.unconfirmed).toEqual([]);
              for (const k of ['records', 'events', 'history_only_events', 'events_on_unknown_locks', 'lkb_id_reuses', 'locks', 'resources', 'violations', 'unconfirmed', 'open_incidents', 'losses']) {
                expect(again.summary[k], `replay summary.${k}`).toEqual(live.summary[k]);
              }
              x.replay = 'same (0)';
            }

            const mcap = join(dir, `${wl}.mutated.cap`), mrep = join(dir, `${wl}.mutated.json`);
            const s: MutationSearch = mutateCapture(cap, mcap);
            if (!s.mutation) {
              // gfs2 holds one DLM lock per glock on a node: a node's own stream never has a second
              // lock on a resource for a raised grant to conflict with (dlmload's workers do)
              expect(wl, s.reason).toBe('gfs2');
              expect(s.maxLocksPerResource, s.reason).toBeLessThanOrEqual(1);
              x.mutation = 'n/a: 1 lock/resource';
              return;
            }
            const m = s.mutation;
            const mr = cli(['--replay', mcap, '--output', mrep, '--quiet']);
            expect(mr.code, mr.stderr).toBe(1);
            const bad = readReport(mrep);
            expect(bad.unconfirmed).toEqual([]);
            expect(bad.violations.length, JSON.stringify(bad.violations.map((v: any) => v.why))).toBe(1);
            const v = bad.violations[0];
            expect(v.seq).toBe(m.seq);
            expect(v.ls).toBe(m.ls);
            expect(v.res_hex).toBe(m.res);
            expect(v.trigger).toMatchObject({ node: m.victim.node, lkb: m.victim.lkb, event: 'completion', src: 'dlm_add_cb', status: 0, mode: 'EX', new_effective: 'EX' });
            expect(v.pairs).toEqual([{ a: { node: m.victim.node, lkb: m.victim.lkb, effective: 'EX' }, b: { node: m.holder.node, lkb: m.holder.lkb, effective: m.holder.mode } }]);
            x.mutation = `#${m.seq} ${v.res} lkb ${m.victim.lkb} ${m.victim.mode}->EX vs lkb ${m.holder.lkb} ${m.holder.mode}: 1 violation`;
          });
        }
      }

      if (r.kind === 'crash') crashTests(r);

      if (r.kind === 'pair' || r.kind === 'trio') {
        const nodes = Array.from({ length: r.nodes }, (_, i) => i + 1);
        const caps = nodes.map((n) => join(r.out, `node${n}/gfs2.cap`));
        it(title('each node\'s message sends are the other nodes\' receives from it'), () => {
          mustRun(r);
          // per sender: what it sent (to anyone) = what the others received from it (h_nodeid)
          const sent = nodes.map((n) => get(counts(caps[n - 1]).main, 'msg_send'));
          const recvFrom = nodes.map(() => 0);
          for (const c of caps) {
            const rb = readCapture(c).records;
            for (let i = 0; i < rb.count; i++) {
              const d = decodeRecord(rb.u8, rb.u32, rb.i32, i);
              if (d.kind === Kind.MSG_RECV) recvFrom[d.msgSrc - 1]++;
            }
          }
          expect(recvFrom).toEqual(sent);
          expect(Math.min(...sent)).toBeGreaterThan(0);
        });

        it(title('the verifier on the host merged the guests\' live streams causally: zero violations, every record of each node, each node\'s lag on its stats lines, the verdict of the offline merge'), () => {
          mustRun(r);
          const log = readFileSync(serveLog(r), 'utf8');
          expect(log, serveLog(r)).toMatch(/\[exit 0\]\n$/);
          expect(log).toMatch(new RegExp(`stopped \\(${r.nodes} streams ended\\)`));
          const live = readReport(liveReport(r));
          if (live.violations.length) writeFileSync(join(r.out, 'serve.VIOLATION.json'), JSON.stringify(live, null, 1));
          expect(live.violations.map((v: { why: string }) => v.why)).toEqual([]);
          expect(live.unconfirmed).toEqual([]);
          const mg = live.context.merge;
          expect(mg.ordering).toBe('causal');
          expect(mg.orphan_receives.total).toBe(0);
          expect(mg.matched_messages).toBeGreaterThan(200);
          const recs = caps.map((c) => counts(c).records);
          const senders = [...mg.senders].sort((a: { node_id: number }, b: { node_id: number }) => a.node_id - b.node_id);
          expect(senders.map((x: { node_id: number; records: number; connections: number; ended: boolean; departed: boolean }) =>
            [x.node_id, x.records, x.connections, x.ended, x.departed])).toEqual(nodes.map((n) => [n, recs[n - 1], 1, true, false]));
          expect(senders.every((x: { kernel: string }) => x.kernel.startsWith(r.series + '.'))).toBe(true);
          // the plain stats line every 10 s: each node's records and lag on the common timeline
          const lagged = log.split('\n').filter((l) => nodes.every((n) => new RegExp(`node${n} \\(node ${n}\\): \\d+ ev, lag \\d+(\\.\\d+)? m?s`).test(l)));
          expect(lagged.length, `no stats line with every node's lag in ${serveLog(r)}`).toBeGreaterThan(0);
          // the same records and verdict as the offline merge of the captures
          const out = join(r.out, 'serve-vs-replay.json');
          const res = cli(['--replay', ...caps, '--output', out, '--quiet']);
          expect(res.code, res.stderr).toBe(0);
          const off = readReport(out);
          for (const k of ['records', 'events', 'violations', 'unconfirmed', 'losses']) expect(live.summary[k], `summary.${k}`).toEqual(off.summary[k]);
          console.log(`live verifier ${r.id}: ${live.summary.records} records merged (` +
            senders.map((x: { node_id: number; records: number }) => `node ${x.node_id}: ${x.records}`).join(', ') +
            `), ${mg.matched_messages} messages matched, ${live.violations.length} violations; last stats line: ${lagged[lagged.length - 1].replace(/^dlm-rv: /, '')}`);
        });

        if (r.kind === 'pair') it(title('both nodes\' captures in one causal order: zero violations; a grant raised to conflict with the other node\'s lock: exactly that violation'), () => {
          mustRun(r);
          // an independent check of the cluster-wide verdict, beside collect.js's causal merge (next
          // test): the second node's clock is shifted into the interval every message pair allows
          // (analyze.ts messageAlignment), and the monitor is fed directly (a merge by raw
          // timestamps reports conflicts that never happened: the guests' clocks start at their boots)
          const a = readCapture(join(r.out, 'node1/gfs2.cap')).records, b = readCapture(join(r.out, 'node2/gfs2.cap')).records;
          const al = messageAlignment(a, b);
          expect(al.pairs[0]).toBeGreaterThan(100);
          expect(al.pairs[1]).toBeGreaterThan(100);
          expect(al.hi, `message pairs leave no consistent clock offset: [${al.lo}, ${al.hi}] ns`).toBeGreaterThanOrEqual(al.lo);
          const merged = mergeShifted(a, b, al.offset);
          const mon = new Monitor();
          mon.consume(merged.bytes());
          const x = row(r, 0, 'gfs2');
          x.merged = { records: merged.count, violations: mon.violations.length, unconfirmed: mon.unconfirmed.length, window: al.hi - al.lo, offset: al.offset };
          expect(mon.violations.map((v) => v.why)).toEqual([]);
          expect(mon.unconfirmed.map((v) => v.why)).toEqual([]);
          // a grant in the second half of the run (the contended files), raised to EX while the other node holds its lock
          const s = findMutation(merged, { from: Math.floor(merged.count / 2) });
          expect(s.mutation, s.reason).not.toBeNull();
          const m = s.mutation!;
          expect(m.victim.node).not.toBe(m.holder.node);
          applyMutation(merged, m);
          const bad = new Monitor();
          bad.consume(merged.bytes());
          expect(bad.unconfirmed).toEqual([]);
          expect(bad.violations.length, JSON.stringify(bad.violations.map((v) => v.why))).toBe(1);
          const v = bad.violations[0];
          expect(v.seq).toBe(m.seq);
          expect(v.res_hex).toBe(m.res);
          expect(v.trigger).toMatchObject({ node: m.victim.node, lkb: m.victim.lkb, event: 'completion', mode: 'EX', new_effective: 'EX' });
          expect(v.pairs).toEqual([{ a: { node: m.victim.node, lkb: m.victim.lkb, effective: 'EX' }, b: { node: m.holder.node, lkb: m.holder.lkb, effective: m.holder.mode } }]);
          x.mutation = `#${m.seq} ${JSON.stringify(v.res)} node ${m.victim.node} ${m.victim.mode}->EX vs node ${m.holder.node} ${m.holder.mode}: 1 violation`;
        });

        it(title('collect.js --replay of every node\'s capture merges them causally (message pairs, not clocks): zero violations; with one grant raised to conflict with another node\'s lock: exactly that violation, causal'), () => {
          mustRun(r);
          const out = join(r.out, 'merged-report.json');
          const res = cli(['--replay', ...caps, '--output', out, '--quiet']);
          expect(res.code, res.stderr).toBe(0);
          const rep = readReport(out);
          expect(rep.violations.map((v: { why: string }) => v.why)).toEqual([]);
          expect(rep.unconfirmed).toEqual([]);
          const mg = rep.context.merge;
          expect(mg.ordering).toBe('causal');
          expect(mg.streams.map((st: { nodes: number[] }) => st.nodes)).toEqual(nodes.map((n) => [n]));
          expect(mg.orphan_receives.total).toBe(0);
          expect(mg.matched_messages).toBeGreaterThan(200);
          console.log(`merged replay ${r.id}: ${rep.summary.records} records, ` +
            mg.streams.map((st: { nodes: number[]; records: number; matched_receives: number; orphan_receives: number }) =>
              `node ${st.nodes[0]} ${st.records} records, ${st.matched_receives} receives matched, ${st.orphan_receives} orphan`).join('; ') +
            `; ${rep.violations.length} violations`);

          // the mutation, found in the order the merge gives (from its second half on: the
          // contended files) and written into that node's capture; the others are unchanged
          const outs = nodes.map((n) => join(r.out, `node${n}/gfs2.merged-mutated.cap`));
          const s = mutateMergedCaptures(caps, outs, { fromFraction: 0.5 });
          expect(s.merged).toBe(rep.summary.records);
          expect(s.mutation, s.reason).not.toBeNull();
          const m = s.mutation!;
          expect(m.victim.node).not.toBe(m.holder.node);
          expect(s.file).toBe(m.victim.node - 1);
          const files = caps.map((c, i) => (i === s.file ? outs[i] : c));
          const mout = join(r.out, 'merged-mutated-report.json');
          const mr = cli(['--replay', ...files, '--output', mout, '--quiet']);
          expect(mr.code, mr.stderr).toBe(1);
          const bad = readReport(mout);
          expect(bad.unconfirmed).toEqual([]);
          expect(bad.violations.length, JSON.stringify(bad.violations.map((v: { why: string }) => v.why))).toBe(1);
          const v = bad.violations[0];
          expect(v.seq).toBe(m.seq);
          expect(v.res_hex).toBe(m.res);
          expect(v.ordering).toBe('causal');
          expect(v.trigger).toMatchObject({ node: m.victim.node, lkb: m.victim.lkb, event: 'completion', mode: 'EX', new_effective: 'EX' });
          expect(v.pairs).toEqual([{ a: { node: m.victim.node, lkb: m.victim.lkb, effective: 'EX' }, b: { node: m.holder.node, lkb: m.holder.lkb, effective: m.holder.mode } }]);
          console.log(`merged mutated replay ${r.id}: node${m.victim.node}'s record ${s.index} (merged #${m.seq}) ${JSON.stringify(v.res)} ` +
            `${m.victim.mode}->EX vs node ${m.holder.node} ${m.holder.mode}: 1 violation, ${v.ordering}`);
        });
      }
    });
  }
});

/** node2 died holding locks; node1's recovery removed it, then node1 was granted what it held. */
function crashTests(r: Run): void {
  const caps = [join(r.out, 'node1/gfs2.cap'), join(r.out, 'node2/gfs2.cap')];

  it(title('node2 crashed holding EX and PR glocks; node1 recorded its recovery (one NODE_REMOVED of node 2) and was then granted, incompatibly with them, glocks node2 held'), () => {
    mustRun(r);
    expect(existsSync(join(r.out, 'node2/vm-crashed')), 'node2 crashed on purpose (vm-crashed)').toBe(true);
    // what node2 held when its stream stopped: the last grant of each of its locks not unlocked since
    const b = readCapture(caps[1]).records;
    const held = new Map<string, number>(); // "ls:name" -> strongest mode node2 held there
    const byLock = new Map<string, { res: string; mode: number }>();
    for (let i = 0; i < b.count; i++) {
      const d = decodeRecord(b.u8, b.u32, b.i32, i);
      if (d.rflags & RF_HISTORY || d.kind !== Kind.COMPLETION) continue;
      const k = `${d.ls}:${d.lkb}`;
      if (d.status === 0 && d.mode >= 0) byLock.set(k, { res: `${d.ls}:${Buffer.from(d.name).toString('hex')}`, mode: d.mode });
      else if (d.status === STATUS.EUNLOCK) byLock.delete(k);
    }
    for (const { res, mode } of byLock.values()) held.set(res, Math.max(held.get(res) ?? -1, mode));
    expect([...held.values()].filter((m) => m === 5).length, 'node2 held EX glocks when it died').toBeGreaterThan(0);
    // node1: its recovery's NODE_REMOVED, then grants that conflict with what node2 held
    const a = readCapture(caps[0]).records;
    let removedAt = -1, taken = 0;
    for (let i = 0; i < a.count; i++) {
      const d = decodeRecord(a.u8, a.u32, a.i32, i);
      if (d.kind === Kind.NODE_REMOVED) {
        expect(removedAt, 'one NODE_REMOVED').toBe(-1);
        expect(d.aux).toBe(2);
        expect(d.src).toBe(Src.RECOVER_PURGE);
        removedAt = i;
      } else if (removedAt >= 0 && d.kind === Kind.COMPLETION && !(d.rflags & RF_HISTORY) && d.status === 0 && d.mode >= 0) {
        const h = held.get(`${d.ls}:${Buffer.from(d.name).toString('hex')}`);
        if (h !== undefined && !compatible(h, d.mode)) taken++;
      }
    }
    expect(removedAt, 'node1 recorded dlm_recover_purge removing node 2').toBeGreaterThanOrEqual(0);
    expect(taken, 'node1 granted glocks node2 held, in modes incompatible with node2\'s').toBeGreaterThan(0);
    console.log(`crash ${r.id}: node2 held ${held.size} glocks when it died (${[...held.values()].filter((m) => m === 5).length} EX); ` +
      `node1's NODE_REMOVED at its record ${removedAt}, then ${taken} grants incompatible with what node2 held`);
  });

  it(title('the live verifier: zero violations; node2\'s stream departed, node1\'s ended'), () => {
    mustRun(r);
    const log = readFileSync(serveLog(r), 'utf8');
    expect(log, serveLog(r)).toMatch(/\[exit 0\]\n$/);
    const live = readReport(liveReport(r));
    if (live.violations.length) writeFileSync(join(r.out, 'serve.VIOLATION.json'), JSON.stringify(live, null, 1));
    expect(live.violations.map((v: { why: string }) => v.why)).toEqual([]);
    expect(live.unconfirmed).toEqual([]);
    expect(live.summary.events.node_removed).toBe(1);
    const senders = [...live.context.merge.senders].sort((x: { node_id: number }, y: { node_id: number }) => x.node_id - y.node_id);
    expect(senders.map((x: { node_id: number; ended: boolean; departed: boolean }) => [x.node_id, x.ended, x.departed]))
      .toEqual([[1, true, false], [2, true, true]]);
    expect(senders[0].records).toBe(readCapture(caps[0]).records.count);
    // the crashed node's capture (written on the host's 9p share up to its last flush) holds at most what it sent
    expect(senders[1].records).toBeGreaterThanOrEqual(readCapture(caps[1]).records.count);
    const off = cli(['--replay', ...caps, '--output', join(r.out, 'replay.json'), '--quiet']);
    expect(off.code, off.stderr).toBe(0);
    console.log(`crash ${r.id}: live ${live.summary.records} records (node 1: ${senders[0].records}, node 2: ${senders[1].records} until it died), ` +
      `${live.violations.length} violations; offline replay of the captures: exit ${off.code}`);
  });

  it(title('without the survivor\'s NODE_REMOVED (node2\'s locks kept until its stream departs), the same run gives false alarms'), () => {
    mustRun(r);
    // the merged stream, as the offline merge orders it, then: no NODE_REMOVED, and node2's
    // leave (its stream's end) after everything else, as a verifier that waits for --depart-ms sees it
    const merged = new RecordBuffer(1 << 14);
    runMerge(new Merger({}), caps.map((c, i) => ({ name: c, nodes: [i + 1], capture: new CaptureFile(c) })), (x) => { merged.appendRaw(x); });
    const keep = new RecordBuffer(merged.count), late = new RecordBuffer(4);
    for (let i = 0; i < merged.count; i++) {
      const kind = merged.u32[i * RECORD_WORDS + W.kindLenMode] & 0xffff, node = merged.u32[i * RECORD_WORDS + W.node];
      const one = merged.bytes().subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
      if (kind === Kind.NODE_REMOVED) continue;
      if (kind === Kind.NODE_LEAVES_LS && node === 2) late.appendRaw(one);
      else keep.appendRaw(one);
    }
    keep.appendRaw(late.bytes());
    const withHook = new Monitor();
    withHook.consume(merged.bytes());
    expect(withHook.violations).toEqual([]);
    const without = new Monitor();
    without.consume(keep.bytes());
    expect(without.violations.length, 'node1\'s post-recovery grants against node2\'s kept locks').toBeGreaterThan(0);
    expect(without.violations.every((v) => v.pairs.every((p) => (p.a.node === 1 && p.b.node === 2) || (p.a.node === 2 && p.b.node === 1)))).toBe(true);
    console.log(`crash ${r.id}: the merged run without NODE_REMOVED and with node2's leave at the end: ${without.violations.length} false alarms; as recorded: 0`);
  });
}

afterAll(() => {
  if (SKIP) return;
  const L: string[] = [];
  const t = (s: number | undefined) => (s === undefined ? '-' : `${Math.round(s)}s`);
  L.push('', `dlm-rv VM tests: prepare ${t(prepareSecs)}; ` + RUNS.map((r) => `${r.id} ${t(r.secs)}${(r.tries ?? 1) > 1 ? ` (${r.tries} tries)` : ''} exit ${r.rc ?? '-'}`).join(', ') +
    `; total ${t(totalSecs)} (two 1-node guests together, then each multi-node run)`);
  if (setupError) L.push(`VM setup FAILED: ${setupError.message.split('\n')[0]}`);
  for (const s of ['6.1', '6.12'] as const) L.push(`probe set ${s} (${expectedProbes(s).flavor}): ${probeSummary(s)}`);
  const head = ['run', 'node', 'workload', 'records', 'req', 'req_f', 'rel(cancel)', 'rel_f', 'compl 0/-11/-35/-65537/-65538', 'block', 'hist ast/bast',
    'owner-exit', 'leave', 'msg s/r', 'viol', 'unconf', 'drops', 'lk/res peak', 'replay', 'mutation'];
  const body = rows.filter((x) => x.c).map((x) => {
    const c = x.c!, m = c.main, g = (k: string) => get(m, k);
    const hist = STATUSES.reduce<number>((n, s) => n + get(c.history, `completion_${s}`), 0);
    return [x.run, String(x.node), x.wl, String(c.records), String(g('requests')), `${g('request_failed')}${g('request_failed_raw') ? `+${g('request_failed_raw')}raw` : ''}`,
      `${g('releases')}(${g('releases_cancel')})`, String(g('release_failed')), STATUSES.map((s) => get(m, `completion_${s}`)).join('/'),
      String(g('blockings')), `${hist}/${get(c.history, 'blockings')}`, `${c.ownerExit.synthesized}+${c.ownerExit.addCbUnlock}`,
      String(g('node_leaves_ls')), `${g('msg_send')}/${g('msg_recv')}`, String(x.rep?.summary.violations ?? '-'), String(x.rep?.summary.unconfirmed ?? '-'),
      String(x.drops ?? '-'), `${x.rep?.summary.locks.peak ?? '-'}/${x.rep?.summary.resources.peak ?? '-'}`, x.replay ?? '-', x.mutation ?? '-'];
  });
  for (const x of rows.filter((y) => y.merged)) {
    const g = x.merged!;
    body.push([x.run, '1+2', 'merged', String(g.records), '', '', '', '', '', '', '', '', '', `clock ${g.offset >= 0 ? '+' : ''}${(g.offset / 1e6).toFixed(2)}ms`,
      String(g.violations), String(g.unconfirmed), '', '', `window ${Math.round(g.window / 1000)}us`, x.mutation ?? '-']);
  }
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cols: string[]) => cols.map((s, i) => (i === cols.length - 1 ? s : s.padEnd(w[i]))).join('  ');
  L.push(fmt(head), ...body.map(fmt));
  L.push('(req_f: refused at once; +N raw: dlm_lock_end\'s -EAGAIN/-EDEADLK of kernel locks, which dlm_lock() and tracefs turn into 0; the COMPLETION with that status is the refusal)');
  L.push('(merged: both nodes\' captures in one order, node2\'s clock shifted by the middle of the window every message send/receive pair allows; fed to the monitor in-process)');
  L.push('(main events only: history-only dlm_ast/dlm_bast records under "hist"; owner-exit = synthesized at dlm_clear_proc_locks + their dlm_add_cb -EUNLOCK)');
  console.log(L.join('\n'));
});
