/**
 * The JSON documents of runs, agents and workflows that both faces of the API show: `swarm … --json`
 * and the HTTP API. One shape, written once, so a script can move from one to the other.
 */
import { toJsonSchema, type IoSchema } from '../core/io-schema.js';
import { successorsOf } from '../core/manifest/workflow.js';
import type { RunEvent } from '../core/events.js';
import type { RunDetails } from '../swarm.js';
import { consensusResult, type ConsensusRunResult } from '../consensus/run-result.js';
import { waitingReason } from '../engine/concurrency-gate.js';
import type { AgentRecord, RunConcurrencyInfo, RunRecord, StepLog, StepRecord, WorkflowRecord } from '../store/types.js';

/** The outputs a user wants to see: those of the steps nothing else depends on. */
export function finalOutputs(details: RunDetails, sinks: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of details.steps) if (sinks.includes(s.step_id) && s.status === 'completed') out[s.step_id] = s.outputs;
  return out;
}

/**
 * A run's times as epoch milliseconds, under the same names in the list and in the run document:
 * the list's `created_at`, `started_at`, `completed_at` and `updated_at` have always been epoch
 * milliseconds and the run document's `created_at` ISO 8601, and neither can change type without
 * breaking the scripts (and the dashboard) that read them; these read the same in both.
 */
export function runTimesMs(run: Pick<RunRecord, 'created_at' | 'started_at' | 'completed_at' | 'updated_at'>): Record<string, number | null> {
  return { created_at_ms: run.created_at, started_at_ms: run.started_at, completed_at_ms: run.completed_at, updated_at_ms: run.updated_at };
}

/**
 * A run in list output (`runs list --json`, `workflow runs --json`, `GET /api/v1/runs`): `run_id`
 * like every other command's JSON; `id` is kept as a deprecated alias for one release. Times are
 * epoch milliseconds (`created_at`, …) and again as `created_at_ms`, … as in the run document.
 */
export function runListJson(run: RunRecord): Record<string, unknown> {
  const { id, concurrency, ...rest } = run;
  return { run_id: id, ...rest, ...runTimesMs(run), ...(concurrency ? { concurrency: concurrencyJson(concurrency) } : {}), id };
}

/**
 * A run's place under its workflow's concurrency key: the key it resolved to, the limit, its state
 * (`active`: holds a slot; `queued`: waits for one; `released`: finished), how many runs hold the
 * key's slots now and, for a queued run, why it waits.
 */
export function concurrencyJson(c: RunConcurrencyInfo): Record<string, unknown> {
  return { key: c.key, limit: c.limit, state: c.state, active: c.active, waiting_reason: waitingReason(c) ?? null };
}

/** What a step runs: `name@version` of its agent, or `kind:sleep` / `kind:wait` for a step Swarm runs itself. */
export function stepAgentLabel(s: Pick<StepRecord, 'agent_id' | 'agent_name' | 'agent_version'>): string {
  return s.agent_id.startsWith('kind:') ? s.agent_id : `${s.agent_name}@${s.agent_version}`;
}

/** A step of a run, as `runs show --json` lists it. */
export function stepJson(s: StepRecord): Record<string, unknown> {
  return {
    id: s.step_id,
    agent: stepAgentLabel(s),
    status: s.status,
    attempts: s.attempt,
    outputs: s.outputs,
    error: s.error,
    duration_ms: s.duration_ms,
    ...(s.map_index !== undefined ? { map_index: s.map_index } : {}),
  };
}

