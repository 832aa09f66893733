/**
 * Fork a finished run at a step: a new run of the parent's plan (the same workflow version and agent
 * versions) whose steps that `<step>` does not depend on, and that the parent completed, are copied
 * as completed (outputs, attempts, times), while `<step>` and everything downstream of it run again.
 * The new run's rows, RUN_CREATED, RUN_FORKED and one STEP_COPIED per copied step commit in ONE
 * transaction (the ledger's invariant: a state change and its event commit together), so a crash
 * leaves either no fork or a fork whose copies are all there; workers then run the rest as any run.
 *
 * @example
 *   const f = await forkRun(deps, parentId, { at: 'summarize', replaceOutputs: { fetch: { text: 'hi' } } });
 *   // f.copied: ['fetch'], f.rerun: ['summarize', 'publish']; the run f.run_id is queued
 *
 * Before anything is written the parent is checked as an export checks it (its keyed chain against
 * its rows: a tampered output is refused, exit 3), and its bundle's state is recorded in RUN_FORKED
 * (`parent_bundle_sha256`, `parent_bundle_head`): the fork's bundle names the parent as it was when
 * forked, however the parent changes later (a retry).
 */
import { UserError } from '../core/errors.js';
import { digestJson, EventType } from '../core/events.js';
import { declaredFields, validateAgainst } from '../core/io-schema.js';
import { TERMINAL_RUN } from '../core/states.js';
import type { ForkParentState } from '../bundles/export.js';
import type { Ledger } from '../engine/ledger.js';
import { loadPlan } from '../engine/plan.js';
import { TxScope } from '../engine/tx-scope.js';
import type { Redactor } from '../secrets/redactor.js';
import type { Store } from '../store/store.js';
import type { JournalCopy } from '../store/fork-types.js';
import type { RunPlan, RunRecord, StepRecord, WorkflowRecord } from '../store/types.js';
import { forkPlan } from './fork-plan.js';
import { turnJournal } from './fork-turn.js';

export interface ForkOptions {
  /** The step to run again (with everything downstream of it). */
  at: string;
  /** New trigger data for the fork (default: the parent's); checked against the workflow's `inputs`. */
  input?: Record<string, unknown>;
  /** Outputs to use instead of the parent's for copied steps (checked against each agent's `outputs`). */
  replaceOutputs?: Record<string, unknown>;
  /** An LLM step only: resume its conversation at this turn (1-based), reusing the earlier turns. */
  turn?: number;
  /** How refusals name the options: the CLI's flags by default; the HTTP API passes its body's fields. */
  names?: ForkArgumentNames;
}

/** The names refusals give the fork's options (`--replace-output a`, or `replace_outputs.a` for the API). */
export interface ForkArgumentNames {
  input: string;
  replaceOutput: (step: string) => string;
  turn: string;
}

/** The command line's flags (`swarm runs fork`): the default. */
const FORK_CLI_NAMES: ForkArgumentNames = { input: '--input', replaceOutput: (step) => `--replace-output ${step}`, turn: '--turn' };

export interface ForkResult {
  run_id: string;
  parent_run_id: string;
  at: string;
  turn: number | null;
  copied: string[];
  rerun: string[];
  /** Steps neither copied nor downstream of `at` (not completed in the parent): they run as in a fresh run. */
  fresh: string[];
  replaced: string[];
}

export interface ForkDeps {
  store: Store;
  ledger: Ledger;
  /** The event chain's key (the same the ledger signs with). */
  chainKey: Buffer;
  maxEventBytes: number;
  redactor?: Redactor;
  /**
   * Check the parent as an export does and give its bundle's state (src/bundles/export.ts
   * forkParentState): throws a VerificationError (exit 3) when its rows do not match its chain.
   */
  parentState: (parent: RunRecord) => Promise<ForkParentState>;
}

/** Steps the parent finished: the only runs a fork may start from. */
const FORKABLE = [...TERMINAL_RUN].join(', ');

/**
 * Create the fork (see the module comment). Refuses with exit 2: RUN_NOT_FINISHED (the parent is not
 * completed, failed or cancelled), UNKNOWN_STEP (with the run's steps), REPLACE_OUTPUT_NOT_COPIED,
 * OUTPUT_INVALID, INPUT_INVALID, TURN_NOT_LLM, TURN_OUT_OF_RANGE, TURN_NOT_RECORDED; RUN_CHANGED when
 * the parent changed (a retry) between the checks and the fork's transaction. With exit 3
 * (VERIFICATION_FAILED) when the parent's stored rows do not match its event chain. Nothing is
 * written unless the fork is created.
 */
