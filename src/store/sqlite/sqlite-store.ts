import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { ExitCode, StoreError } from '../../core/errors.js';
import type { RunEvent } from '../../core/events.js';
import type { Durability, PutResult, Store } from '../store.js';
import type {
  AgentCheckpointWrite,
  AgentMessageRecord,
  AgentSessionRecord,
  ApprovalRecord,
  SessionFilter,
  ToolCallRecord,
  AgentRecord,
  LedgerTx,
  RunFilter,
  RunChangeFilter,
  RekeyPlan,
  RekeyReport,
  RunRecord,
  RunTraceRecord,
  SecretRecord,
  ApiTokenRecord,
  LeaseRecord,
  StepLog,
  TriggerFilter,
  TriggerRecord,
  StepRecord,
  WorkerRecord,
  WorkflowRecord,
} from '../types.js';
import {
  parseJson,
  RUN_COLUMNS,
  SESSION_COLUMNS,
  sessionWhere,
  stepRowId,
  toAgent,
  toAgentMessage,
  toAgentSession,
  toApproval,
  toEvent,
  toRun,
  toSecret,
  toApiToken,
  toStep,
  toStepLog,
  toToolCall,
  toWorker,
  toWorkflow,
  toTrigger,
  TRIGGER_COLUMNS,
  triggerRowFor,
  agentPut,
  workflowPut,
  webhookPathTaken,
  type Row,
  KEY_CHECK_META_KEY,
  rekeyRefused,
  SECRETS_GENERATION_KEY,
  REGISTRY_GENERATION_KEY,
} from '../rows.js';
import { sqliteFault } from '../faults.js';
import { checkMigrationIdentity, type MigrationIdentity } from '../migration-identity.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { SqliteTx } from './sqlite-tx.js';
import { readRunConcurrency } from './concurrency-sql.js';
import type { RunConcurrencyInfo } from '../types.js';
import { getStepWait, listRunSignals, nextWakeAt } from './waits-sql.js';
import type { RunSignalRecord, StepWaitRecord } from '../wait-types.js';
import { stepItem } from './nesting-sql.js';
import * as retention from './retention-sql.js';
import type { CompactOptions, CompactReport, DatabaseSize, ExpiredRunPage, ExpiredRunQuery, RunDeleteReport, RunTree } from '../retention-types.js';
import { observeCommit, queueGauges } from './gauges-sql.js';
import { budgetScopes, reserveBudget, settleBudget } from './budget-sql.js';
import type { BudgetReserveRequest, BudgetReserveResult, BudgetScopeUsage, BudgetSettleRequest, BudgetWarning } from '../budget-types.js';
import * as breakersSql from './breakers-sql.js';
import * as sw4rmStateSql from './sw4rm-state-sql.js';
import { sw4rmStateWrite, type Sw4rmStateRow } from '../sw4rm-state-types.js';
import * as sw4rmSched from './sw4rm-sched-sql.js';
import type { Sw4rmDoc, Sw4rmGroupChange, Sw4rmGroupWrite } from '../sw4rm-sched-types.js';
import * as sw4rmSql from './sw4rm-router-sql.js';
import type { Sw4rmAckItem, Sw4rmAgentRow, Sw4rmAgentWrite, Sw4rmMessageRow, Sw4rmMessageState, Sw4rmSendItem, Sw4rmSendOutcome, Sw4rmSweepResult } from '../sw4rm-router-types.js';
import type { BreakerChange, BreakerRow } from '../breaker-types.js';
import * as memory from './memory-sql.js';
import type { MemoryListQuery, MemoryRecord, MemorySearch, MemoryWrite, ScoredMemory } from '../memory-types.js';
import type { CommitObserver, QueueGauges } from '../commit-observer.js';
import * as executorsSql from './executors-sql.js';
import type { ExecutorRecord, ExecutorWrite } from '../executor-types.js';
import { sqliteConsensusReads } from './consensus-sql.js';
import type { ConsensusCandidateRow, ConsensusCosts, ConsensusDecisionRow, ConsensusResultRow, ConsensusTaskQuery, ConsensusTaskRow, ConsensusVoteRow } from '../consensus-types.js';
import * as knowledgeSql from './knowledge-sql.js';
import type { KnowledgeDecisionQuery, KnowledgeDecisionRow, KnowledgeDecisionWrite, KnowledgeLookupRow, KnowledgeLookupWrite, KnowledgeProposalRow, KnowledgeTrackFilter, KnowledgeTrackRow } from '../knowledge-types.js';
import * as keysSql from './keys-sql.js';
import type { SigningKeyInsert, SigningKeyRecord } from '../keys-types.js';
import * as forkSql from './fork-sql.js';
import type { LineageNode } from '../fork-types.js';
import * as shareSql from './share-sql.js';
import type { ImportedBundleRecord } from '../share-types.js';

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

const TRIGGER_UPSERT = `INSERT INTO triggers (${TRIGGER_COLUMNS.join(', ')}) VALUES (${TRIGGER_COLUMNS.map(() => '?').join(', ')})
  ON CONFLICT(id) DO UPDATE SET ${TRIGGER_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')},
    buffered_tick = CASE WHEN triggers.type = excluded.type THEN triggers.buffered_tick ELSE NULL END`;

