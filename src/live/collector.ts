// openCollector(): the live BPF collector (mode 'live') or its DLM-less twin (mode 'test',
// where records are fed through the BPF test program into the same ring). Both hand
// whole 128-byte records to onBatch callbacks, ready for Monitor.consume().
import * as fs from 'fs';
import { release } from 'os';
import { loadNative, NativeLoadError, type BtfFacts, type NativeCollector, type NativeBinding } from '../native';
import { RecordBuffer, writeRecord } from '../record/buffer';
import { Kind, RECORD_SIZE, RF_SYNTH, W } from '../record/layout';
import type { ProbeInfo } from '../io/capture';
import { bpfPrivilegeProblem, configfsNodeId, DLM_BTF, LiveError, ringSize, VMLINUX_BTF } from './env';
import { planProbes, PROBES, type Flavor, type ProbePlan, type ProbeRole } from './probes';

export interface CollectorOptions {
  mode: 'live' | 'test';
  /** this node's DLM id (mainline kernels); default: from configfs */
  nodeId?: number;
  /** ring buffer bytes (rounded up to a power of two), default 16 MiB */
  ringBytes?: number;
  /** keep only these lockspace (global) ids */
  lockspaces?: number[];
  /** keep only resources whose name starts with these bytes */
  namePrefix?: Uint8Array | string;
  /** records per batch handed to onBatch (default 8192) */
  batchRecords?: number;
  /** close on SIGINT/SIGTERM (default: true in live mode) */
  handleSignals?: boolean;
  /** called after a signal closed the collector; default: re-raise the signal */
  onSignal?: (signal: NodeJS.Signals) => void;
  /** BTF files to decide from instead of /sys/kernel/btf (tests, diagnostics) */
  btf?: { vmlinux?: string; dlm?: string };
}

export interface LiveProbeInfo extends ProbeInfo {
  /** BPF program */
  prog: string;
  role?: ProbeRole;
  loaded: boolean;
}

export interface CollectorStats {
  /** hits per hook (loaded programs only), counted before any filter */
  perProbe: Record<string, number>;
  /** failed ring reservations (events lost) */
  drops: number;
  /** records handed to onBatch, LOSS records included */
  records: number;
  batches: number;
  /** drops not reported yet by a LOSS record in the stream */
  lossPending: number;
}

export interface Collector {
  readonly mode: 'live' | 'test';
  readonly probes: LiveProbeInfo[];
  /** node id written into records (mainline), null when unknown or per-lockspace (namespace) */
  readonly nodeId: number | null;
  readonly kernel: string;
  readonly flavor: Flavor | 'test';
  readonly notes: string[];
  readonly plan?: ProbePlan;
  readonly ringBytes: number;
  /** bytes: whole records, a view valid only during the call */
  onBatch(cb: (bytes: Uint8Array) => void): void;
  /** start draining from the event loop */
  start(): void;
  /** drain now (synchronously); returns records delivered */
  drain(): number;
  /** test mode: records through the BPF test program and the ring; drains after each run unless drain=false */
  feed(records: RecordBuffer | Uint8Array, opts?: { drain?: boolean }): number;
  stats(): CollectorStats;
  /** kernel run time per loaded program (enables BPF stats on first call) */
  progStats(): { prog: string; runCnt: number; runTimeNs: number }[];
  /** the underlying addon object (benchmarks) */
  readonly native: NativeCollector;
  /** drain what is left, report unreported drops as a final LOSS record, detach, free */
  close(): void;
  readonly closed: boolean;
}

function wrapNativeError(e: unknown): never {
  if (e instanceof NativeLoadError) throw new LiveError(e.code, e.message);
  if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string') {
    throw new LiveError((e as unknown as { code: string }).code, e.message);
  }
  throw e;
}

