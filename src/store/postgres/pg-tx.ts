import rcompare from 'semver/functions/rcompare.js';
import { pgFork } from './fork-sql.js';
import type { ForkTx } from '../fork-types.js';
import { parseJson, setClause, stepRowId, toAgent, toEmittedEvent, toEventTrigger, toStep, toWorkflow, UPDATE_COLUMNS, type Row } from '../rows.js';
import type { AgentRecord, ClaimableRow, CommitObserver, EmittedEventRecord, EventRow, EventTriggerRow, LedgerTx, NewRunRow, NewStepRow, RunState, StepKey, StepLog, StepRecord, StepUpdate, TxHint, WorkflowRecord } from '../types.js';
import type { RunStatus } from '../../core/states.js';
import { CANCELLED_WHILE } from '../types.js';
import { PgConcurrencyTx } from './concurrency-sql.js';
import type { Pipeline } from './pipeline.js';
import { PgWaitsTx } from './waits-sql.js';
import { pgConsensus } from './consensus-sql.js';
import type { ConsensusTx } from '../consensus-types.js';
import type { ConsensusSql } from '../consensus-sql.js';
import * as nest from './nesting-sql.js';

/** Run one statement on the transaction's connection; resolves to its rows and the affected-row count. */
export type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

/** Columns of a run row the ledger reads. */
const RUN_COLS = 'id, plan_id, status, steps_remaining, running_steps, max_parallel, event_seq, event_hash, started_at, completed_at, error, error_step, parent_run_id, parent_step_id, workflow_name, trigger_type, created_at';

/**
 * One transaction's view of the PostgreSQL store (READ COMMITTED). Run rows are locked when read
 * (several workers commit steps of one run at once: its event sequence, hash and counters must be
 * read and written by one of them at a time); claimable steps are locked with SKIP LOCKED so that
 * concurrent claimers take different steps instead of queueing behind each other.
 *
 * Statements go through a `Pipeline`: writes whose result the ledger does not need (step and run
 * updates of locked rows, events, new runs, logs) are queued and travel with the next read or with
 * COMMIT. With the worker's hint (`begin`), its commit (lock, complete, claim, commit) is two round
 * trips whatever the number of steps in it: BEGIN with the locks and the claim's candidates, then the
 * writes with COMMIT.
 */
export class PgTx implements LedgerTx {
  /** Notify only for work this transaction leaves unclaimed, or for events other than a worker's own progress. */
  private otherEvents = false;
  private readonly madeReady = new Set<string>();
  private readonly claimedHere = new Set<string>();
  get changed(): boolean {
    if (this.otherEvents || this.leftCandidates) return true;
    for (const id of this.madeReady) if (!this.claimedHere.has(id)) return true;
    return false;
  }
  set changed(v: boolean) {
    if (v) this.otherEvents = true;
  }
  /** Runs whose row this transaction has locked. */
  private readonly lockedRuns = new Set<string>();
  /** Write-behind: run states read under lock, and step rows locked by this transaction; changes are buffered and written in one statement per kind before any read and before COMMIT. */
  private readonly runStates = new Map<string, RunState>();
  private readonly stepRows = new Map<string, LockedStep>();
  /** Claim candidates selected with BEGIN (the caller's hint), handed to the next `selectClaimable`. */
  private prefetchedClaim: { runIds: readonly string[] | undefined; rows: ClaimableRow[] } | undefined;
  /** Candidates locked but not handed out: after COMMIT they are claimable again, so tell idle workers. */
  private readonly candidates = new Map<string, number>();
  private readonly pendingSteps = new Map<string, StepUpdate>();
  private readonly pendingRuns = new Map<string, RunState>();

  /** Locks travel with BEGIN (the worker's hint) or with the statements queued before them. */
  readonly prefetchesCheaply = true;

  constructor(
    private readonly p: Pipeline,
    readonly observer?: CommitObserver,
  ) {}

  private concurrencyTx: PgConcurrencyTx | undefined;
  get concurrency(): PgConcurrencyTx {
    this.concurrencyTx ??= new PgConcurrencyTx({ q: (t, v) => this.q(t, v), later: (t, v) => this.later(t, v) });
    return this.concurrencyTx;
  }

  waits(): PgWaitsTx {
    return new PgWaitsTx((text, values) => this.q(text, values), this.now);
  }

  /** One per transaction: it keeps what it read (and loaded with BEGIN) for the transaction's later reads. */
  private consensusTx: ConsensusSql | undefined;
  consensus(): ConsensusTx {
    this.consensusTx ??= pgConsensus({
      q: (text, values) => this.q(text, values),
      later: (text, values) => this.later(text, values),
      defer: (text, values, onRows) => {
        this.flushWrites();
        this.p.defer(this.p.statement(text, values), (r) => onRows(r.rows));
      },
      lockedStep: (id) => this.stepRows.get(id),
      now: () => this.now,
    });
    return this.consensusTx;
  }

