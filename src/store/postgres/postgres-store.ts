import { createHash } from 'node:crypto';
import pg from 'pg';
import { ExitCode, StoreError, SwarmError } from '../../core/errors.js';
import type { RunEvent } from '../../core/events.js';
import type { Durability, PutResult, Store } from '../store.js';
import type {
  AgentCheckpointWrite,
  AgentMessageRecord,
  AgentRecord,
  AgentSessionRecord,
  ApprovalRecord,
  LedgerTx,
  TxHint,
  RunFilter,
  RunChangeFilter,
  RekeyPlan,
  RekeyReport,
  RunRecord,
  RunTraceRecord,
  SecretRecord,
  ApiTokenRecord,
  LeaseRecord,
  SessionFilter,
  TriggerFilter,
  TriggerRecord,
  StepLog,
  StepRecord,
  ToolCallRecord,
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
import { migrate as migrateSchema, SCHEMA_VERSION, schemaVersion } from './migrations.js';
import { noNul, PgTx, type Query } from './pg-tx.js';
import * as sw4rmStateSql from './sw4rm-state-sql.js';
import { sw4rmStateWrite, toSw4rmStateRow, type Sw4rmStateRow } from '../sw4rm-state-types.js';
import { Pipeline } from './pipeline.js';
import { RUN_CONCURRENCY_SQL, toRunConcurrencyInfo } from './concurrency-sql.js';
import type { RunConcurrencyInfo } from '../types.js';
import { WAIT_READS } from './waits-sql.js';
import { toRunSignal, toStepWait } from '../wait-rows.js';
import type { RunSignalRecord, StepWaitRecord } from '../wait-types.js';
import { stepItem } from './nesting-sql.js';
import * as retention from './retention-sql.js';
import type { CompactOptions, CompactReport, DatabaseSize, ExpiredRunPage, ExpiredRunQuery, RunDeleteReport, RunTree } from '../retention-types.js';
import { queueGaugesSql, toQueueGauges } from './gauges-sql.js';
import { budgetScopes, reserveBudget, settleBudget } from './budget-sql.js';
import type { BudgetReserveRequest, BudgetReserveResult, BudgetScopeUsage, BudgetSettleRequest, BudgetWarning } from '../budget-types.js';
import { DELETE_BREAKER_SQL, GET_BREAKER_SQL, LIST_BREAKERS_SQL, toBreakerRow, updateBreakerIn } from './breakers-sql.js';
import type { BreakerChange, BreakerRow } from '../breaker-types.js';
import { byKeysSql as sw4rmByKeysSql, LIST_GROUP_SQL as SW4RM_LIST_GROUP_SQL, LIST_OWNER_SQL as SW4RM_LIST_OWNER_SQL, toDocs as sw4rmToDocs, updateSw4rmGroupIn } from './sw4rm-sched-sql.js';
import type { Sw4rmDoc, Sw4rmGroupChange, Sw4rmGroupWrite } from '../sw4rm-sched-types.js';
import * as sw4rmSql from './sw4rm-router-sql.js';
import type { Sw4rmAckItem, Sw4rmAgentRow, Sw4rmAgentWrite, Sw4rmMessageRow, Sw4rmMessageState, Sw4rmSendItem, Sw4rmSendOutcome, Sw4rmSweepResult } from '../sw4rm-router-types.js';
import * as memory from './memory-sql.js';
import { memoryDimensions, type MemoryListQuery, type MemoryRecord, type MemorySearch, type MemoryWrite, type ScoredMemory } from '../memory-types.js';
import type { CommitObserver, QueueGauges } from '../commit-observer.js';
import * as executorsSql from './executors-sql.js';
import { toExecutorRecord, type ExecutorRecord, type ExecutorWrite } from '../executor-types.js';
import { pgConsensusReads } from './consensus-sql.js';
import type { ConsensusCandidateRow, ConsensusCosts, ConsensusDecisionRow, ConsensusResultRow, ConsensusTaskQuery, ConsensusTaskRow, ConsensusVoteRow } from '../consensus-types.js';
import * as knowledgeSql from './knowledge-sql.js';
import {
  toKnowledgeDecisionRow,
  toKnowledgeLookupRow,
  toKnowledgeProposalRow,
  toKnowledgeTrackRow,
  type KnowledgeDecisionQuery,
  type KnowledgeDecisionRow,
  type KnowledgeDecisionWrite,
  type KnowledgeLookupRow,
  type KnowledgeLookupWrite,
  type KnowledgeProposalRow,
  type KnowledgeTrackFilter,
  type KnowledgeTrackRow,
} from '../knowledge-types.js';
import * as keysSql from './keys-sql.js';
import { toSigningKeyRecord, type SigningKeyInsert, type SigningKeyRecord } from '../keys-types.js';
import { LINEAGE_SQL } from './fork-sql.js';
import { toLineageNode, type LineageNode } from '../fork-types.js';
import * as shareSql from './share-sql.js';
import { toImportedBundle, type ImportedBundleRecord } from '../share-types.js';

export interface PostgresStoreOptions {
  /** A `postgres://` connection URL. */
  url: string;
  /** `full`: a commit returns once it is on disk (synchronous_commit=on). `process`: it may lag (off). */
  durability: Durability;
  /** Schema holding Swarm's tables (created when absent); default `public`. */
  schema?: string;
  /** Connections in the pool (plus one for LISTEN when a worker waits); default 10. */
  poolSize?: number;
}

/** Attempts for one operation when its connection is lost or it deadlocks. */
const MAX_ATTEMPTS = 6;
/** BIGINT (timestamps in ms, counts) as a JavaScript number: all of ours are far below 2^53. */
const TYPES = new pg.TypeOverrides();
TYPES.setTypeParser(20, Number);
/**
 * The database's clock in milliseconds. `statement_timestamp()` is when the server received the
 * query message: every statement sent in one round trip reads the same instant, so a claim sent
 * with BEGIN compares leases with exactly the `now` the transaction reads.
 */
const NOW_MS = `(extract(epoch from statement_timestamp()) * 1000)::bigint`;

const TRIGGER_UPSERT = `INSERT INTO triggers (${TRIGGER_COLUMNS.join(', ')}) VALUES (${TRIGGER_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
  ON CONFLICT (id) DO UPDATE SET ${TRIGGER_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')},
    buffered_tick = CASE WHEN triggers.type = excluded.type THEN triggers.buffered_tick ELSE NULL END`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The scale-out store: PostgreSQL through a connection pool. Any number of processes on any number of
 * machines share it. Claims lock steps with `FOR UPDATE SKIP LOCKED` under READ COMMITTED; leases
 * are on the database's clock; LISTEN/NOTIFY wakes idle workers (polling stays the fallback).
 *
 * @example
 *   const store = await openPostgresStore({ url: 'postgres://swarm@db/swarm', durability: 'full' });
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const store = new PostgresStore(options);
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    if (e instanceof StoreError) throw e;
    throw new StoreError('STORE_OPEN_FAILED', `cannot open the store at ${store.location}: ${(e as Error).message}`, { database: store.location }, { cause: e });
  }
  return store;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly channel: string;
  private closed = false;
  /** Told about each transaction's work and commit (metrics); undefined: no extra work at all. */
  private observer: CommitObserver | undefined;
  /** Backend pids of this store's own connections: their notifications are not news to us. */
  private readonly ownPids = new Set<number>();
  private readonly statementNames = new Map<string, string>();

  // LISTEN/NOTIFY state (see waitForChange).
  private listener: pg.Client | undefined;
  private listenStarting: Promise<void> | undefined;
  private lastListenAttempt = 0;
  private changeGen = 0;
  private consumedGen = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly options: PostgresStoreOptions) {
    this.location = redact(options.url);
    this.schema = options.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.schema)) {
      throw new StoreError('STORE_OPEN_FAILED', `schema name '${this.schema}' must be lower-case letters, digits and _`, { schema: this.schema }, { exitCode: ExitCode.INVALID_INPUT });
    }
    if (this.schema !== 'public') this.location = `${this.location} (schema ${this.schema})`;
    this.channel = this.schema === 'public' ? 'swarm_changes' : `swarm_changes_${this.schema}`.slice(0, 63);
    const sync = options.durability === 'full' ? 'on' : 'off';
    // Session settings on every new connection, before it is handed out. The idle-in-transaction
    // timeout frees the run locks of a process that froze in the middle of a transaction. Named
    // statements (`named`) are planned for each execution's values and the tables' current size:
    // a plan cached while a table was small would keep scanning it whole as it grows (the pipelined
    // transactions choose their plans otherwise, see Pipeline.begin).
    const setup = async (client: pg.ClientBase): Promise<void> => {
      const r = (await client.query(
        `SET search_path TO "${this.schema}"; SET synchronous_commit TO ${sync}; SET idle_in_transaction_session_timeout TO '60s'; SET standard_conforming_strings TO on; SET plan_cache_mode TO force_custom_plan; SELECT pg_backend_pid() AS pid`,
      )) as unknown as Array<pg.QueryResult<{ pid: number }>>;
      const pid = r[r.length - 1]?.rows[0]?.pid;
      if (pid !== undefined) {
        this.ownPids.add(pid);
        client.once('end', () => this.ownPids.delete(pid));
      }
    };
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      types: TYPES,
      application_name: 'swarm',
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      // Called for each new connection before it is handed out; an error fails that connect.
      verify: (client, done) => {
        setup(client).then(() => done(), done);
      },
    });
    // An idle connection that the server closes must not crash the process: the pool drops it.
    this.pool.on('error', () => undefined);
    // pg-pool detaches its own listener while a new client is being set up (verify): an error the
    // server sends then (a shutdown) would be unhandled. The client fails its next query instead,
    // which the store treats as a lost connection and retries.
    this.pool.on('connect', (client) => {
      client.on('error', () => undefined);
    });
  }

  // ---- plumbing ----

  /** Named (prepared once per connection) statements: the server parses and plans each text once. */
  private named(text: string, values?: readonly unknown[]): pg.QueryConfig<unknown[]> {
    let name = this.statementNames.get(text);
    if (name === undefined) {
      name = `s_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      this.statementNames.set(text, name);
    }
    return { name, text, values: values ? [...values] : [] };
  }

  /** Check and migrate the schema (openPostgresStore does this before handing the store out). */
  migrate(): Promise<void> {
    return this.withRetry(() => this.withClient((c) => migrateSchema(c, this.schema, this.location)));
  }

  /** Borrow a connection; one that fails while borrowed is discarded, not returned to the pool. */
  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('STORE_CLOSED', `the store at ${this.location} is closed`, { database: this.location });
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // Between queries nobody is listening on the client: without this, a dropped connection would
    // be an unhandled 'error' event.
    const onError = (e: Error): void => {
      broken = e;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (e) {
      // A connection whose prepared statements predate a schema change is not used again.
      if (isConnectionError(e) || isStalePlan(e)) broken ??= e as Error;
      throw e;
    } finally {
      client.off('error', onError);
      // A connection still inside a transaction (its ROLLBACK failed) must not be reused either.
      if (!broken && client.getTransactionStatus() !== 'I') broken = new Error('connection left inside a transaction');
      client.release(broken ?? false);
    }
  }

  /**
   * Run an operation, again (with backoff) when its connection was lost before anything could have
   * been committed, or when it deadlocked or hit a serialization failure (rolled back by the server).
   */
  private async withRetry<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (e) {
        const again = !this.closed && attempt < MAX_ATTEMPTS && !(e instanceof CommitUnknown) && (isConnectionError(e) || isConflict(e) || isStalePlan(e));
        if (!again) throw surface(e, this.location);
        const base = isConflict(e) || isStalePlan(e) ? 5 * attempt : Math.min(2000, 100 * 2 ** (attempt - 1));
        await sleep(base + Math.random() * base);
      }
    }
  }

  private async read(text: string, values?: readonly unknown[]): Promise<Row[]> {
    return this.withRetry(async () => (await this.pool.query<Row>(this.named(text, values))).rows);
  }

  private async write(text: string, values?: readonly unknown[]): Promise<number> {
    return this.withRetry(async () => (await this.pool.query(this.named(text, values))).rowCount ?? 0);
  }

  /**
   * BEGIN … COMMIT on one connection, with the database's clock read once at the start. When the body
   * wrote something others wait for, NOTIFY goes out with the COMMIT (delivered only if it commits).
   * A connection lost during COMMIT is not retried (it may have committed): the caller hears
   * `08007` (transaction resolution unknown), a transient code; fencing refuses a repeated completion.
   */
  private atomically<T>(body: (q: Query, now: number) => Promise<{ value: T; notify: boolean }>): Promise<T> {
    return this.withRetry(() =>
      this.withClient(async (client) => {
        const q: Query = async (text, values) => {
          const r = await client.query<Row>(this.named(text, values));
          return { rows: r.rows, rowCount: r.rowCount ?? 0 };
        };
        const begin = (await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED; SELECT ${NOW_MS} AS now`)) as unknown as Array<pg.QueryResult<{ now: number }>>;
        const now = Number(begin[1]?.rows[0]?.now);
        let out: { value: T; notify: boolean };
        try {
          out = await body(q, now);
        } catch (e) {
          // If the ROLLBACK fails too, the connection is discarded (see withClient) and the server
          // rolls the transaction back when it goes.
          if (!isConnectionError(e)) await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
        try {
          await client.query(out.notify ? `SELECT pg_notify('${this.channel}', ''); COMMIT` : 'COMMIT');
        } catch (e) {
          if (isConnectionError(e)) throw new CommitUnknown(e);
          throw e;
        }
        return out.value;
      }),
    );
  }

  // ---- vector memory (memory-sql.ts) ----

  /** pgvector checked (and the per-dimension tables made) once per store. */
  private vectorReady: Promise<void> | undefined;
  private readonly vectorTables = new Set<number>();

  private async vectorIndex(dims: number | undefined, create: boolean): Promise<boolean> {
    const q: memory.MemoryQuery = async (text, values) => {
      const r = await this.pool.query<Row>(text, values ? [...values] : undefined);
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    };
    this.vectorReady ??= memory.ensureVectorExtension(q, this.location).catch((e: unknown) => {
      this.vectorReady = undefined;
      throw e;
    });
    await this.vectorReady;
    if (dims === undefined || this.vectorTables.has(dims)) return true;
    if (!create) {
      if (!(await memory.vectorTableExists(q, dims))) return false;
    } else {
      // Two processes may make the same table at once: the loser's error is harmless.
      await this.withClient((c) => c.query(memory.vectorTableSql(dims))).catch(async (e: unknown) => {
        if (!(await memory.vectorTableExists(q, dims))) throw e;
      });
    }
    this.vectorTables.add(dims);
    return true;
  }

  async putMemory(m: MemoryWrite): Promise<{ id: string; created: boolean }> {
    const dims = memoryDimensions(m.embedding);
    await this.vectorIndex(dims, true);
    return this.atomically<{ id: string; created: boolean }>(async (q) => {
      const inserted = (await q(memory.INSERT_MEMORY_SQL, [noNul(m.namespace), noNul(m.text), JSON.stringify(m.metadata ?? {}), m.source, m.run_id, m.step_id, m.session_id, m.dedup_key, m.created_at, dims])).rows[0];
      if (!inserted) {
        const had = (await q('SELECT id FROM memories WHERE dedup_key = $1', [m.dedup_key])).rows[0];
        return { value: { id: String(had?.id), created: false }, notify: false };
      }
      await q(memory.insertVectorSql(dims), [inserted.id, m.namespace, memory.toVector(m.embedding)]);
      return { value: { id: String(inserted.id), created: true }, notify: false };
    });
  }

  async searchMemories(q: MemorySearch): Promise<ScoredMemory[]> {
    const dims = memoryDimensions(q.vector);
    if (q.k <= 0 || !(await this.vectorIndex(dims, false))) return [];
    // The HNSW index filters by namespace after its walk: search wider than k so k survive the filter.
    const rows = await this.withRetry(() =>
      this.withClient(async (c) => {
        await c.query(`BEGIN; SET LOCAL hnsw.ef_search = ${Math.min(1000, Math.max(40, q.k * 4))}`);
        try {
          const r = await c.query<Row>(memory.searchSql(dims), [memory.toVector(q.vector), q.namespace, q.k]);
          await c.query('COMMIT');
          return r.rows;
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
    );
    return rows.map((r) => ({ ...memory.toMemory(r), score: Number(r.score) }));
  }

  async listMemories(q: MemoryListQuery): Promise<MemoryRecord[]> {
    const limit = Math.max(1, Math.min(q.limit ?? 100, 10_000));
    const before = q.before !== undefined ? q.before : '9223372036854775807';
    const rows = q.namespace !== undefined ? await this.read(memory.listSql(true), [q.namespace, before, limit]) : await this.read(memory.listSql(false), [before, limit]);
    return rows.map(memory.toMemory);
  }

  async deleteMemories(q: { namespace: string; id?: string }): Promise<number> {
    // The vectors go with their rows (ON DELETE CASCADE): no pgvector needed to forget.
    return q.id !== undefined ? this.write('DELETE FROM memories WHERE namespace = $1 AND id = $2', [q.namespace, q.id]) : this.write('DELETE FROM memories WHERE namespace = $1', [q.namespace]);
  }

  // ---- sw4rm router (sw4rm-router-sql.ts) ----

  sw4rmSend(items: readonly Sw4rmSendItem[], leaseUntil: number): Promise<Sw4rmSendOutcome[]> {
    return this.atomically(async (q) => ({ value: await sw4rmSql.sendMessagesIn(q, items, leaseUntil), notify: false }));
  }

  sw4rmClaim(recipient: string, limit: number, now: number, leaseUntil: number): Promise<Sw4rmMessageRow[]> {
    return this.atomically(async (q) => ({ value: await sw4rmSql.claimMessagesIn(q, recipient, limit, now, leaseUntil), notify: false }));
  }

  sw4rmRequeue(recipient: string, maxAttempts: number, now: number): Promise<number> {
    return this.atomically(async (q) => ({ value: await sw4rmSql.requeueInFlightIn(q, recipient, maxAttempts, now), notify: false }));
  }

  sw4rmAck(acks: readonly Sw4rmAckItem[], now: number): Promise<boolean[]> {
    return this.atomically(async (q) => ({ value: await sw4rmSql.ackMessagesIn(q, acks, now), notify: false }));
  }

  sw4rmSweep(now: number, maxAttempts: number, pruneBefore: number): Promise<Sw4rmSweepResult> {
    return this.atomically(async (q) => ({ value: await sw4rmSql.sweepIn(q, now, maxAttempts, pruneBefore), notify: false }));
  }

  async sw4rmMessages(q: { state?: Sw4rmMessageState; recipient?: string; limit?: number }): Promise<Sw4rmMessageRow[]> {
    return (await this.read(sw4rmSql.LIST_MESSAGES_SQL, [q.state ?? null, q.recipient ?? null, q.limit ?? null])).map(sw4rmSql.toSw4rmMessage);
  }

  sw4rmReplayDead(seq: number | 'all', now: number): Promise<Sw4rmMessageRow[]> {
    return this.atomically(async (q) => ({ value: await sw4rmSql.replayDeadIn(q, seq, now), notify: false }));
  }

  sw4rmDropDead(seq: number | 'all'): Promise<number> {
    return this.write(sw4rmSql.DROP_DEAD_SQL, [seq === 'all' ? null : seq]);
  }

  async sw4rmPutAgent(a: Sw4rmAgentWrite, now: number): Promise<void> {
    await this.write(sw4rmSql.PUT_AGENT_SQL, [a.agent_id, a.name, a.descriptor, a.communication_class, now]);
  }

  async sw4rmEnsureAgent(agentId: string, now: number): Promise<void> {
    await this.write(sw4rmSql.ENSURE_AGENT_SQL, [agentId, JSON.stringify({ agent_id: agentId, name: agentId }), now]);
  }

  async sw4rmHeartbeat(agentId: string, agentState: string, health: string, now: number): Promise<boolean> {
    return (await this.write(sw4rmSql.HEARTBEAT_SQL, [agentState, health, now, agentId])) > 0;
  }

  async sw4rmDeregisterAgent(agentId: string, reason: string, now: number): Promise<boolean> {
    return (await this.write(sw4rmSql.DEREGISTER_SQL, [now, reason, agentId])) > 0;
  }

  async sw4rmAgents(): Promise<Sw4rmAgentRow[]> {
    return (await this.read(sw4rmSql.LIST_AGENTS_SQL)).map(sw4rmSql.toSw4rmAgent);
  }

  async sw4rmMarkUnavailable(before: number): Promise<string[]> {
    return (await this.read(sw4rmSql.MARK_UNAVAILABLE_SQL, [before])).map((r) => String(r.agent_id));
  }

  async sw4rmTouchAgents(agentIds: readonly string[], now: number): Promise<void> {
    await this.write(sw4rmSql.TOUCH_AGENTS_SQL, [now, [...agentIds]]);
  }

  // ---- sw4rm registry, scheduler, negotiation and HITL (sw4rm-registry-sql.ts) ----

  async getSw4rmDocs(kind: string, keys: readonly string[]): Promise<Sw4rmDoc[]> {
    if (keys.length === 0) return [];
    return sw4rmToDocs(await this.read(sw4rmByKeysSql(keys.length), [kind, ...keys]));
  }

  async listSw4rmDocs(kind: string, by: { group: string } | { owner: string }): Promise<Sw4rmDoc[]> {
    return sw4rmToDocs('group' in by ? await this.read(SW4RM_LIST_GROUP_SQL, [kind, by.group]) : await this.read(SW4RM_LIST_OWNER_SQL, [kind, by.owner]));
  }

  updateSw4rmGroup(group: string, kinds: readonly string[], change: Sw4rmGroupChange): Promise<Sw4rmGroupWrite> {
    return this.atomically(async (q) => ({ value: await updateSw4rmGroupIn(q, group, kinds, change), notify: false }));
  }

  // ---- sw4rm agent state (sw4rm-state-sql.ts) ----

  async getSw4rmState(agentId: string, kind: string, key = ''): Promise<Sw4rmStateRow | undefined> {
    const r = (await this.read(sw4rmStateSql.GET_SW4RM_STATE_SQL, [noNul(agentId), noNul(kind), noNul(key)]))[0];
    return r ? toSw4rmStateRow(r) : undefined;
  }

  async putSw4rmState(agentId: string, kind: string, value: unknown, key = ''): Promise<Sw4rmStateRow> {
    const json = sw4rmStateWrite(agentId, kind, key, value);
    const now = Date.now();
    await this.write(sw4rmStateSql.PUT_SW4RM_STATE_SQL, [agentId, kind, key, json, now]);
    return { agent_id: agentId, kind, key, value: JSON.parse(json) as unknown, updated_at: now };
  }

  async listSw4rmState(agentId: string): Promise<Sw4rmStateRow[]> {
    return (await this.read(sw4rmStateSql.LIST_SW4RM_STATE_SQL, [noNul(agentId)])).map(toSw4rmStateRow);
  }

  async deleteSw4rmState(agentId: string, kind?: string): Promise<number> {
    return kind === undefined ? this.write(sw4rmStateSql.deleteSw4rmStateSql(false), [noNul(agentId)]) : this.write(sw4rmStateSql.deleteSw4rmStateSql(true), [noNul(agentId), noNul(kind)]);
  }

  // ---- executors registry (exec) (migration 24) ----
  async putExecutor(e: ExecutorWrite): Promise<ExecutorRecord> {
    const rows = await this.read(executorsSql.PUT_EXECUTOR_SQL, [noNul(e.name), noNul(e.base_url), e.token_secret === null ? null : noNul(e.token_secret), e.public_key === null ? null : noNul(e.public_key), Date.now()]);
    return toExecutorRecord(rows[0] as Record<string, unknown>);
  }

  async getExecutor(name: string): Promise<ExecutorRecord | undefined> {
    const r = (await this.read(executorsSql.GET_EXECUTOR_SQL, [noNul(name)]))[0];
    return r ? toExecutorRecord(r) : undefined;
  }

  async listExecutors(): Promise<ExecutorRecord[]> {
    return (await this.read(executorsSql.LIST_EXECUTORS_SQL)).map(toExecutorRecord);
  }

  async deleteExecutor(name: string): Promise<boolean> {
    return (await this.write(executorsSql.DELETE_EXECUTOR_SQL, [noNul(name)])) > 0;
  }

  async getRunSharedInputs(runId: string): Promise<string | null | undefined> {
    const r = (await this.read(executorsSql.GET_RUN_SHARED_INPUTS_SQL, [noNul(runId)]))[0];
    return r ? ((r.shared_inputs as string | null) ?? null) : undefined;
  }

  // ---- consensus tasks: tasks, candidates, verifier results, votes, decisions (engine) (migration 25) ----
  getConsensusTask(taskId: string): Promise<ConsensusTaskRow | undefined> {
    return pgConsensusReads((text, values) => this.read(text, values)).getTask(taskId);
  }

  listConsensusTasks(query: ConsensusTaskQuery = {}): Promise<ConsensusTaskRow[]> {
    return pgConsensusReads((text, values) => this.read(text, values)).listTasks(query);
  }

  getConsensusCandidates(taskId: string): Promise<ConsensusCandidateRow[]> {
    return pgConsensusReads((text, values) => this.read(text, values)).candidates(taskId);
  }

  getConsensusResults(taskId: string): Promise<ConsensusResultRow[]> {
    return pgConsensusReads((text, values) => this.read(text, values)).results(taskId);
  }

  getConsensusVotes(taskId: string, round?: number): Promise<ConsensusVoteRow[]> {
    return pgConsensusReads((text, values) => this.read(text, values)).votes(taskId, round);
  }

  getConsensusDecision(taskId: string): Promise<ConsensusDecisionRow | undefined> {
    return pgConsensusReads((text, values) => this.read(text, values)).getDecision(taskId);
  }

  getConsensusCosts(taskId: string): Promise<ConsensusCosts> {
    return pgConsensusReads((text, values) => this.read(text, values)).costs(taskId);
  }

  // ---- knowledge store: decisions, evidence, track record (knowledge) (migration 26) ----
  putKnowledgeDecision(w: KnowledgeDecisionWrite): Promise<{ created: boolean }> {
    return this.atomically(async (q, now) => ({ value: await knowledgeSql.putKnowledgeDecisionIn(q, w, now), notify: false }));
  }

  async getKnowledgeDecision(taskId: string): Promise<KnowledgeDecisionRow | undefined> {
    const r = (await this.read(knowledgeSql.GET_DECISION_SQL, [noNul(taskId)]))[0];
    return r ? toKnowledgeDecisionRow(r) : undefined;
  }

  async listKnowledgeDecisions(q: KnowledgeDecisionQuery): Promise<KnowledgeDecisionRow[]> {
    if (q.task_ids !== undefined && q.task_ids.length === 0) return [];
    return (await this.read(knowledgeSql.LIST_DECISIONS_SQL, knowledgeSql.listDecisionsParams(q))).map(toKnowledgeDecisionRow);
  }

  async listKnowledgeProposals(taskIds: readonly string[]): Promise<KnowledgeProposalRow[]> {
    if (taskIds.length === 0) return [];
    return (await this.read(knowledgeSql.LIST_PROPOSALS_SQL, [taskIds.map((t) => noNul(t))])).map(toKnowledgeProposalRow);
  }

  async knowledgeTrackRecord(f: KnowledgeTrackFilter): Promise<KnowledgeTrackRow[]> {
    return (await this.read(knowledgeSql.TRACK_RECORD_SQL, knowledgeSql.trackRecordParams(f))).map(toKnowledgeTrackRow);
  }

  async knowledgeTaskTypes(): Promise<string[]> {
    return (await this.read(knowledgeSql.TASK_TYPES_SQL)).map((r) => r.task_type as string);
  }

  async addKnowledgeLookup(l: KnowledgeLookupWrite): Promise<KnowledgeLookupRow> {
    const r = (await this.read(knowledgeSql.ADD_LOOKUP_SQL, knowledgeSql.addLookupParams(l)))[0] as Record<string, unknown>;
    return toKnowledgeLookupRow(r);
  }

  async listKnowledgeLookups(q: { task_id?: string; limit?: number }): Promise<KnowledgeLookupRow[]> {
    return (await this.read(knowledgeSql.LIST_LOOKUPS_SQL, [q.task_id === undefined ? null : noNul(q.task_id), q.limit ?? 100])).map(toKnowledgeLookupRow);
  }

  // ---- signing keys (core) (migration 27) ----
  async insertSigningKey(rec: SigningKeyRecord): Promise<SigningKeyInsert> {
    const created = (await this.write(keysSql.INSERT_SIGNING_KEY_SQL, [noNul(rec.name), rec.public_key, rec.private_key_enc, rec.created_at])) === 1;
    const record = await this.getSigningKey(rec.name);
    if (!record) throw new Error(`signing key ${rec.name} vanished after its insert`);
    return { created, record };
  }

  async getSigningKey(name: string): Promise<SigningKeyRecord | undefined> {
    const r = (await this.read(keysSql.GET_SIGNING_KEY_SQL, [noNul(name)]))[0];
    return r ? toSigningKeyRecord(r) : undefined;
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return (await this.read(keysSql.LIST_SIGNING_KEYS_SQL)).map(toSigningKeyRecord);
  }

  async updateSigningKeyEnc(name: string, privateKeyEnc: string): Promise<boolean> {
    return (await this.write(keysSql.UPDATE_SIGNING_KEY_ENC_SQL, [noNul(name), privateKeyEnc])) === 1;
  }
  async runLineage(runId: string, limit = 1000): Promise<LineageNode[]> {
    return (await this.read(LINEAGE_SQL, [runId, limit])).map(toLineageNode);
  }
  // ---- imported bundles and age keys (migration 29) ----
  async insertAgeKey(rec: SigningKeyRecord): Promise<SigningKeyInsert> {
    const created = (await this.write(shareSql.INSERT_AGE_KEY_SQL, [noNul(rec.name), rec.public_key, rec.private_key_enc, rec.created_at])) === 1;
    const record = await this.getSigningKey(rec.name);
    if (!record) throw new Error(`key ${rec.name} vanished after its insert`);
    return { created, record };
  }

  async insertImportedBundle(rec: ImportedBundleRecord): Promise<boolean> {
    return (await this.write(shareSql.INSERT_IMPORTED_BUNDLE_SQL, [noNul(rec.run_id), rec.bundle_sha256, rec.certificate_sha256, noNul(rec.source_run_id), rec.bundle, rec.imported_at])) === 1;
  }

  async getImportedBundle(runId: string): Promise<ImportedBundleRecord | undefined> {
    const r = (await this.read(shareSql.GET_IMPORTED_BUNDLE_SQL, [noNul(runId)]))[0];
    return r ? toImportedBundle(r) : undefined;
  }


  /** The database's clock, in milliseconds. */
  async now(): Promise<number> {
    return Number((await this.read(`SELECT ${NOW_MS} AS now`))[0]?.now);
  }

  /** A setting of this store's sessions (`synchronous_commit`, `search_path`), for diagnostics. */
  async sessionSetting(name: string): Promise<string> {
    return (await this.read('SELECT current_setting($1) AS v', [name]))[0]?.v as string;
  }

  /** The schema version recorded in the database. */
  async initMeta(key: string, value: string): Promise<string> {
    await this.write('INSERT INTO swarm_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
    const row = (await this.read('SELECT value FROM swarm_meta WHERE key = $1', [key]))[0];
    return String(row?.value);
  }

  schemaVersion(): Promise<number> {
    return this.withRetry(() => this.withClient((c) => schemaVersion(c)));
  }

  /**
   * `fn` may run more than once: again after a deadlock or a connection lost before COMMIT (its
   * earlier run was rolled back). The ledger's functions only act through `tx`, so that is safe.
   */
  transaction<T>(fn: (tx: LedgerTx) => Promise<T>, lock?: TxHint): Promise<T> {
    return this.pipelined('a transaction', async (p) => {
      const observer = this.observer;
      const began = observer ? performance.now() : 0;
      const tx = new PgTx(p, observer);
      await tx.begin(lock);
      const value = await fn(tx);
      tx.flushWrites();
      // NOTIFY in a transaction of its own right after COMMIT, in the same round trip: PostgreSQL
      // serialises committing transactions that notify with one lock held through their WAL flush,
      // so a NOTIFY inside the data's transaction would queue every notifying commit behind the
      // others' fsyncs. Its own transaction does not wait for a flush (a lost notification costs a
      // poll interval, never data), and it goes out after the data is durable.
      const after = tx.changed ? ['BEGIN', `SELECT set_config('synchronous_commit', 'off', true), pg_notify('${this.channel}', '')`, 'COMMIT'] : undefined;
      // No group commit here: every transaction commits alone (a batch of one).
      const result = observer ? () => (observer.committed('postgres', (performance.now() - began) / 1000, [tx]), value) : () => value;
      return { result, ...(after ? { after } : {}) };
    });
  }

  observeCommits(observer: CommitObserver | undefined): void {
    this.observer = observer;
  }

  async getBreaker(key: string): Promise<BreakerRow | undefined> {
    const r = (await this.read(GET_BREAKER_SQL, [key]))[0];
    return r ? toBreakerRow(r) : undefined;
  }

  async listBreakers(): Promise<BreakerRow[]> {
    return (await this.read(LIST_BREAKERS_SQL)).map(toBreakerRow);
  }

  updateBreaker(key: string, kind: string, change: BreakerChange): Promise<{ before: BreakerRow; after: BreakerRow }> {
    return this.atomically(async (q) => ({ value: await updateBreakerIn(q, key, kind, change), notify: false }));
  }

  async deleteBreaker(key: string): Promise<BreakerRow | undefined> {
    const r = (await this.read(DELETE_BREAKER_SQL, [key]))[0];
    return r ? toBreakerRow(r) : undefined;
  }

  async queueGauges(liveWithinMs: number): Promise<QueueGauges> {
    return toQueueGauges((await this.read(queueGaugesSql(NOW_MS), [liveWithinMs]))[0]);
  }

  /**
   * A transaction through a `Pipeline`: BEGIN (with the planner settings, see Pipeline.begin) is
   * queued, `body` queues or runs its statements, then COMMIT (and `after`, statements run after it)
   * go out with whatever is still queued, in one round trip. `result` is read once COMMIT has succeeded.
   */
  private pipelined<T>(what: string, body: (p: Pipeline) => Promise<{ result: () => T; after?: readonly string[] }>): Promise<T> {
    return this.withRetry(() =>
      this.withClient(async (client) => {
        const p = new Pipeline(client, this.preparedOn(client));
        p.begin(NOW_MS);
        let committing = false;
        try {
          const { result, after } = await body(p);
          committing = true;
          let tag = '';
          p.defer('COMMIT', (r) => {
            tag = r.command;
          });
          for (const sql of after ?? []) p.defer(sql);
          await p.flush();
          // COMMIT of a transaction an earlier statement broke (an error someone caught) rolls back.
          if (tag !== 'COMMIT') throw new StoreError('TX_ABORTED', `${what} failed and was rolled back (${this.location})`, { database: this.location });
          return result();
        } catch (e) {
          p.discard();
          // A connection lost during COMMIT may have committed: not retried (see atomically).
          if (isConnectionError(e)) throw committing ? new CommitUnknown(e) : e;
          // If the ROLLBACK fails too, the connection is discarded (see withClient).
          await client.query('ROLLBACK').catch(() => undefined);
          // A failed round trip may have run some of its PREPAREs and not others.
          await p.resync().catch(() => undefined);
          throw e;
        }
      }),
    );
  }

  /** Statements prepared (SQL PREPARE) on a connection, kept for the connection's life. */
  private readonly preparedSets = new WeakMap<pg.ClientBase, Set<string>>();
  private preparedOn(client: pg.ClientBase): Set<string> {
    let set = this.preparedSets.get(client);
    if (!set) {
      set = new Set();
      this.preparedSets.set(client, set);
    }
    return set;
  }

  // ---- registry ----

  /**
   * (name, version) is unique: the same content again is a no-op, different content an error unless
   * forced (`decide`: rows.ts, agentPut and workflowPut). Puts of one name (every version) are serialised by an advisory lock held to the end of
   * the write: a workflow's trigger row is computed from all its versions, so two versions registered
   * at once must not each see only their own (the older one's row could be written last).
   */
  private put(
    table: 'agents' | 'workflows',
    rec: { name: string; version: string },
    upsert: (q: Query, now: number) => Promise<unknown>,
    decide: (existing: Row | undefined) => { result: PutResult; write: boolean },
  ): Promise<PutResult> {
    return this.atomically(async (q, now) => {
      await lockName(q, table, rec.name);
      const columns = table === 'agents' ? 'digest, path, manifest' : 'digest, manifest';
      const existing = (await q(`SELECT ${columns} FROM ${table} WHERE name = $1 AND version = $2`, [rec.name, rec.version])).rows[0];
      const { result, write } = decide(existing);
      if (write) await upsert(q, now);
      return { value: result, notify: false };
    });
  }

  putAgent(rec: AgentRecord, force: boolean): Promise<PutResult> {
    const m = rec.manifest;
    const upsert = (q: Query): Promise<unknown> =>
      q(
        `INSERT INTO agents (id, name, version, path, description, capabilities, inputs_schema, outputs_schema, runtime, memory_mb,
           timeout_seconds, triggers, author, tags, manifest, digest, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (name, version) DO UPDATE SET path = excluded.path, description = excluded.description,
           capabilities = excluded.capabilities, inputs_schema = excluded.inputs_schema, outputs_schema = excluded.outputs_schema,
           runtime = excluded.runtime, memory_mb = excluded.memory_mb, timeout_seconds = excluded.timeout_seconds,
           triggers = excluded.triggers, author = excluded.author, tags = excluded.tags, manifest = excluded.manifest,
           digest = excluded.digest, updated_at = excluded.updated_at`,
        [
          rec.id, rec.name, rec.version, rec.path, m.description ?? null, JSON.stringify(m.capabilities), JSON.stringify(m.inputs),
          JSON.stringify(m.outputs), m.runtime.type, m.runtime.memory_mb, m.runtime.timeout_seconds, JSON.stringify(m.triggers),
          m.author ?? null, JSON.stringify(m.tags), JSON.stringify(m), rec.digest, rec.created_at, rec.updated_at,
        ],
      );
    // The same content from another directory (or with a digest of the old form) is unchanged, and
    // its row is written again (rows.ts, agentPut).
    return this.put('agents', rec, upsert, (existing) => agentPut(existing, rec, force));
  }

  async listAgents(name?: string): Promise<AgentRecord[]> {
    const rows = name ? await this.read('SELECT * FROM agents WHERE name = $1 ORDER BY name, created_at', [name]) : await this.read('SELECT * FROM agents ORDER BY name, created_at');
    return rows.map(toAgent);
  }

  deleteAgent(name: string, version: string): Promise<boolean> {
    return this.atomically(async (q) => {
      return { value: (await q('DELETE FROM agents WHERE name = $1 AND version = $2', [name, version])).rowCount > 0, notify: false };
    });
  }

  putWorkflow(rec: WorkflowRecord, force: boolean): Promise<PutResult> {
    const m = rec.manifest;
    const upsert = async (q: Query, now: number): Promise<void> => {
      await q(
        `INSERT INTO workflows (id, name, version, path, description, trigger_type, trigger_config, steps, variables, on_error,
           on_success, enabled, author, tags, manifest, digest, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (name, version) DO UPDATE SET path = excluded.path, description = excluded.description,
           trigger_type = excluded.trigger_type, trigger_config = excluded.trigger_config, steps = excluded.steps,
           variables = excluded.variables, on_error = excluded.on_error, on_success = excluded.on_success,
           author = excluded.author, tags = excluded.tags, manifest = excluded.manifest, digest = excluded.digest,
           updated_at = excluded.updated_at`,
        [
          rec.id, rec.name, rec.version, rec.path, m.description ?? null, m.trigger.type, JSON.stringify(m.trigger), JSON.stringify(m.steps),
          JSON.stringify(m.variables), JSON.stringify(m.on_error), JSON.stringify(m.on_success), rec.enabled ? 1 : 0, m.author ?? null,
          JSON.stringify(m.tags), JSON.stringify(m), rec.digest, rec.created_at, rec.updated_at,
        ],
      );
      // The trigger row changes with the workflow row, in its transaction: both or neither.
      await this.syncTrigger(q, rec.name, now);
    };
    // The same content is unchanged, compared by its canonical digest; a row holding a digest of the
    // old form is compared by its manifest and written again with the new one (rows.ts, workflowPut).
    return this.put('workflows', rec, upsert, (existing) => workflowPut(existing, rec, force));
  }

  /**
   * Rewrite the trigger row of workflow `name` from its registered versions (inside a transaction).
   * Registrations of one name are serialised by put's advisory lock; two names claiming one webhook
   * path race on the unique index, which refuses the second as the check below would.
   */
  private async syncTrigger(q: Query, name: string, now: number): Promise<void> {
    const versions = (await q('SELECT * FROM workflows WHERE name = $1', [name])).rows.map(toWorkflow);
    const existing = (await q('SELECT * FROM triggers WHERE id = $1', [name])).rows[0];
    const row = triggerRowFor(versions, existing ? toTrigger(existing) : undefined, now);
    if (!row) {
      await q('DELETE FROM triggers WHERE id = $1', [name]);
      return;
    }
    if (row.webhook_path !== null) {
      const holder = (await q('SELECT workflow_name FROM triggers WHERE webhook_path = $1 AND id <> $2', [row.webhook_path, name])).rows[0]?.workflow_name as string | undefined;
      if (holder !== undefined) throw webhookPathTaken(row.webhook_path as string, name, holder);
    }
    try {
      await q(TRIGGER_UPSERT, TRIGGER_COLUMNS.map((c) => row[c]));
    } catch (e) {
      if ((e as { code?: string }).code === '23505' && row.webhook_path !== null) throw webhookPathTaken(row.webhook_path as string, name, 'another workflow');
      throw e;
    }
  }

  async listWorkflows(name?: string): Promise<WorkflowRecord[]> {
    const rows = name
      ? await this.read('SELECT * FROM workflows WHERE name = $1 ORDER BY name, created_at', [name])
      : await this.read('SELECT * FROM workflows ORDER BY name, created_at');
    return rows.map(toWorkflow);
  }

  setWorkflowEnabled(name: string, enabled: boolean): Promise<number> {
    return this.atomically(async (q, now) => {
      // Under the registrations' lock: a put reading the versions meanwhile would write the old flag back.
      await lockName(q, 'workflows', name);
      await q('UPDATE triggers SET enabled = $1, updated_at = $2 WHERE id = $3', [enabled ? 1 : 0, now, name]);
      return { value: (await q('UPDATE workflows SET enabled = $1, updated_at = $2 WHERE name = $3', [enabled ? 1 : 0, now, name])).rowCount, notify: false };
    });
  }

  // ---- triggers and leases ----

  async listTriggers(filter: TriggerFilter = {}): Promise<TriggerRecord[]> {
    const conds: Array<[string, unknown]> = [];
    if (filter.type) conds.push(['type =', filter.type]);
    if (filter.workflow !== undefined) conds.push(['id =', noNul(filter.workflow)]);
    const parts = conds.map(([c], i) => `${c} $${i + 1}`);
    if (filter.enabledOnly) parts.push('enabled = 1');
    const rows = await this.read(`SELECT * FROM triggers ${parts.length ? `WHERE ${parts.join(' AND ')}` : ''} ORDER BY id`, conds.map(([, v]) => v));
    return rows.map(toTrigger);
  }

  async getWebhookTrigger(path: string): Promise<TriggerRecord | undefined> {
    const row = (await this.read(`SELECT * FROM triggers WHERE webhook_path = $1 AND type = 'webhook'`, [noNul(path)]))[0];
    return row ? toTrigger(row) : undefined;
  }

  async setTriggerPaused(id: string, paused: boolean): Promise<boolean> {
    return (await this.write(`UPDATE triggers SET paused = $1, updated_at = ${NOW_MS} WHERE id = $2 AND type = 'schedule'`, [paused ? 1 : 0, noNul(id)])) > 0;
  }

  async updateScheduleState(id: string, state: { last_fired_at?: number; next_run_at: number | null }): Promise<void> {
    await this.write(
      `UPDATE triggers SET next_run_at = $1, updated_at = ${NOW_MS},
         last_fired_at = CASE WHEN $2::bigint IS NULL THEN last_fired_at ELSE GREATEST(COALESCE(last_fired_at, $2::bigint), $2::bigint) END
       WHERE id = $3 AND type = 'schedule'`,
      [state.next_run_at, state.last_fired_at ?? null, noNul(id)],
    );
  }

  async swapScheduleBuffer(id: string, expected: number | null, next: number | null): Promise<boolean> {
    const sql = `UPDATE triggers SET buffered_tick = $1, updated_at = ${NOW_MS} WHERE id = $2 AND type = 'schedule' AND buffered_tick IS NOT DISTINCT FROM $3::bigint`;
    return (await this.write(sql, [next, noNul(id), expected])) > 0;
  }

  async pruneEmittedEvents(before: number, limit: number): Promise<number> {
    // SKIP LOCKED: a row an emit holds (its id repeated right now) is left for the next batch.
    return this.write('DELETE FROM emitted_events WHERE id IN (SELECT id FROM emitted_events WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)', [before, limit]);
  }

  // ---- retention (retention-sql.ts) ----

  expiredRunTrees(q: ExpiredRunQuery): Promise<ExpiredRunPage> {
    return retention.expiredRunTrees((text, values) => this.read(text, values), q);
  }

  deleteRunTrees(trees: readonly RunTree[], q: Pick<ExpiredRunQuery, 'before' | 'statuses'>): Promise<RunDeleteReport> {
    return this.atomically(async (tx) => {
      const value = await retention.deleteRunTrees(tx, trees, q);
      return { value, notify: false };
    });
  }

  compactAgentSessions(o: CompactOptions): Promise<CompactReport> {
    return this.atomically(async (tx) => ({ value: await retention.compactSessions(tx, o), notify: false }));
  }

  databaseSize(): Promise<DatabaseSize> {
    return retention.databaseSize((text, values) => this.read(text, values));
  }

  reserveBudget(req: BudgetReserveRequest): Promise<BudgetReserveResult> {
    return this.atomically(async (q, now) => ({ value: await reserveBudget(q, req, now), notify: false }));
  }

  settleBudget(req: BudgetSettleRequest): Promise<BudgetWarning[]> {
    return this.atomically(async (q, now) => ({ value: await settleBudget(q, req, now), notify: false }));
  }

  async getBudgetScopes(rootRunId: string): Promise<BudgetScopeUsage[]> {
    return budgetScopes(async (text, values) => ({ rows: await this.read(text, values), rowCount: 0 }), rootRunId);
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<LeaseRecord & { acquired: boolean }> {
    // One statement: the upsert either takes the lease or leaves it; the select after it (a CTE sees
    // the table as it was before) falls back to the lease as it stands.
    const rows = await this.read(
      `WITH taken AS (
         INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, ${NOW_MS} + $3::bigint)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ${NOW_MS}
         RETURNING name, holder, expires_at)
       SELECT name, holder, expires_at FROM taken UNION ALL SELECT name, holder, expires_at FROM leases WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM taken)`,
      [noNul(name), noNul(holder), ttlMs],
    );
    const lease = rows[0] as unknown as LeaseRecord | undefined;
    if (!lease) return this.acquireLease(name, holder, ttlMs);
    return { name: lease.name, holder: lease.holder, expires_at: Number(lease.expires_at), acquired: lease.holder === holder };
  }

  async releaseLease(name: string, holder: string): Promise<boolean> {
    return (await this.write('DELETE FROM leases WHERE name = $1 AND holder = $2', [noNul(name), noNul(holder)])) > 0;
  }

  async getLease(name: string): Promise<LeaseRecord | undefined> {
    const row = (await this.read('SELECT name, holder, expires_at FROM leases WHERE name = $1', [noNul(name)]))[0];
    return row ? { name: row.name as string, holder: row.holder as string, expires_at: Number(row.expires_at) } : undefined;
  }

  // ---- runs ----

  async getRun(id: string): Promise<RunRecord | undefined> {
    const row = (await this.read(`SELECT ${RUN_COLUMNS} FROM workflow_runs WHERE id = $1`, [id]))[0];
    return row ? toRun(row) : undefined;
  }

  async getRunTrace(id: string): Promise<RunTraceRecord | undefined> {
    return (await this.read('SELECT traceparent, tracestate, trigger_type, workflow_name FROM workflow_runs WHERE id = $1', [id]))[0] as RunTraceRecord | undefined;
  }

  async findRunIds(part: string, limit: number, how: 'prefix' | 'suffix' = 'prefix'): Promise<string[]> {
    // Ids are "C"-collated, so this range is the byte-order prefix range the primary key can scan.
    const rows =
      how === 'prefix'
        ? await this.read('SELECT id FROM workflow_runs WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3', [part, `${part}\uffff`, limit])
        : await this.read('SELECT id FROM workflow_runs WHERE right(id, length($1)) = $1 ORDER BY id LIMIT $2', [part, limit]);
    return rows.map((r) => r.id as string);
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    const conds = runConditions(filter);
    if (filter.since !== undefined) conds.push(['created_at >=', filter.since]);
    if (filter.until !== undefined) conds.push(['created_at <', filter.until]);
    const parts = conds.map(([c], i) => `${c} $${i + 1}`);
    const args: unknown[] = conds.map(([, v]) => v);
    if (filter.statuses?.length) {
      parts.push(`status = ANY($${args.length + 1}::text[])`);
      args.push([...filter.statuses]);
    }
    // Keys and values are bound parameters; metadata is JSON text whose values are strings.
    for (const [key, value] of Object.entries(filter.metadata ?? {})) {
      const n = args.length;
      parts.push(`(metadata::jsonb ->> $${n + 1}) = $${n + 2}`);
      args.push(key, value);
    }
    if (filter.after) {
      const n = args.length;
      parts.push(`(created_at, id) < ($${n + 1}::bigint, $${n + 2})`);
      args.push(filter.after.created_at, filter.after.id);
    }
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const sql = `SELECT ${RUN_COLUMNS} FROM workflow_runs ${where} ORDER BY created_at DESC, id DESC LIMIT $${args.length + 1}`;
    return (await this.read(sql, [...args, filter.limit ?? 50])).map(toRun);
  }

  async listRunChanges(filter: RunChangeFilter): Promise<RunRecord[]> {
    const conds = runConditions(filter);
    const parts = conds.map(([c], i) => `${c} $${i + 1}`);
    const args: unknown[] = conds.map(([, v]) => v);
    if (filter.after) {
      const n = args.length;
      parts.push(`(updated_at, id) > ($${n + 1}::bigint, $${n + 2})`);
      args.push(filter.after.updated_at, filter.after.id);
    }
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const sql = `SELECT ${RUN_COLUMNS} FROM workflow_runs ${where} ORDER BY updated_at, id LIMIT $${args.length + 1}`;
    return (await this.read(sql, [...args, filter.limit ?? 100])).map(toRun);
  }

  async getPlanJson(runId: string): Promise<string | undefined> {
    return (await this.read('SELECT p.plan FROM workflow_runs r JOIN run_plans p ON p.id = r.plan_id WHERE r.id = $1', [runId]))[0]?.plan as string | undefined;
  }

  async getPlanById(planId: string): Promise<string | undefined> {
    return (await this.read('SELECT plan FROM run_plans WHERE id = $1', [planId]))[0]?.plan as string | undefined;
  }

  async getSteps(runId: string): Promise<StepRecord[]> {
    return (await this.read('SELECT * FROM step_executions WHERE run_id = $1 ORDER BY step_index, map_index NULLS FIRST', [runId])).map(toStep);
  }

  async getStepOutputs(runId: string, stepIds: readonly string[]): Promise<Map<string, { status: string; outputs: unknown; error: string | null }>> {
    const out = new Map<string, { status: string; outputs: unknown; error: string | null }>();
    if (stepIds.length === 0) return out;
    const rows = await this.read('SELECT step_id, status, outputs, error FROM step_executions WHERE id = ANY($1)', [stepIds.map((id) => stepRowId(runId, id))]);
    const byId = new Map(rows.map((r) => [r.step_id as string, r]));
    // In the order asked for, as the SQLite store returns them.
    for (const id of stepIds) {
      const row = byId.get(id);
      if (row) out.set(id, { status: row.status as string, outputs: parseJson(row.outputs), error: (row.error as string | null) ?? null });
    }
    return out;
  }

  async getStepItem(runId: string, stepId: string): Promise<unknown> {
    return stepItem(async (t, v) => ({ rows: await this.read(t, v), rowCount: 0 }), runId, stepId);
  }

  async getEvents(runId: string, afterSeq = 0, limit = 100_000): Promise<Array<RunEvent & { data_json: string }>> {
    const rows = await this.read('SELECT * FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [runId, afterSeq, limit]);
    return rows.map(toEvent);
  }

  async getLogs(runId: string, stepId?: string): Promise<StepLog[]> {
    const rows = stepId
      ? await this.read('SELECT * FROM step_logs WHERE run_id = $1 AND step_id = $2 ORDER BY at, attempt', [runId, stepId])
      : await this.read('SELECT * FROM step_logs WHERE run_id = $1 ORDER BY at, step_id, attempt', [runId]);
    return rows.map(toStepLog);
  }

  readonly supportedSchemaVersion = SCHEMA_VERSION;

  async runCounts(): Promise<Record<string, number>> {
    const rows = await this.read(`SELECT status, count(*)::int AS n FROM workflow_runs GROUP BY status`);
    return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
  }

  async runConcurrency(runIds: readonly string[]): Promise<Map<string, RunConcurrencyInfo>> {
    if (runIds.length === 0) return new Map();
    return toRunConcurrencyInfo(await this.read(RUN_CONCURRENCY_SQL, [[...new Set(runIds)]]));
  }

  async unfinishedRunIds(): Promise<string[]> {
    return (await this.read(`SELECT id FROM workflow_runs WHERE status IN ('queued', 'running', 'waiting') ORDER BY created_at`)).map((r) => r.id as string);
  }

  async nextDueAt(after: number): Promise<number | null> {
    const row = (
      await this.read(
        `SELECT (SELECT MIN(available_at) FROM step_executions WHERE status = 'ready' AND available_at > $1) AS a,
                (SELECT MIN(lease_until) FROM step_executions WHERE status = 'running' AND lease_until > $1) AS b,
                (${WAIT_READS.nextWakeAt.replace('AS w ', '')}) AS c`,
        [Math.floor(after)],
      )
    )[0];
    const due = [row?.a, row?.b, row?.c].filter((x) => x !== null && x !== undefined).map(Number);
    return due.length ? Math.min(...due) : null;
  }

  async getStepWait(runId: string, stepId: string): Promise<StepWaitRecord | undefined> {
    const row = (await this.read(WAIT_READS.getStepWait, [runId, stepId]))[0];
    return row ? toStepWait(row) : undefined;
  }

  async listRunSignals(runId: string): Promise<RunSignalRecord[]> {
    return (await this.read(WAIT_READS.listRunSignals, [runId])).map(toRunSignal);
  }

  // ---- workers ----

  async registerWorker(rec: WorkerRecord): Promise<void> {
    // Idempotent, so that a retry after a lost connection cannot fail on its own first attempt.
    await this.write(
      `INSERT INTO workers (id, hostname, host_id, pid, concurrency, scope, started_at, heartbeat_at, stopped_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)
       ON CONFLICT (id) DO NOTHING`,
      [rec.id, rec.hostname, rec.host_id, rec.pid, rec.concurrency, rec.scope, rec.started_at, rec.heartbeat_at],
    );
  }

  async heartbeatWorker(id: string): Promise<void> {
    await this.write(`UPDATE workers SET heartbeat_at = ${NOW_MS} WHERE id = $1`, [id]);
  }

  async stopWorker(id: string): Promise<void> {
    await this.write(`UPDATE workers SET stopped_at = ${NOW_MS}, heartbeat_at = ${NOW_MS} WHERE id = $1`, [id]);
  }

  async listWorkers(activeSince?: number): Promise<WorkerRecord[]> {
    const cols = 'id, hostname, host_id, pid, concurrency, scope, started_at, heartbeat_at, stopped_at';
    const rows =
      activeSince === undefined
        ? await this.read(`SELECT ${cols} FROM workers WHERE stopped_at IS NULL ORDER BY started_at`)
        : await this.read(`SELECT ${cols} FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= $1 ORDER BY started_at`, [activeSince]);
    return rows.map(toWorker);
  }

  expireLeasesOf(workerIds: readonly string[]): Promise<number> {
    if (workerIds.length === 0) return Promise.resolve(0);
    return this.atomically(async (q, now) => {
      const n = (await q(`UPDATE step_executions SET lease_until = 0 WHERE status = 'running' AND lease_owner = ANY($1)`, [workerIds])).rowCount;
      await q('UPDATE workers SET stopped_at = COALESCE(stopped_at, $1) WHERE id = ANY($2)', [now, workerIds]);
      // The released steps are claimable now: wake idle workers.
      return { value: n, notify: n > 0 };
    });
  }

  async setStepPid(runId: string, stepId: string, attempt: number, pid: number | null): Promise<void> {
    await this.write('UPDATE step_executions SET pid = $1 WHERE id = $2 AND attempt = $3', [pid, stepRowId(runId, stepId), attempt]);
  }

  async pidsOf(workerIds: readonly string[]): Promise<Array<{ pid: number; run_id: string; step_id: string }>> {
    if (workerIds.length === 0) return [];
    const rows = await this.read(`SELECT pid, run_id, step_id FROM step_executions WHERE status = 'running' AND lease_owner = ANY($1) AND pid IS NOT NULL`, [workerIds]);
    return rows.map((r) => ({ pid: r.pid as number, run_id: r.run_id as string, step_id: r.step_id as string }));
  }

  // ---- change notification ----

  /**
   * Resolve on a notification from another connection (a commit that wrote events), on `wake`, or
   * after `timeoutMs`. A notification that arrived while nobody was waiting is delivered to the next
   * wait, so a change between a worker's claim and its wait is not slept through. Notifications can
   * be lost (the LISTEN connection dropped): the timeout is the fallback, as the port says.
   */
  // ---- agent sessions ----

  /**
   * One round trip: BEGIN, the session upsert (fenced by attempt), the new transcript messages (only
   * if this attempt still owns the session) and COMMIT, sent together. Every statement reads the
   * same clock (statement_timestamp: the round trip's).
   */
  saveAgentCheckpoint(w: AgentCheckpointWrite): Promise<boolean> {
    const s = w.session;
    const m = w.messages;
    return this.pipelined(`saving the checkpoint of session ${s.id}`, async (p) => {
      let written = 0;
      p.defer(
        p.statement(
          `INSERT INTO agent_sessions (id, run_id, step_id, agent, current_agent, trace_id, status, turns, input_tokens, output_tokens, cost_usd, envelope, envelope_version, attempt, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ${NOW_MS}, ${NOW_MS})
           ON CONFLICT (id) DO UPDATE SET current_agent = excluded.current_agent, status = excluded.status, turns = excluded.turns,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
             envelope = excluded.envelope, envelope_version = excluded.envelope_version, attempt = excluded.attempt, error = NULL, compacted_at = NULL, updated_at = excluded.updated_at
           WHERE agent_sessions.attempt <= excluded.attempt`,
          [s.id, s.run_id, s.step_id, s.agent, s.current_agent, s.trace_id, s.status, s.turns, s.input_tokens, s.output_tokens, s.cost_usd, noNul(w.envelope), w.version, w.attempt],
        ),
        (r) => {
          written = r.rowCount;
        },
      );
      if (m.length) {
        // Written only while this attempt owns the session (a newer attempt's upsert wins above).
        p.deferStatement(
          `INSERT INTO agent_messages (session_id, seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd, at)
           SELECT $1, u.seq, u.role, u.agent, u.content, u.tool_calls, u.tool_call_id, u.name, u.input_tokens, u.output_tokens, u.cost_usd, ${NOW_MS}
           FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::float8[])
             AS u(seq, role, agent, content, tool_calls, tool_call_id, name, input_tokens, output_tokens, cost_usd)
           WHERE (SELECT attempt FROM agent_sessions WHERE id = $1) = $12
           ON CONFLICT (session_id, seq) DO NOTHING`,
          [
            s.id, m.map((x) => x.seq), m.map((x) => x.role), m.map((x) => x.agent), m.map((x) => noNul(x.content)), m.map((x) => noNul(x.tool_calls)),
            m.map((x) => x.tool_call_id), m.map((x) => x.name), m.map((x) => x.usage?.input_tokens ?? null), m.map((x) => x.usage?.output_tokens ?? null),
            m.map((x) => x.usage?.cost_usd ?? null), w.attempt,
          ],
        );
      }
      return { result: () => written > 0 };
    });
  }

  async getAgentSession(id: string): Promise<(AgentSessionRecord & { envelope: string | null; envelope_version: number | null }) | undefined> {
    const r = (await this.read(`SELECT ${SESSION_COLUMNS}, envelope, envelope_version FROM agent_sessions WHERE id = $1`, [id]))[0];
    return r ? { ...toAgentSession(r), envelope: (r.envelope as string | null) ?? null, envelope_version: (r.envelope_version as number | null) ?? null } : undefined;
  }

  async failAgentSession(id: string, error: string): Promise<void> {
    await this.write(`UPDATE agent_sessions SET status = 'failed', error = $1, updated_at = ${NOW_MS} WHERE id = $2`, [noNul(error), id]);
  }

  async listAgentSessions(filter: SessionFilter): Promise<AgentSessionRecord[]> {
    const { where, values } = sessionWhere(filter, (i) => `$${i}`);
    const rows = await this.read(`SELECT ${SESSION_COLUMNS} FROM agent_sessions ${where} ORDER BY created_at DESC, id LIMIT $${values.length + 1}`, [...values, filter.limit ?? 100]);
    return rows.map(toAgentSession);
  }

  async getAgentMessages(sessionId: string): Promise<AgentMessageRecord[]> {
    return (await this.read('SELECT * FROM agent_messages WHERE session_id = $1 ORDER BY seq', [sessionId])).map(toAgentMessage);
  }

  async getToolCall(sessionId: string, turn: number, callId: string): Promise<ToolCallRecord | undefined> {
    const r = (await this.read('SELECT * FROM agent_tool_calls WHERE session_id = $1 AND turn = $2 AND call_id = $3', [sessionId, turn, callId]))[0];
    return r ? toToolCall(r) : undefined;
  }

  async listToolCalls(sessionId: string): Promise<ToolCallRecord[]> {
    return (await this.read('SELECT * FROM agent_tool_calls WHERE session_id = $1 ORDER BY turn, at, call_id', [sessionId])).map(toToolCall);
  }

  async recordToolCall(rec: ToolCallRecord): Promise<boolean> {
    const n = await this.write(
      `INSERT INTO agent_tool_calls (session_id, turn, call_id, name, arguments, output, is_error, handoff, context_variables, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (session_id, turn, call_id) DO NOTHING`,
      [rec.session_id, rec.turn, rec.call_id, rec.name, noNul(rec.arguments), noNul(rec.output), rec.is_error ? 1 : 0, rec.handoff, noNul(rec.context_variables), rec.at],
    );
    return n === 1;
  }

  async requestApprovals(items: ReadonlyArray<Omit<ApprovalRecord, 'status' | 'reason' | 'decided_at' | 'decided_by'>>): Promise<void> {
    for (const a of items) {
      await this.write(
        `INSERT INTO approvals (run_id, step_id, call_id, tool, arguments, status, requested_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6)
         ON CONFLICT (run_id, step_id, call_id) DO NOTHING`,
        [a.run_id, a.step_id, a.call_id, a.tool, noNul(a.arguments), a.requested_at],
      );
    }
  }

  async getApproval(runId: string, stepId: string, callId: string): Promise<ApprovalRecord | undefined> {
    const r = (await this.read('SELECT * FROM approvals WHERE run_id = $1 AND step_id = $2 AND call_id = $3', [runId, stepId, callId]))[0];
    return r ? toApproval(r) : undefined;
  }

  // ---- encrypted secrets ----

  private static readonly BUMP_SECRETS_GENERATION = `INSERT INTO swarm_meta (key, value) VALUES ('${SECRETS_GENERATION_KEY}', '1')
     ON CONFLICT (key) DO UPDATE SET value = ((swarm_meta.value)::bigint + 1)::text`;

  putSecret(rec: SecretRecord): Promise<'created' | 'replaced'> {
    return this.atomically(async (q) => {
      // xmax = 0 only for a row this statement inserted (not one it updated).
      const r = await q(
        `INSERT INTO secrets (name, scope, encrypted_value, value_nonce, wrapped_key, kek_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (name, scope) DO UPDATE SET encrypted_value = excluded.encrypted_value, value_nonce = excluded.value_nonce,
           wrapped_key = excluded.wrapped_key, kek_id = excluded.kek_id, updated_at = excluded.updated_at
         RETURNING (xmax = 0) AS created`,
        [noNul(rec.name), noNul(rec.scope), rec.encrypted_value, rec.value_nonce, rec.wrapped_key, rec.kek_id, rec.created_at, rec.updated_at],
      );
      await q(PostgresStore.BUMP_SECRETS_GENERATION);
      return { value: r.rows[0]?.created ? ('created' as const) : ('replaced' as const), notify: false };
    });
  }

  async getSecret(name: string, scope: string): Promise<SecretRecord | undefined> {
    const r = (await this.read('SELECT * FROM secrets WHERE name = $1 AND scope = $2', [noNul(name), noNul(scope)]))[0];
    return r ? toSecret(r) : undefined;
  }

  async listSecrets(scope?: string): Promise<SecretRecord[]> {
    const rows = scope === undefined ? await this.read('SELECT * FROM secrets ORDER BY scope, name') : await this.read('SELECT * FROM secrets WHERE scope = $1 ORDER BY name', [noNul(scope)]);
    return rows.map(toSecret);
  }

  deleteSecret(name: string, scope: string): Promise<boolean> {
    return this.atomically(async (q) => {
      const gone = (await q('DELETE FROM secrets WHERE name = $1 AND scope = $2', [noNul(name), noNul(scope)])).rowCount > 0;
      if (gone) await q(PostgresStore.BUMP_SECRETS_GENERATION);
      return { value: gone, notify: false };
    });
  }

  /** Bumped by triggers of the store on every write to agents and workflows (migration 14). */
  async registryGeneration(): Promise<string> {
    return ((await this.read(`SELECT value FROM swarm_meta WHERE key = '${REGISTRY_GENERATION_KEY}'`))[0]?.value as string | undefined) ?? '0';
  }

  async secretsGeneration(): Promise<string> {
    return ((await this.read(`SELECT value FROM swarm_meta WHERE key = '${SECRETS_GENERATION_KEY}'`))[0]?.value as string | undefined) ?? '0';
  }

  // ---- API tokens ----

  async putApiToken(rec: ApiTokenRecord): Promise<boolean> {
    const n = await this.write(
      `INSERT INTO api_tokens (id, name, secret_hash, scopes, created_at, expires_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO NOTHING`,
      [noNul(rec.id), noNul(rec.name), rec.secret_hash, rec.scopes, rec.created_at, rec.expires_at, rec.last_used_at, rec.revoked_at],
    );
    return n > 0;
  }

  async getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    const r = (await this.read('SELECT * FROM api_tokens WHERE id = $1', [noNul(id)]))[0];
    return r ? toApiToken(r) : undefined;
  }

  async listApiTokens(): Promise<ApiTokenRecord[]> {
    return (await this.read('SELECT * FROM api_tokens ORDER BY created_at, id')).map(toApiToken);
  }

  async revokeApiToken(id: string, at: number): Promise<ApiTokenRecord | undefined> {
    const r = (await this.read('UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *', [noNul(id), at]))[0];
    return r ? toApiToken(r) : undefined;
  }

  async touchApiToken(id: string, at: number): Promise<void> {
    await this.write('UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)', [noNul(id), at]);
  }

  async hasLiveApiTokens(now: number): Promise<boolean> {
    return (await this.read('SELECT 1 FROM api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) LIMIT 1', [now])).length > 0;
  }

  rekey(plan: RekeyPlan): Promise<RekeyReport> {
    return this.atomically(async (q) => {
      // Writers of secrets, events and run heads wait until the rotation commits; readers do not.
      await q('LOCK TABLE secrets, workflow_runs, events IN EXCLUSIVE MODE');
      const check = (await q('SELECT value FROM swarm_meta WHERE key = $1 FOR UPDATE', [KEY_CHECK_META_KEY])).rows[0]?.value;
      if (check !== plan.oldCheck) throw rekeyRefused(this.location);
      const report: RekeyReport = { secrets: 0, runs: 0, events: 0, unverified: [] };
      for (const r of (await q('SELECT * FROM secrets ORDER BY scope, name')).rows) {
        const rec = toSecret(r);
        const w = plan.rewrap(rec);
        await q('UPDATE secrets SET wrapped_key = $1, kek_id = $2 WHERE name = $3 AND scope = $4', [w.wrapped_key, w.kek_id, rec.name, rec.scope]);
        report.secrets++;
      }
      for (const { id } of (await q('SELECT id FROM workflow_runs ORDER BY id')).rows as Array<{ id: string }>) {
        const chained = plan.rechain(id, (await q('SELECT * FROM events WHERE run_id = $1 ORDER BY seq', [id])).rows.map(toEvent));
        if (!chained) {
          report.unverified.push(id);
          continue;
        }
        if (chained.length) {
          // One statement per run: the new hashes as arrays, joined on seq.
          await q(
            `UPDATE events e SET prev_hash = n.prev_hash, hash = n.hash FROM unnest($2::int[], $3::text[], $4::text[]) AS n(seq, prev_hash, hash)
             WHERE e.run_id = $1 AND e.seq = n.seq`,
            [id, chained.map((e) => e.seq), chained.map((e) => e.prev_hash), chained.map((e) => e.hash)],
          );
          await q('UPDATE workflow_runs SET event_hash = $1 WHERE id = $2', [chained[chained.length - 1]?.hash, id]);
        }
        report.runs++;
        report.events += chained.length;
      }
      await q('UPDATE swarm_meta SET value = $1 WHERE key = $2', [plan.newCheck, KEY_CHECK_META_KEY]);
      await q(PostgresStore.BUMP_SECRETS_GENERATION);
      return { value: report, notify: false };
    });
  }

  async listApprovals(filter: { run_id?: string; status?: ApprovalRecord['status'] }): Promise<ApprovalRecord[]> {
    // A request whose step was cancelled or finished (its run failed or was cancelled) is moot.
    const conds: string[] = [`(a.status <> 'pending' OR s.status NOT IN ('cancelled', 'completed', 'failed', 'skipped'))`];
    const values: unknown[] = [];
    if (filter.run_id !== undefined) {
      values.push(filter.run_id);
      conds.push(`a.run_id = $${values.length}`);
    }
    if (filter.status !== undefined) {
      values.push(filter.status);
      conds.push(`a.status = $${values.length}`);
    }
    const rows = await this.read(
      `SELECT a.* FROM approvals a JOIN step_executions s ON s.run_id = a.run_id AND s.step_id = a.step_id
       WHERE ${conds.join(' AND ')} ORDER BY a.requested_at, a.run_id, a.step_id, a.call_id`,
      values,
    );
    return rows.map(toApproval);
  }

  waitForChange(timeoutMs: number, wake?: Promise<unknown>): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.listen();
    if (this.changeGen !== this.consumedGen) {
      this.consumedGen = this.changeGen;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      void wake?.then(done, done);
    });
  }

  private changed(): void {
    this.changeGen++;
    if (this.waiters.size === 0) return;
    this.consumedGen = this.changeGen;
    for (const w of [...this.waiters]) w();
  }

  /** Start the LISTEN connection if it is not up (at most once a second after a failure). */
  private listen(): void {
    if (this.listener || this.listenStarting || this.closed || Date.now() - this.lastListenAttempt < 1000) return;
    this.lastListenAttempt = Date.now();
    const client = new pg.Client({ connectionString: this.options.url, application_name: 'swarm-listen', connectionTimeoutMillis: 10_000, keepAlive: true });
    const drop = (): void => {
      if (this.listener === client) this.listener = undefined;
      client.removeAllListeners('notification');
    };
    client.on('error', () => {
      drop();
      void client.end().catch(() => undefined);
    });
    client.on('end', drop);
    client.on('notification', (n) => {
      if (n.channel === this.channel && !this.ownPids.has(n.processId)) this.changed();
    });
    this.listenStarting = (async () => {
      try {
        await client.connect();
        await client.query(`LISTEN ${this.channel}`);
        if (this.closed) {
          await client.end();
          return;
        }
        this.listener = client;
        // Changes made while nobody listened went unheard: treat (re)connecting as one.
        this.changed();
      } catch {
        drop();
        await client.end().catch(() => undefined);
      } finally {
        this.listenStarting = undefined;
      }
    })();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.waiters]) w();
    await this.listenStarting;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }
}

