// `node collect.js`: the command line. Exit codes (docs/cli.md): 0 no violation,
// 1 violations found, 2 bad usage or bad input, 3 environment problem (--send: 0 once the
// verifier holds everything, 3 when it cannot be reached).
import { EXIT_OK, EXIT_USAGE, EXIT_VIOLATIONS, InputError, UsageError, EnvError } from '../errors';
import { parseArgs, type OptSpec, type Parsed } from './args';
import { VERSION } from '../version';
import { Session, type SessionOptions } from './session';
import { parseHostPort } from '../net/protocol';

const SPECS: Record<string, OptSpec> = {
  help: { kind: 'flag' },
  version: { kind: 'flag' },
  simulate: { kind: 'flag' },
  demo: { kind: 'flag' },
  'node-id': { kind: 'int', min: 1, max: 2 ** 32 - 1 },
  duration: { kind: 'int', min: 1, max: 365 * 86400 },
  'ring-mb': { kind: 'int', min: 1, max: 4096 },
  lockspace: { kind: 'list' },
  'no-stats': { kind: 'flag' },
  replay: { kind: 'list' },
  nodes: { kind: 'int', min: 1, max: 8 },
  seed: { kind: 'int', min: 0, max: 2 ** 32 - 1 },
  events: { kind: 'int', min: 1, max: 1e9 },
  inject: { kind: 'string' },
  flavor: { kind: 'string', choices: ['mainline', 'namespace'] },
  record: { kind: 'string' },
  'write-events': { kind: 'string' },
  output: { kind: 'string' },
  ndjson: { kind: 'string' },
  history: { kind: 'int', min: 0, max: 100000 },
  'history-window': { kind: 'int', min: 1, max: 1 << 26 },
  'fail-fast': { kind: 'flag' },
  quiet: { kind: 'flag' },
  'model-trace': { kind: 'string' },
  serve: { kind: 'string' },
  send: { kind: 'string' },
  'skew-us': { kind: 'int', min: 0, max: 3600 * 1e6 },
  streams: { kind: 'int', min: 1, max: 4096 },
  'lag-ms': { kind: 'int', min: 1, max: 3600_000 },
  'recv-wait-ms': { kind: 'int', min: 1, max: 3600_000 },
  'depart-ms': { kind: 'int', min: 1, max: 24 * 3600_000 },
  rate: { kind: 'int', min: 1, max: 1e9 },
  'stream-id': { kind: 'string' },
  'retry-s': { kind: 'int', min: 1, max: 7 * 86400 },
};

