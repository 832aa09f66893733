import type { WaitRequest, WaitsTx } from './wait-types.js';
import type { CommitObserver } from './commit-observer.js';
import type { ConsensusLoad } from './consensus-types.js';
import type { EnvelopeLike } from './envelope-json.js';
import type { RunEvent } from '../core/events.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import type { WorkflowManifest } from '../core/manifest/workflow.js';
import type { RunStatus, StepStatus } from '../core/states.js';

/** What a waiting step's `error` (what it waited for) starts with once it is cancelled: `cancelled while waiting for event order.paid`. */
export const CANCELLED_WHILE = 'cancelled while ';

/** A registered agent package. */
export interface AgentRecord {
  id: string;
  name: string;
  version: string;
  /** Absolute path of the package directory. */
  path: string;
  manifest: AgentManifest;
  digest: string;
  created_at: number;
  updated_at: number;
}

/** A registered workflow version. */
export interface WorkflowRecord {
  id: string;
  name: string;
  version: string;
  path: string;
  manifest: WorkflowManifest;
  enabled: boolean;
  digest: string;
  created_at: number;
  updated_at: number;
}

/**
 * Everything a run needs, frozen when the run is created: the workflow's steps and handlers and the
 * exact agent versions they resolved to. Re-registering a workflow or agent never changes a run.
 */
export interface RunPlan {
  version: 1;
  workflow: WorkflowManifest;
  workflow_id: string;
  /** Step id → the id (`name@version`) of the agent it runs. */
  step_agents: Record<string, string>;
  /** Agent id → its package directory and manifest (each agent once, however many steps use it). */
  agents: Record<string, { path: string; manifest: AgentManifest }>;
  /** `config:` from swarm.yaml at run creation (for `${config.*}`). */
  config: Record<string, unknown>;
}

/** The mutable part of a run, read and written by the ledger inside a transaction. */
export interface RunState {
  id: string;
  /** The run's frozen plan, shared by every run with the same content (a digest). */
  plan_id: string;
  status: RunStatus;
  steps_remaining: number;
  running_steps: number;
  max_parallel: number;
  event_seq: number;
  event_hash: string;
  started_at: number | null;
  completed_at: number | null;
  error: string | null;
  error_step: string | null;
  /** A sub-workflow's run: the run and step that started it (read with the state, so finishing it needs no extra query). */
  parent_run_id?: string | null;
  parent_step_id?: string | null;
  /** Read with the state for the metrics' labels and run duration (absent from older callers' states). */
  workflow_name?: string;
  trigger_type?: string;
  created_at?: number;
}

export interface RunRecord extends RunState {
  workflow_id: string;
  workflow_name: string;
  workflow_version: string;
  trigger_type: string;
  trigger_data: unknown;
  parent_run_id: string | null;
  /** The step of `parent_run_id` this run is the sub-workflow of (null for runs a handler started). */
  parent_step_id: string | null;
  steps_total: number;
  created_at: number;
  updated_at: number;
  /** The key the run was created under (`Idempotency-Key`, a schedule tick): one run per key. */
  idempotency_key: string | null;
  /** Labels given when the run was created (string values), or null. */
  metadata: Record<string, string> | null;
  /** Its place under the workflow's concurrency key (filled in by `Swarm.getRun` / `listRuns`; absent: no key). */
  concurrency?: RunConcurrencyInfo;
  /** A fork (src/branching/fork.ts): the step of `parent_run_id` it reran from; null for any other run. */
  fork_step_id: string | null;
  /** A fork of an LLM step at a turn: the turn its loop resumed at (earlier turns copied); else null. */
  fork_turn: number | null;
}

export interface StepRecord {
  run_id: string;
  step_id: string;
  step_index: number;
  agent_id: string;
  agent_name: string;
  agent_version: string;
  status: StepStatus;
  pending_deps: number;
  attempt: number;
  retry_count: number;
  lease_owner: string | null;
  lease_until: number | null;
  available_at: number | null;
  outputs: unknown;
  error: string | null;
  queued_at: number;
  started_at: number | null;
  completed_at: number | null;
  duration_ms: number | null;
  /** An element of a map step (`resize[3]`): its position in the list. */
  map_index?: number;
  /** The inputs it ran with, resolved and redacted, as recorded when it finished (absent before). */
  inputs?: unknown;
}

