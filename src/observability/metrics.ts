/**
 * Swarm's Prometheus metrics: a prom-client registry holding exactly the metrics of
 * `metric-names.ts` (registered from that list: names, types, help and labels cannot drift from the
 * dashboards and alert rules), plus prom-client's process and Node.js defaults.
 *
 * How values arrive:
 * - Runs, steps, retries and queue waits: from the store's commit observer. Each ledger operation
 *   hands its flushed work (events, run states, claims) to `flushed`; once its transaction has
 *   committed, `committed` turns it into counts. Work rolled back is never counted.
 * - Steps in flight, lost leases, heartbeats (the worker), schedule fires (the scheduler), webhook
 *   outcomes (the HTTP server), approvals (Swarm.approve/reject), tool and model calls (the LLM loop):
 *   direct calls of the `EngineMetrics` hooks.
 * - Queue depth, oldest ready step, live workers, pending approvals: read from the store at scrape
 *   time by `Store.queueGauges` (indexed queries), cached for `gaugeCacheMs` so that many scrapers
 *   cost one read a second.
 *
 * Hot paths touch plain cells kept in Maps by label values (a lookup and an addition; prom-client's
 * label children would hash and validate the labels on every call): each counter and histogram hands
 * its cells to prom-client in its `collect`, when the registry is read (a scrape). Label values
 * are bounded (workflow, agent, tool, provider and model names; never run or step ids).
 *
 * @example
 *   const metrics = createMetrics({ store });
 *   store.observeCommits(metrics.commits);
 *   const text = await metrics.render(); // Prometheus text format, served as metrics.contentType
 */
import { createRequire } from 'node:module';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EventType } from '../core/events.js';
import { parseElementId } from '../engine/nesting.js';
import type { LoadedPlan } from '../engine/plan.js';
import type { CommitObserver, FlushedWork, QueueGauges } from '../store/commit-observer.js';
import type { Completion, EventRow, LedgerTx, RunState } from '../store/types.js';
import type { EngineMetrics, ScheduleOutcome, WebhookOutcome } from './engine-metrics.js';
import { METRICS, type MetricDefinition } from './metric-names.js';

export interface MetricsOptions {
  /** Where the queue gauges are read (absent: they stay 0, e.g. a registry without a store). */
  store?: { queueGauges(liveWithinMs: number): Promise<QueueGauges> };
  /** The ledger's plan cache: names the agent of a finished step (its `agent` label). */
  plans?: { peek(planId: string): LoadedPlan | undefined };
  /** A worker is live when its heartbeat is at most this old (default 30 s; Swarm passes its lease). */
  liveWorkerWindowMs?: number;
  /** How long a read of the queue gauges is reused (default 1000 ms). */
  gaugeCacheMs?: number;
  /** Include prom-client's process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

/**
 * prom-client's default collectors (what `collectDefaultMetrics` registers), all but `gc`: its
 * PerformanceObserver of every garbage collection cost 10% of the fan-out bench's throughput (a
 * fan-out collects garbage often), more than everything else here. Loaded by their module names
 * (prom-client 15 has no option to leave one out).
 */
const DEFAULT_COLLECTORS = ['processCpuTotal', 'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag', 'processResources', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version'] as const;

function collectDefaults(registry: Registry): void {
  const load = createRequire(import.meta.url);
  for (const name of DEFAULT_COLLECTORS) {
    if (name === 'processResources' && typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo !== 'function') continue;
    const collector = load(`prom-client/lib/metrics/${name}`) as (register: Registry, config: { eventLoopMonitoringPrecision: number }) => void;
    collector(registry, { eventLoopMonitoringPrecision: 10 });
  }
  // Gauges named like counters, which `promtool check metrics` rejects; the same numbers are
  // exported without the suffix (nodejs_active_handles, …_requests, …_resources, split by type).
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

/** Histogram buckets by metric, in the metric's unit. */
const BUCKETS: Readonly<Record<string, number[]>> = {
  swarm_run_duration_seconds: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400],
  swarm_step_queue_wait_seconds: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
  swarm_step_duration_seconds: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  swarm_approval_wait_seconds: [1, 10, 60, 300, 900, 3600, 14_400, 86_400, 604_800],
  swarm_tool_call_duration_seconds: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  // The OpenTelemetry GenAI conventions' advised boundaries.
  gen_ai_client_token_usage: [1, 4, 16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864],
  gen_ai_client_operation_duration_seconds: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
  swarm_store_commit_duration_seconds: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  swarm_store_commit_batch_size: [1, 2, 4, 8, 16, 32, 64, 128, 256],
};

type Metric = Counter | Gauge | Histogram;

/** A counter's value for one label set: a plain number on the hot path, handed to prom-client at scrape time. */
class CounterCell {
  value = 0;
  /** How much of `value` prom-client has been given. */
  pushed = 0;
  constructor(readonly labels: Readonly<Record<string, string>>) {}
  inc(n = 1): void {
    this.value += n;
  }
}

/** A histogram's buckets for one label set (non-cumulative counts, the last one +Inf), its sum and count. */
class HistogramCell {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    // prom-client would throw; a metric never fails the commit that feeds it.
    if (!Number.isFinite(v)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += v;
    this.count++;
  }
}

/**
 * One metric's cells, by label values: the hot path is Map lookups and an addition (prom-client's own
 * label children hash and validate their labels on every call). The cells are handed to prom-client
 * by the metric's `collect`, when the registry is read.
 */
class Family<C> {
  private readonly children = new Map<string, Map<string, Map<string, C>>>();
  readonly cells: C[] = [];
  constructor(
    private readonly labelNames: readonly string[],
    private readonly make: (labels: Record<string, string>) => C,
  ) {}
  get(a = '', b = '', c = ''): C {
    let byA = this.children.get(a);
    if (!byA) this.children.set(a, (byA = new Map<string, Map<string, C>>()));
    let byB = byA.get(b);
    if (!byB) byA.set(b, (byB = new Map<string, C>()));
    let child = byB.get(c);
    if (!child) {
      const values = [a, b, c];
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] as string));
      byB.set(c, (child = this.make(labels)));
      this.cells.push(child);
    }
    return child;
  }
}

