#!/usr/bin/env node
// dlm-rv entry point: `node collect.js --help`. Loads the compiled TypeScript.
'use strict';
let main;
try {
  ({ main } = require('./dist/cli/main.js'));
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]main/.test(String(e.message))) {
    process.stderr.write('dlm-rv: not built yet; run ./scripts/setup (or npm ci && npm run build) first\n');
    process.exit(3);
  }
  throw e;
}
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => { process.stderr.write(`dlm-rv: internal error: ${e && e.stack ? e.stack : e}\n`); process.exitCode = 70; },
);