export interface StepKey {
  run_id: string;
  step_id: string;
}

/** What an executed step reports back. */
export type StepResult =
  | { kind: 'completed'; outputs: unknown; inputs?: unknown }
  | { kind: 'failed'; error: { code: string; message: string }; retryable: boolean; inputs?: unknown }
  | { kind: 'skipped'; reason: string }
  /** Not finished: the worker is shutting down and gives the step back (no retry is used up). */
  | { kind: 'released'; reason: string }
  /** Paused for a human's decision (approvals requested): the step holds no lease until approve/reject. */
  | { kind: 'waiting'; reason: string; wait?: WaitRequest }
  /** A map step's list, resolved: the ledger adds one step row per element and parks the map step. */
  | { kind: 'map'; items: unknown[] }
  /** A sub-workflow step's resolved inputs: the ledger starts the child run and parks the step. */
  | { kind: 'child'; inputs: Record<string, unknown> };

export interface Completion extends StepKey {
  /** The fencing token the step was claimed with. */
  attempt: number;
  worker_id: string;
  /** Failures before this attempt (from the claim), to count retries. */
  retry_count: number;
  /**
   * How long the attempt ran, measured on the worker's monotonic clock: a duration needs no agreement
   * between clocks, whereas the worker's wall clock may disagree with the database's.
   */
  duration_ms: number;
  /** The run's plan (from the claim): lets the worker name the rows its commit will lock up front. */
  plan_id?: string;
  result: StepResult;
  logs?: { stdout: string; stderr: string; truncated: boolean };
  /** Process agents: the sandbox and the memory enforcement the attempt ran under (recorded in its event). */
  isolation?: { sandbox: string; memory: string; warning?: string; network?: string; net_cap?: string };
}

export interface ClaimRequest {
  worker_id: string;
  max: number;
  lease_ms: number;
  /** Only claim steps of these runs (a one-off `swarm run` works on its own run only). */
  run_ids?: readonly string[];
  /** Wake sleep and wait steps whose time has come before claiming (the worker asks when one may be due). */
  wake_due?: boolean;
}

export interface ClaimedStep extends StepKey {
  plan_id: string;
  attempt: number;
  retry_count: number;
  reclaimed: boolean;
}

export interface RenewRequest {
  worker_id: string;
  lease_ms: number;
  steps: ReadonlyArray<StepKey & { attempt: number }>;
}

/** What a transaction will lock and read first (see `Store.transaction`). */
export interface TxHint {
  /** Run rows to lock. */
  runs?: readonly string[];
  /** Step rows to lock. */
  steps?: readonly StepKey[];
  /** Registered versions of these workflows (`workflowVersions`). */
  workflows?: readonly string[];
  /** Registered versions of these agents (`agentVersions`). */
  agents?: readonly string[];
  /** The claim the transaction will make (`selectClaimable(limit, run_ids)`): its candidates can be selected with BEGIN. */
  claim?: { limit: number; run_ids?: readonly string[] };
  /** Event names whose triggers the transaction may read (`eventTriggers`): a networked store reads them with BEGIN. */
  eventTriggers?: readonly string[];
  /** A consensus task's rows the transaction will read (`consensus()`): a networked store reads them with BEGIN. */
  consensus?: ConsensusLoad;
}

export interface CommitRequest {
  completions: readonly Completion[];
  claim?: ClaimRequest;
  renew?: RenewRequest;
}

export interface CommitResult {
  claimed: ClaimedStep[];
  /** Completions whose fencing token no longer matched: the step was reclaimed or cancelled. */
  refused: Completion[];
  /**
   * In-flight steps whose lease could not be renewed: stop working on them. `cancelled` when their
   * run was cancelled (the step was stopped on purpose, not taken over by another worker).
   */
  lost: Array<StepKey & { attempt: number; cancelled?: true }>;
  /** Runs that reached a final state in this commit. */
  finished: Array<{ run_id: string; status: RunStatus }>;
  /** Runs that handlers started in this commit. */
  created: string[];
  /** Handler messages (`notify: {type: log}`), to print once the commit has happened (with their run when known). */
  messages: Array<string | { text: string; run_id: string; workflow: string }>;
  /** Sleep and wait steps whose time came in this commit (now ready): there may be more work. */
  woken?: number;
}