  fork(): ForkTx {
    return pgFork((text, values) => this.q(text, values), this.now);
  }

  /** SQL for the database's clock in milliseconds: what the transaction's `now` was read with. */
  private get clockSql(): string {
    const sql = this.p.clockSql;
    if (sql === undefined) throw new Error('the transaction has not begun');
    return sql;
  }

  /** The database's clock at the start of the transaction: every lease and timestamp is on it. */
  get now(): number {
    const now = this.p.startedAt;
    if (now === undefined) throw new Error('the transaction has not begun');
    return now;
  }

  /**
   * Take the locks of the runs and steps the transaction will work on when the caller knows them (a
   * worker's commit does) in the round trip that carries BEGIN and the clock (queued by the store):
   * then they take no round trip of their own. Resolves once the transaction has begun.
   */
  async begin(hint?: TxHint): Promise<void> {
    if (hint?.runs?.length) this.deferRunLocks(hint.runs);
    if (hint?.steps?.length) this.deferStepLocks(hint.steps);
    if (hint?.workflows?.length) this.deferRegistryReads('workflows', this.workflowRows, toWorkflow, hint.workflows);
    if (hint?.agents?.length) this.deferRegistryReads('agents', this.agentRows, toAgent, hint.agents);
    if (hint?.eventTriggers?.length) this.deferEventTriggerReads(hint.eventTriggers);
    if (hint?.consensus) (this.consensus() as ConsensusSql).load(hint.consensus);
    if (hint?.claim) {
      const runIds = hint.claim.run_ids;
      // The runs of the completions are locked by then: take the candidates' runs only if free.
      this.p.defer(this.claimStatement(hint.claim.limit, runIds, (hint.runs?.length ?? 0) > 0), (r) => {
        this.prefetchedClaim = { runIds, rows: this.takeCandidates(r.rows) };
      });
    }
    await this.p.flush();
  }

  /** Lock and read the runs (id order) and the step rows a commit will touch, in one round trip. */
  async prefetchRuns(runIds: readonly string[]): Promise<void> {
    if (this.deferRunLocks(runIds)) await this.p.flush();
  }

  async prefetchSteps(keys: readonly StepKey[]): Promise<void> {
    if (this.deferStepLocks(keys)) await this.p.flush();
  }

