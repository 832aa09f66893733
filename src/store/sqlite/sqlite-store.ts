import Database from 'better-sqlite3';
import semver from 'semver';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { ExitCode, StoreError } from '../../core/errors.js';
import type { RunEvent } from '../../core/events.js';
import type { Durability, PutResult, Store } from '../store.js';
import type {
  AgentRecord,
  ClaimableRow,
  EventRow,
  LedgerTx,
  NewRunRow,
  NewStepRow,
  RunFilter,
  RunRecord,
  RunState,
  StepKey,
  StepLog,
  StepRecord,
  StepUpdate,
  WorkerRecord,
  WorkflowRecord,
} from '../types.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export interface SqliteStoreOptions {
  /** Path of the database file; created (with its directory) when absent. */
  path: string;
  /** `full`: fsync every commit (survives power loss). `process`: survives a process crash only. */
  durability: Durability;
  /** How long a writer waits for another process's write lock. */
  busyTimeoutMs?: number;
  /** How often `waitForChange` looks at the database's data version. */
  changePollMs?: number;
}

const APPLICATION_ID = 'swarm';
/** At most this many transactions share one commit. */
const MAX_TX_PER_COMMIT = 256;

interface PendingTx {
  fn: (tx: LedgerTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}
/**
 * Wait `ms`, or until `wake` settles. A plain promise, not an AbortSignal: a worker is woken after
 * nearly every step, and EventTarget dispatch and AbortError objects are not free.
 */
function pause(ms: number, wake?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void wake?.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** One lock per database file in this process (see `exclusive`). */
const FILE_LOCKS = new Map<string, Promise<void>>();
const SQLITE_HEADER = 'SQLite format 3\0';

type Row = Record<string, unknown>;

/**
 * The embedded store: one SQLite file in WAL mode. Several processes on one machine may share it;
 * SQLite's write lock serialises their transactions and `busy_timeout` makes them wait their turn.
 *
 * @example
 *   const store = openSqliteStore({ path: '.swarm/swarm.db', durability: 'full' });
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly location: string;
  private readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();

  private readonly changePollMs: number;
  private closed = false;
  private readonly pendingTx: PendingTx[] = [];
  private drainScheduled = false;

  constructor(options: SqliteStoreOptions) {
    this.location = resolvePath(options.path);
    this.changePollMs = options.changePollMs ?? 5;
    checkIsSqliteFile(options.path);
    mkdirSync(dirname(options.path), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 10_000 });
      // Refuse someone else's database before changing anything in it (even its journal mode).
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
      if (tables.length > 0 && !(tables.includes('schema_migrations') && tables.includes('swarm_meta'))) {
        throw notSwarm(options.path, `it has tables (${tables.slice(0, 3).join(', ')}) but no Swarm schema`);
      }
      db.pragma('journal_mode = WAL');
      // Checkpoint less often inside commits; idle workers checkpoint in the background (checkpoint()).
      db.pragma('wal_autocheckpoint = 4000');
      db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      this.db = db;
      this.migrate();
    } catch (e) {
      if (db?.open) db.close();
      if (e instanceof StoreError) throw e;
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_NOTADB') throw notSwarm(options.path, 'it is not a SQLite database');
      throw new StoreError('STORE_OPEN_FAILED', `cannot open the store at ${options.path}: ${(e as Error).message}`, { file: options.path }, { cause: e });
    }
  }

  // ---- schema ----

  /**
   * Check and migrate the schema in one write transaction, so that processes opening a new file at
   * the same moment never see a half-made schema: the second waits, then finds it complete.
   */
  private migrate(): void {
    this.db
      .transaction(() => {
        const tables = this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
        if (tables.length > 0 && !(tables.includes('schema_migrations') && tables.includes('swarm_meta'))) {
          throw notSwarm(this.location, tables.includes('schema_migrations') ? 'its schema_migrations table is not Swarm’s' : `it has tables (${tables.slice(0, 3).join(', ')}) but no Swarm schema`);
        }
        this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
        const current = (this.db.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get() as number | null) ?? 0;
        if (current !== 0) {
          const app = this.db.prepare(`SELECT value FROM swarm_meta WHERE key = 'application'`).pluck().get() as string | undefined;
          if (app !== APPLICATION_ID) throw notSwarm(this.location, 'its schema_migrations table is not Swarm’s');
        }
        if (current > SCHEMA_VERSION) {
          throw new StoreError(
            'STORE_SCHEMA_NEWER',
            `the store at ${this.location} has schema version ${current}, newer than this Swarm understands (${SCHEMA_VERSION}); upgrade Swarm`,
            { file: this.location, found: current, supported: SCHEMA_VERSION },
            { exitCode: ExitCode.INVALID_INPUT },
          );
        }
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          this.db.exec(m.sql);
          if (m.version === 1) this.db.prepare(`INSERT INTO swarm_meta (key, value) VALUES ('application', ?)`).run(APPLICATION_ID);
          this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        }
      })
      .immediate();
  }

