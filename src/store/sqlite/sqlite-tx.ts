import type Database from 'better-sqlite3';
import { SqliteWaitsTx } from './waits-sql.js';
import { sqliteConsensus } from './consensus-sql.js';
import type { ConsensusTx } from '../consensus-types.js';
import { sqliteFork } from './fork-sql.js';
import type { ForkTx } from '../fork-types.js';
import rcompare from 'semver/functions/rcompare.js';
import type { RunStatus } from '../../core/states.js';
import { parseJson, REGISTRY_GENERATION_KEY, SECRETS_GENERATION_KEY, setClause, stepRowId, toAgent, toEmittedEvent, toEventTrigger, toStep, toWorkflow, type Row } from '../rows.js';
import { SqliteConcurrencyTx } from './concurrency-sql.js';
import * as nest from './nesting-sql.js';
import type { AgentRecord, ClaimableRow, CommitObserver, EmittedEventRecord, EventRow, EventTriggerRow, LedgerTx, NewRunRow, NewStepRow, RunState, StepKey, StepLog, StepRecord, StepUpdate, WorkflowRecord } from '../types.js';
import { CANCELLED_WHILE } from '../types.js';

/** One write transaction's view: synchronous statements behind the async LedgerTx interface. */
export class SqliteTx implements LedgerTx {
  waits(): SqliteWaitsTx {
    return new SqliteWaitsTx(this.stmt, this.now);
  }

  /** One per transaction: it keeps what it read for the transaction's later reads. */
  private consensusTx: ConsensusTx | undefined;
  consensus(): ConsensusTx {
    this.consensusTx ??= sqliteConsensus(this.stmt, this.now);
    return this.consensusTx;
  }

  fork(): ForkTx {
    return sqliteFork(this.stmt, this.now);
  }

  constructor(
    private readonly db: Database.Database,
    private readonly stmt: (sql: string) => Database.Statement,
    readonly now: number,
    readonly observer?: CommitObserver,
  ) {}

  private concurrencyTx: SqliteConcurrencyTx | undefined;
  get concurrency(): SqliteConcurrencyTx {
    this.concurrencyTx ??= new SqliteConcurrencyTx(this.stmt);
    return this.concurrencyTx;
  }

  async runStatus(runId: string): Promise<RunStatus | undefined> {
    return (this.stmt('SELECT status FROM workflow_runs WHERE id = ?').get(runId) as { status: RunStatus } | undefined)?.status;
  }

  async getRunState(runId: string): Promise<RunState | undefined> {
    const r = this.stmt(
      `SELECT id, plan_id, status, steps_remaining, running_steps, max_parallel, event_seq, event_hash, started_at, completed_at, error, error_step, parent_run_id, parent_step_id,
         workflow_name, trigger_type, created_at
       FROM workflow_runs WHERE id = ?`,
    ).get(runId) as RunState | undefined;
    return r ? { ...r } : undefined;
  }

  async saveRunState(s: RunState): Promise<void> {
    this.stmt(
      `UPDATE workflow_runs SET status = ?, steps_remaining = ?, running_steps = ?, event_seq = ?, event_hash = ?, started_at = ?,
         completed_at = ?, error = ?, error_step = ?, updated_at = ? WHERE id = ?`,
    ).run(s.status, s.steps_remaining, s.running_steps, s.event_seq, s.event_hash, s.started_at, s.completed_at, s.error, s.error_step, this.now, s.id);
  }

  async getPlanById(planId: string): Promise<string | undefined> {
    return this.stmt('SELECT plan FROM run_plans WHERE id = ?').pluck().get(planId) as string | undefined;
  }

  async getTriggerData(runId: string): Promise<unknown> {
    return parseJson(this.stmt('SELECT trigger_data FROM workflow_runs WHERE id = ?').pluck().get(runId));
  }

