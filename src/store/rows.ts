import { canonicalJson } from '../core/canonical-json.js';
import { ExitCode, StoreError, UserError } from '../core/errors.js';
import { digestJson, type RunEvent } from '../core/events.js';
import { agentRef, pickRecord, type AgentManifest } from '../core/manifest/agent.js';
import { nextTicks, parseScheduleSpec } from '../triggers/schedule.js';
import type { WorkflowManifest } from '../core/manifest/workflow.js';
import type { PutResult } from './store.js';
import type { AgentMessageRecord, ApiTokenRecord, AgentRecord, AgentSessionRecord, ApprovalRecord, RunRecord, SecretRecord, SessionFilter, StepLog, StepRecord, StepUpdate, ToolCallRecord, TriggerKind, TriggerRecord, WorkerRecord, WorkflowRecord } from './types.js';

import type { EmittedEventRecord, EventTriggerRow } from './types.js';

/** Row mapping shared by the SQL backends: columns as stored → the records the Store returns. */
export type Row = Record<string, unknown>;

export const RUN_COLUMNS = `id, plan_id, workflow_id, workflow_name, workflow_version, status, trigger_type, trigger_data, parent_run_id, parent_step_id, steps_total, steps_remaining,
  running_steps, max_parallel, event_seq, event_hash, error, error_step, created_at, started_at, completed_at, updated_at, idempotency_key, metadata,
  fork_step_id, fork_turn`;

export function stepRowId(runId: string, stepId: string): string {
  return `${runId}/${stepId}`;
}

export function parseJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v === undefined ? null : v;
}

export function toAgent(r: Row): AgentRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    version: r.version as string,
    path: r.path as string,
    manifest: JSON.parse(r.manifest as string) as AgentRecord['manifest'],
    digest: r.digest as string,
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
  };
}

export function toWorkflow(r: Row): WorkflowRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    version: r.version as string,
    path: r.path as string,
    manifest: JSON.parse(r.manifest as string) as WorkflowRecord['manifest'],
    enabled: r.enabled === 1,
    digest: r.digest as string,
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
  };
}

export function toRun(r: Row): RunRecord {
  return {
    id: r.id as string,
    plan_id: r.plan_id as string,
    workflow_id: r.workflow_id as string,
    workflow_name: r.workflow_name as string,
    workflow_version: r.workflow_version as string,
    status: r.status as RunRecord['status'],
    trigger_type: r.trigger_type as string,
    trigger_data: parseJson(r.trigger_data),
    parent_run_id: (r.parent_run_id as string | null) ?? null,
    parent_step_id: (r.parent_step_id as string | null) ?? null,
    steps_total: r.steps_total as number,
    steps_remaining: r.steps_remaining as number,
    running_steps: r.running_steps as number,
    max_parallel: r.max_parallel as number,
    event_seq: r.event_seq as number,
    event_hash: r.event_hash as string,
    error: (r.error as string | null) ?? null,
    error_step: (r.error_step as string | null) ?? null,
    created_at: r.created_at as number,
    started_at: (r.started_at as number | null) ?? null,
    completed_at: (r.completed_at as number | null) ?? null,
    updated_at: r.updated_at as number,
    idempotency_key: (r.idempotency_key as string | null) ?? null,
    metadata: r.metadata === null || r.metadata === undefined ? null : (JSON.parse(r.metadata as string) as Record<string, string>),
    fork_step_id: (r.fork_step_id as string | null | undefined) ?? null,
    fork_turn: r.fork_turn === null || r.fork_turn === undefined ? null : Number(r.fork_turn),
  };
}

