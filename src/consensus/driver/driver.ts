/**
 * The consensus driver: runs a `kind: consensus` step's task through its lifecycle, each transition
 * a row change and an event in one fenced transaction (see deps.ts):
 *
 *   TASK_CREATED → TASK_CLAIMED(propose) → [KNOWLEDGE_HIT] → CANDIDATE_PROPOSED (+ EVIDENCE_ADDED)
 *   → TASK_CLAIMED(verify) → EVIDENCE_AVAILABLE → VERIFIER_RESULT_SUBMITTED → TASK_CLAIMED(vote)
 *   → VOTE_COMMIT → VOTE_REVEAL → DECISION_COMMITTED → DECISION_FINALIZED
 *   (TASK_RETRY_SCHEDULED, TASK_EXPIRED, TASK_FAILED, TASK_STAGE_STOPPED, TASK_INPUT_REJECTED)
 *
 * The task's rows are the state: a worker that takes the step over after a crash reads them and goes
 * on from where they stop, so nothing recorded is proposed, verified or voted again, and the decision
 * (one row per task) is committed and finalized once.
 *
 * @example
 *   const result = await runConsensusStep(deps, step, spec, resolveCtx, workerId, abort.signal, 'my-workflow');
 *   // { kind: 'completed', outputs: { task_id, status: 'finalized', final_decision, final_answer } }
 */
import { StepError, errorMessage } from '../../core/errors.js';
import { EventType } from '../../core/events.js';
import type { StepSpec } from '../../core/manifest/workflow.js';
import { resolveValue, type ResolveContext } from '../../core/template.js';
import type { ConsensusDecisionRow, ConsensusTaskRow } from '../../store/consensus-types.js';
import type { ClaimedStep, StepResult } from '../../store/types.js';
import { ReasonCode, reasonName } from '../core/reason-codes.js';
import type { Member, TaskContract } from '../core/types.js';
import { CONTRACT_DEFAULTS, inputsHash } from '../core/contract.js';
import { resolveTaskContract } from './contract.js';
import { checkAborted, crashPoint, transition, type ConsensusDeps, type DriverCtx, type StageEnd } from './deps.js';
import { proposerSlots, quorumOf, verifierSlots, voterSlots } from './rules.js';
import { propose } from './propose.js';
import { verify } from './verify.js';
import { vote } from './vote.js';
import type { Context } from '../../observability/tracing.js';

/** Run a consensus step's attempt. Never throws for the task's own problems: they fail the step. */
export async function runConsensusStep(shared: ConsensusDeps, step: ClaimedStep, spec: StepSpec, rctx: ResolveContext, workerId: string, signal: AbortSignal, workflow: string, trace?: Context): Promise<StepResult> {
  const deps = attemptDeps(shared, trace);
  let contract: TaskContract;
  try {
    contract = resolveTaskContract(resolveValue(spec.consensus?.task, rctx, `steps.${step.step_id}.task`), step.step_id);
  } catch (e) {
    const err = e instanceof StepError ? e : new StepError('TASK_CONTRACT_INVALID', errorMessage(e), false);
    return { kind: 'failed', retryable: false, error: { code: err.code, message: err.message } };
  }
  const ctx: DriverCtx = { step, workerId, workflow, taskId: contract.task_id ?? `${step.run_id}/${step.step_id}`, signal, ...(trace ? { trace } : {}) };
  try {
    let task = await ensureTask(deps, ctx, contract);
    // Where the last stage left the task (its row and clock): not read again.
    let end: StageEnd | undefined;
    for (let guard = 0; guard < 10_000; guard++) {
      checkAborted(signal);
      const done = outcome(deps, task, end?.decision);
      if (done) return await done;
      const now = end ? end.now : await deps.store.now();
      end = undefined;
      if (now >= task.expires_at && task.status !== 'committed') await expire(deps, ctx, task);
      else if (task.status === 'created' || task.status === 'proposing') end = await propose(deps, ctx, task);
      else if (task.status === 'verifying') end = await verify(deps, ctx, task);
      else if (task.status === 'voting') end = await vote(deps, ctx, task);
      else if (task.status === 'committed') end = await finalize(deps, ctx, task);
      task = end ? end.task : ((await deps.store.getConsensusTask(ctx.taskId)) ?? task);
    }
    throw new StepError('CONSENSUS_STUCK', `task ${ctx.taskId} made no progress`, true);
  } catch (e) {
    if (e instanceof StepError) return { kind: 'failed', retryable: e.retryable, error: { code: e.code, message: e.message } };
    throw e;
  }
}

