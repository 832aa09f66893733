import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const ROOT = dirname(fileURLToPath(import.meta.url));

/**
 * Test files that run in this process only (no child processes, no servers taken down). Some of
 * them run beside the QUIET files (COMPANIONS below), the others in the first group.
 */
const IN_PROCESS = [
  'test/cli-lazy-commands.test.ts',
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
  'test/precompiled-schemas.test.ts',
  'test/run-filters.test.ts',
  'test/schedule.test.ts',
  'test/scheduler.test.ts',
  'test/sw4rm-conformance.test.ts',
  'test/sw4rm-scheduler.test.ts',
  'test/secrets.test.ts',
  'test/server-api.test.ts',
  'test/server-openapi-app.test.ts',
  'test/server-request-shortcuts.test.ts',
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
 * - postgres-chaos: 4 workers under random SIGKILLs, each replaced at once, bounded by progress
 *   stalls; the heaviest file by far (it would starve whatever ran beside it, and be starved in
 *   turn). (The PostgreSQL server's own faults are test/postgres-faults.test.ts, a QUIET file.)
 * - sandbox-cgroups: checks that a SIGKILLed worker's attempt cgroup is still there until the worker
 *   that reaps it removes it; any other process reaping dead workers meanwhile (a worker starting, an
 *   in-process engine test) sweeps the cgroups of every dead worker on the host, and would remove it
 *   first. (The rest of sandbox.test.ts runs with everything else.)
 */
const SERIAL = ['test/postgres-chaos.test.ts', 'test/sandbox-cgroups.test.ts'];

/**
 * Files that replace a module with `vi.mock` (node:fs/promises, say): they need a module registry of
 * their own, so they run in a fresh worker (`isolate: true`). Every other file shares its worker, and
 * the modules that worker has loaded, with the files run in it before (`isolate: false`): a fresh worker per
 * file started Node and loaded the code under test again 180 times (the in-process files alone took
 * 155 CPU-seconds in fresh workers, 72 in shared ones).
 */
const OWN_MODULES = ['test/sw4rm-core.test.ts'];

/**
 * Files that must not run beside another file that starts processes, but use little CPU themselves
 * (their processes mostly wait on timers): each runs after everything else in a group of its own,
 * beside in-process files only (COMPANIONS: no child processes, one core at most), so that the
 * machine's other core is not left idle:
 * - disk-faults: a full tmpfs; asserts the CLI goes quiet within 5 s of the fault.
 * - schedule-process, scheduler-postgres: schedule leases of 1.5 s renewed every 0.5 s, and ticks
 *   every second counted across a takeover; a starved holder would lose its lease early.
 * - waits-process: 6 s sleeps must still be sleeping after several CLI calls when the worker is killed.
 * - postgres-faults: the test's own PostgreSQL server shut down under load and started again within
 *   the store's retries of a lost connection (about 3 s), and an 8 s outage while a step is prepared.
 * - crash: kills land on steps of 4 s (a 0.3 s SIGTERM grace, an attached run taking over); it
 *   failed beside another file that starts processes on a very busy machine (its orphan step now
 *   sleeps 50 s, which fixes that case); beside in-process files it held on a machine loaded far
 *   beyond its two cores.
 */
const QUIET = [
  'test/disk-faults.test.ts',
  'test/schedule-process.test.ts',
  'test/scheduler-postgres.test.ts',
  'test/waits-process.test.ts',
  'test/postgres-faults.test.ts',
  'test/crash.test.ts',
];

/** The dashboard's tests: a real headless Chromium against a real `swarm serve` each (test/web/browser.ts). */
const BROWSER = ['test/web/**/*.test.ts'];

/** The files a list of `test/<pattern>` entries names (`*` within a file name only). */
function expand(patterns: string[]): string[] {
  const files = readdirSync(join(ROOT, 'test')).map((f) => `test/${f}`);
  return patterns.flatMap((p) => {
    const re = new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    return files.filter((f) => re.test(f));
  });
}

const IN_PROCESS_FILES = new Set(expand(IN_PROCESS));

/**
 * Seconds each file took in a full run, for the order of the run (longest first) and for choosing
 * the COMPANIONS. `SWARM_TEST_DURATIONS=test/durations.json npx vitest run` updates it (see
 * test/summary-reporter.ts). A file not in it counts as GUESS_S of its project.
 */
const DURATIONS: Record<string, number> = existsSync(join(ROOT, 'test/durations.json')) ? (JSON.parse(readFileSync(join(ROOT, 'test/durations.json'), 'utf8')) as Record<string, number>) : {};
const GUESS_S = { inProcess: 3, processes: 20, browser: 30 };

function seconds(file: string): number {
  return DURATIONS[file] ?? (IN_PROCESS_FILES.has(file) ? GUESS_S.inProcess : file.startsWith('test/web/') ? GUESS_S.browser : GUESS_S.processes);
}

/**
 * COMPANIONS: in-process files handed to the QUIET groups, longest first, each to the group with the
 * most time left, while its QUIET file still runs (its seconds, less a margin); the others stay in
 * the first group, where the short ones fill the end of the run.
 */
const COMPANIONS = new Map<string, string[]>(QUIET.map((q) => [q, []]));
{
  const room = new Map(QUIET.map((q) => [q, 0.8 * seconds(q)]));
  const candidates = [...IN_PROCESS_FILES].filter((f) => !OWN_MODULES.includes(f)).sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b));
  for (const f of candidates) {
    const [q, left] = [...room].sort((a, b) => b[1] - a[1])[0]!;
    const s = seconds(f);
    if (s > left) continue;
    COMPANIONS.get(q)!.push(f);
    room.set(q, left - s);
  }
}
const BESIDE_QUIET = [...COMPANIONS.values()].flat();

