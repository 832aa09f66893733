import { randomFillSync } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveConfig, type ResolveConfigOptions, type SwarmConfig } from './config/config.js';
import { ManifestError, NotFoundError, PolicyError, ResumeError, UserError, VerificationError } from './core/errors.js';
import { checkChain, digestJson, type RunEvent } from './core/events.js';
import { fieldProblems, validateAgainst } from './core/io-schema.js';
import { NAME_PATTERN, parseAgentManifest, parseRef, pickRecord, schemaWithTools } from './core/manifest/agent.js';
import { checkAgainstRegistry, parseWorkflowSource } from './core/manifest/workflow.js';
import { checkSubWorkflows } from './core/manifest/nesting.js';
import { TERMINAL_RUN, type RunStatus } from './core/states.js';
import { closest } from './core/suggest.js';
import { Ledger } from './engine/ledger.js';
import { agentsFor, buildRunPlan } from './engine/plan.js';
import { reapDeadWorkers, workerIsDead } from './engine/reaper.js';
import { pausedOnOutside } from './engine/waits.js';
import { Worker, type WorkerOptions } from './engine/worker.js';
import { BuiltinExecutor, type BuiltinAgent } from './executors/builtins.js';
import type { Executor } from './executors/executor.js';
import { approvalAgent } from './executors/approval.js';
import { buildAgents, LlmExecutor, type LlmExecutorOptions } from './executors/llm.js';
import type { ChatSession } from './agents/chat.js';
import { costOf } from './agents/providers/prices.js';
import type { ToolSet } from './agents/tools/index.js';
import type { LoopEvent, LoopHooks } from './agents/loop.js';
import { PROVIDER_TYPES } from './agents/providers/config.js';
import type { ModelSpec } from './agents/providers/index.js';
import { TOOL_SPEC_SCHEMA } from './agents/tools/spec.js';
import type { ChatModel } from './agents/types.js';
import type { LogSink } from './observability/log-fields.js';
import { ProcessExecutor } from './executors/process.js';
import { memoryLimitMechanism } from './executors/memory-limit.js';
import { chooseSandbox, sandboxWarnings, type SandboxChoice } from './sandbox/sandbox.js';
import { readManifestFile } from './manifest-file.js';
import type { RegisteredExecutorClient } from './executors/http/resolver.js';
import { sharedInputsJson } from './executors/http/shared-inputs.js';
import { byteLength, LimitExceededError } from './core/limits.js';
import { NetworkGuard } from './net/guard.js';
import type { PutResult, Store } from './store/store.js';
import { agentRecord, sameWorkflowContent, workflowDigest, workflowRecord } from './store/rows.js';
import { openSqliteStore } from './store/sqlite/sqlite-store.js';
import { configuredKeySource, fileKeySource } from './secrets/master-key.js';
import { collectGarbage, type GcOptions, type GcReport } from './retention/gc.js';
import { RetentionPolicy, type RetentionPolicyOptions } from './retention/policy.js';
import { Scheduler, type SchedulerOptions } from './triggers/scheduler.js';
import { NO_METRICS, observeApprovalWaits, type EngineMetrics } from './observability/engine-metrics.js';
import type { PrometheusMetrics } from './observability/metrics.js';
import { listSchedules, previewSchedule, scheduleInfo, scheduleTrigger, setSchedulePaused, type ScheduleInfo } from './triggers/schedules.js';
import { redactAgentWrites } from './secrets/redacting-store.js';
import { Redactor } from './secrets/redactor.js';
import { ClassRedactor } from './guardrails/redaction/classifier.js';
import { storagePolicy } from './guardrails/redaction/policy.js';
import { budgetReport, type BudgetReport } from './guardrails/budget-report.js';
import type { GuardDeps, GuardEvent, GuardrailHooks } from './guardrails/index.js';
import { AgentMemory } from './memory/agent-memory.js';
import { providerEmbedder, type Embedder } from './memory/embedder.js';
import { openStoreKeys, type StoreKeys } from './secrets/store-key.js';
import { SecretCache } from './secrets/secret-cache.js';
import { SigningKeys } from './identity/keys.js';
import type { ForkOptions, ForkResult } from './branching/fork.js';
import type { LineageNode } from './store/fork-types.js';
import { checkSecretName, checkSecretValue, sealSecret, secretsKek } from './secrets/vault.js';
import { deriveKey, KeyPurpose, MASTER_KEY_BYTES } from './secrets/master-key.js';
import { TokenAuthority, type AuthResult, type CreatedToken, type CreateTokenOptions, type Principal, type StreamToken, type TokenInfo } from './auth/tokens.js';
import { checkCustomEventName, checkEventId } from './triggers/events.js';
import { RegistryCache } from './engine/registry-cache.js';
import type { DeliveredWebhook, WebhookDelivery } from './triggers/webhook-delivery.js';
import type {
  AgentMessageRecord,
  AgentRecord,
  AgentSessionRecord,
  ApprovalRecord,
  RekeyReport,
  RunFilter,
  RunChangeFilter,
  RunPlan,
  RunRecord,
  SessionFilter,
  StepLog,
  StepRecord,
  ToolCallRecord,
  WorkflowRecord,
} from './store/types.js';
import type { RunSignalRecord, TriggerRecord, WorkerRecord } from './store/types.js';
import { activeTraceContext, contextFromCarrier, tracingEnabled, type TraceCarrier } from './observability/tracing.js';
import type { ConsensusTasks, SubmittedTask, TaskDecisionView, TaskView } from './consensus/facade.js';
import { consensusDeps, consensusRunner, knowledgeHooks } from './consensus/driver/wiring.js';
import type { ConsensusDeps } from './consensus/driver/deps.js';
import type { VoteInput } from './consensus/driver/votes.js';
import type { TaskCost } from './consensus/core/types.js';
import type { ConsensusTaskQuery, ConsensusTaskRow } from './store/consensus-types.js';
import type { ImportOptions, ImportResult } from './branching/import.js';
import { lazyModule } from './core/lazy-module.js';

// agent.yaml's schema with the tool specs, made now so that the build precompiles it (registerAgent uses it).
schemaWithTools(TOOL_SPEC_SCHEMA);

export interface OpenSwarmOptions extends Partial<ResolveConfigOptions> {
  /** A fully resolved configuration; when given, `cwd`/`env`/`overrides` are ignored. */
  config?: SwarmConfig;
  /** Use this store instead of opening the configured one. */
  store?: Store;
  /** Where engine messages (handler logs, reaped workers) go, with the run and step they are about. */
  log?: LogSink;
  /** LLM agents: supply a model instead of the configured provider's (tests, benchmarks, a gateway). */
  models?: (spec: ModelSpec, agentName: string) => ChatModel | undefined;
  /** LLM agents: each step's loop events (streamed text, tool calls, handoffs) as they happen in this process. */
  onLlmEvent?: (runId: string, stepId: string, e: LoopEvent) => void;
  /** LLM agents: hooks before and after each model call and tool call. */
  llmHooks?: LoopHooks;
  /**
   * Prometheus metrics (docs/observability.md#metrics): `true` keeps every Swarm metric in a registry,
   * read as text with `swarm.metrics.render()`. Default false: nothing is counted, prom-client is not loaded.
   */
  metrics?: boolean;
  /** Environment for provider API keys (default `process.env`). */
  providerEnv?: Readonly<Record<string, string | undefined>>;
  /** The largest agent.yaml or workflow.yaml registered, in bytes (default `limits.manifest_bytes` of swarm.yaml, 1 MiB). */
  manifestMaxBytes?: number;
  /** LLM agents' guardrails in code: an injection classifier that replaces the patterns, a content-policy hook (docs/guardrails.md). */
  guardrails?: GuardrailHooks;
  /** Vector memory: supply an embedder instead of the provider's (tests, benchmarks). */
  embedders?: (embedding: { provider: string; model: string }) => Embedder | undefined;
}

export interface RegisterResult<T> {
  record: T;
  result: PutResult;
  /** What the registration accepted but the user should know (printed by the CLI as warnings). */
  warnings?: string[];
}

export interface RunDetails {
  run: RunRecord;
  steps: StepRecord[];
  /** Usage against the run's budgets (absent when none has been drawn on). */
  budget?: BudgetReport;
}

export interface VerifyReport {
  ok: boolean;
  events: number;
  problems: Array<{ seq: number | null; problem: string }>;
  /** Events at the start of the chain in the old unkeyed form, accepted because of `allowLegacy` (absent when none). */
  legacy_events?: number;
}

export interface VerifyOptions {
  /**
   * Accept an unkeyed (plain SHA-256) start of the chain for a run created before the store was
   * first used with a key. Such a prefix proves nothing against anyone who can write the store.
   */
  allowLegacy?: boolean;
}

/** How process agents run in this process: the sandbox in force and what enforces `memory_mb`. */
export interface IsolationReport {
  sandbox: 'none' | 'bubblewrap';
  /** Do agents see only their package, work directory and the system? */
  isolated: boolean;
  /** Why the sandbox is `none` (configured, or bubblewrap unavailable). */
  reason?: string;
  memory: 'cgroup-v1' | 'cgroup-v2' | 'rlimit' | 'none';
  /** Is memory_mb enforced by the OS (a memory cgroup)? */
  memory_enforced: boolean;
  /** Plain sentences for the worker's start-up output, one per thing that is not enforced. */
  warnings: string[];
}

export interface SecretScopeOptions {
  /** The workflow the secret belongs to; absent: a global secret. */
  workflow?: string;
}

/** A stored secret as listed: never its value. */
export interface SecretInfo {
  name: string;
  scope: 'global' | 'workflow';
  /** The workflow of a workflow-scoped secret, else null. */
  workflow: string | null;
  /** Which master key sealed it (an id, not the key). */
  key_id: string;
  created_at: number;
  updated_at: number;
}

/** What a master key rotation changed (`unverified`: runs whose chains did not verify, left as they were). */
export type RotateKeyReport = RekeyReport;

export interface StartRunOptions {
  trigger_type?: string;
  /**
   * One run per key: starting again with a key already used returns the run it created (nothing
   * new is written), however many callers race. A key used for another workflow is refused
   * (IDEMPOTENCY_KEY_REUSED).
   */
  idempotencyKey?: string;
  /** Labels kept with the run (string values), shown with it. */
  metadata?: Record<string, string>;
  /**
   * Run-level business context merged into the inputs of each of the run's http-runtime steps (an
   * object's keys, else `{shared_inputs: value}`; see src/executors/http/shared-inputs.ts). At most
   * MAX_SHARED_INPUTS_BYTES of JSON (SHARED_INPUTS_TOO_LARGE).
   */
  sharedInputs?: unknown;
  /**
   * The caller's W3C trace context (an HTTP request's `traceparent` and `tracestate` headers): with
   * tracing on, the run joins that trace. Without it, the active span's (a program's
   * `startActiveSpan` around the call, where a context manager carries it). A malformed
   * `traceparent` is ignored (W3C Trace Context).
   */
  trace?: Partial<TraceCarrier>;
}

export interface EmitEventOptions {
  /** The event's id: one event per id (a repeat starts nothing). Default: a new, time-ordered id. */
  id?: string;
  /** Who raises it (a workflow's name or any label): event triggers with `source:` match only their own. */
  source?: string;
}

/** What `signalRun` did: the signal's sequence number, and the wait step it was delivered to (null: kept for a later wait). */
export interface SignalSent {
  run_id: string;
  name: string;
  seq: number;
  delivered_to: string | null;
}

/** A signal name: 1 to 100 letters, digits, '.', '_' or '-'. */
// Loaded at their first use (a server that receives no webhook, a worker that runs no llm step, loads
// none of them), then kept: these are on per-delivery and per-step paths.
const webhookDeliveryModule = lazyModule(() => import('./triggers/webhook-delivery.js'));
const guardrailsModule = lazyModule(() => import('./guardrails/index.js'));

const SIGNAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** What `emitEvent` did. */
export interface EmittedEvent {
  id: string;
  name: string;
  /** false: an event with this id was recorded before; `runs` are the ones it started then. */
  created: boolean;
  /** The runs the event started (one per matching event trigger). */
  runs: string[];
  /** Triggers that matched but could not start their run, and why (the event stands). */
  skipped: Array<{ trigger: string; error: string }>;
}

/** What `createRun` did: the run's id, and whether it is new (false: an idempotency key's earlier run). */
export interface CreatedRun {
  runId: string;
  created: boolean;
  /**
   * The run as its creating transaction wrote it (status `queued`, its first steps `ready`), when this
   * call created it: answering with it needs no read of the store. Absent for an existing run.
   */
  details?: RunDetails;
}

