// The command line as users meet it: exit codes, one-line errors, outputs that are
// complete or absent, reports that match the documented schema.
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, readFileSync, readdirSync, mkdirSync, chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, readReport, tmp, ROOT } from '../helpers/cli';

const fx = (f: string) => join(ROOT, 'test/fixtures/cli', f);

describe('collect.js', () => {
  let d: string;
  beforeAll(() => { d = tmp(); });

  it('--help prints usage with examples, exit 0', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--simulate/);
    expect(r.stdout).toMatch(/Examples:/);
    expect(r.stdout).toMatch(/Exit codes/);
  });

  it('replay of a clean event file: exit 0 and a report matching the schema', () => {
    const out = join(d, 'clean.json');
    const r = cli(['--replay', fx('clean.ndjson'), '--output', out]);
    expect(r.stderr).not.toMatch(/VIOLATION/);
    expect(r.code).toBe(0);
    const rep = readReport(out);
    expect(rep.schema).toBe('dlm-rv/report@1');
    expect(rep.violations).toEqual([]);
    expect(rep.summary.events.request).toBe(2);
    expect(rep.summary.records).toBe(6);
    expect(rep.context.source).toBe('replay');
  });

  it('replay with a violation: exit 1, stderr line, report and ndjson stream', () => {
    const out = join(d, 'v.json'), nd = join(d, 'v.ndjson');
    const r = cli(['--replay', fx('two-ex.ndjson'), '--output', out, '--ndjson', nd]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/VIOLATION #1 at seq 4/);
    const rep = readReport(out);
    expect(rep.violations).toHaveLength(1);
    expect(rep.violations[0]).toMatchObject({ ls: 7, res: 'alpha', res_hex: '616c706861', trigger: { node: 2, lkb: 1 } });
    const lines = readFileSync(nd, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]).res_hex).toBe('616c706861');
  });

  it('--quiet keeps incidents off stderr; --fail-fast still writes the report', () => {
    const out = join(d, 'ff.json');
    const r = cli(['--replay', fx('two-ex.ndjson'), '--output', out, '--quiet', '--fail-fast']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/VIOLATION #/);
    expect(readReport(out).summary.stopped_early).toBe(true);
  });

  it('--model-trace writes RV-style event_dlm and error_dlm lines', () => {
    const out = join(d, 'mt.json'), mt = join(d, 'mt.txt');
    expect(cli(['--replay', fx('two-ex.ndjson'), '--output', out, '--model-trace', mt, '--quiet']).code).toBe(1);
    const t = readFileSync(mt, 'utf8');
    expect(t).toMatch(/event_dlm: 7:616c706861: valid x with_others_compatible -> valid/);
    expect(t).toMatch(/error_dlm: 7:616c706861: event incompatible not expected in the state valid/);
  });

  it('--write-events turns the input back into an event file that replays the same', () => {
    const out = join(d, 'we.json'), ev = join(d, 'we.ndjson');
    expect(cli(['--replay', fx('two-ex.ndjson'), '--output', out, '--write-events', ev, '--quiet']).code).toBe(1);
    const out2 = join(d, 'we2.json');
    expect(cli(['--replay', ev, '--output', out2, '--quiet']).code).toBe(1);
    expect(readReport(out2).violations[0].seq).toBe(readReport(out).violations[0].seq);
  });

  describe('--simulate (the issue\'s done-when)', () => {
    it('without --inject: exit 0, no violation', () => {
      const out = join(d, 'sim0.json');
      const r = cli(['--simulate', '--nodes', '4', '--seed', '7', '--output', out]);
      expect(r.code).toBe(0);
      const rep = readReport(out);
      expect(rep.violations).toEqual([]);
      expect(rep.summary.records).toBeGreaterThan(10000);
      expect(rep.context.simulation).toMatchObject({ nodes: 4, seed: 7, inject: null });
    });
    for (const kind of ['ignore-remote-holder', 'ignore-local-holder', 'ignore-converting-holder']) {
      it(`--inject ${kind}: exit 1, the report names the injected resource and both locks`, () => {
        const out = join(d, `sim-${kind}.json`);
        const r = cli(['--simulate', '--nodes', '4', '--seed', '7', '--inject', kind, '--output', out]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/found as violation #1/);
        const rep = readReport(out);
        const t = rep.context.simulation.truth;
        const v = rep.violations[0];
        expect(v.seq).toBe(t.seq);
        expect(v.res_hex).toBe(t.res_hex);
        expect(v.trigger).toMatchObject({ node: t.victim.node, lkb: t.victim.lkb });
        const inPairs = v.pairs.flatMap((p: any) => [`${p.a.node}:${p.a.lkb}`, `${p.b.node}:${p.b.lkb}`]);
        expect(inPairs).toContain(`${t.victim.node}:${t.victim.lkb}`);
        for (const h of t.ignored) expect(inPairs).toContain(`${h.node}:${h.lkb}`);
      });
    }
    it('--inject with an unknown kind lists the kinds (exit 2)', () => {
      const r = cli(['--simulate', '--inject', 'nope', '--output', join(d, 'x.json')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/unknown bug kind "nope"; choose one of ignore-remote-holder, ignore-local-holder, ignore-converting-holder/);
    });
    it('--record writes a capture that --replay verifies to the same verdict', () => {
      const cap = join(d, 'sim.cap'), out1 = join(d, 'rec1.json'), out2 = join(d, 'rec2.json');
      expect(cli(['--simulate', '--seed', '3', '--inject', 'ignore-local-holder', '--record', cap, '--output', out1, '--quiet']).code).toBe(1);
      expect(cli(['--replay', cap, '--output', out2, '--quiet']).code).toBe(1);
      const a = readReport(out1), b = readReport(out2);
      expect(b.violations.map((v: any) => [v.seq, v.res_hex])).toEqual(a.violations.map((v: any) => [v.seq, v.res_hex]));
      expect(b.summary.records).toBe(a.summary.records);
    });
  });

  it('live mode without privileges (user nobody, or root without capabilities): exit 3, one line naming the fix', () => {
    const cwd = tmp();
    chmodSync(cwd, 0o777);
    // as nobody when the checkout is readable by others; a clone inside a 0700 directory (mktemp -d)
    // is not, and then root with every capability dropped (securebits noroot: exec grants none)
    // takes the same path: the check is on the effective capabilities
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
    const capless = ['--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked', '--bounding-set=-all', '--inh-caps=-all'];
    const probe = spawnSync('setpriv', [...nobody, process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(join(ROOT, 'collect.js'))}, 4)`]);
    if (probe.error) throw new Error(`cannot run setpriv (util-linux) to drop privileges: ${probe.error.message}`);
    const how = probe.status === 0 ? nobody : capless;
    const r = spawnSync('setpriv', [...how, process.execPath, join(ROOT, 'collect.js'), '--duration', '1', '--output', join(cwd, 'r.json')], { cwd, encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run setpriv (util-linux) to drop privileges: ${r.error.message}`);
    if (how === capless) expect(r.stderr).toMatch(/uid 0, CAP_BPF no, CAP_PERFMON no/);
    expect(r.status).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/needs root, or CAP_BPF and CAP_PERFMON .* run it with sudo/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  describe('bad usage and bad input: exit 2, one line, no report', () => {
    const cases: [string, string[], RegExp][] = [
      ['unknown option', ['--replya', 'x'], /unknown option --replya; run with --help/],
      ['missing value', ['--replay', fx('clean.ndjson'), '--output'], /--output needs a value/],
      ['bad integer', ['--simulate', '--nodes', 'four'], /--nodes must be an integer, got "four"/],
      ['out of range', ['--simulate', '--nodes', '0'], /--nodes must be between 1 and 8/],
      ['bad choice', ['--simulate', '--flavor', 'bsd'], /--flavor must be one of mainline, namespace/],
      ['both modes', ['--simulate', '--replay', fx('clean.ndjson')], /choose one of --simulate and --replay/],
      ['live option in replay', ['--replay', fx('clean.ndjson'), '--duration', '5'], /--duration only goes with live mode/],
      ['bad lockspace id', ['--lockspace', 'fs1'], /--lockspace takes a lockspace global id/],
      ['sim option without --simulate', ['--replay', fx('clean.ndjson'), '--seed', '3'], /--seed only goes with --simulate or --demo/],
      ['stray argument', ['file.cap'], /unexpected argument "file.cap"/],
      ['missing input file', ['--replay', '/nonexistent/x.cap'], /\/nonexistent\/x.cap: cannot/],
      ['bad event line', ['--replay', fx('bad-line.ndjson')], /bad-line.ndjson:2: "mode" must be one of IV NL CR CW PR PW EX, got "XX"/],
      ['output directory missing', ['--replay', fx('clean.ndjson'), '--output', '/nonexistent/dir/r.json'], /directory \/nonexistent\/dir does not exist/],
    ];
    for (const [what, args, msg] of cases) {
      it(what, () => {
        const cwd = tmp();
        const r = cli(args.length && !args.includes('--output') ? [...args, '--output', join(cwd, 'r.json')] : args, { cwd });
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(msg);
        expect(readdirSync(cwd)).toEqual([]); // nothing written, not even a temporary file
      });
    }

    it('an unwritable output directory is refused before any work', () => {
      if (process.getuid?.() === 0) {
        // root writes anywhere: use a path under a regular file instead
        const f = join(d, 'plainfile');
        writeFileSync(f, 'x');
        const r = cli(['--replay', fx('clean.ndjson'), '--output', join(f, 'r.json')]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/is not a directory|does not exist/);
        return;
      }
      const ro = join(d, 'ro');
      mkdirSync(ro);
      chmodSync(ro, 0o500);
      const r = cli(['--replay', fx('clean.ndjson'), '--output', join(ro, 'r.json')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/not writable/);
    });

    it('text traces of two nodes are merged causally: the real 2-node gfs2 pair gives no violation', () => {
      const out = join(d, 'two.json');
      const base = join(ROOT, 'test/fixtures/traces/6.12.117+deb12-amd64/c-gfs2-2node');
      const r = cli(['--replay', join(base, 'trace-node1.txt'), join(base, 'trace-node2.txt'), '--output', out, '--quiet']);
      expect(r.code).toBe(0);
      const rep = readReport(out);
      expect(rep.violations).toEqual([]);
      expect(rep.summary.records).toBeGreaterThan(6000);
    });

    it('a text trace is replayed, not misread as an event file', () => {
      const out = join(d, 'tt.json');
      const r = cli(['--replay', join(ROOT, 'test/fixtures/io/trace-tracefs.txt'), '--output', out]);
      expect(r.code).toBe(0);
      const rep = readReport(out);
      expect(rep.summary.records).toBe(12);
      expect(rep.context.trace_text[0].format).toBe('tracefs');
    });
  });
});
