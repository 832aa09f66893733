/**
 * Fixtures for the store contract suite: backends to open, agent/workflow records built the way
 * src/swarm.ts builds them, and a small harness that drives state changes through the engine's Ledger.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { stringify } from 'yaml';
import { verifyChain, type ChainProblem } from '../../src/core/events.js';
import { parseAgentManifest } from '../../src/core/manifest/agent.js';
import { parseWorkflowManifest } from '../../src/core/manifest/workflow.js';
import { Ledger, type NewRunInput } from '../../src/engine/ledger.js';
import { buildRunPlan } from '../../src/engine/plan.js';
import { agentRecord as buildAgentRecord, workflowRecord as buildWorkflowRecord } from '../../src/store/rows.js';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import type {
  AgentRecord,
  ClaimedStep,
  CommitRequest,
  CommitResult,
  Completion,
  RunRecord,
  StepRecord,
  StepResult,
  WorkflowRecord,
} from '../../src/store/types.js';
import { pgTestServer } from './pg.js';

// ---------- backends ----------

/** One database that several store objects can be opened on (like several processes would). */
export interface StoreBackend {
  /** Open a new store object on this backend's database (PostgreSQL opens asynchronously: it migrates). */
  open(): Promise<Store>;
  /** Remove the database (after every store object is closed). */
  cleanup(): Promise<void>;
}

export type MakeStore = () => Promise<StoreBackend>;