/** Check the machine and decide the probe set (live mode). Throws LiveError. */
export function planLive(n: NativeBinding, btf?: { vmlinux?: string; dlm?: string }): { facts: BtfFacts; plan: ProbePlan } {
  if (!btf?.vmlinux && !fs.existsSync(VMLINUX_BTF)) {
    throw new LiveError('NO_BTF', `${VMLINUX_BTF} is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is needed for CO-RE and fentry)`);
  }
  const facts = n.btfFacts(btf);
  if (!facts.vmlinux) throw new LiveError('NO_BTF', `cannot read the kernel's BTF (${btf?.vmlinux ?? VMLINUX_BTF})`);
  if (facts.dlm === 'none') {
    throw new LiveError('DLM_NOT_LOADED',
      `the dlm module is not loaded (no ${DLM_BTF}, and vmlinux has no dlm types): run "modprobe dlm" first; ` +
      'its BTF must exist when dlm-rv loads its BPF programs');
  }
  const plan = planProbes(facts);
  if (!plan.probes.some((p) => p.load)) {
    throw new LiveError('NO_DLM_HOOKS',
      `dlm is loaded (${facts.dlm}) but none of the hooks dlm-rv knows matches this kernel (${release()}):\n` +
      plan.probes.map((p) => `  ${p.hook} [${p.prog}]: ${p.reason}`).join('\n'));
  }
  return { facts, plan };
}