export interface RunFilter {
  workflow?: string;
  status?: RunStatus;
  /** Only runs in one of these states (with `status`, both apply). */
  statuses?: readonly RunStatus[];
  /** Created at or after (ms). */
  since?: number;
  /** Created before (ms). */
  until?: number;
  /** How the run was started: `manual`, `api`, `schedule`, `webhook`, `event`… (`trigger_type`). */
  trigger_type?: string;
  /** Only runs whose metadata has every one of these keys with exactly this value. */
  metadata?: Readonly<Record<string, string>>;
  /** Only the runs this run started (its sub-workflows and the runs its handlers started). */
  parent?: string;
  /** Keyset pagination: only runs listed after this one (newest first: older, or as old with a smaller id). */
  after?: { created_at: number; id: string };
  limit?: number;
}

/**
 * Runs that changed (were created, or had their row updated: status, step counts), oldest change
 * first, for following the list of runs: every run whose `(updated_at, id)` comes after `after`.
 */
export interface RunChangeFilter {
  workflow?: string;
  status?: RunStatus;
  trigger_type?: string;
  /** Only changes ordered after this one: a later `updated_at`, or the same with a larger id. */
  after?: { updated_at: number; id: string };
  limit?: number;
}

export interface StepLog {
  run_id: string;
  step_id: string;
  attempt: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
  at: number;
}

export interface WorkerRecord {
  id: string;
  hostname: string;
  /** This machine and PID namespace (hostname, boot id, namespace): where its pid means something. */
  host_id: string;
  pid: number;
  concurrency: number;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
  /** Run this worker is limited to (a one-off `swarm run`), or null for a general worker. */
  scope: string | null;
}

export interface NewStepRow {
  step_id: string;
  step_index: number;
  agent_id: string;
  agent_name: string;
  agent_version: string;
  status: 'pending' | 'ready';
  pending_deps: number;
  /** An element of a map step: its position and its list element (JSON). */
  map_index?: number;
  map_item_json?: string;
}

/** A run's stored trace context and what its step spans record of it (`Store.getRunTrace`). */
export interface RunTraceRecord {
  traceparent: string | null;
  tracestate: string | null;
  trigger_type: string;
  workflow_name: string;
}

export interface NewRunRow {
  id: string;
  workflow_id: string;
  workflow_name: string;
  workflow_version: string;
  trigger_type: string;
  trigger_data_json: string;
  plan_id: string;
  plan_json: string;
  parent_run_id: string | null;
  parent_step_id?: string | null;
  max_parallel: number;
  steps_total: number;
  created_at: number;
  idempotency_key?: string | null;
  metadata_json?: string | null;
  /** The run's `shared_inputs` as JSON text (src/executors/http/shared-inputs.ts); absent or null: none. */
  shared_inputs_json?: string | null;
  /** The W3C trace context of the run's span (only when tracing is on; see src/observability/tracing.ts). */
  traceparent?: string | null;
  tracestate?: string | null;
  /** The head of the run's event chain as inserted (absent: no events yet), so no UPDATE follows the INSERT. */
  event_seq?: number;
  event_hash?: string;
}

/** Fields the ledger sets on a step row. Absent fields are left as they are. */
export interface StepUpdate {
  status?: StepStatus;
  attempt?: number;
  retry_count?: number;
  interruptions?: number;
  pending_deps?: number;
  lease_owner?: string | null;
  lease_until?: number | null;
  available_at?: number | null;
  inputs_json?: string | null;
  outputs_json?: string | null;
  error?: string | null;
  started_at?: number | null;
  completed_at?: number | null;
  duration_ms?: number | null;
  pid?: number | null;
}

export interface ClaimableRow extends StepKey {
  status: 'ready' | 'running';
  attempt: number;
  retry_count: number;
  /** Times the step was taken over after its worker died or lost its lease. */
  interruptions: number;
  lease_owner: string | null;
  /** When it became available to claim (for the queue-wait metric; absent where the store does not read it). */
  available_at?: number | null;
}