/** What `collect` writes into: prom-client's Histogram keeps one entry per label set in `hashMap` (15.x). */
interface HistogramInternals {
  hashMap: Record<string, { labels: Record<string, string>; bucketValues: Record<number, number>; sum: number; count: number }>;
}

/** A run's labels from its state (states read before the columns existed lack them: ''). */
const wf = (s: RunState | undefined): string => s?.workflow_name ?? '';

/** The agent a step of a plan runs (a map element's base step; a sleep or wait step's kind; a sub-workflow's workflow). */
function agentOf(p: LoadedPlan | undefined, stepId: string | null): string {
  if (!p || stepId === null) return '';
  const base = stepId.includes('[') ? (parseElementId(stepId)?.base ?? stepId) : stepId;
  const agent = p.stepAgents.get(base);
  if (agent) return agent.manifest.name;
  const spec = p.steps.get(base);
  return spec?.kind ?? spec?.workflow ?? '';
}

/** `provider/model` split into its two labels. */
function splitModel(modelId: string): [string, string] {
  const i = modelId.indexOf('/');
  return i < 0 ? ['', modelId] : [modelId.slice(0, i), modelId.slice(i + 1)];
}

const STEP_STATUS: Readonly<Record<string, string>> = {
  [EventType.STEP_COMPLETED]: 'completed',
  [EventType.STEP_FAILED]: 'failed',
  [EventType.STEP_RETRY_SCHEDULED]: 'retrying',
  [EventType.STEP_CANCELLED]: 'cancelled',
};

const RUN_STATUS: Readonly<Record<string, string>> = {
  [EventType.RUN_COMPLETED]: 'completed',
  [EventType.RUN_FAILED]: 'failed',
  [EventType.RUN_CANCELLED]: 'cancelled',
};

/** The Prometheus registry of one process, and the hooks that feed it. */
export class PrometheusMetrics implements EngineMetrics {
  readonly enabled = true;
  /** The prom-client registry (add your own metrics to it, or merge it with yours). */
  readonly registry = new Registry();
  private readonly m = new Map<string, Metric>();
  /** The cells of every labelled counter and histogram, by metric name. */
  private readonly families = new Map<string, Family<CounterCell> | Family<HistogramCell>>();
  private readonly pending = new WeakMap<LedgerTx, FlushedWork[]>();
  private gaugeRead: { at: number; value: Promise<QueueGauges | undefined> } | undefined;