export const HELP = `dlm-rv ${VERSION}: runtime verifier for the Linux DLM.
Reports every moment two locks on one resource were granted incompatible modes.

Usage:
  sudo node collect.js [--duration S] [--record FILE] [--node-id N] [--lockspace ID...]
  sudo node collect.js --demo
  node collect.js --simulate [--nodes N] [--seed S] [--events E] [--inject KIND]
                             [--flavor mainline|namespace] [--record FILE]
  node collect.js --replay FILE [FILE...]
  node collect.js --serve [HOST:]PORT [--streams N] [--duration S]
  sudo node collect.js --send HOST:PORT [--node-id N] [--duration S] [--record FILE]
  node collect.js --send HOST:PORT --replay FILE [--rate N]

Modes:
  (none)                live: attach BPF programs to this kernel's dlm hooks and verify what
                        happens until Ctrl-C / SIGTERM (run 'modprobe dlm' first)
      --duration S      stop after S seconds
      --record FILE     also write everything seen to a capture file (replay it with --replay)
      --node-id N       this node's DLM id, when configfs does not tell (mainline kernels)
      --lockspace ID    only these lockspaces (global ids, as in the report's "ls"); repeatable
      --ring-mb N       BPF ring buffer size (default 16)
      --no-stats        no refreshed stats line on the terminal
  --demo                the built-in demo for machines without a DLM: a simulated namespace
                        cluster with one injected violation, pushed through the real BPF ring
                        buffer and the addon (root; exit 0 when it finds exactly that one)
  --simulate            run the built-in DLM cluster simulator and verify its stream
      --nodes N         DLM nodes (1..8, default 4)
      --seed S          simulator seed (default 1)
      --events E        about how many events to produce (default 20000)
      --inject KIND     make exactly one grant incompatible; KIND is one of the simulator's
                        bug kinds (ignore-remote-holder, ignore-local-holder,
                        ignore-converting-holder, ...; a wrong KIND lists them)
      --flavor F        hooks to emulate: mainline (default) or namespace
      --record FILE     also write the simulated stream as a capture file
  --replay FILE...      verify capture files (written with --record), event files (NDJSON) and
                        text traces (docs/formats.md); the format is detected from content.
                        Files of several DLM nodes (one kernel each) are merged causally: each
                        node's own order, and every message received after it was sent
                        (docs/merge.md); clocks only order what messages leave open
      --skew-us N       declared bound on the nodes' clock skew, for what only clocks can order
                        (streams without message events, lost events); default 1000
  --serve [HOST:]PORT   the central verifier of a cluster: each node streams its records here
                        (--send); the streams are merged causally and verified as one, until
                        Ctrl-C / SIGTERM, --duration or --streams (then the report)
      --streams N       stop once N streams have ended (their senders finished)
      --duration S      stop after S seconds
      --skew-us N       as for --replay
      --lag-ms N        a silent stream holds the others back at most this long (default 2000)
      --recv-wait-ms N  a receive waits at most this long for its send (default 5000)
      --depart-ms N     a stream away this long departs: its node leaves its lockspaces, as
                        the survivors' recovery purges it (default 30000)
      --no-stats        no stats line (records and lag per node)
  --send HOST:PORT      stream this node's records to the verifier at HOST:PORT instead of
                        verifying here: the live collector (root; --node-id, --duration,
                        --ring-mb, --lockspace, --record as in live mode), or with --replay FILE
                        a recorded capture, event file or text trace; reconnects and resumes
      --rate N          with --replay: at most N records per second
      --stream-id ID    the stream's name at the verifier (a restarted sender with the same ID
                        resumes where the verifier is; default: host and file, or host, node, time)
      --retry-s S       give up after S seconds without the verifier (default 60; exit 3)

Output:
  --output PATH         JSON report (default ./dlm-rv-report.json), written atomically
  --ndjson PATH         also stream each incident as one JSON line the moment it is found
  --history N           events of the resource shown per incident (default 32)
  --history-window N    records kept for that history (default 65536, 128 bytes each)
  --write-events PATH   write the input stream as an event file (NDJSON) to edit or share
  --model-trace PATH    write every automaton step, RV style (event_dlm / error_dlm)
  --fail-fast           stop at the first violation (still writes the report)
  --quiet               do not print each incident on stderr
  --help, --version

Exit codes: 0 no violation, 1 violations found, 2 bad usage or bad input,
3 environment problem (privileges, kernel, BPF).

Examples:
  sudo node collect.js --duration 60 --record node1.cap
  sudo node collect.js --demo
  node collect.js --simulate --nodes 4 --seed 7 --inject ignore-remote-holder
  node collect.js --simulate --events 1000000 --output /tmp/sim.json
  node collect.js --replay test/fixtures/events/up-conversion-missed.ndjson
  node collect.js --replay node1.cap --ndjson incidents.ndjson --fail-fast
  node collect.js --replay node1.cap node2.cap           # one cluster-wide verdict
  node collect.js --serve 7010                           # the verifier; then on each node:
  sudo node collect.js --send verifier:7010
`;

function lockspaceIds(a: Parsed): number[] | undefined {
  const ids = ((a.lockspace as string[] | undefined) ?? []).map((x) => {
    if (!/^\d+$/.test(x) || Number(x) > 0xffffffff) throw new UsageError(`--lockspace takes a lockspace global id (an unsigned number, as in the report's "ls"), got "${x}"`);
    return Number(x);
  });
  return ids.length ? ids : undefined;
}

function sessionOptions(a: Parsed): SessionOptions {
  return {
    output: (a.output as string | undefined) ?? './dlm-rv-report.json',
    ndjson: a.ndjson as string | undefined,
    modelTrace: a['model-trace'] as string | undefined,
    history: a.history as number | undefined,
    historyWindow: a['history-window'] as number | undefined,
    failFast: Boolean(a['fail-fast']),
    quiet: Boolean(a.quiet),
    writeEvents: a['write-events'] as string | undefined,
  };
}