/**
 * The deps of one attempt: each executor's record is read once (the members' keys, then every call
 * of the attempt to that executor), not once per call.
 */
function attemptDeps(deps: ConsensusDeps, trace: Context | undefined): ConsensusDeps {
  const executors = new Map<string, ReturnType<ConsensusDeps['executor']>>();
  return {
    ...deps,
    // The agents' spans (an llm member's loop) are children of the step attempt's.
    ...(trace ? { runAgent: (req) => deps.runAgent({ ...req, trace }) } : {}),
    executor: (name) => {
      let e = executors.get(name);
      if (!e) {
        e = deps.executor(name);
        executors.set(name, e);
        // A failed look-up is not kept: the next call asks again.
        e.catch(() => executors.delete(name));
      }
      return e;
    },
  };
}

/** The step's result once the task is final; undefined while it is not. */
function outcome(deps: ConsensusDeps, task: ConsensusTaskRow, decision?: ConsensusDecisionRow): Promise<StepResult> | undefined {
  if (task.status === 'finalized') {
    return (async () => {
      const d = decision ?? (await deps.store.getConsensusDecision(task.task_id));
      if (!d) throw new StepError('CONSENSUS_DECISION_MISSING', `task ${task.task_id} is finalized without a decision row`, true);
      return {
        kind: 'completed',
        outputs: { task_id: task.task_id, status: 'finalized', final_decision: { candidate_hash: d.candidate_hash, round: d.round, tally: d.tally, quorum: d.quorum, proof: d.proof }, final_answer: d.output },
      } satisfies StepResult;
    })();
  }
  if (task.status === 'expired' || task.status === 'failed') {
    const code = task.status === 'expired' ? 'CONSENSUS_TASK_EXPIRED' : 'CONSENSUS_TASK_FAILED';
    const name = task.reason_code !== null ? reasonName(task.reason_code) : task.status.toUpperCase();
    return Promise.resolve({ kind: 'failed', retryable: false, error: { code, message: `consensus task ${task.task_id} ${task.status} (${name}, reason code ${task.reason_code ?? '-'}): ${task.reason ?? name}` } });
  }
  return undefined;
}

/** The task's row: read, or created with its membership fixed (TASK_CREATED). */
async function ensureTask(deps: ConsensusDeps, ctx: DriverCtx, contract: TaskContract): Promise<ConsensusTaskRow> {
  const have = await deps.store.getConsensusTask(ctx.taskId);
  if (have) return owned(have, ctx);
  const members = await membership(deps, contract);
  return transition(deps, ctx, async (w) => {
    const again = await w.c.getTask(ctx.taskId);
    if (again) return owned(again, ctx);
    const now = w.tx.now;
    const row: ConsensusTaskRow = {
      task_id: ctx.taskId,
      run_id: ctx.step.run_id,
      step_id: ctx.step.step_id,
      task_type: contract.task_type,
      contract: { ...contract, task_id: ctx.taskId },
      members,
      status: 'created',
      stage: 'propose',
      round: 1,
      explore_round: 0,
      round_started_at: null,
      reason_code: null,
      reason: null,
      created_at: now,
      expires_at: now + (contract.expiry_ms ?? CONTRACT_DEFAULTS.expiry_ms),
      updated_at: now,
    };
    await w.c.queueTask(row);
    // The whole contract (defaults filled in) and the membership: with the log alone anyone can check every signature and the decision.
    await w.emit(EventType.TASK_CREATED, { task_id: ctx.taskId, task_type: contract.task_type, contract: row.contract, members, inputs_hash: inputsHash(contract.inputs), quorum: quorumOf(contract), policy: contract.verification.policy, created_at: now, expires_at: row.expires_at });
    return row;
  });
}

function owned(task: ConsensusTaskRow, ctx: DriverCtx): ConsensusTaskRow {
  if (task.run_id !== ctx.step.run_id || task.step_id !== ctx.step.step_id) {
    throw new StepError('CONSENSUS_TASK_TAKEN', `task id ${task.task_id} belongs to run ${task.run_id} step ${task.step_id}; give the contract another task_id`, false);
  }
  return task;
}