/** Random bytes for run ids, drawn 4 KiB at a time: one call into the CSPRNG per 256 ids, not one per id. */
const idPool = Buffer.alloc(4096);
let idPoolAt = idPool.length;

/** The millisecond and 12-bit counter of the last run id this process made. */
let idLastMs = 0;
let idCounter = 0;

/**
 * A run id: time-ordered (UUIDv7), so ids sort by creation. Ids made by one process sort in the
 * order it made them, even within one millisecond: the 12 bits after the version hold a counter
 * (RFC 9562, section 6.2, method 1) that starts at a random value below 2048 each millisecond and
 * counts up; should it run out, the id borrows the next millisecond.
 */
export function newRunId(): string {
  if (idPoolAt === idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  // Each id takes its own 16 bytes of the pool, written over in place (never handed out again).
  const b = idPool.subarray(idPoolAt, (idPoolAt += 16));
  const now = Date.now();
  if (now > idLastMs) {
    idLastMs = now;
    idCounter = (((b[6] ?? 0) << 8) | (b[7] ?? 0)) & 0x7ff;
  } else if (++idCounter > 0xfff) {
    idLastMs++;
    idCounter = 0;
  }
  b.writeUIntBE(idLastMs, 0, 6);
  b[6] = 0x70 | (idCounter >> 8);
  b[7] = idCounter & 0xff;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** How many characters of a run id's end `shortRunId` keeps: its last group, 48 random bits. */
export const SHORT_RUN_ID_LENGTH = 12;

/**
 * The short form of a run id that the CLI shows: the id's last 12 hex characters (its last group,
 * all random bits). A UUIDv7 starts with its creation time, so runs made minutes apart share a long
 * prefix; the random end tells them apart (even odds of two runs sharing one only once a store holds
 * about 16 million runs), and every command accepts it back.
 *
 * @example
 *   shortRunId('0193b2c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d'); // '1e2f3a4b5c6d'
 */
export function shortRunId(id: string): string {
  return id.length > SHORT_RUN_ID_LENGTH ? id.slice(-SHORT_RUN_ID_LENGTH) : id;
}

/** A worker as `Swarm.listWorkers` reports it. */
export interface WorkerStatus extends WorkerRecord {
  /** How long ago its last heartbeat was, on the store's clock. */
  heartbeat_age_ms: number;
  /** Heartbeated within a lease period and (on this machine) its process is there. */
  live: boolean;
}

/**
 * Swarm as a library: register agents and workflows, start runs, wait for them, watch their events,
 * cancel, retry, verify, and run workers. The `swarm` CLI is built on exactly this API.
 *
 * @example
 *   const swarm = await Swarm.open({ cwd: process.cwd() });
 *   await swarm.registerAgents('examples/agents');
 *   await swarm.registerWorkflows('examples/workflows');
 *   const runId = await swarm.startRun('echo-chain', { message: 'Hello Swarm!' });
 *   const { run } = await swarm.runToCompletion(runId);
 *   await swarm.close();
 */
export class Swarm {
  readonly ledger: Ledger;
  readonly builtins: BuiltinExecutor;
  /** The SSRF guard of agents' HTTP requests (`network.allow` in swarm.yaml). */
  readonly network: NetworkGuard;
  private processExecutor: ProcessExecutor | undefined;
  private sandboxChoice: SandboxChoice | undefined;
  private readonly commitListeners = new Set<() => void>();
  private readonly workers = new Set<Worker>();
  /** Schedulers running in this process: woken when registrations or schedules change here. */
  private readonly schedulers = new Set<Scheduler>();

  private readonly llmExecutor: LlmExecutor;
  /** Reads agent.yaml and workflow.yaml: regular files only, at most `manifestMaxBytes`. */
  private readonly readManifest: (file: string) => string;
  private readonly llmOptions: LlmExecutorOptions;
  /** What the guardrails of every llm step share (src/guardrails/index.ts). */
  private readonly guardDeps: GuardDeps;
  /** The agents' vector memory (src/memory/): `swarm memory` and the memory API use it too. */
  readonly memory: AgentMemory;
  /** Replaces secret values (every SWARM_SECRET_*, and stored ones once loaded) with `[secret:NAME]` before anything is stored. */
  readonly redactor: Redactor;
  /** `${secrets.*}`: the encrypted store's secrets (decrypted when first needed), then SWARM_SECRET_*. */
  private readonly secretCache: SecretCache;
  /** Kernel-held Ed25519 signing keys (src/identity/keys.ts), sealed under the master key as secrets are. */
  readonly signingKeys: SigningKeys;
  /** API tokens of the HTTP API, with the cache that keeps their checks off the store. */
  private readonly tokens: TokenAuthority;
  private registry: PrometheusMetrics | undefined;
  /** What the engine reports to: the registry, or the null object. */
  private hooks: EngineMetrics = NO_METRICS;
  /** Consensus tasks: the driver's dependencies (workers run consensus steps with them) and the facade. */
  private readonly consensusDeps: ConsensusDeps;
  /** Made (and its module loaded) at the first task call: most processes never make one. */
  private readonly consensusTasks: () => Promise<ConsensusTasks>;

  private constructor(
    readonly config: SwarmConfig,
    readonly store: Store,
    private keys: StoreKeys,
    private readonly log: LogSink,
    llm: Pick<OpenSwarmOptions, 'models' | 'onLlmEvent' | 'llmHooks' | 'providerEnv' | 'manifestMaxBytes' | 'guardrails' | 'embedders'> = {},
  ) {
    this.readManifest = (file) => readManifestFile(file, { maxBytes: llm.manifestMaxBytes ?? config.limits.manifest_bytes });
    this.network = new NetworkGuard({ allow: config.network.allow });
    this.builtins = new BuiltinExecutor({ network: this.network });
    // Secrets' values and the data classes of the storage policy (guardrails.redaction), on every write.
    const policy = storagePolicy(config.guardrails.redaction);
    const count = (cls: string, action: string, n: number): void => this.hooks.redacted(cls, action, n);
    this.redactor = new Redactor(config.secrets, { classes: new ClassRedactor(policy.rules, policy.custom, count), secretAction: policy.secret, count });
    this.secretCache = new SecretCache(store, () => this.keys.kek, config.secrets, this.redactor);
    this.signingKeys = new SigningKeys(store, () => this.keys.kek);
    let streamKey: { master: Buffer; key: Buffer } | undefined;
    this.tokens = new TokenAuthority(store, () => {
      // Derived again only when the master key changes (rotation).
      if (streamKey?.master !== this.keys.master) streamKey = { master: this.keys.master, key: deriveKey(this.keys.master, KeyPurpose.STREAM_TOKENS) };
      return streamKey.key;
    }, { log });
    const secrets = (name: string, workflow?: string): string | undefined => this.secretCache.get(name, workflow);
    // What agents running in the worker write to the store (approval requests, LLM transcripts) is redacted too.
    const agentStore = redactAgentWrites(store, this.redactor);
    this.builtins.register('approval', approvalAgent(agentStore));
    this.memory = new AgentMemory({
      store: agentStore,
      metrics: () => this.hooks,
      now: () => Date.now(),
      redact: (text) => this.redactor.text(text),
      embedderFor: async (embedding, agent) => {
        const own = llm.embedders?.(embedding);
        if (own) return own;
        const { createEmbeddingModel } = await import('./agents/providers/index.js');
        const baseUrl = agent?.llm?.provider === embedding.provider ? agent.llm.base_url : undefined;
        const model = createEmbeddingModel({ ...embedding, ...(baseUrl ? { baseUrl } : {}) }, config.providers, llm.providerEnv ?? process.env);
        return providerEmbedder(`${embedding.provider}/${embedding.model}`, model);
      },
    });
    this.llmOptions = {
      memory: this.memory,
      store: agentStore,
      providers: config.providers,
      env: llm.providerEnv ?? process.env,
      config: { ...config.values },
      secrets,
      findAgent: async (name, version) => {
        const all = await this.store.listAgents(name);
        const rec = version ? all.find((r) => r.version === version) : pickRecord(all, '*');
        return rec ? { id: rec.id, path: rec.path, manifest: rec.manifest } : undefined;
      },
      ...(llm.models ? { models: llm.models } : {}),
      ...(llm.onLlmEvent ? { onEvent: llm.onLlmEvent } : {}),
      ...(llm.llmHooks ? { hooks: llm.llmHooks } : {}),
      log,
      network: this.network,
      maxMessageBytes: config.limits.llm_message_bytes,
      // The guardrails' modules load at the first llm step.
      guards: async (ctx) => (await guardrailsModule()).createStepGuard(this.guardDeps, ctx),
    };
    this.guardDeps = {
      store: agentStore,
      config: config.guardrails,
      metrics: () => this.hooks,
      providers: config.providers,
      modelFor: async (ref, agentName) => {
        // The provider SDKs load on first use (as the llm executor loads them).
        const { createModel, parseModelRef } = await import('./agents/providers/index.js');
        const spec = parseModelRef(ref);
        return llm.models?.(spec, agentName) ?? createModel(spec, config.providers, llm.providerEnv ?? process.env);
      },
      recordEvents: async (runId, stepId, events) => {
        if (events.length === 0) return;
        const rows = events.map((e) => ({ type: e.type, step_id: stepId, data: this.redactor.value(e.data) }));
        await this.store.transaction((tx) => this.ledger.recordEvents(tx, runId, rows));
        this.notifyCommit();
      },
      now: () => Date.now(),
      redactor: this.redactor,
      ...(llm.guardrails ? { hooks: llm.guardrails } : {}),
      memory: this.memory,
    };
    this.llmExecutor = new LlmExecutor(this.llmOptions);
    this.ledger = new Ledger({
      random: Math.random,
      newRunId,
      secrets,
      config: { ...config.values },
      defaultRunConcurrency: config.runConcurrency,
      eventPayloadBytes: config.limits.event_payload_bytes,
      runInputBytes: config.limits.run_input_bytes,
      chainKey: keys.chain,
      redactor: this.redactor,
    });
    this.consensusDeps = consensusDeps({
      store,
      ledger: this.ledger,
      executorFor: (t) => this.executorFor(t),
      workRoot: join(config.home, 'work'),
      kernelKey: async (name) => {
        const k = await this.signingKeys.getOrCreate(name);
        return { publicKey: k.public_key, privateKey: k.private_key };
      },
      executor: async (name) => {
        const client = await this.executorClient(name);
        return { client, public_key: client.record.public_key };
      },
      faults: config.faults,
      log: (m) => log(m),
      redact: (d) => this.redactor.value(d),
      // The knowledge store: prior decisions seed the proposers, finalized ones are recorded.
      knowledge: knowledgeHooks(async () => (await import('./consensus/knowledge/swarm.js')).knowledgeForSwarm({ store, memory: this.memory, redactor: this.redactor }, llm.providerEnv ?? process.env), store),
    });
    let tasks: Promise<ConsensusTasks> | undefined;
    this.consensusTasks = () =>
      (tasks ??= import('./consensus/facade.js').then(
        ({ ConsensusTasks }) =>
          new ConsensusTasks({
            store,
            listWorkflows: (n) => this.listWorkflows(n),
            registerWorkflow: (path) => this.registerWorkflow(path),
            createRun: (ref, input, o) => this.createRun(ref, input, o),
            recordEvents: (tx, runId, stepId, events) => this.consensusDeps.record(tx, runId, stepId, events),
            notifyCommit: () => this.notifyCommit(),
          }),
      ));
  }

  /** Resolve configuration (swarm.yaml, then environment, then overrides) and open the store. */
  static async open(options: OpenSwarmOptions = {}): Promise<Swarm> {
    const config = options.config ?? resolveConfig({ cwd: options.cwd ?? process.cwd(), ...(options.env ? { env: options.env } : {}), ...(options.overrides ? { overrides: options.overrides } : {}) });
    const store =
      options.store ??
      (config.databaseUrl
        ? // The PostgreSQL client loads only when a database URL is configured.
          await (await import('./store/postgres/postgres-store.js')).openPostgresStore({
            url: config.databaseUrl,
            durability: config.durability,
            ...(config.databaseSchema ? { schema: config.databaseSchema } : {}),
            ...(config.databasePoolSize ? { poolSize: config.databasePoolSize } : {}),
          })
        : openSqliteStore({ path: config.dbPath, durability: config.durability }));
    let keys: StoreKeys;
    try {
      keys = await openStoreKeys(store, config.masterKey ? configuredKeySource(config.masterKey) : fileKeySource(config.masterKeyFile));
    } catch (e) {
      if (!options.store) await store.close();
      throw e;
    }
    const swarm = new Swarm(config, store, keys, options.log ?? (() => undefined), options);
    if (options.metrics) await swarm.enableMetrics();
    return swarm;
  }

  /**
   * The Prometheus metrics when opened with `metrics: true`, else undefined.
   *
   * @example
   *   const swarm = await Swarm.open({ metrics: true });
   *   const text = await swarm.metrics?.render(); // served as swarm.metrics.contentType
   */
  get metrics(): PrometheusMetrics | undefined {
    return this.registry;
  }

  /**
   * Keep Prometheus metrics from now on (what `metrics: true` of `Swarm.open` does; `swarm serve`
   * calls it unless swarm.yaml says `metrics: {enabled: false}`). Call it before creating workers and
   * schedulers: they take the metrics when created. prom-client is loaded here, only when wanted.
   *
   * @example
   *   const m = await swarm.enableMetrics();
   *   console.log(await m.render());
   */
  async enableMetrics(): Promise<PrometheusMetrics> {
    if (this.registry) return this.registry;
    const { createMetrics } = await import('./observability/metrics.js');
    const m = createMetrics({ store: this.store, plans: this.ledger.plans, liveWorkerWindowMs: Math.max(3000, this.config.leaseMs) });
    this.store.observeCommits(m.commits);
    this.registry = m;
    this.hooks = m;
    this.llmOptions.metrics = m;
    return m;
  }

  /** Register an in-process function as a built-in agent (`runtime: {type: builtin, entry: <name>}`). */
  defineBuiltin(name: string, fn: BuiltinAgent): void {
    this.builtins.register(name, fn);
  }

  executorFor = (runtimeType: string): Executor =>
    runtimeType === 'builtin'
      ? this.builtins
      : runtimeType === 'llm'
        ? this.llmExecutor
        : runtimeType === 'sw4rm'
          ? this.sw4rmAgents
          : runtimeType === 'http'
            ? this.httpAgents
            : this.processAgents();

  /** `runtime.type: http` steps (src/executors/http/executor.ts): made on first use. */
  private readonly httpAgents: Executor = {
    execute: async (ctx) => {
      const { HttpExecutor } = await import('./executors/http/executor.js');
      this.httpExecutor ??= new HttpExecutor({ store: this.store, secrets: (name, workflow) => this.secretValue(name, workflow), guardDeps: this.guardDeps });
      return this.httpExecutor.execute(ctx);
    },
  };
  private httpExecutor: Executor | undefined;

  /**
   * A secret's value as steps of `workflow` see it (stored secrets decrypted on demand, then
   * SWARM_SECRET_*): an executor's bearer token, for one.
   *
   * @example
   *   const token = await swarm.secretValue('RT_TOKEN');
   */
  async secretValue(name: string, workflow?: string): Promise<string | undefined> {
    await this.secretCache.prepare(workflow ?? '');
    return this.secretCache.get(name, workflow);
  }

  /**
   * A client of the registered remote executor `name` (`swarm executors add`), its bearer token
   * resolved from its secret. Throws EXECUTOR_UNKNOWN naming it when it is not registered.
   *
   * @example
   *   const rt = await swarm.executorClient('rt');
   *   console.log(await rt.capabilities());
   */
  async executorClient(name: string, options: { fetch?: typeof fetch; timeoutMs?: number } = {}): Promise<RegisteredExecutorClient> {
    return (await import('./executors/http/resolver.js')).executorClientFor(this.store, (n) => this.secretValue(n), name, options);
  }

  /** `runtime.type: sw4rm` steps (src/sw4rm/bridge/): made on first use, so only workers that run one load gRPC. */
  private readonly sw4rmAgents: Executor = {
    execute: async (ctx) => {
      const { Sw4rmExecutor } = await import('./sw4rm/bridge/executor.js');
      this.sw4rmExecutor ??= new Sw4rmExecutor();
      return this.sw4rmExecutor.execute(ctx);
    },
  };
  private sw4rmExecutor: Executor | undefined;

  private processAgents(): ProcessExecutor {
    this.sandboxChoice ??= chooseSandbox(this.config.sandbox);
    this.processExecutor ??= new ProcessExecutor({
      sandbox: this.sandboxChoice.sandbox,
      sandboxMode: this.config.sandbox,
      // NET_CONNECTION events take the guardrail events' path: redacted, one transaction each.
      recordEvents: (runId, stepId, events) => this.guardDeps.recordEvents(runId, stepId, events),
      cgroups: this.config.memoryCgroups,
      logCaptureBytes: this.config.limits.log_capture_bytes,
      redactor: this.redactor,
    });
    return this.processExecutor;
  }

  /**
   * How process agents are isolated here (`sandbox:` in swarm.yaml or SWARM_SANDBOX; `auto` checks
   * once per process that bubblewrap really works). Throws SANDBOX_UNAVAILABLE (exit 4) when
   * bubblewrap is configured but cannot run.
   */
  isolation(): IsolationReport {
    this.sandboxChoice ??= chooseSandbox(this.config.sandbox);
    const { sandbox, reason } = this.sandboxChoice;
    const memory = memoryLimitMechanism({ cgroups: this.config.memoryCgroups });
    const enforced = memory === 'cgroup-v1' || memory === 'cgroup-v2';
    const warnings: string[] = [];
    if (!sandbox.isolated) warnings.push(`process agents are NOT isolated (sandbox none${!reason || reason === 'configured' ? '' : `: ${reason}`}): they see the worker's files, including the store`);
    if (!enforced) {
      warnings.push(
        `memory_mb is NOT enforced by the OS (no memory cgroup${this.config.memoryCgroups ? ' can be made here' : ': SWARM_MEMORY_CGROUPS=off'}): ${memory === 'rlimit' ? 'only an address-space limit (RLIMIT_AS) per process, and node’s heap limit' : 'only node’s heap limit'}`,
      );
    }
    return { sandbox: sandbox.name, isolated: sandbox.isolated, ...(reason && !sandbox.isolated ? { reason } : {}), memory, memory_enforced: enforced, warnings };
  }

  // ---------- agents ----------

  /** Register the agent package at `path` (a directory with agent.yaml, or the file itself). */
  async registerAgent(path: string, options: { force?: boolean } = {}): Promise<RegisterResult<AgentRecord>> {
    const { file, dir } = manifestPath(path, 'agent.yaml');
    const text = this.readManifest(file);
    const manifest = parseAgentManifest(text, file, { toolSpecSchema: TOOL_SPEC_SCHEMA });
    const rt = manifest.runtime;
    if (rt.type === 'llm') {
      const known = [...PROVIDER_TYPES, ...Object.keys(this.config.providers)];
      // The agent's provider and its memory's embedding provider: built in, or named in swarm.yaml.
      const fields = [
        { field: 'runtime.provider', path: ['runtime', 'provider'], provider: manifest.llm?.provider ?? '' },
        ...(manifest.llm?.memory ? [{ field: 'memory.embedding.provider', path: ['memory', 'embedding', 'provider'], provider: manifest.llm.memory.embedding.provider }] : []),
      ];
      for (const f of fields) {
        if (known.includes(f.provider)) continue;
        const hint = closest(f.provider, known);
        const { parseYaml } = await import('./core/manifest/yaml-source.js');
        throw new ManifestError(file, f.field, `unknown provider '${f.provider}'${hint ? ` (did you mean '${hint}'?)` : ''}; use ${PROVIDER_TYPES.join(', ')} or a provider named under providers: in swarm.yaml`, parseYaml(text, file).lineOf(f.path));
      }
    } else if (rt.type === 'http' || rt.type === 'sw4rm') {
      // Nothing runs here: the step goes to a remote executor (http) or an agent on the router (sw4rm).
    } else if (rt.type === 'builtin') {
      if (!this.builtins.has(rt.entry)) throw new ManifestError(file, 'runtime.entry', `no built-in agent named '${rt.entry}' (have: ${this.builtins.names().join(', ')})`);
    } else if (!existsSync(join(dir, rt.entry)) && !existsSync(rt.entry)) {
      throw new ManifestError(file, 'runtime.entry', `file '${rt.entry}' not found in ${dir}`);
    } else if (rt.type === 'process' && !rt.command) {
      // Run directly: it must be executable.
      const entry = existsSync(join(dir, rt.entry)) ? join(dir, rt.entry) : rt.entry;
      try {
        accessSync(entry, constants.X_OK);
      } catch {
        throw new ManifestError(file, 'runtime.entry', `'${rt.entry}' is not executable: run 'chmod +x ${entry}', or set runtime.command (like "python3")`);
      }
    }
    const record = agentRecord(manifest, dir);
    // The digest is the manifest's, not the directory's: the same package registered from another
    // directory is unchanged, and its steps run from this one now (said below).
    const before = (await this.store.listAgents(manifest.name)).find((a) => a.version === manifest.version)?.path;
    const result = await this.store.putAgent(record, options.force ?? false);
    const warnings = sandboxWarnings(manifest, this.config.sandbox);
    if (result === 'unchanged' && before !== undefined && before !== dir) warnings.push(`${record.id} was registered from ${before}: its steps now run the package in ${dir}`);
    // Registered in any order: the executor may be added after its agents (the step fails then, naming it).
    const executor = manifest.http?.executor;
    if (executor !== undefined && !(await this.store.getExecutor(executor))) {
      warnings.push(`executor '${executor}' is not registered yet: its steps fail until 'swarm executors add ${executor} <base_url>'`);
    }
    return warnings.length ? { record, result, warnings } : { record, result };
  }

  /** Register every package (a directory with agent.yaml) directly under `dir`. */
  async registerAgents(dir = this.config.agentsDir, options: { force?: boolean } = {}): Promise<Array<RegisterResult<AgentRecord> | { path: string; error: Error }>> {
    return this.registerAll(dir, 'agent.yaml', (p) => this.registerAgent(p, options));
  }

  async listAgents(name?: string): Promise<AgentRecord[]> {
    return this.store.listAgents(name);
  }

  /** Find an agent by `name`, `name@version` or `name@range` (newest match). */
  async getAgent(ref: string): Promise<AgentRecord> {
    const { name, range } = parseRef(ref);
    const all = await this.store.listAgents(name);
    const rec = pickRecord(all, range);
    if (!rec) throw new NotFoundError('agent', ref, all.length ? `registered versions: ${all.map((a) => a.version).join(', ')}` : await this.notRegisteredHint('agent', name));
    return rec;
  }

  /**
   * Remove an agent version from the registry. Refused while a registered workflow has no other
   * version to use (`force` deletes anyway); runs already created keep their own copy.
   */
  async deleteAgent(ref: string, options: { force?: boolean } = {}): Promise<AgentRecord> {
    const { range } = parseRef(ref);
    if (range === 'latest' && !ref.includes('@')) throw new UserError('VERSION_REQUIRED', `give the version to delete, like ${ref}@1.0.0`);
    const rec = await this.getAgent(ref);
    if (!options.force) {
      const all = await this.store.listAgents(rec.name);
      const others = all.filter((a) => a.version !== rec.version);
      const users: string[] = [];
      for (const wf of await this.store.listWorkflows()) {
        for (const s of wf.manifest.steps) {
          if (s.kind || s.workflow !== undefined) continue;
          const r = parseRef(s.agent);
          if (r.name === rec.name && pickRecord(all, r.range)?.version === rec.version && !pickRecord(others, r.range)) users.push(`${wf.id} (step '${s.id}')`);
        }
      }
      if (users.length) {
        throw new UserError('AGENT_IN_USE', `${rec.id} is used by ${users.join(', ')}, which would then have no agent to run; use --force to delete it anyway`, { agent: rec.id });
      }
    }
    await this.store.deleteAgent(rec.name, rec.version);
    return rec;
  }

  // ---------- workflows ----------

  /** Register the workflow at `path`; checks every agent reference against the registry first. */
  async registerWorkflow(path: string, options: { force?: boolean } = {}): Promise<RegisterResult<WorkflowRecord>> {
    const { file, dir } = manifestPath(path, 'workflow.yaml');
    const { manifest, lineOf } = parseWorkflowSource(this.readManifest(file), file);
    const versionsOf = await agentsFor(manifest, (n) => this.store.listAgents(n));
    // Every registered name, for "did you mean", only when a step names an agent that does not exist.
    const unknown = manifest.steps.some((st) => !st.kind && st.workflow === undefined && versionsOf(parseRef(st.agent).name).length === 0);
    const knownAgents = unknown ? [...new Set((await this.store.listAgents()).map((a) => a.name))] : [];
    checkAgainstRegistry(
      manifest,
      file,
      (name, range) => {
        const all = versionsOf(name);
        const rec = pickRecord(all, range);
        return { versions: all.map((a) => a.version), ...(rec ? { manifest: rec.manifest } : {}) };
      },
      lineOf,
      knownAgents,
    );
    if (manifest.steps.some((st) => st.workflow !== undefined)) {
      // Sub-workflows: registered, inputs that fit, and no chain of them leading back here.
      const workflows = await this.store.listWorkflows();
      const byName = new Map<string, WorkflowRecord[]>();
      for (const w of workflows) byName.set(w.name, [...(byName.get(w.name) ?? []), w]);
      checkSubWorkflows(manifest, file, (n) => byName.get(n) ?? [], lineOf, [...byName.keys()]);
    }
    for (const [i, st] of manifest.steps.entries()) {
      if (!st.consensus) continue;
      // A consensus task's proposer and judge agents: registered, as a step's agent must be.
      const { agentProblems, contractField } = await import('./consensus/driver/contract.js');
      const [first] = await agentProblems(st.consensus.task, (n) => this.store.listAgents(n));
      if (first) throw new ManifestError(file, contractField(first.path, `steps[${i}].task`), first.message, lineOf(['steps', i, 'task', ...first.path]));
    }
    if (manifest.trigger.type === 'schedule' && manifest.inputs) {
      // A scheduled run's input is its tick: a workflow that requires more could never be fired.
      const sample = { scheduled_at: new Date(0).toISOString(), fired_at: new Date(0).toISOString() };
      const problems = validateAgainst(manifest.inputs, sample);
      if (problems.length) {
        throw new ManifestError(file, 'trigger', `a scheduled run's input is {scheduled_at, fired_at}, which the workflow's inputs refuse (${problems.join('; ')}): make those inputs optional or give them defaults`, lineOf(['trigger']));
      }
    }
    const record = workflowRecord(manifest, dir);
    // The workflow's trigger row (webhook path, schedule, event) is written in the same transaction.
    const result = await this.store.putWorkflow(record, options.force ?? false);
    this.wakeSchedulers();
    return { record, result };
  }

  async registerWorkflows(dir = this.config.workflowsDir, options: { force?: boolean } = {}): Promise<Array<RegisterResult<WorkflowRecord> | { path: string; error: Error }>> {
    return this.registerAll(dir, 'workflow.yaml', (p) => this.registerWorkflow(p, options));
  }

  private async registerAll<T>(dir: string, fileName: string, one: (p: string) => Promise<RegisterResult<T>>): Promise<Array<RegisterResult<T> | { path: string; error: Error }>> {
    const root = resolve(dir);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new NotFoundError('file', root, 'not a directory');
    const dirs = readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !d.name.startsWith('_') && existsSync(join(root, d.name, fileName)))
      .map((d) => join(root, d.name))
      .sort();
    const out = new Map<string, RegisterResult<T> | { path: string; error: Error }>();
    // Passes until a pass registers nothing more: a workflow whose sub-workflow sorts after it goes in
    // on the next pass. A file with an error of its own fails the same way each pass (nothing is written).
    let todo = dirs;
    while (todo.length) {
      const failed: string[] = [];
      for (const p of todo) {
        try {
          out.set(p, await one(p));
        } catch (e) {
          out.set(p, { path: p, error: e as Error });
          failed.push(p);
        }
      }
      todo = failed.length < todo.length ? failed : [];
    }
    return dirs.map((p) => out.get(p) as RegisterResult<T> | { path: string; error: Error });
  }

  async listWorkflows(name?: string): Promise<WorkflowRecord[]> {
    return this.store.listWorkflows(name);
  }

  /** Find a workflow by `name` (newest version) or `name@version|range`. */
  async getWorkflow(ref: string): Promise<WorkflowRecord> {
    const { name, range } = parseRef(ref);
    const all = await this.store.listWorkflows(name);
    const rec = pickRecord(all, range);
    if (!rec) {
      throw new NotFoundError('workflow', ref, all.length ? `registered versions: ${all.map((w) => w.version).join(', ')}` : await this.notRegisteredHint('workflow', name));
    }
    return rec;
  }

  /**
   * Has the workflow.yaml a registered workflow came from changed since? Runs use the registered
   * copy; this tells a user who edited the file and forgot to register it again.
   */
  sourceChanged(wf: WorkflowRecord): string | undefined {
    const file = join(wf.path, 'workflow.yaml');
    if (!existsSync(file)) return undefined;
    let digest: string;
    try {
      digest = workflowDigest(parseWorkflowSource(this.readManifest(file), file).manifest);
    } catch {
      return `${file} has changed since ${wf.id} was registered (and no longer validates)`;
    }
    // By content: a row registered before workflow digests were canonical compares by its manifest.
    if (sameWorkflowContent(wf, digest)) return undefined;
    return `${file} has changed since ${wf.id} was registered; this run uses the registered version (register it again, with a new version or --force, to use your changes)`;
  }

  /**
   * Enable or disable a workflow: every version of it. `ref` is its name, or `name@version` naming
   * one of its versions (a version it does not have is WORKFLOW_NOT_FOUND, and nothing changes).
   */
  async setWorkflowEnabled(ref: string, enabled: boolean): Promise<void> {
    // Not found (with the versions there are, or a hint) before anything changes.
    const { name } = await this.getWorkflow(ref);
    if ((await this.store.setWorkflowEnabled(name, enabled)) === 0) throw new NotFoundError('workflow', name);
    this.wakeSchedulers();
  }

  // ---------- schedules ----------

  /** Every schedule trigger, with its next tick, last fired tick, and whether it is paused or disabled. */
  async listSchedules(): Promise<ScheduleInfo[]> {
    return listSchedules(this.store, await this.store.now());
  }

  /** The schedule of one workflow (WORKFLOW_NOT_FOUND, or SCHEDULE_NOT_FOUND when its trigger is not a schedule). */
  async getSchedule(workflow: string): Promise<ScheduleInfo> {
    return scheduleInfo(await scheduleTrigger(this.store, workflow), await this.store.now());
  }

  /**
   * The next `count` ticks of a workflow's schedule (ISO times, UTC).
   *
   * @example
   *   const { ticks } = await swarm.previewSchedule('nightly-report', 3);
   */
  async previewSchedule(workflow: string, count = 5): Promise<{ schedule: ScheduleInfo; ticks: string[] }> {
    return previewSchedule(this.store, workflow, count, await this.store.now());
  }

  /** Stop a schedule from firing (every server's scheduler sees it); resume picks up by its catch-up policy. */
  async pauseSchedule(workflow: string): Promise<ScheduleInfo> {
    const info = await setSchedulePaused(this.store, workflow, true, await this.store.now());
    this.wakeSchedulers();
    return info;
  }

  async resumeSchedule(workflow: string): Promise<ScheduleInfo> {
    const info = await setSchedulePaused(this.store, workflow, false, await this.store.now());
    this.wakeSchedulers();
    return info;
  }

  /**
   * Fire one run of a scheduled workflow now, outside its ticks (paused or not; the overlap policy
   * does not apply). The run has trigger type `schedule` and the usual trigger data.
   */
  async triggerSchedule(workflow: string, options: Pick<StartRunOptions, 'idempotencyKey' | 'trace'> = {}): Promise<CreatedRun> {
    const t = await scheduleTrigger(this.store, workflow);
    const now = new Date(await this.store.now()).toISOString();
    // A caller's key lives apart from the ticks' keys (schedule:<id>:<tick time>): it cannot take a tick's run.
    const key = options.idempotencyKey ? { idempotencyKey: `schedule:${t.id}:manual:${options.idempotencyKey}` } : {};
    return this.createRun(t.workflow_name, { scheduled_at: now, fired_at: now }, { trigger_type: 'schedule', metadata: { schedule: 'fired by hand' }, ...key, ...(options.trace ? { trace: options.trace } : {}) });
  }

  /**
   * A scheduler for this Swarm (see src/triggers/scheduler.ts): start it to fire schedules while
   * this process holds the store's schedule lease, and prune custom events past
   * `retention.emitted_events` of swarm.yaml (see src/triggers/retention.ts). `swarm serve` runs one.
   *
   * @example
   *   const scheduler = swarm.scheduler({ holder: 'serve-1' });
   *   void scheduler.start();
   */
  scheduler(options: SchedulerOptions): Scheduler {
    const scheduler = new Scheduler(
      {
        store: this.store,
        createRun: (name, input, o) => this.createRun(name, input, o),
        cancel: (runId, reason) => this.cancel(runId, reason),
      },
      { log: this.log, retention: { emittedEventsMs: this.config.retention.emittedEventsMs }, metrics: this.hooks, ...options },
    );
    this.schedulers.add(scheduler);
    return scheduler;
  }

  // ---------- retention: finished runs deleted, checkpoints compacted (src/retention/) ----------

  /**
   * Delete finished runs past their age (per status) with everything that belongs to them, in
   * bounded batches, optionally archiving each first; then compact finished sessions' checkpoints.
   * A run that is not finished is never deleted.
   *
   * @example
   *   const report = await swarm.gc({ ages: { completed: 30 * 86_400_000 }, archive: 'runs.jsonl' });
   */
  gc(options: GcOptions): Promise<GcReport> {
    return collectGarbage(this.store, options);
  }

  /**
   * The `retention:` policy of swarm.yaml as a periodic task (`swarm serve` runs one), or undefined
   * when it sets no run age. One process at a time applies it (the store's `retention` lease).
   *
   * @example
   *   const policy = swarm.retentionPolicy({ holder: 'serve-1' });
   *   void policy?.start();
   */
  retentionPolicy(options: Pick<RetentionPolicyOptions, 'holder'> & Partial<RetentionPolicyOptions>): RetentionPolicy | undefined {
    const r = this.config.retention;
    if (Object.keys(r.runs).length === 0) return undefined;
    return new RetentionPolicy(this.store, { ages: r.runs, intervalMs: r.intervalMs, archive: r.archive, batch: r.batch, log: this.log, ...options });
  }

  private wakeSchedulers(): void {
    for (const s of this.schedulers) s.wake();
  }

  // ---------- API tokens (the HTTP API's authentication) ----------

  /**
   * Create an API token. The token is in the answer this once: only its hash is stored.
   *
   * @example
   *   const { token, info } = await swarm.createToken({ name: 'ci', scopes: ['read', 'runs:write'], expiresAt: Date.now() + 30 * 86_400_000 });
   */
  createToken(options: CreateTokenOptions): Promise<CreatedToken> {
    return this.tokens.create(options);
  }

  /** Every token (revoked and expired ones too): ids, names, scopes, dates; never a secret. */
  listTokens(): Promise<TokenInfo[]> {
    return this.tokens.list();
  }

  /** Revoke a token by id (TOKEN_NOT_FOUND when there is none); other processes stop accepting it within 5 s. */
  revokeToken(id: string): Promise<{ info: TokenInfo; already: boolean }> {
    return this.tokens.revoke(id);
  }

  /** Check a token a request showed (a stream token too): who it is and its scopes, or why not. */
  authenticateToken(token: string): Promise<AuthResult> {
    return this.tokens.authenticate(token);
  }

  /** Is the token (or stream token) that authenticated a request still neither revoked nor expired? Cached 5 s. */
  principalStillValid(principal: Principal): Promise<boolean> {
    return this.tokens.stillValid(principal);
  }

  /** Does some token exist that is neither revoked nor expired (so the HTTP API requires one)? Cached 5 s. */
  tokensRequired(): Promise<boolean> {
    return this.tokens.required();
  }

  /** A read-only token of at most 5 minutes for `?access_token=` on stream routes; `by` null while the API is open. */
  mintStreamToken(by: Principal | null, ttlMs?: number): StreamToken {
    return this.tokens.mintStream(by, ttlMs);
  }

  // ---------- secrets ----------

  /**
   * Store a secret, encrypted (AES-256-GCM envelope under the master key): global, or for one
   * workflow's runs only. `${secrets.NAME}` resolves a workflow's own secret first, then the global
   * one, then SWARM_SECRET_NAME.
   *
   * @example
   *   await swarm.setSecret('API_KEY', process.env.TOKEN ?? '', { workflow: 'deploy' });
   */
  async setSecret(name: string, value: string, options: SecretScopeOptions = {}): Promise<'created' | 'replaced'> {
    checkSecretName(name);
    const scope = secretScope(options);
    checkSecretValue(name, value);
    const now = await this.store.now();
    const sealed = sealSecret(this.keys.kek, name, scope, value);
    const result = await this.store.putSecret({ name, scope, ...sealed, created_at: now, updated_at: now });
    // This process redacts the value from now on, whether or not it runs a step that uses it.
    this.redactor.learn({ [name]: value });
    return result;
  }

  /** Stored secrets: names, scopes and dates, never values (all of them, or one workflow's). */
  async listSecrets(options: SecretScopeOptions = {}): Promise<SecretInfo[]> {
    const rows = await this.store.listSecrets(options.workflow === undefined ? undefined : secretScope(options));
    return rows.map((r) => ({ name: r.name, scope: r.scope === '' ? 'global' : 'workflow', workflow: r.scope === '' ? null : r.scope, key_id: r.kek_id, created_at: r.created_at, updated_at: r.updated_at }));
  }

  /** Delete a stored secret; false when there was none by that name in that scope. */
  async deleteSecret(name: string, options: SecretScopeOptions = {}): Promise<boolean> {
    checkSecretName(name);
    return this.store.deleteSecret(name, secretScope(options));
  }

  /**
   * Rotate the master key: every stored secret's data key is re-wrapped under the new key, every
   * run's event chain is re-computed under the new chain key (chains that do not verify under the
   * old key are left as they are, and listed), and the store's key check value becomes the new
   * key's, in one transaction. Afterwards this Swarm works with the new key; every other process
   * must be restarted with it (the old key is refused). Refused while any worker is running.
   */
  async rotateMasterKey(newKey: Buffer): Promise<RotateKeyReport> {
    if (newKey.length !== MASTER_KEY_BYTES) throw new UserError('MASTER_KEY_INVALID', `the new master key must be ${MASTER_KEY_BYTES} bytes, found ${newKey.length}`);
    if (newKey.equals(this.keys.master)) throw new UserError('MASTER_KEY_UNCHANGED', 'the new master key is the current one: give a different key');
    const since = (await this.store.now()) - Math.max(3000, this.config.leaseMs);
    const live = (await this.store.listWorkers(since)).filter((w) => !workerIsDead(w));
    if (live.length || this.workers.size) {
      const names = live.map((w) => `${w.id} (pid ${w.pid} on ${w.hostname})`).slice(0, 3).join(', ');
      throw new UserError('WORKERS_RUNNING', `cannot rotate the master key while workers run (${names || 'in this process'}): stop every swarm worker, serve and run process first, then rotate`, { workers: live.map((w) => w.id) });
    }
    const report = await this.store.rekey((await import('./secrets/rotate.js')).rekeyPlan(this.keys.master, newKey));
    // Signing keys are re-sealed after the store's re-key (a rewrap skips keys already under the new key).
    await this.signingKeys.rewrap(this.keys.kek, secretsKek(newKey));
    // The ledger holds the chain key by reference: it signs with the new key from here on.
    deriveKey(newKey, KeyPurpose.EVENT_CHAIN).copy(this.keys.chain);
    this.keys = { ...this.keys, master: Buffer.from(newKey), kek: secretsKek(newKey) };
    this.secretCache.invalidate();
    return report;
  }

  // ---------- runs ----------

  /**
   * Start a run of a workflow with trigger data; returns its id. The run row, its steps and
   * RUN_CREATED commit together. Input is validated against the workflow's `inputs` before anything
   * is written.
   */
  async startRun(ref: string, input: unknown = {}, options: StartRunOptions = {}): Promise<string> {
    return (await this.createRun(ref, input, options)).runId;
  }

  /**
   * `startRun`, telling whether the run is new: with `idempotencyKey`, a repeat returns the run the
   * key created first with `created: false`.
   *
   * @example
   *   const { runId, created } = await swarm.createRun('echo-chain', { message: 'hi' }, { idempotencyKey: 'order-42' });
   */
  async createRun(ref: string, input: unknown = {}, options: StartRunOptions = {}): Promise<CreatedRun> {
    return this.createRunAt(undefined, ref, input, options);
  }

  /**
   * `createRun`; `generation`: the registry generation the caller read after its request arrived
   * (a webhook delivery reads it for its trigger), so the run is planned as of then without a
   * second read. `guess` (SQLite, a webhook delivery): the registry generation the caller's trigger was cached at,
   * and the secrets generation it verified with. The run is created only if the workflow's plan is
   * cached at that same registry generation and the run's transaction still sees both; otherwise
   * nothing is written and a `StaleGuess` is thrown.
   */
  private async createRunAt(generation: string | undefined, ref: string, input: unknown, options: StartRunOptions, guess?: { registry: string; secrets?: string }): Promise<CreatedRun> {
    checkKeyNamespace(options.idempotencyKey, options.trigger_type ?? 'manual');
    const { name, range } = parseRef(ref);
    const inputBytes = byteLength(JSON.stringify(input) ?? '');
    if (inputBytes > this.config.limits.run_input_bytes) throw new LimitExceededError('run input', 'run_input_bytes', this.config.limits.run_input_bytes, inputBytes);
    // A secret's value typed into a run's input is stored as its marker, like a handler-started run's:
    // steps then see the marker, so they should reference ${secrets.NAME} instead. Redacted after
    // planning, which fills in the inputs' defaults (the redactor copies what it redacts).
    const traceParent = tracingEnabled() ? ((options.trace?.traceparent ? contextFromCarrier(options.trace) : undefined) ?? activeTraceContext()) : undefined;
    // Checked (and its size capped) before anything is written; redacted like the input.
    const sharedJson = options.sharedInputs === undefined ? undefined : sharedInputsJson(this.redactor.value(options.sharedInputs));
    const trigger = {
      trigger_type: options.trigger_type ?? 'manual',
      trigger_data: undefined as unknown,
      ...(options.idempotencyKey ? { idempotency_key: options.idempotencyKey } : {}),
      ...(options.metadata && Object.keys(options.metadata).length ? { metadata: this.redactor.value(options.metadata) } : {}),
      ...(sharedJson !== undefined ? { shared_inputs_json: sharedJson } : {}),
      // The caller's span (an HTTP request's traceparent, a library caller's), read here: the
      // transaction may run in another async context (group commit).
      ...(traceParent ? { trace_parent: traceParent } : {}),
    };
    // The run's rows, in the caller's transaction, with its input redacted after planning (which fills in its defaults).
    const insert = (tx: Parameters<Ledger['createRunOnce']>[0], entry: { wf: WorkflowRecord; plan: RunPlan }) => {
      trigger.trigger_data = this.redactor.value(input);
      return this.ledger.createRunOnce(tx, entry.wf, entry.plan, trigger);
    };
    let created: { id: string; created: boolean; details?: RunDetails };
    if (this.store.kind === 'postgres') {
      // On PostgreSQL the registry reads happen in the run's own transaction and travel with BEGIN
      // (the workflow's versions, and those of the agents it named last time): a start is two round
      // trips. The run is planned against exactly what is registered when it is created.
      const out = await this.store.transaction(
        async (tx): Promise<{ id: string; created: boolean } | { missing: WorkflowRecord[] }> => {
          const all = await tx.workflowVersions(name);
          const wf = pickRecord(all, range);
          if (!wf) return { missing: all };
          return insert(tx, { wf, plan: await this.planRun(wf, input, (n) => tx.agentVersions(n)) });
        },
        { workflows: [name], ...(this.agentNamesOf.has(name) ? { agents: this.agentNamesOf.get(name) } : {}) },
      );
      if ('missing' in out) {
        throw new NotFoundError('workflow', ref, out.missing.length ? `registered versions: ${out.missing.map((w) => w.version).join(', ')}` : await this.notRegisteredHint('workflow', name));
      }
      created = out;
    } else {
      // SQLite reads are in-process and cheap; its write transaction stays as short as it can be.
      // The workflow and its plan are read and built once per registry generation (one small read
      // tells whether any process registered, deleted, enabled or disabled anything since). With a
      // plan cached, that read is made in the run's own transaction, on the connection it holds
      // (no lock of its own), and the run is planned against what is registered when it is created;
      // a generation moved on meanwhile writes nothing, and the plan is read again as below.
      const known = generation === undefined ? this.registryCache.latest(ref) : undefined;
      if (guess && known?.generation !== guess.registry) throw new StaleGuess();
      const confirmed = known
        ? await this.store.transaction(async (tx) => {
            if (!tx.registryGeneration || (await tx.registryGeneration()) !== known.generation) return undefined;
            if (guess?.secrets !== undefined && (!tx.secretsGeneration || (await tx.secretsGeneration()) !== guess.secrets)) return undefined;
            this.checkRunInput(known.entry.wf, input);
            return insert(tx, known.entry);
          })
        : undefined;
      if (guess && !confirmed) throw new StaleGuess();
      if (confirmed) created = confirmed;
      else {
        const gen = generation ?? (await this.store.registryGeneration());
        let hit = this.registryCache.planned(gen, ref);
        if (hit) this.checkRunInput(hit.wf, input);
        else {
          const wf = await this.getWorkflow(ref);
          hit = this.registryCache.remember(gen, ref, { wf, plan: await this.planRun(wf, input, (n) => this.store.listAgents(n)) });
        }
        const entry = hit;
        created = await this.store.transaction((tx) => insert(tx, entry));
      }
    }
    if (created.created) this.pokeWorkers();
    return { runId: created.id, created: created.created, ...(created.details ? { details: created.details } : {}) };
  }

  /** Check a run's input against its workflow and plan it against the registered agents. */
  private async planRun(wf: WorkflowRecord, input: unknown, versionsOf: (name: string) => Promise<AgentRecord[]>): Promise<RunPlan> {
    this.checkRunInput(wf, input);
    this.agentNamesOf.set(wf.name, [...new Set(wf.manifest.steps.filter((st) => !st.kind && st.workflow === undefined).map((st) => parseRef(st.agent).name))]);
    return buildRunPlan(wf, await agentsFor(wf.manifest, versionsOf), { ...this.config.values });
  }

  /** Refuse a run of a disabled workflow, or with input its workflow's `inputs` reject. */
  private checkRunInput(wf: WorkflowRecord, input: unknown): void {
    if (!wf.enabled) throw new PolicyError('WORKFLOW_DISABLED', `workflow ${wf.name} is disabled; enable it with 'swarm workflow enable ${wf.name}'`, { workflow: wf.name });
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw new UserError('INPUT_INVALID', `run input must be a JSON object, like '{"message": "hi"}'`, { workflow: wf.name });
    }
    if (wf.manifest.inputs) {
      const problems = validateAgainst(wf.manifest.inputs, input);
      if (problems.length) {
        const fields = fieldProblems(wf.manifest.inputs, input);
        throw new UserError('INPUT_INVALID', `input for workflow ${wf.name}: ${problems.join('; ')}`, { workflow: wf.name, field: fields[0]?.field, errors: fields });
      }
    }
  }

  /** The agent names each workflow's steps used when it last started a run: read with the next start's BEGIN. */
  private readonly agentNamesOf = new Map<string, string[]>();

  /** Workflows, plans and webhook triggers read at the store's current registry generation. */
  private readonly registryCache = new RegistryCache();

  /** Tell this process's workers that new work exists, so they claim it now rather than at their next poll. */
  private pokeWorkers(): void {
    for (const w of this.workers) w.poke();
  }

  /** Why a name is unknown, and what to do: it exists on disk unregistered, a near name, or where we looked. */
  private async notRegisteredHint(kind: 'agent' | 'workflow', name: string): Promise<string> {
    const dir = kind === 'agent' ? this.config.agentsDir : this.config.workflowsDir;
    const file = join(dir, name, `${kind}.yaml`);
    if (existsSync(file)) return `${file} exists but is not registered: run 'swarm ${kind} register ${join(dir, name)}'`;
    const names = [...new Set((kind === 'agent' ? await this.store.listAgents() : await this.store.listWorkflows()).map((r) => r.name))];
    const near = closest(name, names);
    if (near) return `did you mean '${near}'?`;
    return `no ${kind} of that name in the store ${this.store.location}; 'swarm ${kind} list' shows what is registered`;
  }

  /**
   * Resolve a full run id, a short id (`shortRunId`: the last 12 characters), or any unique prefix or
   * suffix of an id (at least 4 characters). Ids start with their creation time, so runs made close
   * together share a prefix: the end of an id is the part that tells them apart. An ambiguous part
   * is refused with the runs it matches.
   */
  async resolveRunId(idOrPart: string): Promise<string> {
    if (await this.store.getRun(idOrPart)) return idOrPart;
    if (idOrPart.length >= 4) {
      const shown = 5;
      const found = new Set<string>();
      for (const how of ['suffix', 'prefix'] as const) for (const id of await this.store.findRunIds(idOrPart, shown + 1, how)) found.add(id);
      if (found.size === 1) return [...found][0] as string;
      if (found.size > 1) {
        const ids = [...found].sort();
        const list = await Promise.all(
          ids.slice(0, shown).map(async (id) => {
            const r = await this.store.getRun(id);
            return r ? `${id} (${r.workflow_name}, ${new Date(r.created_at).toISOString()})` : id;
          }),
        );
        throw new UserError(
          'RUN_ID_AMBIGUOUS',
          `'${idOrPart}' matches ${ids.length > shown ? `more than ${shown}` : ids.length} runs: ${list.join(', ')}${ids.length > shown ? ', …' : ''}; give more characters of the id (the last ${SHORT_RUN_ID_LENGTH} are unique in practice)`,
          { candidates: ids.slice(0, shown) },
        );
      }
    }
    // Run ids are lower-case hex: one copied in upper case (a spreadsheet, a log viewer) is the same id.
    const lower = idOrPart.toLowerCase();
    if (lower !== idOrPart && /^[0-9a-f-]+$/.test(lower)) return this.resolveRunId(lower);
    throw new NotFoundError('run', idOrPart, "run 'swarm runs list' to see runs");
  }

  async getRun(idOrPrefix: string): Promise<RunDetails> {
    const id = await this.resolveRunId(idOrPrefix);
    const run = (await this.store.getRun(id)) as RunRecord;
    const budget = await this.runBudget(run);
    return { run: await this.withConcurrency(run), steps: await this.store.getSteps(id), ...(budget ? { budget } : {}) };
  }

  /** Usage against the budgets of a run (its root run's, which a sub-workflow's run shares, and its own narrower ones). */
  private async runBudget(run: RunRecord): Promise<BudgetReport | undefined> {
    let root = run;
    // A fork has budgets of its own: the walk stops at it.
    for (let hops = 0; root.parent_run_id && !root.fork_step_id && hops < 64; hops++) root = (await this.store.getRun(root.parent_run_id)) ?? root;
    // A finished run's wall clock stopped when it finished.
    return budgetReport(run.id, root.id, await this.store.getBudgetScopes(root.id), root.completed_at ?? Date.now());
  }

  /** The run with its place under its workflow's concurrency key, when it has one. */
  private async withConcurrency(run: RunRecord): Promise<RunRecord> {
    const concurrency = (await this.store.runConcurrency([run.id])).get(run.id);
    if (concurrency) run.concurrency = concurrency;
    return run;
  }

  /** Runs newest first; a run of a workflow with a concurrency key carries its place under the key (`concurrency`). */
  async listRuns(filter: RunFilter = {}): Promise<RunRecord[]> {
    // A parent named as the CLI shows it (the end of its id) or by prefix; an unknown one is RUN_NOT_FOUND, not an empty list.
    if (filter.parent !== undefined) filter = { ...filter, parent: await this.resolveRunId(filter.parent) };
    const runs = await this.store.listRuns(filter);
    const keyed = await this.store.runConcurrency(runs.map((r) => r.id));
    for (const r of runs) {
      const c = keyed.get(r.id);
      if (c) r.concurrency = c;
    }
    return runs;
  }

  /**
   * Runs by their last change (creation, status, step progress), oldest first, after a cursor: what
   * follows the list of runs (`GET /api/v1/runs/stream`).
   *
   * @example
   *   const changed = await swarm.listRunChanges({ workflow: 'deploy', after: { updated_at: last.updated_at, id: last.id } });
   */
  async listRunChanges(filter: RunChangeFilter = {}): Promise<RunRecord[]> {
    return this.store.listRunChanges(filter);
  }

  /**
   * Resolve when the store may have changed (a commit in this process, or another process's), after
   * `timeoutMs` at the latest, or as soon as `signal` aborts: followers wait with it instead of polling.
   */
  async waitForChange(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    await this.waitForCommit(timeoutMs, signal);
  }

  async events(idOrPrefix: string, afterSeq = 0): Promise<RunEvent[]> {
    return this.store.getEvents(await this.resolveRunId(idOrPrefix), afterSeq);
  }

  async logs(idOrPrefix: string, stepId?: string): Promise<StepLog[]> {
    const id = await this.resolveRunId(idOrPrefix);
    if (stepId !== undefined) {
      const steps = await this.store.getSteps(id);
      if (!steps.some((s) => s.step_id === stepId)) throw new NotFoundError('step', stepId, `run ${id} has steps ${steps.map((s) => s.step_id).join(', ')}`);
    }
    return this.store.getLogs(id, stepId);
  }

  // ---------- triggers: webhooks and events ----------

  /**
   * Receive a webhook delivery at `path`: verify its signature with the trigger's secrets and start
   * the workflow's run with the JSON body as trigger data, once per delivery id (a redelivery
   * returns the first run with `created: false`). Refusals are UserErrors with stable codes (see
   * `WEBHOOK_STATUS` in src/triggers/webhook-delivery.ts).
   *
   * @example
   *   const { runId, created } = await swarm.deliverWebhook('orders', { headers, body: rawBytes });
   */
  async deliverWebhook(path: string, delivery: WebhookDelivery): Promise<DeliveredWebhook> {
    const { deliverWebhook } = await webhookDeliveryModule();
    const runByKey = (key: string): Promise<string | undefined> => this.store.transaction(async (tx) => (await tx.runByIdempotencyKey(key))?.id);
    const now = (): Date => new Date();
    // SQLite: the trigger, its workflow's plan and the secrets as this process last read them, without
    // reading the registry's and the secrets' generations first (each a turn of the store's lock).
    // The run's own transaction confirms both generations and writes nothing if either moved on. This
    // attempt answers only with a run: a stale guess, and any refusal or failure (which may come from
    // what was cached: a rotated secret, a moved path, a secret not decryptable then), has the
    // delivery received again as below, from what the store holds now.
    const guess = this.store.kind === 'sqlite' ? this.registryCache.latestWebhook(path) : undefined;
    if (guess) {
      let secrets: string | undefined;
      let created = false;
      try {
        return await deliverWebhook(
          {
            findTrigger: () => Promise.resolve(guess.trigger),
            secret: async (name, workflow) => {
              secrets ??= this.secretCache.prepareAsOf(workflow);
              if (secrets === undefined) throw new StaleGuess();
              return this.secretCache.get(name, workflow);
            },
            createRun: async (ref, input, options) => {
              const out = await this.createRunAt(undefined, ref, input, options, { registry: guess.generation, ...(secrets !== undefined ? { secrets } : {}) });
              created = true;
              return out;
            },
            runByKey,
            now,
          },
          path,
          delivery,
        );
      } catch (e) {
        // Once its run committed, a delivery is never received twice.
        if (created) throw e;
      }
    }
    // Read once, with the trigger: the run is planned as of the delivery's arrival.
    let generation: string | undefined;
    return deliverWebhook(
      {
        findTrigger: async (p) => {
          generation = await this.store.registryGeneration();
          return this.registryCache.webhook(generation, p, () => this.store.getWebhookTrigger(p));
        },
        secret: async (name, workflow) => {
          await this.secretCache.prepare(workflow);
          return this.secretCache.get(name, workflow);
        },
        createRun: (ref, input, options) => this.createRunAt(generation, ref, input, options),
        runByKey,
        now,
      },
      path,
      delivery,
    );
  }

  /** The webhook triggers of registered workflows, by path (never their secrets: the rows hold references only). */
  async listWebhooks(): Promise<TriggerRecord[]> {
    return (await this.store.listTriggers({ type: 'webhook' })).sort((a, b) => ((a.webhook_path ?? '') < (b.webhook_path ?? '') ? -1 : 1));
  }

  /** The event triggers of registered workflows, by workflow name. */
  async listEventTriggers(): Promise<TriggerRecord[]> {
    return this.store.listTriggers({ type: 'event' });
  }

  /**
   * Raise a custom event: it is recorded, and the runs of the event triggers it matches (`trigger:
   * {type: event, on: <name>}`) are created, in one transaction. With an `id` recorded before, nothing
   * is started and the answer lists the runs the first one started.
   *
   * @example
   *   const { id, runs } = await swarm.emitEvent('order.paid', { order: 42, total: 130 }, { id: 'evt-42' });
   */
  async emitEvent(name: string, data: unknown = {}, options: EmitEventOptions = {}): Promise<EmittedEvent> {
    checkCustomEventName(name);
    const id = options.id === undefined ? newRunId() : checkEventId(options.id);
    const source = options.source === undefined ? null : checkEventId(options.source, 'source');
    const bytes = byteLength(JSON.stringify(data ?? null));
    if (bytes > this.config.limits.run_input_bytes) throw new LimitExceededError(`the data of event ${name}`, 'run_input_bytes', this.config.limits.run_input_bytes, bytes);
    // The event is stored and becomes trigger data: a secret's value in it is stored as its marker.
    const value = this.redactor.value(data ?? null);
    const out = await this.store.transaction((tx) => this.ledger.emitEvent(tx, { id, name, source, data: value }));
    for (const s of out.skipped) this.log(`event ${name} (${id}): the trigger of workflow ${s.trigger} did not start a run: ${s.error}`);
    if (out.created) {
      this.notifyCommit();
      // The event may have started runs, or made wait steps ready.
      this.pokeWorkers();
    }
    return { id, name, ...out };
  }

  /** Cancel a run; workers running its steps notice within a fraction of a second and stop them. */
  async cancel(idOrPrefix: string, reason = 'cancelled by user'): Promise<string[]> {
    const id = await this.resolveRunId(idOrPrefix);
    const cancelled = await this.store.transaction((tx) => this.ledger.cancelRun(tx, id, reason));
    this.notifyCommit();
    return cancelled;
  }

  /**
   * Send a signal to a run: a `kind: wait` step of the run with `signal: <name>` takes it (its outputs
   * are `data`); signals are kept, oldest first, until a wait takes them. RUN_FINISHED for a run that
   * is over; SIGNAL_NAME_INVALID for a bad name.
   *
   * @example
   *   const { seq, delivered_to } = await swarm.signalRun(runId, 'approved', { by: 'ops' });
   */
  async signalRun(idOrPrefix: string, name: string, data: unknown = {}): Promise<SignalSent> {
    if (typeof name !== 'string' || !SIGNAL_NAME.test(name)) {
      throw new UserError('SIGNAL_NAME_INVALID', `signal name ${JSON.stringify(name)} is not valid: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit`, { field: 'name' });
    }
    const bytes = byteLength(JSON.stringify(data ?? null));
    if (bytes > this.config.limits.run_input_bytes) throw new LimitExceededError(`the data of signal ${name}`, 'run_input_bytes', this.config.limits.run_input_bytes, bytes);
    const id = await this.resolveRunId(idOrPrefix);
    // Signal data becomes a step's outputs: a secret's value in it is stored as its marker.
    const value = this.redactor.value(data ?? null);
    const out = await this.store.transaction((tx) => this.ledger.signal(tx, id, name, value));
    this.notifyCommit();
    if (out.delivered_to) this.pokeWorkers();
    return { run_id: id, name, ...out };
  }

  /** The signals sent to a run (its full id, and the signals oldest first; `consumed_by` names the wait step that took each one). */
  async runSignals(idOrPrefix: string): Promise<{ run_id: string; signals: RunSignalRecord[] }> {
    const runId = await this.resolveRunId(idOrPrefix);
    return { run_id: runId, signals: await this.store.listRunSignals(runId) };
  }

  // ---------- human in the loop ----------

  /**
   * Approve what a waiting run (or one of its steps) waits for: the steps become ready and run again;
   * an approved tool call runs (once), an approval step completes. Returns the steps resumed.
   */
  async approve(idOrPrefix: string, stepId?: string, options: { reason?: string; by?: string } = {}): Promise<string[]> {
    return this.decide(idOrPrefix, stepId, 'approved', options.reason ?? null, options.by ?? null);
  }

  /** Reject what a waiting run (or step) waits for: its steps run again and fail with APPROVAL_REJECTED and the reason. */
  async reject(idOrPrefix: string, stepId: string | undefined, reason: string, by?: string): Promise<string[]> {
    return this.decide(idOrPrefix, stepId, 'rejected', reason, by ?? null);
  }

  private async decide(idOrPrefix: string, stepId: string | undefined, decision: 'approved' | 'rejected', reason: string | null, by: string | null): Promise<string[]> {
    const id = await this.resolveRunId(idOrPrefix);
    const resumed = await this.store.transaction((tx) => this.ledger.decide(tx, id, stepId, decision, reason, by));
    await observeApprovalWaits(this.hooks, this.store, id, resumed).catch(() => undefined);
    this.notifyCommit();
    this.pokeWorkers();
    return resumed;
  }

  /** Token usage and cost of a run's llm steps (the sum over its agent sessions). */
  async runUsage(idOrPrefix: string): Promise<{ input_tokens: number; output_tokens: number; cost_usd: number; sessions: number }> {
    const id = await this.resolveRunId(idOrPrefix);
    const sessions = await this.store.listAgentSessions({ run_id: id, limit: 100_000 });
    const sum = { input_tokens: 0, output_tokens: 0, cost_usd: 0, sessions: sessions.length };
    for (const s of sessions) {
      sum.input_tokens += s.input_tokens;
      sum.output_tokens += s.output_tokens;
      sum.cost_usd += s.cost_usd;
    }
    return sum;
  }

  /** Approval requests (pending ones by default). */
  async listApprovals(filter: { runId?: string; status?: ApprovalRecord['status'] | 'all' } = {}): Promise<ApprovalRecord[]> {
    const runId = filter.runId ? await this.resolveRunId(filter.runId) : undefined;
    const status = filter.status === 'all' ? undefined : (filter.status ?? 'pending');
    return this.store.listApprovals({ ...(runId ? { run_id: runId } : {}), ...(status ? { status } : {}) });
  }

  // ---------- LLM agent sessions ----------

  /**
   * Chat with a registered llm agent outside a workflow. The conversation is a session in the store:
   * pass `sessionId` to continue one. Close the result when done (it stops MCP servers).
   */
  async openChat(ref: string, options: { sessionId?: string; contextVariables?: Record<string, unknown>; onGuardEvent?: (e: GuardEvent) => void } = {}): Promise<{ chat: ChatSession; close: () => Promise<void> }> {
    const rec = await this.getAgent(ref);
    if (rec.manifest.runtime.type !== 'llm') throw new UserError('AGENT_NOT_LLM', `agent '${rec.name}@${rec.version}' is a ${rec.manifest.runtime.type} agent; chat needs an llm agent`, { agent: rec.name });
    const toolSets: ToolSet[] = [];
    const close = async (): Promise<void> => {
      await Promise.all(toolSets.map((t) => t.close()));
    };
    try {
      const { agents, manifests } = await buildAgents(this.llmOptions, { path: rec.path, manifest: rec.manifest }, { inputs: {} }, toolSets);
      let sessionId = options.sessionId ?? `chat-${newRunId()}`;
      if (options.sessionId) {
        // `<run prefix>/<step>` as `sessions show` takes it: found, it is refused below as a step's.
        const { sid, s: existing } = await this.findSession(options.sessionId).catch(() => ({ sid: sessionId, s: undefined }));
        sessionId = sid;
        if (!existing) throw new NotFoundError('session', sessionId, "start a new chat without --session, or see 'swarm sessions list'");
        if (existing.run_id) {
          throw new UserError('SESSION_NOT_A_CHAT', `session ${sessionId} belongs to step '${existing.step_id ?? ''}' of run ${existing.run_id}; a workflow step's conversation is decided with 'swarm approve' or 'swarm reject', not continued in a chat`, { session: sessionId });
        }
        if (existing.agent !== rec.name) throw new UserError('SESSION_AGENT_MISMATCH', `session ${sessionId} is a chat with '${existing.agent}', not '${rec.name}'`, { session: sessionId });
      }
      const chat = new (await import('./agents/chat.js')).ChatSession({
        // A chat's transcript is stored like a step's: through the redacting store.
        store: this.llmOptions.store,
        sessionId,
        start: agents.get(rec.name) as NonNullable<ReturnType<typeof agents.get>>,
        agents,
        ...(options.contextVariables ? { contextVariables: options.contextVariables } : {}),
        maxTurns: rec.manifest.llm?.max_turns ?? 10,
        costOf: (model, usage) => costOf(model.id, usage, this.config.providers),
        maxMessageBytes: this.config.limits.llm_message_bytes,
        ...(this.llmOptions.hooks ? { hooks: this.llmOptions.hooks } : {}),
        // The guardrails a step of this agent would have: the chat session stands for the run (its
        // budget is the deployment's run budget, the agents' their own; memory keyed by the session).
        // A chat has no run log: what a guardrail records goes to the caller (swarm chat prints it).
        guard: async () =>
          (await guardrailsModule()).createStepGuard(
            {
              ...this.guardDeps,
              recordEvents: (_runId, _stepId, events) => {
                for (const e of events) options.onGuardEvent?.({ type: e.type, data: this.redactor.value(e.data) });
                return Promise.resolve();
              },
            },
            { runId: sessionId, stepId: 'chat', attempt: 1, workflow: '', sessionId, agents: manifests, inputs: {} },
          ),
      });
      return { chat, close };
    } catch (e) {
      await close();
      throw e;
    }
  }

  /** Agent sessions, newest first: by run, trace id, status or time range. */
  async listSessions(filter: SessionFilter = {}): Promise<AgentSessionRecord[]> {
    const runId = filter.run_id ? await this.resolveRunId(filter.run_id) : undefined;
    return this.store.listAgentSessions({ ...filter, ...(runId ? { run_id: runId } : {}) });
  }

  /** A session with its transcript and tool calls. `id` is a session id, or `<run id prefix>/<step id>`. */
  /** A session by its id, or by `<run id or prefix>/<step>` for a workflow step's. */
  private async findSession(id: string): Promise<{ sid: string; s: (AgentSessionRecord & { envelope: string | null }) | undefined }> {
    const s = await this.store.getAgentSession(id);
    if (s || !id.includes('/')) return { sid: id, s };
    const slash = id.lastIndexOf('/');
    const sid = `${await this.resolveRunId(id.slice(0, slash))}/${id.slice(slash + 1)}`;
    return { sid, s: await this.store.getAgentSession(sid) };
  }

  async getSession(id: string): Promise<{ session: AgentSessionRecord & { envelope: string | null }; messages: AgentMessageRecord[]; toolCalls: ToolCallRecord[] }> {
    const { sid, s } = await this.findSession(id);
    if (!s) {
      const known = (await this.store.listAgentSessions({ limit: 20 })).map((x) => x.id);
      throw new NotFoundError('session', id, known.length ? `recent sessions: ${known.slice(0, 5).join(', ')}` : 'there are no sessions yet');
    }
    return { session: s, messages: await this.store.getAgentMessages(sid), toolCalls: await this.store.listToolCalls(sid) };
  }

  /**
   * Fork a finished run at a step (src/branching/fork.ts): a new run of the same plan that copies the
   * checkpoints of the steps `at` does not depend on and runs `at` and what follows it again.
   *
   * @example
   *   const f = await swarm.fork(runId, { at: 'summarize', turn: 2 });
   *   await swarm.wait(f.run_id);
   */
  async fork(idOrPrefix: string, options: ForkOptions): Promise<ForkResult> {
    const id = await this.resolveRunId(idOrPrefix);
    const out = await (await import('./branching/fork.js')).forkRun(
      {
        store: this.store,
        ledger: this.ledger,
        chainKey: this.keys.chain,
        maxEventBytes: this.config.limits.event_payload_bytes,
        redactor: this.redactor,
        // The export's check and the parent's bundle state, recorded in the fork (src/bundles/export.ts).
        parentState: async (run) => (await import('./bundles/export.js')).forkParentState(this, run),
      },
      id,
      options,
    );
    this.notifyCommit();
    this.pokeWorkers();
    return out;
  }

  /**
   * The fork tree a run belongs to (its root, then every fork below it, by depth), each node with
   * its parent and fork point.
   *
   * @example
   *   const nodes = await swarm.lineage(runId); // nodes[0].depth === 0: the root
   */
  async lineage(idOrPrefix: string): Promise<LineageNode[]> {
    return this.store.runLineage(await this.resolveRunId(idOrPrefix));
  }

  /** Retry a failed or cancelled run: only what failed or did not run runs again. */
  async retry(idOrPrefix: string): Promise<string[]> {
    const id = await this.resolveRunId(idOrPrefix);
    const reset = await this.store.transaction((tx) => this.ledger.retryRun(tx, id));
    this.notifyCommit();
    this.pokeWorkers();
    return reset;
  }

  /**
   * Check a run's event chain under the chain key (HMAC-SHA256) and that every completed step's
   * checkpoint matches its event. A chain in the old unkeyed form fails unless `allowLegacy` and the
   * run predates the store's first use with a key.
   */
  async verify(idOrPrefix: string, options: VerifyOptions = {}): Promise<VerifyReport> {
    const id = await this.resolveRunId(idOrPrefix);
    const events = await this.store.getEvents(id);
    // The later of the first event's time and the time in the run id (a UUIDv7 starts with its
    // creation time in ms): editing the event's timestamp alone does not make a run legacy.
    const idTime = Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    const createdAt = Math.max(events[0]?.at ?? Number.POSITIVE_INFINITY, Number.isFinite(idTime) ? idTime : 0);
    const legacyAllowed = options.allowLegacy === true && createdAt < this.keys.keyedSince;
    const chain = checkChain(this.keys.chain, events, { allowLegacy: legacyAllowed });
    const problems: VerifyReport['problems'] = chain.problems;
    if (options.allowLegacy && !legacyAllowed && problems.some((p) => p.problem.includes('unkeyed'))) {
      problems.push({ seq: null, problem: `the run was created after the store was first used with a key (${new Date(this.keys.keyedSince).toISOString()}): its chain cannot be legacy` });
    }
    const run = await this.store.getRun(id);
    if (run && events.length && run.event_seq !== events.length) problems.push({ seq: null, problem: `run records ${run.event_seq} events, log holds ${events.length}` });
    if (run && events.length && run.event_hash !== events[events.length - 1]?.hash) problems.push({ seq: null, problem: 'run head hash does not match the last event' });
    const steps = new Map((await this.store.getSteps(id)).map((s) => [s.step_id, s]));
    const lastCompleted = new Map<string, RunEvent>();
    // A fork's copied step is completed by its STEP_COPIED event (output_sha256).
    for (const e of events) if ((e.type === 'STEP_COMPLETED' || e.type === 'STEP_COPIED') && e.step_id) lastCompleted.set(e.step_id, e);
    for (const [stepId, e] of lastCompleted) {
      const s = steps.get(stepId);
      if (!s || s.status !== 'completed') continue;
      const digest = digestJson(JSON.stringify(s.outputs ?? {}));
      if (digest !== (e.type === 'STEP_COPIED' ? e.data.output_sha256 : e.data.outputs_sha256)) problems.push({ seq: e.seq, problem: `outputs of step '${stepId}' do not match the digest in its ${e.type} event` });
      // Runs from before inputs were bound carry no digest: nothing to check.
      const inputs = (e.data as { inputs_sha256?: unknown }).inputs_sha256;
      if (typeof inputs === 'string' && digestJson(JSON.stringify(s.inputs ?? null)) !== inputs) problems.push({ seq: e.seq, problem: `inputs of step '${stepId}' do not match the digest in its ${e.type} event` });
    }
    const created = events[0]?.type === 'RUN_CREATED' ? events[0] : undefined;
    const input = (created?.data as { input_sha256?: unknown } | undefined)?.input_sha256;
    if (run && created && typeof input === 'string' && digestJson(JSON.stringify(run.trigger_data ?? {})) !== input) problems.push({ seq: created.seq, problem: "the run's input does not match the digest in its RUN_CREATED event" });
    return { ok: problems.length === 0, events: events.length, problems, ...(chain.legacyEvents ? { legacy_events: chain.legacyEvents } : {}) };
  }

  /** Throwing form of verify, for the CLI and scripts. */
  async verifyOrThrow(idOrPrefix: string, options: VerifyOptions = {}): Promise<VerifyReport> {
    const report = await this.verify(idOrPrefix, options);
    if (!report.ok) {
      const first = report.problems[0];
      throw new VerificationError(`run ${idOrPrefix}: event chain does not verify (${report.problems.length} problem(s); first at seq ${first?.seq ?? '-'}: ${first?.problem})`, { runId: idOrPrefix });
    }
    return report;
  }

  /**
   * Import a run from a bundle made elsewhere (src/branching/import.ts): verified first (exit 3,
   * nothing written, when it does not), then created under its own id so it can be forked here. The
   * same bundle again is a no-op (`created: false`). Decrypt an encrypted bundle first
   * (src/bundles/encrypt.ts `openBundleBytes`).
   *
   * @example
   *   const r = await swarm.importBundle(readFileSync('run.tar'), { publicKey: 'q1w2…=' });
   *   await swarm.fork(r.run_id, { at: 'summarize' });
   */
  async importBundle(bytes: Buffer, options: ImportOptions = {}): Promise<ImportResult> {
    // Loaded on use: only the import command needs the bundle reader and verifier.
    const { importBundle } = await import('./branching/import.js');
    const out = await importBundle(
      { store: this.store, chainKey: this.keys.chain, maxEventBytes: this.config.limits.event_payload_bytes, config: { ...this.config.values }, defaultRunConcurrency: this.config.runConcurrency, redactor: this.redactor },
      bytes,
      options,
    );
    if (out.created) this.notifyCommit();
    return out;
  }

  /**
   * Follow a run's events as they are committed, from `afterSeq`, until the run is finished (or the
   * signal aborts). Works across processes: another process's worker may be running the run.
   */
  async *watch(idOrPrefix: string, options: { afterSeq?: number; signal?: AbortSignal; pollMs?: number; stopWhenWaiting?: boolean } = {}): AsyncGenerator<RunEvent> {
    const id = await this.resolveRunId(idOrPrefix);
    let after = options.afterSeq ?? 0;
    for (;;) {
      const batch = await this.store.getEvents(id, after);
      for (const e of batch) {
        after = e.seq;
        yield e;
      }
      const run = await this.store.getRun(id);
      if (!run || (TERMINAL_RUN.has(run.status) && run.event_seq <= after)) return;
      if (options.stopWhenWaiting && run.event_seq <= after && (await this.isPaused(run))) return;
      if (options.signal?.aborted) return;
      await this.waitForCommit(options.pollMs ?? 50, options.signal);
    }
  }

  /** Is the run waiting for a human with nothing else to do (no step running or ready)? */
  async isPaused(run: RunRecord): Promise<boolean> {
    // A sleeping step wakes by itself: its run is not paused.
    return run.status === 'waiting' && pausedOnOutside(run, await this.store.getSteps(run.id));
  }

  /** Wait until a run is finished (whoever runs it) and return its final state. */
  async wait(idOrPrefix: string, options: { signal?: AbortSignal } = {}): Promise<RunDetails> {
    const id = await this.resolveRunId(idOrPrefix);
    for (;;) {
      const run = await this.store.getRun(id);
      if (run && TERMINAL_RUN.has(run.status)) return { run: await this.withConcurrency(run), steps: await this.store.getSteps(id) };
      if (options.signal?.aborted) throw new UserError('WAIT_ABORTED', 'stopped waiting');
      await this.waitForCommit(100, options.signal);
    }
  }

  private waitForCommit(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    let done = (): void => undefined;
    const wake = new Promise<void>((resolve) => (done = resolve));
    this.commitListeners.add(done);
    signal?.addEventListener('abort', done, { once: true });
    return this.store.waitForChange(timeoutMs, wake).finally(() => {
      this.commitListeners.delete(done);
      signal?.removeEventListener('abort', done);
      done();
    });
  }

  private notifyCommit(): void {
    for (const l of this.commitListeners) l();
  }

  // ---------- consensus tasks (src/consensus/) ----------

  /**
   * Submit a standalone consensus task: the contract is checked (TASK_CONTRACT_INVALID), then a run
   * of the built-in workflow `swarm-consensus` starts; a worker runs the task. The same `task_id`
   * with the same contract again returns the first run; another contract under it is refused
   * (TASK_ID_REUSED).
   *
   * @example
   *   const { task_id, run_id } = await swarm.submitTask({ task_type: 'answer', inputs: { q: '2+2' }, proposers: [{ agent: 'solver', samples: 3 }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }] } });
   */
  submitTask(contract: unknown, options: Pick<StartRunOptions, 'trace'> = {}): Promise<SubmittedTask> {
    return this.consensusTasks().then((t) => t.submitTask(contract, options));
  }

  /** A task with its candidates, verifier results, votes, decision and cost; undefined until its run created it. */
  getTask(taskId: string): Promise<TaskView | undefined> {
    return this.consensusTasks().then((t) => t.getTask(taskId));
  }

  /** Consensus tasks, newest first (of a run, in a status). */
  listTasks(query: ConsensusTaskQuery = {}): Promise<ConsensusTaskRow[]> {
    return this.consensusTasks().then((t) => t.listTasks(query));
  }

  /** A task's decision, or where it stands (`pending` before its run created it). TASK_NOT_FOUND for an unknown id. */
  taskDecision(taskId: string): Promise<TaskDecisionView> {
    return this.consensusTasks().then((t) => t.taskDecision(taskId));
  }

  /** The TASK_NOT_FOUND error of a task id that has no task: where a submitted one is, or why its run never made it. */
  taskNotFound(taskId: string): Promise<UserError> {
    return this.consensusTasks().then((t) => t.taskNotFound(taskId));
  }

  /** A task's cost report by bucket (explore, verify, finalize) against its budgets. */
  taskCost(taskId: string): Promise<TaskCost> {
    return this.consensusTasks().then((t) => t.taskCost(taskId));
  }

  /**
   * An external voter's commit or reveal (signed with its key). A refusal is recorded as
   * TASK_INPUT_REJECTED and thrown as a PolicyError whose code names the reason (REVEAL_MISMATCH, …).
   *
   * @example
   *   await swarm.submitVote({ kind: 'reveal', task_id, voter_id: 'ext-1', candidate_hash, vote: 'approve', salt, signature });
   */
  submitVote(vote: VoteInput): Promise<{ task_id: string; round: number; event_seq: number }> {
    return this.consensusTasks().then((t) => t.submitVote(vote));
  }

  // ---------- workers ----------

  /** Create a worker with this Swarm's configuration (override any option). Call `start()` on it. */
  worker(options: Partial<WorkerOptions> = {}): Worker {
    // A configured sandbox that cannot run stops the worker before it claims anything.
    this.processAgents();
    const w = new Worker(this.store, this.ledger, this.executorFor, (n, wf) => this.secretCache.get(n, wf), {
      prepareSecrets: (wf) => this.secretCache.prepare(wf),
      concurrency: this.config.workerConcurrency,
      leaseMs: this.config.leaseMs,
      commitWindowMs: this.config.commitWindowMs,
      pollMs: this.config.pollMs,
      workRoot: join(this.config.home, 'work'),
      limits: this.config.limits,
      faults: this.config.faults,
      log: this.log,
      onCommit: () => this.notifyCommit(),
      metrics: this.hooks,
      consensus: consensusRunner(this.consensusDeps),
      ...options,
    });
    this.workers.add(w);
    // A worker that stops with an error (a store fault) reports it to whoever awaits start().
    void w
      .start()
      .finally(() => this.workers.delete(w))
      .catch(() => undefined);
    return w;
  }

  /**
   * Is a general worker (not a one-off run) alive? It must have heartbeated within a lease period,
   * and, when it runs on this machine, its process must still exist (a killed worker is not alive,
   * however recent its last heartbeat).
   */
  async hasLiveWorker(): Promise<boolean> {
    const since = (await this.store.now()) - Math.max(3000, this.config.leaseMs);
    return (await this.store.listWorkers(since)).some((w) => w.scope === null && !workerIsDead(w));
  }

  /**
   * The workers that have not stopped (general ones and one-off `swarm run`s), oldest first, each
   * with the age of its last heartbeat on the store's clock (so a browser's clock does not matter)
   * and whether it is live: heartbeated within a lease period and, on this machine, its process
   * still there.
   *
   * @example
   *   for (const w of await swarm.listWorkers()) console.log(w.id, w.live ? 'live' : 'dead', `${w.heartbeat_age_ms} ms`);
   */
  async listWorkers(): Promise<WorkerStatus[]> {
    const now = await this.store.now();
    const window = Math.max(3000, this.config.leaseMs);
    return (await this.store.listWorkers()).map((w) => ({ ...w, heartbeat_age_ms: Math.max(0, now - w.heartbeat_at), live: now - w.heartbeat_at <= window && !workerIsDead(w) }));
  }

  /** Execute a run in this process (a worker limited to it) and return its final state. */
  async runToCompletion(idOrPrefix: string, options: Partial<WorkerOptions> = {}): Promise<RunDetails> {
    const id = await this.resolveRunId(idOrPrefix);
    const w = this.worker({ ...options, runIds: [id] });
    await w.start();
    return this.getRun(id);
  }

  /**
   * Get ready to resume after a crash: release the leases of dead workers on this machine and return
   * the runs to continue (the given one, or every unfinished run). A finished run is an error.
   */
  async prepareResume(idOrPrefix?: string): Promise<string[]> {
    await reapDeadWorkers(this.store, '');
    if (!idOrPrefix) return this.store.unfinishedRunIds();
    const id = await this.resolveRunId(idOrPrefix);
    const run = (await this.store.getRun(id)) as RunRecord;
    if (TERMINAL_RUN.has(run.status)) {
      const hint = run.status === 'completed' ? 'nothing to resume' : `use 'swarm runs retry ${run.id}' to run what failed again`;
      throw new ResumeError('RUN_FINISHED', `run ${run.id} is already ${run.status}; ${hint}`, { runId: run.id });
    }
    return [id];
  }

  /** Resume after a crash: continue the given run (or every unfinished run) in this process. */
  async resume(idOrPrefix?: string, options: Partial<WorkerOptions> = {}): Promise<RunDetails[]> {
    const ids = await this.prepareResume(idOrPrefix);
    if (ids.length === 0) return [];
    const w = this.worker({ ...options, runIds: ids });
    await w.start();
    return Promise.all(ids.map((id) => this.getRun(id)));
  }

  /** Stop every worker this Swarm started (gracefully), then close the store. */
  async close(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.schedulers].map((s) => s.stop()));
    await Promise.all([...this.workers].map((w) => w.stop(graceMs)));
    await this.network.close();
    await this.store.close();
  }
}