/** One lock per database file in this process (see `exclusive`). */
const FILE_LOCKS = new Map<string, Promise<void>>();
const SQLITE_HEADER = 'SQLite format 3\0';


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
  /** Reads of `swarm_meta` counters queued and not yet begun, by key, shared by who asks meanwhile. */
  private readonly counterReads = new Map<string, Promise<string>>();
  /** Told about each transaction's work and each commit (metrics); undefined: no extra work at all. */
  private observer: CommitObserver | undefined;

  constructor(options: SqliteStoreOptions) {
    this.location = resolvePath(options.path);
    this.changePollMs = options.changePollMs ?? 5;
    let db: Database.Database | undefined;
    try {
      checkIsSqliteFile(options.path);
      mkdirSync(dirname(options.path), { recursive: true });
      db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 10_000 });
      // Refuse someone else's database before changing anything in it (even its journal mode).
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
      if (tables.length > 0 && !(tables.includes('schema_migrations') && tables.includes('swarm_meta'))) {
        throw notSwarm(options.path, `it has tables (${tables.slice(0, 3).join(', ')}) but no Swarm schema`);
      }
      db.pragma('journal_mode = WAL');
      // Checkpoint less often inside commits; idle workers checkpoint in the background (checkpoint()).
      db.pragma('wal_autocheckpoint = 4000');
      // Statement journals in memory: each transaction of a group commit runs in a SAVEPOINT, whose
      // journal (the original of every page it touches, kept to roll that one transaction back)
      // would otherwise be written to a temporary file, two writes per page, 10-15 pages per run
      // created. It never needs to survive the process (a crash rolls the whole commit back from
      // the WAL). Temporary tables and sorts too large for the cache are then kept in memory as well;
      // the listings read in index order and by pages, so none sorts a whole table.
      db.pragma('temp_store = MEMORY');
      db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      this.db = db;
      this.migrate();
    } catch (e) {
      if (db?.open) db.close();
      if (e instanceof StoreError) throw e;
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_NOTADB') throw notSwarm(options.path, 'it is not a SQLite database');
      const fault = sqliteFault(e, this.location, 'opening it');
      if (fault) throw fault;
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
        const recorded = this.db.prepare('SELECT version, name FROM schema_migrations').all() as MigrationIdentity[];
        const applied = new Set(recorded.map((m) => m.version));
        const current = Math.max(0, ...applied);
        if (current !== 0) {
          const app = this.db.prepare(`SELECT value FROM swarm_meta WHERE key = 'application'`).pluck().get() as string | undefined;
          if (app !== APPLICATION_ID) throw notSwarm(this.location, 'its schema_migrations table is not Swarm’s');
        }
        // A version this build does not know, or knows under another name: refused before any write.
        checkMigrationIdentity(recorded, MIGRATIONS, this.location, 'file');
        // Every migration not recorded yet, in order, including one below the newest applied: branches
        // developed side by side may number theirs 6 and 7, and a file migrated by the one holding 7
        // gets 6 when the two meet (migrations of different numbers touch different tables).
        for (const m of MIGRATIONS) {
          if (applied.has(m.version)) continue;
          this.db.exec(m.sql);
          if (m.version === 1) this.db.prepare(`INSERT INTO swarm_meta (key, value) VALUES ('application', ?)`).run(APPLICATION_ID);
          if (m.version === 6) this.backfillTriggers();
          this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        }
      })
      .immediate();
  }

  readonly supportedSchemaVersion = SCHEMA_VERSION;

  /**
   * Migration 6: trigger rows for the workflows registered before it. A webhook path two of them
   * claim goes to the first (by name); the other's registration is refused when it is next registered.
   */
  private backfillTriggers(): void {
    const now = Date.now();
    const byName = new Map<string, WorkflowRecord[]>();
    for (const w of (this.db.prepare('SELECT * FROM workflows ORDER BY name').all() as Row[]).map(toWorkflow)) byName.set(w.name, [...(byName.get(w.name) ?? []), w]);
    const insert = this.db.prepare(`INSERT OR IGNORE INTO triggers (${TRIGGER_COLUMNS.join(', ')}) VALUES (${TRIGGER_COLUMNS.map(() => '?').join(', ')})`);
    for (const versions of byName.values()) {
      const row = triggerRowFor(versions, undefined, now);
      if (row) insert.run(...TRIGGER_COLUMNS.map((c) => row[c]));
    }
  }

  initMeta(key: string, value: string): Promise<string> {
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          this.stmt('INSERT OR IGNORE INTO swarm_meta (key, value) VALUES (?, ?)').run(key, value);
          return this.stmt('SELECT value FROM swarm_meta WHERE key = ?').pluck().get(key) as string;
        })
        .immediate(),
    );
  }

  /** The schema version recorded in the file. */
  schemaVersion(): Promise<number> {
    return this.read(() => (this.stmt('SELECT MAX(version) FROM schema_migrations').pluck().get() as number | null) ?? 0);
  }

  runCounts(): Promise<Record<string, number>> {
    return this.read(() => Object.fromEntries((this.stmt('SELECT status, COUNT(*) AS n FROM workflow_runs GROUP BY status').all() as Array<{ status: string; n: number }>).map((r) => [r.status, r.n])));
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
  private exclusive<T>(fn: () => Promise<T> | T, during = 'writing'): Promise<T> {
    const key = this.location;
    const next = (FILE_LOCKS.get(key) ?? Promise.resolve()).then(fn, fn).catch((e: unknown) => {
      throw this.fault(e, during);
    });
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
        // Begin after the I/O callbacks of this turn of the event loop and of the next one:
        // requests that arrived together (an HTTP burst), and those their clients sent while the
        // burst was read, reach the queue first and share the commit (its fsync, and its WAL
        // frames: each page the batch touches is written once, whatever the number of runs).
        setImmediate(() => setImmediate(() => void this.exclusive(() => this.drainTransactions())));
      }
    });
  }

  private async drainTransactions(): Promise<void> {
    const done: Array<{ item: PendingTx; ok: boolean; value: unknown; tx?: SqliteTx }> = [];
    const observer = this.observer;
    const began = observer ? performance.now() : 0;
    try {
      this.stmt('BEGIN IMMEDIATE').run();
    } catch (e) {
      this.drainScheduled = false;
      for (const item of this.pendingTx.splice(0)) item.reject(this.fault(e, 'beginning a transaction'));
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
          const tx = new SqliteTx(this.db, (sql) => this.stmt(sql), Date.now(), observer);
          const value = await item.fn(tx);
          if (!first) this.stmt('RELEASE swarm_tx').run();
          done.push({ item, ok: true, value, tx });
        } catch (e) {
          if (first) {
            current = undefined;
            if (this.db.inTransaction) this.stmt('ROLLBACK').run();
            item.reject(this.fault(e, 'committing'));
            this.settleLeftovers();
            return;
          }
          // SQLite may already have rolled the whole transaction back (disk full, I/O error).
          if (!this.db.inTransaction) throw e;
          this.stmt('ROLLBACK TO swarm_tx').run();
          this.stmt('RELEASE swarm_tx').run();
          done.push({ item, ok: false, value: this.fault(e, 'committing') });
        }
        current = undefined;
      }
      this.stmt('COMMIT').run();
    } catch (e) {
      // Nothing of this batch was committed: every caller in it hears so, the current one too.
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // A rollback that fails (the disk is gone) leaves nothing committed either.
      }
      this.settleLeftovers();
      const fault = this.fault(e, 'committing');
      current?.reject(fault);
      for (const d of done) d.item.reject(fault);
      return;
    }
    this.settleLeftovers();
    if (observer) observeCommit(observer, began, done);
    for (const d of done) {
      if (d.ok) d.item.resolve(d.value);
      else d.item.reject(d.value);
    }
  }

  observeCommits(observer: CommitObserver | undefined): void {
    this.observer = observer;
  }

  queueGauges(liveWithinMs: number): Promise<QueueGauges> {
    return this.read(() => {
      const now = Date.now();
      return queueGauges((sql) => this.stmt(sql), now, now - liveWithinMs);
    });
  }

  getBreaker(key: string): Promise<BreakerRow | undefined> {
    return this.read(() => breakersSql.getBreaker((sql) => this.stmt(sql), key));
  }

  listBreakers(): Promise<BreakerRow[]> {
    return this.read(() => breakersSql.listBreakers((sql) => this.stmt(sql)));
  }

  updateBreaker(key: string, kind: string, change: BreakerChange): Promise<{ before: BreakerRow; after: BreakerRow }> {
    return this.exclusive(() => this.db.transaction(() => breakersSql.updateBreaker((sql) => this.stmt(sql), key, kind, change)).immediate());
  }

  deleteBreaker(key: string): Promise<BreakerRow | undefined> {
    return this.exclusive(() => this.db.transaction(() => breakersSql.deleteBreaker((sql) => this.stmt(sql), key)).immediate());
  }

  // ---- vector memory (memory-sql.ts) ----

  putMemory(m: MemoryWrite): Promise<{ id: string; created: boolean }> {
    return this.exclusive(() => {
      memory.loadVectorExtension(this.db, this.location);
      return this.db.transaction(() => memory.putMemory(this.db, (sql) => this.stmt(sql), m))();
    });
  }

  searchMemories(q: MemorySearch): Promise<ScoredMemory[]> {
    return this.read(() => {
      memory.loadVectorExtension(this.db, this.location);
      return memory.searchMemories((sql) => this.stmt(sql), q);
    });
  }

  listMemories(q: MemoryListQuery): Promise<MemoryRecord[]> {
    return this.read(() => memory.listMemories((sql) => this.stmt(sql), q));
  }

  deleteMemories(q: { namespace: string; id?: string }): Promise<number> {
    return this.exclusive(() => {
      memory.loadVectorExtension(this.db, this.location);
      return this.db.transaction(() => memory.deleteMemories((sql) => this.stmt(sql), q))();
    });
  }

  // ---- sw4rm router (sw4rm-router-sql.ts) ----

  // The hot calls (send, claim, ack) join the group commit: concurrent streams share one fsync.
  sw4rmSend(items: readonly Sw4rmSendItem[], leaseUntil: number): Promise<Sw4rmSendOutcome[]> {
    return this.transaction(() => Promise.resolve(sw4rmSql.sendMessages((sql) => this.stmt(sql), items, leaseUntil)));
  }

  sw4rmClaim(recipient: string, limit: number, now: number, leaseUntil: number): Promise<Sw4rmMessageRow[]> {
    return this.transaction(() => Promise.resolve(sw4rmSql.claimMessages((sql) => this.stmt(sql), recipient, limit, now, leaseUntil)));
  }

  sw4rmRequeue(recipient: string, maxAttempts: number, now: number): Promise<number> {
    return this.transaction(() => Promise.resolve(sw4rmSql.requeueInFlight((sql) => this.stmt(sql), recipient, maxAttempts, now)));
  }

  sw4rmAck(acks: readonly Sw4rmAckItem[], now: number): Promise<boolean[]> {
    return this.transaction(() => Promise.resolve(sw4rmSql.ackMessages((sql) => this.stmt(sql), acks, now)));
  }

  sw4rmSweep(now: number, maxAttempts: number, pruneBefore: number): Promise<Sw4rmSweepResult> {
    return this.exclusive(() => this.db.transaction(() => sw4rmSql.sweep((sql) => this.stmt(sql), now, maxAttempts, pruneBefore)).immediate());
  }

  sw4rmMessages(q: { state?: Sw4rmMessageState; recipient?: string; limit?: number }): Promise<Sw4rmMessageRow[]> {
    return this.read(() => sw4rmSql.listMessages((sql) => this.stmt(sql), q));
  }

  sw4rmReplayDead(seq: number | 'all', now: number): Promise<Sw4rmMessageRow[]> {
    return this.exclusive(() => this.db.transaction(() => sw4rmSql.replayDead((sql) => this.stmt(sql), seq, now)).immediate());
  }

  sw4rmDropDead(seq: number | 'all'): Promise<number> {
    return this.exclusive(() => sw4rmSql.dropDead((sql) => this.stmt(sql), seq));
  }

  sw4rmPutAgent(a: Sw4rmAgentWrite, now: number): Promise<void> {
    return this.exclusive(() => sw4rmSql.putAgent((sql) => this.stmt(sql), a, now));
  }

  sw4rmEnsureAgent(agentId: string, now: number): Promise<void> {
    return this.exclusive(() => sw4rmSql.ensureAgent((sql) => this.stmt(sql), agentId, now));
  }

  sw4rmHeartbeat(agentId: string, agentState: string, health: string, now: number): Promise<boolean> {
    return this.exclusive(() => sw4rmSql.heartbeat((sql) => this.stmt(sql), agentId, agentState, health, now));
  }

  sw4rmDeregisterAgent(agentId: string, reason: string, now: number): Promise<boolean> {
    return this.exclusive(() => sw4rmSql.deregisterAgent((sql) => this.stmt(sql), agentId, reason, now));
  }

  sw4rmAgents(): Promise<Sw4rmAgentRow[]> {
    return this.read(() => sw4rmSql.listAgents((sql) => this.stmt(sql)));
  }

  sw4rmMarkUnavailable(before: number): Promise<string[]> {
    return this.exclusive(() => sw4rmSql.markUnavailable((sql) => this.stmt(sql), before));
  }

  sw4rmTouchAgents(agentIds: readonly string[], now: number): Promise<void> {
    return this.exclusive(() => this.db.transaction(() => sw4rmSql.touchAgents((sql) => this.stmt(sql), agentIds, now)).immediate());
  }

  // ---- sw4rm registry, scheduler, negotiation and HITL (sw4rm-registry-sql.ts) ----

  getSw4rmDocs(kind: string, keys: readonly string[]): Promise<Sw4rmDoc[]> {
    return this.read(() => sw4rmSched.getSw4rmDocs((sql) => this.stmt(sql), kind, keys));
  }

  listSw4rmDocs(kind: string, by: { group: string } | { owner: string }): Promise<Sw4rmDoc[]> {
    return this.read(() => sw4rmSched.listSw4rmDocs((sql) => this.stmt(sql), kind, by));
  }

  updateSw4rmGroup(group: string, kinds: readonly string[], change: Sw4rmGroupChange): Promise<Sw4rmGroupWrite> {
    return this.exclusive(() => this.db.transaction(() => sw4rmSched.updateSw4rmGroup((sql) => this.stmt(sql), group, kinds, change)).immediate());
  }

  // ---- sw4rm agent state (sw4rm-state-sql.ts) ----

  getSw4rmState(agentId: string, kind: string, key = ''): Promise<Sw4rmStateRow | undefined> {
    return this.read(() => sw4rmStateSql.getSw4rmState((sql) => this.stmt(sql), agentId, kind, key));
  }

  /** Joins the group commit: agents saving at once share the fsync. */
  async putSw4rmState(agentId: string, kind: string, value: unknown, key = ''): Promise<Sw4rmStateRow> {
    const json = sw4rmStateWrite(agentId, kind, key, value);
    return this.transaction(() => {
      const now = Date.now();
      sw4rmStateSql.putSw4rmState((sql) => this.stmt(sql), agentId, kind, key, json, now);
      return Promise.resolve({ agent_id: agentId, kind, key, value: JSON.parse(json) as unknown, updated_at: now });
    });
  }

  listSw4rmState(agentId: string): Promise<Sw4rmStateRow[]> {
    return this.read(() => sw4rmStateSql.listSw4rmState((sql) => this.stmt(sql), agentId));
  }

  deleteSw4rmState(agentId: string, kind?: string): Promise<number> {
    return this.exclusive(() => sw4rmStateSql.deleteSw4rmState((sql) => this.stmt(sql), agentId, kind));
  }

  // ---- executors registry (exec) (migration 24) ----
  putExecutor(e: ExecutorWrite): Promise<ExecutorRecord> {
    return this.exclusive(() => executorsSql.putExecutor((sql) => this.stmt(sql), e, Date.now()));
  }

  getExecutor(name: string): Promise<ExecutorRecord | undefined> {
    return this.read(() => executorsSql.getExecutor((sql) => this.stmt(sql), name));
  }

  listExecutors(): Promise<ExecutorRecord[]> {
    return this.read(() => executorsSql.listExecutors((sql) => this.stmt(sql)));
  }

  deleteExecutor(name: string): Promise<boolean> {
    return this.exclusive(() => executorsSql.deleteExecutor((sql) => this.stmt(sql), name));
  }

  getRunSharedInputs(runId: string): Promise<string | null | undefined> {
    return this.read(() => executorsSql.getRunSharedInputs((sql) => this.stmt(sql), runId));
  }

  // ---- consensus tasks: tasks, candidates, verifier results, votes, decisions (engine) (migration 25) ----
  /** A read of the consensus tables, serialised with the connection's other work. */
  private consensusRead<T>(fn: (c: ReturnType<typeof sqliteConsensusReads>) => Promise<T>): Promise<T> {
    return this.exclusive(() => fn(sqliteConsensusReads((sql) => this.stmt(sql))), 'reading');
  }

  getConsensusTask(taskId: string): Promise<ConsensusTaskRow | undefined> {
    return this.consensusRead((c) => c.getTask(taskId));
  }

  listConsensusTasks(query: ConsensusTaskQuery = {}): Promise<ConsensusTaskRow[]> {
    return this.consensusRead((c) => c.listTasks(query));
  }

  getConsensusCandidates(taskId: string): Promise<ConsensusCandidateRow[]> {
    return this.consensusRead((c) => c.candidates(taskId));
  }

  getConsensusResults(taskId: string): Promise<ConsensusResultRow[]> {
    return this.consensusRead((c) => c.results(taskId));
  }

  getConsensusVotes(taskId: string, round?: number): Promise<ConsensusVoteRow[]> {
    return this.consensusRead((c) => c.votes(taskId, round));
  }

  getConsensusDecision(taskId: string): Promise<ConsensusDecisionRow | undefined> {
    return this.consensusRead((c) => c.getDecision(taskId));
  }

  getConsensusCosts(taskId: string): Promise<ConsensusCosts> {
    return this.consensusRead((c) => c.costs(taskId));
  }

  // ---- knowledge store: decisions, evidence, track record (knowledge) (migration 26) ----
  putKnowledgeDecision(w: KnowledgeDecisionWrite): Promise<{ created: boolean }> {
    return this.exclusive(() => this.db.transaction(() => knowledgeSql.putKnowledgeDecision((sql) => this.stmt(sql), w, Date.now())).immediate());
  }

  getKnowledgeDecision(taskId: string): Promise<KnowledgeDecisionRow | undefined> {
    return this.read(() => knowledgeSql.getKnowledgeDecision((sql) => this.stmt(sql), taskId));
  }

  listKnowledgeDecisions(q: KnowledgeDecisionQuery): Promise<KnowledgeDecisionRow[]> {
    return this.read(() => knowledgeSql.listKnowledgeDecisions((sql) => this.stmt(sql), q));
  }

  listKnowledgeProposals(taskIds: readonly string[]): Promise<KnowledgeProposalRow[]> {
    return this.read(() => knowledgeSql.listKnowledgeProposals((sql) => this.stmt(sql), taskIds));
  }

  knowledgeTrackRecord(f: KnowledgeTrackFilter): Promise<KnowledgeTrackRow[]> {
    return this.read(() => knowledgeSql.knowledgeTrackRecord((sql) => this.stmt(sql), f));
  }

  knowledgeTaskTypes(): Promise<string[]> {
    return this.read(() => knowledgeSql.knowledgeTaskTypes((sql) => this.stmt(sql)));
  }

  addKnowledgeLookup(l: KnowledgeLookupWrite): Promise<KnowledgeLookupRow> {
    return this.exclusive(() => knowledgeSql.addKnowledgeLookup((sql) => this.stmt(sql), l));
  }

  listKnowledgeLookups(q: { task_id?: string; limit?: number }): Promise<KnowledgeLookupRow[]> {
    return this.read(() => knowledgeSql.listKnowledgeLookups((sql) => this.stmt(sql), q));
  }

  // ---- signing keys (core) (migration 27) ----
  insertSigningKey(rec: SigningKeyRecord): Promise<SigningKeyInsert> {
    return this.exclusive(() => this.db.transaction(() => keysSql.insertSigningKey((sql) => this.stmt(sql), rec)).immediate());
  }

  getSigningKey(name: string): Promise<SigningKeyRecord | undefined> {
    return this.read(() => keysSql.getSigningKey((sql) => this.stmt(sql), name));
  }

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.read(() => keysSql.listSigningKeys((sql) => this.stmt(sql)));
  }

  updateSigningKeyEnc(name: string, privateKeyEnc: string): Promise<boolean> {
    return this.exclusive(() => keysSql.updateSigningKeyEnc((sql) => this.stmt(sql), name, privateKeyEnc));
  }
  runLineage(runId: string, limit = 1000): Promise<LineageNode[]> {
    return this.read(() => forkSql.runLineage((sql) => this.stmt(sql), runId, limit));
  }
  // ---- imported bundles and age keys (migration 29) ----
  insertAgeKey(rec: SigningKeyRecord): Promise<SigningKeyInsert> {
    return this.exclusive(() => this.db.transaction(() => shareSql.insertAgeKey((sql) => this.stmt(sql), rec)).immediate());
  }

  insertImportedBundle(rec: ImportedBundleRecord): Promise<boolean> {
    return this.exclusive(() => shareSql.insertImportedBundle((sql) => this.stmt(sql), rec));
  }

  getImportedBundle(runId: string): Promise<ImportedBundleRecord | undefined> {
    return this.read(() => shareSql.getImportedBundle((sql) => this.stmt(sql), runId));
  }


  /** A disk or permission fault as a StoreFaultError naming the file; any other error as it is. */
  private fault(e: unknown, during: string): unknown {
    return sqliteFault(e, this.location, during) ?? e;
  }

  /** After a drain: let the next arrival schedule a new one, or schedule it now for what is left. */
  private settleLeftovers(): void {
    this.drainScheduled = this.pendingTx.length > 0;
    if (this.drainScheduled) void this.exclusive(() => this.drainTransactions());
  }

  private read<T>(fn: () => T): Promise<T> {
    return this.exclusive(fn, 'reading');
  }

  // ---- registry ----

  putAgent(rec: AgentRecord, force: boolean): Promise<PutResult> {
    return this.exclusive(() => this.db.transaction(() => {
      // The same content from another directory (or with a digest of the old form) is unchanged, and
      // its row is written again (rows.ts, agentPut).
      const existing = this.stmt('SELECT digest, path, manifest FROM agents WHERE name = ? AND version = ?').get(rec.name, rec.version) as Row | undefined;
      const { result, write } = agentPut(existing, rec, force);
      if (!write) return result;
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
    }).immediate());
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
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          return this.stmt('DELETE FROM agents WHERE name = ? AND version = ?').run(name, version).changes > 0;
        })
        .immediate(),
    );
  }

  putWorkflow(rec: WorkflowRecord, force: boolean): Promise<PutResult> {
    return this.exclusive(() => this.db.transaction(() => {
      // The same content is unchanged, compared by its canonical digest; a row holding a digest of
      // the old form is compared by its manifest and written again with the new one (rows.ts, workflowPut).
      const existing = this.stmt('SELECT digest, manifest FROM workflows WHERE name = ? AND version = ?').get(rec.name, rec.version) as Row | undefined;
      const { result, write } = workflowPut(existing, rec, force);
      if (!write) return result;
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
      // The trigger row changes with the workflow row, in its transaction: both or neither.
      this.syncTrigger(rec.name, Date.now());
      return result;
    }).immediate());
  }

  /** Rewrite the trigger row of workflow `name` from its registered versions (inside a transaction). */
  private syncTrigger(name: string, now: number): void {
    const versions = (this.stmt('SELECT * FROM workflows WHERE name = ?').all(name) as Row[]).map(toWorkflow);
    const existing = this.stmt('SELECT * FROM triggers WHERE id = ?').get(name) as Row | undefined;
    const row = triggerRowFor(versions, existing ? toTrigger(existing) : undefined, now);
    if (!row) {
      this.stmt('DELETE FROM triggers WHERE id = ?').run(name);
      return;
    }
    if (row.webhook_path !== null) {
      const holder = this.stmt('SELECT workflow_name FROM triggers WHERE webhook_path = ? AND id <> ?').pluck().get(row.webhook_path, name) as string | undefined;
      if (holder !== undefined) throw webhookPathTaken(row.webhook_path as string, name, holder);
    }
    this.stmt(TRIGGER_UPSERT).run(...TRIGGER_COLUMNS.map((c) => row[c]));
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
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          const now = Date.now();
          this.stmt('UPDATE triggers SET enabled = ?, updated_at = ? WHERE id = ?').run(enabled ? 1 : 0, now, name);
          return this.stmt('UPDATE workflows SET enabled = ?, updated_at = ? WHERE name = ?').run(enabled ? 1 : 0, now, name).changes;
        })
        .immediate(),
    );
  }

  /** Bumped by triggers of the store on every write to agents and workflows (migration 14). */
  registryGeneration(): Promise<string> {
    return this.metaCounter(REGISTRY_GENERATION_KEY);
  }

  /**
   * A counter of `swarm_meta`. Callers that ask while a read of it is queued and not yet begun share
   * that read: it happens after each of them asked, so it is as current for all of them as a read of
   * their own (32 runs created or webhooks received at once make one read instead of 32).
   */
  private metaCounter(key: string): Promise<string> {
    const queued = this.counterReads.get(key);
    if (queued) return queued;
    const read = this.read(() => {
      if (this.counterReads.get(key) === read) this.counterReads.delete(key);
      return (this.stmt('SELECT value FROM swarm_meta WHERE key = ?').pluck().get(key) as string | undefined) ?? '0';
    });
    this.counterReads.set(key, read);
    // A read that failed before it began (the lock's queue failing) must not be handed out again.
    read.catch(() => {
      if (this.counterReads.get(key) === read) this.counterReads.delete(key);
    });
    return read;
  }

  // ---- triggers and leases ----

  listTriggers(filter: TriggerFilter = {}): Promise<TriggerRecord[]> {
    return this.read(() => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.type) {
        where.push('type = ?');
        args.push(filter.type);
      }
      if (filter.workflow !== undefined) {
        where.push('id = ?');
        args.push(filter.workflow);
      }
      if (filter.enabledOnly) where.push('enabled = 1');
      return (this.stmt(`SELECT * FROM triggers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`).all(...args) as Row[]).map(toTrigger);
    });
  }

  getWebhookTrigger(path: string): Promise<TriggerRecord | undefined> {
    return this.read(() => {
      const row = this.stmt(`SELECT * FROM triggers WHERE webhook_path = ? AND type = 'webhook'`).get(path) as Row | undefined;
      return row ? toTrigger(row) : undefined;
    });
  }

  setTriggerPaused(id: string, paused: boolean): Promise<boolean> {
    return this.exclusive(() => this.stmt(`UPDATE triggers SET paused = ?, updated_at = ? WHERE id = ? AND type = 'schedule'`).run(paused ? 1 : 0, Date.now(), id).changes > 0);
  }

  updateScheduleState(id: string, state: { last_fired_at?: number; next_run_at: number | null }): Promise<void> {
    return this.exclusive(() => {
      const fired = state.last_fired_at ?? null;
      this.stmt(
        `UPDATE triggers SET next_run_at = ?, updated_at = ?,
           last_fired_at = CASE WHEN ? IS NOT NULL AND (last_fired_at IS NULL OR last_fired_at < ?) THEN ? ELSE last_fired_at END
         WHERE id = ? AND type = 'schedule'`,
      ).run(state.next_run_at, Date.now(), fired, fired, fired, id);
    });
  }

  swapScheduleBuffer(id: string, expected: number | null, next: number | null): Promise<boolean> {
    return this.exclusive(
      () => this.stmt(`UPDATE triggers SET buffered_tick = ?, updated_at = ? WHERE id = ? AND type = 'schedule' AND buffered_tick IS ?`).run(next, Date.now(), id, expected).changes > 0,
    );
  }

  pruneEmittedEvents(before: number, limit: number): Promise<number> {
    return this.exclusive(
      () => this.stmt('DELETE FROM emitted_events WHERE id IN (SELECT id FROM emitted_events WHERE created_at < ? ORDER BY created_at LIMIT ?)').run(before, limit).changes,
    );
  }

  // ---- retention (retention-sql.ts) ----

  expiredRunTrees(q: ExpiredRunQuery): Promise<ExpiredRunPage> {
    return this.read(() => retention.expiredRunTrees((sql) => this.stmt(sql), q));
  }

  deleteRunTrees(trees: readonly RunTree[], q: Pick<ExpiredRunQuery, 'before' | 'statuses'>): Promise<RunDeleteReport> {
    return this.exclusive(() => retention.deleteRunTrees(this.db, (sql) => this.stmt(sql), trees, q));
  }

  compactAgentSessions(o: CompactOptions): Promise<CompactReport> {
    return this.exclusive(() => retention.compactSessions(this.db, (sql) => this.stmt(sql), o));
  }

  databaseSize(): Promise<DatabaseSize> {
    return this.read(() => retention.databaseSize(this.db, this.location));
  }

  // Budget writes join the group commit (as checkpoints do): steps in flight together share its fsync.
  reserveBudget(req: BudgetReserveRequest): Promise<BudgetReserveResult> {
    return this.transaction(() => Promise.resolve(reserveBudget((sql) => this.stmt(sql), req, Date.now())));
  }

  settleBudget(req: BudgetSettleRequest): Promise<BudgetWarning[]> {
    return this.transaction(() => Promise.resolve(settleBudget((sql) => this.stmt(sql), req, Date.now())));
  }

  getBudgetScopes(rootRunId: string): Promise<BudgetScopeUsage[]> {
    return this.read(() => budgetScopes((sql) => this.stmt(sql), rootRunId));
  }

  acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseRecord & { acquired: boolean }> {
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          const now = Date.now();
          this.stmt(
            `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
          ).run(name, holder, now + ttlMs, now);
          const lease = this.stmt('SELECT name, holder, expires_at FROM leases WHERE name = ?').get(name) as LeaseRecord;
          return { ...lease, acquired: lease.holder === holder };
        })
        .immediate(),
    );
  }

  releaseLease(name: string, holder: string): Promise<boolean> {
    return this.exclusive(() => this.stmt('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder).changes > 0);
  }

  getLease(name: string): Promise<LeaseRecord | undefined> {
    return this.read(() => this.stmt('SELECT name, holder, expires_at FROM leases WHERE name = ?').get(name) as LeaseRecord | undefined);
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
      const { where, args } = runConditions(filter);
      if (filter.statuses?.length) {
        where.push(`status IN (${filter.statuses.map(() => '?').join(', ')})`);
        args.push(...filter.statuses);
      }
      if (filter.since !== undefined) {
        where.push('created_at >= ?');
        args.push(filter.since);
      }
      if (filter.until !== undefined) {
        where.push('created_at < ?');
        args.push(filter.until);
      }
      // json_each rather than a JSON path: any key (dots, quotes) is a bound value, never SQL or a path.
      for (const [key, value] of Object.entries(filter.metadata ?? {})) {
        where.push("EXISTS (SELECT 1 FROM json_each(workflow_runs.metadata) m WHERE m.key = ? AND m.value = ? AND m.type = 'text')");
        args.push(key, value);
      }
      if (filter.after) {
        where.push('(created_at < ? OR (created_at = ? AND id < ?))');
        args.push(filter.after.created_at, filter.after.created_at, filter.after.id);
      }
      const sql = `SELECT ${RUN_COLUMNS} FROM workflow_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
      return (this.db.prepare(sql).all(...args, filter.limit ?? 50) as Row[]).map(toRun);
    });
  }

  listRunChanges(filter: RunChangeFilter): Promise<RunRecord[]> {
    return this.read(() => {
      const { where, args } = runConditions(filter);
      if (filter.after) {
        where.push('(updated_at > ? OR (updated_at = ? AND id > ?))');
        args.push(filter.after.updated_at, filter.after.updated_at, filter.after.id);
      }
      const sql = `SELECT ${RUN_COLUMNS} FROM workflow_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY updated_at, id LIMIT ?`;
      return (this.db.prepare(sql).all(...args, filter.limit ?? 100) as Row[]).map(toRun);
    });
  }

  getRunTrace(id: string): Promise<RunTraceRecord | undefined> {
    return this.read(() => this.stmt('SELECT traceparent, tracestate, trigger_type, workflow_name FROM workflow_runs WHERE id = ?').get(id) as RunTraceRecord | undefined);
  }

  getPlanJson(runId: string): Promise<string | undefined> {
    return this.read(() => this.stmt('SELECT p.plan FROM workflow_runs r JOIN run_plans p ON p.id = r.plan_id WHERE r.id = ?').pluck().get(runId) as string | undefined);
  }

  getPlanById(planId: string): Promise<string | undefined> {
    return this.read(() => this.stmt('SELECT plan FROM run_plans WHERE id = ?').pluck().get(planId) as string | undefined);
  }

  getSteps(runId: string): Promise<StepRecord[]> {
    return this.read(() => (this.stmt('SELECT * FROM step_executions WHERE run_id = ? ORDER BY step_index, map_index').all(runId) as Row[]).map(toStep));
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

  getStepItem(runId: string, stepId: string): Promise<unknown> {
    return this.read(() => stepItem((sql) => this.stmt(sql), runId, stepId));
  }

  getEvents(runId: string, afterSeq = 0, limit = 100_000): Promise<Array<RunEvent & { data_json: string }>> {
    return this.read(() =>
      (this.stmt('SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(runId, afterSeq, limit) as Row[]).map(toEvent),
    );
  }

  getLogs(runId: string, stepId?: string): Promise<StepLog[]> {
    return this.read(() => {
      const rows = (stepId
        ? this.stmt('SELECT * FROM step_logs WHERE run_id = ? AND step_id = ? ORDER BY at, attempt').all(runId, stepId)
        : this.stmt('SELECT * FROM step_logs WHERE run_id = ? ORDER BY at, step_id, attempt').all(runId)) as Row[];
      return rows.map(toStepLog);
    });
  }

  runConcurrency(runIds: readonly string[]): Promise<Map<string, RunConcurrencyInfo>> {
    return this.read(() => readRunConcurrency((sql) => this.stmt(sql), runIds));
  }

  unfinishedRunIds(): Promise<string[]> {
    return this.read(() => this.stmt(`SELECT id FROM workflow_runs WHERE status IN ('queued', 'running', 'waiting') ORDER BY created_at`).pluck().all() as string[]);
  }

  nextDueAt(after: number): Promise<number | null> {
    return this.read(() => {
      const a = this.stmt(`SELECT MIN(available_at) FROM step_executions WHERE status = 'ready' AND available_at > ?`).pluck().get(after) as number | null;
      const b = this.stmt(`SELECT MIN(lease_until) FROM step_executions WHERE status = 'running' AND lease_until > ?`).pluck().get(after) as number | null;
      const c = nextWakeAt((sql) => this.stmt(sql), after);
      const due = [a, b, c].filter((x): x is number => x !== null);
      return due.length ? Math.min(...due) : null;
    });
  }

  getStepWait(runId: string, stepId: string): Promise<StepWaitRecord | undefined> {
    return this.read(() => getStepWait((sql) => this.stmt(sql), runId, stepId));
  }

  listRunSignals(runId: string): Promise<RunSignalRecord[]> {
    return this.read(() => listRunSignals((sql) => this.stmt(sql), runId));
  }

  // ---- workers ----

  registerWorker(rec: WorkerRecord): Promise<void> {
    return this.exclusive(() => {
      this.stmt(
        `INSERT INTO workers (id, hostname, host_id, pid, concurrency, scope, started_at, heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
      ).run(rec.id, rec.hostname, rec.host_id, rec.pid, rec.concurrency, rec.scope, rec.started_at, rec.heartbeat_at);
    });
  }

  /** One machine, one clock. */
  now(): Promise<number> {
    return Promise.resolve(Date.now());
  }

  heartbeatWorker(id: string): Promise<void> {
    return this.exclusive(() => {
      this.stmt('UPDATE workers SET heartbeat_at = ? WHERE id = ?').run(Date.now(), id);
    });
  }

  stopWorker(id: string): Promise<void> {
    return this.exclusive(() => {
      const at = Date.now();
      this.stmt('UPDATE workers SET stopped_at = ?, heartbeat_at = ? WHERE id = ?').run(at, at, id);
    });
  }

  listWorkers(activeSince?: number): Promise<WorkerRecord[]> {
    return this.read(() => {
      const rows = (activeSince === undefined
        ? this.stmt('SELECT * FROM workers WHERE stopped_at IS NULL ORDER BY started_at').all()
        : this.stmt('SELECT * FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= ? ORDER BY started_at').all(activeSince)) as Row[];
      return rows.map(toWorker);
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

  // ---- agent sessions ----

  /** Checkpoints and tool records join the group commit: concurrent sessions (and steps) share fsyncs. */
  saveAgentCheckpoint(w: AgentCheckpointWrite): Promise<boolean> {
    return this.transaction(() => {
      const now = Date.now();
      const s = w.session;
      {
        const written = this.stmt(
          `INSERT INTO agent_sessions (id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, envelope, envelope_version, attempt, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET current_agent = excluded.current_agent, status = excluded.status, turns = excluded.turns,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
             envelope = excluded.envelope, envelope_version = excluded.envelope_version, attempt = excluded.attempt, error = NULL, compacted_at = NULL, updated_at = excluded.updated_at
           WHERE agent_sessions.attempt <= excluded.attempt`,
        ).run(s.id, s.run_id, s.step_id, s.agent, s.current_agent, s.trace_id, s.status, s.turns, s.input_tokens, s.output_tokens, s.cost_usd, w.envelope, w.version, w.attempt, now, now).changes;
        if (written === 0) return Promise.resolve(false);
        const ins = this.stmt(
          `INSERT INTO agent_messages (session_id, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(session_id, seq) DO NOTHING`,
        );
        for (const m of w.messages) {
          ins.run(s.id, m.seq, m.role, m.agent, m.content, m.tool_calls, m.tool_call_id, m.name, m.usage?.input_tokens ?? null, m.usage?.output_tokens ?? null, m.usage?.cost_usd ?? null, now);
        }
      }
      return Promise.resolve(true);
    });
  }

  getAgentSession(id: string): Promise<(AgentSessionRecord & { envelope: string | null; envelope_version: number | null }) | undefined> {
    return this.read(() => {
      const r = this.stmt(`SELECT ${SESSION_COLUMNS}, envelope, envelope_version FROM agent_sessions WHERE id = ?`).get(id) as Row | undefined;
      return r ? { ...toAgentSession(r), envelope: (r.envelope as string | null) ?? null, envelope_version: (r.envelope_version as number | null) ?? null } : undefined;
    });
  }

  failAgentSession(id: string, error: string): Promise<void> {
    return this.exclusive(() => {
      this.stmt(`UPDATE agent_sessions SET status = 'failed', error = ?, updated_at = ? WHERE id = ?`).run(error, Date.now(), id);
    });
  }

  listAgentSessions(filter: SessionFilter): Promise<AgentSessionRecord[]> {
    return this.read(() => {
      const { where, values } = sessionWhere(filter, () => '?');
      const rows = this.db.prepare(`SELECT ${SESSION_COLUMNS} FROM agent_sessions ${where} ORDER BY created_at DESC, id LIMIT ?`).all(...values, filter.limit ?? 100) as Row[];
      return rows.map(toAgentSession);
    });
  }

  getAgentMessages(sessionId: string): Promise<AgentMessageRecord[]> {
    return this.read(() => (this.stmt('SELECT * FROM agent_messages WHERE session_id = ? ORDER BY seq').all(sessionId) as Row[]).map(toAgentMessage));
  }

  getToolCall(sessionId: string, turn: number, callId: string): Promise<ToolCallRecord | undefined> {
    return this.read(() => {
      const r = this.stmt('SELECT * FROM agent_tool_calls WHERE session_id = ? AND turn = ? AND call_id = ?').get(sessionId, turn, callId) as Row | undefined;
      return r ? toToolCall(r) : undefined;
    });
  }

  listToolCalls(sessionId: string): Promise<ToolCallRecord[]> {
    return this.read(() => (this.stmt('SELECT * FROM agent_tool_calls WHERE session_id = ? ORDER BY turn, at, call_id').all(sessionId) as Row[]).map(toToolCall));
  }

  recordToolCall(rec: ToolCallRecord): Promise<boolean> {
    return this.transaction(() =>
      Promise.resolve(
        this.stmt(
          `INSERT INTO agent_tool_calls (session_id, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(session_id, turn, call_id) DO NOTHING`,
        ).run(rec.session_id, rec.turn, rec.call_id, rec.name, rec.arguments, rec.output, rec.is_error ? 1 : 0, rec.handoff, rec.context_variables, rec.at).changes === 1,
      ),
    );
  }

  requestApprovals(items: ReadonlyArray<Omit<ApprovalRecord, 'status' | 'reason' | 'decided_at' | 'decided_by'>>): Promise<void> {
    return this.exclusive(() => {
      const ins = this.stmt(
        `INSERT INTO approvals (run_id, step_id, call_id, tool, arguments, status, requested_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)
         ON CONFLICT(run_id, step_id, call_id) DO NOTHING`,
      );
      this.db.transaction(() => {
        for (const a of items) ins.run(a.run_id, a.step_id, a.call_id, a.tool, a.arguments, a.requested_at);
      })();
    });
  }

  getApproval(runId: string, stepId: string, callId: string): Promise<ApprovalRecord | undefined> {
    return this.read(() => {
      const r = this.stmt('SELECT * FROM approvals WHERE run_id = ? AND step_id = ? AND call_id = ?').get(runId, stepId, callId) as Row | undefined;
      return r ? toApproval(r) : undefined;
    });
  }

  listApprovals(filter: { run_id?: string; status?: ApprovalRecord['status'] }): Promise<ApprovalRecord[]> {
    return this.read(() => {
      // A request whose step was cancelled or finished (its run failed or was cancelled) is moot.
      const conds: string[] = [`(a.status <> 'pending' OR s.status NOT IN ('cancelled', 'completed', 'failed', 'skipped'))`];
      const values: unknown[] = [];
      if (filter.run_id !== undefined) {
        conds.push('a.run_id = ?');
        values.push(filter.run_id);
      }
      if (filter.status !== undefined) {
        conds.push('a.status = ?');
        values.push(filter.status);
      }
      const rows = this.db
        .prepare(
          `SELECT a.* FROM approvals a JOIN step_executions s ON s.run_id = a.run_id AND s.step_id = a.step_id
           WHERE ${conds.join(' AND ')} ORDER BY a.requested_at, a.run_id, a.step_id, a.call_id`,
        )
        .all(...values) as Row[];
      return rows.map(toApproval);
    });
  }

  // ---- encrypted secrets ----

  private bumpSecretsGeneration(): void {
    this.stmt(`INSERT INTO swarm_meta (key, value) VALUES ('${SECRETS_GENERATION_KEY}', '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`).run();
  }

  putSecret(rec: SecretRecord): Promise<'created' | 'replaced'> {
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          const existed = this.stmt('SELECT 1 FROM secrets WHERE name = ? AND scope = ?').get(rec.name, rec.scope) !== undefined;
          this.stmt(
            `INSERT INTO secrets (name, scope, encrypted_value, value_nonce, wrapped_key, kek_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(name, scope) DO UPDATE SET encrypted_value = excluded.encrypted_value, value_nonce = excluded.value_nonce,
               wrapped_key = excluded.wrapped_key, kek_id = excluded.kek_id, updated_at = excluded.updated_at`,
          ).run(rec.name, rec.scope, rec.encrypted_value, rec.value_nonce, rec.wrapped_key, rec.kek_id, rec.created_at, rec.updated_at);
          this.bumpSecretsGeneration();
          return existed ? ('replaced' as const) : ('created' as const);
        })
        .immediate(),
    );
  }

  getSecret(name: string, scope: string): Promise<SecretRecord | undefined> {
    return this.read(() => {
      const r = this.stmt('SELECT * FROM secrets WHERE name = ? AND scope = ?').get(name, scope) as Row | undefined;
      return r ? toSecret(r) : undefined;
    });
  }

  listSecrets(scope?: string): Promise<SecretRecord[]> {
    return this.read(() =>
      ((scope === undefined ? this.stmt('SELECT * FROM secrets ORDER BY scope, name').all() : this.stmt('SELECT * FROM secrets WHERE scope = ? ORDER BY name').all(scope)) as Row[]).map(toSecret),
    );
  }

  deleteSecret(name: string, scope: string): Promise<boolean> {
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          const gone = this.stmt('DELETE FROM secrets WHERE name = ? AND scope = ?').run(name, scope).changes > 0;
          if (gone) this.bumpSecretsGeneration();
          return gone;
        })
        .immediate(),
    );
  }

  /** Bumped on every write to secrets; read like the registry's generation (shared while queued). */
  secretsGeneration(): Promise<string> {
    return this.metaCounter(SECRETS_GENERATION_KEY);
  }

  rekey(plan: RekeyPlan): Promise<RekeyReport> {
    return this.exclusive(() =>
      this.db
        .transaction(() => {
          const check = this.stmt('SELECT value FROM swarm_meta WHERE key = ?').pluck().get(KEY_CHECK_META_KEY) as string | undefined;
          if (check !== plan.oldCheck) throw rekeyRefused(this.location);
          const report: RekeyReport = { secrets: 0, runs: 0, events: 0, unverified: [] };
          const putKey = this.db.prepare('UPDATE secrets SET wrapped_key = ?, kek_id = ? WHERE name = ? AND scope = ?');
          for (const r of this.db.prepare('SELECT * FROM secrets ORDER BY scope, name').all() as Row[]) {
            const rec = toSecret(r);
            const w = plan.rewrap(rec);
            putKey.run(w.wrapped_key, w.kek_id, rec.name, rec.scope);
            report.secrets++;
          }
          const eventsOf = this.db.prepare('SELECT * FROM events WHERE run_id = ? ORDER BY seq');
          const putEvent = this.db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE run_id = ? AND seq = ?');
          const putHead = this.db.prepare('UPDATE workflow_runs SET event_hash = ? WHERE id = ?');
          for (const id of this.db.prepare('SELECT id FROM workflow_runs ORDER BY id').pluck().all() as string[]) {
            const chained = plan.rechain(id, (eventsOf.all(id) as Row[]).map(toEvent));
            if (!chained) {
              report.unverified.push(id);
              continue;
            }
            for (const e of chained) putEvent.run(e.prev_hash, e.hash, id, e.seq);
            const last = chained[chained.length - 1];
            if (last) putHead.run(last.hash, id);
            report.runs++;
            report.events += chained.length;
          }
          this.stmt('UPDATE swarm_meta SET value = ? WHERE key = ?').run(plan.newCheck, KEY_CHECK_META_KEY);
          this.bumpSecretsGeneration();
          return report;
        })
        .immediate(),
    );
  }

  // ---- API tokens ----

  putApiToken(rec: ApiTokenRecord): Promise<boolean> {
    return this.exclusive(
      () =>
        this.stmt(
          `INSERT INTO api_tokens (id, name, secret_hash, scopes, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO NOTHING`,
        ).run(rec.id, rec.name, rec.secret_hash, rec.scopes, rec.created_at, rec.expires_at, rec.last_used_at, rec.revoked_at).changes > 0,
    );
  }

  getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    return this.read(() => {
      const r = this.stmt('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
      return r ? toApiToken(r) : undefined;
    });
  }

  listApiTokens(): Promise<ApiTokenRecord[]> {
    return this.read(() => (this.stmt('SELECT * FROM api_tokens ORDER BY created_at, id').all() as Row[]).map(toApiToken));
  }

  revokeApiToken(id: string, at: number): Promise<ApiTokenRecord | undefined> {
    return this.exclusive(() => {
      this.stmt('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?').run(at, id);
      const r = this.stmt('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
      return r ? toApiToken(r) : undefined;
    });
  }

  touchApiToken(id: string, at: number): Promise<void> {
    return this.exclusive(() => {
      this.stmt('UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(at, id, at);
    });
  }

  hasLiveApiTokens(now: number): Promise<boolean> {
    return this.read(() => this.stmt('SELECT 1 FROM api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) LIMIT 1').get(now) !== undefined);
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

  private dataVersion(): number {
    try {
      return this.db.pragma('data_version', { simple: true }) as number;
    } catch (e) {
      throw this.fault(e, 'reading');
    }
  }

  /** Move committed WAL pages into the database file without blocking anyone (called when idle). */
  checkpoint(): Promise<void> {
    return this.exclusive(() => {
      if (!this.closed) this.db.pragma('wal_checkpoint(PASSIVE)');
    }, 'checkpointing');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.exclusive(() => {
      this.closed = true;
      this.db.close();
    });
  }
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

/** The filters a run list and a run-change list share: workflow, status, trigger kind. */
function runConditions(filter: { workflow?: string; status?: string; trigger_type?: string; parent?: string }): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  for (const col of ['workflow', 'status', 'trigger_type', 'parent'] as const) {
    const v = filter[col];
    if (v === undefined || v === '') continue;
    where.push(`${col === 'workflow' ? 'workflow_name' : col === 'parent' ? 'parent_run_id' : col} = ?`);
    args.push(v);
  }
  return { where, args };
}
