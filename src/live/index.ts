// Live collection: the BPF collector and its DLM-less test mode. docs/live.md.
export { openCollector, planLive, type Collector, type CollectorOptions, type CollectorStats, type LiveProbeInfo } from './collector';
export { planProbes, flavorOf, parseTpSignatures, PROBES, type Flavor, type PlannedProbe, type ProbePlan, type ProbeRole, type ProgName } from './probes';
export { LiveError, bpfPrivilegeProblem, configfsNodeId, effectiveCaps, ringSize, type LiveErrorCode } from './env';