export function openCollector(opts: CollectorOptions): Collector {
  const mode = opts.mode;
  if (mode !== 'live' && mode !== 'test') throw new LiveError('BAD_OPTION', `mode must be 'live' or 'test' (got ${String(mode)})`);
  const priv = bpfPrivilegeProblem();
  if (priv) throw new LiveError('NOT_PRIVILEGED', priv);
  let n: NativeBinding;
  try {
    n = loadNative();
  } catch (e) {
    wrapNativeError(e);
  }
  const lockspaces = opts.lockspaces ?? [];
  if (lockspaces.length > n.maxLockspaceFilter) throw new LiveError('BAD_OPTION', `at most ${n.maxLockspaceFilter} lockspace ids`);
  for (const l of lockspaces) if (!Number.isInteger(l) || l < 0 || l > 0xffffffff) throw new LiveError('BAD_OPTION', `bad lockspace id ${l}`);
  const prefix = typeof opts.namePrefix === 'string' ? new TextEncoder().encode(opts.namePrefix) : opts.namePrefix;
  if (prefix && prefix.length > 64) throw new LiveError('BAD_OPTION', 'the name prefix is longer than 64 bytes');
  const ringBytes = ringSize(opts.ringBytes);

  let plan: ProbePlan | undefined;
  let nodeId: number | null = null;
  const notes: string[] = [];
  if (mode === 'live') {
    plan = planLive(n, opts.btf).plan;
    notes.push(...plan.notes);
    if (plan.nsNodeIds) {
      nodeId = null;
    } else {
      const id = opts.nodeId ?? configfsNodeId();
      if (id === undefined) notes.push('node id unknown (no configfs comms entry with local=1): records carry node 0; set it with the nodeId option');
      nodeId = id ?? null;
    }
  } else {
    nodeId = opts.nodeId ?? null;
  }

  let nc: NativeCollector;
  try {
    nc = new n.Collector({
      mode,
      programs: mode === 'live' ? plan!.probes.filter((p) => p.load).map((p) => p.prog) : ['test_feed'],
      ringBytes,
      nodeId: nodeId ?? 0,
      nsNodeIds: plan?.nsNodeIds ?? false,
      nsNodeOffsets: plan?.nsNodeOffsets,
      lockspaces,
      namePrefix: prefix,
      batchRecords: opts.batchRecords,
    });
  } catch (e) {
    wrapNativeError(e);
  }

  // ---- the probe list: planned-off ones with their reason, loaded ones with attach results
  const status = new Map(nc.probes().map((s) => [s.prog, s]));
  const probes: LiveProbeInfo[] = [];
  if (plan) {
    const addcbOn = status.get('add_cb')?.attached === true;
    for (const p of plan.probes) {
      const s = status.get(p.prog);
      let role = p.role;
      if (role === 'completion-history' && !addcbOn) role = 'completion';
      if (role === 'blocking-history' && !addcbOn) role = 'blocking';
      if ((role === 'completion' || role === 'blocking') && addcbOn && p.prog !== 'add_cb') role = role === 'completion' ? 'completion-history' : 'blocking-history';
      if (!p.load) {
        probes.push({ name: p.hook, prog: p.prog, attached: false, loaded: false, role, reason: p.reason });
      } else {
        probes.push({ name: p.hook, prog: p.prog, attached: !!s?.attached, loaded: !!s?.loaded, role, ...(s?.reason ? { reason: s.reason } : {}) });
      }
    }
    const attached = probes.filter((p) => p.attached);
    if (!attached.length) {
      nc.close();
      throw new LiveError('NO_DLM_HOOKS', 'no dlm hook could be attached:\n' + probes.map((p) => `  ${p.name} [${p.prog}]: ${p.reason ?? 'not attached'}`).join('\n'));
    }
    if (!attached.some((p) => p.role === 'completion')) notes.push('no completion source attached: grants are not seen');
  } else {
    const s = status.get('test_feed');
    probes.push({ name: 'raw_tp/test_feed', prog: 'test_feed', attached: false, loaded: !!s?.loaded, role: 'test', reason: 'test mode: BPF_PROG_TEST_RUN only' });
  }

  // ---- batches, the final LOSS, signals
  const listeners: ((bytes: Uint8Array) => void)[] = [];
  let lastTs = 0;
  let synthRecords = 0;
  const dispatch = (bytes: Uint8Array): void => {
    const n = bytes.byteLength / RECORD_SIZE;
    if (n > 0) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset + (n - 1) * RECORD_SIZE, 8);
      lastTs = dv.getUint32(W.tsLo * 4, true) + dv.getUint32(W.tsHi * 4, true) * 4294967296;
    }
    for (const l of listeners) l(bytes);
  };
  nc.onBatch(dispatch);

  let closed = false;
  let statsOn = false;
  let finalStats: CollectorStats | undefined;
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const onSig = (sig: NodeJS.Signals): void => {
    c.close();
    if (opts.onSignal) opts.onSignal(sig);
    else process.kill(process.pid, sig); // listeners are gone: the default action now
  };
  const handleSignals = opts.handleSignals ?? mode === 'live';
  if (handleSignals) for (const s of sigs) process.once(s, onSig);

  const hookOf = new Map<number, string>(PROBES.map((p) => [p.id, p.hook]));
  const loadedIds = PROBES.filter((p) => status.get(p.prog)?.loaded).map((p) => p.id);

  const c: Collector = {
    mode,
    probes,
    nodeId,
    kernel: release(),
    flavor: plan ? plan.flavor : 'test',
    notes,
    plan,
    ringBytes,
    native: nc,
    onBatch(cb) {
      listeners.push(cb);
    },
    start() {
      nc.start();
    },
    drain() {
      return nc.drain();
    },
    feed(records, o) {
      if (mode !== 'test') throw new LiveError('BAD_OPTION', 'feed() is for test mode');
      const bytes = records instanceof RecordBuffer ? records.bytes() : records;
      return nc.feed(bytes, o?.drain ?? true);
    },
    stats() {
      if (finalStats) return finalStats;
      const s = nc.stats();
      const perProbe: Record<string, number> = {};
      for (const id of loadedIds) perProbe[hookOf.get(id)!] = s.hits[id];
      return { perProbe, drops: s.drops, records: s.records + synthRecords, batches: s.batches, lossPending: s.lossPending };
    },
    progStats() {
      if (closed) return [];
      if (!statsOn) statsOn = nc.enableStats();
      return nc.progStats().map((p) => ({ prog: p.prog, runCnt: p.runCnt, runTimeNs: p.runTimeNs }));
    },
    close() {
      if (closed) return;
      closed = true;
      if (handleSignals) for (const s of sigs) process.removeListener(s, onSig);
      try {
        nc.stop();
        nc.drain();
        const lost = nc.takeLoss();
        if (lost > 0) {
          // drops after the last record: the stream ends with the LOSS that reports them
          const rb = new RecordBuffer(1);
          const i = rb.reserve();
          writeRecord(rb.u32, rb.i32, rb.u8, i, { kind: Kind.LOSS, ts: lastTs, node: nodeId ?? 0, ls: 0, aux: Math.min(lost, 0xffffffff), rflags: RF_SYNTH });
          synthRecords++;
          dispatch(rb.bytes());
        }
        finalStats = c.stats();
      } finally {
        nc.close();
      }
    },
    get closed() {
      return closed;
    },
  };
  return c;
}
