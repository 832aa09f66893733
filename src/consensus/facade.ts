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
import { PolicyError, UserError } from '../core/errors.js';
import type { EventType } from '../core/events.js';
import type { ConsensusCandidateRow, ConsensusResultRow, ConsensusTaskQuery, ConsensusTaskRow, ConsensusVoteRow } from '../store/consensus-types.js';
import type { Store } from '../store/store.js';
import type { LedgerTx } from '../store/types.js';
import type { Decision, TaskContract, TaskCost, TaskStatus } from './core/types.js';
import { checkContract, TaskContractError } from './driver/contract.js';
import type { EventRef } from './driver/deps.js';
import { acceptVote, type VoteInput } from './driver/votes.js';
import { reasonName } from './core/reason-codes.js';

export const CONSENSUS_WORKFLOW = 'swarm-consensus';
export const CONSENSUS_STEP = 'task';
const VERSION = '1.0.0';

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

/** A task's outcome (`swarm task decision`): `pending` while its run has not created it yet. */
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
  createRun(ref: string, input: unknown, options: { idempotencyKey?: string; metadata?: Record<string, string> }): Promise<{ runId: string; created: boolean }>;
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
   * Submit a standalone task: its contract is checked, then a run of `swarm-consensus` starts (a
   * worker runs it). Submitting the same `task_id` again returns the first run.
   */
  async submitTask(contract: unknown): Promise<SubmittedTask> {
    // The agents it names must be registered and take its inputs (as a workflow step's agent must).
    const problems = await checkContract(contract, (name) => this.host.store.listAgents(name));
    if (problems.length) throw new TaskContractError(problems);
    const c = contract as TaskContract;
    const taskId = c.task_id ?? `t-${randomUUID()}`;
    await this.ensureWorkflow();
    const { runId, created } = await this.host.createRun(CONSENSUS_WORKFLOW, { contract: { ...c, task_id: taskId } }, { idempotencyKey: `consensus-task:${taskId}`, metadata: { consensus_task_id: taskId } });
    return { task_id: taskId, run_id: runId, created };
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

  /** The decision, or where the task stands; NOT_FOUND for an id nobody submitted. */
  async taskDecision(taskId: string): Promise<TaskDecisionView> {
    const task = await this.host.store.getConsensusTask(taskId);
    if (!task) {
      const runId = await this.host.store.transaction(async (tx) => (await tx.runByIdempotencyKey(`consensus-task:${taskId}`))?.id);
      if (!runId) throw new UserError('TASK_NOT_FOUND', `no consensus task '${taskId}'`, { taskId });
      return { task_id: taskId, run_id: runId, status: 'pending', decision: null, reason_code: null, reason: null };
    }
    const decision = (await this.host.store.getConsensusDecision(taskId)) ?? null;
    return { task_id: taskId, run_id: task.run_id, status: task.status, decision, reason_code: task.reason_code, reason: task.reason ?? (task.reason_code !== null ? reasonName(task.reason_code) : null) };
  }

  /** The per-task cost report, by bucket, against the contract's budgets. */
  async taskCost(taskId: string, known?: ConsensusTaskRow): Promise<TaskCost> {
    const task = known ?? (await this.host.store.getConsensusTask(taskId));
    if (!task) throw new UserError('TASK_NOT_FOUND', `no consensus task '${taskId}'`, { taskId });
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
    if (!first) throw new UserError('TASK_NOT_FOUND', `no consensus task '${v.task_id}' (it appears once its run has started)`, { taskId: v.task_id });
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
