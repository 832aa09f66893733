/**
 * Consensus tasks as Swarm's facade offers them to the CLI and the HTTP API: submit a standalone
 * task (a system run of the built-in workflow `swarm-consensus`, one consensus step), read a task
 * with its candidates, results, votes, decision and cost, list tasks, and take an external voter's
 * commit or reveal.
 *
 * @example
 *   const { task_id } = await swarm.submitTask(contract);
 *   const view = await swarm.getTask(task_id);          // status, candidates, results, votes, decision, cost
 *   await swarm.submitVote({ kind: 'commit', task_id, voter_id: 'ext-1', commitment, signature });
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../core/canonical-json.js';
import { PolicyError, UserError } from '../core/errors.js';
import type { EventType } from '../core/events.js';
import type { ConsensusCandidateRow, ConsensusResultRow, ConsensusTaskQuery, ConsensusTaskRow, ConsensusVoteRow } from '../store/consensus-types.js';
import type { Store } from '../store/store.js';
import type { LedgerTx, RunRecord } from '../store/types.js';
import { parseTaskContract } from './core/contract.js';
import { sha256Hex } from './core/crypto.js';
import type { Decision, TaskContract, TaskCost, TaskStatus } from './core/types.js';
import { agentProblems, contractProblems, TaskContractError, type ContractProblem } from './driver/contract.js';
import type { EventRef } from './driver/deps.js';
import { acceptVote, type VoteInput } from './driver/votes.js';
import { reasonName } from './core/reason-codes.js';

export const CONSENSUS_WORKFLOW = 'swarm-consensus';
export const CONSENSUS_STEP = 'task';
const VERSION = '1.0.0';
/** The run metadata label holding the sha256 of the task's contract (canonical JSON, defaults filled in). */
const CONTRACT_DIGEST_LABEL = 'consensus_contract_sha256';

const WORKFLOW_YAML = `name: ${CONSENSUS_WORKFLOW}
version: ${VERSION}
description: One standalone consensus task (swarm task submit); its step runs the task's lifecycle
author: swarm
trigger:
  type: manual
inputs:
  - name: contract
    type: object
    required: true
steps:
  - id: ${CONSENSUS_STEP}
    kind: consensus
    task: "\${trigger.contract}"
`;

/** A task with everything recorded about it (`swarm task watch`, `GET /api/v1/tasks/{id}`). */
export interface TaskView {
  task: ConsensusTaskRow;
  candidates: ConsensusCandidateRow[];
  results: ConsensusResultRow[];
  votes: ConsensusVoteRow[];
  decision: Decision | null;
  cost: TaskCost;
}

/**
 * A task's outcome (`swarm task decision`): `pending` while its run has not created it yet, `failed`
 * (no reason code; `reason` is the run's error) when its run failed or was cancelled before it did.
 */
export interface TaskDecisionView {
  task_id: string;
  run_id: string | null;
  status: TaskStatus | 'pending';
  decision: Decision | null;
  reason_code: number | null;
  reason: string | null;
}

export interface SubmittedTask {
  task_id: string;
  run_id: string;
  /** False when the task id was submitted before (the same run is returned). */
  created: boolean;
}

/** What the facade needs of Swarm. */
export interface TaskHost {
  store: Store;
  listWorkflows(name: string): Promise<Array<{ version: string }>>;
  registerWorkflow(path: string): Promise<unknown>;
  createRun(ref: string, input: unknown, options: { idempotencyKey?: string; metadata?: Record<string, string>; trace?: { traceparent?: string; tracestate?: string } }): Promise<{ runId: string; created: boolean }>;
  recordEvents(tx: LedgerTx, runId: string, stepId: string | null, events: ReadonlyArray<{ type: EventType; data: Record<string, unknown> }>): Promise<EventRef>;
  notifyCommit(): void;
}

export class ConsensusTasks {
  private ready: Promise<void> | undefined;

