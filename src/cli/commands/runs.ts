import type { Command } from 'commander';
import pc from 'picocolors';
import { ExitCode, StoreFaultError, UserError } from '../../core/errors.js';
import { RUN_STATUSES, type RunStatus } from '../../core/states.js';
import { loadPlan } from '../../engine/plan.js';
import { stepAgentLabel } from '../../views/run.js';
import { resolveConfig } from '../../config/config.js';
import { examplesDir, initProject } from '../../scaffold.js';
import { runExitCode, shortRunId, Swarm } from '../../swarm.js';
import { LOG_FORMAT_HELP, runFinishedLogger, setUpLogging, stepFinishedLogger } from '../logging.js';
import { parseInput, parsePort, parsePositiveInt, parseSeconds, parseSince, swarmCommand, type CliContext } from '../context.js';
import { colorStatus, finalOutputs, formatMs, formatTime, LlmLines, loadLiveView, ProgressReporter, runJson, runListJson, table, clip, truncateView, VIEW_OUTPUTS_CHARS, VIEW_VALUE_CHARS, usd } from '../render.js';
import type { LoopEvent } from '../../agents/loop.js';
import { waitingReason } from '../../engine/concurrency-gate.js';
import { budgetLines } from '../../guardrails/budget-report.js';
import type { RunRecord } from '../../store/types.js';
import { parseSharedInputsArg, sharedInputsJson } from '../../executors/http/shared-inputs.js';
import { readFileSync } from 'node:fs';
import { lineageJson, lineageLines } from './fork.js';
import { consensusResult, consensusRunLines } from '../../consensus/run-result.js';

/** The longest `--idempotency-key`, in characters (as the API's `Idempotency-Key` header). */
const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/** A run's keys for a table cell: its idempotency key and its concurrency key (with its state when not active). */
function keysCell(r: RunRecord): string {
  const parts: string[] = [];
  if (r.idempotency_key) parts.push(clip(r.idempotency_key, 30));
  if (r.concurrency) parts.push(`${r.concurrency.state === 'queued' ? 'queued on' : 'key'} ${clip(r.concurrency.key, 30)}`);
  return parts.join(', ');
}

interface AttachOptions {
  json?: boolean;
  /** Show only events after this one (a retried or resumed run's history is not replayed). */
  afterSeq?: number;
  /** Execute the run in this process (no general worker is running). */
  execute: boolean;
}

/** The first line of an error, shortened for a table cell (`runs show` has the whole of it). */
function firstLine(text: string | null, max = 80): string {
  return clip((text ?? '').split('\n')[0] ?? '', max);
}

/**
 * Follow a run to its end, showing progress, then print its outputs. When `execute` is set, a worker
 * limited to this run executes it here; Ctrl-C stops it cleanly (in-flight steps are released and
 * the run can be resumed).
 */
