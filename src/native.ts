// The whole surface of the native addon (native/*.cc, build/Release/dlm_rv.node), in one
// place. Nothing else imports the addon directly: src/live/ wraps it.
//
// Build it with `npm run build:native` (cmake-js; see docs/live.md for the Debian packages).

/** Prototypes as BTF spells them: one C type string per parameter. */
export interface BtfFacts {
  /** /sys/kernel/btf/vmlinux (or the given file) could be read */
  vmlinux: boolean;
  /** where the dlm types are: the dlm module's own BTF, vmlinux (built in), or nowhere */
  dlm: 'module' | 'builtin' | 'none';
  /** tracepoint name -> parameter types of btf_trace_<name>, without the leading `void *` */
  tracepoints: Record<string, string[]>;
  /** function name -> parameters ("type name") and return type */
  functions: Record<string, { params: string[]; ret: string }>;
  /** struct name -> member name -> member type */
  structs: Record<string, Record<string, string>>;
  /** namespace kernel: how ls->ls_dn->our_node->id is reached, as byte offsets */
  nsNode?: { path: string; offsets: number[] };
}

export interface NativeProbeDef {
  id: number;
  /** BPF program (function) name in bpf/dlm_rv.bpf.c */
  prog: string;
  /** what it attaches to, e.g. "tp_btf/dlm_lock_start" */
  hook: string;
}

export interface NativeProbeStatus {
  prog: string;
  hook: string;
  loaded: boolean;
  attached: boolean;
  reason?: string;
}

export interface NativeCollectorOptions {
  mode: 'live' | 'test';
  /** BPF programs to load (test mode adds test_feed) */
  programs: string[];
  /** ring buffer bytes: a power of two, multiple of the page size */
  ringBytes?: number;
  /** mainline: this node's DLM id, written into every record */
  nodeId?: number;
  /** namespace kernel: read each record's node id from ls->ls_dn->our_node->id */
  nsNodeIds?: boolean;
  /** ... at these byte offsets (BtfFacts.nsNode.offsets) */
  nsNodeOffsets?: number[];
  /** lockspace (global) ids to keep; empty = all */
  lockspaces?: number[];
  /** keep only resources whose name starts with these bytes */
  namePrefix?: Uint8Array;
  /** records per batch handed to JS (the reused buffer's size), default 8192 */
  batchRecords?: number;
}

export interface NativeStats {
  /** hits per probe id (enum dlm_rv_probe), summed over CPUs */
  hits: number[];
  /** failed ring reservations, summed over CPUs */
  drops: number;
  /** drops not yet reported by a LOSS record in the stream */
  lossPending: number;
  /** records handed to JS */
  records: number;
  batches: number;
  /** ring samples of an unexpected size (never, unless the object is mismatched) */
  badSize: number;
  testRuns: number;
  ringBytes: number;
}

export interface NativeProgStats {
  prog: string;
  runCnt: number;
  runTimeNs: number;
  xlatedBytes: number;
  jitedBytes: number;
}

export interface NativeCollector {
  probes(): NativeProbeStatus[];
  /**
   * The batch callback: bytes is a view of ONE reused buffer, valid only during the
   * call (copy what you keep). Called from the libuv loop after start(), or from
   * within drain()/feed().
   */
  onBatch(cb: (bytes: Uint8Array) => void): void;
  /** poll the ring from the event loop (uv_poll on the ring's epoll fd) */
  start(): void;
  stop(): void;
  /** consume the ring now; returns the records delivered */
  drain(): number;
  /** test mode: re-encode whole records through the BPF test program into the ring */
  feed(bytes: Uint8Array, drain?: boolean): number;
  stats(): NativeStats;
  /** read and clear the count of drops not yet reported in the stream */
  takeLoss(): number;
  progStats(): NativeProgStats[];
  /** turn on kernel BPF run-time stats (BPF_ENABLE_STATS) while this collector lives */
  enableStats(): boolean;
  fds(): { ring: number; testIn: number; testFeed: number };
  close(): void;
}

export interface NativeBinding {
  Collector: new (opts: NativeCollectorOptions) => NativeCollector;
  btfFacts(paths?: { vmlinux?: string; dlm?: string }): BtfFacts;
  probeTable(): NativeProbeDef[];
  /**
   * Load the check build of each program (every hook as raw_tp) with CO-RE against the
   * given BTF file: relocations and the verifier on the logic, without the dlm module.
   */
  coreCheck(o: { btf: string; programs?: string[]; nsNodeOffsets?: number[] }): { prog: string; loaded: boolean; insns?: number; error?: string }[];
  libbpfVersion(): string;
  /** the benchmark producer (synchronous: run it in a worker thread) */
  produce(o: { testFeed: number; testIn: number; records: Uint8Array; total: number; rate?: number; batch?: number }): {
    produced: number; runs: number; runNs: number;
  };
  recordSize: number;
  recordVersion: number;
  testBatch: number;
  maxLockspaceFilter: number;
}

/** Thrown when the addon is not built or cannot be loaded. */
export class NativeLoadError extends Error {
  readonly code = 'NATIVE_NOT_BUILT';
}

let cached: NativeBinding | undefined;

/** Load the addon once (bindings finds build/Release/dlm_rv.node from the package root). */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const bindings = require('bindings') as (name: string) => unknown;
    cached = bindings('dlm_rv') as NativeBinding;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new NativeLoadError(`the native addon is not built or cannot be loaded (${msg}); build it with: npm run build:native`);
  }
  return cached;
}