/**
 * Longest file first within each group (group order first), whatever its project: the two workers
 * then finish at about the same time, instead of one running the last long file alone. (Vitest's
 * own order runs projects one after another, and knows durations only from a previous run's cache,
 * which a fresh clone does not have.)
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cost = (f: TestSpecification): number => seconds(relative(ROOT, f.moduleId));
    return [...files].sort((a, b) => a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder || cost(b) - cost(a) || a.moduleId.localeCompare(b.moduleId));
  }
}

// Liveness bounds only: a test of ten CLI calls takes seconds on a quiet machine, a minute on a busy one.
// Workers are reused from file to file (isolate: false), except for OWN_MODULES.
const common = { testTimeout: 120_000, hookTimeout: 120_000, pool: 'forks', isolate: false } as const;

/*
 * Order of a run (vitest runs groups one after another; files of one group share its workers, and
 * start longest first):
 * 1. group 0, two files at a time: `in-process`, `processes` and `browser` together. `processes`
 *    files start CLI, worker and server processes; their liveness bounds (leases, `until` deadlines,
 *    kill timeouts) leave room for a machine running two such files at once. `browser` files start
 *    Chromium and a `swarm serve` each. Two, not more: two files of this group keep both cores
 *    busy (cli, postgres-engine and web/run two at a time: 197 CPU-seconds in 110 s; cli, whose
 *    tests run concurrently, took 121 CPU-seconds for about 70 s of its own), so a third file
 *    would only slow each of them.
 *    `own-modules` (OWN_MODULES, each in a fresh worker) runs in this group too.
 * 2. groups 1 to 6, one per QUIET file: that file beside in-process COMPANIONS, two at a time.
 * 3. last, one file at a time: `serial` (fileParallelism: false; its group is numbered after the
 *    QUIET ones, since its one worker differs from the two of group 0).
 */
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    // One PostgreSQL server for the run, shared by every test file (a fresh database per test).
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { test: { ...common, name: 'in-process', include: IN_PROCESS, exclude: [...BESIDE_QUIET, ...OWN_MODULES] } },
      { test: { ...common, name: 'processes', include: ['test/**/*.test.ts'], exclude: [...IN_PROCESS, ...SERIAL, ...QUIET, ...BROWSER] } },
      { test: { ...common, name: 'own-modules', include: OWN_MODULES, isolate: true } },
      { test: { ...common, name: 'browser', include: BROWSER, maxWorkers: 2 } },
      ...QUIET.map((q, i) => ({
        test: { ...common, name: `quiet-${q.replace(/^test\/|\.test\.ts$/g, '')}`, include: [q, ...COMPANIONS.get(q)!], sequence: { groupOrder: i + 1 }, maxWorkers: 2 },
      })),
      { test: { ...common, name: 'serial', include: SERIAL, fileParallelism: false, sequence: { groupOrder: QUIET.length + 1 } } },
    ],
  },
});