export type EventRow = Omit<RunEvent, 'data'> & { data_json: string };

/**
 * The operations the ledger needs inside one transaction. Set-based where it matters, so that a
 * network database can do each in one round trip. Implemented once per backend.
 */
export interface LedgerTx {
  readonly now: number;
  /** Told what each ledger operation flushed, and about the commit (metrics); absent when nobody listens. */
  readonly observer?: CommitObserver | undefined;
  getRunState(runId: string): Promise<RunState | undefined>;
  /**
   * A run's status as this transaction sees it, read without locking its row (PostgreSQL:
   * `getRunState` locks it, and a transaction already holding other runs must not wait for one more).
   * For why a step's lease renewal was refused: a rare path.
   */
  runStatus(runId: string): Promise<RunStatus | undefined>;
  saveRunState(state: RunState): Promise<void>;
  getPlanById(planId: string): Promise<string | undefined>;
  getTriggerData(runId: string): Promise<unknown>;
  insertRun(row: NewRunRow, steps: readonly NewStepRow[]): Promise<void>;
  /**
   * The run created under this idempotency key, if any. Race-safe within the transaction: a
   * concurrent transaction creating a run with the same key is either seen here or waits for this
   * one (SQLite: one writer; PostgreSQL: an advisory lock on the key held until commit).
   */
  runByIdempotencyKey(key: string): Promise<{ id: string; workflow_name: string } | undefined>;
  /** Update a step only if it is still `running` under this attempt (and owner, when given). */
  fencedUpdate(key: StepKey, attempt: number, owner: string | null, update: StepUpdate): Promise<boolean>;
  /** Update a step only if its status is one of `from`. Returns whether it changed. */
  updateStep(key: StepKey, from: readonly string[], update: StepUpdate): Promise<boolean>;
  /** Decrement pending_deps of these steps of a run; those reaching zero become ready. Returns them. */
  releaseDeps(runId: string, stepIds: readonly string[], availableAt: number): Promise<string[]>;
  /** Add step rows to an existing run (a map step's elements), in batched statements. */
  insertSteps(runId: string, steps: readonly NewStepRow[]): Promise<void>;
  /** Delete the element rows of a map step (before it expands again, when its run is retried). */
  deleteMapElements(runId: string, stepIndex: number): Promise<void>;
  /** Cancel the pending and ready elements of a map step. Returns their ids. */
  cancelMapElements(runId: string, stepIndex: number): Promise<string[]>;
  /** The outputs of a map step's elements, in element order. */
  mapOutputs(runId: string, stepIndex: number): Promise<unknown[]>;
  /** Decrement pending_deps of a `waiting` step (a map step counting its elements down); the count left, or undefined when it is not waiting. */
  countDown(key: StepKey): Promise<number | undefined>;
  /** The unfinished sub-workflow runs a run started (parent_step_id set). */
  childRuns(runId: string): Promise<string[]>;
  /**
   * Set every step of the run in one of `from` to `cancelled`. Returns the ids. A waiting step's
   * `error` held what it waited for; it becomes `cancelled while <that>` (CANCELLED_WHILE), so a
   * cancelled step never reads as still waiting.
   */
  cancelSteps(runId: string, from: readonly string[]): Promise<string[]>;
  selectClaimable(limit: number, runIds?: readonly string[]): Promise<ClaimableRow[]>;
  /**
   * Optional: the claimable state of a step row this transaction holds locked and has read, as it is
   * now in this transaction. Lets the ledger claim the steps its own completions made ready without
   * asking the store for candidates.
   */
  lockedStep?(key: StepKey): ClaimableRow | undefined;
  getSteps(runId: string): Promise<StepRecord[]>;
  insertEvents(events: readonly EventRow[]): Promise<void>;
  insertLog(log: StepLog): Promise<void>;
  latestWorkflow(name: string): Promise<WorkflowRecord | undefined>;
  /**
   * Optional (SQLite): the registry generation (`Store.registryGeneration`) as this transaction sees
   * it, read on the connection the transaction already holds.
   */
  registryGeneration?(): Promise<string>;
  /** Optional (SQLite): the secrets generation (`Store.secretsGeneration`) as this transaction sees it. */
  secretsGeneration?(): Promise<string>;
  /** Every registered version of a workflow. */
  workflowVersions(name: string): Promise<WorkflowRecord[]>;
  /**
   * Optional (a networked store): lock and read these runs (in id order) and these step rows up front,
   * so the ledger's checks and updates work against rows already held instead of one query each.
   */
  prefetchRuns?(runIds: readonly string[]): Promise<void>;
  prefetchSteps?(keys: readonly StepKey[]): Promise<void>;
  /** The run concurrency keys' rows (src/engine/concurrency-gate.ts). */
  readonly concurrency: ConcurrencyTx;
  /** Prefetching costs no round trip of its own here (the rows were locked with BEGIN, or travel with other statements). */
  readonly prefetchesCheaply?: boolean;
  /** Decide the pending approvals of these steps of a run. Returns the step ids that had any. */
  decideApprovals(runId: string, stepIds: readonly string[], status: 'approved' | 'rejected', reason: string | null, by: string | null): Promise<string[]>;
  agentVersions(name: string): Promise<AgentRecord[]>;
  /**
   * The enabled event triggers listening for `name` from `source` (their `source:` is that workflow,
   * or absent: any). One indexed read of the triggers table, done for every run that finishes, so a
   * store with no event triggers pays one cheap query (none when the transaction's hint read them).
   */
  eventTriggers(name: string, source: string | null): Promise<EventTriggerRow[]>;
  /** Record an emitted event unless one with its id exists (then false, and nothing is written). */
  insertEmittedEvent(row: EmittedEventRecord): Promise<boolean>;
  getEmittedEvent(id: string): Promise<EmittedEventRecord | undefined>;
  /** The runs an emitted event started (written in the transaction that recorded it). */
  setEmittedEventRuns(id: string, runIds: readonly string[]): Promise<void>;
  /** Durable sleeps, waits and signals (see wait-types.ts). */
  waits(): WaitsTx;
  /** Consensus task rows (see consensus-types.ts), written with the lifecycle events they describe. */
  consensus(): import('./consensus-types.js').ConsensusTx;
  /** A fork's lineage columns and copied checkpoints (see fork-types.ts), written with its RUN_FORKED. */
  fork(): import('./fork-types.js').ForkTx;
}