export async function forkRun(deps: ForkDeps, parentId: string, o: ForkOptions): Promise<ForkResult> {
  const { store } = deps;
  const parent = await store.getRun(parentId);
  if (!parent) throw new UserError('RUN_NOT_FOUND', `run '${parentId}' not found`, { runId: parentId });
  if (!TERMINAL_RUN.has(parent.status)) {
    // What to do depends on what it is doing (one clause of advice: the API drops it, src/server/http-advice.ts).
    const advice =
      parent.status === 'waiting'
        ? `give it what it waits for ('swarm runs show ${parent.id}' names the approval or signal) or cancel it ('swarm runs cancel ${parent.id}')`
        : `let it finish ('swarm runs resume ${parent.id}' runs it to its end here) or cancel it ('swarm runs cancel ${parent.id}')`;
    throw new UserError('RUN_NOT_FINISHED', `run ${parent.id} is ${parent.status}: only a finished run (${FORKABLE}) can be forked; ${advice}`, {
      runId: parent.id,
      runStatus: parent.status,
    });
  }
  const names = o.names ?? FORK_CLI_NAMES;
  const planJson = await store.getPlanJson(parent.id);
  if (!planJson) throw new UserError('PLAN_NOT_FOUND', `the plan of run ${parent.id} is missing from the store`, { runId: parent.id });
  const loaded = loadPlan(planJson);
  const plan = loaded.plan;
  const parentSteps = new Map<string, StepRecord>();
  for (const s of await store.getSteps(parent.id)) if (loaded.steps.has(s.step_id)) parentSteps.set(s.step_id, s);
  const sets = forkPlan(plan.workflow.steps, o.at, new Map([...parentSteps].map(([id, s]) => [id, s.status])));

  const input = o.input ?? (parent.trigger_data as Record<string, unknown>);
  if (o.input !== undefined) checkInput(plan, o.input, names);
  const replaced = checkReplacements(plan, sets.copied, o.replaceOutputs ?? {}, names);

  let journalFor: ((runId: string) => JournalCopy) | undefined;
  if (o.turn !== undefined) {
    const agentId = plan.step_agents[o.at];
    const runtime = agentId ? plan.agents[agentId]?.manifest.runtime.type : undefined;
    if (runtime !== 'llm') {
      throw new UserError('TURN_NOT_LLM', `${names.turn} applies to an LLM step only (it resumes the step's conversation at a turn); step '${o.at}' runs ${runtime ? `a ${runtime} agent` : 'no agent'}`, { step: o.at });
    }
    const stepInputs = parentSteps.get(o.at)?.inputs as { context_variables?: Record<string, unknown> } | undefined;
    journalFor = await turnJournal(store, parent.id, o.at, o.turn, stepInputs?.context_variables ?? {}, names.turn);
  }

  // What the fork copies must be what the parent's chain vouches for (exit 3 otherwise, nothing
  // written); the parent's bundle state now is what the fork's bundle will name as its parent.
  const parentState = await deps.parentState(parent);

  // The completion event of each copied step: the fork's STEP_COPIED points at it.
  const completedBy = new Map<string, string>();
  for (let after = 0; ; ) {
    const page = await store.getEvents(parent.id, after, 10_000);
    for (const e of page) if (e.type === EventType.STEP_COMPLETED && e.step_id) completedBy.set(e.step_id, e.hash);
    if (page.length < 10_000) break;
    after = page[page.length - 1]?.seq ?? after;
  }

  const wf: WorkflowRecord = (await store.listWorkflows(parent.workflow_name)).find((w) => w.version === parent.workflow_version) ?? {
    // The workflow version was deleted since: the plan keeps everything the run needs.
    id: parent.workflow_id,
    name: parent.workflow_name,
    version: parent.workflow_version,
    manifest: plan.workflow,
  } as WorkflowRecord;
  const triggerData = deps.redactor ? deps.redactor.value(input) : input;
  const copySet = new Set(sets.copied);

  const runId = await store.transaction(async (tx) => {
    // The parent must still be as it was read (a retry could have reopened it meanwhile).
    const now = await tx.getRunState(parent.id);
    if (!now || !TERMINAL_RUN.has(now.status) || now.event_hash !== parent.event_hash) {
      throw new UserError('RUN_CHANGED', `run ${parent.id} changed while it was being forked (now ${now?.status ?? 'gone'}); try again`, { runId: parent.id });
    }
    const { id } = await deps.ledger.createRunOnce(tx, wf, plan, { trigger_type: 'fork', trigger_data: triggerData, parent_run_id: parent.id });
    const scope = new TxScope(tx, deps.maxEventBytes, deps.chainKey);
    const state = await scope.run(id);
    await tx.fork().setLineage(id, o.at, o.turn ?? null);
    scope.emit(state, EventType.RUN_FORKED, null, {
      parent_run_id: parent.id,
      parent_head_hash: parent.event_hash,
      at_step: o.at,
      turn: o.turn ?? null,
      copied_steps: sets.copied,
      replaced_outputs: replaced,
      // The parent's bundle as it is now (src/bundles/export.ts forkParentState): its state digest, and
      // the last line of its events.jsonl, which a later bundle of the parent still holds.
      parent_bundle_sha256: parentState.bundle_sha256,
      parent_bundle_head: parentState.head,
    });
    for (const stepId of sets.copied) {
      const from = parentSteps.get(stepId) as StepRecord;
      const replacing = Object.hasOwn(o.replaceOutputs ?? {}, stepId);
      const parentJson = JSON.stringify(from.outputs ?? {});
      const outputsJson = replacing ? JSON.stringify(deps.redactor ? deps.redactor.value(o.replaceOutputs?.[stepId]) : o.replaceOutputs?.[stepId]) : parentJson;
      const ok = await tx.updateStep({ run_id: id, step_id: stepId }, ['pending', 'ready'], {
        status: 'completed',
        pending_deps: 0,
        attempt: from.attempt,
        retry_count: from.retry_count,
        available_at: null,
        outputs_json: outputsJson,
        inputs_json: from.inputs === undefined ? null : JSON.stringify(from.inputs),
        error: null,
        started_at: from.started_at,
        completed_at: from.completed_at,
        duration_ms: from.duration_ms,
      });
      if (!ok) throw new Error(`fork ${id}: step '${stepId}' was not pending or ready when copied`);
      state.steps_remaining--;
      const succ = loaded.successors.get(stepId) ?? [];
      const ready = succ.length ? (await tx.releaseDeps(id, succ, tx.now)).filter((s) => !copySet.has(s)) : [];
      scope.emit(state, EventType.STEP_COPIED, stepId, {
        from_run_id: parent.id,
        attempt: from.attempt,
        output_sha256: digestJson(outputsJson),
        parent_event_hash: completedBy.get(stepId) ?? null,
        replaced: replacing,
        ...(replacing ? { parent_output_sha256: digestJson(parentJson) } : {}),
        ...(ready.length ? { ready } : {}),
      });
    }
    if (journalFor) await tx.fork().copyJournal(journalFor(id));
    await scope.flush();
    return id;
  });
  return { run_id: runId, parent_run_id: parent.id, at: o.at, turn: o.turn ?? null, copied: sets.copied, rerun: sets.rerun, fresh: sets.fresh, replaced };
}

