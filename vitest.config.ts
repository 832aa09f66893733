import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time: most tests wait on child processes, databases and the network, so two
    // share the machine's cores well (the default, cores - 1, runs one at a time on two cores).
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