/** Every member with its public key: executors' pinned keys, kernel keys for agents and kernel voters, external voters' own. */
async function membership(deps: ConsensusDeps, contract: TaskContract): Promise<Member[]> {
  const executorKey = async (name: string): Promise<string> => {
    const e = await deps.executor(name);
    return e.public_key ?? (await e.client.capabilities().then((c) => c.public_key ?? '', () => ''));
  };
  // Looked up at once, listed in the contract's order.
  return Promise.all([
    ...proposerSlots(contract).map(async (p): Promise<Member> => ({ role: 'proposer', id: p.id, public_key: p.executor ? await executorKey(p.executor) : (await deps.kernelKey(`consensus:${p.id}`)).publicKey })),
    ...verifierSlots(contract).map(async (v): Promise<Member> => ({ role: 'verifier', id: v.id, public_key: v.executor ? await executorKey(v.executor) : (await deps.kernelKey(`consensus:${v.id}`)).publicKey })),
    ...voterSlots(contract).map(async (v): Promise<Member> => ({ role: 'voter', id: v.id, public_key: v.external ? (v.public_key ?? '') : (await deps.kernelKey(`consensus:${v.id}`)).publicKey })),
  ]);
}

/** TASK_EXPIRED: the task passed its expiry undecided. */
async function expire(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow): Promise<void> {
  await transition(deps, ctx, async (w) => {
    const t = await w.c.getTask(task.task_id);
    if (!t || t.status === 'committed' || t.status === 'finalized' || t.status === 'expired' || t.status === 'failed') return;
    await w.c.updateTask(task.task_id, { status: 'expired', reason_code: ReasonCode.TASK_EXPIRED, reason: `expired at ${new Date(t.expires_at).toISOString()} in stage ${t.stage}` });
    await w.emit(EventType.TASK_EXPIRED, { task_id: task.task_id, stage: t.stage, round: t.round, reason_code: ReasonCode.TASK_EXPIRED });
  });
}

/** TASK_FAILED with a reason (the step then fails, not retried). */
export async function failTask(deps: ConsensusDeps, ctx: DriverCtx, taskId: string, code: number, reason: string): Promise<void> {
  await transition(deps, ctx, async (w) => {
    const t = await w.c.getTask(taskId);
    if (!t || ['committed', 'finalized', 'expired', 'failed'].includes(t.status)) return;
    await w.c.updateTask(taskId, { status: 'failed', reason_code: code, reason });
    await w.emit(EventType.TASK_FAILED, { task_id: taskId, stage: t.stage, reason_code: code, reason: reasonName(code), detail: reason });
  });
}

/** DECISION_FINALIZED, once: the decision row's finalized_at is set by one transaction only. */
async function finalize(deps: ConsensusDeps, ctx: DriverCtx, task: ConsensusTaskRow): Promise<StageEnd | undefined> {
  checkAborted(ctx.signal);
  const end = await transition(deps, ctx, async (w): Promise<StageEnd | undefined> => {
    // Read under the run's lock (with BEGIN): finalized here once.
    const d = await w.c.getDecision(task.task_id);
    if (!d) throw new StepError('CONSENSUS_DECISION_MISSING', `task ${task.task_id} is committed without a decision row`, true);
    if (d.finalized_at === null) {
      await w.c.queueFinalize(task.task_id, w.tx.now);
      await w.emit(EventType.DECISION_FINALIZED, { task_id: task.task_id, round: d.round, candidate_hash: d.candidate_hash, tally: d.tally, quorum: d.quorum, finalized_at: w.tx.now });
    }
    await w.c.updateTask(task.task_id, { status: 'finalized', stage: 'finalize' });
    const t = await w.c.getTask(task.task_id);
    const decision = await w.c.getDecision(task.task_id);
    return t && decision ? { task: t, now: w.tx.now, decision } : undefined;
  }, { decision: true });
  if (deps.knowledge) {
    try {
      await deps.knowledge.record(task.task_id);
    } catch (e) {
      deps.log?.(`consensus task ${task.task_id}: the knowledge store did not take the decision: ${errorMessage(e)}`);
    }
  }
  return end;
}

export { crashPoint };