export function toStep(r: Row): StepRecord {
  return {
    run_id: r.run_id as string,
    step_id: r.step_id as string,
    step_index: r.step_index as number,
    agent_id: r.agent_id as string,
    agent_name: r.agent_name as string,
    agent_version: r.agent_version as string,
    status: r.status as StepRecord['status'],
    pending_deps: r.pending_deps as number,
    attempt: r.attempt as number,
    retry_count: r.retry_count as number,
    lease_owner: (r.lease_owner as string | null) ?? null,
    lease_until: (r.lease_until as number | null) ?? null,
    available_at: (r.available_at as number | null) ?? null,
    outputs: parseJson(r.outputs),
    error: (r.error as string | null) ?? null,
    queued_at: r.queued_at as number,
    started_at: (r.started_at as number | null) ?? null,
    completed_at: (r.completed_at as number | null) ?? null,
    duration_ms: (r.duration_ms as number | null) ?? null,
    ...(r.map_index !== null && r.map_index !== undefined ? { map_index: Number(r.map_index) } : {}),
    ...(r.inputs !== null && r.inputs !== undefined ? { inputs: parseJson(r.inputs) } : {}),
  };
}

export function toEvent(r: Row): RunEvent & { data_json: string } {
  return {
    run_id: r.run_id as string,
    seq: r.seq as number,
    type: r.type as RunEvent['type'],
    step_id: (r.step_id as string | null) ?? null,
    data: JSON.parse(r.data as string) as Record<string, unknown>,
    data_json: r.data as string,
    at: r.at as number,
    prev_hash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

export function toStepLog(r: Row): StepLog {
  return {
    run_id: r.run_id as string,
    step_id: r.step_id as string,
    attempt: r.attempt as number,
    stdout: r.stdout as string,
    stderr: r.stderr as string,
    truncated: r.truncated === 1,
    at: r.at as number,
  };
}

/** The step_executions column behind each StepUpdate field. */
export const UPDATE_COLUMNS: Record<keyof StepUpdate, string> = {
  status: 'status',
  attempt: 'attempt',
  retry_count: 'retry_count',
  interruptions: 'interruptions',
  pending_deps: 'pending_deps',
  lease_owner: 'lease_owner',
  lease_until: 'lease_until',
  available_at: 'available_at',
  inputs_json: 'inputs',
  outputs_json: 'outputs',
  error: 'error',
  started_at: 'started_at',
  completed_at: 'completed_at',
  duration_ms: 'duration_ms',
  pid: 'pid',
};

const SET_CLAUSES = new Map<string, string>();

/**
 * `SET a = <p1>, b = <p2>, …` for the fields present in an update, with the backend's placeholder
 * (`?` or `$n`), cached by shape (a few dozen shapes in all), and the values in the same order.
 */
export function setClause(update: StepUpdate, placeholder: (i: number) => string): { set: string; keys: Array<keyof StepUpdate> } {
  const keys = (Object.keys(update) as Array<keyof StepUpdate>).filter((k) => update[k] !== undefined);
  const shape = `${placeholder(1)}:${keys.join(',')}`;
  let set = SET_CLAUSES.get(shape);
  if (set === undefined) {
    set = keys.map((k, i) => `${UPDATE_COLUMNS[k]} = ${placeholder(i + 1)}`).join(', ');
    SET_CLAUSES.set(shape, set);
  }
  return { set, keys };
}

export function toWorker(r: Row): WorkerRecord {
  return {
    id: r.id as string,
    hostname: r.hostname as string,
    host_id: r.host_id as string,
    pid: r.pid as number,
    concurrency: r.concurrency as number,
    scope: (r.scope as string | null) ?? null,
    started_at: r.started_at as number,
    heartbeat_at: r.heartbeat_at as number,
    stopped_at: (r.stopped_at as number | null) ?? null,
  };
}

/**
 * An agent package's digest: sha256 (hex) of the canonical JSON of its manifest (keys sorted), what
 * the registry keeps of the package. Where the package is on disk is not part of it: the same
 * agent.yaml registered from two directories, or on two machines (a bundle's `agents.json` names it),
 * has one digest. Its code is not part of it either: the registry does not keep it (a step reads it
 * from the package when it runs).
 *
 * @example
 *   agentDigest(manifest) === agentRecord(manifest, '/anywhere').digest  // true
 */
export function agentDigest(manifest: AgentManifest): string {
  return digestJson(canonicalJson(manifest));
}

/** The registry record of an agent package (its digest covers the manifest, not where it lives). */
export function agentRecord(manifest: AgentManifest, dir: string, now = Date.now()): AgentRecord {
  return {
    id: agentRef(manifest),
    name: manifest.name,
    version: manifest.version,
    path: dir,
    manifest,
    digest: agentDigest(manifest),
    created_at: now,
    updated_at: now,
  };
}

/**
 * The digest agents were given before it left the directory out (of `{manifest, dir}`): rows
 * registered then hold it, and bundles exported then name it. Compared, never written.
 */
function legacyAgentDigest(manifest: AgentManifest, dir: string): string {
  return digestJson(JSON.stringify({ manifest, dir }));
}

/**
 * Whether a registered agent (`digest`, `manifest`, and its `path` when known) has the content
 * `digest` names (hex, or `sha256:<hex>` as a bundle spells it). A row written before digests left
 * the directory out holds a digest of `{manifest, dir}`: its manifest decides. A digest of that old
 * form (a bundle exported then) names it too when it is the old digest of the same manifest at the
 * same `path`.
 */
export function sameAgentContent(stored: { digest: string; manifest: AgentManifest; path?: string }, digest: string): boolean {
  const d = bareDigest(digest);
  return stored.digest === d || agentDigest(stored.manifest) === d || (stored.path !== undefined && legacyAgentDigest(stored.manifest, stored.path) === d);
}

/**
 * What putting an agent does, given the row registered under its name and version (digest, path,
 * manifest as stored): `created`; the same content is `unchanged`, and is written again (`write`)
 * only when the row names another directory (the package was registered from elsewhere: runs now
 * use this one) or holds a digest of the old form; other content is `replaced` with `force`, else
 * AGENT_VERSION_EXISTS.
 */
export function agentPut(existing: Row | undefined, rec: AgentRecord, force: boolean): { result: PutResult; write: boolean } {
  return registryPut('agents', existing, rec, force, (stored) => sameAgentContent(stored as { digest: string; manifest: AgentManifest }, rec.digest), existing?.path !== rec.path);
}

/**
 * A put of (name, version) given the row registered under it: `created`; content that `same` finds
 * the same is `unchanged`, written again only when its stored digest is of the old form or it was
 * registered from `elsewhere`; other content `replaced` with `force`, else a version conflict.
 */
function registryPut(
  table: 'agents' | 'workflows',
  existing: Row | undefined,
  rec: { name: string; version: string; digest: string },
  force: boolean,
  same: (stored: { digest: string; manifest: unknown }) => boolean,
  elsewhere: boolean,
): { result: PutResult; write: boolean } {
  if (!existing) return { result: 'created', write: true };
  const stored = { digest: existing.digest as string, manifest: parseJson(existing.manifest) };
  if (same(stored)) return { result: 'unchanged', write: stored.digest !== rec.digest || elsewhere };
  if (force) return { result: 'replaced', write: true };
  throw versionConflict(table, rec);
}

/**
 * A workflow version's digest: sha256 (hex) of the canonical JSON of its manifest (keys sorted), so
 * it does not depend on the order the keys were built in. The same workflow.yaml registered here, the
 * definition a run bundle carries (`workflow.json`, canonical JSON) and a run's frozen plan have one
 * digest: the one the registry keeps, a bundle names (`sha256:<hex>`) and a certificate's
 * `workflow_ref` and `request_hash` cover.
 *
 * @example
 *   workflowDigest(manifest) === workflowRecord(manifest, '/anywhere').digest  // true
 */
export function workflowDigest(manifest: WorkflowManifest): string {
  return digestJson(canonicalJson(manifest));
}

/**
 * The digest workflows were given before it was canonical (sha256 of `JSON.stringify(manifest)`, in
 * the manifest's key order): rows registered then hold it, and bundles exported then name it.
 * Compared, never written.
 */
function legacyWorkflowDigest(manifest: WorkflowManifest): string {
  return digestJson(JSON.stringify(manifest));
}

/** A digest as the registry keeps it: hex, without the `sha256:` a bundle writes before it. */
export function bareDigest(digest: string): string {
  return digest.startsWith('sha256:') ? digest.slice('sha256:'.length) : digest;
}

/**
 * Whether a registered workflow (`digest`, `manifest`) has the content `digest` names (hex, or
 * `sha256:<hex>` as a bundle spells it). A row written before digests were canonical holds a digest
 * of another key order: its manifest decides. A digest of the old form (a bundle exported then)
 * names it too when it is the old digest of the same manifest.
 */
export function sameWorkflowContent(stored: { digest: string; manifest: WorkflowManifest }, digest: string): boolean {
  const d = bareDigest(digest);
  return stored.digest === d || workflowDigest(stored.manifest) === d || legacyWorkflowDigest(stored.manifest) === d;
}

/**
 * What putting a workflow does, given the row registered under its name and version (digest and
 * manifest as stored): `created`; the same content is `unchanged`, written again (`write`) only when
 * the row holds a digest of the old form (to record the canonical one); other content is `replaced`
 * with `force`, else WORKFLOW_VERSION_EXISTS.
 */
export function workflowPut(existing: Row | undefined, rec: WorkflowRecord, force: boolean): { result: PutResult; write: boolean } {
  return registryPut('workflows', existing, rec, force, (stored) => sameWorkflowContent(stored as { digest: string; manifest: WorkflowManifest }, rec.digest), false);
}

/** The registry record of a workflow version (its digest: workflowDigest). */
export function workflowRecord(manifest: WorkflowManifest, dir: string, now = Date.now()): WorkflowRecord {
  return {
    id: agentRef(manifest),
    name: manifest.name,
    version: manifest.version,
    path: dir,
    manifest,
    enabled: manifest.enabled ?? true,
    digest: workflowDigest(manifest),
    created_at: now,
    updated_at: now,
  };
}

/** (name, version) is unique: registering different content under it needs --force. */
export function versionConflict(table: 'agents' | 'workflows', rec: { name: string; version: string }): StoreError {
  const kind = table === 'agents' ? 'agent' : 'workflow';
  return new StoreError(
    `${kind.toUpperCase()}_VERSION_EXISTS`,
    `${kind} ${rec.name}@${rec.version} is already registered with different content; bump its version or use --force`,
    { [kind]: `${rec.name}@${rec.version}` },
    { exitCode: ExitCode.INVALID_INPUT },
  );
}

// ---- agent sessions ----

export const SESSION_COLUMNS = 'id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, created_at, updated_at';

export function toAgentSession(r: Row): AgentSessionRecord {
  return {
    id: r.id as string,
    run_id: (r.run_id as string | null) ?? null,
    step_id: (r.step_id as string | null) ?? null,
    agent: r.agent as string,
    current_agent: r.current_agent as string,
    trace_id: (r.trace_id as string | null) ?? null,
    status: r.status as AgentSessionRecord['status'],
    turns: Number(r.turns),
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    cost_usd: Number(r.cost_usd),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}

export function toAgentMessage(r: Row): AgentMessageRecord {
  return {
    session_id: r.session_id as string,
    seq: Number(r.seq),
    role: r.role as string,
    agent: (r.agent as string | null) ?? null,
    content: (r.content as string | null) ?? null,
    tool_calls: (r.tool_calls as string | null) ?? null,
    tool_call_id: (r.tool_call_id as string | null) ?? null,
    name: (r.name as string | null) ?? null,
    usage: r.input_tokens === null || r.input_tokens === undefined ? null : { input_tokens: Number(r.input_tokens), output_tokens: Number(r.output_tokens), cost_usd: Number(r.cost_usd) },
    at: Number(r.at),
  };
}

export function toToolCall(r: Row): ToolCallRecord {
  return {
    session_id: r.session_id as string,
    turn: Number(r.turn),
    call_id: r.call_id as string,
    name: r.name as string,
    arguments: r.arguments as string,
    output: r.output as string,
    is_error: Number(r.is_error) === 1,
    handoff: (r.handoff as string | null) ?? null,
    context_variables: (r.context_variables as string | null) ?? null,
    at: Number(r.at),
  };
}

export function toApproval(r: Row): ApprovalRecord {
  return {
    run_id: r.run_id as string,
    step_id: r.step_id as string,
    call_id: r.call_id as string,
    tool: r.tool as string,
    arguments: r.arguments as string,
    status: r.status as ApprovalRecord['status'],
    reason: (r.reason as string | null) ?? null,
    requested_at: Number(r.requested_at),
    decided_at: r.decided_at === null || r.decided_at === undefined ? null : Number(r.decided_at),
    decided_by: (r.decided_by as string | null) ?? null,
  };
}

export function toSecret(r: Row): SecretRecord {
  return {
    name: r.name as string,
    scope: r.scope as string,
    encrypted_value: Buffer.from(r.encrypted_value as Uint8Array),
    value_nonce: Buffer.from(r.value_nonce as Uint8Array),
    wrapped_key: Buffer.from(r.wrapped_key as Uint8Array),
    kek_id: r.kek_id as string,
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}

const msOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toApiToken(r: Row): ApiTokenRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    secret_hash: r.secret_hash as string,
    scopes: r.scopes as string,
    created_at: Number(r.created_at),
    expires_at: msOrNull(r.expires_at),
    last_used_at: msOrNull(r.last_used_at),
    revoked_at: msOrNull(r.revoked_at),
  };
}

/** The key in swarm_meta of the secrets generation (see Store.secretsGeneration). */
export const SECRETS_GENERATION_KEY = 'secrets_generation';

/** The key in swarm_meta of the registry generation (see Store.registryGeneration). */
export const REGISTRY_GENERATION_KEY = 'registry_generation';
/** The key in swarm_meta of the master key's check value (src/secrets/store-key.ts). */
export const KEY_CHECK_META_KEY = 'master_key_check';

/** A master key rotation found the store on another key than the rotating process's. */
export function rekeyRefused(location: string): StoreError {
  return new StoreError('MASTER_KEY_MISMATCH', `the store ${location} is no longer set up with this process's master key (another process rotated it?): nothing was changed`, { store: location }, { exitCode: ExitCode.INVALID_INPUT });
}

/** WHERE clause and values for a session filter, with `$n` (PostgreSQL) or `?` (SQLite) placeholders. */
export function sessionWhere(f: SessionFilter, placeholder: (i: number) => string): { where: string; values: unknown[] } {
  const conds: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown): void => {
    values.push(v);
    conds.push(sql.replace('?', placeholder(values.length)));
  };
  if (f.run_id !== undefined) add('run_id = ?', f.run_id);
  if (f.trace_id !== undefined) add('trace_id = ?', f.trace_id);
  if (f.status !== undefined) add('status = ?', f.status);
  if (f.since !== undefined) add('updated_at >= ?', f.since);
  if (f.until !== undefined) add('created_at <= ?', f.until);
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', values };
}

// ---- triggers ----

/** The columns of a `triggers` row, in insert order (both stores). */
export const TRIGGER_COLUMNS = [
  'id', 'workflow_name', 'workflow_version', 'type', 'enabled', 'config_json', 'webhook_path', 'webhook_scheme', 'cron_expression',
  'timezone', 'next_run_at', 'last_fired_at', 'paused', 'event_type', 'event_source', 'created_at', 'updated_at',
] as const;

export function toTrigger(r: Row): TriggerRecord {
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    id: r.id as string,
    workflow_name: r.workflow_name as string,
    workflow_version: r.workflow_version as string,
    type: r.type as TriggerKind,
    enabled: Number(r.enabled) === 1,
    config: JSON.parse(r.config_json as string) as Record<string, unknown>,
    webhook_path: (r.webhook_path as string | null) ?? null,
    webhook_scheme: (r.webhook_scheme as string | null) ?? null,
    cron_expression: (r.cron_expression as string | null) ?? null,
    timezone: (r.timezone as string | null) ?? null,
    next_run_at: num(r.next_run_at),
    last_fired_at: num(r.last_fired_at),
    paused: Number(r.paused) === 1,
    buffered_tick: num(r.buffered_tick),
    event_type: (r.event_type as string | null) ?? null,
    event_source: (r.event_source as string | null) ?? null,
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}

/**
 * The trigger row a workflow should have once `versions` (every registered version of one name) are
 * registered: the newest version's `trigger:` applies; a manual one means no row (undefined).
 * `existing` is the row there now: a schedule keeps its state (last fired tick, paused, created_at)
 * across re-registration, so registering again neither re-fires ticks, nor loses the ones missed since
 * the last one fired, nor silently resumes it.
 */
export function triggerRowFor(versions: readonly WorkflowRecord[], existing: TriggerRecord | undefined, now: number): Record<(typeof TRIGGER_COLUMNS)[number], unknown> | undefined {
  const wf = pickRecord(versions, '*');
  if (!wf) return undefined;
  const t = wf.manifest.trigger;
  const type = t.type;
  if (type !== 'webhook' && type !== 'schedule' && type !== 'event') return undefined;
  const keep = existing?.type === type ? existing : undefined;
  const row: Record<(typeof TRIGGER_COLUMNS)[number], unknown> = {
    id: wf.name,
    workflow_name: wf.name,
    workflow_version: wf.version,
    type,
    enabled: wf.enabled ? 1 : 0,
    config_json: JSON.stringify(t),
    webhook_path: null,
    webhook_scheme: null,
    cron_expression: null,
    timezone: null,
    next_run_at: null,
    last_fired_at: null,
    paused: 0,
    event_type: null,
    event_source: null,
    created_at: keep?.created_at ?? now,
    updated_at: now,
  };
  if (type === 'webhook') {
    row.webhook_path = t.path;
    const scheme = t.scheme as string | { type?: string } | undefined;
    row.webhook_scheme = t.auth === 'none' ? 'none' : typeof scheme === 'string' ? scheme : (scheme?.type ?? 'standard');
  } else if (type === 'event') {
    row.event_type = t.on;
    row.event_source = (t.source) ?? null;
  } else {
    const parsed = parseScheduleSpec(t);
    // Registration validated it (checkTrigger); a row is only ever written for a valid schedule.
    if (!parsed.ok) throw new UserError('SCHEDULE_INVALID', `workflow ${wf.id}: ${parsed.problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { workflow: wf.name });
    row.cron_expression = parsed.spec.cron;
    row.timezone = parsed.spec.timezone;
    row.last_fired_at = keep?.last_fired_at ?? null;
    row.paused = keep?.paused ? 1 : 0;
    // A schedule that fired before keeps its next tick after the last one fired, even if that is past:
    // ticks missed while the server was down are still caught up after a re-registration (the
    // scheduler only looks at a schedule whose next_run_at has come). One that never fired starts now.
    const from = keep?.last_fired_at ?? now;
    row.next_run_at = nextTicks(parsed.spec, new Date(from), 1)[0]?.getTime() ?? null;
  }
  return row;
}

/** Two workflows claiming one webhook path: refused at registration, naming both. */
export function webhookPathTaken(path: string, workflow: string, holder: string): UserError {
  return new UserError(
    'WEBHOOK_PATH_TAKEN',
    `workflow ${workflow} claims webhook path '${path}', which workflow ${holder} already receives at POST /webhooks/${path}: give one of them another path`,
    { workflow, path, other_workflow: holder },
  );
}

/** An event trigger row as the ledger reads it (`LedgerTx.eventTriggers`). */
export function toEventTrigger(r: Row): EventTriggerRow {
  return {
    id: r.id as string,
    workflow_name: r.workflow_name as string,
    workflow_version: r.workflow_version as string,
    event_source: (r.event_source as string | null) ?? null,
    config: (parseJson(r.config_json) as Record<string, unknown> | null) ?? {},
  };
}

export function toEmittedEvent(r: Row): EmittedEventRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    source: (r.source as string | null) ?? null,
    data_json: r.data as string,
    run_ids: (parseJson(r.run_ids) as string[] | null) ?? [],
    created_at: Number(r.created_at),
  };
}