export async function main(argv: string[]): Promise<number> {
  try {
    const a = parseArgs(argv, SPECS);
    if (a.help) { process.stdout.write(HELP); return EXIT_OK; }
    if (a.version) { process.stdout.write(`dlm-rv ${VERSION}\n`); return EXIT_OK; }
    if (a._.length) throw new UsageError(`unexpected argument "${a._[0]}"; input files go after --replay`);
    // --send takes --replay as its source: then it is one mode, not two
    const modes = ['simulate', 'replay', 'demo', 'serve', 'send'].filter((k) => a[k] !== undefined && !(k === 'replay' && a.send !== undefined));
    if (modes.length > 1) throw new UsageError(`choose one of --${modes.join(' and --')}`);
    const mode = modes[0] ?? 'live';
    const allowed: Record<string, string[]> = {
      simulate: ['nodes', 'seed', 'events', 'inject', 'flavor', 'record'],
      demo: ['nodes', 'seed', 'events'],
      live: ['node-id', 'duration', 'ring-mb', 'lockspace', 'record', 'no-stats'],
      replay: ['skew-us'],
      serve: ['duration', 'no-stats', 'skew-us', 'streams', 'lag-ms', 'recv-wait-ms', 'depart-ms'],
      send: ['node-id', 'duration', 'ring-mb', 'lockspace', 'record', 'no-stats', 'rate', 'stream-id', 'retry-s'],
    };
    const modeOpts = ['nodes', 'seed', 'events', 'inject', 'flavor', 'record', 'node-id', 'duration', 'ring-mb', 'lockspace', 'no-stats',
      'skew-us', 'streams', 'lag-ms', 'recv-wait-ms', 'depart-ms', 'rate', 'stream-id', 'retry-s'];
    const stray = modeOpts.find((k) => a[k] !== undefined && !allowed[mode].includes(k));
    if (stray) {
      const owners = Object.entries(allowed).filter(([, v]) => v.includes(stray)).map(([k]) => (k === 'live' ? 'live mode' : `--${k}`));
      throw new UsageError(`--${stray} only goes with ${owners.join(' or ')}`);
    }
    const session = () => new Session(sessionOptions(a));
    if (mode === 'send') {
      // the verifier writes the report: nothing to verify or write here
      const out = ['output', 'ndjson', 'history', 'history-window', 'write-events', 'model-trace', 'fail-fast'].find((k) => a[k] !== undefined);
      if (out) throw new UsageError(`--${out} does not go with --send: the verifier (--serve) writes the report; give it there`);
      if (a.rate !== undefined && a.replay === undefined) throw new UsageError('--rate only goes with --send --replay FILE');
      if (a.replay !== undefined) {
        const live = ['node-id', 'ring-mb', 'lockspace', 'record', 'duration'].find((k) => a[k] !== undefined);
        if (live) throw new UsageError(`--${live} is for the live collector; with --send --replay FILE the file is the source`);
      }
      const hp = parseHostPort(a.send as string, false);
      if (!hp) throw new UsageError(`--send needs HOST:PORT (the verifier's address and --serve port, e.g. 10.0.0.1:7010), got "${a.send as string}"`);
      const files = (a.replay as string[] | undefined) ?? [];
      if (a.replay !== undefined && files.length !== 1) throw new UsageError(`--send --replay takes one file (one node's stream), got ${files.length}`);
      const { runSend } = await import('./send');
      return await runSend({
        host: hp.host!, port: hp.port, replay: files[0], rate: a.rate as number | undefined, streamId: a['stream-id'] as string | undefined,
        retryS: a['retry-s'] as number | undefined, nodeId: a['node-id'] as number | undefined, duration: a.duration as number | undefined,
        ringMb: a['ring-mb'] as number | undefined, lockspaces: lockspaceIds(a), record: a.record as string | undefined,
        log: (l) => { if (!a.quiet || /error|cannot|lost/.test(l)) process.stderr.write(l + '\n'); },
      });
    }
    if (mode === 'serve') {
      const hp = parseHostPort(a.serve as string, true);
      if (!hp) throw new UsageError(`--serve needs a port (1..65535; 0: any free one), or HOST:PORT to listen on one address, got "${a.serve as string}"`);
      const { runServe } = await import('./serve');
      return await runServe(session(), {
        host: hp.host, port: hp.port, duration: a.duration as number | undefined, streams: a.streams as number | undefined,
        skewUs: a['skew-us'] as number | undefined, lagMs: a['lag-ms'] as number | undefined, recvWaitMs: a['recv-wait-ms'] as number | undefined,
        departMs: a['depart-ms'] as number | undefined, stats: !a['no-stats'] && Boolean(process.stderr.isTTY), quietStats: Boolean(a['no-stats']),
      });
    }
    if (mode === 'simulate') {
      const s = session();
      const { runSimulate } = await import('./simulate');
      return await runSimulate(s, {
        nodes: (a.nodes as number | undefined) ?? 4,
        seed: (a.seed as number | undefined) ?? 1,
        events: (a.events as number | undefined) ?? 20000,
        inject: a.inject as string | undefined,
        flavor: (a.flavor as 'mainline' | 'namespace' | undefined) ?? 'mainline',
        record: a.record as string | undefined,
      });
    }
    if (mode === 'replay') {
      const files = a.replay as string[];
      if (!files.length) throw new UsageError('--replay needs at least one file');
      const { runReplay } = await import('./replay');
      const skew = a['skew-us'] as number | undefined;
      return await runReplay(session(), files, skew !== undefined ? { skewBoundNs: skew * 1000 } : {});
    }
    if (mode === 'demo') {
      const { runDemo } = await import('./live');
      return await runDemo(session(), {
        nodes: (a.nodes as number | undefined) ?? 4,
        seed: (a.seed as number | undefined) ?? 7,
        events: (a.events as number | undefined) ?? 50000,
      });
    }
    const lockspaces = lockspaceIds(a) ?? [];
    const { runLive } = await import('./live');
    return await runLive(session(), {
      nodeId: a['node-id'] as number | undefined,
      duration: a.duration as number | undefined,
      record: a.record as string | undefined,
      ringMb: a['ring-mb'] as number | undefined,
      lockspaces: lockspaces.length ? lockspaces : undefined,
      stats: !a['no-stats'] && Boolean(process.stderr.isTTY),
    });
  } catch (e) {
    if (e instanceof UsageError || e instanceof InputError || e instanceof EnvError) {
      process.stderr.write(`dlm-rv: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}

export { EXIT_USAGE, EXIT_VIOLATIONS };