/** An event trigger as the ledger reads it when an event happens. */
export interface EventTriggerRow {
  /** The trigger's id (its workflow's name). */
  id: string;
  workflow_name: string;
  workflow_version: string;
  event_source: string | null;
  /** The `trigger:` mapping as written (`filter`, `on`, `source`). */
  config: Record<string, unknown>;
}

/** A custom event raised with `swarm events emit` / `POST /api/v1/events` (built-in events live in run logs). */
export interface EmittedEventRecord {
  id: string;
  name: string;
  /** Who raised it, when told (a workflow's name or any label); event triggers with a `source:` match it. */
  source: string | null;
  data_json: string;
  /** The runs it started, in trigger order. */
  run_ids: string[];
  created_at: number;
}

// ---- LLM agent sessions (the loop's journal) ----

/** One agent loop's session: a step of a run (`<run id>/<step id>`) or a chat. */
export interface AgentSessionRecord {
  id: string;
  run_id: string | null;
  step_id: string | null;
  /** The agent the session started with. */
  agent: string;
  /** The agent whose turn it is (or that answered last). */
  current_agent: string;
  trace_id: string | null;
  status: 'running' | 'waiting' | 'completed' | 'failed';
  turns: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  created_at: number;
  updated_at: number;
}

/** A checkpoint write: the session's row, its latest envelope, and the messages added since the last one. */
export interface AgentCheckpointWrite {
  session: Omit<AgentSessionRecord, 'created_at' | 'updated_at'>;
  /** The envelope (JSON text) and its version. The text may be made when first read (a getter): copying the write reads it. */
  envelope: string;
  version: number;
  /**
   * What `envelope` was made from (not stored): the envelope, whose messages are not changed once
   * checkpointed, and each message's JSON as `envelope` has it. A wrapper that rewrites the envelope
   * before it is stored (redaction) works on each message once, not on the whole text each time.
   */
  envelope_parts?: { envelope: EnvelopeLike; messageJson: (m: object) => string };
  /** The step attempt writing it (0 outside workflows): a write from an older attempt is refused. */
  attempt: number;
  /** Messages to append, with their position in the conversation. */
  messages: ReadonlyArray<{
    seq: number;
    role: string;
    agent: string | null;
    content: string | null;
    tool_calls: string | null;
    tool_call_id: string | null;
    name: string | null;
    usage?: { input_tokens: number; output_tokens: number; cost_usd: number } | null;
  }>;
}

