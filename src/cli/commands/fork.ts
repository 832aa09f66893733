/**
 * `swarm runs fork` and the lineage lines of `swarm runs show` (text and --json).
 *
 * Exit codes of `runs fork`: 0 the fork was created (with --wait: and completed or is waiting);
 * 2 invalid input (RUN_NOT_FINISHED, UNKNOWN_STEP, REPLACE_OUTPUT_NOT_COPIED, OUTPUT_INVALID,
 * INPUT_INVALID, JSON_INVALID, TURN_NOT_LLM, TURN_OUT_OF_RANGE, TURN_NOT_RECORDED, RUN_CHANGED,
 * RUN_NOT_FOUND); 3 the parent's stored rows do not match its event chain (VERIFICATION_FAILED:
 * nothing is forked); with --wait, 4 when the fork failed or was cancelled.
 *
 * Without --wait the fork is created queued: stdout has its id, stderr what it copies and who runs
 * it (a running `swarm worker`, or `swarm runs resume <fork>` here).
 *
 * @example
 *   swarm runs fork 3f2a9c1d4e5b --at summarize --replace-output fetch='{"text":"hi"}' --wait
 */
import type { Command } from 'commander';
import pc from 'picocolors';
import { UserError } from '../../core/errors.js';
import type { LineageNode } from '../../store/fork-types.js';
import type { RunRecord } from '../../store/types.js';
import { shortRunId, type Swarm } from '../../swarm.js';
import { parseInput, parsePositiveInt, swarmCommand, type CliContext } from '../context.js';
import { colorStatus } from '../render.js';
import { attach } from './runs.js';

/** `--replace-output step=<json>` values, by step. */
export function parseReplacements(values: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UserError('ARGUMENT_INVALID', `--replace-output must be <step>=<json>, like fetch='{"text":"hi"}', not '${v}'`, { option: '--replace-output' });
    const step = v.slice(0, eq);
    const text = v.slice(eq + 1);
    if (Object.hasOwn(out, step)) throw new UserError('ARGUMENT_INVALID', `--replace-output ${step} is given twice; give each step's output once`, { option: '--replace-output', step });
    try {
      out[step] = JSON.parse(text);
    } catch (e) {
      throw new UserError('JSON_INVALID', `--replace-output ${step}: the value is not valid JSON: ${(e as Error).message}`, { option: '--replace-output', step });
    }
  }
  return out;
}

export function registerForkCommands(program: Command, ctx: CliContext): void {
  const runs = program.commands.find((c) => c.name() === 'runs');
  if (!runs) return;
  runs
    .command('fork <run>')
    .description("a new run of a finished run's plan: copies the steps <step> does not depend on, runs <step> and what follows again")
    .requiredOption('--at <step>', 'the step to run again (with everything downstream of it)')
    .option('--input <json>', 'new trigger data (JSON, @file, or - for stdin); default: the parent run’s')
    .option('--replace-output <step=json>', 'use this output for a copied step instead of the parent’s (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--turn <n>', 'an LLM step: resume its conversation at turn n, reusing the earlier turns’ responses and tool results')
    .option('--wait', 'run the fork to its end here (or wait for a worker) and print its outputs')
    .option('--json', 'print JSON')
    .action(async (run: string, o: { at: string; input?: string; replaceOutput: string[]; turn?: string; wait?: boolean; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const replaceOutputs = parseReplacements(o.replaceOutput);
      const input = o.input === undefined ? undefined : parseInput(o.input, swarm.config.limits.run_input_bytes);
      if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
        throw new UserError('INPUT_INVALID', `--input must be a JSON object, like '{"message": "hi"}'`, { option: '--input' });
      }
      const f = await swarm.fork(run, {
        at: o.at,
        ...(input !== undefined ? { input: input as Record<string, unknown> } : {}),
        ...(Object.keys(replaceOutputs).length ? { replaceOutputs } : {}),
        ...(o.turn !== undefined ? { turn: parsePositiveInt(o.turn, '--turn') } : {}),
      });
      if (!o.wait) {
        if (o.json) return ctx.out(JSON.stringify(f, null, 2));
        ctx.out(f.run_id);
        ctx.err(`forked run ${shortRunId(f.parent_run_id)} at '${f.at}'${f.turn ? ` turn ${f.turn}` : ''}: copied ${f.copied.join(', ') || 'nothing'}; runs again ${f.rerun.join(', ')}${f.fresh.length ? `; runs fresh ${f.fresh.join(', ')}` : ''}`);
        ctx.err(await whoRunsIt(ctx, swarm, f.run_id));
        return;
      }
      if (!o.json) ctx.err(`forked run ${shortRunId(f.parent_run_id)} at '${f.at}' as run ${f.run_id}: copied ${f.copied.join(', ') || 'nothing'}`);
      ctx.exitCode = await attach(ctx, swarm, f.run_id, { json: o.json ?? false, execute: !(await swarm.hasLiveWorker()) });
    });
}