/** A fresh SQLite file in a fresh temp directory. */
export const makeSqliteBackend: MakeStore = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-store-contract-'));
  const path = join(dir, 'swarm.db');
  return {
    open: async () => openSqliteStore({ path, durability: 'full' }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
};

/**
 * A fresh database on the test file's PostgreSQL server (embedded, or SWARM_TEST_DATABASE_URL's),
 * already migrated (test/store-contract.test.ts checks migrations on empty databases of its own).
 * The test file stops the server in afterAll (`stopPgTestServer`).
 */
export const makePostgresBackend: MakeStore = async () => {
  const server = await pgTestServer();
  const url = await server.createDatabase();
  return {
    open: () => openPostgresStore({ url, durability: 'full' }),
    cleanup: () => server.dropDatabase(url),
  };
};

// ---------- records ----------

export const NOOP_AGENT_YAML = `name: noop
version: 1.0.0
runtime:
  type: builtin
  entry: noop
outputs: []
`;

export const ECHO_AGENT_YAML = `name: echo
version: 1.0.0
runtime:
  type: builtin
  entry: echo
inputs:
  - name: message
    type: any
outputs:
  - name: echoed
    type: any
`;

/** An AgentRecord exactly as Swarm.registerAgent builds it. */
export function agentRecord(yamlText: string, dir = '/virtual/agents'): AgentRecord {
  return buildAgentRecord(parseAgentManifest(yamlText, join(dir, 'agent.yaml')), dir);
}

export interface StepDef {
  id: string;
  agent?: string;
  depends_on?: string[];
  inputs?: Record<string, unknown>;
  condition?: string;
  retry?: { max_attempts?: number; backoff_ms?: number; max_backoff_ms?: number };
  on_error?: 'fail' | 'continue';
}

export interface WorkflowDef {
  name?: string;
  version?: string;
  concurrency?: number;
  steps: StepDef[];
  on_success?: unknown[];
  on_error?: unknown[];
}

/** A workflow.yaml text from a compact definition (steps default to the noop agent). */
export function workflowYaml(def: WorkflowDef): string {
  return stringify({
    name: def.name ?? 'wf',
    version: def.version ?? '1.0.0',
    ...(def.concurrency !== undefined ? { concurrency: def.concurrency } : {}),
    steps: def.steps.map((s) => ({ ...s, agent: s.agent ?? 'noop@1.0.0' })),
    ...(def.on_success ? { on_success: def.on_success } : {}),
    ...(def.on_error ? { on_error: def.on_error } : {}),
  });
}

/** A WorkflowRecord exactly as Swarm.registerWorkflow builds it. */
export function workflowRecord(def: WorkflowDef | string, dir = '/virtual/workflows'): WorkflowRecord {
  const text = typeof def === 'string' ? def : workflowYaml(def);
  return buildWorkflowRecord(parseWorkflowManifest(text, join(dir, 'workflow.yaml')), dir);
}

// ---------- harness ----------

export interface HarnessOptions {
  random?: () => number;
  defaultRunConcurrency?: number;
}

/** A store plus a Ledger configured like Swarm's, remembering every run id the ledger creates. */
/** The event-chain key of harness ledgers (a real deployment derives it from its master key). */
export const TEST_CHAIN_KEY = Buffer.alloc(32, 7);

export class Harness {
  readonly ledger: Ledger;
  readonly runIds: string[];
  readonly logs: string[] = [];

  constructor(
    readonly store: Store,
    options: HarnessOptions = {},
    runIds: string[] = [],
  ) {
    this.runIds = runIds;
    this.ledger = new Ledger({
      random: options.random ?? (() => 0.5),
      newRunId: () => {
        const id = randomUUID();
        this.runIds.push(id);
        return id;
      },
      secrets: () => undefined,
      config: {},
      defaultRunConcurrency: options.defaultRunConcurrency ?? 100,
      chainKey: TEST_CHAIN_KEY,
    });
  }

  async registerAgents(...yamls: string[]): Promise<void> {
    for (const y of yamls) await this.store.putAgent(agentRecord(y), false);
  }

  async registerWorkflow(def: WorkflowDef | string): Promise<WorkflowRecord> {
    const rec = workflowRecord(def);
    await this.store.putWorkflow(rec, false);
    return rec;
  }

  /** Register the workflow (noop and echo agents too) and create one run of it, like Swarm.startRun. */
  async startRun(def: WorkflowDef | string, input: unknown = {}): Promise<string> {
    return (await this.startRunOnce(def, input)).id;
  }

  /** `startRun` with an idempotency key or metadata, telling whether the run is new. */
  async startRunOnce(def: WorkflowDef | string, input: unknown = {}, extra: Pick<NewRunInput, 'idempotency_key' | 'metadata'> = {}): Promise<{ id: string; created: boolean }> {
    if ((await this.store.listAgents('noop')).length === 0) await this.registerAgents(NOOP_AGENT_YAML, ECHO_AGENT_YAML);
    const wf = workflowRecord(def);
    const existing = (await this.store.listWorkflows(wf.name)).find((w) => w.version === wf.version);
    if (!existing) await this.store.putWorkflow(wf, false);
    const byName = new Map<string, AgentRecord[]>();
    for (const name of ['noop', 'echo']) byName.set(name, await this.store.listAgents(name));
    const plan = buildRunPlan(wf, (n) => byName.get(n) ?? [], {});
    return this.store.transaction((tx) => this.ledger.createRunOnce(tx, wf, plan, { trigger_type: 'manual', trigger_data: input, ...extra }));
  }

  /** Commit as a worker does: with the ledger's hint of what the transaction will lock and claim. */
  async commit(req: CommitRequest): Promise<CommitResult> {
    const result = await this.store.transaction((tx) => this.ledger.commit(tx, req), this.ledger.commitHint(req));
    this.logs.push(...result.messages.map((m) => (typeof m === 'string' ? m : m.text)));
    return result;
  }

  async claim(worker_id: string, max = 1, lease_ms = 60_000, run_ids?: string[]): Promise<ClaimedStep[]> {
    const r = await this.commit({ completions: [], claim: { worker_id, max, lease_ms, ...(run_ids ? { run_ids } : {}) } });
    return r.claimed;
  }

  /** Report a result for a claimed step (as `worker_id`, with the claim's fencing token unless overridden). */
  async finish(claimed: ClaimedStep, worker_id: string, result: StepResult, attempt = claimed.attempt): Promise<CommitResult> {
    return this.commit({ completions: [completion(claimed, worker_id, result, attempt)] });
  }

  async steps(runId: string): Promise<Map<string, StepRecord>> {
    return new Map((await this.store.getSteps(runId)).map((s) => [s.step_id, s]));
  }

  async step(runId: string, stepId: string): Promise<StepRecord> {
    const s = (await this.steps(runId)).get(stepId);
    if (!s) throw new Error(`no step ${stepId} in run ${runId}`);
    return s;
  }

  async run(runId: string): Promise<RunRecord> {
    const r = await this.store.getRun(runId);
    if (!r) throw new Error(`no run ${runId}`);
    return r;
  }

  async eventTypes(runId: string): Promise<string[]> {
    return (await this.store.getEvents(runId)).map((e) => (e.step_id ? `${e.type}:${e.step_id}` : e.type));
  }

  /** Everything observable about a run, to compare before and after an operation that must change nothing. */
  async snapshot(runId: string): Promise<unknown> {
    return { run: await this.store.getRun(runId), steps: await this.store.getSteps(runId), events: await this.store.getEvents(runId) };
  }
}

export function completion(claimed: ClaimedStep, worker_id: string, result: StepResult, attempt = claimed.attempt): Completion {
  return {
    run_id: claimed.run_id,
    step_id: claimed.step_id,
    attempt,
    worker_id,
    retry_count: claimed.retry_count,
    duration_ms: 1,
    result,
  };
}

export const ok = (outputs: unknown = {}): StepResult => ({ kind: 'completed', outputs });
export const fail = (message = 'boom', retryable = true): StepResult => ({ kind: 'failed', error: { code: 'AGENT_FAILED', message }, retryable });

/** Problems with a run's event log: the hash chain, and the run row's head (seq and hash). */
export async function chainProblems(store: Store, runId: string): Promise<Array<ChainProblem | { seq: null; problem: string }>> {
  const events = await store.getEvents(runId);
  const problems: Array<ChainProblem | { seq: null; problem: string }> = verifyChain(TEST_CHAIN_KEY, events);
  const run = await store.getRun(runId);
  if (!run) return [{ seq: null, problem: 'run not found' }];
  if (events.length === 0) problems.push({ seq: null, problem: 'no events' });
  if (run.event_seq !== events.length) problems.push({ seq: null, problem: `run records ${run.event_seq} events, log holds ${events.length}` });
  if (events.length && run.event_hash !== events[events.length - 1]?.hash) problems.push({ seq: null, problem: 'run head hash differs from last event' });
  return problems;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What a contract suite's tests use: a fresh store per test, and its harness. */
export interface ContractStore {
  store: Store;
  h: Harness;
  /** The runs the harness started: their event chains are verified after each test. */
  runIds: string[];
  /** Another store object on the same database, as another process would open it (closed after the test). */
  openAnother(): Promise<Store>;
  /** The database's backend (for a test that opens connections of its own). */
  backend: StoreBackend;
}

/**
 * Give each test of a contract suite a fresh store (call it inside `describe`). After each test,
 * every run the harness started must have a verifiable event chain; then every store object opened
 * is closed and the database removed.
 *
 * @example
 *   const t = useContractStore(makeSqliteBackend);
 *   it('starts a run', async () => expect((await t.h.run(await t.h.startRun(def, {}))).status).toBe('queued'));
 */
export function useContractStore(makeStore: MakeStore): ContractStore {
  let stores: Store[] = [];
  const t = {
    openAnother: async (): Promise<Store> => {
      const s = await t.backend.open();
      stores.push(s);
      return s;
    },
  } as ContractStore;
  beforeEach(async () => {
    t.backend = await makeStore();
    stores = [];
    t.runIds = [];
    t.store = await t.openAnother();
    t.h = new Harness(t.store, {}, t.runIds);
  });
  afterEach(async () => {
    try {
      for (const id of t.runIds) expect(await chainProblems(t.store, id), `event chain of run ${id}`).toEqual([]);
    } finally {
      for (const s of stores) await s.close();
      await t.backend.cleanup();
    }
  });
  return t;
}

/** The error a promise rejects with (the test fails if it resolves). */
export async function expectRejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}