export interface AgentMessageRecord {
  session_id: string;
  seq: number;
  role: string;
  agent: string | null;
  content: string | null;
  tool_calls: string | null;
  tool_call_id: string | null;
  name: string | null;
  /** The model call's usage, for assistant messages. */
  usage: { input_tokens: number; output_tokens: number; cost_usd: number } | null;
  at: number;
}

export interface ToolCallRecord {
  session_id: string;
  turn: number;
  call_id: string;
  name: string;
  arguments: string;
  output: string;
  is_error: boolean;
  handoff: string | null;
  context_variables: string | null;
  at: number;
}

export interface SessionFilter {
  run_id?: string;
  trace_id?: string;
  since?: number;
  until?: number;
  status?: string;
  limit?: number;
}

export interface ApprovalRecord {
  run_id: string;
  step_id: string;
  /** The tool call waiting (`step` for an `approval` step). */
  call_id: string;
  tool: string;
  arguments: string;
  status: 'pending' | 'approved' | 'rejected';
  reason: string | null;
  requested_at: number;
  decided_at: number | null;
  decided_by: string | null;
}

/**
 * One API token of the HTTP API (src/auth/tokens.ts). Only the SHA-256 of its secret is stored: the
 * token itself (`swarm_<id>_<secret>`) is shown once, when it is created. `scopes` is a
 * comma-separated list of canonical scopes (`read,runs:write`); times are epoch milliseconds.
 */
