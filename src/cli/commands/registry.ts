import type { Command } from 'commander';
import pc from 'picocolors';
import { ExitCode, UserError, errorMessage } from '../../core/errors.js';
import type { IoSchema } from '../../core/io-schema.js';
import { AGENT_TEMPLATES, createAgentPackage, createWorkflowPackage, WORKFLOW_TEMPLATES } from '../../scaffold.js';
import { shortRunId, type RegisterResult } from '../../swarm.js';
import { parsePositiveInt, type CliContext } from '../context.js';
import { colorStatus, formatMs, formatTime, runListJson, table } from '../render.js';

type Many<T> = Array<RegisterResult<T> | { path: string; error: Error }>;

function reportMany<T extends { id: string }>(ctx: CliContext, results: Many<T>, kind: string): void {
  let failed = 0;
  for (const r of results) {
    if ('error' in r) {
      failed++;
      const [first, ...more] = errorMessage(r.error).split('\n');
      ctx.err(`${pc.red('✖')} ${r.path}: ${first ?? ''}`);
      for (const line of more) ctx.err(`    ${line}`);
    } else {
      ctx.out(`${pc.green('✔')} ${r.record.id} ${pc.dim(r.result)}`);
      for (const w of 'warnings' in r ? (r.warnings ?? []) : []) ctx.err(pc.yellow(`warning: ${w}`));
    }
  }
  if (results.length === 0) ctx.err(`no ${kind} packages found`);
  ctx.out(`${results.length - failed} ${kind}(s) registered${failed ? `, ${failed} failed` : ''}`);
  if (failed) ctx.exitCode = ExitCode.INVALID_INPUT;
}

function schemaFields(schema: IoSchema): Array<[string, string, string, string]> {
  const props = (schema.properties ?? {}) as Record<string, { type?: string; description?: string }>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, p]) => [name, p.type ?? 'any', required.has(name) ? 'yes' : '', p.description ?? '']);
}

export function registerAgentCommands(program: Command, ctx: CliContext): void {
  const agent = program.command('agent').description('manage agent packages');

  agent
    .command('list')
    .description('list registered agents')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const agents = await (await ctx.swarm()).listAgents();
      if (o.json) return ctx.out(JSON.stringify(agents.map((a) => ({ id: a.id, name: a.name, version: a.version, path: a.path, runtime: a.manifest.runtime.type, description: a.manifest.description ?? null })), null, 2));
      if (agents.length === 0) return ctx.out("no agents registered; try 'swarm agent register --all'");
      ctx.out(table(['NAME', 'VERSION', 'RUNTIME', 'DESCRIPTION'], agents.map((a) => [a.name, a.version, a.manifest.runtime.type, a.manifest.description])));
    });

  agent
    .command('info <name[@version]>')
    .description('show an agent: runtime, inputs, outputs')
    .option('--json', 'print JSON')
    .action(async (ref: string, o: { json?: boolean }) => {
      const a = await (await ctx.swarm()).getAgent(ref);
      if (o.json) return ctx.out(JSON.stringify({ id: a.id, path: a.path, ...a.manifest }, null, 2));
      const m = a.manifest;
      ctx.out(`${pc.bold(a.id)}${m.description ? `  ${m.description}` : ''}`);
      ctx.out(`path:     ${a.path}`);
      ctx.out(`runtime:  ${m.runtime.type} ${m.runtime.command ? `${m.runtime.command.join(' ')} ` : ''}${m.runtime.entry} (memory ${m.runtime.memory_mb} MB, timeout ${m.runtime.timeout_seconds}s)`);
      if (m.author) ctx.out(`author:   ${m.author}`);
      if (m.capabilities.length) ctx.out(`capabilities: ${m.capabilities.join(', ')}`);
      if (m.tags.length) ctx.out(`tags:     ${m.tags.join(', ')}`);
      ctx.out(`\ninputs:\n${table(['NAME', 'TYPE', 'REQUIRED', 'DESCRIPTION'], schemaFields(m.inputs))}`);
      ctx.out(`\noutputs:\n${table(['NAME', 'TYPE', 'REQUIRED', 'DESCRIPTION'], schemaFields(m.outputs))}`);
    });

  agent
    .command('register [path]')
    .description('register the agent package at <path> (a directory with agent.yaml)')
    .option('--all [dir]', 'register every package directly under dir (default: the agents directory)')
    .option('--force', 'replace a registered version whose content changed')
    .action(async (path: string | undefined, o: { all?: string | boolean; force?: boolean }) => {
      const swarm = await ctx.swarm();
      if (o.all !== undefined) {
        const dir = typeof o.all === 'string' ? o.all : (path ?? swarm.config.agentsDir);
        return reportMany(ctx, await swarm.registerAgents(dir, { force: o.force ?? false }), 'agent');
      }
      if (!path) throw new UserError('ARGUMENT_MISSING', 'give the path of an agent package, or --all');
      const r = await swarm.registerAgent(path, { force: o.force ?? false });
      ctx.out(`${pc.green('✔')} ${r.record.id} ${pc.dim(r.result)}`);
      for (const w of r.warnings ?? []) ctx.err(pc.yellow(`warning: ${w}`));
    });

  agent
    .command('create <name>')
    .description('create an agent package from a template')
    .option('-t, --template <template>', `one of ${AGENT_TEMPLATES.join(', ')}`, 'basic')
    .option('--dir <dir>', 'where to create it (default: the agents directory)')
    .action(async (name: string, o: { template: string; dir?: string }) => {
      const swarm = await ctx.swarm();
      const path = createAgentPackage(name, o.template, o.dir ?? swarm.config.agentsDir);
      ctx.out(`created ${path}\nnext: edit it, then 'swarm agent register ${path}'`);
    });

  agent
    .command('delete <name@version>')
    .description('remove an agent version from the registry (its files stay)')
    .option('--force', 'delete even if a registered workflow needs this version')
    .action(async (ref: string, o: { force?: boolean }) => {
      const a = await (await ctx.swarm()).deleteAgent(ref, { force: o.force ?? false });
      ctx.out(`deleted ${a.id}`);
    });
}