  private readonly runsStarted: Family<CounterCell>;
  private readonly runsFinished: Family<CounterCell>;
  private readonly runDuration: Family<HistogramCell>;
  private readonly queueWait: Family<HistogramCell>;
  private readonly stepsFinished: Family<CounterCell>;
  private readonly stepDuration: Family<HistogramCell>;
  private readonly retries: Family<CounterCell>;
  /** Steps in flight: a plain number on the hot path, set into its gauge at scrape time. */
  private inFlight = 0;
  private readonly leases: Counter;
  private readonly heartbeats: Counter;
  private readonly approvalWait: Family<HistogramCell>;
  private readonly scheduleFires: Family<CounterCell>;
  private readonly webhooks: Family<CounterCell>;
  private readonly toolCalls: Family<CounterCell>;
  private readonly toolDuration: Family<HistogramCell>;
  private readonly modelCalls: Family<CounterCell>;
  private readonly tokens: Family<HistogramCell>;
  private readonly modelDuration: Family<HistogramCell>;
  private readonly cost: Family<CounterCell>;
  private readonly commitDuration: Family<HistogramCell>;
  private readonly commitBatch: Family<HistogramCell>;
  private readonly budgetEvents: Family<CounterCell>;
  private readonly circuitTransitions: Family<CounterCell>;
  private readonly circuitRejections: Family<CounterCell>;
  private readonly guardrailEvents: Family<CounterCell>;
  private readonly redactions: Family<CounterCell>;
  private readonly memoryOps: Family<CounterCell>;
  private readonly memoryDuration: Family<HistogramCell>;

  /** What the store reports its transactions to. */
  readonly commits: CommitObserver = {
    flushed: (tx, work) => {
      const list = this.pending.get(tx);
      if (list) list.push(work);
      else this.pending.set(tx, [work]);
    },
    committed: (store, seconds, txs) => {
      this.commitDuration.get(store).observe(seconds);
      this.commitBatch.get(store).observe(txs.length);
      for (const tx of txs) {
        const works = this.pending.get(tx);
        if (!works) continue;
        this.pending.delete(tx);
        for (const w of works) this.count(tx.now, w);
      }
    },
  };

