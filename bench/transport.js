'use strict';
// Transport benchmark (docs/live.md, "Measured"): BPF test program -> ring buffer ->
// consumer, the addon's JS-thread drain side by side with a plain C libbpf consumer
// (bench/transport_c.c) of the same BPF object, fed the same way (native/produce.h:
// BPF_PROG_TEST_RUN of test_feed from a second thread). Needs root, `npx tsc -p
// tsconfig.json` and `npm run build:native`. Prints measured numbers only.
//
//   node bench/transport.js [--records N] [--runs N] [--ring BYTES] [--rate R]
//                           [--seconds S] [--only drain,pipe,monitor,bpf] [--out FILE]
//
//   drain    the consumer alone: fill the ring without consuming, then time one drain
//   pipe     producer thread flat out + consumer, concurrently: records/s, drops, CPU
//   monitor  producer paced at --rate (default 2e6/s) for --seconds, the Monitor
//            consuming every batch: drops must be 0
//   bpf      kernel BPF stats (BPF_ENABLE_STATS): ns per record in test_feed

const os = require('os');
const fs = require('fs');
const path = require('path');
const { Worker } = require('worker_threads');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const nativePath = path.join(root, 'build', 'Release', 'dlm_rv.node');
const cPath = path.join(root, 'build', 'Release', 'transport_c');

function args(argv) {
  const o = { records: 1_000_000, runs: 3, ring: 16 << 20, rate: 2e6, seconds: 10, only: ['drain', 'pipe', 'monitor', 'bpf'], out: null, pipeTotal: 20_000_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === '--records') o.records = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--ring') o.ring = Number(v());
    else if (a === '--rate') o.rate = Number(v());
    else if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--pipe-total') o.pipeTotal = Number(v());
    else if (a === '--only') o.only = v().split(',');
    else if (a === '--out') o.out = v();
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : `${x.toFixed(1)} `);

/** CPU seconds of this process's main thread (Node 20 has no threadCpuUsage) */
function mainThreadCpu() {
  const st = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ = 100
}

