import type { RunEvent } from '../core/events.js';
import type { BreakerChange, BreakerRow } from './breaker-types.js';
import type { Sw4rmStateRow } from './sw4rm-state-types.js';
import type { Sw4rmDoc, Sw4rmGroupChange, Sw4rmGroupWrite } from './sw4rm-sched-types.js';
import type { Sw4rmAckItem, Sw4rmAgentRow, Sw4rmAgentWrite, Sw4rmMessageRow, Sw4rmMessageState, Sw4rmSendItem, Sw4rmSendOutcome, Sw4rmSweepResult } from './sw4rm-router-types.js';
import type { MemoryListQuery, MemoryRecord, MemorySearch, MemoryWrite, ScoredMemory } from './memory-types.js';
import type {
  CommitObserver,
  QueueGauges,
  TxHint,
  AgentCheckpointWrite,
  AgentMessageRecord,
  AgentSessionRecord,
  ApiTokenRecord,
  ApprovalRecord,
  SessionFilter,
  ToolCallRecord,
  AgentRecord,
  LedgerTx,
  RunFilter,
  RunChangeFilter,
  RekeyPlan,
  RekeyReport,
  RunConcurrencyInfo,
  RunRecord,
  RunTraceRecord,
  RunSignalRecord,
  StepWaitRecord,
  SecretRecord,
  LeaseRecord,
  StepLog,
  TriggerFilter,
  TriggerRecord,
  StepRecord,
  WorkerRecord,
  WorkflowRecord,
} from './types.js';
import type { BudgetReserveRequest, BudgetReserveResult, BudgetScopeUsage, BudgetSettleRequest, BudgetWarning } from './budget-types.js';
import type { CompactOptions, CompactReport, DatabaseSize, ExpiredRunPage, ExpiredRunQuery, RunDeleteReport, RunTree } from './retention-types.js';
import type { ExecutorRecord, ExecutorWrite } from './executor-types.js';
import type { ConsensusCandidateRow, ConsensusCosts, ConsensusDecisionRow, ConsensusResultRow, ConsensusTaskQuery, ConsensusTaskRow, ConsensusVoteRow } from './consensus-types.js';
import type { KnowledgeDecisionQuery, KnowledgeDecisionRow, KnowledgeDecisionWrite, KnowledgeLookupRow, KnowledgeLookupWrite, KnowledgeProposalRow, KnowledgeTrackFilter, KnowledgeTrackRow } from './knowledge-types.js';
import type { SigningKeyInsert, SigningKeyRecord } from './keys-types.js';
import type { LineageNode } from './fork-types.js';
import type { ImportedBundleRecord } from './share-types.js';

export type * from './types.js';
export type * from './retention-types.js';
export type * from './budget-types.js';

/** Store errors worth retrying as they are (busy, locked, I/O, connection): not the data's fault. */
export function isTransient(e: unknown): boolean {
  const raw = (e as { code?: unknown } | null | undefined)?.code;
  const code = typeof raw === 'string' ? raw : '';
  // SQLite busy/IO; PostgreSQL connection loss (08…), shutdown (57P…), too many connections (53300),
  // serialization failure (40001) and deadlock (40P01): all worth trying again as they are.
  return /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL)/.test(code) || /^(ECONN|ETIMEDOUT|EPIPE|57P|08|53300|40001|40P01)/.test(code);
}

export type Durability = 'full' | 'process';

export type PutResult = 'created' | 'unchanged' | 'replaced';