  private deferRunLocks(runIds: readonly string[]): boolean {
    const ids = [...new Set(runIds)].filter((id) => !this.runStates.has(id)).sort();
    if (ids.length === 0) return false;
    this.flushWrites();
    this.p.defer(this.p.statement(`SELECT ${RUN_COLS} FROM workflow_runs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, [ids]), (r) => {
      for (const row of r.rows) {
        this.lockedRuns.add(row.id as string);
        this.runStates.set(row.id as string, row as unknown as RunState);
      }
    });
    return true;
  }

  private deferStepLocks(keys: readonly StepKey[]): boolean {
    const ids = [...new Set(keys.map((k) => stepRowId(k.run_id, k.step_id)))].filter((id) => !this.stepRows.has(id));
    if (ids.length === 0) return false;
    this.flushWrites();
    this.p.defer(
      this.p.statement('SELECT id, status, attempt, retry_count, interruptions, lease_owner, pending_deps FROM step_executions WHERE id = ANY($1) ORDER BY id FOR UPDATE', [ids]),
      (r) => {
        for (const row of r.rows) this.stepRows.set(row.id as string, lockedStep(row));
      },
    );
    return true;
  }

  /** A statement whose result is needed now: everything queued goes first, in the same round trip. */
  private q(text: string, values?: readonly unknown[]): Promise<{ rows: Row[]; rowCount: number }> {
    this.flushWrites();
    return this.p.query(text, values);
  }

  /** A write whose result nobody needs: it goes with the next round trip. */
  private later(text: string, values?: readonly unknown[]): void {
    this.flushWrites();
    this.p.deferStatement(text, values);
  }

  private buffer(id: string, update: StepUpdate): void {
    const row = this.stepRows.get(id);
    if (row) {
      if (update.status !== undefined) row.status = update.status;
      if (update.attempt !== undefined) row.attempt = update.attempt;
      if (update.lease_owner !== undefined) row.lease_owner = update.lease_owner;
      if (update.pending_deps !== undefined) row.pending_deps = update.pending_deps;
      if (update.retry_count !== undefined) row.retry_count = update.retry_count;
      if (update.interruptions !== undefined) row.interruptions = update.interruptions;
      if (update.lease_until !== undefined) row.lease_until = update.lease_until;
    }
    this.pendingSteps.set(id, { ...(this.pendingSteps.get(id) ?? {}), ...update });
  }

  /** Queue every buffered change: one UPDATE per shape of step update, one for the runs. */
  flushWrites(): void {
    if (this.pendingSteps.size) {
      const groups = new Map<string, Array<[string, StepUpdate]>>();
      for (const [id, u] of this.pendingSteps) {
        const keys = (Object.keys(u) as Array<keyof StepUpdate>).filter((k) => u[k] !== undefined).sort();
        const sig = keys.join(',');
        const g = groups.get(sig) ?? [];
        g.push([id, u]);
        groups.set(sig, g);
      }
      this.pendingSteps.clear();
      for (const [sig, rows] of groups) {
        const keys = sig.split(',') as Array<keyof StepUpdate>;
        const sets = keys.map((k) => `${UPDATE_COLUMNS[k]} = u.c${keys.indexOf(k)}`).join(', ');
        const params = keys.map((k, i) => `$${i + 2}::${COLUMN_TYPES[k]}[]`).join(', ');
        const cols = keys.map((_, i) => `c${i}`).join(', ');
        this.p.deferStatement(`UPDATE step_executions s SET ${sets} FROM unnest($1::text[], ${params}) AS u(id, ${cols}) WHERE s.id = u.id`, [
          rows.map(([id]) => id),
          ...keys.map((k) => rows.map(([, u]) => noNul(int(u[k])))),
        ]);
      }
    }
    if (this.pendingRuns.size) {
      const st = [...this.pendingRuns.values()];
      this.pendingRuns.clear();
      this.p.deferStatement(
        `UPDATE workflow_runs r SET status = u.status, steps_remaining = u.sr, running_steps = u.rs, event_seq = u.seq, event_hash = u.hash, started_at = u.sa,
           completed_at = u.ca, error = u.err, error_step = u.es, updated_at = $11
         FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::text[])
           AS u(id, status, sr, rs, seq, hash, sa, ca, err, es) WHERE r.id = u.id`,
        [
          st.map((x) => x.id), st.map((x) => x.status), st.map((x) => x.steps_remaining), st.map((x) => x.running_steps), st.map((x) => x.event_seq),
          st.map((x) => x.event_hash), st.map((x) => x.started_at), st.map((x) => x.completed_at), st.map((x) => noNul(x.error)), st.map((x) => x.error_step), this.now,
        ],
      );
    }
  }

  async runStatus(runId: string): Promise<RunStatus | undefined> {
    const held = this.runStates.get(runId);
    if (held) return held.status;
    // No FOR UPDATE: a plain read waits for no lock.
    const r = await this.q('SELECT status FROM workflow_runs WHERE id = $1', [runId]);
    return r.rows[0]?.status as RunStatus | undefined;
  }

  async getRunState(runId: string): Promise<RunState | undefined> {
    const cached = this.runStates.get(runId);
    if (cached) return cached;
    const r = await this.q(`SELECT ${RUN_COLS} FROM workflow_runs WHERE id = $1 FOR UPDATE`, [runId]);
    if (r.rows[0]) {
      this.lockedRuns.add(runId);
      this.runStates.set(runId, r.rows[0] as unknown as RunState);
    }
    return r.rows[0] as RunState | undefined;
  }

  async saveRunState(s: RunState): Promise<void> {
    if (this.runStates.has(s.id)) {
      this.pendingRuns.set(s.id, s);
      return;
    }
    this.later(
      `UPDATE workflow_runs SET status = $1, steps_remaining = $2, running_steps = $3, event_seq = $4, event_hash = $5, started_at = $6,
         completed_at = $7, error = $8, error_step = $9, updated_at = $10 WHERE id = $11`,
      [s.status, s.steps_remaining, s.running_steps, s.event_seq, s.event_hash, s.started_at, s.completed_at, noNul(s.error), s.error_step, this.now, s.id],
    );
  }

  async getPlanById(planId: string): Promise<string | undefined> {
    return (await this.q('SELECT plan FROM run_plans WHERE id = $1', [planId])).rows[0]?.plan as string | undefined;
  }

  async getTriggerData(runId: string): Promise<unknown> {
    return parseJson((await this.q('SELECT trigger_data FROM workflow_runs WHERE id = $1', [runId])).rows[0]?.trigger_data);
  }

  async insertRun(row: NewRunRow, steps: readonly NewStepRow[]): Promise<void> {
    this.later('INSERT INTO run_plans (id, plan, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [row.plan_id, row.plan_json, row.created_at]);
    this.later(
      `INSERT INTO workflow_runs (id, workflow_id, workflow_name, workflow_version, status, trigger_type, trigger_data, plan_id, parent_run_id,
         steps_total, steps_remaining, running_steps, max_parallel, event_seq, event_hash, created_at, updated_at, idempotency_key, metadata, parent_step_id,
         traceparent, tracestate, shared_inputs)
       VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $9, 0, $10, $16, $11, $12, $12, $13, $14, $15, $17, $18, $19)`,
      [
        row.id, row.workflow_id, row.workflow_name, row.workflow_version, row.trigger_type, row.trigger_data_json, row.plan_id,
        row.parent_run_id, row.steps_total, row.max_parallel, row.event_hash ?? '0'.repeat(64), row.created_at, row.idempotency_key ?? null, row.metadata_json ?? null,
        row.parent_step_id ?? null, row.event_seq ?? 0, row.traceparent ?? null, row.tracestate ?? null, row.shared_inputs_json ?? null,
      ],
    );
    // All steps in one statement, one array per column: the same statement text (prepared once per
    // connection) however many steps the run has.
    const col = <K extends keyof NewStepRow>(k: K): Array<NewStepRow[K]> => steps.map((s) => s[k]);
    this.later(
      `INSERT INTO step_executions (id, run_id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps, available_at, queued_at)
       SELECT u.id, $1, u.step_id, u.step_index, u.agent_id, u.agent_name, u.agent_version, u.status, u.pending_deps,
              CASE WHEN u.status = 'ready' THEN $2::bigint END, $2
       FROM unnest($3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[])
         AS u(id, step_id, step_index, agent_id, agent_name, agent_version, status, pending_deps)`,
      [
        row.id, row.created_at, steps.map((s) => stepRowId(row.id, s.step_id)), col('step_id'), col('step_index'), col('agent_id'), col('agent_name'),
        col('agent_version'), col('status'), col('pending_deps'),
      ],
    );
    if (steps.some((s) => s.status === 'ready')) this.changed = true;
  }

  async runByIdempotencyKey(key: string): Promise<{ id: string; workflow_name: string } | undefined> {
    // Under READ COMMITTED two transactions could both miss the key and then collide on the unique
    // index. The advisory lock (held until this transaction ends) makes the second wait for the
    // first, and its SELECT then sees the first's committed run.
    await this.q(`SELECT pg_advisory_xact_lock(hashtext('swarm.idempotency_key'), hashtext($1))`, [key]);
    const row = (await this.q('SELECT id, workflow_name FROM workflow_runs WHERE idempotency_key = $1', [key])).rows[0];
    return row ? { id: row.id as string, workflow_name: row.workflow_name as string } : undefined;
  }

  async fencedUpdate(key: StepKey, attempt: number, owner: string | null, update: StepUpdate): Promise<boolean> {
    const id = stepRowId(key.run_id, key.step_id);
    const row = this.stepRows.get(id);
    if (row) {
      if (row.status !== 'running' || row.attempt !== attempt || (owner !== null && row.lease_owner !== owner)) return false;
      this.buffer(id, update);
      return true;
    }
    const { set, values } = updateSql(update);
    const n = values.length;
    const where = owner === null ? `id = $${n + 1} AND attempt = $${n + 2} AND status = 'running'` : `id = $${n + 1} AND attempt = $${n + 2} AND status = 'running' AND lease_owner = $${n + 3}`;
    const args = owner === null ? [stepRowId(key.run_id, key.step_id), attempt] : [stepRowId(key.run_id, key.step_id), attempt, owner];
    return (await this.q(`UPDATE step_executions SET ${set} WHERE ${where}`, [...values, ...args])).rowCount === 1;
  }

  async updateStep(key: StepKey, from: readonly string[], update: StepUpdate): Promise<boolean> {
    const id = stepRowId(key.run_id, key.step_id);
    const row = this.stepRows.get(id);
    if (row) {
      if (!from.includes(row.status)) return false;
      this.buffer(id, update);
      if (update.status === 'ready') this.madeReady.add(id);
      if (update.status === 'running') this.claimedHere.add(id);
      return true;
    }
    const { set, values } = updateSql(update);
    const n = values.length;
    const r = await this.q(`UPDATE step_executions SET ${set} WHERE id = $${n + 1} AND status = ANY($${n + 2})`, [...values, stepRowId(key.run_id, key.step_id), from]);
    if (r.rowCount === 1 && update.status === 'ready') this.changed = true;
    return r.rowCount === 1;
  }

  async releaseDeps(runId: string, stepIds: readonly string[], availableAt: number): Promise<string[]> {
    if (stepIds.length === 0) return [];
    if (stepIds.every((sid) => this.stepRows.has(stepRowId(runId, sid)))) {
      const ready: string[] = [];
      for (const sid of stepIds) {
        const id = stepRowId(runId, sid);
        const row = this.stepRows.get(id);
        if (!row || row.status !== 'pending') continue;
        const left = row.pending_deps - 1;
        if (left <= 0) {
          this.buffer(id, { pending_deps: left, status: 'ready', available_at: int(availableAt) });
          ready.push(sid);
          this.madeReady.add(id);
        } else this.buffer(id, { pending_deps: left });
      }
      return ready;
    }
    // One statement for all successors; every one of them is decremented once (the ids are distinct).
    const r = await this.q(
      `UPDATE step_executions SET pending_deps = pending_deps - 1,
         status = CASE WHEN pending_deps - 1 <= 0 THEN 'ready' ELSE status END,
         available_at = CASE WHEN pending_deps - 1 <= 0 THEN $1 ELSE available_at END
       WHERE id = ANY($2) AND status = 'pending' RETURNING step_id, status`,
      [int(availableAt), stepIds.map((id) => stepRowId(runId, id))],
    );
    const ready = new Set(r.rows.filter((row) => row.status === 'ready').map((row) => row.step_id as string));
    if (ready.size) this.changed = true;
    // In the order asked for (it is recorded in the event), as the SQLite store returns them.
    return stepIds.filter((id) => ready.has(id));
  }

  async insertSteps(runId: string, steps: readonly NewStepRow[]): Promise<void> {
    if (steps.length === 0) return;
    const { text, values } = nest.insertStepRowsStatement(runId, this.now, steps);
    this.later(text, values);
    if (steps.some((s) => s.status === 'ready')) this.changed = true;
  }

  async deleteMapElements(runId: string, stepIndex: number): Promise<void> {
    for (const id of await nest.deleteMapElements((t, v) => this.q(t, v), runId, stepIndex)) this.stepRows.delete(id);
  }

  async cancelMapElements(runId: string, stepIndex: number): Promise<string[]> {
    const ids = await nest.cancelMapElements((t, v) => this.q(t, v), runId, stepIndex, this.now);
    // Rows this transaction holds (claim candidates) must not be claimed from their stale copy.
    for (const sid of ids) {
      const held = this.stepRows.get(stepRowId(runId, sid));
      if (held) held.status = 'cancelled';
    }
    return ids;
  }

  async mapOutputs(runId: string, stepIndex: number): Promise<unknown[]> {
    return nest.mapOutputs((t, v) => this.q(t, v), runId, stepIndex);
  }

  async countDown(key: StepKey): Promise<number | undefined> {
    const id = stepRowId(key.run_id, key.step_id);
    const held = this.stepRows.get(id);
    if (held) {
      if (held.status !== 'waiting') return undefined;
      this.buffer(id, { pending_deps: held.pending_deps - 1 });
      return held.pending_deps;
    }
    return nest.countDown((t, v) => this.q(t, v), key.run_id, key.step_id);
  }

  async childRuns(runId: string): Promise<string[]> {
    return nest.childRuns((t, v) => this.q(t, v), runId);
  }

  async cancelSteps(runId: string, from: readonly string[]): Promise<string[]> {
    const r = await this.q(
      `WITH c AS (
         UPDATE step_executions SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, completed_at = $1,
           error = CASE WHEN status = 'waiting' AND error IS NOT NULL THEN $4 || error ELSE error END
         WHERE run_id = $2 AND status = ANY($3) RETURNING step_id, step_index)
       SELECT step_id FROM c ORDER BY step_index`,
      [this.now, runId, from, CANCELLED_WHILE],
    );
    for (const row of r.rows) {
      const held = this.stepRows.get(stepRowId(runId, row.step_id as string));
      if (held) Object.assign(held, { status: 'cancelled', lease_owner: null, lease_until: null });
    }
    return r.rows.map((row) => row.step_id as string);
  }

  lockedStep(key: StepKey): ClaimableRow | undefined {
    const row = this.stepRows.get(stepRowId(key.run_id, key.step_id));
    if (!row || (row.status !== 'ready' && row.status !== 'running')) return undefined;
    return { run_id: key.run_id, step_id: key.step_id, status: row.status, attempt: row.attempt, retry_count: row.retry_count, interruptions: row.interruptions, lease_owner: row.lease_owner };
  }

  /** Whether this transaction leaves claim candidates it locked unclaimed (others should look again). */
  private get leftCandidates(): boolean {
    for (const [id, attempt] of this.candidates) {
      const row = this.stepRows.get(id);
      if (row && row.attempt === attempt && (row.status === 'ready' || row.status === 'running')) return true;
    }
    return false;
  }

  async selectClaimable(limit: number, runIds?: readonly string[]): Promise<ClaimableRow[]> {
    const pre = this.prefetchedClaim;
    this.prefetchedClaim = undefined;
    if (pre && pre.runIds === runIds) {
      // Selected with BEGIN; as they are now in this transaction: a completion may have changed one,
      // and an expired lease this transaction renewed (its worker is alive) is no candidate any more.
      return pre.rows.flatMap((c) => {
        const row = this.stepRows.get(stepRowId(c.run_id, c.step_id));
        if (!row || row.status !== c.status || row.attempt !== c.attempt) return [];
        if (c.status === 'running' && row.lease_until != null && row.lease_until >= this.now) return [];
        return [c];
      });
    }
    return this.takeCandidates((await this.q(this.claimStatementText(runIds, this.lockedRuns.size > 0), runIds ? [runIds, this.now, limit] : [this.now, limit])).rows);
  }

  /** The claim statement (see claimStatementText) as an EXECUTE with its values. */
  private claimStatement(limit: number, runIds: readonly string[] | undefined, holdsRuns: boolean): string {
    // The clock is read in the same round trip (with BEGIN): the statement uses the transaction's own.
    return this.p.statement(this.claimStatementText(runIds, holdsRuns, true), runIds ? [runIds, limit] : [limit]);
  }

  /**
   * Claim candidates and the locks of their runs in one statement. The runs are locked before the
   * ledger reads them, so that claims cannot deadlock with other commits: a transaction that holds no
   * run yet waits for them, in id order (completions take theirs in id order too); one that already
   * holds runs (it completed steps first) only takes runs that are free and leaves the other
   * candidates alone, since waiting there could close a cycle. Those stay ready, and this commit's
   * NOTIFY tells idle workers to look again.
   *
   * `clockInSql`: the statement reads the clock itself (the value `SELECT now` returned in the same
   * round trip is not known yet when the statement is written), with the same expression.
   */
  private claimStatementText(runIds: readonly string[] | undefined, holdsRuns: boolean, clockInSql = false): string {
    const lockRuns = `r AS MATERIALIZED (SELECT ${RUN_COLS} FROM workflow_runs WHERE id IN (SELECT run_id FROM c) ${holdsRuns ? 'FOR UPDATE SKIP LOCKED' : 'ORDER BY id FOR UPDATE'})`;
    // ord2 is a ready step's available_at (the metrics' queue wait; for an expired lease it is lease_until, unused).
    const out = `SELECT c.run_id, c.step_id, c.status, c.attempt, c.retry_count, c.interruptions, c.lease_owner, c.ord2 AS available_at, to_json(r) AS run
       FROM c LEFT JOIN r ON r.id = c.run_id ORDER BY c.ord1, c.ord2, c.ord3, c.step_index`;
    if (runIds) {
      // Per run, like the SQLite store: each of the runs gets up to `limit` candidates.
      const [now, limit] = clockInSql ? [this.clockSql, '$2'] : ['$2', '$3'];
      return `WITH c AS MATERIALIZED (
           SELECT c.run_id, c.step_id, c.status, c.attempt, c.retry_count, c.interruptions, c.lease_owner, u.ord AS ord1, c.available_at AS ord2, '' AS ord3, c.step_index
           FROM unnest($1::text[]) WITH ORDINALITY AS u(run_id, ord)
           CROSS JOIN LATERAL (
             SELECT s.run_id, s.step_id, s.status, s.attempt, s.retry_count, s.interruptions, s.lease_owner, s.available_at, s.step_index
             FROM step_executions s
             WHERE s.run_id = u.run_id AND ((s.status = 'ready' AND s.available_at <= ${now}) OR (s.status = 'running' AND s.lease_until < ${now}))
             ORDER BY s.available_at, s.step_index LIMIT ${limit} FOR UPDATE OF s SKIP LOCKED) c),
         ${lockRuns}
         ${out}`;
    }
    // Expired leases first (swept here, inside the claim), then ready steps of runs below their
    // concurrency limit, so a run at its limit cannot crowd out other runs. Ready steps are read in
    // claim order from idx_steps_ready_order and each one's run is looked up by its key (a scalar
    // subquery is never turned into a join; a join let the planner scan every active run for each
    // ready step). The statement reads the claimable steps it takes and, passed over on the way, the
    // ready steps of runs at their limit (a fan-out wider than its `concurrency` leaves the rest of
    // its steps ready): not the ready steps further on, however many runs have them.
    const [now, limit] = clockInSql ? [this.clockSql, '$1'] : ['$1', '$2'];
    return `WITH expired AS MATERIALIZED (
           SELECT s.run_id, s.step_id, s.status, s.attempt, s.retry_count, s.interruptions, s.lease_owner, 0 AS ord1, s.lease_until AS ord2, s.run_id AS ord3, s.step_index
           FROM step_executions s WHERE s.status = 'running' AND s.lease_until < ${now}
           ORDER BY s.lease_until LIMIT ${limit} FOR UPDATE OF s SKIP LOCKED),
         ready AS MATERIALIZED (
           SELECT s.run_id, s.step_id, s.status, s.attempt, s.retry_count, s.interruptions, s.lease_owner, 1 AS ord1, s.available_at AS ord2, s.run_id AS ord3, s.step_index
           FROM step_executions s
           WHERE s.status = 'ready' AND s.available_at <= ${now}
             AND (SELECT r.running_steps < r.max_parallel AND r.status IN ('queued', 'running', 'waiting') FROM workflow_runs r WHERE r.id = s.run_id)
           ORDER BY s.available_at, s.run_id, s.step_index LIMIT ${limit} FOR UPDATE OF s SKIP LOCKED),
         c AS MATERIALIZED (SELECT * FROM expired UNION ALL SELECT * FROM ready),
         ${lockRuns}
         ${out}`;
  }

  /** Record the candidates a claim statement locked, and the runs it locked with them. */
  private takeCandidates(found: readonly Row[]): ClaimableRow[] {
    const rows: ClaimableRow[] = [];
    for (const row of found) {
      const run = row.run as RunState | null;
      const id = stepRowId(row.run_id as string, row.step_id as string);
      if (!this.stepRows.has(id)) this.stepRows.set(id, lockedStep(row));
      if (!this.candidates.has(id)) this.candidates.set(id, row.attempt as number);
      // A run another transaction holds (skipped): its candidates stay as they are.
      if (!run) continue;
      if (!this.lockedRuns.has(run.id)) {
        this.lockedRuns.add(run.id);
        this.runStates.set(run.id, run);
      }
      const { run: _run, ...step } = row;
      rows.push(step as unknown as ClaimableRow);
    }
    return rows;
  }

  async getSteps(runId: string): Promise<StepRecord[]> {
    return (await this.q('SELECT * FROM step_executions WHERE run_id = $1 ORDER BY step_index, map_index NULLS FIRST', [runId])).rows.map(toStep);
  }

  async insertEvents(events: readonly EventRow[]): Promise<void> {
    if (events.some((e) => e.type !== 'STEP_COMPLETED' && e.type !== 'STEP_STARTED' && e.type !== 'RUN_STARTED')) this.otherEvents = true;
    if (events.length === 0) return;
    // One statement, one array per column (see insertRun).
    this.later(
      `INSERT INTO events (run_id, seq, type, step_id, data, at, prev_hash, hash)
       SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[])`,
      [
        events.map((e) => e.run_id), events.map((e) => e.seq), events.map((e) => e.type), events.map((e) => e.step_id), events.map((e) => e.data_json),
        events.map((e) => e.at), events.map((e) => e.prev_hash), events.map((e) => e.hash),
      ],
    );
  }

  async insertLog(log: StepLog): Promise<void> {
    this.later(
      `INSERT INTO step_logs (run_id, step_id, attempt, stdout, stderr, truncated, at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET stdout = excluded.stdout, stderr = excluded.stderr, truncated = excluded.truncated, at = excluded.at`,
      [log.run_id, log.step_id, log.attempt, noNul(log.stdout), noNul(log.stderr), log.truncated ? 1 : 0, log.at],
    );
  }

  async decideApprovals(runId: string, stepIds: readonly string[], status: 'approved' | 'rejected', reason: string | null, by: string | null): Promise<string[]> {
    const r = await this.q(
      `UPDATE approvals SET status = $1, reason = $2, decided_by = $3, decided_at = $4 WHERE run_id = $5 AND step_id = ANY($6) AND status = 'pending' RETURNING step_id`,
      [status, noNul(reason), by, this.now, runId, [...stepIds]],
    );
    return [...new Set(r.rows.map((x) => x.step_id as string))];
  }

  async latestWorkflow(name: string): Promise<WorkflowRecord | undefined> {
    return (await this.workflowVersions(name)).sort((a, b) => rcompare(a.version, b.version))[0];
  }

  workflowVersions(name: string): Promise<WorkflowRecord[]> {
    return this.registryRows('workflows', this.workflowRows, toWorkflow, name);
  }

  agentVersions(name: string): Promise<AgentRecord[]> {
    return this.registryRows('agents', this.agentRows, toAgent, name);
  }

  /** Enabled event triggers by event name, read in this transaction (with BEGIN when the hint named them). */
  private readonly eventTriggerRows = new Map<string, EventTriggerRow[]>();

  async eventTriggers(name: string, source: string | null): Promise<EventTriggerRow[]> {
    if (!this.eventTriggerRows.has(name)) {
      this.deferEventTriggerReads([name]);
      await this.p.flush();
    }
    return (this.eventTriggerRows.get(name) ?? []).filter((t) => t.event_source === null || t.event_source === source);
  }

  private deferEventTriggerReads(names: readonly string[]): void {
    const want = [...new Set(names)].filter((n) => !this.eventTriggerRows.has(n));
    if (want.length === 0) return;
    this.flushWrites();
    this.p.defer(
      this.p.statement(
        `SELECT id, workflow_name, workflow_version, event_type, event_source, config_json FROM triggers
         WHERE type = 'event' AND event_type = ANY($1) AND enabled = 1 ORDER BY id`,
        [want],
      ),
      (r) => {
        for (const n of want) this.eventTriggerRows.set(n, []);
        for (const row of r.rows) this.eventTriggerRows.get(row.event_type as string)?.push(toEventTrigger(row));
      },
    );
  }

  async insertEmittedEvent(row: EmittedEventRecord): Promise<boolean> {
    // A concurrent insert of the same id makes this one wait for it: then nothing (it committed) or the row (it rolled back).
    const r = await this.q('INSERT INTO emitted_events (id, name, source, data, run_ids, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING', [
      row.id, row.name, row.source, noNul(row.data_json), JSON.stringify(row.run_ids), row.created_at,
    ]);
    return r.rowCount === 1;
  }

  async getEmittedEvent(id: string): Promise<EmittedEventRecord | undefined> {
    const r = (await this.q('SELECT * FROM emitted_events WHERE id = $1', [id])).rows[0];
    return r ? toEmittedEvent(r) : undefined;
  }

  async setEmittedEventRuns(id: string, runIds: readonly string[]): Promise<void> {
    this.later('UPDATE emitted_events SET run_ids = $1 WHERE id = $2', [JSON.stringify(runIds), id]);
  }

  /** Registry rows read in this transaction, by name (a name with no rows maps to []). */
  private readonly workflowRows = new Map<string, WorkflowRecord[]>();
  private readonly agentRows = new Map<string, AgentRecord[]>();

  private async registryRows<R>(table: 'workflows' | 'agents', cache: Map<string, R[]>, map: (row: Row) => R, name: string): Promise<R[]> {
    if (!cache.has(name)) {
      this.deferRegistryReads(table, cache, map, [name]);
      await this.p.flush();
    }
    return cache.get(name) ?? [];
  }

  /** Queue the read of every version of these names (one statement), into `cache`. */
  private deferRegistryReads<R>(table: 'workflows' | 'agents', cache: Map<string, R[]>, map: (row: Row) => R, names: readonly string[]): void {
    const want = [...new Set(names)].filter((n) => !cache.has(n));
    if (want.length === 0) return;
    this.flushWrites();
    this.p.defer(this.p.statement(`SELECT * FROM ${table} WHERE name = ANY($1) ORDER BY created_at`, [want]), (r) => {
      for (const n of want) cache.set(n, []);
      for (const row of r.rows) cache.get(row.name as string)?.push(map(row));
    });
  }
}

/** `SET a = $1, b = $2, …` and its values, for the fields present in an update. */
function updateSql(update: StepUpdate): { set: string; values: unknown[] } {
  const { set, keys } = setClause(update, (i) => `$${i}`);
  // Integer columns: a fractional lease (lease_ms from the environment) must not fail the statement.
  return { set, values: keys.map((k) => noNul(int(update[k]))) };
}

/** A number as an integer (BIGINT/INTEGER parameters refuse fractions, SQLite just stores them). */
function int<T>(v: T): T {
  return (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v) : v) as T;
}

/**
 * PostgreSQL text cannot hold NUL characters (SQLite's can): an agent's raw output or error message
 * with one would make its result unrecordable. They become U+FFFD. (JSON text never has raw NULs.)
 */
export function noNul<T>(v: T): T {
  return (typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v) as T;
}

/** A step row as this transaction holds it (locked). */
interface LockedStep {
  status: string;
  /** Set when this transaction wrote it (a renewal); undefined: as read. */
  lease_until?: number | null;
  attempt: number;
  retry_count: number;
  interruptions: number;
  lease_owner: string | null;
  pending_deps: number;
}

function lockedStep(row: Row): LockedStep {
  return {
    status: row.status as string,
    attempt: row.attempt as number,
    retry_count: (row.retry_count as number | undefined) ?? 0,
    interruptions: (row.interruptions as number | undefined) ?? 0,
    lease_owner: (row.lease_owner as string | null) ?? null,
    pending_deps: (row.pending_deps as number | undefined) ?? 0,
  };
}

/** SQL array types of the updatable step columns. */
const COLUMN_TYPES: Record<keyof StepUpdate, string> = {
  status: 'text', attempt: 'int', retry_count: 'int', interruptions: 'int', pending_deps: 'int', lease_owner: 'text', lease_until: 'bigint',
  available_at: 'bigint', inputs_json: 'text', outputs_json: 'text', error: 'text', started_at: 'bigint', completed_at: 'bigint', duration_ms: 'bigint', pid: 'int',
};