  /** The schema version recorded in the file. */
  schemaVersion(): number {
    return (this.db.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get() as number | null) ?? 0;
  }

  // ---- plumbing ----

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Serialise all use of the connection: a transaction awaits between statements. The lock is shared
   * by every store object on the same file in this process, because a second connection's
   * BEGIN IMMEDIATE would block the event loop while the first awaits inside its transaction.
   */
  private exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const key = this.location;
    const next = (FILE_LOCKS.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    FILE_LOCKS.set(key, tail);
    void tail.then(() => {
      if (FILE_LOCKS.get(key) === tail) FILE_LOCKS.delete(key);
    });
    return next;
  }

  /**
   * Group commit across callers: every transaction waiting for the connection joins one
   * BEGIN … COMMIT, each inside its own SAVEPOINT (a failing one is rolled back alone). Nobody is told
   * "done" before the shared COMMIT, so durability is per transaction while the fsync is shared.
   */
  transaction<T>(fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingTx.push({ fn: fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.drainScheduled) {
        this.drainScheduled = true;
        void this.exclusive(() => this.drainTransactions());
      }
    });
  }

  private async drainTransactions(): Promise<void> {
    const done: Array<{ item: PendingTx; ok: boolean; value: unknown }> = [];
    try {
      this.stmt('BEGIN IMMEDIATE').run();
    } catch (e) {
      this.drainScheduled = false;
      for (const item of this.pendingTx.splice(0)) item.reject(e);
      return;
    }
    let current: PendingTx | undefined;
    try {
      // Take everything queued, including what arrives while earlier ones run (up to a bound). The
      // first needs no savepoint: if it fails, nothing else has been done yet and all is rolled back.
      while (this.pendingTx.length > 0 && done.length < MAX_TX_PER_COMMIT) {
        const item = this.pendingTx.shift() as PendingTx;
        current = item;
        const first = done.length === 0;
        if (!first) this.stmt('SAVEPOINT swarm_tx').run();
        try {
          const value = await item.fn(new SqliteTx(this.db, (sql) => this.stmt(sql), Date.now()));
          if (!first) this.stmt('RELEASE swarm_tx').run();
          done.push({ item, ok: true, value });
        } catch (e) {
          if (first) {
            current = undefined;
            if (this.db.inTransaction) this.stmt('ROLLBACK').run();
            item.reject(e);
            this.settleLeftovers();
            return;
          }
          // SQLite may already have rolled the whole transaction back (disk full, I/O error).
          if (!this.db.inTransaction) throw e;
          this.stmt('ROLLBACK TO swarm_tx').run();
          this.stmt('RELEASE swarm_tx').run();
          done.push({ item, ok: false, value: e });
        }
        current = undefined;
      }
      this.stmt('COMMIT').run();
    } catch (e) {
      // Nothing of this batch was committed: every caller in it hears so, the current one too.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.settleLeftovers();
      current?.reject(e);
      for (const d of done) d.item.reject(e);
      return;
    }
    this.settleLeftovers();
    for (const d of done) {
      if (d.ok) d.item.resolve(d.value);
      else d.item.reject(d.value);
    }
  }

  /** After a drain: let the next arrival schedule a new one, or schedule it now for what is left. */
  private settleLeftovers(): void {
    this.drainScheduled = this.pendingTx.length > 0;
    if (this.drainScheduled) void this.exclusive(() => this.drainTransactions());
  }

  private read<T>(fn: () => T): Promise<T> {
    return this.exclusive(fn);
  }

  // ---- registry ----

  /**
   * (name, version) is unique: the same content again is a no-op, different content an error unless
   * forced. Returns what the put will do, or undefined for "nothing".
   */
  private versionCheck(table: 'agents' | 'workflows', rec: { name: string; version: string; digest: string }, force: boolean): PutResult | undefined {
    const existing = this.stmt(`SELECT digest FROM ${table} WHERE name = ? AND version = ?`).get(rec.name, rec.version) as Row | undefined;
    if (!existing) return 'created';
    if (existing.digest === rec.digest) return undefined;
    if (force) return 'replaced';
    const kind = table === 'agents' ? 'agent' : 'workflow';
    throw new StoreError(
      `${kind.toUpperCase()}_VERSION_EXISTS`,
      `${kind} ${rec.name}@${rec.version} is already registered with different content; bump its version or use --force`,
      { [kind]: `${rec.name}@${rec.version}` },
      { exitCode: ExitCode.INVALID_INPUT },
    );
  }

  putAgent(rec: AgentRecord, force: boolean): Promise<PutResult> {
    return this.exclusive(() => {
      const result = this.versionCheck('agents', rec, force);
      if (!result) return 'unchanged';
      const m = rec.manifest;
      this.stmt(
        `INSERT INTO agents (id, name, version, path, description, capabilities, inputs_schema, outputs_schema, runtime, memory_mb,
           timeout_seconds, triggers, author, tags, manifest, digest, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name, version) DO UPDATE SET path = excluded.path, description = excluded.description,
           capabilities = excluded.capabilities, inputs_schema = excluded.inputs_schema, outputs_schema = excluded.outputs_schema,
           runtime = excluded.runtime, memory_mb = excluded.memory_mb, timeout_seconds = excluded.timeout_seconds,
           triggers = excluded.triggers, author = excluded.author, tags = excluded.tags, manifest = excluded.manifest,
           digest = excluded.digest, updated_at = excluded.updated_at`,
      ).run(
        rec.id, rec.name, rec.version, rec.path, m.description ?? null, JSON.stringify(m.capabilities), JSON.stringify(m.inputs),
        JSON.stringify(m.outputs), m.runtime.type, m.runtime.memory_mb, m.runtime.timeout_seconds, JSON.stringify(m.triggers),
        m.author ?? null, JSON.stringify(m.tags), JSON.stringify(m), rec.digest, rec.created_at, rec.updated_at,
      );
      return result;
    });
  }

  listAgents(name?: string): Promise<AgentRecord[]> {
    return this.read(() => {
      const rows = (name
        ? this.stmt('SELECT * FROM agents WHERE name = ? ORDER BY name, created_at').all(name)
        : this.stmt('SELECT * FROM agents ORDER BY name, created_at').all()) as Row[];
      return rows.map(toAgent);
    });
  }

  deleteAgent(name: string, version: string): Promise<boolean> {
    return this.exclusive(() => this.stmt('DELETE FROM agents WHERE name = ? AND version = ?').run(name, version).changes > 0);
  }

  putWorkflow(rec: WorkflowRecord, force: boolean): Promise<PutResult> {
    return this.exclusive(() => {
      const result = this.versionCheck('workflows', rec, force);
      if (!result) return 'unchanged';
      const m = rec.manifest;
      this.stmt(
        `INSERT INTO workflows (id, name, version, path, description, trigger_type, trigger_config, steps, variables, on_error,
           on_success, enabled, author, tags, manifest, digest, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name, version) DO UPDATE SET path = excluded.path, description = excluded.description,
           trigger_type = excluded.trigger_type, trigger_config = excluded.trigger_config, steps = excluded.steps,
           variables = excluded.variables, on_error = excluded.on_error, on_success = excluded.on_success,
           author = excluded.author, tags = excluded.tags, manifest = excluded.manifest, digest = excluded.digest,
           updated_at = excluded.updated_at`,
      ).run(
        rec.id, rec.name, rec.version, rec.path, m.description ?? null, m.trigger.type, JSON.stringify(m.trigger), JSON.stringify(m.steps),
        JSON.stringify(m.variables), JSON.stringify(m.on_error), JSON.stringify(m.on_success), rec.enabled ? 1 : 0, m.author ?? null,
        JSON.stringify(m.tags), JSON.stringify(m), rec.digest, rec.created_at, rec.updated_at,
      );
      return result;
    });
  }

  listWorkflows(name?: string): Promise<WorkflowRecord[]> {
    return this.read(() => {
      const rows = (name
        ? this.stmt('SELECT * FROM workflows WHERE name = ? ORDER BY name, created_at').all(name)
        : this.stmt('SELECT * FROM workflows ORDER BY name, created_at').all()) as Row[];
      return rows.map(toWorkflow);
    });
  }

  setWorkflowEnabled(name: string, enabled: boolean): Promise<number> {
    return this.exclusive(() => this.stmt('UPDATE workflows SET enabled = ?, updated_at = ? WHERE name = ?').run(enabled ? 1 : 0, Date.now(), name).changes);
  }

  // ---- runs ----

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.read(() => {
      const row = this.stmt(`SELECT ${RUN_COLUMNS} FROM workflow_runs WHERE id = ?`).get(id) as Row | undefined;
      return row ? toRun(row) : undefined;
    });
  }

  findRunIds(part: string, limit: number, how: 'prefix' | 'suffix' = 'prefix'): Promise<string[]> {
    return this.read(() =>
      how === 'prefix'
        ? (this.stmt(`SELECT id FROM workflow_runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`).pluck().all(part, `${part}\uffff`, limit) as string[])
        : (this.stmt(`SELECT id FROM workflow_runs WHERE substr(id, -length(?)) = ? ORDER BY id LIMIT ?`).pluck().all(part, part, limit) as string[]),
    );
  }

  listRuns(filter: RunFilter): Promise<RunRecord[]> {
    return this.read(() => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.workflow) {
        where.push('workflow_name = ?');
        args.push(filter.workflow);
      }
      if (filter.status) {
        where.push('status = ?');
        args.push(filter.status);
      }
      if (filter.since !== undefined) {
        where.push('created_at >= ?');
        args.push(filter.since);
      }
      const sql = `SELECT ${RUN_COLUMNS} FROM workflow_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
      return (this.db.prepare(sql).all(...args, filter.limit ?? 50) as Row[]).map(toRun);
    });
  }

  getPlanJson(runId: string): Promise<string | undefined> {
    return this.read(() => this.stmt('SELECT p.plan FROM workflow_runs r JOIN run_plans p ON p.id = r.plan_id WHERE r.id = ?').pluck().get(runId) as string | undefined);
  }

  getPlanById(planId: string): Promise<string | undefined> {
    return this.read(() => this.stmt('SELECT plan FROM run_plans WHERE id = ?').pluck().get(planId) as string | undefined);
  }

  getSteps(runId: string): Promise<StepRecord[]> {
    return this.read(() => (this.stmt('SELECT * FROM step_executions WHERE run_id = ? ORDER BY step_index').all(runId) as Row[]).map(toStep));
  }

  getStepOutputs(runId: string, stepIds: readonly string[]): Promise<Map<string, { status: string; outputs: unknown; error: string | null }>> {
    return this.read(() => {
      const out = new Map<string, { status: string; outputs: unknown; error: string | null }>();
      const s = this.stmt('SELECT status, outputs, error FROM step_executions WHERE id = ?');
      for (const id of stepIds) {
        const row = s.get(stepRowId(runId, id)) as Row | undefined;
        if (row) out.set(id, { status: row.status as string, outputs: parseJson(row.outputs), error: (row.error as string | null) ?? null });
      }
      return out;
    });
  }

  getEvents(runId: string, afterSeq = 0, limit = 100_000): Promise<Array<RunEvent & { data_json: string }>> {
    return this.read(() =>
      (this.stmt('SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(runId, afterSeq, limit) as Row[]).map((r) => ({
        run_id: r.run_id as string,
        seq: r.seq as number,
        type: r.type as RunEvent['type'],
        step_id: (r.step_id as string | null) ?? null,
        data: JSON.parse(r.data as string) as Record<string, unknown>,
        data_json: r.data as string,
        at: r.at as number,
        prev_hash: r.prev_hash as string,
        hash: r.hash as string,
      })),
    );
  }

  getLogs(runId: string, stepId?: string): Promise<StepLog[]> {
    return this.read(() => {
      const rows = (stepId
        ? this.stmt('SELECT * FROM step_logs WHERE run_id = ? AND step_id = ? ORDER BY at, attempt').all(runId, stepId)
        : this.stmt('SELECT * FROM step_logs WHERE run_id = ? ORDER BY at, step_id, attempt').all(runId)) as Row[];
      return rows.map((r) => ({
        run_id: r.run_id as string,
        step_id: r.step_id as string,
        attempt: r.attempt as number,
        stdout: r.stdout as string,
        stderr: r.stderr as string,
        truncated: r.truncated === 1,
        at: r.at as number,
      }));
    });
  }

  unfinishedRunIds(): Promise<string[]> {
    return this.read(() => this.stmt(`SELECT id FROM workflow_runs WHERE status IN ('queued', 'running') ORDER BY created_at`).pluck().all() as string[]);
  }

  nextDueAt(after: number): Promise<number | null> {
    return this.read(() => {
      const a = this.stmt(`SELECT MIN(available_at) FROM step_executions WHERE status = 'ready' AND available_at > ?`).pluck().get(after) as number | null;
      const b = this.stmt(`SELECT MIN(lease_until) FROM step_executions WHERE status = 'running' AND lease_until > ?`).pluck().get(after) as number | null;
      if (a === null) return b;
      if (b === null) return a;
      return Math.min(a, b);
    });
  }

  // ---- workers ----

  registerWorker(rec: WorkerRecord): Promise<void> {
    return this.exclusive(() => {
      this.stmt(
        `INSERT INTO workers (id, hostname, host_id, pid, concurrency, scope, started_at, heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
      ).run(rec.id, rec.hostname, rec.host_id, rec.pid, rec.concurrency, rec.scope, rec.started_at, rec.heartbeat_at);
    });
  }

  heartbeatWorker(id: string, at: number): Promise<void> {
    return this.exclusive(() => {
      this.stmt('UPDATE workers SET heartbeat_at = ? WHERE id = ?').run(at, id);
    });
  }

  stopWorker(id: string, at: number): Promise<void> {
    return this.exclusive(() => {
      this.stmt('UPDATE workers SET stopped_at = ?, heartbeat_at = ? WHERE id = ?').run(at, at, id);
    });
  }

  listWorkers(activeSince?: number): Promise<WorkerRecord[]> {
    return this.read(() => {
      const rows = (activeSince === undefined
        ? this.stmt('SELECT * FROM workers WHERE stopped_at IS NULL ORDER BY started_at').all()
        : this.stmt('SELECT * FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= ? ORDER BY started_at').all(activeSince)) as Row[];
      return rows.map((r) => ({
        id: r.id as string,
        hostname: r.hostname as string,
        host_id: r.host_id as string,
        pid: r.pid as number,
        concurrency: r.concurrency as number,
        scope: (r.scope as string | null) ?? null,
        started_at: r.started_at as number,
        heartbeat_at: r.heartbeat_at as number,
        stopped_at: (r.stopped_at as number | null) ?? null,
      }));
    });
  }

  expireLeasesOf(workerIds: readonly string[]): Promise<number> {
    return this.exclusive(() => {
      let n = 0;
      const s = this.stmt(`UPDATE step_executions SET lease_until = 0 WHERE status = 'running' AND lease_owner = ?`);
      const w = this.stmt('UPDATE workers SET stopped_at = COALESCE(stopped_at, ?) WHERE id = ?');
      this.db.transaction(() => {
        for (const id of workerIds) {
          n += s.run(id).changes;
          w.run(Date.now(), id);
        }
      }).immediate();
      return n;
    });
  }

  setStepPid(runId: string, stepId: string, attempt: number, pid: number | null): Promise<void> {
    return this.exclusive(() => {
      this.stmt('UPDATE step_executions SET pid = ? WHERE id = ? AND attempt = ?').run(pid, stepRowId(runId, stepId), attempt);
    });
  }

  pidsOf(workerIds: readonly string[]): Promise<Array<{ pid: number; run_id: string; step_id: string }>> {
    return this.read(() => {
      const s = this.stmt(`SELECT pid, run_id, step_id FROM step_executions WHERE status = 'running' AND lease_owner = ? AND pid IS NOT NULL`);
      return workerIds.flatMap((id) => s.all(id) as Array<{ pid: number; run_id: string; step_id: string }>);
    });
  }

  async waitForChange(timeoutMs: number, wake?: Promise<unknown>): Promise<void> {
    const start = this.dataVersion();
    const deadline = Date.now() + timeoutMs;
    let woken = false;
    void wake?.then(() => (woken = true));
    while (!this.closed && !woken && Date.now() < deadline) {
      await pause(Math.min(this.changePollMs, Math.max(1, deadline - Date.now())), wake);
      if (this.closed || this.dataVersion() !== start) return;
    }
  }

  /** Move committed WAL pages into the database file without blocking anyone (called when idle). */
  checkpoint(): Promise<void> {
    return this.exclusive(() => {
      if (!this.closed) this.db.pragma('wal_checkpoint(PASSIVE)');
    });
  }

  private dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.exclusive(() => {
      this.closed = true;
      this.db.close();
    });
  }
}