/**
 * The persistence port. Every backend (SQLite now, PostgreSQL next) implements this and passes the
 * same contract suite (`test/store-contract.test.ts`). State changes go through `transaction`, where
 * the engine's ledger applies the state machines; everything else is a read or a registry write.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives, for messages (a file path or a redacted URL). */
  readonly location: string;

  /**
   * Run a function in one write transaction: all of its writes commit together or none do. `lock`
   * names the runs and steps the function will lock first, when the caller knows them: a networked
   * store locks and reads them in the same round trip as BEGIN. It is only a hint; the function
   * still asks for what it needs.
   */
  transaction<T>(fn: (tx: LedgerTx) => Promise<T>, lock?: TxHint): Promise<T>;

  /**
   * Register an agent version: `created`; the same content (by digest, which leaves the directory
   * out: rows.ts agentPut) `unchanged`, its row written again when it names another directory or
   * holds a digest of the old form; other content `replaced` with `force`, else AGENT_VERSION_EXISTS.
   */
  putAgent(rec: AgentRecord, force: boolean): Promise<PutResult>;
  listAgents(name?: string): Promise<AgentRecord[]>;
  deleteAgent(name: string, version: string): Promise<boolean>;

  /**
   * Register a workflow version (and its trigger row, in the same transaction): `created`; the same
   * content (by digest: sha256 of the manifest's canonical JSON, rows.ts workflowPut) `unchanged`, its
   * row written again only when it holds a digest of the old form; other content `replaced` with
   * `force`, else WORKFLOW_VERSION_EXISTS.
   */
  putWorkflow(rec: WorkflowRecord, force: boolean): Promise<PutResult>;
  listWorkflows(name?: string): Promise<WorkflowRecord[]>;
  setWorkflowEnabled(name: string, enabled: boolean): Promise<number>;
  /**
   * A value that changes whenever an agent or workflow is put (with a change), deleted, enabled or
   * disabled, in that write's transaction: a process caching what it read of the registry (planned
   * runs, webhook triggers) knows with one small read whether its cache is current, whoever wrote.
   *
   * @example
   *   if ((await store.registryGeneration()) !== cachedAt) cache.clear();
   */
  registryGeneration(): Promise<string>;

  getRun(id: string): Promise<RunRecord | undefined>;
  /**
   * What a step attempt's span needs of its run: the run's stored trace context (null when the run
   * was created with tracing off), its trigger kind and workflow. Read only when tracing is on.
   *
   * @example
   *   const t = await store.getRunTrace(runId); // { traceparent: '00-4bf9…-01', tracestate: null, trigger_type: 'manual', workflow_name: 'digest' }
   */
  getRunTrace(id: string): Promise<RunTraceRecord | undefined>;
  /** Run ids starting (or ending) with `part` (at most `limit`), for short ids typed by users. */
  findRunIds(part: string, limit: number, how?: 'prefix' | 'suffix'): Promise<string[]>;
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
  /** Runs by their last change, oldest first (see RunChangeFilter): the list-level stream's source. */
  listRunChanges(filter: RunChangeFilter): Promise<RunRecord[]>;
  /** A run's plan (JSON), by run id. */
  getPlanJson(runId: string): Promise<string | undefined>;
  /** A plan (JSON) by its id. */
  getPlanById(planId: string): Promise<string | undefined>;
  getSteps(runId: string): Promise<StepRecord[]>;
  /** Status, outputs and error of these steps of a run (ids that are not steps of the run are omitted). */
  getStepOutputs(runId: string, stepIds: readonly string[]): Promise<Map<string, { status: string; outputs: unknown; error: string | null }>>;
  /** The list element of a map step's element row (`resize[3]`), or undefined. */
  getStepItem(runId: string, stepId: string): Promise<unknown>;
  getEvents(runId: string, afterSeq?: number, limit?: number): Promise<Array<RunEvent & { data_json: string }>>;
  getLogs(runId: string, stepId?: string): Promise<StepLog[]>;
  /** The concurrency-key rows of these runs (runs without a key are absent), with their key's active count. */
  runConcurrency(runIds: readonly string[]): Promise<Map<string, RunConcurrencyInfo>>;
  /** Runs that are not finished (queued or running). */
  unfinishedRunIds(): Promise<string[]>;
  /** How many runs are in each status. */
  runCounts(): Promise<Record<string, number>>;
  /** The schema version the database is at (it is migrated when opened). */
  schemaVersion(): Promise<number>;
  /** The newest schema version this build of Swarm knows. */
  readonly supportedSchemaVersion: number;
  /**
   * Record `value` under `key` in the store's metadata (`swarm_meta`) unless a value is there
   * already, and return the value now stored (the first writer's, when several race).
   */
  initMeta(key: string, value: string): Promise<string>;
  /**
   * The earliest moment after `after` at which a ready step becomes available (a retry backoff ends)
   * or a lease expires: the idle worker's timer. Steps already available are not "due": they wait for
   * capacity, which a commit (a local wake-up or a database change) frees.
   */
  nextDueAt(after: number): Promise<number | null>;

  /**
   * The store's clock in milliseconds: the database server's on PostgreSQL (every worker on every
   * machine agrees on it), the local clock on SQLite (one machine). Leases, heartbeats and timestamps
   * all use it; a worker's own clock only ever measures durations.
   */
  now(): Promise<number>;
  /** Record a starting worker (`started_at`/`heartbeat_at` should come from `now()`). */
  registerWorker(rec: WorkerRecord): Promise<void>;
  /** Stamp the worker's heartbeat with the store's clock. */
  heartbeatWorker(id: string): Promise<void>;
  /** Mark the worker stopped, on the store's clock. */
  stopWorker(id: string): Promise<void>;
  /** Workers not known to have stopped; with `activeSince`, only those with a heartbeat since then. */
  listWorkers(activeSince?: number): Promise<WorkerRecord[]>;
  /** Expire the leases held by these workers at once (they are known to be dead). */
  expireLeasesOf(workerIds: readonly string[]): Promise<number>;
  /** Record the process group running a step attempt, so a dead worker's orphans can be stopped. */
  setStepPid(runId: string, stepId: string, attempt: number, pid: number | null): Promise<void>;
  /** Process groups recorded for steps still leased by these workers. */
  pidsOf(workerIds: readonly string[]): Promise<Array<{ pid: number; run_id: string; step_id: string }>>;

  // ---- LLM agent sessions: the loop's journal (per-turn checkpoints, transcript, tool ledger) ----

  /**
   * Save a checkpoint: the session row and envelope, and the new messages, in one commit. Returns
   * false (and writes nothing) when a newer attempt already owns the session.
   */
  saveAgentCheckpoint(write: AgentCheckpointWrite): Promise<boolean>;
  /** The session and its latest envelope (JSON text). */
  getAgentSession(id: string): Promise<(AgentSessionRecord & { envelope: string | null; envelope_version: number | null }) | undefined>;
  /** Mark a session failed (its loop stopped with an error). */
  failAgentSession(id: string, error: string): Promise<void>;
  listAgentSessions(filter: SessionFilter): Promise<AgentSessionRecord[]>;
  getAgentMessages(sessionId: string): Promise<AgentMessageRecord[]>;
  getToolCall(sessionId: string, turn: number, callId: string): Promise<ToolCallRecord | undefined>;
  listToolCalls(sessionId: string): Promise<ToolCallRecord[]>;
  /** Record a tool call's outcome; the first record of a call id wins (returns false when one existed). */
  recordToolCall(rec: ToolCallRecord): Promise<boolean>;

  // ---- durable sleeps, waits and signals (migration 10) ----

  /** The registration of a sleep or wait step, if it has parked once. */
  getStepWait(runId: string, stepId: string): Promise<StepWaitRecord | undefined>;
  /** The signals sent to a run, oldest first (consumed ones name the wait step that took them). */
  listRunSignals(runId: string): Promise<RunSignalRecord[]>;

  // ---- approvals (human in the loop) ----

  /** Ask for approvals (idempotent: an existing request keeps its state). */
  requestApprovals(items: ReadonlyArray<Omit<ApprovalRecord, 'status' | 'reason' | 'decided_at' | 'decided_by'>>): Promise<void>;
  getApproval(runId: string, stepId: string, callId: string): Promise<ApprovalRecord | undefined>;
  listApprovals(filter: { run_id?: string; status?: ApprovalRecord['status'] }): Promise<ApprovalRecord[]>;

  // ---- encrypted secrets (sealed by src/secrets/vault.ts; the store never sees a value) ----

  /** Insert or replace the secret (name, scope); `created_at` of a replaced one is kept. */
  putSecret(rec: SecretRecord): Promise<'created' | 'replaced'>;
  getSecret(name: string, scope: string): Promise<SecretRecord | undefined>;
  /** Secrets by scope ('' = global), or all of them, ordered by scope then name. */
  listSecrets(scope?: string): Promise<SecretRecord[]>;
  deleteSecret(name: string, scope: string): Promise<boolean>;
  /**
   * A value that changes whenever any secret is put or deleted (in the same transaction), so a process
   * caching decrypted secrets knows, with one small read, whether its cache is current.
   */
  secretsGeneration(): Promise<string>;
  /**
   * Master key rotation, in one transaction: refuse unless the key check value is `plan.oldCheck`;
   * re-wrap every secret; re-chain every run's events (and its head hash); store `plan.newCheck`.
   * Either all of it commits or none.
   */
  rekey(plan: RekeyPlan): Promise<RekeyReport>;

  // ---- API tokens of the HTTP API (src/auth/tokens.ts; the store holds hashes, never a token) ----

  /** Insert a new token; false (nothing written) when a token with this id exists already. */
  putApiToken(rec: ApiTokenRecord): Promise<boolean>;
  getApiToken(id: string): Promise<ApiTokenRecord | undefined>;
  /** Every token, revoked and expired ones too, oldest first. */
  listApiTokens(): Promise<ApiTokenRecord[]>;
  /** Mark a token revoked at `at` (an earlier revocation keeps its time); the token as it is now, or undefined. */
  revokeApiToken(id: string, at: number): Promise<ApiTokenRecord | undefined>;
  /** Record a use of the token at `at` (never moves `last_used_at` back). */
  touchApiToken(id: string, at: number): Promise<void>;
  /** Is there a token neither revoked nor expired at `now`? (The HTTP API then requires one.) */
  hasLiveApiTokens(now: number): Promise<boolean>;

  // ---- triggers (written by putWorkflow / setWorkflowEnabled in their transaction) and leases ----

  /** Triggers, ordered by id (the workflow's name). */
  listTriggers(filter?: TriggerFilter): Promise<TriggerRecord[]>;
  /** The webhook trigger received at this path, if any. */
  getWebhookTrigger(path: string): Promise<TriggerRecord | undefined>;
  /** Pause or resume a schedule trigger; false when the workflow has no schedule trigger. */
  setTriggerPaused(id: string, paused: boolean): Promise<boolean>;
  /**
   * Record what the scheduler did with a schedule: `last_fired_at` only ever moves forward (a late
   * write from a holder that lost its lease cannot move it back), `next_run_at` is set as given.
   */
  updateScheduleState(id: string, state: { last_fired_at?: number; next_run_at: number | null }): Promise<void>;
  /**
   * `buffer_one`: set the schedule's held-back tick to `next` (null: none) if it is still `expected`
   * (null: none); false when it is not (another scheduler changed it, or there is no such schedule).
   * A compare-and-set, so a holder that lost its lease cannot overwrite what the new one decided.
   */
  swapScheduleBuffer(id: string, expected: number | null, next: number | null): Promise<boolean>;
  /**
   * Delete at most `limit` custom events (`emitted_events`) recorded before `before` (ms), oldest
   * first, in one short transaction; returns how many. The retention calls it in batches.
   */
  pruneEmittedEvents(before: number, limit: number): Promise<number>;
  /**
   * Take or renew the lease `name` for `holder` until the store's now + `ttlMs`: granted when nobody
   * holds it, `holder` holds it already, or the holder's lease has expired. Returns the lease as it
   * now is, and whether `holder` has it.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseRecord & { acquired: boolean }>;
  /** Give the lease up (only if `holder` holds it); true when it did. */
  releaseLease(name: string, holder: string): Promise<boolean>;
  getLease(name: string): Promise<LeaseRecord | undefined>;

  // ---- run budgets (migration 18; the SQL in sqlite/ and postgres/budget-sql.ts, the guard in src/guardrails/budget.ts) ----

  /**
   * In one transaction: make the request's scopes if they are new, give back their expired
   * reservations, and, if no limit of any scope would be crossed, reserve the amount (or use it at
   * once with `commit`); otherwise change nothing but report the first limit crossed. Two workers
   * racing for a budget's last units: one wins.
   *
   * @example
   *   const r = await store.reserveBudget({ reservation_id, scopes, amount: { tokens_in: 900, tokens_out: 1024, model_calls: 1 }, ttl_ms: 600_000 });
   *   if (!r.ok) throw budgetExceeded(r.exceeded);
   */
  reserveBudget(req: BudgetReserveRequest): Promise<BudgetReserveResult>;
  /** Replace a reservation with the actual usage (zero when the call failed), in one transaction; returns warnings crossed. */
  settleBudget(req: BudgetSettleRequest): Promise<BudgetWarning[]>;
  /** The budget scopes of a root run's tree (run scopes first), for reports. */
  getBudgetScopes(rootRunId: string): Promise<BudgetScopeUsage[]>;

  // ---- retention (migration 16; the SQL in sqlite/ and postgres/retention-sql.ts, batching in src/retention/) ----

  /** One page of finished run trees (a top-level run and its sub-workflow runs) past a cut-off, oldest first. */
  expiredRunTrees(q: ExpiredRunQuery): Promise<ExpiredRunPage>;
  /**
   * Delete these trees and every row that points at their runs, in one short transaction; a tree
   * that no longer qualifies (reopened, or changed since it was read) is left as it is.
   */
  deleteRunTrees(trees: readonly RunTree[], q: Pick<ExpiredRunQuery, 'before' | 'statuses'>): Promise<RunDeleteReport>;
  /** Compact the checkpoint envelopes of finished LLM sessions (one transaction, at most `limit`). */
  compactAgentSessions(o: CompactOptions): Promise<CompactReport>;
  /** How big the database is (SQLite: pages and the file; PostgreSQL: pg_database_size). */
  databaseSize(): Promise<DatabaseSize>;

  /**
   * Resolve when another process may have changed the database, or after `timeoutMs`.
   * SQLite polls its data version; PostgreSQL will use LISTEN/NOTIFY with polling as fallback.
   */
  waitForChange(timeoutMs: number, wake?: Promise<unknown>): Promise<void>;

  /**
   * The queue's store-wide numbers for the metrics' gauges (ready steps, the oldest one's age, live
   * workers, pending approvals): each one indexed query, never a scan of runs or events. Live workers
   * are those not stopped whose heartbeat is at most `liveWithinMs` old (on the store's clock).
   *
   * @example
   *   const g = await store.queueGauges(30_000);
   */
  queueGauges(liveWithinMs: number): Promise<QueueGauges>;
  /** Tell `observer` about every ledger transaction's work and commit (metrics); undefined stops. */
  observeCommits(observer: CommitObserver | undefined): void;

  // ---- circuit breakers (migration 19; src/guardrails/breakers.ts) ----

  /** One breaker's shared state by key (an indexed read); undefined: closed, no failures. */
  getBreaker(key: string): Promise<BreakerRow | undefined>;
  /** Every breaker with a row, by key. */
  listBreakers(): Promise<BreakerRow[]>;
  /**
   * Read one breaker's row (a closed placeholder when none), apply `change` and write what it
   * returns (nothing when it returns the same object), in one transaction: workers that change the
   * same breaker at once are serialised, so a transition happens once.
   *
   * @example
   *   const { before, after } = await store.updateBreaker('tool:search', 'tool', (r) => ({ ...r, probes: r.probes + 1 }));
   */
  updateBreaker(key: string, kind: string, change: BreakerChange): Promise<{ before: BreakerRow; after: BreakerRow }>;
  /** Forget a breaker's state (it is closed again); returns the row it had. */
  deleteBreaker(key: string): Promise<BreakerRow | undefined>;
  // ---- vector memory (memory-sql.ts of each store; src/memory/) ----

  /**
   * Write a memory and its vector in one transaction, unless a memory with its `dedup_key` is
   * there (then nothing changes: `created` false). MEMORY_BACKEND_UNAVAILABLE without a vector index
   * (PostgreSQL without pgvector).
   *
   * @example
   *   await store.putMemory({ namespace: 'notes', text: 'likes tea', metadata: {}, source: 'explicit',
   *     run_id: null, step_id: null, session_id: null, dedup_key: 'cli/1', created_at: Date.now(), embedding: v });
   */
  putMemory(m: MemoryWrite): Promise<{ id: string; created: boolean }>;
  /** The `k` memories of a namespace nearest to `vector` (cosine), best first, exact. */
  searchMemories(q: MemorySearch): Promise<ScoredMemory[]>;
  /** Memories newest first (one namespace, or all). */
  listMemories(q: MemoryListQuery): Promise<MemoryRecord[]>;
  /** Delete one memory of a namespace (`id`) or the whole namespace; returns how many went. */
  deleteMemories(q: { namespace: string; id?: string }): Promise<number>;

  // ---- sw4rm router: messages, leases, redelivery, dead letters, dedup (sw4rm-router-sql.ts of each store) ----

  /**
   * Store a batch of SendMessages in one transaction (on SQLite inside the group commit): per item,
   * a repeat of an idempotency token within its window or of a message id is a `duplicate` (nothing
   * stored); no recipient is `no_route` (nothing stored); otherwise one row per recipient (in flight
   * under `leaseUntil` for those `direct` names) plus the router's RECEIVED ACK to a known producer.
   *
   * @example
   *   const [out] = await store.sw4rmSend([item], Date.now() + 30_000);
   */
  sw4rmSend(items: readonly Sw4rmSendItem[], leaseUntil: number): Promise<Sw4rmSendOutcome[]>;
  /** Up to `limit` queued messages of `recipient` in seq order, now in flight until `leaseUntil` (TTL-expired ones die instead). */
  sw4rmClaim(recipient: string, limit: number, now: number, leaseUntil: number): Promise<Sw4rmMessageRow[]>;
  /** A new stream of `recipient`: its in-flight messages are queued again (dead past `maxAttempts`); returns how many. */
  sw4rmRequeue(recipient: string, maxAttempts: number, now: number): Promise<number>;
  /** Delivery acks in one transaction: true for each that settled a delivered, unsettled row (acked, or dead on PERMANENT_FAILURE). */
  sw4rmAck(acks: readonly Sw4rmAckItem[], now: number): Promise<boolean[]>;
  /** Ended leases back to the queue (dead past `maxAttempts`), TTL-expired queued messages dead, acked rows older than `pruneBefore` and old tokens deleted, and agents known only by a stream that have been unavailable since before `pruneBefore` deleted with the messages still waiting for them. */
  sw4rmSweep(now: number, maxAttempts: number, pruneBefore: number): Promise<Sw4rmSweepResult>;
  /** Messages by seq, optionally of one state / recipient. */
  sw4rmMessages(q: { state?: Sw4rmMessageState; recipient?: string; limit?: number }): Promise<Sw4rmMessageRow[]>;
  /** Dead letters (one seq or all) queued again with attempts and TTL reset; returns them. */
  sw4rmReplayDead(seq: number | 'all', now: number): Promise<Sw4rmMessageRow[]>;
  /** Delete dead letters (one seq or all); returns how many. */
  sw4rmDropDead(seq: number | 'all'): Promise<number>;
  /** Register or re-register an agent (available again, descriptor replaced). */
  sw4rmPutAgent(a: Sw4rmAgentWrite, now: number): Promise<void>;
  /** Know an agent that streams without registering (implicit); a known one is left as it is. */
  sw4rmEnsureAgent(agentId: string, now: number): Promise<void>;
  /** A heartbeat: false for an unknown or deregistered agent. */
  sw4rmHeartbeat(agentId: string, agentState: string, health: string, now: number): Promise<boolean>;
  /** Deregister: false for an unknown or already deregistered agent. */
  sw4rmDeregisterAgent(agentId: string, reason: string, now: number): Promise<boolean>;
  sw4rmAgents(): Promise<Sw4rmAgentRow[]>;
  /** Agents with no heartbeat since `before` become unavailable; returns their ids. */
  sw4rmMarkUnavailable(before: number): Promise<string[]>;
  /** Implicit agents (streaming, never registered) with an open stream: their stream is their heartbeat. */
  sw4rmTouchAgents(agentIds: readonly string[], now: number): Promise<void>;

  // ---- sw4rm registry, scheduler, negotiation and HITL (sw4rm-registry-sql.ts of each store) ----

  // The scheduler side (migration 22, sw4rm-sched-sql.ts of each store; src/store/sw4rm-sched-types.ts).
  /** Documents of one kind by key (indexed), in key order; missing keys are left out. */
  getSw4rmDocs(kind: string, keys: readonly string[]): Promise<Sw4rmDoc[]>;
  /** Documents of one kind in a group, or belonging to an owner (indexed), in key order. */
  listSw4rmDocs(kind: string, by: { group: string } | { owner: string }): Promise<Sw4rmDoc[]>;
  /**
   * In one transaction, the group locked: read the group's documents of `kinds`, apply `change`
   * (pure; it may throw, and then nothing is written) and write what it returns.
   *
   * @example
   *   await store.updateSw4rmGroup('room:r1/a1', ['room', 'vote'], (docs) => ({ put: [vote], remove: [] }));
   */
  updateSw4rmGroup(group: string, kinds: readonly string[], change: Sw4rmGroupChange): Promise<Sw4rmGroupWrite>;

  // ---- sw4rm agent state: activity buffer, worktree bindings (sw4rm-state-sql.ts of each store) ----

  /**
   * One JSON document of an agent's SW4RM state (migration 23), by (agent id, kind, key); undefined
   * when none was put.
   *
   * @example
   *   const row = await store.getSw4rmState('agent-1', 'activity');
   */
  getSw4rmState(agentId: string, kind: string, key?: string): Promise<Sw4rmStateRow | undefined>;
  /**
   * Write (insert or replace) one JSON document of an agent's state, durably before it resolves.
   * UserError SW4RM_STATE_INVALID for an empty agent id or kind, or a value with no JSON form
   * (nothing is written).
   *
   * @example
   *   await store.putSw4rmState('agent-1', 'worktree', { repo_id: 'r', worktree_id: 'w' });
   */
  putSw4rmState(agentId: string, kind: string, value: unknown, key?: string): Promise<Sw4rmStateRow>;
  /** Every document of an agent, by kind then key. */
  listSw4rmState(agentId: string): Promise<Sw4rmStateRow[]>;
  /** Forget an agent's documents of one kind (or all of them); returns how many went. */
  deleteSw4rmState(agentId: string, kind?: string): Promise<number>;

  // ---- executors registry (exec) (migration 24) ----
  /**
   * Register an executor, or replace the one of that name (its created_at stays).
   *
   * @example
   *   await store.putExecutor({ name: 'rt', base_url: 'http://127.0.0.1:8787', token_secret: null, public_key: null });
   */
  putExecutor(e: ExecutorWrite): Promise<ExecutorRecord>;
  getExecutor(name: string): Promise<ExecutorRecord | undefined>;
  /** Every registered executor, by name. */
  listExecutors(): Promise<ExecutorRecord[]>;
  /** Forget an executor; false when there was none of that name. */
  deleteExecutor(name: string): Promise<boolean>;
  /** A run's `shared_inputs` as stored (JSON text; null: none; undefined: no such run). */
  getRunSharedInputs(runId: string): Promise<string | null | undefined>;

  // ---- consensus tasks: tasks, candidates, verifier results, votes, decisions (engine) (migration 25) ----
  /** A consensus task by id. */
  getConsensusTask(taskId: string): Promise<ConsensusTaskRow | undefined>;
  /** Consensus tasks, newest first, of a run and/or in a status. */
  listConsensusTasks(query?: ConsensusTaskQuery): Promise<ConsensusTaskRow[]>;
  /** A task's candidates, by round and proposal order. */
  getConsensusCandidates(taskId: string): Promise<ConsensusCandidateRow[]>;
  getConsensusResults(taskId: string): Promise<ConsensusResultRow[]>;
  /** A task's votes (of one round, or all), commitments with their reveals. */
  getConsensusVotes(taskId: string, round?: number): Promise<ConsensusVoteRow[]>;
  getConsensusDecision(taskId: string): Promise<ConsensusDecisionRow | undefined>;
  /** Cost so far per budget bucket (USD). */
  getConsensusCosts(taskId: string): Promise<ConsensusCosts>;

  // ---- knowledge store: decisions, evidence, track record (knowledge) (migration 26) ----
  /**
   * Record a finalized decision (src/store/knowledge-types.ts): the decision row, its proposals and
   * the proposers' track record counts, in one transaction. Idempotent by task id: a decision
   * recorded before changes nothing (`created: false`), so the counts are added once.
   *
   * @example
   *   const { created } = await store.putKnowledgeDecision(buildDecisionWrite(finalized, Date.now()));
   */
  putKnowledgeDecision(w: KnowledgeDecisionWrite): Promise<{ created: boolean }>;
  getKnowledgeDecision(taskId: string): Promise<KnowledgeDecisionRow | undefined>;
  /** Decisions newest first (decided_at, then task id descending), by type (and inputs hash) or task ids, paged by `before`. */
  listKnowledgeDecisions(q: KnowledgeDecisionQuery): Promise<KnowledgeDecisionRow[]>;
  /** The proposals of some decided tasks (by task, proposer, round). */
  listKnowledgeProposals(taskIds: readonly string[]): Promise<KnowledgeProposalRow[]>;
  /** The track record, by task type then proposer. */
  knowledgeTrackRecord(f: KnowledgeTrackFilter): Promise<KnowledgeTrackRow[]>;
  /** The task types that have decisions, sorted. */
  knowledgeTaskTypes(): Promise<string[]>;
  /** Log a lookup. */
  addKnowledgeLookup(l: KnowledgeLookupWrite): Promise<KnowledgeLookupRow>;
  /** Lookups newest first. */
  listKnowledgeLookups(q: { task_id?: string; limit?: number }): Promise<KnowledgeLookupRow[]>;

  // ---- signing keys (core) (migration 27) ----
  /**
   * Insert a signing key unless one of its name exists; either way the stored key comes back
   * (`created` says which), so concurrent creators of one name all end with the same key.
   */
  insertSigningKey(rec: SigningKeyRecord): Promise<SigningKeyInsert>;
  getSigningKey(name: string): Promise<SigningKeyRecord | undefined>;
  /** Every signing key, by name. */
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Replace a key's sealed private key (master key rotation); false when there is no such key. */
  updateSigningKeyEnc(name: string, privateKeyEnc: string): Promise<boolean>;

  // ---- run lineage (migration 28; fork-sql.ts of each store; src/branching/fork.ts writes forks through LedgerTx.fork()) ----
  /**
   * The fork tree a run belongs to: its root (up the fork links), then every fork below it, by depth
   * then creation; at most `limit` runs (default 1000). Empty when there is no such run.
   *
   * @example
   *   const tree = await store.runLineage(runId); // [{ run_id: root, depth: 0, … }, { run_id: fork, parent_run_id: root, fork_step_id: 'b', depth: 1, … }]
   */
  runLineage(runId: string, limit?: number): Promise<LineageNode[]>;
  // ---- imported bundles and age keys (migration 29; src/branching/import.ts, src/identity/keys.ts) ----
  /** Insert an age identity (key_type 'age') unless a key of its name exists; as insertSigningKey otherwise. */
  insertAgeKey(rec: SigningKeyRecord): Promise<SigningKeyInsert>;
  /** Record the bundle a run was imported from; false (nothing written) when the run has one already. */
  insertImportedBundle(rec: ImportedBundleRecord): Promise<boolean>;
  /** The bundle a run was imported from, or undefined for a run made here. */
  getImportedBundle(runId: string): Promise<ImportedBundleRecord | undefined>;

  /** Housekeeping an idle worker may do (SQLite: a passive WAL checkpoint). */
  checkpoint?(): Promise<void>;

  close(): Promise<void>;
}
