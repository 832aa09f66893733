/**
 * Versioned schema migrations for the SQLite store. Each runs once, in order, inside a transaction,
 * and is recorded in `schema_migrations`. Never edit a published migration: add a new one.
 * Table names follow the Swarm registry schema (agents, workflows, workflow_runs, step_executions,
 * secrets, triggers) plus what the engine needs (events, step_logs, workers).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'registry, runs, steps, events',
    sql: `
CREATE TABLE swarm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  path TEXT NOT NULL,
  description TEXT,
  capabilities TEXT,
  inputs_schema TEXT,
  outputs_schema TEXT,
  runtime TEXT NOT NULL DEFAULT 'node',
  memory_mb INTEGER DEFAULT 128,
  timeout_seconds REAL DEFAULT 300,
  triggers TEXT,
  author TEXT,
  tags TEXT,
  manifest TEXT NOT NULL,
  digest TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE(name, version)
);
CREATE INDEX idx_agents_name ON agents(name);

CREATE TABLE workflows (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  path TEXT NOT NULL,
  description TEXT,
  trigger_type TEXT,
  trigger_config TEXT,
  steps TEXT NOT NULL,
  variables TEXT,
  on_error TEXT,
  on_success TEXT,
  enabled INTEGER NOT NULL DEFAULT 1,
  author TEXT,
  tags TEXT,
  manifest TEXT NOT NULL,
  digest TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE(name, version)
);
CREATE INDEX idx_workflows_name ON workflows(name);

-- A run's frozen plan (workflow steps, resolved agents, config), content-addressed: every run of the
-- same workflow version and configuration shares one row, so run rows stay small.
CREATE TABLE run_plans (
  id TEXT PRIMARY KEY,
  plan TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE workflow_runs (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL,
  workflow_name TEXT NOT NULL,
  workflow_version TEXT NOT NULL,
  status TEXT NOT NULL,
  trigger_type TEXT NOT NULL,
  plan_id TEXT NOT NULL REFERENCES run_plans(id),
  parent_run_id TEXT,
  steps_total INTEGER NOT NULL,
  steps_remaining INTEGER NOT NULL,
  running_steps INTEGER NOT NULL DEFAULT 0,
  max_parallel INTEGER NOT NULL,
  event_seq INTEGER NOT NULL DEFAULT 0,
  event_hash TEXT NOT NULL,
  error TEXT,
  error_step TEXT,
  total_vm_time_ms INTEGER NOT NULL DEFAULT 0,
  total_api_tokens INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER,
  updated_at INTEGER NOT NULL,
  -- Last: it may be large, and columns before it are then read without touching its overflow pages.
  trigger_data TEXT NOT NULL
);
CREATE INDEX idx_runs_workflow ON workflow_runs(workflow_name, created_at);
CREATE INDEX idx_runs_status ON workflow_runs(status);
CREATE INDEX idx_runs_created ON workflow_runs(created_at);

CREATE TABLE step_executions (
  id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES workflow_runs(id),
  step_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  agent_name TEXT NOT NULL,
  agent_version TEXT NOT NULL,
  status TEXT NOT NULL,
  pending_deps INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  retry_count INTEGER NOT NULL DEFAULT 0,
  interruptions INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_until INTEGER,
  available_at INTEGER,
  pid INTEGER,
  inputs TEXT,
  outputs TEXT,
  error TEXT,
  queued_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER,
  duration_ms INTEGER,
  api_tokens_used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_steps_run ON step_executions(run_id, step_index);
CREATE INDEX idx_steps_ready ON step_executions(available_at) WHERE status = 'ready';
CREATE INDEX idx_steps_lease ON step_executions(lease_until) WHERE status = 'running';
CREATE INDEX idx_steps_owner ON step_executions(lease_owner) WHERE status = 'running';

CREATE TABLE events (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  step_id TEXT,
  data TEXT NOT NULL,
  at INTEGER NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE step_logs (
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  stdout TEXT NOT NULL,
  stderr TEXT NOT NULL,
  truncated INTEGER NOT NULL DEFAULT 0,
  at INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt)
) WITHOUT ROWID;

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  host_id TEXT NOT NULL,
  pid INTEGER NOT NULL,
  concurrency INTEGER NOT NULL,
  scope TEXT,
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  stopped_at INTEGER
);

CREATE TABLE secrets (
  id TEXT PRIMARY KEY,
  workflow_id TEXT REFERENCES workflows(id),
  name TEXT NOT NULL,
  encrypted_value BLOB,
  scope TEXT DEFAULT 'workflow',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE(workflow_id, name)
);

CREATE TABLE triggers (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL REFERENCES workflows(id),
  type TEXT NOT NULL,
  webhook_path TEXT UNIQUE,
  webhook_secret TEXT,
  cron_expression TEXT,
  next_run_at INTEGER,
  event_source TEXT,
  event_type TEXT,
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);
CREATE INDEX idx_triggers_schedule ON triggers(next_run_at) WHERE type = 'schedule';
CREATE INDEX idx_triggers_event ON triggers(event_source, event_type) WHERE type = 'event';
`,
  },
  {
    version: 2,
    name: 'agent sessions, tool ledger, approvals',
    sql: `
CREATE TABLE agent_sessions (
  id TEXT PRIMARY KEY,
  run_id TEXT,
  step_id TEXT,
  agent TEXT NOT NULL,
  current_agent TEXT NOT NULL,
  trace_id TEXT,
  status TEXT NOT NULL,
  turns INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  envelope TEXT,
  envelope_version INTEGER,
  error TEXT,
  -- The step attempt that wrote the checkpoint: an older attempt (a worker that lost its lease) cannot overwrite it.
  attempt INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX idx_agent_sessions_run ON agent_sessions(run_id, step_id);
CREATE INDEX idx_agent_sessions_updated ON agent_sessions(updated_at);
CREATE INDEX idx_agent_sessions_trace ON agent_sessions(trace_id);

-- The transcript: one row per message, in conversation order.
CREATE TABLE agent_messages (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL,
  agent TEXT,
  content TEXT,
  tool_calls TEXT,
  tool_call_id TEXT,
  name TEXT,
  -- The usage of the model call that produced an assistant message.
  input_tokens INTEGER,
  output_tokens INTEGER,
  cost_usd REAL,
  at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
);
CREATE INDEX idx_agent_messages_at ON agent_messages(at);

-- The exactly-once tool ledger: a call id is executed once per session, whatever crashes.
CREATE TABLE agent_tool_calls (
  session_id TEXT NOT NULL,
  turn INTEGER NOT NULL,
  call_id TEXT NOT NULL,
  name TEXT NOT NULL,
  arguments TEXT NOT NULL,
  output TEXT NOT NULL,
  is_error INTEGER NOT NULL,
  handoff TEXT,
  context_variables TEXT,
  at INTEGER NOT NULL,
  PRIMARY KEY (session_id, turn, call_id)
);

CREATE TABLE approvals (
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  call_id TEXT NOT NULL,
  tool TEXT NOT NULL,
  arguments TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  requested_at INTEGER NOT NULL,
  decided_at INTEGER,
  decided_by TEXT,
  PRIMARY KEY (run_id, step_id, call_id)
);
CREATE INDEX idx_approvals_pending ON approvals(status, requested_at);
`,
  },
  {
    version: 3,
    name: 'ready steps in claim order',
    // The claim walks ready steps in (available_at, run_id, step_index) order and looks each one's
    // run up by its key, stopping at the claim's limit (see SqliteTx.selectClaimable). Before, the
    // planner started from the active runs (idx_runs_status), read every step of each and sorted
    // them: a claim cost grew with the backlog. The same index as PostgreSQL's migration 3.
    sql: `
CREATE INDEX idx_steps_ready_order ON step_executions(available_at, run_id, step_index) WHERE status = 'ready';
DROP INDEX idx_steps_ready;
`,
  },
  {
    version: 4,
    name: 'run idempotency keys and metadata',
    // A client that repeats a request (a retried POST, a redelivered webhook, a schedule tick seen
    // by two processes) gives the same key: the unique index lets one run exist per key, whoever
    // races. NULL keys (most runs) do not collide. The same migration as PostgreSQL's 4.
    sql: `
ALTER TABLE workflow_runs ADD COLUMN idempotency_key TEXT;
ALTER TABLE workflow_runs ADD COLUMN metadata TEXT;
CREATE UNIQUE INDEX idx_runs_idempotency_key ON workflow_runs(idempotency_key);
`,
  },
  {
    version: 5,
    name: 'encrypted secrets',
    // The seed's secrets table (migration 1) was never written: it is replaced by one keyed by
    // (name, scope), holding only sealed values (src/secrets/vault.ts). scope is '' for a global
    // secret, else a workflow name (not a foreign key: a secret may be set before its workflow is
    // registered, and outlives its versions).
    sql: `
DROP TABLE secrets;
CREATE TABLE secrets (
  name TEXT NOT NULL,
  scope TEXT NOT NULL DEFAULT '',
  encrypted_value BLOB NOT NULL,
  value_nonce BLOB NOT NULL,
  wrapped_key BLOB NOT NULL,
  kek_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (name, scope)
) WITHOUT ROWID;
`,
  },
  {
    version: 6,
    name: 'triggers and leases',
    // The seed's triggers table (migration 1) was never written: it gives way to one row per workflow
    // with a non-manual trigger, keyed by the workflow's name, written with the registration (see
    // triggerRowFor in rows.ts; rows for workflows registered before this migration are filled in
    // by the store right after it). leases: named, expiring locks on the store's clock, such as the
    // one that lets exactly one `swarm serve` fire schedules. The same migration as PostgreSQL's 6.
    sql: `
DROP TABLE triggers;
CREATE TABLE triggers (
  id TEXT PRIMARY KEY,
  workflow_name TEXT NOT NULL,
  workflow_version TEXT NOT NULL,
  type TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  config_json TEXT NOT NULL,
  webhook_path TEXT UNIQUE,
  webhook_scheme TEXT,
  cron_expression TEXT,
  timezone TEXT,
  next_run_at INTEGER,
  last_fired_at INTEGER,
  paused INTEGER NOT NULL DEFAULT 0,
  event_type TEXT,
  event_source TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX idx_triggers_schedule ON triggers(next_run_at) WHERE type = 'schedule';
CREATE INDEX idx_triggers_event ON triggers(event_type, event_source) WHERE type = 'event';
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`,
  },
  {
    version: 7,
    name: 'api tokens',
    // Tokens of the HTTP API (src/auth/tokens.ts): the SHA-256 of each token's random secret, never
    // the token; looked up by id, the secret compared in constant time. Revoked tokens stay, for
    // the record. Version 6 belongs to the triggers table; the runner applies any version missing
    // below the newest (see SqliteStore.migrate). The same migration as PostgreSQL's 7.
    sql: `
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  last_used_at INTEGER,
  revoked_at INTEGER
);
`,
  },
  {
    version: 8,
    name: 'emitted events',
    // Custom events (swarm events emit, POST /api/v1/events), one row per event id: a repeat with an
    // id already recorded starts nothing and answers with the runs the first one started. The runs
    // themselves carry the idempotency key event:<event id>:<trigger id>. The same migration as PostgreSQL's 8.
    sql: `
CREATE TABLE emitted_events (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  source TEXT,
  data TEXT NOT NULL,
  run_ids TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX idx_emitted_events_name ON emitted_events(name, created_at);
`,
  },
  {
    version: 9,
    name: 'runs by last change',
    // The list-level run stream (GET /api/v1/runs/stream) reads runs in (updated_at, id) order from
    // a cursor: without this index every read of it would scan every run. The same migration as PostgreSQL's 9.
    sql: `
CREATE INDEX idx_runs_updated ON workflow_runs(updated_at, id);
`,
  },
  {
    version: 10,
    name: 'durable sleep and waits',
    // A sleep or wait step's registration, one row per step (written in the transaction that parks the
    // step): its wake time (sleep end or wait timeout) read by a partial index, so workers find due
    // steps without scanning runs; open waits read by (kind, name) when an event or a signal is
    // recorded. Signals are kept per run until a wait consumes them, oldest first. The same migration
    // as PostgreSQL's 10.
    sql: `
CREATE TABLE step_waits (
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT,
  match TEXT,
  context TEXT,
  buffer INTEGER NOT NULL DEFAULT 0,
  since INTEGER NOT NULL,
  wake_at INTEGER,
  status TEXT NOT NULL,
  event_id TEXT,
  data TEXT,
  resolved_at INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_id)
);
CREATE INDEX idx_step_waits_wake ON step_waits(wake_at) WHERE status = 'waiting' AND wake_at IS NOT NULL;
CREATE INDEX idx_step_waits_open ON step_waits(kind, name) WHERE status = 'waiting';
CREATE INDEX idx_step_waits_event ON step_waits(run_id, event_id) WHERE event_id IS NOT NULL;
CREATE TABLE run_signals (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumed_by TEXT,
  consumed_at INTEGER
);
CREATE INDEX idx_run_signals_open ON run_signals(run_id, name, seq) WHERE consumed_by IS NULL;
CREATE INDEX idx_run_signals_run ON run_signals(run_id, seq);
`,
  },
  {
    version: 11,
    name: 'map elements and sub-workflow runs',
    // Map steps (src/engine/map.ts): each element is a step row '<step>[<i>]' with the map step's
    // step_index, its position in map_index and its list element in map_item. Sub-workflow steps
    // (src/engine/nesting.ts): a child run names the step that started it (parent_step_id next to
    // parent_run_id); the index serves the run list's parent filter and cancelling a parent's
    // children. Versions 10 and 12 belong to other features. The same migration as PostgreSQL's 11.
    sql: `
ALTER TABLE workflow_runs ADD COLUMN parent_step_id TEXT;
ALTER TABLE step_executions ADD COLUMN map_index INTEGER;
ALTER TABLE step_executions ADD COLUMN map_item TEXT;
CREATE INDEX idx_runs_parent ON workflow_runs(parent_run_id, created_at) WHERE parent_run_id IS NOT NULL;
`,
  },
  {
    version: 12,
    name: 'run concurrency keys',
    // One row per run of a workflow with `concurrency: {key, limit}`: the key it resolved to and
    // whether it holds one of the key's slots (active), waits for one (queued) or is finished
    // (released). Counted and promoted through idx_run_concurrency_key in the transactions that create
    // and finish runs (src/engine/concurrency-gate.ts). The same migration as PostgreSQL's 12.
    sql: `
CREATE TABLE run_concurrency (
  run_id TEXT PRIMARY KEY,
  workflow_name TEXT NOT NULL,
  concurrency_key TEXT NOT NULL,
  max_active INTEGER NOT NULL,
  state TEXT NOT NULL,
  queued_at INTEGER NOT NULL
);
CREATE INDEX idx_run_concurrency_key ON run_concurrency(workflow_name, concurrency_key, state, queued_at, run_id);
`,
  },
  {
    version: 13,
    name: 'buffered schedule ticks, emitted events by age',
    // buffered_tick: the tick (ms) a `buffer_one` schedule holds back until its active run ends, in
    // the store so that the next scheduler after a failover fires it (src/triggers/scheduler.ts).
    // The index lets the retention prune emitted events by age without reading them all
    // (src/triggers/retention.ts). Versions 10 to 12 belong to other features. The same migration as PostgreSQL's 13.
    sql: `
ALTER TABLE triggers ADD COLUMN buffered_tick INTEGER;
CREATE INDEX idx_emitted_events_created ON emitted_events(created_at);
`,
  },
  {
    version: 14,
    name: 'registry generation',
    // Every write to the registry (agents, workflows) bumps swarm_meta's registry_generation in its
    // own transaction, by triggers in the store: caches of workflows, plans and webhook triggers
    // (src/engine/registry-cache.ts) stay correct whatever process or build writes the registry
    // (a build older than this migration refuses the store: STORE_SCHEMA_NEWER). The row is made
    // again if it was ever removed: by INSERT … WHERE NOT EXISTS, because a trigger's OR IGNORE
    // gives way to the conflict handling of the statement that fired it. The same migration as
    // PostgreSQL's 14.
    sql: `
INSERT INTO swarm_meta (key, value) VALUES ('registry_generation', '0') ON CONFLICT(key) DO NOTHING;
CREATE TRIGGER IF NOT EXISTS registry_generation_agents_insert AFTER INSERT ON agents BEGIN INSERT INTO swarm_meta (key, value) SELECT 'registry_generation', '0' WHERE NOT EXISTS (SELECT 1 FROM swarm_meta WHERE key = 'registry_generation'); UPDATE swarm_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_generation'; END;
CREATE TRIGGER IF NOT EXISTS registry_generation_agents_update AFTER UPDATE ON agents BEGIN INSERT INTO swarm_meta (key, value) SELECT 'registry_generation', '0' WHERE NOT EXISTS (SELECT 1 FROM swarm_meta WHERE key = 'registry_generation'); UPDATE swarm_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_generation'; END;
CREATE TRIGGER IF NOT EXISTS registry_generation_agents_delete AFTER DELETE ON agents BEGIN INSERT INTO swarm_meta (key, value) SELECT 'registry_generation', '0' WHERE NOT EXISTS (SELECT 1 FROM swarm_meta WHERE key = 'registry_generation'); UPDATE swarm_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_generation'; END;
CREATE TRIGGER IF NOT EXISTS registry_generation_workflows_insert AFTER INSERT ON workflows BEGIN INSERT INTO swarm_meta (key, value) SELECT 'registry_generation', '0' WHERE NOT EXISTS (SELECT 1 FROM swarm_meta WHERE key = 'registry_generation'); UPDATE swarm_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_generation'; END;
CREATE TRIGGER IF NOT EXISTS registry_generation_workflows_update AFTER UPDATE ON workflows BEGIN INSERT INTO swarm_meta (key, value) SELECT 'registry_generation', '0' WHERE NOT EXISTS (SELECT 1 FROM swarm_meta WHERE key = 'registry_generation'); UPDATE swarm_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_generation'; END;
CREATE TRIGGER IF NOT EXISTS registry_generation_workflows_delete AFTER DELETE ON workflows BEGIN INSERT INTO swarm_meta (key, value) SELECT 'registry_generation', '0' WHERE NOT EXISTS (SELECT 1 FROM swarm_meta WHERE key = 'registry_generation'); UPDATE swarm_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'registry_generation'; END;
`,
  },
  {
    version: 15,
    name: 'run trace context',
    // The W3C trace context (traceparent, tracestate) of the run's invoke_workflow span, written with
    // the run row when tracing is on (NULL otherwise): every step attempt, in any process, starts its
    // span as a child of it (src/observability/tracing.ts). The same migration as PostgreSQL's 15.
    sql: `
ALTER TABLE workflow_runs ADD COLUMN traceparent TEXT;
ALTER TABLE workflow_runs ADD COLUMN tracestate TEXT;
`,
  },
  {
    version: 16,
    name: 'retention: finished runs by completion, uncompacted sessions',
    // swarm gc and the retention policy (src/retention/) walk finished runs oldest first by
    // (completed_at, id) from a cursor, and compact the checkpoints of finished LLM sessions not
    // compacted since their last checkpoint (compacted_at NULL; every checkpoint sets it back to
    // NULL). Both partial indexes keep the walks off the rest of the table. Version 15 belongs to
    // another feature. The same migration as PostgreSQL's 16.
    sql: `
CREATE INDEX idx_runs_completed ON workflow_runs(completed_at, id) WHERE completed_at IS NOT NULL;
ALTER TABLE agent_sessions ADD COLUMN compacted_at INTEGER;
CREATE INDEX idx_agent_sessions_uncompacted ON agent_sessions(updated_at) WHERE compacted_at IS NULL;
`,
  },
  {
    version: 17,
    name: 'live workers index',
    // The metrics' live-workers gauge (and listWorkers(activeSince)) read the workers not stopped by
    // heartbeat: an index of those alone, so stopped workers of old restarts are never read. IF NOT
    // EXISTS: harmless if a file had it recorded and undone. The same migration as PostgreSQL's 17.
    sql: `CREATE INDEX IF NOT EXISTS idx_workers_live ON workers(heartbeat_at) WHERE stopped_at IS NULL;`,
  },
  {
    version: 18,
    name: 'run budgets',
    // One row per budget scope (a run's budget, keyed by its root run so sub-workflows draw from it;
    // a step's; an agent's within a step) with used and reserved counters, and one row per open
    // reservation and scope: a model call holds its worst case until it settles, and a reservation a
    // crash left behind expires and is given back (src/guardrails/budget.ts). The same migration as
    // PostgreSQL's 18.
    sql: `
CREATE TABLE IF NOT EXISTS budget_scopes (
  id TEXT PRIMARY KEY,
  root_run_id TEXT NOT NULL,
  limits TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  used_tokens_in INTEGER NOT NULL DEFAULT 0,
  used_tokens_out INTEGER NOT NULL DEFAULT 0,
  used_cost_usd REAL NOT NULL DEFAULT 0,
  used_model_calls INTEGER NOT NULL DEFAULT 0,
  used_tool_calls INTEGER NOT NULL DEFAULT 0,
  used_handoff_depth INTEGER NOT NULL DEFAULT 0,
  reserved_tokens_in INTEGER NOT NULL DEFAULT 0,
  reserved_tokens_out INTEGER NOT NULL DEFAULT 0,
  reserved_cost_usd REAL NOT NULL DEFAULT 0,
  reserved_model_calls INTEGER NOT NULL DEFAULT 0,
  reserved_tool_calls INTEGER NOT NULL DEFAULT 0,
  warned TEXT NOT NULL DEFAULT '[]',
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_budget_scopes_root ON budget_scopes(root_run_id);
CREATE TABLE IF NOT EXISTS budget_reservations (
  id TEXT NOT NULL,
  scope_id TEXT NOT NULL,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  model_calls INTEGER NOT NULL DEFAULT 0,
  tool_calls INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope_id, id)
);
CREATE INDEX IF NOT EXISTS idx_budget_reservations_expiry ON budget_reservations(scope_id, expires_at);
`,
  },
  {
    version: 19,
    name: 'circuit breakers',
    // The circuit breakers' shared state (src/guardrails/breakers.ts): one row per breaker key,
    // read by primary key on a call's fast path, changed in one transaction per transition, so every
    // worker of the deployment sees one worker's discovery. No row: closed. Version 18 belongs to
    // another feature. The same migration as PostgreSQL's 19.
    sql: `
CREATE TABLE IF NOT EXISTS circuit_breakers (
  key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
  failures INTEGER NOT NULL DEFAULT 0,
  successes INTEGER NOT NULL DEFAULT 0,
  window_started_at INTEGER NOT NULL DEFAULT 0,
  opened_at INTEGER,
  probes INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 20,
    name: 'vector memory',
    // The agents' memories (src/memory/). The vectors live in sqlite-vec vec0 tables, one per
    // dimension count (memory_vectors_<n>), made on first use by memory-sql.ts: the extension is
    // loaded only by a store that uses memory, so this migration needs none. dedup_key makes a write
    // idempotent (a replayed step writes nothing twice). The same migration as PostgreSQL's 20.
    sql: `
CREATE TABLE memories (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL,
  text TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  source TEXT NOT NULL CHECK (source IN ('conversation_summary', 'tool_result', 'explicit')),
  run_id TEXT,
  step_id TEXT,
  session_id TEXT,
  dedup_key TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  dimensions INTEGER NOT NULL
);
CREATE INDEX idx_memories_namespace ON memories(namespace, id);
`,
  },
  {
    version: 21,
    name: 'sw4rm router and registry',
    // SW4RM (src/sw4rm/router/, registry/): one row per message per recipient (seq is the StreamItem
    // seq), the idempotency tokens of the dedup window, the registered agents. Dead letters are rows
    // in state 'dead' (the view names them). Partial indexes keep the sweeps off the hot rows.
    sql: `
CREATE TABLE sw4rm_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  producer_id TEXT NOT NULL,
  recipient TEXT NOT NULL,
  message_type TEXT NOT NULL,
  idempotency_token TEXT,
  envelope BLOB NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'in_flight', 'acked', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  dead_reason TEXT,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX idx_sw4rm_messages_id ON sw4rm_messages(message_id, recipient);
CREATE INDEX idx_sw4rm_messages_inbox ON sw4rm_messages(recipient, state, seq);
CREATE INDEX idx_sw4rm_messages_lease ON sw4rm_messages(lease_until) WHERE state = 'in_flight';
CREATE INDEX idx_sw4rm_messages_expiry ON sw4rm_messages(expires_at) WHERE state = 'queued' AND expires_at IS NOT NULL;
CREATE INDEX idx_sw4rm_messages_acked ON sw4rm_messages(updated_at) WHERE state = 'acked';
CREATE VIEW sw4rm_dead_letters AS SELECT * FROM sw4rm_messages WHERE state = 'dead';
CREATE TABLE sw4rm_dedup (
  producer_id TEXT NOT NULL,
  idempotency_token TEXT NOT NULL,
  message_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (producer_id, idempotency_token)
);
CREATE TABLE sw4rm_agents (
  agent_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  descriptor TEXT NOT NULL,
  communication_class TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('available', 'unavailable', 'deregistered')),
  agent_state TEXT NOT NULL DEFAULT 'AGENT_STATE_UNSPECIFIED',
  health TEXT NOT NULL DEFAULT '{}',
  implicit INTEGER NOT NULL DEFAULT 0,
  last_heartbeat INTEGER NOT NULL,
  registered_at INTEGER NOT NULL,
  deregistered_at INTEGER,
  deregister_reason TEXT
);
`,
  },
  // migration 21: sw4rm router (messages, deliveries, dead letters, dedup)
  {
    version: 22,
    name: 'sw4rm scheduler, negotiation and HITL',
    // The SW4RM scheduler side's state (src/sw4rm/scheduler/): tasks, delegations and cancellation
    // flags, negotiations, negotiation rooms and votes, policies and HITL invocations, as JSON
    // documents keyed by (kind, key) and found by group (a task's scope, a room's artifact) or owner
    // (a task's agent); src/store/sw4rm-sched-types.ts. The same migration as PostgreSQL's 22.
    sql: `
CREATE TABLE IF NOT EXISTS sw4rm_sched_docs (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  grp TEXT NOT NULL,
  owner TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT '',
  doc TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS idx_sw4rm_sched_docs_grp ON sw4rm_sched_docs(grp, kind);
CREATE INDEX IF NOT EXISTS idx_sw4rm_sched_docs_owner ON sw4rm_sched_docs(kind, owner);
`,
  },
  // migration 22: sw4rm registry, scheduler, negotiation and HITL
  // migration 23: sw4rm agent state (activity buffer, worktree bindings)
  {
    version: 23,
    name: 'sw4rm agent state',
    // SW4RM agents' own state (src/sw4rm/core/, StorePersistence): one JSON document per
    // (agent_id, kind, key) — the activity buffer, the worktree binding — written whole by the
    // core's batched saves. Versions 21 and 22 belong to other SW4RM parts. The same migration as
    // PostgreSQL's 23.
    sql: `
CREATE TABLE IF NOT EXISTS sw4rm_agent_state (
  agent_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL DEFAULT '',
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, kind, key)
);
`,
  },
  // migration 24: executors registry
  {
    version: 24,
    name: 'executors',
    // Remote executors (src/executors/http/): name → base URL, the secret holding the bearer token,
    // the Ed25519 public key pinned when added. And a run's `shared_inputs` (JSON text, null when
    // none), merged into the inputs of each of its http-runtime steps. The same migration as PostgreSQL's 24.
    sql: `
CREATE TABLE IF NOT EXISTS executors (
  name TEXT PRIMARY KEY,
  base_url TEXT NOT NULL,
  token_secret TEXT,
  public_key TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
ALTER TABLE workflow_runs ADD COLUMN shared_inputs TEXT;
`,
  },
  // migration 25: consensus tasks: tasks, candidates, verifier results, votes, decisions
  {
    version: 25,
    name: 'consensus tasks',
    // Consensus tasks (src/consensus/driver/): the task, its candidates, verifier results, votes
    // (commitment, then reveal), the decision (one per task: the finality rule) and cost per bucket.
    sql: `
CREATE TABLE IF NOT EXISTS consensus_tasks (
  task_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  task_type TEXT NOT NULL,
  contract TEXT NOT NULL,
  members TEXT NOT NULL,
  status TEXT NOT NULL,
  stage TEXT NOT NULL,
  round INTEGER NOT NULL DEFAULT 1,
  explore_round INTEGER NOT NULL DEFAULT 0,
  round_started_at INTEGER,
  reason_code INTEGER,
  reason TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_consensus_tasks_run ON consensus_tasks(run_id);
CREATE INDEX IF NOT EXISTS idx_consensus_tasks_status ON consensus_tasks(status, created_at);
CREATE TABLE IF NOT EXISTS consensus_candidates (
  task_id TEXT NOT NULL,
  proposer_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  candidate_hash TEXT NOT NULL,
  output TEXT NOT NULL,
  output_bytes INTEGER NOT NULL,
  evidence TEXT NOT NULL,
  cost_usd REAL NOT NULL DEFAULT 0,
  signature TEXT NOT NULL,
  event_seq INTEGER NOT NULL,
  event_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (task_id, proposer_id, round)
);
CREATE INDEX IF NOT EXISTS idx_consensus_candidates_hash ON consensus_candidates(task_id, candidate_hash);
CREATE TABLE IF NOT EXISTS consensus_results (
  task_id TEXT NOT NULL,
  candidate_hash TEXT NOT NULL,
  verifier_id TEXT NOT NULL,
  policy_id TEXT NOT NULL,
  status TEXT NOT NULL,
  reason_codes TEXT NOT NULL,
  reason TEXT,
  score REAL NOT NULL,
  evidence TEXT NOT NULL,
  cost_usd REAL NOT NULL DEFAULT 0,
  signature TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (task_id, candidate_hash, verifier_id)
);
CREATE TABLE IF NOT EXISTS consensus_votes (
  task_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  voter_id TEXT NOT NULL,
  commitment TEXT NOT NULL,
  commit_signature TEXT NOT NULL,
  committed_at INTEGER NOT NULL,
  sealed TEXT,
  candidate_hash TEXT,
  vote TEXT,
  salt TEXT,
  reveal_signature TEXT,
  revealed_at INTEGER,
  reveal_event_seq INTEGER,
  reveal_event_hash TEXT,
  PRIMARY KEY (task_id, round, voter_id)
);
CREATE TABLE IF NOT EXISTS consensus_decisions (
  task_id TEXT PRIMARY KEY,
  round INTEGER NOT NULL,
  candidate_hash TEXT NOT NULL,
  output TEXT NOT NULL,
  tally TEXT NOT NULL,
  quorum INTEGER NOT NULL,
  proof TEXT NOT NULL,
  committed_at INTEGER NOT NULL,
  finalized_at INTEGER
);
CREATE TABLE IF NOT EXISTS consensus_costs (
  task_id TEXT NOT NULL,
  bucket TEXT NOT NULL,
  usd REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, bucket)
);
`,
  },
  // migration 26: knowledge store: decisions, evidence, track record
  {
    version: 26,
    name: 'knowledge store',
    // The knowledge store of consensus decisions (src/consensus/knowledge/): one row per decided
    // task (EXACT lookups by task type and canonical inputs hash), each proposer's candidates in it,
    // the track record per (task type, proposer) kept by the same transaction, and the lookups log.
    // JSON columns are text, read back as written. The vectors for SIMILAR lookups are memories
    // (migration 20), namespace `knowledge:<task type>`. The same migration as PostgreSQL's 26.
    sql: `
CREATE TABLE IF NOT EXISTS knowledge_decisions (
  task_id TEXT PRIMARY KEY,
  task_type TEXT NOT NULL,
  run_id TEXT,
  inputs_hash TEXT NOT NULL,
  inputs TEXT NOT NULL,
  text TEXT NOT NULL,
  candidate_hash TEXT NOT NULL,
  output TEXT NOT NULL,
  evidence TEXT NOT NULL,
  decision TEXT NOT NULL,
  cost TEXT NOT NULL,
  total_usd REAL NOT NULL DEFAULT 0,
  decided_at INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_knowledge_decisions_exact ON knowledge_decisions(task_type, inputs_hash, decided_at DESC, task_id DESC);
CREATE INDEX IF NOT EXISTS idx_knowledge_decisions_type ON knowledge_decisions(task_type, decided_at DESC, task_id DESC);
CREATE TABLE IF NOT EXISTS knowledge_proposals (
  task_id TEXT NOT NULL REFERENCES knowledge_decisions(task_id) ON DELETE CASCADE,
  proposer_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  candidate_hash TEXT NOT NULL,
  task_type TEXT NOT NULL,
  won INTEGER NOT NULL,
  verification TEXT NOT NULL CHECK (verification IN ('passed', 'failed', 'inconclusive', 'unverified')),
  cost_usd REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, proposer_id, round, candidate_hash)
);
CREATE TABLE IF NOT EXISTS knowledge_track_record (
  task_type TEXT NOT NULL,
  proposer_id TEXT NOT NULL,
  proposed INTEGER NOT NULL DEFAULT 0,
  won INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  inconclusive INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (task_type, proposer_id)
);
CREATE TABLE IF NOT EXISTS knowledge_lookups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL,
  task_type TEXT NOT NULL,
  inputs_hash TEXT NOT NULL,
  mode TEXT NOT NULL,
  hit_type TEXT NOT NULL CHECK (hit_type IN ('EXACT', 'SIMILAR', 'MISS')),
  decision_task_id TEXT,
  similarity REAL,
  rejected TEXT NOT NULL DEFAULT '[]',
  looked_up_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_knowledge_lookups_task ON knowledge_lookups(task_id, id);
`,
  },
  // migration 27: signing keys
  {
    version: 27,
    name: 'signing keys',
    // Kernel-held Ed25519 keys (src/identity/keys.ts): consensus members that the kernel signs for,
    // and later run certificates. The private key is sealed under the master key as secrets are
    // (envelope encryption, bound to the key's name). The same migration as PostgreSQL's 27.
    sql: `
CREATE TABLE IF NOT EXISTS signing_keys (
  name TEXT PRIMARY KEY,
  public_key TEXT NOT NULL,
  private_key_enc TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
`,
  },
  // migration 28: run lineage (forks)
  {
    version: 28,
    name: 'run lineage',
    // A fork (src/branching/fork.ts) is a new run of its parent's plan that copies the parent's
    // checkpoints up to a step: \`parent_run_id\` names the parent (the column sub-workflow and
    // handler-started runs already use), \`fork_step_id\` the step it reran from (set only on forks, so
    // it is what tells a fork from a sub-workflow run), \`fork_turn\` the LLM turn it resumed at. The
    // partial index serves the lineage's descendants walk. The same migration as PostgreSQL's 28.
    sql: `
ALTER TABLE workflow_runs ADD COLUMN fork_step_id TEXT;
ALTER TABLE workflow_runs ADD COLUMN fork_turn INTEGER;
CREATE INDEX IF NOT EXISTS idx_runs_forks ON workflow_runs(parent_run_id, created_at) WHERE fork_step_id IS NOT NULL;
`,
  },
  // migration 29: imported bundles, encryption keys
  {
    version: 29,
    name: 'imported bundles, age encryption keys',
    // A run imported from a verified bundle (src/branching/import.ts) keeps the bundle's exact bytes,
    // so exporting it again gives the original file and a fork of it names the original digest.
    // signing_keys gains a type: 'ed25519' (signing, the default for every existing key) or 'age'
    // (an X25519 age identity that encrypted bundles are decrypted with), sealed the same way.
    // The same migration as PostgreSQL's 29.
    sql: `
ALTER TABLE signing_keys ADD COLUMN key_type TEXT NOT NULL DEFAULT 'ed25519';
CREATE TABLE IF NOT EXISTS imported_bundles (
  run_id TEXT PRIMARY KEY,
  bundle_sha256 TEXT NOT NULL,
  certificate_sha256 TEXT NOT NULL,
  source_run_id TEXT NOT NULL,
  bundle BLOB NOT NULL,
  imported_at INTEGER NOT NULL
);
`,
  },
  // migration 31: consensus task list indexes
  {
    version: 31,
    name: 'consensus task list indexes',
    // The tasks API pages with a keyset cursor in the list's order (created_at descending, then
    // task_id), optionally for one task type: both walk an index instead of sorting the table.
    // The same migration as PostgreSQL's 31.
    sql: `
CREATE INDEX IF NOT EXISTS idx_consensus_tasks_created ON consensus_tasks(created_at, task_id);
CREATE INDEX IF NOT EXISTS idx_consensus_tasks_type ON consensus_tasks(task_type, created_at, task_id);
`,
  },
  // migration 32: a breaker's cool-down
  {
    version: 32,
    name: 'circuit breaker cool-down',
    // An open breaker keeps the cool-down it was opened with (the settings of the agent whose call
    // opened it: an agent's guardrails.breakers may set its own), so every worker lets the probe
    // through at the same time and \`swarm breakers list\` shows that time. NULL (rows written
    // before): the deployment's cool-down. The same migration as PostgreSQL's 32.
    sql: `
ALTER TABLE circuit_breakers ADD COLUMN cooldown_ms INTEGER;
`,
  },
];

/** The newest version (not the count: versions may be applied out of order, see SqliteStore.migrate). */
export const SCHEMA_VERSION = Math.max(0, ...MIGRATIONS.map((m) => m.version));
