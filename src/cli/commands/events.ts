import type { Command } from 'commander';
import { resolveConfig } from '../../config/config.js';
import { shortRunId } from '../../swarm.js';
import { eventTriggerJson } from '../../views/triggers.js';
import { parseInput, type CliContext } from '../context.js';

/**
 * `swarm events emit <name> [json]`: raise a custom event. It is recorded, and the runs of the event
 * triggers listening for it are created, in one transaction; `--id` makes a repeat start nothing.
 */
export function registerEventsCommands(program: Command, ctx: CliContext): void {
  const events = program.command('events').description('custom events that start workflows with event triggers (trigger: {type: event, on: <name>})');
  events
    .command('triggers')
    .description('the event triggers of registered workflows: the event, its source, the filter')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = (await swarm.listEventTriggers()).map(eventTriggerJson);
      if (o.json) return ctx.out(JSON.stringify(list, null, 2));
      if (list.length === 0) return ctx.out("no event triggers: a workflow declares one with trigger: {type: event, on: <event>}");
      for (const t of list) {
        ctx.out(`${t.workflow}@${t.version}  on ${t.on ?? '?'}${t.source ? ` from ${t.source}` : ''}${t.filter ? `  if ${t.filter}` : ''}${t.enabled ? '' : '  (disabled)'}`);
      }
    });

  events
    .command('emit <name> [json]')
    .description("raise a custom event with JSON data (inline, @file or - for standard input): starts the runs of the event triggers listening for it")
    .option('--id <id>', 'the event id: a repeat with the same id starts nothing (default: a new id)')
    .option('--source <name>', 'who raises it: triggers with source: match only their own')
    .option('--json', 'print JSON')
    .action(async (name: string, json: string | undefined, o: { id?: string; source?: string; json?: boolean }) => {
      const data = parseInput(json, resolveConfig({ cwd: ctx.cwd, env: ctx.env }).limits.run_input_bytes);
      const swarm = await ctx.swarm();
      const out = await swarm.emitEvent(name, data, { ...(o.id !== undefined ? { id: o.id } : {}), ...(o.source !== undefined ? { source: o.source } : {}) });
      if (o.json) return ctx.out(JSON.stringify({ event_id: out.id, name: out.name, created: out.created, runs: out.runs, skipped: out.skipped }, null, 2));
      const runs = out.runs.length ? out.runs.map(shortRunId).join(', ') : 'none';
      ctx.out(out.created ? `event ${out.name} ${out.id}: started ${out.runs.length} run(s): ${runs}` : `event ${out.id} was emitted before: nothing started (its runs: ${runs})`);
      for (const s of out.skipped) ctx.err(`warning: the trigger of workflow ${s.trigger} did not start a run: ${s.error}`);
    });
}
