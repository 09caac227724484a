// Public types of the simulator (re-exported by index.ts).

export type Flavor = 'mainline' | 'namespace';

/** Named bug kinds: each makes exactly one grant incompatible. */
export const BUG_KINDS: readonly string[] = Object.freeze([
  'ignore-remote-holder',
  'ignore-local-holder',
  'ignore-converting-holder',
]);

/**
 * Hazards the workload and the model produce; all on by default. Turning one
 * off removes the behaviour that causes it (see docs/simulator.md).
 */
export const HAZARD_NAMES = [
  'reorder', // random per-message delays: reordering between (sender, receiver) pairs
  'lateCallbacks', // callback workers stall, completions delivered late in batches
  'noqueue', // NOQUEUE requests and conversions refused with -EAGAIN
  'altmode', // PR|ALTCW and CW|ALTPR new requests, granted in the alternate mode
  'quecvt', // QUECVT conversions
  'convdeadlk', // CONVDEADLK conversions: demoted to NL on a conversion deadlock
  'upConvert', // up-conversions (and with them -EDEADLK conversion deadlocks)
  'downConvert', // down-conversions (granted on the lock's node first)
  'middleConvert', // PR <-> CW conversions
  'cancel', // cancels of waiting requests/conversions, including lost races
  'overlapUnlock', // unlocks (FORCEUNLOCK) while a request/conversion is in flight
  'busy', // operations refused with -EBUSY (convert/unlock while one is in flight)
  'sameNode', // several locks (different pids) of one node on one resource
  'leave', // nodes release a lockspace holding locks: purge, re-mastering, rejoin
  'leaveRefused', // mainline: release refused with -EBUSY (force 0/1 with locks)
  'lockEndError', // mainline: dlm_lock_end reports -EAGAIN/-EDEADLK of a local refusal after its completion
  'cancelDemoted', // mainline: cancel of a conversion demoted by CONVDEADLK (completion mode NL)
] as const;

export type HazardName = (typeof HAZARD_NAMES)[number];

export interface SimOptions {
  /** 1..8 */
  nodes: number;
  seed: number;
  /** Target number of records: no new operations after that; in-flight work drains, then locks are released or lockspaces left. */
  events: number;
  flavor?: Flavor;
  /** One of BUG_KINDS. */
  inject?: string;
  /** Default 2 (1..8). */
  lockspaces?: number;
  /** Resources per lockspace, default 8 (1..64). */
  resources?: number;
  /** Message records (mainline only), default true. */
  messages?: boolean;
  /** Probability that the collector drops a record (0..1), default 0. */
  lossRate?: number;
  hazards?: Partial<Record<HazardName, boolean>>;
}

export interface GroundTruth {
  kind: string;
  /** Index in records of the victim's grant COMPLETION (the non-history one). */
  recordIndex: number;
  ts: number;
  ls: number;
  name: Uint8Array;
  victim: { node: number; lkb: number; mode: number };
  ignored: { node: number; lkb: number; effectiveMode: number }[];
}

export interface SimStats {
  records: number;
  /** Grant completions (status 0). */
  grants: number;
  /** NOQUEUE refusals (-EAGAIN completions). */
  refusals: number;
  /** -DLM_ECANCEL completions. */
  cancels: number;
  /** Cancels that lost the race: the grant came first, no cancel completion. */
  cancelRaces: number;
  /** -EDEADLK completions. */
  deadlocks: number;
  /** Conversions demoted to NL by CONVDEADLK (sbflags DEMOTED). */
  demotions: number;
  /** Cancel completions of demoted conversions (mode NL). */
  demotedCancels: number;
  /** Grants in the alternate mode (sbflags ALTMODE). */
  altGrants: number;
  /** Unlocks accepted while a request or conversion was still pending. */
  overlapUnlocks: number;
  /** Operations refused with -EBUSY (REQUEST_FAILED / RELEASE_FAILED in mainline). */
  busyRefusals: number;
  /** Mainline REQUEST_FAILED(-EAGAIN/-EDEADLK) after a local refusal's completion. */
  lockEndErrors: number;
  upConverts: number;
  downConverts: number;
  middleConverts: number;
  quecvtConverts: number;
  /** Grants made while another lock of the same node was granted on the same resource. */
  sameNodeShares: number;
  /** Successful lockspace releases (NODE_LEAVES_LS not followed by a failure). */
  leaves: number;
  leaveRefused: number;
  recoveries: number;
  /** Locks of departed nodes purged by masters. */
  purged: number;
  /** Resources re-mastered on a survivor. */
  remasters: number;
  /** Requests/conversions re-sent to a new master after recovery. */
  resends: number;
  /** Rejoins of a lockspace after a release. */
  rejoins: number;
  /** New locks that got an lkb id that had been used before on that node and lockspace. */
  lkbReuses: number;
  /** DLM messages sent. */
  messages: number;
  /** Messages dropped (receiver or sender left the lockspace). */
  messagesDropped: number;
  /** Deliveries of a message sent before one already delivered (reordering between pairs). */
  reorders: number;
  /** Callback worker stalls (late, batched completions). */
  lateCallbackStalls: number;
  /** Blocking callbacks queued. */
  basts: number;
  /** Conversions demoted while already queued (should stay 0; see docs). */
  pendingDemotions: number;
  /** Records dropped by the simulated collector, and LOSS records emitted. */
  lossDropped: number;
  lossRecords: number;
  /** Simulated time span, ns. */
  simTimeNs: number;
}