  constructor(private readonly options: MetricsOptions = {}) {
    for (const def of METRICS) this.m.set(def.name, this.create(def));
    if (options.defaultMetrics ?? true) collectDefaults(this.registry);
    const counter = (name: string): Family<CounterCell> => this.families.get(name) as Family<CounterCell>;
    const histogram = (name: string): Family<HistogramCell> => this.families.get(name) as Family<HistogramCell>;
    this.runsStarted = counter('swarm_runs_started_total');
    this.runsFinished = counter('swarm_runs_finished_total');
    this.runDuration = histogram('swarm_run_duration_seconds');
    this.queueWait = histogram('swarm_step_queue_wait_seconds');
    this.stepsFinished = counter('swarm_steps_finished_total');
    this.stepDuration = histogram('swarm_step_duration_seconds');
    this.retries = counter('swarm_step_retries_total');
    this.leases = this.m.get('swarm_leases_lost_total') as Counter;
    this.heartbeats = this.m.get('swarm_worker_heartbeats_total') as Counter;
    this.approvalWait = histogram('swarm_approval_wait_seconds');
    this.scheduleFires = counter('swarm_schedule_fires_total');
    this.webhooks = counter('swarm_webhook_requests_total');
    this.toolCalls = counter('swarm_tool_calls_total');
    this.toolDuration = histogram('swarm_tool_call_duration_seconds');
    this.modelCalls = counter('swarm_model_calls_total');
    this.tokens = histogram('gen_ai_client_token_usage');
    this.modelDuration = histogram('gen_ai_client_operation_duration_seconds');
    this.cost = counter('swarm_llm_cost_usd_total');
    this.commitDuration = histogram('swarm_store_commit_duration_seconds');
    this.commitBatch = histogram('swarm_store_commit_batch_size');
    this.budgetEvents = counter('swarm_budget_events_total');
    this.circuitTransitions = counter('swarm_circuit_transitions_total');
    this.circuitRejections = counter('swarm_circuit_rejected_calls_total');
    this.guardrailEvents = counter('swarm_guardrail_events_total');
    this.redactions = counter('swarm_redactions_total');
    this.memoryOps = counter('swarm_memory_operations_total');
    this.memoryDuration = histogram('swarm_memory_operation_duration_seconds');
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The exposition's Content-Type (`text/plain; version=0.0.4; charset=utf-8`). */
  get contentType(): string {
    return this.registry.contentType;
  }

  private create(def: MetricDefinition): Metric {
    const base = { name: def.name, help: def.help, labelNames: [...def.labels], registers: [this.registry] };
    if (def.type === 'counter' && def.labels.length === 0) return new Counter(base);
    if (def.type === 'counter') {
      const family = new Family(def.labels, (labels) => new CounterCell(labels));
      this.families.set(def.name, family);
      return new Counter({
        ...base,
        // The increments since the last read, handed over once per label set.
        collect(this: Counter) {
          for (const cell of family.cells) {
            if (cell.value === cell.pushed) continue;
            this.inc(cell.labels, cell.value - cell.pushed);
            cell.pushed = cell.value;
          }
        },
      });
    }
    if (def.type === 'histogram') {
      const buckets = BUCKETS[def.name] ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
      const family = new Family(def.labels, (labels) => new HistogramCell(labels, buckets));
      this.families.set(def.name, family);
      return new Histogram({
        ...base,
        buckets,
        // Each label set's buckets, sum and count as they are now (no observation is replayed).
        collect(this: Histogram) {
          const map = (this as unknown as HistogramInternals).hashMap;
          family.cells.forEach((cell, i) => {
            const bucketValues: Record<number, number> = {};
            buckets.forEach((b, j) => (bucketValues[b] = cell.counts[j] as number));
            map[`cell${i}`] = { labels: { ...cell.labels }, bucketValues, sum: cell.sum, count: cell.count };
          });
        },
      });
    }
    if (def.name === 'swarm_steps_in_flight') {
      const read = (): number => this.inFlight;
      return new Gauge({
        ...base,
        collect(this: Gauge) {
          this.set(read());
        },
      });
    }
    const gauge = this.storeGauge(def.name);
    return new Gauge(gauge ? { ...base, collect: gauge } : base);
  }

  /** The scrape-time reader of a store-wide gauge, or undefined for a gauge this process sets. */
  private storeGauge(name: string): ((this: Gauge) => Promise<void>) | undefined {
    const pick: ((g: QueueGauges) => number) | undefined = {
      swarm_queue_ready_steps: (g: QueueGauges) => g.ready_steps,
      swarm_queue_oldest_ready_age_seconds: (g: QueueGauges) => (g.oldest_ready_at === null ? 0 : Math.max(0, g.now - g.oldest_ready_at) / 1000),
      swarm_workers_live: (g: QueueGauges) => g.live_workers,
      swarm_approvals_pending: (g: QueueGauges) => g.pending_approvals,
    }[name];
    if (!pick) return undefined;
    const read = (): Promise<QueueGauges | undefined> => this.readGauges();
    return async function (this: Gauge) {
      const g = await read();
      // A failed read leaves the last value: a scrape still answers while the store is away.
      if (g) this.set(pick(g));
    };
  }

  /** One read of the store's gauges per `gaugeCacheMs`, shared by the four gauges and every scraper. */
  private readGauges(): Promise<QueueGauges | undefined> {
    const store = this.options.store;
    if (!store) return Promise.resolve(undefined);
    const now = Date.now();
    if (!this.gaugeRead || now - this.gaugeRead.at >= (this.options.gaugeCacheMs ?? 1000)) {
      this.gaugeRead = { at: now, value: store.queueGauges(this.options.liveWorkerWindowMs ?? 30_000).catch(() => undefined) };
    }
    return this.gaugeRead.value;
  }

  /** A committed ledger operation's work, counted. */
  private count(now: number, work: FlushedWork): void {
    let durations: Map<string, Completion> | undefined;
    for (const e of work.events) {
      const run = RUN_STATUS[e.type];
      if (run !== undefined) {
        this.runFinished(work.runs.get(e.run_id), run);
        continue;
      }
      if (e.type === EventType.RUN_CREATED) {
        const s = work.runs.get(e.run_id);
        this.runsStarted.get(wf(s), s?.trigger_type ?? '').inc();
        continue;
      }
      const status = STEP_STATUS[e.type];
      if (status === undefined) continue;
      const cs = work.completions;
      let c: Completion | undefined;
      if (cs && cs.length <= 16) {
        for (const x of cs) if (x.step_id === e.step_id && x.run_id === e.run_id) c = x;
      } else if (cs) {
        durations ??= new Map(cs.map((x) => [`${x.run_id}\u0000${x.step_id}`, x]));
        c = durations.get(`${e.run_id}\u0000${e.step_id ?? ''}`);
      }
      this.stepFinished(work.runs.get(e.run_id), e, status, c);
    }
    for (const c of work.claims ?? []) {
      this.queueWait.get(wf(work.runs.get(c.run_id))).observe(Math.max(0, now - c.ready_at) / 1000);
    }
  }

  private runFinished(s: RunState | undefined, status: string): void {
    this.runsFinished.get(wf(s), s?.trigger_type ?? '', status).inc();
    if (s?.created_at != null && s.completed_at != null) this.runDuration.get(wf(s), status).observe(Math.max(0, s.completed_at - s.created_at) / 1000);
  }

  private stepFinished(s: RunState | undefined, e: EventRow, status: string, c: Completion | undefined): void {
    const agent = agentOf(s ? this.options.plans?.peek(s.plan_id) : undefined, e.step_id);
    this.stepsFinished.get(wf(s), agent, status).inc();
    if (status === 'retrying') this.retries.get(wf(s), agent).inc();
    // Only an attempt this commit's worker ran has a duration (a step cancelled at its claim had none).
    if (c) this.stepDuration.get(wf(s), agent, status).observe(Math.max(0, c.duration_ms) / 1000);
  }

  // ---- EngineMetrics hooks ----

  stepStarted(): void {
    this.inFlight++;
  }

  stepEnded(): void {
    this.inFlight--;
  }

  stepStopped(planId: string, stepId: string, seconds: number): void {
    // Counted by the worker that ran it: the run's cancellation wrote no event of the step's own.
    const p = this.options.plans?.peek(planId);
    const workflow = p?.plan.workflow.name ?? '';
    const agent = agentOf(p, stepId);
    this.stepsFinished.get(workflow, agent, 'cancelled').inc();
    this.stepDuration.get(workflow, agent, 'cancelled').observe(Math.max(0, seconds));
  }

  leasesLost(n: number): void {
    if (n > 0) this.leases.inc(n);
  }

  heartbeat(): void {
    this.heartbeats.inc();
  }

  scheduleFire(workflow: string, outcome: ScheduleOutcome): void {
    this.scheduleFires.get(workflow, outcome).inc();
  }

  webhookRequest(path: string, outcome: WebhookOutcome): void {
    this.webhooks.get(path, outcome).inc();
  }

  approvalDecided(workflow: string, decision: 'approved' | 'rejected', waitSeconds: number): void {
    this.approvalWait.get(workflow, decision).observe(Math.max(0, waitSeconds));
  }

  toolCall(tool: string, outcome: 'ok' | 'error', seconds: number): void {
    this.toolCalls.get(tool, outcome).inc();
    this.toolDuration.get(tool).observe(seconds);
  }

  modelCall(modelId: string, outcome: 'ok' | 'error', seconds: number): void {
    const [provider, model] = splitModel(modelId);
    this.modelCalls.get(provider, model, outcome).inc();
    this.modelDuration.get(provider, model).observe(seconds);
  }

  modelUsage(modelId: string, usage: { input_tokens: number; output_tokens: number; cost_usd?: number }): void {
    const [provider, model] = splitModel(modelId);
    this.tokens.get(provider, model, 'input').observe(usage.input_tokens);
    this.tokens.get(provider, model, 'output').observe(usage.output_tokens);
    if (usage.cost_usd) this.cost.get(provider, model).inc(usage.cost_usd);
  }

  budgetEvent(limit: string, kind: 'warning' | 'exceeded'): void {
    this.budgetEvents.get(limit, kind).inc();
  }

  circuitTransition(kind: string, breaker: string, to: 'closed' | 'open' | 'half_open'): void {
    this.circuitTransitions.get(kind, breaker, to).inc();
    (this.m.get('swarm_circuit_state') as Gauge).labels(kind, breaker).set(to === 'closed' ? 0 : to === 'half_open' ? 1 : 2);
  }

  circuitRejected(kind: string, breaker: string): void {
    this.circuitRejections.get(kind, breaker).inc();
  }

  guardrailEvent(guardrail: string, action: string): void {
    this.guardrailEvents.get(guardrail, action).inc();
  }

  redacted(dataClass: string, action: string, n: number): void {
    if (n > 0) this.redactions.get(dataClass, action).inc(n);
  }

  memoryOperation(op: 'write' | 'search' | 'delete', outcome: 'ok' | 'error', seconds: number): void {
    this.memoryOps.get(op, outcome).inc();
    this.memoryDuration.get(op).observe(seconds);
  }
}

/**
 * A registry with every Swarm metric. Wire it with `store.observeCommits(metrics.commits)` (Swarm.open
 * with `metrics: true` does all of it).
 *
 * @example
 *   const metrics = createMetrics({ store, liveWorkerWindowMs: 30_000 });
 */
export function createMetrics(options: MetricsOptions = {}): PrometheusMetrics {
  return new PrometheusMetrics(options);
}
