// The machine's side of live collection: privileges, BTF, this node's DLM id.
import * as fs from 'fs';
import * as path from 'path';
import { EnvError } from '../errors';

/** Error codes of the live collector (err.code); all map to exit code 3. */
export type LiveErrorCode =
  | 'NOT_PRIVILEGED' | 'NO_BTF' | 'DLM_NOT_LOADED' | 'NO_DLM_HOOKS' | 'BPF_LOAD_FAILED'
  | 'NATIVE_NOT_BUILT' | 'BPF_UNSUPPORTED' | 'BAD_OPTION';

export class LiveError extends EnvError {
  constructor(readonly code: LiveErrorCode | string, message: string) {
    super(message);
  }
}

const CAP_SYS_ADMIN = 21, CAP_PERFMON = 38, CAP_BPF = 39;

/** Effective capabilities of this process, from /proc/self/status (CapEff). */
export function effectiveCaps(status = '/proc/self/status'): bigint | undefined {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync(status, 'utf8'));
    return m ? BigInt('0x' + m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Can this process load tracing BPF programs? undefined = it says why not. */
export function bpfPrivilegeProblem(caps = effectiveCaps()): string | undefined {
  if (caps === undefined) return undefined; // cannot tell: let the kernel decide
  const has = (c: number) => (caps >> BigInt(c)) & 1n;
  if (has(CAP_SYS_ADMIN)) return undefined;
  if (has(CAP_BPF) && has(CAP_PERFMON)) return undefined;
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  return `loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (this process: uid ${uid}, ` +
    `CAP_BPF ${has(CAP_BPF) ? 'yes' : 'no'}, CAP_PERFMON ${has(CAP_PERFMON) ? 'yes' : 'no'}); run it with sudo`;
}

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
export const DLM_BTF = '/sys/kernel/btf/dlm';
export const CONFIGFS_COMMS = '/sys/kernel/config/dlm/cluster/comms';

/**
 * This node's DLM id, as dlm_controld configured it: the comms/<id> entry whose
 * `local` is 1 (its `nodeid` file, else the directory name). undefined if unknown.
 */
export function configfsNodeId(dir = CONFIGFS_COMMS): number | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  for (const e of entries) {
    try {
      if (fs.readFileSync(path.join(dir, e, 'local'), 'utf8').trim() !== '1') continue;
    } catch {
      continue;
    }
    let id: number | undefined;
    try {
      id = Number(fs.readFileSync(path.join(dir, e, 'nodeid'), 'utf8').trim());
    } catch {
      id = Number(e);
    }
    if (Number.isInteger(id) && id! >= 0 && id! <= 0xffffffff) return id;
  }
  return undefined;
}

/** Round a ring size to what the kernel accepts: a power of two, at least a page. */
export function ringSize(bytes: number | undefined, page = 4096): number {
  const want = bytes ?? 16 << 20;
  if (!Number.isFinite(want) || want <= 0) throw new LiveError('BAD_OPTION', `ring size must be a positive number of bytes (got ${bytes})`);
  let n = page;
  while (n < want && n < 2 ** 30) n *= 2;
  return n;
}
