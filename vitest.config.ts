import { defineConfig } from 'vitest/config';

/**
 * Test files that run in this process only (no child processes, no servers taken down): two at a
 * time. Every other file runs after them, one at a time: they start CLI and worker processes whose
 * liveness bounds are set for a machine that runs one of them at once.
 */
const IN_PROCESS = [
  'test/concurrency-keys.test.ts',
  'test/config.test.ts',
  'test/core-*.test.ts',
  'test/engine.test.ts',
  'test/engine-nesting.test.ts',
  'test/http-fetch.test.ts',
  'test/integrity.test.ts',
  'test/llm-loop.test.ts',
  'test/llm-providers.test.ts',
  'test/run-filters.test.ts',
  'test/schedule.test.ts',
  'test/scheduler.test.ts',
  'test/secrets.test.ts',
  'test/server-api.test.ts',
  'test/server-api-more.test.ts',
  'test/server-run-page.test.ts',
  'test/server-auth.test.ts',
  'test/server-schedules.test.ts',
  'test/server-signals.test.ts',
  'test/server-sse.test.ts',
  'test/server-webhooks.test.ts',
  'test/sqlite-claim.test.ts',
  'test/store-contract.test.ts',
  'test/store-contract-nesting.test.ts',
  'test/tokens-store.test.ts',
  'test/triggers-store.test.ts',
  'test/webhook-verify.test.ts',
  'test/waits-contract.test.ts',
  'test/waits-engine.test.ts',
  'test/workflow-triggers.test.ts',
];

/** Browser tests: Chromium and a `swarm serve` process each. */
const BROWSER = ['test/web/**/*.test.ts'];

const common = { testTimeout: 60_000, hookTimeout: 60_000, pool: 'forks' } as const;

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    // One PostgreSQL server for the run, shared by every test file (a fresh database per test).
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { test: { ...common, name: 'in-process', include: IN_PROCESS } },
      { test: { ...common, name: 'processes', include: ['test/**/*.test.ts'], exclude: [...IN_PROCESS, ...BROWSER], fileParallelism: false } },
      // The dashboard in a real headless Chromium against a real `swarm serve` (test/web/browser.ts).
      { test: { ...common, name: 'browser', include: BROWSER, fileParallelism: false } },
    ],
  },
});
