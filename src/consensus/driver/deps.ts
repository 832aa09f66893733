/**
 * What the consensus driver needs from the rest of Swarm, injected (src/swarm.ts builds it): the
 * store, the ledger's event recording, signing keys, executor clients, agent runs, the knowledge
 * store. And `transition`, the one way the driver writes: rows and events in one transaction, the run
 * row locked first (the ledger's lock order), fenced by the step's attempt.
 *
 * @example
 *   await transition(deps, ctx, async (w) => {
 *     await w.c.updateTask(taskId, { status: 'verifying' });
 *     await w.emit(EventType.TASK_CLAIMED, { task_id: taskId, stage: 'verify' });
 *   });
 */
import { RUN_ENDED, StepError } from '../../core/errors.js';
import type { EventType } from '../../core/events.js';
import type { ExecutorClient, SeedBundle } from '../../executors/http/contract.js';
import type { ConsensusDecisionRow, ConsensusLoad, ConsensusTaskRow, ConsensusTx } from '../../store/consensus-types.js';
import type { Store } from '../../store/store.js';
import type { ClaimedStep, LedgerTx } from '../../store/types.js';
import type { TaskContract } from '../core/types.js';
import type { Context } from '../../observability/tracing.js';

/** A seq and hash of an event in a run's log (what a decision's proof lists). */
export interface EventRef {
  seq: number;
  hash: string;
}

/** An agent package run once for the task (a proposer's sample, or a voter's judgement). */
export interface AgentRunRequest {
  agent: string;
  inputs: Record<string, unknown>;
  runId: string;
  stepId: string;
  attempt: number;
  /** Stable across retries of the same piece of work. */
  idempotencyKey: string;
  /**
   * An llm agent's session id: each proposer sample and each judge is its own conversation
   * (`<run id>/<step id>/propose/<member id>/<round>`, `<run id>/<step id>/vote/<voter id>/<round>`),
   * resumed by the worker that takes the step over, as a step's session is.
   */
  session?: string;
  workflow: string;
  signal: AbortSignal;
  /** The consensus step attempt's span context (tracing on): the agent's spans are its children. */
  trace?: Context;
}

/** What the knowledge store offers the driver (lookup before proposing, record after finalizing). */
export interface KnowledgeHooks {
  /** A prior decision to seed the proposers with, and the events the lookup produced (KNOWLEDGE_HIT, REUSE_REJECT_RECORDED). */
  lookup(contract: TaskContract, taskId: string): Promise<{ seed_bundle?: SeedBundle; events: Array<{ type: EventType; data: Record<string, unknown> }> }>;
  /** Keep a finalized decision (idempotent per task). */
  record(taskId: string): Promise<void>;
}

/** A registered agent as a consensus member uses it: its name, version and runtime type, and its declared inputs and outputs (JSON Schemas). */
export interface AgentInfo {
  name: string;
  version: string;
  /** `runtime.type` (`llm` agents are asked with a `message` and answer with `content`; see llm.ts). */
  runtime?: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

export interface ConsensusDeps {
  store: Store;
  /** Append events to a run's log in the caller's transaction; returns the last one's seq and hash. */
  record(tx: LedgerTx, runId: string, stepId: string | null, events: ReadonlyArray<{ type: EventType; data: Record<string, unknown> }>): Promise<EventRef>;
  /** A kernel-held Ed25519 identity by name (`consensus:<member id>`), created on first use. */
  kernelKey(name: string): Promise<{ publicKey: string; privateKey: string }>;
  /** A registered executor's client and its pinned public key. */
  executor(name: string): Promise<{ client: ExecutorClient; public_key: string | null }>;
  /** Run a registered agent package; its outputs (throws a StepError when it fails). */
  runAgent(req: AgentRunRequest): Promise<unknown>;
  /** The registered agent a reference (`name` or `name@range`) picks now; undefined when none is. */
  agent?(ref: string): Promise<AgentInfo | undefined>;
  knowledge?: KnowledgeHooks;
  /** Named crash points for fault-injection tests (`consensus-after-vote-commit:<step>`, `consensus-after-decision-commit:<step>`). */
  faults?: ReadonlySet<string>;
  /** How often a task waiting for reveals looks at the store (default 200 ms). */
  pollMs?: number;
  /** Largest evidence body fetched from a URL (default 1 MiB). */
  evidenceMaxBytes?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** The step attempt a driver works for: its writes are fenced by it. */
export interface DriverCtx {
  step: ClaimedStep;
  workerId: string;
  workflow: string;
  taskId: string;
  signal: AbortSignal;
  /** The step attempt's span context (tracing on): HTTP executors' proposals name it in their traceparent. */
  trace?: Context;
}

/**
 * Where a stage left the task: its row as the stage's last transition wrote it and that
 * transition's clock (and the decision, once finalized). The driver goes on from them instead of
 * reading them again; a stage that ends otherwise (the task failed, a new round) returns nothing.
 */
export interface StageEnd {
  task: ConsensusTaskRow;
  now: number;
  decision?: ConsensusDecisionRow;
}

/** One transaction's writer: the consensus rows and the run's events. */
export interface Writer {
  tx: LedgerTx;
  c: ConsensusTx;
  /** Record one event of the task's step; its seq and hash. */
  emit(type: EventType, data: Record<string, unknown>): Promise<EventRef>;
}

/**
 * Run `fn` in one transaction: lock the run row, check the step is still this attempt's (else
 * RUN_ENDED when its run was cancelled, LEASE_LOST otherwise, and nothing is written), then write
 * rows and events together. The locks, the task's row and the rows named in `load` are read with
 * BEGIN (one round trip on PostgreSQL); writes whose outcome `fn` does not need travel with COMMIT.
 */
export function transition<T>(deps: ConsensusDeps, ctx: DriverCtx, fn: (w: Writer) => Promise<T>, load?: Omit<ConsensusLoad, 'task_id'>): Promise<T> {
  return deps.store.transaction(
    async (tx) => {
      const run = await tx.getRunState(ctx.step.run_id);
      const c = tx.consensus();
      if (!(await c.fence(ctx.step, ctx.step.attempt, ctx.workerId))) {
        if (run?.status === 'cancelled') throw new StepError(RUN_ENDED, 'its run was cancelled', false);
        throw new StepError('LEASE_LOST', `step ${ctx.step.step_id}: the lease was lost; another worker continues the task`, true);
      }
      return fn({ tx, c, emit: (type, data) => deps.record(tx, ctx.step.run_id, ctx.step.step_id, [{ type, data }]) });
    },
    { runs: [ctx.step.run_id], steps: [{ run_id: ctx.step.run_id, step_id: ctx.step.step_id }], consensus: { task_id: ctx.taskId, ...load } },
  );
}

/** Die on the spot at a named point (durability tests), as `kill -9` would. */
export function crashPoint(deps: ConsensusDeps, point: string, stepId: string): void {
  const f = deps.faults;
  if (f && (f.has(`${point}:${stepId}`) || f.has(`${point}:*`))) process.kill(process.pid, 'SIGKILL');
}

/** Stop when the step's attempt is aborted (cancelled, lease lost, shutting down). */
export function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new StepError('STEP_ABORTED', 'the step was stopped', true);
}
