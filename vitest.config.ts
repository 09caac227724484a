import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // the VM and BPF suites share the machine's two cores with nothing else
    pool: 'forks',
    reporters: ['default', './test/closing-line-reporter.ts'],
  },
});
