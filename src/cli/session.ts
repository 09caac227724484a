// One verification run: a monitor, its reactors and its outputs. Every mode
// (simulate, replay, live) feeds records in and calls finish().
import { Monitor } from '../monitor/monitor';
import { buildReport, violationLine, type RunContext, type Violation, type Report } from '../monitor/report';
import { EXIT_OK, EXIT_VIOLATIONS } from '../errors';
import { VERSION } from '../version';
import { LineWriter, checkWritable, writeFileAtomic } from './output';
import { RecordBuffer } from '../record/buffer';
import { RECORD_SIZE } from '../record/layout';
import { recordsToEventLines } from '../io/events';

export interface SessionOptions {
  output: string;
  ndjson?: string;
  modelTrace?: string;
  history?: number;
  historyWindow?: number;
  failFast: boolean;
  quiet: boolean;
  writeEvents?: string;
  /** where progress and incidents go (stderr by default) */
  log?: (line: string) => void;
}

export class Session {
  monitor!: Monitor;
  private ndjson?: LineWriter;
  private trace?: LineWriter;
  private events?: LineWriter;
  readonly log: (line: string) => void;

  constructor(readonly opts: SessionOptions) {
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
    // refuse early: nothing is worth running if its results cannot be written
    checkWritable(opts.output, '--output');
    if (opts.ndjson) checkWritable(opts.ndjson, '--ndjson');
    if (opts.modelTrace) checkWritable(opts.modelTrace, '--model-trace');
    if (opts.writeEvents) checkWritable(opts.writeEvents, '--write-events');
  }

  /** Create the monitor once the run's context (source, kernel, probes) is known. */
  start(context: Partial<RunContext>, opts: { ownerExitVisible?: boolean } = {}): Monitor {
    if (this.opts.ndjson) this.ndjson = new LineWriter(this.opts.ndjson);
    if (this.opts.modelTrace) this.trace = new LineWriter(this.opts.modelTrace, 1 << 16);
    if (this.opts.writeEvents) this.events = new LineWriter(this.opts.writeEvents, 1 << 16);
    const trace = this.trace;
    this.monitor = new Monitor({
      history: this.opts.history,
      ownerExitVisible: opts.ownerExitVisible,
      historyWindow: this.opts.historyWindow,
      context: { collector: 'dlm-rv', version: VERSION, ...context },
      onViolation: (v: Violation) => {
        this.ndjson?.line(JSON.stringify(v));
        if (!this.opts.quiet) this.log(violationLine(v));
        return !this.opts.failFast;
      },
      modelTrace: trace ? (l) => trace.line(l) : undefined,
    });
    return this.monitor;
  }

  /** Feed whole records (and mirror them into --write-events). */
  feed(bytes: Uint8Array): void {
    if (this.events) {
      const rb = new RecordBuffer(Math.max(1, bytes.byteLength / RECORD_SIZE));
      rb.appendRaw(bytes);
      for (const l of recordsToEventLines(rb)) this.events.line(l);
    }
    this.monitor.consume(bytes);
  }

  get stopped(): boolean {
    return this.monitor.stoppedEarly;
  }

  /** Write the report (atomically), close the streams, and return the exit code. */
  finish(extra?: (r: Report) => void): number {
    const m = this.monitor;
    const report = buildReport(m.context, m.violations, m.summary(), m.unconfirmed);
    extra?.(report);
    writeFileAtomic(this.opts.output, JSON.stringify(report, null, 2) + '\n');
    this.ndjson?.close();
    this.trace?.close();
    this.events?.close();
    const s = report.summary;
    const loss = s.losses.events_dropped ? `, ${s.losses.events_dropped} events LOST (${s.losses.resets} resets: verdicts only cover what was seen)` : '';
    this.log(`dlm-rv: ${s.records} events, ${s.locks.peak} locks / ${s.resources.peak} resources at peak, ` +
      `${s.violations} violation${s.violations === 1 ? '' : 's'}${s.unconfirmed ? `, ${s.unconfirmed} unconfirmed (see the report)` : ''}${loss}${s.stopped_early ? ' (stopped at the first: --fail-fast)' : ''}; report ${this.opts.output}`);
    return s.violations > 0 ? EXIT_VIOLATIONS : EXIT_OK;
  }
}