/** Run status → CLI exit code (0 ok, 4 failed or cancelled). */
/** The CLI's exit code for a run that ended (or paused) in this status: 0 completed or waiting for approval, 4 otherwise. */
export function runExitCode(status: RunStatus): number {
  return status === 'completed' || status === 'waiting' ? 0 : 4;
}

/** What a webhook delivery assumed of the registry or the secrets changed before its run's transaction: it is received again (see `deliverWebhook`). */
class StaleGuess extends Error {
  constructor() {
    super('the registry or the secrets changed since they were read');
  }
}

/** The store's scope of a secret: '' for global, else a workflow name (checked). */
function secretScope(options: SecretScopeOptions): string {
  if (options.workflow === undefined) return '';
  if (!new RegExp(NAME_PATTERN).test(options.workflow)) {
    throw new UserError('WORKFLOW_NAME_INVALID', `'${options.workflow}' is not a workflow name: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit`, { workflow: options.workflow });
  }
  return options.workflow;
}

function manifestPath(path: string, fileName: string): { file: string; dir: string } {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new NotFoundError('file', path);
  if (statSync(abs).isDirectory()) {
    const file = join(abs, fileName);
    if (!existsSync(file)) throw new NotFoundError('file', file, `a package directory must contain ${fileName}`);
    return { file, dir: abs };
  }
  return { file: abs, dir: resolve(abs, '..') };
}

/**
 * Keys starting `schedule:`, `webhook:` or `event:` belong to the runs those triggers start (one run
 * per tick, delivery or event): a run of another kind may not take one, or a caller could claim a
 * future tick's or delivery's run in advance.
 */
function checkKeyNamespace(key: string | undefined, triggerType: string): void {
  const prefix = key ? /^(schedule|webhook|event):/.exec(key)?.[1] : undefined;
  if (prefix && prefix !== triggerType) {
    throw new UserError('IDEMPOTENCY_KEY_RESERVED', `idempotency key '${key}' starts with '${prefix}:', which is reserved for the runs ${prefix} triggers start; choose a key without that prefix`, { field: 'header.idempotency-key' });
  }
}