  constructor(private readonly host: TaskHost) {}

  /** Register the built-in workflow once (an ordinary registry row: `swarm workflow list` shows it). */
  private ensureWorkflow(): Promise<void> {
    this.ready ??= (async () => {
      if ((await this.host.listWorkflows(CONSENSUS_WORKFLOW)).some((w) => w.version === VERSION)) return;
      const dir = mkdtempSync(join(tmpdir(), 'swarm-consensus-'));
      try {
        writeFileSync(join(dir, 'workflow.yaml'), WORKFLOW_YAML);
        await this.host.registerWorkflow(join(dir, 'workflow.yaml'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /**
   * Submit a standalone task: its contract is checked (its own fields, then the agents and executors
   * it names against the registry), then a run of `swarm-consensus` starts (a worker runs it).
   * Submitting the same `task_id` with the same contract again returns the first run (nothing is
   * checked or written); the same `task_id` with a different contract is refused (TASK_ID_REUSED).
   */
  async submitTask(contract: unknown, options: { trace?: { traceparent?: string; tracestate?: string } } = {}): Promise<SubmittedTask> {
    const own = contractProblems(contract);
    if (own.length) throw new TaskContractError(own);
    const c = contract as TaskContract;
    const taskId = c.task_id ?? `t-${randomUUID()}`;
    const whole = { ...c, task_id: taskId };
    const digest = contractDigest(whole);
    if (c.task_id !== undefined) {
      const prior = await this.submittedRun(taskId);
      if (prior) return this.resubmitted(taskId, prior, whole, digest);
    }
    // The agents it names must be registered and take its inputs (as a workflow step's agent must), its executors registered.
    const problems = [...(await agentProblems(contract, (name) => this.host.store.listAgents(name))), ...(await this.executorProblems(contract))];
    if (problems.length) throw new TaskContractError(problems);
    await this.ensureWorkflow();
    const { runId, created } = await this.host.createRun(CONSENSUS_WORKFLOW, { contract: whole }, { idempotencyKey: `consensus-task:${taskId}`, metadata: { consensus_task_id: taskId, [CONTRACT_DIGEST_LABEL]: digest }, ...(options.trace ? { trace: options.trace } : {}) });
    if (created) return { task_id: taskId, run_id: runId, created };
    // Another submission of this task id won the race: the same answer as if it had come first.
    const prior = await this.host.store.getRun(runId);
    return prior ? this.resubmitted(taskId, prior, whole, digest) : { task_id: taskId, run_id: runId, created };
  }

  /** The run a standalone task id was submitted as, if any. */
  private async submittedRun(taskId: string): Promise<RunRecord | undefined> {
    const id = await this.host.store.transaction(async (tx) => (await tx.runByIdempotencyKey(`consensus-task:${taskId}`))?.id);
    return id ? this.host.store.getRun(id) : undefined;
  }

  /** A task id submitted before: its run when the contract is the same, TASK_ID_REUSED (exit 2, 409) when it is not. */
  private resubmitted(taskId: string, prior: RunRecord, contract: TaskContract, digest: string): SubmittedTask {
    const stored = (prior.trigger_data as { contract?: unknown } | null)?.contract;
    // Runs submitted before the digest was kept: the contract in the run's input, read the same way.
    const before = prior.metadata?.[CONTRACT_DIGEST_LABEL] ?? contractDigest(stored);
    if (before === digest) return { task_id: taskId, run_id: prior.id, created: false };
    const fields = differingFields(stored, contract);
    throw new UserError(
      'TASK_ID_REUSED',
      `task '${taskId}' was submitted before with a different contract (run ${prior.id}${fields.length ? `; it differs in ${fields.join(', ')}` : ''}): a task_id names one contract; submit this one under another task_id, or without one for a generated id`,
      { task_id: taskId, run_id: prior.id, ...(fields.length ? { differs: fields } : {}) },
    );
  }

  /** Every executor the contract names (proposers, verifiers) must be registered (`swarm executors add`). */
  private async executorProblems(raw: unknown): Promise<ContractProblem[]> {
    const uses: Array<{ path: Array<string | number>; name: string }> = [];
    const collect = (list: unknown, at: string[]): void => {
      if (Array.isArray(list)) list.forEach((m, i) => isObject(m) && typeof m['executor'] === 'string' && !m['executor'].includes('${') && uses.push({ path: [...at, i, 'executor'], name: m['executor'] }));
    };
    if (isObject(raw)) {
      collect(raw['proposers'], ['proposers']);
      if (isObject(raw['verification'])) collect(raw['verification']['verifiers'], ['verification', 'verifiers']);
    }
    if (!uses.length) return [];
    const names = (await this.host.store.listExecutors()).map((e) => e.name).sort();
    const have = names.length ? `registered: ${names.join(', ')}` : 'none is registered';
    return uses.filter((u) => !names.includes(u.name)).map((u) => ({ path: u.path, message: `executor '${u.name}' is not registered (${have}); add it with 'swarm executors add ${u.name} <base_url>'` }));
  }

  async getTask(taskId: string): Promise<TaskView | undefined> {
    const s = this.host.store;
    const task = await s.getConsensusTask(taskId);
    if (!task) return undefined;
    const [candidates, results, votes, decision, cost] = await Promise.all([s.getConsensusCandidates(taskId), s.getConsensusResults(taskId), s.getConsensusVotes(taskId), s.getConsensusDecision(taskId), this.taskCost(taskId, task)]);
    return { task, candidates, results, votes, decision: decision ?? null, cost };
  }

  listTasks(query: ConsensusTaskQuery = {}): Promise<ConsensusTaskRow[]> {
    return this.host.store.listConsensusTasks(query);
  }

  /**
   * The decision, or where the task stands; NOT_FOUND for an id nobody submitted. A submitted task
   * whose run failed (or was cancelled) before it created the task is `failed`, with the run's error.
   */
  async taskDecision(taskId: string): Promise<TaskDecisionView> {
    let task = await this.host.store.getConsensusTask(taskId);
    if (!task) {
      const run = await this.submittedRun(taskId);
      if (!run) throw new UserError('TASK_NOT_FOUND', `no consensus task '${taskId}'`, { taskId });
      const ended = run.status === 'failed' || run.status === 'cancelled' || run.status === 'completed';
      // Created meanwhile (and then its run ended): the task's own state.
      task = ended ? await this.host.store.getConsensusTask(taskId) : undefined;
      if (!task) {
        const reason = ended ? notCreatedReason(run) : null;
        return { task_id: taskId, run_id: run.id, status: ended ? 'failed' : 'pending', decision: null, reason_code: null, reason };
      }
    }
    const decision = (await this.host.store.getConsensusDecision(taskId)) ?? null;
    return { task_id: taskId, run_id: task.run_id, status: task.status, decision, reason_code: task.reason_code, reason: task.reason ?? (task.reason_code !== null ? reasonName(task.reason_code) : null) };
  }

  /** TASK_NOT_FOUND for a task that has no row: saying where a submitted one is, or why it never will have one. */
  async taskNotFound(taskId: string): Promise<UserError> {
    const d = await this.taskDecision(taskId).catch(() => undefined);
    if (!d?.run_id) return new UserError('TASK_NOT_FOUND', `no consensus task '${taskId}'`, { taskId });
    const where = d.status === 'pending' ? `it was submitted and appears once its run ${d.run_id} starts` : (d.reason ?? `its run ${d.run_id} ended without it`);
    return new UserError('TASK_NOT_FOUND', `no consensus task '${taskId}' (${where})`, { taskId, run_id: d.run_id, task_status: d.status });
  }

  /** The per-task cost report, by bucket, against the contract's budgets. */
  async taskCost(taskId: string, known?: ConsensusTaskRow): Promise<TaskCost> {
    const task = known ?? (await this.host.store.getConsensusTask(taskId));
    if (!task) throw await this.taskNotFound(taskId);
    const c = await this.host.store.getConsensusCosts(taskId);
    const budget = task.contract.budget ?? {};
    const exhausted = (['explore', 'verify', 'finalize'] as const).filter((b) => budget[b] !== undefined && c[b] >= (budget[b]));
    return { task_id: taskId, explore_usd: c.explore, verify_usd: c.verify, finalize_usd: c.finalize, total_usd: c.explore + c.verify + c.finalize, budget, exhausted };
  }

  /**
   * An external voter's commit or reveal. Accepted: recorded with its event. Refused: the refusal is
   * recorded (TASK_INPUT_REJECTED) and a PolicyError (exit 6) whose code is the reason's name
   * (REVEAL_MISMATCH, REVEAL_LATE, NOT_MEMBER, …) and `context.reason_code` its number.
   */
  async submitVote(v: VoteInput): Promise<{ task_id: string; round: number; event_seq: number }> {
    const first = await this.host.store.getConsensusTask(v.task_id);
    if (!first) throw await this.taskNotFound(v.task_id);
    const out = await this.host.store.transaction(async (tx) => {
      await tx.getRunState(first.run_id);
      const c = tx.consensus();
      const task = await c.getTask(v.task_id);
      if (!task) throw new UserError('TASK_NOT_FOUND', `no consensus task '${v.task_id}'`, { taskId: v.task_id });
      return acceptVote({ tx, c, emit: (type, data) => this.host.recordEvents(tx, task.run_id, task.step_id, [{ type, data }]) }, task, v, tx.now);
    });
    this.host.notifyCommit();
    if (!out.accepted) {
      throw new PolicyError(reasonName(out.reason_code), `vote refused (${reasonName(out.reason_code)}, reason code ${out.reason_code}): ${out.reason}`, { reason_code: out.reason_code, taskId: v.task_id });
    }
    return { task_id: v.task_id, round: out.round, event_seq: out.event_seq };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The parsed contract (defaults filled in) of a raw one, or undefined when it does not parse. */
function parsedContract(raw: unknown): TaskContract | undefined {
  const r = parseTaskContract(raw, 'task');
  return r.ok ? r.contract : undefined;
}

/**
 * What identifies a contract: the sha256 of the canonical JSON of the contract with its defaults
 * filled in (so `quorum: 2` given or left to its default of three voters is the same contract, and
 * key order or `30s` against `30000` ms do not matter). '' for a contract that does not parse.
 */
function contractDigest(raw: unknown): string {
  const c = parsedContract(raw);
  return c ? sha256Hex(canonicalJson(c)) : '';
}

/**
 * The fields in which two contracts differ (defaults filled in), down to the second level
 * (`inputs.a`, `voting.quorum`); [] when either does not parse.
 */
function differingFields(a: unknown, b: unknown): string[] {
  const x = parsedContract(a);
  const y = parsedContract(b);
  return x && y ? differing(x, y, '', 2) : [];
}

function differing(x: unknown, y: unknown, at: string, depth: number): string[] {
  if (canonicalJson(x ?? null) === canonicalJson(y ?? null)) return [];
  if (depth === 0 || !isObject(x) || !isObject(y)) return [at || '(contract)'];
  const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].sort();
  return keys.flatMap((k) => differing(x[k], y[k], at ? `${at}.${k}` : k, depth - 1));
}

/** Why a submitted task has no row although its run ended: the run failed or was cancelled first. */
function notCreatedReason(run: RunRecord): string {
  if (run.status === 'cancelled') return `its run ${run.id} was cancelled before the task was created`;
  if (run.status === 'failed') return `its run ${run.id} failed before the task was created: ${run.error ?? 'no error recorded'}`;
  return `its run ${run.id} ended (${run.status}) without creating the task`;
}
