// What the report says about a merged run: per violation, whether its verdict rests only on the
// streams' own order and their messages ("causal") or also on clocks ("clock-fallback"), and the
// merge's own account in context.merge.
import type { Violation } from '../monitor/report';
import { ORPHAN_REASONS, type Merger } from './merger';

export type Ordering = 'causal' | 'clock-fallback';

/** Added to the offset uncertainty when judging a leave's place (records of one kernel are ordered to about this). */
const LEAVE_MARGIN_NS = 10_000;

/**
 * The least time from a node leaving to a survivor being granted what it held: the survivors
 * must notice and run recovery (a membership change, then messages among all of them). Real
 * clusters take milliseconds to seconds; the simulator 300 µs. A leave placed after a verdict
 * by clocks that cannot err by this much cannot have come first and caused it.
 */
const RECOVERY_MIN_NS = 100_000;

/** Merged records before a verdict in which a clock-ordered place makes it rest on clocks. */
export const ORDERING_HORIZON = 10_000;

/** The optional fields a merged run adds to each violation of the report. */
export interface MergedViolationFields {
  ordering: Ordering;
  /** why clocks were involved (clock-fallback only) */
  ordering_note?: string;
}

/** Decide one violation's ordering (docs/merge.md, "Which verdicts rest on clocks"). */
export function violationOrdering(m: Merger, v: Violation): MergedViolationFields {
  const trig = v.trigger.node;
  const pairLocks = new Set<string>();
  const nodes = new Set<number>([trig]);
  for (const p of v.pairs) {
    nodes.add(p.a.node); nodes.add(p.b.node);
    pairLocks.add(`${p.a.node}:${p.a.lkb}`); pairLocks.add(`${p.b.node}:${p.b.lkb}`);
  }
  const streamOf = new Map<number, number>();
  for (const n of nodes) streamOf.set(n, m.streamOfNode(n));
  const streams = new Set(streamOf.values());
  if (streams.size <= 1 && !streams.has(-1)) return { ordering: 'causal' };
  const notes: string[] = [];
  const ts = streamOf.get(trig) ?? -1;
  for (const [n, s] of streamOf) {
    if (n === trig) continue;
    if (s < 0 || ts < 0) notes.push(`node ${n}: no stream carries its records`);
    else if (!m.causalPair(ts, s)) notes.push(`nodes ${trig} and ${n}: no messages relate their streams, ordered by timestamps (skew bound ${m.skewBoundNs} ns)`);
  }
  // the window the verdict rests on: from the oldest lock of the incompatible pairs to the trigger,
  // and at least the last ORDERING_HORIZON records (a receive let through without its send lets its
  // stream run ahead of the sender's for a while after)
  let since = v.seq - ORDERING_HORIZON;
  for (const l of v.locks) if (pairLocks.has(`${l.node}:${l.lkb}`) && l.since_seq < since) since = l.since_seq;
  if (m.fallbackOverflowSeq <= v.seq) notes.push('too many clock-ordered places to list: assumed one in this window');
  const vAligned = ts >= 0 ? v.ts - m.offsetOf(ts) : v.ts;
  for (const f of m.fallbacks) {
    if (f.kind === 'leave' || f.kind === 'synthetic-leave') {
      // a partner's node leaving just after the verdict, within what clocks can tell apart:
      // with no message between the leave and the grant, the leave may have come first
      if (f.seq <= v.seq || f.node === trig || !nodes.has(f.node)) continue;
      if (f.kind === 'synthetic-leave' && (f.lastSeq ?? 0) > v.seq) continue; // its node was still there after the verdict
      // what the clocks cannot tell apart: twice the offset uncertainty between the two streams
      // (messages both ways), else the declared skew bound
      const u = ts >= 0 ? m.uncertainty(ts, f.stream) : Infinity;
      const win = u === Infinity ? 2 * m.skewBoundNs : 2 * u + LEAVE_MARGIN_NS;
      // a grant the leave caused waits for recovery: it cannot be closer to the leave than that
      if (win < RECOVERY_MIN_NS) continue;
      if (f.aligned - vAligned <= win) notes.push(`node ${f.node} left lockspace(s) ${f.kind === 'synthetic-leave' ? '(its stream ended) ' : ''}at merged seq ${f.seq}, within the clock uncertainty after the verdict`);
      continue;
    }
    if (f.seq < since || f.seq > v.seq) continue;
    if (f.kind === 'orphan-receive') notes.push(`a receive on node ${f.node} went without its send at merged seq ${f.seq} (${f.reason})`);
    else if (f.kind === 'ambiguous-match') notes.push(`a receive on node ${f.node} matched one of several identical sends at merged seq ${f.seq}`);
    else if (f.kind === 'late') notes.push(`node ${f.node}'s stream fell behind and was merged late at seq ${f.seq}`);
    else if (f.kind === 'loss') notes.push(`node ${f.node}'s stream lost records at merged seq ${f.seq}: the messages it lost no longer order anything`);
  }
  if (!notes.length) return { ordering: 'causal' };
  const uniq = [...new Set(notes)];
  return { ordering: 'clock-fallback', ordering_note: uniq.slice(0, 4).join('; ') + (uniq.length > 4 ? `; and ${uniq.length - 4} more` : '') };
}

/** Set `ordering` (and `ordering_note`) on each violation, in place. */
export function annotateViolations(m: Merger, vs: Violation[]): void {
  for (const v of vs) Object.assign(v, violationOrdering(m, v));
}

/** context.merge of the report. */
export function mergeContext(m: Merger, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const streams = m.stats();
  const orphanReasons: Record<string, number> = {};
  ORPHAN_REASONS.forEach((r, i) => { if (m.orphanCounts[i]) orphanReasons[r] = m.orphanCounts[i]; });
  const causal = streams.filter((s) => s.causal).length;
  const counts = { leave: 0, synthetic: 0 };
  for (const f of m.fallbacks) {
    if (f.kind === 'leave') counts.leave++;
    if (f.kind === 'synthetic-leave') counts.synthetic++;
  }
  return {
    algorithm: 'happens-before (per-stream order + send->receive), concurrent records by message-aligned clocks',
    ordering: streams.length < 2 ? 'single stream' : causal === streams.length ? 'causal' : causal === 0 ? 'clock-fallback' : 'mixed',
    skew_bound_ns: m.skewBoundNs,
    race_window_ns: m.raceWindowNs,
    streams: streams.map((s) => ({
      name: s.name, nodes: s.nodes, records: s.records, merged: s.emitted, queued: s.queued,
      sends: s.sends, receives: s.receives, matched_receives: s.matched, orphan_receives: s.orphans,
      losses: s.losses, synthetic_leaves: s.syntheticLeaves, ended: s.ended,
      ordering: s.causal ? 'causal' : 'clock-fallback',
      clock: { root: s.clockRoot, offset_ns: s.clockOffsetNs, uncertainty_ns: s.offsetUncertaintyNs },
    })),
    matched_messages: streams.reduce((a, s) => a + s.matched, 0),
    orphan_receives: { total: streams.reduce((a, s) => a + s.orphans, 0), by_reason: orphanReasons },
    unmatched_sends: m.pendingSends,
    evicted_sends: m.evictedSends,
    ambiguous_matches: m.ambiguousMatches,
    stall_breaks: m.stallBreaks,
    late_records: m.lateRecords,
    leaves: counts.leave,
    synthetic_leaves: counts.synthetic,
    ...extra,
  };
}
