import { defineConfig } from 'vitest/config';

/**
 * Test files that run in this process only (no child processes, no servers taken down).
 */
const IN_PROCESS = [
  'test/concurrency-keys.test.ts',
  'test/config.test.ts',
  'test/core-*.test.ts',
  'test/guardrails-budget.test.ts',
  'test/deploy.test.ts',
  'test/engine.test.ts',
  'test/guardrails-breakers.test.ts',
  'test/engine-nesting.test.ts',
  'test/guardrails-loop.test.ts',
  'test/guardrails-redaction.test.ts',
  'test/redaction-store.test.ts',
  'test/http-fetch.test.ts',
  'test/integrity.test.ts',
  'test/logger.test.ts',
  'test/llm-loop.test.ts',
  'test/guardrails-policy.test.ts',
  'test/guardrails-policy-swarm.test.ts',
  'test/llm-providers.test.ts',
  'test/memory-api.test.ts',
  'test/memory-engine.test.ts',
  'test/memory-policy.test.ts',
  'test/memory-ivf.test.ts',
  'test/memory-store.test.ts',
  'test/metrics.test.ts',
  'test/run-filters.test.ts',
  'test/schedule.test.ts',
  'test/scheduler.test.ts',
  'test/sw4rm-conformance.test.ts',
  'test/sw4rm-scheduler.test.ts',
  'test/secrets.test.ts',
  'test/server-api.test.ts',
  'test/sw4rm-router.test.ts',
  'test/server-api-more.test.ts',
  'test/server-run-page.test.ts',
  'test/server-auth.test.ts',
  'test/server-run-filters.test.ts',
  'test/server-schedules.test.ts',
  'test/server-signals.test.ts',
  'test/server-sse.test.ts',
  'test/server-webhooks.test.ts',
  'test/server-workers.test.ts',
  'test/sqlite-claim.test.ts',
  'test/store-contract.test.ts',
  'test/store-contract-nesting.test.ts',
  'test/sw4rm-core.test.ts',
  'test/sw4rm-idempotency.test.ts',
  'test/sw4rm-state-store.test.ts',
  'test/retention-contract.test.ts',
  'test/tokens-store.test.ts',
  'test/triggers-store.test.ts',
  'test/webhook-verify.test.ts',
  'test/waits-contract.test.ts',
  'test/waits-engine.test.ts',
  'test/workflow-triggers.test.ts',
  'test/sw4rm-bridge.test.ts',
  'test/sw4rm-sdk.test.ts',
  'test/sw4rm-wire.test.ts',
];

/**
 * Files that must run alone, after everything else, because what they check depends on the machine
 * being otherwise quiet or on state shared by every process of the host:
 * - postgres-chaos: 4 workers under random SIGKILLs plus server restarts, bounded by progress stalls;
 *   the heaviest file by far (it would starve whatever ran beside it, and be starved in turn).
 * - sandbox-cgroups: checks that a SIGKILLed worker's attempt cgroup is still there until the worker
 *   that reaps it removes it; any other worker starting meanwhile sweeps the cgroups of every dead
 *   worker on the host, and would remove it first. (The rest of sandbox.test.ts runs in `processes`.)
 * - disk-faults: a full tmpfs; asserts the CLI goes quiet within 5 s of the fault.
 * - schedule-process, scheduler-postgres: schedule leases of 1.5 s renewed every 0.5 s, and ticks
 *   every second counted across a takeover; a starved holder would lose its lease early.
 * - waits-process: 6 s sleeps must still be sleeping after several CLI calls when the worker is killed.
 * - crash: kills land on steps of 4 s (a 0.3 s SIGTERM grace, an attached run taking over); it
 *   failed beside another file on a very busy machine (its orphan step now sleeps 50 s, which fixes
 *   that case): kept alone until it is shown stable two at a time.
 */
const SERIAL = [
  'test/postgres-chaos.test.ts',
  'test/sandbox-cgroups.test.ts',
  'test/disk-faults.test.ts',
  'test/schedule-process.test.ts',
  'test/scheduler-postgres.test.ts',
  'test/waits-process.test.ts',
  'test/crash.test.ts',
];

/** The dashboard's tests: a real headless Chromium against a real `swarm serve` each (test/web/browser.ts). */
const BROWSER = ['test/web/**/*.test.ts'];

// Liveness bounds only: a test of ten CLI calls takes seconds on a quiet machine, a minute on a busy one.
const common = { testTimeout: 120_000, hookTimeout: 120_000, pool: 'forks' } as const;

/*
 * Order of a run (vitest runs groups one after another; files of one group share its workers):
 * 1. group 0, two files at a time: `in-process` and `processes` together. `processes` files start
 *    CLI, worker and server processes; their liveness bounds (leases, `until` deadlines, kill
 *    timeouts) leave room for a machine running two such files at once.
 * 2. group 1: `browser`, two files at a time after group 0 (Chromium and a `swarm serve` per file).
 * 3. last, one file at a time: `serial` (fileParallelism: false puts a project's files there).
 */
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    // One PostgreSQL server for the run, shared by every test file (a fresh database per test).
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { test: { ...common, name: 'in-process', include: IN_PROCESS } },
      { test: { ...common, name: 'processes', include: ['test/**/*.test.ts'], exclude: [...IN_PROCESS, ...SERIAL, ...BROWSER] } },
      { test: { ...common, name: 'browser', include: BROWSER, sequence: { groupOrder: 1 }, maxWorkers: 2 } },
      { test: { ...common, name: 'serial', include: SERIAL, fileParallelism: false } },
    ],
  },
});