/** The line that says the fork is queued and what runs it: a live worker, or a command to give. */
async function whoRunsIt(ctx: CliContext, swarm: Swarm, runId: string): Promise<string> {
  const swarmCmd = swarmCommand(ctx);
  const short = shortRunId(runId);
  // With a worker running, the fork may be running or done by now: say who runs it, not its status.
  if (await swarm.hasLiveWorker()) return `run ${short} is queued for the running worker ('${swarmCmd} runs show ${short}' shows how far it got)`;
  const { status } = (await swarm.getRun(runId)).run;
  return `run ${short} is ${status} and no worker is running: run it here with '${swarmCmd} runs resume ${short}', or start '${swarmCmd} worker' (or fork with --wait to run it at once)`;
}

/** The lineage of a run as `runs show --json` adds it: absent for a run that has no forks and is none. */
export async function lineageJson(swarm: Swarm, run: RunRecord): Promise<{ lineage?: Record<string, unknown> }> {
  const nodes = await swarm.lineage(run.id);
  if (nodes.length <= 1) return {};
  const children = nodes.filter((n) => n.parent_run_id === run.id).map((n) => ({ run_id: n.run_id, fork_step_id: n.fork_step_id, fork_turn: n.fork_turn, status: n.status }));
  return {
    lineage: {
      parent_run_id: run.fork_step_id ? run.parent_run_id : null,
      fork_step_id: run.fork_step_id,
      fork_turn: run.fork_turn,
      depth: nodes.find((n) => n.run_id === run.id)?.depth ?? 0,
      children,
      tree: nodes.map(nodeJson),
    },
  };
}

export function nodeJson(n: LineageNode): Record<string, unknown> {
  return { ...n, created_at: new Date(n.created_at).toISOString() };
}

/** `runs show` lines: the fork point, then the tree (the run marked), when there is one. */
export async function lineageLines(swarm: Swarm, run: RunRecord): Promise<string[]> {
  const nodes = await swarm.lineage(run.id);
  if (nodes.length <= 1) return [];
  const lines: string[] = [];
  if (run.fork_step_id && run.parent_run_id) lines.push(`forked from: run ${run.parent_run_id} at step '${run.fork_step_id}'${run.fork_turn ? `, turn ${run.fork_turn}` : ''}`);
  const forks = nodes.filter((n) => n.parent_run_id === run.id);
  if (forks.length) lines.push(`forks: ${forks.length} (${forks.map((n) => shortRunId(n.run_id)).join(', ')})`);
  lines.push('lineage:');
  const byParent = new Map<string, LineageNode[]>();
  for (const n of nodes) if (n.parent_run_id) byParent.set(n.parent_run_id, [...(byParent.get(n.parent_run_id) ?? []), n]);
  const draw = (n: LineageNode, prefix: string, last: boolean, root: boolean): void => {
    const mark = n.run_id === run.id ? pc.bold('▶ ') : '';
    const at = n.fork_step_id ? ` at '${n.fork_step_id}'${n.fork_turn ? ` turn ${n.fork_turn}` : ''}` : '';
    lines.push(`  ${prefix}${root ? '' : last ? '└─ ' : '├─ '}${mark}${n.run_id}${at} ${colorStatus(n.status)}`);
    const kids = byParent.get(n.run_id) ?? [];
    kids.forEach((k, i) => draw(k, root ? prefix : `${prefix}${last ? '   ' : '│  '}`, i === kids.length - 1, false));
  };
  const root = nodes[0];
  if (root) draw(root, '', true, true);
  return lines;
}