export interface ApiTokenRecord {
  id: string;
  name: string;
  secret_hash: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

/**
 * One stored secret, sealed (see src/secrets/vault.ts): the store never sees a value. `scope` is ''
 * for a global secret, else the name of the workflow it belongs to.
 */
export interface SecretRecord {
  name: string;
  scope: string;
  encrypted_value: Buffer;
  value_nonce: Buffer;
  wrapped_key: Buffer;
  kek_id: string;
  created_at: number;
  updated_at: number;
}

/** A run's events as master key rotation re-chains them: the new `prev_hash` and `hash` of each. */
export interface RechainedEvent {
  seq: number;
  prev_hash: string;
  hash: string;
}

/**
 * Everything a master key rotation changes, applied by the store in one transaction (see
 * `Store.rekey`). The functions are synchronous and pure: the store only moves rows.
 */
export interface RekeyPlan {
  /** The key check value the store must hold now; anything else refuses the rotation (another key). */
  oldCheck: string;
  /** The key check value of the new master key, stored in its place. */
  newCheck: string;
  /** The secret with its data key wrapped under the new key (throws when it cannot be read). */
  rewrap(rec: SecretRecord): Pick<SecretRecord, 'wrapped_key' | 'kek_id'>;
  /** A run's chain under the new key, or undefined to leave a chain that does not verify as it is. */
  rechain(runId: string, events: ReadonlyArray<RunEvent & { data_json: string }>): RechainedEvent[] | undefined;
}

export interface RekeyReport {
  secrets: number;
  runs: number;
  events: number;
  /** Runs whose chains did not verify under the old key: left unchanged (they fail `runs verify` as before). */
  unverified: string[];
}

// ---- triggers (one row per workflow with a non-manual `trigger:`; the trigger id is the workflow's name) ----

export type TriggerKind = 'webhook' | 'schedule' | 'event';

/**
 * A workflow's trigger as the store holds it: written with the workflow's registration (the newest
 * registered version's `trigger:` applies), deleted when that trigger becomes `manual`. Schedule
 * state (`next_run_at`, `last_fired_at`, `paused`) survives re-registration.
 *
 * @example
 *   const [nightly] = await store.listTriggers({ type: 'schedule', workflow: 'nightly-report' });
 *   nightly?.cron_expression; // '0 2 * * *'
 */
export interface TriggerRecord {
  /** The trigger's id: the workflow's name (a workflow has one trigger block). */
  id: string;
  workflow_name: string;
  /** The newest registered version, whose trigger applies. */
  workflow_version: string;
  type: TriggerKind;
  /** Follows the workflow's enabled flag. */
  enabled: boolean;
  /** The `trigger:` mapping as written: `${secrets.X}` references stay references, never values. */
  config: Record<string, unknown>;
  /** Webhooks: the path (unique across workflows), else null. */
  webhook_path: string | null;
  /** Webhooks: the scheme's type (`standard` by default; `none` for `auth: none`), else null. */
  webhook_scheme: string | null;
  /** Schedules: the cron pattern as written, else null. */
  cron_expression: string | null;
  /** Schedules: the IANA time zone (`UTC` when not written), else null. */
  timezone: string | null;
  /** Schedules: the next tick (ms), kept by registration and the scheduler; null when unknown. */
  next_run_at: number | null;
  /** Schedules: the tick (ms) last fired (the one in its run's idempotency key), null when never. */
  last_fired_at: number | null;
  /** Schedules: paused by `swarm schedules pause` (no tick fires; missed ones follow catch-up on resume). */
  paused: boolean;
  /** Schedules with `overlap: buffer_one`: the tick (ms) held back until the active run ends, else null. */
  buffered_tick: number | null;
  /** Events: the event name (`on:`), else null. */
  event_type: string | null;
  /** Events: the workflow whose events start this one (`source:`); null = any workflow. */
  event_source: string | null;
  created_at: number;
  updated_at: number;
}

export interface TriggerFilter {
  type?: TriggerKind;
  /** One workflow's trigger (its name). */
  workflow?: string;
  /** Only triggers of enabled workflows. */
  enabledOnly?: boolean;
}

/** A named lease in the store (`leases`): one holder at a time, until `expires_at` on the store's clock. */
export interface LeaseRecord {
  name: string;
  holder: string;
  expires_at: number;
}

// ---- concurrency keys (one row per run of a workflow with `concurrency: {key, limit}`) ----

/**
 * A run's place under its workflow's concurrency key: `active` holds one of the key's `limit` slots,
 * `queued` waits for one (its first steps are held back: pending, not ready), `released` is finished.
 * Keys are per workflow (every version shares them).
 *
 * @example
 *   (await store.runConcurrency([runId])).get(runId); // { key: 'customer-7', limit: 1, state: 'queued', active: 1, … }
 */
export interface RunConcurrency {
  run_id: string;
  workflow_name: string;
  key: string;
  limit: number;
  state: 'active' | 'queued' | 'released';
  /** When it joined the queue (creation, or a retry): queued runs start oldest first. */
  queued_at: number;
}

/** A run's concurrency row with how many runs hold the key's slots now. */
export interface RunConcurrencyInfo extends RunConcurrency {
  active: number;
}

/** What the concurrency gate needs inside a ledger transaction. */
export interface ConcurrencyTx {
  /**
   * Serialize the transactions that count and change one key's slots until this one ends (SQLite:
   * its single writer already does; PostgreSQL: a transaction-scoped advisory lock on the key).
   */
  lockKey(workflow: string, key: string): Promise<void>;
  /** Runs holding a slot of the key. */
  countActive(workflow: string, key: string): Promise<number>;
  get(runId: string): Promise<RunConcurrency | undefined>;
  /** Insert the run's row, or replace it (a retried run queues again). */
  put(row: RunConcurrency): Promise<void>;
  setState(runId: string, state: RunConcurrency['state']): Promise<void>;
  /** The key's queued runs, oldest first. */
  oldestQueued(workflow: string, key: string, limit: number): Promise<RunConcurrency[]>;
}

export type * from './wait-types.js';
export type * from './commit-observer.js';