/** The fork's trigger data against the workflow's `inputs`. */
function checkInput(plan: RunPlan, input: unknown, names: ForkArgumentNames): void {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new UserError('INPUT_INVALID', `${names.input} must be a JSON object, like '{"message": "hi"}'`);
  const schema = plan.workflow.inputs;
  const problems = schema ? validateAgainst(schema, input) : [];
  if (problems.length) throw new UserError('INPUT_INVALID', `input for workflow ${plan.workflow.name}: ${problems.join('; ')}`, { workflow: plan.workflow.name });
}

/** Replacement outputs: only for copied steps, each valid under its agent's `outputs`. Returns their step ids. */
function checkReplacements(plan: RunPlan, copied: readonly string[], replacements: Record<string, unknown>, names: ForkArgumentNames): string[] {
  const ids = Object.keys(replacements);
  for (const stepId of ids) {
    if (!copied.includes(stepId)) {
      throw new UserError(
        'REPLACE_OUTPUT_NOT_COPIED',
        `${names.replaceOutput(stepId)}: step '${stepId}' is not copied by this fork (it runs again, or did not complete in the parent); copied steps: ${copied.join(', ') || 'none'}`,
        { step: stepId, copied: [...copied] },
      );
    }
    const agentId = plan.step_agents[stepId];
    const schema = agentId ? plan.agents[agentId]?.manifest.outputs : undefined;
    const problems = schema ? validateAgainst(schema, replacements[stepId]) : [];
    // Outputs declared as a list are the whole set: a field beside them is one no step could read.
    const declared = schema ? declaredFields(schema) : undefined;
    const value = replacements[stepId];
    if (declared && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const k of Object.keys(value)) if (!declared.includes(k)) problems.push(`'${k}' is not one of its outputs (${declared.join(', ') || 'none'})`);
    }
    if (problems.length) {
      throw new UserError('OUTPUT_INVALID', `${names.replaceOutput(stepId)}: the output does not match agent ${agentId ?? '?'}'s outputs: ${problems.join('; ')}`, { step: stepId, errors: problems });
    }
  }
  return ids;
}
