// A small, strict option parser: every option is declared, anything else is a
// usage error naming the option and pointing at --help.
import { UsageError } from '../errors';

export type OptKind = 'flag' | 'string' | 'int' | 'list';

export interface OptSpec { kind: OptKind; min?: number; max?: number; choices?: readonly string[] }

export type Parsed = { _: string[] } & Record<string, string | number | boolean | string[] | undefined>;

export function parseArgs(argv: string[], specs: Record<string, OptSpec>): Parsed {
  const out: Parsed = { _: [] };
  let current: string | undefined; // the list option that takes the following positionals
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { out._.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('--')) {
      if (current) (out[current] as string[]).push(a);
      else out._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown option --${name}; run with --help for the options`);
    current = undefined;
    if (spec.kind === 'flag') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    let val: string | undefined = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (val === undefined || (eq < 0 && val.startsWith('--'))) throw new UsageError(`--${name} needs a value; run with --help for the options`);
    if (spec.kind === 'list') {
      const list = (out[name] as string[] | undefined) ?? [];
      list.push(val);
      out[name] = list;
      current = name;
      continue;
    }
    if (spec.kind === 'int') {
      if (!/^-?\d+$/.test(val)) throw new UsageError(`--${name} must be an integer, got "${val}"`);
      const n = Number(val);
      if (!Number.isSafeInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new UsageError(`--${name} must be between ${spec.min ?? '-inf'} and ${spec.max ?? 'inf'}, got ${val}`);
      }
      out[name] = n;
      continue;
    }
    if (spec.choices && !spec.choices.includes(val)) {
      throw new UsageError(`--${name} must be one of ${spec.choices.join(', ')}; got "${val}"`);
    }
    out[name] = val;
    val = undefined;
  }
  return out;
}
