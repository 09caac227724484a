// The documented exit codes (docs/cli.md): every error a user can cause maps to one.
export const EXIT_OK = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_USAGE = 2; // bad usage or bad input
export const EXIT_ENV = 3; // environment problem (privileges, kernel, BPF)

/** Bad command line: one line naming the problem and the fix. */
export class UsageError extends Error {
  readonly exitCode = EXIT_USAGE;
}

/** Bad input file: `file:line: reason`. */
export class InputError extends Error {
  readonly exitCode = EXIT_USAGE;
  constructor(readonly file: string, readonly line: number | undefined, readonly reason: string) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
  }
}

/** The machine cannot do what was asked (not root, no BTF, no dlm module, ...). */
export class EnvError extends Error {
  readonly exitCode = EXIT_ENV;
}
