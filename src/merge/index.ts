// The causal merge of per-node streams (docs/merge.md).
export { Merger, ORPHAN_REASONS, type MergeOptions, type FallbackEvent, type FallbackKind, type OrphanReason, type StreamStats } from './merger';
export { ClockAligner } from './clock';
export { annotateViolations, mergeContext, violationOrdering, type MergedViolationFields, type Ordering } from './annotate';
export { CaptureFile, nodesOf, splitByNode } from './sources';
export { runMerge, type MergeInput } from './run';