export async function attach(ctx: CliContext, swarm: Swarm, runId: string, o: AttachOptions): Promise<number> {
  const planJson = await swarm.store.getPlanJson(runId);
  const plan = planJson ? loadPlan(planJson) : undefined;
  const steps = plan?.plan.workflow.steps ?? [];
  const sinks = steps.filter((s) => (plan?.successors.get(s.id) ?? []).length === 0).map((s) => s.id);
  const short = shortRunId(runId);
  const title = `${plan?.plan.workflow.name ?? 'run'}@${plan?.plan.workflow.version ?? ''}  run ${short}`;
  // Show where the run is now and follow it from here (a retried or resumed run has a history).
  const now = await swarm.getRun(runId);
  const waiting = waitingReason(now.run.concurrency);
  if (waiting && !o.json) {
    // The worker here runs only this run: without a worker elsewhere, nothing runs the one holding the slot.
    const alone = o.execute && !(await swarm.hasLiveWorker());
    ctx.err(pc.yellow(`run ${short} is ${waiting}; it starts when a run of that key finishes${alone ? `, and no worker is running to finish one: start one with '${swarmCommand(ctx)} worker', or resume the run that holds the slot` : ''}`));
  }
  const current = new Map(now.steps.map((s) => [s.step_id, s]));
  const view = steps.map((s) => {
    const c = current.get(s.id);
    return { id: s.id, name: s.name, status: c?.status, attempt: c?.attempt, duration: c?.duration_ms ?? null };
  });
  if (!o.json && ctx.tty) await loadLiveView();
  const reporter = o.json ? undefined : new ProgressReporter(title, view, ctx.tty, ctx.err);
  const stopWatching = new AbortController();
  const note = (m: string): void => (reporter ? reporter.log(m) : ctx.err(m));
  // LLM steps run here: their text, tool calls and handoffs as they happen.
  const lines = new LlmLines(note);
  if (!o.json) llmSink = (r, s, e) => r === runId && lines.on(s, e);
  let interrupted = false;
  let worker = o.execute ? swarm.worker({ runIds: [runId] }) : undefined;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    if (worker) {
      note(pc.yellow('interrupted: stopping (in-flight steps are released, nothing is lost)…'));
      void worker.stop(0);
    } else {
      note(pc.yellow(`stopped following run ${short}; a worker goes on running it ('swarm runs show ${short}')`));
    }
    stopWatching.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Following a run that another process's worker executes: if every worker goes away, take over.
  const takeOver = worker
    ? undefined
    : setInterval(() => {
        void swarm.hasLiveWorker().then(async (live) => {
          if (live || worker || interrupted) return;
          note(pc.yellow('no worker is running any more: continuing the run here'));
          await swarm.prepareResume(runId).catch(() => undefined);
          worker = swarm.worker({ runIds: [runId] });
        });
      }, 1000);
  // The code of the step failure that failed the run: a policy refusal exits 6, not 4.
  let failedWith: unknown;
  try {
    const watching = (async () => {
      for await (const e of swarm.watch(runId, { signal: stopWatching.signal, afterSeq: o.afterSeq ?? 0, stopWhenWaiting: true })) {
        if (e.type === 'STEP_FAILED' && !e.data.continued) failedWith = e.data.code;
        reporter?.onEvent(e);
      }
    })();
    // Awaited below; if the worker fails first, nobody awaits it (it stops when the store closes).
    watching.catch(() => undefined);
    if (worker) await worker.start();
    await watching;
    if (worker) await worker.start();
  } catch (e) {
    // The worker stopped on a full disk or a permission fault: stop following, say how to continue.
    stopWatching.abort();
    throw e instanceof StoreFaultError ? e.forRun(runId) : e;
  } finally {
    llmSink = undefined;
    if (takeOver) clearInterval(takeOver);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    reporter?.finish();
  }
  const details = await swarm.getRun(runId);
  if (interrupted && details.run.status !== 'completed' && details.run.status !== 'failed' && details.run.status !== 'cancelled') {
    if (worker) ctx.err(`run ${short} is ${details.run.status}; continue it with 'swarm runs resume ${short}'`);
    return 130;
  }
  if (o.json) {
    // As `runs show --json`: the llm steps' token and cost totals beside the budget.
    const usage = await swarm.runUsage(runId);
    ctx.out(JSON.stringify({ ...runJson(details), ...(usage.sessions ? { usage } : {}) }, null, 2));
  } else {
    const { run } = details;
    const took = run.completed_at && run.started_at ? ` in ${formatMs(run.completed_at - run.started_at)}` : '';
    ctx.err(`run ${short} ${colorStatus(run.status)}${took}`);
    if (run.status === 'waiting') {
      const pending = await swarm.listApprovals({ runId: run.id });
      for (const a of pending) ctx.err(`  step '${a.step_id}' waits for approval of ${a.tool} ${a.arguments}`);
      if (pending.length) ctx.err(`approve with '${swarmCommand(ctx)} approve ${short}' or reject with '${swarmCommand(ctx)} reject ${short} --reason …'; the run continues in any worker`);
      // Wait steps: what each waits for (its reason), and how to send it; a worker ('swarm worker') carries on.
      for (const s of details.steps) if (s.status === 'waiting' && s.agent_id === 'kind:wait') ctx.err(`  step '${s.step_id}' is ${s.error ?? 'waiting'}`);
      if (details.steps.some((s) => s.status === 'waiting' && s.agent_id === 'kind:wait')) ctx.err(`send it with '${swarmCommand(ctx)} events emit <name> <json>' or '${swarmCommand(ctx)} runs signal ${short} <name> <json>'; a running 'swarm worker' continues the run`);
    }
    const seeAll = `'${swarmCommand(ctx)} runs show ${run.id} --json'`;
    if (run.status === 'completed') ctx.out(truncateView(JSON.stringify(finalOutputs(details, sinks), null, 2), VIEW_OUTPUTS_CHARS, seeAll));
    else if (run.error) ctx.err(`${pc.red('error')}${run.error_step ? ` in step '${run.error_step}'` : ''}: ${truncateView(run.error, VIEW_VALUE_CHARS, seeAll)}`);
  }
  if (details.run.status === 'failed' && failedWith === 'NETWORK_REFUSED') return ExitCode.POLICY_VIOLATION;
  return runExitCode(details.run.status);
}