function main() {
  const o = args(process.argv.slice(2));
  if (process.getuid && process.getuid() !== 0) { console.error('transport: needs root (BPF)'); process.exit(3); }
  if (!fs.existsSync(nativePath) || !fs.existsSync(cPath)) {
    console.error('transport: building the native parts (npm run build:native)');
    execFileSync('npx', ['cmake-js', 'compile', '--log-level', 'warn'], { cwd: root, stdio: 'inherit' });
  }
  const n = require(nativePath);
  const { simulate } = require(path.join(root, 'dist', 'sim', 'index.js'));
  const { Monitor } = require(path.join(root, 'dist', 'monitor', 'monitor.js'));
  const { RecordBuffer } = require(path.join(root, 'dist', 'record', 'buffer.js'));

  // ---- the input: a simulated 4-node stream, closed by a LOSS record so that cycling
  // through it (the producer wraps) restarts the monitor instead of replaying stale locks
  const sim = simulate({ nodes: 4, seed: 1, events: Math.ceil(o.records / 1.3) });
  const rb = new RecordBuffer(sim.records.count + 1);
  rb.appendRaw(sim.records.bytes());
  const lastTs = rb.u32[(rb.count - 1) * 32] + rb.u32[(rb.count - 1) * 32 + 1] * 4294967296;
  rb.push({ kind: 9, ts: lastTs, node: 0, ls: 0, aux: 0, rflags: 8 });
  const shared = new Uint8Array(new SharedArrayBuffer(rb.count * 128));
  shared.set(rb.bytes());
  const recFile = path.join(os.tmpdir(), `dlm-rv-transport-${process.pid}.bin`);
  fs.writeFileSync(recFile, shared);
  const result = {
    host: os.hostname(), kernel: os.release(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version,
    libbpf: n.libbpfVersion(), date: new Date().toISOString(), inputRecords: rb.count, ringBytes: o.ring,
  };
  console.log(`transport: ${rb.count} input records (simulated, 4 nodes), ring ${o.ring} bytes, ${os.cpus().length} CPUs, ${os.release()}`);

  const runC = (mode, total, rate = 0, ring = o.ring) =>
    JSON.parse(execFileSync(cPath, [mode, recFile, String(total), String(rate), String(ring)], { encoding: 'utf8' }).trim());

  const openTest = (ring) => new n.Collector({ mode: 'test', programs: [], ringBytes: ring });

  try {
    // ------------------------------------------------------------------ drain only
    if (o.only.includes('drain')) {
      // a 256 MiB ring, filled to about 1.9 M records (136 bytes each with the ring header)
      const dring = 256 << 20;
      const fill = Math.floor(dring / 136) - 1024;
      const rows = { c: [], js: [] };
      for (let r = 0; r < o.runs; r++) {
        rows.c.push(runC('drain', fill, 0, dring));
        const c = openTest(dring);
        let got = 0;
        c.onBatch((b) => { got += b.length >>> 7; });
        c.feed(shared.subarray(0, Math.min(fill, rb.count) * 128), false);
        for (let left = fill - Math.min(fill, rb.count); left > 0; left -= Math.min(left, rb.count)) c.feed(shared.subarray(0, Math.min(left, rb.count) * 128), false);
        const cpu0 = mainThreadCpu(), t0 = process.hrtime.bigint();
        c.drain();
        const secs = Number(process.hrtime.bigint() - t0) / 1e9, cpu = mainThreadCpu() - cpu0;
        const drops = c.stats().drops;
        c.close();
        rows.js.push({ consumer: 'js', mode: 'drain', records: got, seconds: secs, rate: got / secs, cpuConsumerS: cpu, drops });
      }
      const rc = median(rows.c.map((x) => x.rate)), rj = median(rows.js.map((x) => x.rate));
      result.drain = { records: fill, runs: rows, cRate: rc, jsRate: rj, ratio: rj / rc };
      console.log(`\n[drain] consumer alone, ${fill} records from a full ring, median of ${o.runs}:`);
      console.log(`  C  (ring_buffer__consume, memcpy to a batch):     ${fmt(rc)}records/s`);
      console.log(`  JS (addon drain, one JS call per 8192 records):   ${fmt(rj)}records/s   = ${(rj / rc).toFixed(2)} x C`);
    }

    // ------------------------------------------------------------------ pipeline
    const jsPipe = (total, rate, withMonitor) => new Promise((resolve, reject) => {
      const c = openTest(o.ring);
      let got = 0;
      const m = withMonitor ? new Monitor({ historyWindow: 65536 }) : null;
      // the longest batch callback, and the longest time between the end of one and the start of the next
      let maxCb = 0n, maxGap = 0n, lastEnd = 0n;
      c.onBatch(m ? (b) => {
        const t = process.hrtime.bigint();
        if (lastEnd && t - lastEnd > maxGap) maxGap = t - lastEnd;
        got += b.length >>> 7; m.consume(b);
        lastEnd = process.hrtime.bigint();
        if (lastEnd - t > maxCb) maxCb = lastEnd - t;
      } : (b) => { got += b.length >>> 7; });
      const fds = c.fds();
      const w = new Worker(`
        const { parentPort, workerData } = require('worker_threads');
        const n = require(workerData.nativePath);
        parentPort.once('message', () => {
          const r = n.produce({ testFeed: workerData.fds.testFeed, testIn: workerData.fds.testIn, records: workerData.records, total: workerData.total, rate: workerData.rate });
          parentPort.postMessage(r);
        });
        parentPort.postMessage('ready');`, { eval: true, workerData: { nativePath, fds, records: shared, total, rate } });
      let t0, cpu0, mcpu0;
      w.on('message', (msg) => {
        if (msg === 'ready') {
          c.start();
          t0 = process.hrtime.bigint(); cpu0 = process.cpuUsage(); mcpu0 = mainThreadCpu();
          w.postMessage('go');
          return;
        }
        c.stop();
        c.drain();
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = process.cpuUsage(cpu0), mcpu = mainThreadCpu() - mcpu0;
        const s = c.stats();
        const out = {
          consumer: 'js', mode: withMonitor ? 'monitor' : 'pipe', produced: msg.produced, records: got, drops: s.drops, seconds: secs,
          rate: got / secs, cpuProcessS: (cpu.user + cpu.system) / 1e6, cpuConsumerS: mcpu, runNs: msg.runNs, runs: msg.runs,
        };
        if (m) {
          const sum = m.summary();
          out.monitor = { records: sum.records, violations: sum.violations, losses: sum.losses, locksPeak: sum.locks.peak, maxBatchMs: Number(maxCb) / 1e6, maxGapMs: Number(maxGap) / 1e6 };
        }
        c.close();
        w.terminate().then(() => resolve(out), reject);
      });
      w.on('error', reject);
    });

    const doPipe = async () => {
      if (!o.only.includes('pipe')) return;
      const rows = { c: [], js: [] };
      for (let r = 0; r < o.runs; r++) {
        rows.c.push(runC('pipe', o.pipeTotal));
        rows.js.push(await jsPipe(o.pipeTotal, 0, false));
      }
      const pick = (xs, k) => median(xs.map((x) => x[k]));
      const rc = pick(rows.c, 'rate'), rj = pick(rows.js, 'rate');
      result.pipe = { total: o.pipeTotal, runs: rows, cRate: rc, jsRate: rj, ratio: rj / rc };
      console.log(`\n[pipe] producer thread flat out + consumer, ${o.pipeTotal} records, median of ${o.runs}:`);
      for (const [k, xs] of [['C ', rows.c], ['JS', rows.js]]) {
        const rate = pick(xs, 'rate'), drops = pick(xs, 'drops');
        console.log(`  ${k}: ${fmt(rate)}records/s delivered, drops ${drops} (${(100 * drops / o.pipeTotal).toFixed(1)}%), ` +
          `process CPU ${(1e9 * pick(xs, 'cpuProcessS') / o.pipeTotal).toFixed(0)} ns/record, consumer thread CPU ${(1e9 * pick(xs, 'cpuConsumerS') / Math.max(1, pick(xs, 'records'))).toFixed(0)} ns/record delivered, ` +
          `producer in BPF_PROG_TEST_RUN ${(pick(xs, 'runNs') / o.pipeTotal).toFixed(0)} ns/record`);
      }
      console.log(`  JS/C delivered rate: ${(rj / rc).toFixed(2)}`);
    };

    const doMonitor = async () => {
      if (!o.only.includes('monitor')) return;
      const total = Math.round(o.rate * o.seconds);
      const r = await jsPipe(total, o.rate, true);
      const rc = runC('pipe', total, o.rate);
      result.monitor = { rate: o.rate, seconds: o.seconds, js: r, c: rc };
      console.log(`\n[monitor] producer paced at ${fmt(o.rate)}records/s for ${o.seconds} s (${total} records), Monitor consuming every batch:`);
      console.log(`  JS+Monitor: ${fmt(r.rate)}records/s delivered, drops ${r.drops}, main thread CPU ${(100 * r.cpuConsumerS / r.seconds).toFixed(0)}% ` +
        `(${(1e9 * r.cpuConsumerS / Math.max(1, r.records)).toFixed(0)} ns/record), monitor: ${r.monitor.records} records, ${r.monitor.violations} violations, ${r.monitor.losses.resets} resets (${Math.floor(total / rb.count)} from input wraps, the rest from drops)`);
      console.log(`  longest batch callback ${r.monitor.maxBatchMs.toFixed(1)} ms, longest wait between batches ${r.monitor.maxGapMs.toFixed(1)} ms; the ring holds ${(o.ring / 136 / o.rate * 1000).toFixed(0)} ms of events at this rate`);
      console.log(`  C (no monitor): ${fmt(rc.rate)}records/s, drops ${rc.drops}, consumer thread CPU ${(100 * rc.cpuConsumerS / rc.seconds).toFixed(0)}%`);
    };

    const doBpf = () => {
      if (!o.only.includes('bpf')) return;
      const c = openTest(o.ring);
      if (!c.enableStats()) { console.log('\n[bpf] BPF_ENABLE_STATS not available'); c.close(); return; }
      c.onBatch(() => {});
      const N = Math.min(rb.count, 1_000_000);
      const before = c.progStats().find((p) => p.prog === 'test_feed');
      c.feed(shared.subarray(0, N * 128), true);
      const after = c.progStats().find((p) => p.prog === 'test_feed');
      const perRec = (after.runTimeNs - before.runTimeNs) / N;
      // one record per run: the per-invocation cost of a program (entry, bpf_loop set-up, one record)
      const fds = c.fds();
      const b1 = c.progStats().find((p) => p.prog === 'test_feed');
      const k = 20000;
      n.produce({ testFeed: fds.testFeed, testIn: fds.testIn, records: shared.subarray(0, 128 * 1000), total: k, batch: 1 });
      c.drain();
      const a1 = c.progStats().find((p) => p.prog === 'test_feed');
      const perRun = (a1.runTimeNs - b1.runTimeNs) / (a1.runCnt - b1.runCnt);
      c.close();
      result.bpf = { nsPerRecordInBatch: perRec, nsPerSingleRecordRun: perRun, batchRecords: N, singleRuns: k };
      console.log(`\n[bpf] kernel BPF stats (run_time_ns of test_feed):`);
      console.log(`  ${perRec.toFixed(1)} ns per record when re-encoding ${N} records in batches of 8192 (reserve, encode, name copy, submit)`);
      console.log(`  ${perRun.toFixed(1)} ns per program run with 1 record (adds program entry and bpf_loop set-up)`);
    };

    (async () => {
      await doPipe();
      await doMonitor();
      doBpf();
      if (o.out) fs.writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
      fs.rmSync(recFile, { force: true });
    })().catch((e) => { fs.rmSync(recFile, { force: true }); console.error(e); process.exit(1); });
  } catch (e) {
    fs.rmSync(recFile, { force: true });
    throw e;
  }
}

main();