  async insertRun(row: NewRunRow, steps: readonly NewStepRow[]): Promise<void> {
    this.stmt('INSERT OR IGNORE INTO run_plans (id, plan, created_at) VALUES (?, ?, ?)').run(row.plan_id, row.plan_json, row.created_at);
    this.stmt(
      `INSERT INTO workflow_runs (id, workflow_id, workflow_name, workflow_version, status, trigger_type, trigger_data, plan_id, parent_run_id,
         steps_total, steps_remaining, running_steps, max_parallel, event_seq, event_hash, created_at, updated_at, idempotency_key, metadata, parent_step_id,
         traceparent, tracestate, shared_inputs)
       VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      row.id, row.workflow_id, row.workflow_name, row.workflow_version, row.trigger_type, row.trigger_data_json, row.plan_id,
      row.parent_run_id, row.steps_total, row.steps_total, row.max_parallel, row.event_seq ?? 0, row.event_hash ?? '0'.repeat(64), row.created_at, row.created_at,
      row.idempotency_key ?? null, row.metadata_json ?? null, row.parent_step_id ?? null, row.traceparent ?? null, row.tracestate ?? null,
      row.shared_inputs_json ?? null,
    );
    const ins = this.stmt(
      `INSERT INTO step_executions (id, run_id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps, available_at, queued_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const s of steps) {
      ins.run(
        stepRowId(row.id, s.step_id), row.id, s.step_id, s.step_index, s.agent_id, s.agent_name, s.agent_version, s.status, s.pending_deps,
        s.status === 'ready' ? row.created_at : null, row.created_at,
      );
    }
  }

  async runByIdempotencyKey(key: string): Promise<{ id: string; workflow_name: string } | undefined> {
    // The transaction holds SQLite's write lock (BEGIN IMMEDIATE): no other writer can insert the key meanwhile.
    return this.stmt('SELECT id, workflow_name FROM workflow_runs WHERE idempotency_key = ?').get(key) as { id: string; workflow_name: string } | undefined;
  }

  async fencedUpdate(key: StepKey, attempt: number, owner: string | null, update: StepUpdate): Promise<boolean> {
    const { sql, values } = updateSql(update);
    const where = owner === null ? `id = ? AND attempt = ? AND status = 'running'` : `id = ? AND attempt = ? AND status = 'running' AND lease_owner = ?`;
    const args = owner === null ? [stepRowId(key.run_id, key.step_id), attempt] : [stepRowId(key.run_id, key.step_id), attempt, owner];
    return this.stmt(`UPDATE step_executions SET ${sql} WHERE ${where}`).run(...values, ...args).changes === 1;
  }

  async updateStep(key: StepKey, from: readonly string[], update: StepUpdate): Promise<boolean> {
    const { sql, values } = updateSql(update);
    const placeholders = from.map(() => '?').join(', ');
    return this.stmt(`UPDATE step_executions SET ${sql} WHERE id = ? AND status IN (${placeholders})`).run(...values, stepRowId(key.run_id, key.step_id), ...from).changes === 1;
  }

  async releaseDeps(runId: string, stepIds: readonly string[], availableAt: number): Promise<string[]> {
    const dec = this.stmt(
      `UPDATE step_executions SET pending_deps = pending_deps - 1,
         status = CASE WHEN pending_deps - 1 <= 0 AND status = 'pending' THEN 'ready' ELSE status END,
         available_at = CASE WHEN pending_deps - 1 <= 0 AND status = 'pending' THEN ? ELSE available_at END
       WHERE id = ? AND status = 'pending' RETURNING status`,
    );
    const ready: string[] = [];
    for (const id of stepIds) {
      const r = dec.get(availableAt, stepRowId(runId, id)) as Row | undefined;
      if (r?.status === 'ready') ready.push(id);
    }
    return ready;
  }

  async insertSteps(runId: string, steps: readonly NewStepRow[]): Promise<void> {
    nest.insertStepRows(this.stmt, runId, this.now, steps);
  }

  async deleteMapElements(runId: string, stepIndex: number): Promise<void> {
    nest.deleteMapElements(this.stmt, runId, stepIndex);
  }

  async cancelMapElements(runId: string, stepIndex: number): Promise<string[]> {
    return nest.cancelMapElements(this.stmt, runId, stepIndex, this.now);
  }

  async mapOutputs(runId: string, stepIndex: number): Promise<unknown[]> {
    return nest.mapOutputs(this.stmt, runId, stepIndex);
  }

  async countDown(key: StepKey): Promise<number | undefined> {
    return nest.countDown(this.stmt, key.run_id, key.step_id);
  }

  async childRuns(runId: string): Promise<string[]> {
    return nest.childRuns(this.stmt, runId);
  }

  async cancelSteps(runId: string, from: readonly string[]): Promise<string[]> {
    const placeholders = from.map(() => '?').join(', ');
    return this.stmt(
      `UPDATE step_executions SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, completed_at = ?,
         error = CASE WHEN status = 'waiting' AND error IS NOT NULL THEN ? || error ELSE error END
       WHERE run_id = ? AND status IN (${placeholders}) RETURNING step_id`,
    )
      .pluck()
      .all(this.now, CANCELLED_WHILE, runId, ...from) as string[];
  }

  async selectClaimable(limit: number, runIds?: readonly string[]): Promise<ClaimableRow[]> {
    const cols = 'run_id, step_id, status, attempt, retry_count, interruptions, lease_owner, available_at';
    if (runIds) {
      const out: ClaimableRow[] = [];
      for (const runId of runIds) {
        out.push(
          ...(this.stmt(
            `SELECT ${cols} FROM step_executions WHERE run_id = ? AND ((status = 'ready' AND available_at <= ?) OR (status = 'running' AND lease_until < ?))
             ORDER BY available_at LIMIT ?`,
          ).all(runId, this.now, this.now, limit) as ClaimableRow[]),
        );
      }
      return out;
    }
    // Skip runs already at their concurrency limit, so their waiting steps cannot crowd out other runs.
    // Ready steps are read in claim order from idx_steps_ready_order and each one's run is looked up
    // by its key (a scalar subquery, never a join: with a join the planner started from the active
    // runs, read all their steps and sorted them). The scan stops once it has `limit` steps; it reads
    // no more than those and the ready steps of runs at their limit it passes on the way.
    const ready = this.stmt(
      `SELECT s.run_id, s.step_id, s.status, s.attempt, s.retry_count, s.interruptions, s.lease_owner, s.available_at
       FROM step_executions s INDEXED BY idx_steps_ready_order
       WHERE s.status = 'ready' AND s.available_at <= ?
         AND (SELECT r.running_steps < r.max_parallel AND r.status IN ('queued', 'running', 'waiting') FROM workflow_runs r WHERE r.id = s.run_id)
       ORDER BY s.available_at, s.run_id, s.step_index LIMIT ?`,
    ).all(this.now, limit) as ClaimableRow[];
    const expired = this.stmt(`SELECT ${cols} FROM step_executions WHERE status = 'running' AND lease_until < ? ORDER BY lease_until LIMIT ?`).all(this.now, limit) as ClaimableRow[];
    return expired.length ? [...expired, ...ready] : ready;
  }

  async getSteps(runId: string): Promise<StepRecord[]> {
    return (this.stmt('SELECT * FROM step_executions WHERE run_id = ? ORDER BY step_index, map_index').all(runId) as Row[]).map(toStep);
  }

  async insertEvents(events: readonly EventRow[]): Promise<void> {
    // Multi-row inserts: one statement per 32 events instead of one per event.
    for (let i = 0; i < events.length; i += 32) {
      const chunk = events.slice(i, i + 32);
      const values: unknown[] = [];
      for (const e of chunk) values.push(e.run_id, e.seq, e.type, e.step_id, e.data_json, e.at, e.prev_hash, e.hash);
      this.stmt(`INSERT INTO events (run_id, seq, type, step_id, data, at, prev_hash, hash) VALUES ${EVENT_ROWS[chunk.length]}`).run(...values);
    }
  }

  async insertLog(log: StepLog): Promise<void> {
    this.stmt(
      `INSERT INTO step_logs (run_id, step_id, attempt, stdout, stderr, truncated, at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(run_id, step_id, attempt) DO UPDATE SET stdout = excluded.stdout, stderr = excluded.stderr, truncated = excluded.truncated, at = excluded.at`,
    ).run(log.run_id, log.step_id, log.attempt, log.stdout, log.stderr, log.truncated ? 1 : 0, log.at);
  }

  async decideApprovals(runId: string, stepIds: readonly string[], status: 'approved' | 'rejected', reason: string | null, by: string | null): Promise<string[]> {
    const decided = new Set<string>();
    const update = this.stmt(`UPDATE approvals SET status = ?, reason = ?, decided_by = ?, decided_at = ? WHERE run_id = ? AND step_id = ? AND status = 'pending'`);
    for (const stepId of stepIds) if (update.run(status, reason, by, this.now, runId, stepId).changes > 0) decided.add(stepId);
    return [...decided];
  }

  async latestWorkflow(name: string): Promise<WorkflowRecord | undefined> {
    return (await this.workflowVersions(name)).sort((a, b) => rcompare(a.version, b.version))[0];
  }

  async registryGeneration(): Promise<string> {
    return this.metaCounter(REGISTRY_GENERATION_KEY);
  }

  async secretsGeneration(): Promise<string> {
    return this.metaCounter(SECRETS_GENERATION_KEY);
  }

  /** A counter of `swarm_meta` as this transaction sees it ('0' before its first bump). */
  private metaCounter(key: string): string {
    return (this.stmt('SELECT value FROM swarm_meta WHERE key = ?').pluck().get(key) as string | undefined) ?? '0';
  }

  async workflowVersions(name: string): Promise<WorkflowRecord[]> {
    return (this.stmt('SELECT * FROM workflows WHERE name = ? ORDER BY created_at').all(name) as Row[]).map(toWorkflow);
  }

  async agentVersions(name: string): Promise<AgentRecord[]> {
    return (this.stmt('SELECT * FROM agents WHERE name = ?').all(name) as Row[]).map(toAgent);
  }

  async eventTriggers(name: string, source: string | null): Promise<EventTriggerRow[]> {
    // idx_triggers_event (migration 6): an index probe, nothing read when no trigger listens.
    const rows = this.stmt(
      `SELECT id, workflow_name, workflow_version, event_source, config_json FROM triggers
       WHERE type = 'event' AND event_type = ? AND (event_source IS NULL OR event_source = ?) AND enabled = 1 ORDER BY id`,
    ).all(name, source) as Row[];
    return rows.map(toEventTrigger);
  }

  async insertEmittedEvent(row: EmittedEventRecord): Promise<boolean> {
    return (
      this.stmt('INSERT OR IGNORE INTO emitted_events (id, name, source, data, run_ids, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        row.id, row.name, row.source, row.data_json, JSON.stringify(row.run_ids), row.created_at,
      ).changes === 1
    );
  }

  async getEmittedEvent(id: string): Promise<EmittedEventRecord | undefined> {
    const r = this.stmt('SELECT * FROM emitted_events WHERE id = ?').get(id) as Row | undefined;
    return r ? toEmittedEvent(r) : undefined;
  }

  async setEmittedEventRuns(id: string, runIds: readonly string[]): Promise<void> {
    this.stmt('UPDATE emitted_events SET run_ids = ? WHERE id = ?').run(JSON.stringify(runIds), id);
  }
}

const EVENT_ROWS = Array.from({ length: 33 }, (_, n) => Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', '));
/** `SET a = ?, …` and its values, for the fields present in an update. */
function updateSql(update: StepUpdate): { sql: string; values: unknown[] } {
  const { set, keys } = setClause(update, () => '?');
  return { sql: set, values: keys.map((k) => update[k]) };
}