/** The commit was sent but its outcome is unknown (the connection died). Never retried here. */
class CommitUnknown extends Error {
  constructor(readonly lost: unknown) {
    super(`the connection was lost while committing: ${(lost as Error).message}`);
  }
}

/** Deadlock or serialization failure: the server rolled the transaction back; run it again. */
function isConflict(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
}

/**
 * A statement prepared on this connection before a migration changed the columns it returns
 * (another process upgraded the schema): the statement failed and nothing was committed, so the
 * operation runs again on a fresh connection, which prepares it anew.
 */
function isStalePlan(e: unknown): boolean {
  return (e as { code?: unknown }).code === '0A000' && /cached plan must not change result type/.test((e as Error).message ?? '');
}

/** The connection (not the statement) failed: nothing was committed unless COMMIT was in flight. */
function isConnectionError(e: unknown): boolean {
  if (e instanceof SwarmError || !(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  // Node socket errors, server shutdown, too many connections, and SQLSTATE class 08 (connection).
  // 08P01 (protocol violation) is a malformed message, not a lost connection: not transient.
  if (typeof code === 'string') return code !== '08P01' && /^(E[A-Z]+|57P0[1-3]|53300|08...)$/.test(code);
  return /Connection terminated|not queryable|timeout exceeded when trying to connect|Query read timeout|connection (was )?closed/i.test(e.message);
}

/**
 * What callers hear: store errors as they are; a lost connection as a StoreError whose code is a
 * connection SQLSTATE (class 08: the worker's transient codes), so the worker keeps its completions
 * and commits them again (fencing refuses one that did commit).
 */
function surface(e: unknown, location: string): unknown {
  if (e instanceof CommitUnknown) {
    return new StoreError('08007', `PostgreSQL at ${location}: ${e.message}; it may or may not have been committed`, { database: location }, { cause: e.lost });
  }
  if (isConnectionError(e) && typeof (e as { code?: unknown }).code !== 'string') {
    return new StoreError('08006', `PostgreSQL at ${location}: ${(e as Error).message}`, { database: location }, { cause: e });
  }
  return e;
}

/** The URL with its password (if any) replaced, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/** The filters a run list and a run-change list share: workflow, status, trigger kind. */
function runConditions(filter: { workflow?: string; status?: string; trigger_type?: string; parent?: string }): Array<[string, unknown]> {
  const conds: Array<[string, unknown]> = [];
  if (filter.workflow) conds.push(['workflow_name =', filter.workflow]);
  if (filter.status) conds.push(['status =', filter.status]);
  if (filter.trigger_type) conds.push(['trigger_type =', filter.trigger_type]);
  if (filter.parent) conds.push(['parent_run_id =', filter.parent]);
  return conds;
}

/** Serialise the writes of one agent or workflow name (all versions) until the transaction ends. */
async function lockName(q: Query, table: 'agents' | 'workflows', name: string): Promise<void> {
  await q(`SELECT pg_advisory_xact_lock(hashtext('swarm.put'), hashtext($1))`, [`${table}/${name}`]);
}
