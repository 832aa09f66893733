import type { Command } from 'commander';
import pc from 'picocolors';
import { shortRunId } from '../../swarm.js';
import type { ScheduleInfo } from '../../triggers/schedules.js';
import { parsePositiveInt, type CliContext } from '../context.js';
import { table } from '../render.js';

const when = (iso: string | null): string => (iso === null ? '-' : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z'));

function state(s: ScheduleInfo): string {
  if (!s.enabled) return pc.yellow('disabled');
  return s.paused ? pc.yellow('paused') : pc.green('active');
}

/**
 * `swarm schedules list | show | preview | pause | resume | trigger`: the schedule triggers that
 * `swarm serve` fires (docs/schedules.md). A workflow that is not registered, or has no schedule,
 * is an error (exit 2).
 */
export function registerSchedulesCommands(program: Command, ctx: CliContext): void {
  const schedules = program.command('schedules').description('schedule triggers fired by swarm serve: list, show, preview, pause, resume, trigger');

  schedules
    .command('list')
    .description('every schedule: workflow, cron, time zone, next run, last fired, paused or disabled')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const list = await (await ctx.swarm()).listSchedules();
      if (o.json) return ctx.out(JSON.stringify(list, null, 2));
      if (list.length === 0) return ctx.out('no schedules: declare trigger: {type: schedule, cron: …} in a workflow.yaml and register it');
      ctx.out(table(['WORKFLOW', 'CRON', 'TIMEZONE', 'NEXT RUN', 'LAST FIRED', 'STATE'], list.map((s) => [s.workflow, s.cron, s.timezone, when(s.next_run_at), when(s.last_fired_at), state(s)])));
    });

  schedules
    .command('show <workflow>')
    .description("one workflow's schedule, with its overlap and catch-up policies")
    .option('--json', 'print JSON')
    .action(async (workflow: string, o: { json?: boolean }) => {
      const s = await (await ctx.swarm()).getSchedule(workflow);
      if (o.json) return ctx.out(JSON.stringify(s, null, 2));
      ctx.out(`${pc.bold(s.workflow)}@${s.version}  ${state(s)}`);
      const row = (label: string, value: string): void => ctx.out(`  ${label.padEnd(10)} ${value}`);
      row('cron', `${s.cron} (${s.timezone})`);
      row('overlap', s.overlap);
      row('catchup', `${s.catchup.policy}, window ${s.catchup.window_seconds}s, max_runs ${s.catchup.max_runs}`);
      row('next run', when(s.next_run_at));
      row('last fired', when(s.last_fired_at));
      if (s.buffered_tick) row('waiting', `${when(s.buffered_tick)} (buffer_one: starts when the active run ends)`);
    });

  schedules
    .command('preview <workflow>')
    .description('the next ticks of a schedule (UTC)')
    .option('-n, --count <n>', 'how many ticks', '5')
    .option('--json', 'print JSON')
    .action(async (workflow: string, o: { count: string; json?: boolean }) => {
      const { MAX_PREVIEW_TICKS } = await import('../../triggers/schedule.js');
      const { schedule, ticks } = await (await ctx.swarm()).previewSchedule(workflow, parsePositiveInt(o.count, '--count', MAX_PREVIEW_TICKS));
      if (o.json) return ctx.out(JSON.stringify({ workflow: schedule.workflow, cron: schedule.cron, timezone: schedule.timezone, ticks }, null, 2));
      ctx.out(pc.dim(`${schedule.workflow}: ${schedule.cron} (${schedule.timezone})${schedule.paused ? ', paused' : ''}${schedule.enabled ? '' : ', workflow disabled'}`));
      for (const t of ticks) ctx.out(when(t));
    });

  for (const paused of [true, false]) {
    schedules
      .command(`${paused ? 'pause' : 'resume'} <workflow>`)
      .description(paused ? 'stop a schedule from firing (until resume)' : 'let a paused schedule fire again (missed ticks follow its catch-up policy)')
      .action(async (workflow: string) => {
        const swarm = await ctx.swarm();
        const s = paused ? await swarm.pauseSchedule(workflow) : await swarm.resumeSchedule(workflow);
        // Ticks missed while paused fire first, as the catch-up policy says: the next run may be one of them.
        const missed = s.catchup.policy === 'none' ? '' : `; a tick missed while it was paused fires first (catchup: ${s.catchup.policy})`;
        ctx.out(`schedule of ${s.workflow} ${paused ? 'paused' : `resumed (next tick ${when(s.next_run_at)}${missed})`}`);
      });
  }

  schedules
    .command('trigger <workflow>')
    .description('fire one run of a scheduled workflow now (trigger type schedule; paused or not)')
    .option('--json', 'print JSON')
    .action(async (workflow: string, o: { json?: boolean }) => {
      const { runId } = await (await ctx.swarm()).triggerSchedule(workflow);
      if (o.json) return ctx.out(JSON.stringify({ run_id: runId, workflow }, null, 2));
      ctx.out(`run ${shortRunId(runId)} started (${workflow}, trigger schedule); see it with 'swarm runs show ${shortRunId(runId)}'`);
    });
}