/** One write transaction's view: synchronous statements behind the async LedgerTx interface. */
class SqliteTx implements LedgerTx {
  constructor(
    private readonly db: Database.Database,
    private readonly stmt: (sql: string) => Database.Statement,
    readonly now: number,
  ) {}

  async getRunState(runId: string): Promise<RunState | undefined> {
    const r = this.stmt(
      `SELECT id, plan_id, status, steps_remaining, running_steps, max_parallel, event_seq, event_hash, started_at, completed_at, error, error_step
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
         steps_total, steps_remaining, running_steps, max_parallel, event_seq, event_hash, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?)`,
    ).run(
      row.id, row.workflow_id, row.workflow_name, row.workflow_version, row.trigger_type, row.trigger_data_json, row.plan_id,
      row.parent_run_id, row.steps_total, row.steps_total, row.max_parallel, '0'.repeat(64), row.created_at, row.created_at,
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

  async cancelSteps(runId: string, from: readonly string[]): Promise<string[]> {
    const placeholders = from.map(() => '?').join(', ');
    return this.stmt(
      `UPDATE step_executions SET status = 'cancelled', lease_owner = NULL, lease_until = NULL, completed_at = ?
       WHERE run_id = ? AND status IN (${placeholders}) RETURNING step_id`,
    )
      .pluck()
      .all(this.now, runId, ...from) as string[];
  }

  async selectClaimable(limit: number, runIds?: readonly string[]): Promise<ClaimableRow[]> {
    const cols = 'run_id, step_id, status, attempt, retry_count, interruptions, lease_owner';
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
    const ready = this.stmt(
      `SELECT s.run_id, s.step_id, s.status, s.attempt, s.retry_count, s.interruptions, s.lease_owner FROM step_executions s JOIN workflow_runs r ON r.id = s.run_id
       WHERE s.status = 'ready' AND s.available_at <= ? AND r.running_steps < r.max_parallel AND r.status IN ('queued', 'running')
       ORDER BY s.available_at LIMIT ?`,
    ).all(this.now, limit) as ClaimableRow[];
    const expired = this.stmt(`SELECT ${cols} FROM step_executions WHERE status = 'running' AND lease_until < ? ORDER BY lease_until LIMIT ?`).all(this.now, limit) as ClaimableRow[];
    return expired.length ? [...expired, ...ready] : ready;
  }

  async getSteps(runId: string): Promise<StepRecord[]> {
    return (this.stmt('SELECT * FROM step_executions WHERE run_id = ? ORDER BY step_index').all(runId) as Row[]).map(toStep);
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

  async latestWorkflow(name: string): Promise<WorkflowRecord | undefined> {
    const rows = (this.stmt('SELECT * FROM workflows WHERE name = ?').all(name) as Row[]).map(toWorkflow);
    return rows.sort((a, b) => semver.rcompare(a.version, b.version))[0];
  }

  async agentVersions(name: string): Promise<AgentRecord[]> {
    return (this.stmt('SELECT * FROM agents WHERE name = ?').all(name) as Row[]).map(toAgent);
  }
}

// ---- row mapping ----

const RUN_COLUMNS = `id, plan_id, workflow_id, workflow_name, workflow_version, status, trigger_type, trigger_data, parent_run_id, steps_total, steps_remaining,
  running_steps, max_parallel, event_seq, event_hash, error, error_step, created_at, started_at, completed_at, updated_at`;

export function stepRowId(runId: string, stepId: string): string {
  return `${runId}/${stepId}`;
}

function parseJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v === undefined ? null : v;
}

function toAgent(r: Row): AgentRecord {
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

function toWorkflow(r: Row): WorkflowRecord {
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

function toRun(r: Row): RunRecord {
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
  };
}

function toStep(r: Row): StepRecord {
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
  };
}

const UPDATE_COLUMNS: Record<keyof StepUpdate, string> = {
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

const EVENT_ROWS = Array.from({ length: 33 }, (_, n) => Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', '));
const UPDATE_SQL = new Map<string, string>();

function updateSql(update: StepUpdate): { sql: string; values: unknown[] } {
  const keys = (Object.keys(update) as Array<keyof StepUpdate>).filter((k) => update[k] !== undefined);
  const shape = keys.join(',');
  let sql = UPDATE_SQL.get(shape);
  if (sql === undefined) {
    sql = keys.map((k) => `${UPDATE_COLUMNS[k]} = ?`).join(', ');
    UPDATE_SQL.set(shape, sql);
  }
  return { sql, values: keys.map((k) => update[k]) };
}

function notSwarm(path: string, why: string): StoreError {
  return new StoreError('STORE_NOT_SWARM', `${path} is not a Swarm database: ${why}`, { file: path }, { exitCode: ExitCode.INVALID_INPUT });
}

/** Refuse a non-empty file that is not SQLite before SQLite gets a chance to touch it. */
function checkIsSqliteFile(path: string): void {
  if (!existsSync(path) || statSync(path).size === 0) return;
  if (statSync(path).isDirectory()) throw notSwarm(path, 'it is a directory');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(16);
    readSync(fd, buf, 0, 16, 0);
    if (buf.toString('latin1') !== SQLITE_HEADER) throw notSwarm(path, 'it is not a SQLite database');
  } finally {
    closeSync(fd);
  }
}