/** The `--json` document for a run (`swarm runs show --json`, `GET /api/v1/runs/{id}`). */
export function runJson(details: RunDetails): Record<string, unknown> {
  const { run, steps } = details;
  return {
    run_id: run.id,
    workflow: run.workflow_name,
    version: run.workflow_version,
    status: run.status,
    trigger: run.trigger_data,
    created_at: new Date(run.created_at).toISOString(),
    ...runTimesMs(run),
    duration_ms: run.completed_at && run.started_at ? run.completed_at - run.started_at : null,
    steps: steps.map(stepJson),
    error: run.error ? { message: run.error, step: run.error_step } : null,
    // Only when set, so the documents of runs without them stay as they were.
    ...(run.metadata ? { metadata: run.metadata } : {}),
    ...(run.idempotency_key ? { idempotency_key: run.idempotency_key } : {}),
    ...(run.concurrency ? { concurrency: concurrencyJson(run.concurrency) } : {}),
    ...(run.parent_run_id ? { parent_run_id: run.parent_run_id } : {}),
    ...(run.parent_step_id ? { parent_step_id: run.parent_step_id } : {}),
    // A fork: the step of parent_run_id it ran again from (and the LLM turn).
    ...(run.fork_step_id ? { fork_step_id: run.fork_step_id, ...(run.fork_turn !== null ? { fork_turn: run.fork_turn } : {}) } : {}),
    ...(details.budget ? { budget: details.budget } : {}),
    // A run with consensus steps: final_decision, final_answer and each step's conclusion.
    ...withConsensusResult(steps),
  };
}

function withConsensusResult(steps: RunDetails['steps']): { result?: ConsensusRunResult } {
  const r = consensusResult(steps);
  return r ? { result: r } : {};
}

/** An event as `swarm runs events --json` prints it (one per line). */
export function eventJson(e: RunEvent): Record<string, unknown> {
  return { seq: e.seq, at: new Date(e.at).toISOString(), type: e.type, step: e.step_id, data: e.data, hash: e.hash };
}

/** A process step's captured output. */
export function logJson(l: StepLog): Record<string, unknown> {
  return { step: l.step_id, attempt: l.attempt, stdout: l.stdout, stderr: l.stderr, truncated: l.truncated, at: new Date(l.at).toISOString() };
}

/** A registered agent (its package path stays on the server). */
export function agentJson(a: AgentRecord): Record<string, unknown> {
  const m = a.manifest;
  return {
    id: a.id,
    name: a.name,
    version: a.version,
    description: m.description ?? null,
    runtime: m.runtime.type,
    capabilities: m.capabilities,
    tags: m.tags,
    inputs: toJsonSchema(m.inputs),
    outputs: toJsonSchema(m.outputs),
    digest: a.digest,
    created_at: new Date(a.created_at).toISOString(),
  };
}

/** A registered workflow in a list. */
export function workflowListJson(w: WorkflowRecord): Record<string, unknown> {
  const m = w.manifest;
  return {
    id: w.id,
    name: w.name,
    version: w.version,
    description: m.description ?? null,
    enabled: w.enabled,
    trigger: m.trigger.type,
    steps: m.steps.length,
    tags: m.tags,
    created_at: new Date(w.created_at).toISOString(),
  };
}

/**
 * A workflow with its DAG and schemas. The output schema is that of a finished run's outputs: one
 * property per final step (a step nothing depends on), each its agent's `outputs`.
 */
export function workflowJson(w: WorkflowRecord, agentOf: (stepId: string) => AgentRecord | undefined): Record<string, unknown> {
  const m = w.manifest;
  const successors = successorsOf(m.steps);
  const sinks = m.steps.filter((s) => (successors.get(s.id) ?? []).length === 0).map((s) => s.id);
  const outputs: Record<string, IoSchema> = {};
  for (const id of sinks) outputs[id] = toJsonSchema(agentOf(id)?.manifest.outputs);
  return {
    ...workflowListJson(w),
    trigger: m.trigger,
    concurrency: m.concurrency ?? null,
    ...(m.concurrency_key ? { concurrency_key: m.concurrency_key } : {}),
    input_schema: m.inputs ?? { type: 'object' },
    output_schema: { type: 'object', properties: outputs },
    dag: {
      nodes: m.steps.map((s) => ({ id: s.id, name: s.name ?? null, agent: s.kind ? `kind:${s.kind}` : s.agent || null, ...(s.workflow ? { workflow: s.workflow } : {}), ...(s.map ? { map: s.map } : {}), ...(s.sleep ? { sleep: s.sleep } : {}), ...(s.wait ? { wait: s.wait } : {}), depends_on: s.deps, ...(s.condition ? { condition: s.condition } : {}) })),
      edges: m.steps.flatMap((s) => s.deps.map((d) => ({ from: d, to: s.id }))),
      final_steps: sinks,
    },
  };
}