export function registerWorkflowCommands(program: Command, ctx: CliContext): void {
  const wf = program.command('workflow').description('manage workflows');

  wf.command('list')
    .description('list registered workflows')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const all = await (await ctx.swarm()).listWorkflows();
      if (o.json) return ctx.out(JSON.stringify(all.map((w) => ({ id: w.id, name: w.name, version: w.version, enabled: w.enabled, steps: w.manifest.steps.length, description: w.manifest.description ?? null })), null, 2));
      if (all.length === 0) return ctx.out("no workflows registered; try 'swarm workflow register --all'");
      ctx.out(table(['NAME', 'VERSION', 'ENABLED', 'STEPS', 'TRIGGER', 'DESCRIPTION'], all.map((w) => [w.name, w.version, w.enabled ? 'yes' : pc.yellow('no'), w.manifest.steps.length, w.manifest.trigger.type, w.manifest.description])));
    });

  wf.command('info <name[@version]>')
    .description('show a workflow: steps, dependencies, handlers')
    .option('--json', 'print JSON')
    .action(async (ref: string, o: { json?: boolean }) => {
      const w = await (await ctx.swarm()).getWorkflow(ref);
      if (o.json) return ctx.out(JSON.stringify({ id: w.id, path: w.path, enabled: w.enabled, ...w.manifest }, null, 2));
      const m = w.manifest;
      ctx.out(`${pc.bold(w.id)}${m.description ? `  ${m.description}` : ''}${w.enabled ? '' : pc.yellow('  (disabled)')}`);
      ctx.out(`path:     ${w.path}`);
      ctx.out(`trigger:  ${m.trigger.type}`);
      if (Object.keys(m.variables).length) ctx.out(`variables: ${JSON.stringify(m.variables)}`);
      ctx.out(`\nsteps (in order):\n${table(['ID', 'AGENT', 'AFTER', 'CONDITION', 'RETRY', 'ON_ERROR'], m.steps.map((s) => [s.id, s.agent, s.deps.join(', '), s.condition ?? '', s.retry.max_attempts > 1 ? `${s.retry.max_attempts}x` : '', s.on_error]))}`);
      // yaml loads only here: the other agent and workflow commands print no YAML.
      const { stringify } = await import('yaml');
      for (const k of ['on_success', 'on_error'] as const) if (m[k].length) ctx.out(`\n${k}:\n${stringify(m[k]).trimEnd()}`);
    });

  wf.command('register [path]')
    .description('register the workflow at <path> (a directory with workflow.yaml, or the file)')
    .option('--all [dir]', 'register every workflow directly under dir (default: the workflows directory)')
    .option('--force', 'replace a registered version whose content changed')
    .action(async (path: string | undefined, o: { all?: string | boolean; force?: boolean }) => {
      const swarm = await ctx.swarm();
      if (o.all !== undefined) {
        const dir = typeof o.all === 'string' ? o.all : (path ?? swarm.config.workflowsDir);
        return reportMany(ctx, await swarm.registerWorkflows(dir, { force: o.force ?? false }), 'workflow');
      }
      if (!path) throw new UserError('ARGUMENT_MISSING', 'give the path of a workflow, or --all');
      const r = await swarm.registerWorkflow(path, { force: o.force ?? false });
      ctx.out(`${pc.green('✔')} ${r.record.id} ${pc.dim(r.result)}`);
      for (const w of r.warnings ?? []) ctx.err(pc.yellow(`warning: ${w}`));
    });

  for (const [cmd, enabled] of [['enable', true], ['disable', false]] as const) {
    wf.command(`${cmd} <name>`)
      .description(`${cmd} a workflow (all its versions)${enabled ? '' : ': new runs are refused'}`)
      .action(async (name: string) => {
        await (await ctx.swarm()).setWorkflowEnabled(name, enabled);
        ctx.out(`${name} ${enabled ? 'enabled' : 'disabled'}`);
      });
  }

  wf.command('runs <name>')
    .description('show the run history of a workflow')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { limit: string; json?: boolean }) => {
      const swarm = await ctx.swarm();
      await swarm.getWorkflow(name);
      const runs = await swarm.listRuns({ workflow: name, limit: parsePositiveInt(o.limit, '--limit') });
      if (o.json) return ctx.out(JSON.stringify(runs.map(runListJson), null, 2));
      if (runs.length === 0) return ctx.out(`no runs of ${name} yet`);
      ctx.out(table(['RUN', 'VERSION', 'STATUS', 'CREATED', 'DURATION', 'ERROR'], runs.map((r) => [shortRunId(r.id), r.workflow_version, colorStatus(r.status), formatTime(r.created_at), formatMs(r.completed_at && r.started_at ? r.completed_at - r.started_at : null), r.error ?? ''])));
    });

  wf.command('create <name>')
    .description('create a workflow from a template')
    .option('-t, --template <template>', `one of ${WORKFLOW_TEMPLATES.join(', ')}`, 'linear')
    .option('--dir <dir>', 'where to create it (default: the workflows directory)')
    .action(async (name: string, o: { template: string; dir?: string }) => {
      const swarm = await ctx.swarm();
      const path = createWorkflowPackage(name, o.template, o.dir ?? swarm.config.workflowsDir);
      ctx.out(`created ${path}/workflow.yaml\nnext: 'swarm workflow register ${path}', then 'swarm run ${name}'`);
    });
}