/** Where the LLM events of the run being followed go (set by `attach`). */
let llmSink: ((runId: string, stepId: string, e: LoopEvent) => void) | undefined;

export function registerRunCommands(program: Command, ctx: CliContext): void {
  ctx.llmEvents = (r, s, e) => llmSink?.(r, s, e);
  program
    .command('run <workflow> [input]')
    .description("start a run of <workflow[@version]> with input JSON ('<json>', @file.json, or - for stdin)")
    .option('-d, --detach', 'print the run id and return at once')
    .option('--json', 'print one JSON document with the run, its steps, outputs and errors')
    .option('--idempotency-key <key>', 'one run per key: a repeat returns (and follows) the run the key started first')
    .option('--shared-inputs <json>', "run-level context merged into each http-runtime step's inputs ('<json>' or @file.json; docs/executors.md#shared_inputs)")
    .action(async (ref: string, input: string | undefined, o: { detach?: boolean; json?: boolean; idempotencyKey?: string; sharedInputs?: string }) => {
      const key = o.idempotencyKey;
      if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_CHARS)) {
        throw new UserError('ARGUMENT_INVALID', `--idempotency-key must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters (it has ${key.length})`, { field: '--idempotency-key' });
      }
      // The input is checked against the configured limit before the store is opened.
      const data = parseInput(input, resolveConfig({ cwd: ctx.cwd, env: ctx.env }).limits.run_input_bytes);
      const shared = o.sharedInputs === undefined ? undefined : parseSharedInputsArg(o.sharedInputs, (f) => readFileSync(f, 'utf8'));
      if (shared !== undefined) sharedInputsJson(shared);
      const swarm = await ctx.swarm();
      const changed = swarm.sourceChanged(await swarm.getWorkflow(ref));
      if (changed) ctx.err(pc.yellow(`note: ${changed}`));
      const { runId, created } = await swarm.createRun(ref, data, { ...(key !== undefined ? { idempotencyKey: key } : {}), ...(shared !== undefined ? { sharedInputs: shared } : {}) });
      // A repeated key starts nothing: say so, and follow (or print) the run it started first.
      const existing = created ? undefined : (await swarm.getRun(runId)).run;
      if (existing) ctx.err(pc.yellow(`run ${shortRunId(runId)} exists for idempotency key '${key}' (${existing.status}); nothing new was started`));
      const live = await swarm.hasLiveWorker();
      if (o.detach) {
        ctx.out(o.json ? JSON.stringify({ run_id: runId, status: existing?.status ?? 'queued', created }, null, 2) : runId);
        if (!live) ctx.err(pc.dim("no worker is running: start one with 'swarm worker', or 'swarm runs resume' to run it here"));
        return;
      }
      // Run here: say so when process agents run unisolated (a worker elsewhere says it in its own output).
      const iso = live ? undefined : swarm.isolation();
      if (iso && !iso.isolated) ctx.err(pc.yellow(`note: ${iso.warnings[0] ?? 'process agents are not isolated'}`));
      ctx.exitCode = await attach(ctx, swarm, runId, { json: o.json ?? false, execute: !live });
    });

  const runs = program.command('runs').description('inspect and control runs');

  runs
    .command('list')
    .description('list runs, newest first')
    .option('-w, --workflow <name>', 'only runs of this workflow')
    .option('-s, --status <status>', `only runs in this status (${RUN_STATUSES.join(', ')})`)
    .option('--since <when>', 'only runs created since a date or a duration ago (30m, 2h, 7d)')
    .option('--parent <run>', 'only runs this run started (its sub-workflow runs)')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (o: { workflow?: string; status?: string; since?: string; parent?: string; limit: string; json?: boolean }) => {
      if (o.status && !RUN_STATUSES.includes(o.status as RunStatus)) {
        throw new UserError('ARGUMENT_INVALID', `--status '${o.status}' is not one of ${RUN_STATUSES.join(', ')}`);
      }
      const swarm = await ctx.swarm();
      const list = await swarm.listRuns({
        // listRuns resolves a short id or prefix itself.
        ...(o.parent ? { parent: o.parent } : {}),
        ...(o.workflow ? { workflow: o.workflow } : {}),
        ...(o.status ? { status: o.status as RunStatus } : {}),
        ...(o.since ? { since: parseSince(o.since) } : {}),
        limit: parsePositiveInt(o.limit, '--limit'),
      });
      if (o.json) return ctx.out(JSON.stringify(list.map(runListJson), null, 2));
      if (list.length === 0) return ctx.out('no runs');
      // A KEYS column (idempotency and concurrency keys) only when a listed run has one.
      const keys = list.some((r) => r.idempotency_key || r.concurrency);
      const rows = list.map((r) => [shortRunId(r.id), `${r.workflow_name}@${r.workflow_version}`, colorStatus(r.status), `${r.steps_total - r.steps_remaining}/${r.steps_total}`, formatTime(r.created_at), formatMs(r.completed_at && r.started_at ? r.completed_at - r.started_at : null), ...(keys ? [keysCell(r)] : []), firstLine(r.error)]);
      ctx.out(table(['RUN', 'WORKFLOW', 'STATUS', 'FINISHED', 'CREATED', 'DURATION', ...(keys ? ['KEYS'] : []), 'ERROR'], rows));
    });

  runs
    .command('show <id>')
    .description('show a run and its steps (the short id shown, or any unique prefix or suffix of the id, is enough)')
    .option('--json', 'print JSON (with every step’s outputs)')
    .action(async (id: string, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const d = await swarm.getRun(id);
      const usage = await swarm.runUsage(d.run.id);
      if (o.json) return ctx.out(JSON.stringify({ ...runJson(d), ...(usage.sessions ? { usage } : {}), ...(await lineageJson(swarm, d.run)) }, null, 2));
      const r = d.run;
      ctx.out(`${pc.bold(`run ${r.id}`)}  ${r.workflow_name}@${r.workflow_version}  ${colorStatus(r.status)}`);
      ctx.out(`created ${formatTime(r.created_at)}${r.completed_at ? `, finished ${formatTime(r.completed_at)}` : ''}${r.completed_at && r.started_at ? ` (${formatMs(r.completed_at - r.started_at)})` : ''}`);
      const seeAll = `'${swarmCommand(ctx)} runs show ${r.id} --json'`;
      ctx.out(`trigger (${r.trigger_type}): ${truncateView(JSON.stringify(r.trigger_data), VIEW_VALUE_CHARS, seeAll)}`);
      if (r.idempotency_key) ctx.out(`idempotency key: ${r.idempotency_key}`);
      if (r.concurrency) {
        const c = r.concurrency;
        const where = waitingReason(c) ?? (c.state === 'active' ? `holds a slot (${c.active} of ${c.limit} active)` : `finished (${c.active} of ${c.limit} active now)`);
        ctx.out(`concurrency key: ${c.key} (limit ${c.limit}): ${where}`);
      }
      if (r.error) ctx.out(`${pc.red('error')}${r.error_step ? ` in '${r.error_step}'` : ''}: ${truncateView(r.error, VIEW_VALUE_CHARS, seeAll)}`);
      if (r.parent_run_id && r.parent_step_id) ctx.out(`parent: run ${r.parent_run_id}, step '${r.parent_step_id}'`);
      const children = await swarm.listRuns({ parent: r.id, limit: 100 });
      for (const ch of children.filter((x) => x.parent_step_id).reverse()) ctx.out(`child: run ${ch.id} (${ch.workflow_name}@${ch.workflow_version}, step '${ch.parent_step_id}') ${colorStatus(ch.status)}`);
      for (const line of await lineageLines(swarm, r)) ctx.out(line);
      for (const line of d.budget ? budgetLines(d.budget) : []) ctx.out(line);
      for (const line of consensusRunLines(consensusResult(d.steps), await swarm.store.getRunSharedInputs(r.id), (t) => truncateView(t, VIEW_VALUE_CHARS, seeAll))) ctx.out(line);
      if (usage.sessions) ctx.out(`llm usage: ${usage.input_tokens} tokens in, ${usage.output_tokens} out, ${usd(usage.cost_usd)} (${usage.sessions} session${usage.sessions === 1 ? '' : 's'}: swarm sessions list --run ${r.id})`);
      ctx.out('');
      ctx.out(table(['STEP', 'AGENT', 'STATUS', 'ATTEMPTS', 'DURATION', 'OUTPUTS / ERROR'], d.steps.map((s) => [s.step_id, stepAgentLabel(s), colorStatus(s.status), s.attempt || '', formatMs(s.duration_ms), s.error !== null ? truncateView(s.error, VIEW_VALUE_CHARS, seeAll) : s.outputs === null ? '' : clip(JSON.stringify(s.outputs), 100)])));
    });

  runs
    .command('events <id>')
    .description("print a run's event log")
    .option('--json', 'print JSON lines')
    .action(async (id: string, o: { json?: boolean }) => {
      const events = await (await ctx.swarm()).events(id);
      for (const e of events) {
        if (o.json) ctx.out(JSON.stringify({ seq: e.seq, at: new Date(e.at).toISOString(), type: e.type, step: e.step_id, data: e.data, hash: e.hash }));
        else ctx.out(`${String(e.seq).padStart(4)}  ${formatTime(e.at)}  ${e.type.padEnd(20)} ${(e.step_id ?? '').padEnd(12)} ${truncateView(JSON.stringify(e.data), VIEW_VALUE_CHARS, `'${swarmCommand(ctx)} runs events ${e.run_id} --json'`)}`);
      }
    });

  runs
    .command('logs <id> [step]')
    .description('print the captured stdout/stderr of process steps')
    .action(async (id: string, step: string | undefined) => {
      const logs = await (await ctx.swarm()).logs(id, step);
      if (logs.length === 0) return ctx.out(step ? `no logs for step '${step}'` : 'no logs (only process agents write logs)');
      for (const l of logs) {
        ctx.out(pc.bold(`── ${l.step_id} (attempt ${l.attempt})${l.truncated ? ' [truncated: tail only]' : ''}`));
        if (l.stdout) ctx.out(`${pc.dim('stdout:')}\n${l.stdout.trimEnd()}`);
        if (l.stderr) ctx.out(`${pc.dim('stderr:')}\n${l.stderr.trimEnd()}`);
      }
    });

  runs
    .command('cancel <id>')
    .description('cancel a run: running agent processes are stopped, pending steps cancelled')
    .option('--reason <text>', 'recorded in the run', 'cancelled by user')
    .action(async (id: string, o: { reason: string }) => {
      const swarm = await ctx.swarm();
      const fullId = await swarm.resolveRunId(id);
      const cancelled = await swarm.cancel(fullId, o.reason);
      ctx.out(`run ${fullId} cancelled${cancelled.length ? ` (${cancelled.join(', ')})` : ''}`);
    });

  runs
    .command('signal <id> <name> [data]')
    .description("send a signal to a run: a wait step with 'signal: <name>' takes it (kept until one does); data is a JSON object, @file or - (stdin)")
    .option('--json', 'print the result as JSON')
    .action(async (id: string, name: string, data: string | undefined, o: { json?: boolean }) => {
      const value = parseInput(data, resolveConfig({ cwd: ctx.cwd, env: ctx.env }).limits.run_input_bytes);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new UserError('INPUT_INVALID', `signal data must be a JSON object, like '{"approved": true}' (got ${JSON.stringify(value)})`, { field: 'data' });
      }
      const swarm = await ctx.swarm();
      const out = await swarm.signalRun(id, name, value);
      if (o.json) ctx.out(JSON.stringify(out));
      else ctx.out(`signal ${name} (#${out.seq}) sent to run ${out.run_id}: ${out.delivered_to ? `delivered to step '${out.delivered_to}'` : 'kept until a wait step takes it'}`);
    });

  runs
    .command('retry <id>')
    .description('run the failed or cancelled steps of a run again (completed steps are kept)')
    .option('-d, --detach', 'return at once')
    .option('--json', 'print the final run as JSON')
    .action(async (id: string, o: { detach?: boolean; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const fullId = await swarm.resolveRunId(id);
      const before = (await swarm.getRun(fullId)).run.event_seq;
      const reset = await swarm.retry(fullId);
      ctx.err(`retrying ${reset.join(', ') || 'nothing'} of run ${fullId}`);
      if (o.detach) return;
      ctx.exitCode = await attach(ctx, swarm, fullId, { json: o.json ?? false, execute: !(await swarm.hasLiveWorker()), afterSeq: before });
    });

  runs
    .command('resume [id]')
    .description('continue an interrupted run (or all unfinished runs) in this process')
    .option('--json', 'print the final run as JSON')
    .action(async (id: string | undefined, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      if (id) {
        const [fullId] = await swarm.prepareResume(id);
        const before = (await swarm.getRun(fullId as string)).run.event_seq;
        ctx.exitCode = await attach(ctx, swarm, fullId as string, { json: o.json ?? false, execute: true, afterSeq: before });
        return;
      }
      const results = await swarm.resume(undefined, { onFinished: (runId, status) => ctx.err(`run ${shortRunId(runId)} ${colorStatus(status)}`) });
      if (results.length === 0) return ctx.out('no unfinished runs');
      const waiting = results.filter((r) => r.run.status === 'waiting').length;
      const bad = results.filter((r) => r.run.status !== 'completed' && r.run.status !== 'waiting').length;
      ctx.out(`${results.length} run(s) resumed: ${results.length - bad - waiting} completed${waiting ? `, ${waiting} waiting for approval ('swarm approvals')` : ''}${bad ? `, ${bad} not completed` : ''}`);
      if (bad) ctx.exitCode = ExitCode.EXECUTION_FAILED;
    });

  runs
    .command('verify <id>')
    .description("check a run's keyed event hash chain and checkpoints (exit 3 if they do not verify)")
    .option('--json', 'print JSON')
    .option('--allow-legacy', 'accept an unkeyed (plain SHA-256) chain of a run created before the store was first used with a key')
    .action(async (id: string, o: { json?: boolean; allowLegacy?: boolean }) => {
      const swarm = await ctx.swarm();
      const report = await swarm.verify(id, { allowLegacy: o.allowLegacy === true });
      if (o.json) ctx.out(JSON.stringify(report, null, 2));
      else if (report.ok && report.legacy_events) {
        ctx.out(`${pc.yellow('ok (legacy)')}: ${report.events} events; the first ${report.legacy_events} are in the old unkeyed form, which anyone with write access to the store could have rewritten`);
      } else if (report.ok) ctx.out(`${pc.green('ok')}: ${report.events} events, hash chain and checkpoints verify`);
      else for (const p of report.problems) ctx.err(`${pc.red('✖')} ${p.seq === null ? 'run' : `event ${p.seq}`}: ${p.problem}`);
      if (!report.ok) ctx.exitCode = ExitCode.VERIFICATION_FAILED;
    });
}

