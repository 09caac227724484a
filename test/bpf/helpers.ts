// Can this machine run the BPF tests? They need root (or CAP_BPF + CAP_PERFMON) and a
// kernel with BPF ring buffers and BPF_PROG_TEST_RUN for raw_tp; the native addon must be
// built (npm run build:native). A skip says why, on the output, every time.
import { bpfPrivilegeProblem } from '../../src/live/env';

export interface BpfAvail {
  ok: boolean;
  reason: string;
}

let cached: BpfAvail | undefined;

export function bpfAvailable(): BpfAvail {
  if (cached) return cached;
  const priv = bpfPrivilegeProblem();
  if (priv) {
    cached = { ok: false, reason: `not privileged: ${priv}` };
  } else if (process.env.DLMRV_SKIP_BPF) {
    cached = { ok: false, reason: 'DLMRV_SKIP_BPF is set' };
  } else {
    cached = { ok: true, reason: '' };
  }
  if (!cached.ok) {
    // vitest shows console output of a file; the skip must never be silent
    process.stdout.write(`\n[dlm-rv BPF tests SKIPPED] ${cached.reason}\n`);
  }
  return cached;
}

/** A test title that carries the skip reason when skipped. */
export function title(t: string): string {
  const a = bpfAvailable();
  return a.ok ? t : `${t} [SKIPPED: ${a.reason}]`;
}
