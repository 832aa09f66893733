import type { Command } from 'commander';
import pc from 'picocolors';
import { ExitCode } from '../../core/errors.js';
import { describeDifference } from '../../log/compare.js';
import { logHead, replayStoredRun, runHead, verifyRuns } from '../../log/log-service.js';
import { shortRunId } from '../../swarm.js';
import type { CliContext } from '../context.js';

/**
 * `swarm log head [run] | replay <run> | verify [run]`: the hash-chained event log of runs, read on
 * its own: its head, a run's events replayed into the state its rows must hold, every chain verified.
 */
export function registerLogCommands(program: Command, ctx: CliContext): void {
  const log = program.command('log').description("the runs' hash-chained event log: its head, a replay of a run against its rows, verification of every chain");

  log
    .command('head [run]')
    .description('the latest events across runs (run, seq, type, hash) and counts; with a run: its head seq and hash')
    .option('--limit <n>', 'how many runs to show', '10')
    .option('--json', 'print JSON')
    .action(async (run: string | undefined, o: { limit: string; json?: boolean }) => {
      const swarm = await ctx.swarm();
      if (run) {
        const h = await runHead(swarm, run);
        if (o.json) return ctx.out(JSON.stringify(h, null, 2));
        return ctx.out(`${h.run_id}  seq ${h.seq}  ${h.type ?? '-'}  ${h.hash}`);
      }
      const limit = Number.parseInt(o.limit, 10);
      const head = await logHead(swarm.store, Number.isFinite(limit) && limit > 0 ? limit : 10);
      if (o.json) return ctx.out(JSON.stringify(head, null, 2));
      if (head.runs === 0) return ctx.out('the log is empty: no runs yet');
      const statuses = Object.entries(head.by_status)
        .map(([s, n]) => `${n} ${s}`)
        .join(', ');
      ctx.out(`${head.events} events in ${head.runs} runs (${statuses})`);
      for (const e of head.latest) {
        const at = e.at === null ? '-' : new Date(e.at).toISOString();
        ctx.out(`${shortRunId(e.run_id)}  ${e.workflow}  seq ${e.seq}  ${(e.type ?? '-').padEnd(20)}  ${e.hash.slice(0, 16)}  ${pc.dim(at)}`);
      }
    });

  log
    .command('replay <run>')
    .description("replay a run's events into its state and compare it with the stored run and step rows (exit 3 on any difference)")
    .option('--json', 'print JSON')
    .action(async (run: string, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const report = await replayStoredRun(swarm, run);
      if (o.json) ctx.out(JSON.stringify(report, null, 2));
      else if (report.ok) ctx.out(`${pc.green('ok')}: run ${report.run_id}: ${report.events} events replayed; the state equals the stored run and steps`);
      else {
        ctx.err(`${pc.red('✖')} run ${report.run_id}: ${report.differences.length} difference(s) between its ${report.events} events and the stored state`);
        for (const d of report.differences) ctx.err(`  ${describeDifference(d)}`);
      }
      if (!o.json) for (const n of report.notes) ctx.err(pc.dim(`note: ${n}`));
      if (!report.ok) ctx.exitCode = ExitCode.VERIFICATION_FAILED;
    });

  log
    .command('verify [run]')
    .description("verify every run's event chain and checkpoints (or one run's): a line per failing run, a total (exit 3 if any fails)")
    .option('--allow-legacy', 'accept an unkeyed (plain SHA-256) start of the chain of runs created before the store was first used with a key')
    .option('--json', 'print JSON')
    .action(async (run: string | undefined, o: { allowLegacy?: boolean; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const reports = await verifyRuns(swarm, { ...(run ? { run } : {}), allowLegacy: o.allowLegacy === true });
      const failed = reports.filter((r) => !r.ok);
      if (o.json) ctx.out(JSON.stringify({ runs: reports.length, failed: failed.length, reports }, null, 2));
      else {
        for (const r of failed) {
          const first = r.problems[0];
          ctx.err(`${pc.red('✖')} run ${r.run_id} (${r.workflow}): ${r.problems.length} problem(s); first ${first?.seq === null || first?.seq === undefined ? 'in the run' : `at seq ${first.seq}`}: ${first?.problem ?? '?'}`);
        }
        const events = reports.reduce((n, r) => n + r.events, 0);
        const line = `${reports.length} run(s), ${events} events: ${reports.length - failed.length} verify, ${failed.length} fail`;
        if (failed.length) ctx.err(line);
        else ctx.out(`${pc.green('ok')}: ${line}`);
      }
      if (failed.length) ctx.exitCode = ExitCode.VERIFICATION_FAILED;
    });
}