export function registerProcessCommands(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run a long-lived worker that executes queued runs (SIGTERM/SIGINT stop it gracefully)')
    .option('-c, --concurrency <n>', 'steps to run at once')
    .option('--grace <seconds>', 'on shutdown, how long in-flight steps may take to finish', '10')
    .option('--log-format <format>', LOG_FORMAT_HELP)
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics (0: any free port)')
    .option('--metrics-host <address>', 'address of the metrics endpoint (it has no authentication)', '127.0.0.1')
    .action(async (o: { concurrency?: string; grace: string; logFormat?: string; metricsPort?: string; metricsHost: string }, cmd: Command) => {
      // A host alone serves nothing: said, rather than a worker that a scraper then cannot find.
      if (o.metricsPort === undefined && cmd.getOptionValueSource('metricsHost') === 'cli') {
        throw new UserError('ARGUMENT_INVALID', `--metrics-host '${o.metricsHost}' needs --metrics-port: metrics are served only on a port you choose`, { option: '--metrics-host' });
      }
      ctx.engineLog = true;
      delete ctx.llmEvents; // no terminal follows a worker's LLM steps: no streaming
      setUpLogging(ctx, o.logFormat);
      const log = ctx.logger;
      const metricsPort = o.metricsPort === undefined ? undefined : parsePort(o.metricsPort, '--metrics-port');
      const swarm = await ctx.swarm({ retryUnreachable: true });
      // Before the worker is made: it takes the metrics when created.
      const metricsServer = metricsPort === undefined ? undefined : await (await import('../../observability/metrics-server.js')).startMetricsServer(await swarm.enableMetrics(), { host: o.metricsHost, port: metricsPort });
      const concurrency = o.concurrency ? parsePositiveInt(o.concurrency, '--concurrency') : swarm.config.workerConcurrency;
      const grace = parseSeconds(o.grace, '--grace') * 1000;
      const worker = swarm.worker({ concurrency, onFinished: runFinishedLogger(ctx), onStepFinished: stepFinishedLogger(ctx) });
      const iso = swarm.isolation();
      log.info(`worker ${worker.id} started: concurrency ${concurrency}, store ${swarm.store.location} (durability ${swarm.config.durability}), sandbox ${iso.sandbox}, memory limit ${iso.memory}`, {
        worker_id: worker.id,
        concurrency,
        store: swarm.store.kind,
        sandbox: iso.sandbox,
        memory_limit: iso.memory,
      });
      for (const w of iso.warnings) log.warn(w);
      if (metricsServer) log.info(`metrics: ${metricsServer.url}`, { metrics_url: metricsServer.url });
      const stop = (sig: string): void => {
        log.info(`${sig}: stopping; in-flight steps have ${o.grace}s to finish, then they are released`, { signal: sig });
        void worker.stop(grace);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      try {
        await worker.start();
      } finally {
        await metricsServer?.close();
      }
      log.info(`worker ${worker.id} stopped after ${worker.completedCount} step(s)`, { worker_id: worker.id, steps: worker.completedCount });
    });

  program
    .command('init [dir]')
    .description('create a new Swarm project (swarm.yaml, agents/, workflows/) that runs at once')
    .action(async (dir: string | undefined) => {
      const target = dir ?? '.';
      const files = initProject(target);
      for (const f of files) ctx.out(`created ${f}`);
      const swarm = await Swarm.open({ cwd: target, env: ctx.env });
      try {
        await swarm.registerAgents();
        await swarm.registerWorkflows();
      } finally {
        await swarm.close();
      }
      ctx.out(`\nregistered the example agents and the 'hello' workflow. Next:\n  ${dir ? `cd ${dir} && ` : ''}${swarmCommand(ctx)} run hello '{"name": "you"}'`);
    });

  program
    .command('demo')
    .description('register the bundled example agents and workflows, then run echo-chain')
    .action(async () => {
      const swarm = await ctx.swarm();
      const ex = examplesDir();
      const agents = await swarm.registerAgents(ex.agents);
      const workflows = await swarm.registerWorkflows(ex.workflows);
      for (const r of [...agents, ...workflows]) {
        if (!('error' in r)) continue;
        // A project made by `swarm init` has an agent of its own called echo@1.0.0: it is kept, not
        // replaced, and the examples use it (it is the same built-in). Any other error stops the demo.
        const code = (r.error as { code?: string }).code;
        if (code === 'AGENT_VERSION_EXISTS' || code === 'WORKFLOW_VERSION_EXISTS') ctx.err(pc.yellow(`warning: ${r.error.message.replace(/; bump its version or use --force$/, '')}: this project's is kept, the example's is not registered`));
        else throw r.error;
      }
      const ok = (rs: ReadonlyArray<object>): number => rs.filter((r) => !('error' in r)).length;
      ctx.err(`registered ${ok(agents)} example agents and ${ok(workflows)} workflows into ${swarm.store.location}`);
      const runId = await swarm.startRun('echo-chain', { message: 'Hello Swarm!' });
      ctx.exitCode = await attach(ctx, swarm, runId, { execute: !(await swarm.hasLiveWorker()) });
      if (ctx.exitCode === 0) {
        const s = swarmCommand(ctx);
        ctx.err(pc.dim(`\nnext: ${s} run fan-out '{"text": "the quick brown fox jumps over the lazy dog"}'   ·   ${s} runs show ${shortRunId(runId)}   ·   ${s} runs verify ${shortRunId(runId)}`));
      }
    });
}
