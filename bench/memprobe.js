'use strict';
// Memory probe, run by bench/run.js in a fresh process per (stream, implementation)
// so that RSS deltas are not blurred by memory that earlier instances freed:
//
//   node --expose-gc bench/memprobe.js <realistic|cached|mem> <monitor|baseline> [events] [monitor options JSON]
//
// Generates the stream (deterministic, same as the parent's), collects garbage,
// then feeds one fresh instance in batches of 4096 records, sampling RSS (and, for
// the monitor, m.memory()) every 16 batches. Prints one JSON line.

const gen = require('./gen.js');
const { BaselineMonitor } = require('./baseline.js');
const { Monitor } = require('../dist/monitor/monitor.js');

function gc() {
  if (global.gc) { global.gc(); global.gc(); }
}
const rss = () => process.memoryUsage.rss();

function main() {
  const [stream, impl, eventsArg, monitorOpts] = process.argv.slice(2);
  if (!gen.PRESETS[stream] || !['monitor', 'baseline'].includes(impl)) {
    console.error('usage: node --expose-gc bench/memprobe.js <realistic|cached|mem> <monitor|baseline> [events]');
    process.exit(2);
  }
  const g = new gen.Gfs2Stream(gen.PRESETS[stream]);
  const s = stream === 'mem' ? g.generate(0, { stopAtLive: 1_000_000 }) : g.generate(Number(eventsArg) || 10_000_000);
  const batches = s.batches();
  gc();
  const rss0 = rss(), heap0 = process.memoryUsage().heapUsed;
  const m = impl === 'monitor' ? new Monitor(monitorOpts ? JSON.parse(monitorOpts) : {}) : new BaselineMonitor();
  let rssPeak = rss0, memAtPeak = null, holdersPeak = 0;
  const sample = () => {
    const x = rss();
    if (x > rssPeak) rssPeak = x;
    if (impl === 'monitor') {
      const mem = m.memory();
      if (!memAtPeak || mem.locks >= memAtPeak.locks) memAtPeak = mem;
    }
  };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < batches.length; i++) {
    m.consume(batches[i]);
    if ((i & 15) === 15) sample();
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  sample();
  const sum = m.summary();
  if (impl === 'baseline') holdersPeak = sum.holders.peak;
  const memEnd = impl === 'monitor' ? m.memory() : null;
  globalThis.keepAlive = m; // the instance must survive the GC below: its memory is what is measured
  gc();
  const out = {
    stream, impl, events: s.count, seconds, eventsPerSec: s.count / seconds,
    rssBefore: rss0, rssPeak, rssPeakDelta: rssPeak - rss0,
    rssHeld: rss() - rss0, heapHeld: process.memoryUsage().heapUsed - heap0,
    processMaxRss: process.resourceUsage().maxRSS * 1024,
    streamBytes: s.bytes,
    violations: sum.violations,
    locksPeak: impl === 'monitor' ? sum.locks.peak : null,
    locksEnd: impl === 'monitor' ? sum.locks.now : null,
    resourcesEnd: sum.resources.now,
    holdersPeak: impl === 'baseline' ? holdersPeak : null,
    memAtPeak, memEnd,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main();
