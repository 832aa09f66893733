import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

/**
 * Ends the run with the ten slowest files (to keep CI fast, see vitest.config.ts) and one plain line,
 * `N passed, N failed`, that any CI can read.
 *
 * With SWARM_TEST_DURATIONS=<file> (test/durations.json) it also records every file's duration there,
 * in seconds (keeping the files this run did not run): vitest.config.ts orders a run by them.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    const files = modules.map((m) => ({ file: m.moduleId.replace(`${process.cwd()}/`, ''), project: m.project.name, ms: m.diagnostic().duration }));
    const slowest = [...files].sort((a, b) => b.ms - a.ms).slice(0, 10);
    const width = Math.max(10, ...slowest.map((f) => f.project.length));
    process.stdout.write(`\nslowest files:\n${slowest.map((f) => `  ${(f.ms / 1000).toFixed(1).padStart(6)} s  ${f.project.padEnd(width)} ${f.file}`).join('\n')}\n`);
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
    const out = process.env.SWARM_TEST_DURATIONS;
    if (out) {
      const durations = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Record<string, number>) : {};
      for (const f of files) if (f.ms > 0) durations[f.file] = Math.round(f.ms / 100) / 10;
      const sorted = Object.fromEntries(Object.entries(durations).sort(([a], [b]) => a.localeCompare(b)));
      writeFileSync(out, `${JSON.stringify(sorted, null, 2)}\n`);
    }
  }
}
