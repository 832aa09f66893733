/**
 * The Prometheus registry in process, on SQLite and PostgreSQL: runs, step attempts, retries, queue
 * waits and approvals counted from committed work only (a rolled-back transaction counts nothing);
 * the store-wide gauges read by indexed queries and cached; LLM model calls, tokens, cost and tool
 * calls through the real OpenAI client against the fake vendor server; metrics off costs nothing.
 * A real `swarm serve` and `swarm worker --metrics-port` are scraped in metrics-process.test.ts.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../src/observability/metrics.js';
import { createApp } from '../src/server/app.js';
import { METRICS } from '../src/observability/metric-names.js';
import { NO_METRICS } from '../src/observability/engine-metrics.js';
import { Swarm } from '../src/swarm.js';
import { RUN_ENDED, StepError } from '../src/core/errors.js';
import { startFakeLlmServer } from '../src/testing/fake-llm-server.js';
import { hasSample, metricSum } from './helpers/prometheus.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { builtinAgent, removeProject, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

let server: PgTestServer;
beforeAll(async () => {
  server = await pgTestServer();
});
afterAll(async () => {
  await stopPgTestServer();
});

interface Opened {
  swarm: Swarm;
  dir: string;
  /** The PostgreSQL database's URL (absent on SQLite). */
  url?: string;
  close(): Promise<void>;
}

async function open(kind: 'sqlite' | 'postgres', metrics = true): Promise<Opened> {
  const dir = tempProject();
  const url = kind === 'postgres' ? await server.createDatabase() : undefined;
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...(url ? { SWARM_DATABASE_URL: url } : {}) }, metrics });
  swarm.defineBuiltin('ok', async () => ({ ok: true }));
  swarm.defineBuiltin('boom', async () => {
    throw new Error('kaboom');
  });
  for (const name of ['ok', 'boom']) await swarm.registerAgent(builtinAgent(dir, name, name));
  await swarm.registerAgent(builtinAgent(dir, 'gatekeeper', 'approval'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'good', 'name: good\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: ok\n  - id: b\n    agent: ok\n    depends_on: [a]\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'bad', 'name: bad\nversion: 1.0.0\nsteps:\n  - id: x\n    agent: boom\n    retry: { max_attempts: 2, backoff_ms: 10, max_backoff_ms: 10 }\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'gate', 'name: gate\nversion: 1.0.0\nsteps:\n  - id: ask\n    agent: gatekeeper\n'));
  return {
    swarm,
    dir,
    ...(url ? { url } : {}),
    close: async () => {
      await swarm.close();
      removeProject(dir);
      if (url) await server.dropDatabase(url);
    },
  };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`metrics on ${kind}`, () => {
    it('counts runs, step attempts, retries, queue waits and approval waits once their commit is done, never rolled-back work', async () => {
      const o = await open(kind);
      const { swarm } = o;
      try {
        const m = swarm.metrics;
        if (!m) throw new Error('metrics are on');
        const good = await Promise.all([1, 2, 3].map(() => swarm.startRun('good')));
        const bad = await swarm.startRun('bad');
        const gate = await swarm.startRun('gate');
        // Cancelled inside a transaction that then rolls back: RUN_CANCELLED was flushed, never committed.
        await expect(
          swarm.store.transaction(async (tx) => {
            await swarm.ledger.cancelRun(tx, gate, 'changed my mind');
            throw new Error('rolled back');
          }),
        ).rejects.toThrow('rolled back');
        await swarm.worker({ runIds: [...good, bad, gate], concurrency: 4 }).start();
        await swarm.approve(gate, 'ask', { by: 'ops' });
        await swarm.worker({ runIds: [gate] }).start();
        expect((await swarm.getRun(gate)).run.status).toBe('completed');

        const text = await m.render();
        expect(metricSum(text, 'swarm_runs_started_total', { workflow: 'good' })).toBe(3);
        expect(metricSum(text, 'swarm_runs_started_total')).toBe(5);
        expect(hasSample(text, 'swarm_runs_started_total', { workflow: 'good', trigger: 'manual' }), text).toBe(true);
        expect(metricSum(text, 'swarm_runs_finished_total', { workflow: 'good', trigger: 'manual', status: 'completed' })).toBe(3);
        expect(metricSum(text, 'swarm_runs_finished_total', { workflow: 'bad', status: 'failed' })).toBe(1);
        expect(metricSum(text, 'swarm_runs_finished_total', { status: 'cancelled' }), 'the rolled-back cancel').toBe(0);
        expect(metricSum(text, 'swarm_run_duration_seconds_count', { workflow: 'good', status: 'completed' })).toBe(3);
        expect(metricSum(text, 'swarm_run_duration_seconds_sum', { workflow: 'good' })).toBeGreaterThan(0);
        expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'good', agent: 'ok', status: 'completed' })).toBe(6);
        expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'bad', agent: 'boom', status: 'retrying' })).toBe(1);
        expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'bad', agent: 'boom', status: 'failed' })).toBe(1);
        expect(metricSum(text, 'swarm_step_retries_total', { workflow: 'bad', agent: 'boom' })).toBe(1);
        expect(metricSum(text, 'swarm_step_duration_seconds_count', { workflow: 'good', agent: 'ok', status: 'completed' })).toBe(6);
        // Every attempt was claimed fresh: 6 + 2 (a retry is claimed again) + 2 (the approval step runs again once decided).
        expect(metricSum(text, 'swarm_step_queue_wait_seconds_count')).toBe(10);
        expect(metricSum(text, 'swarm_step_queue_wait_seconds_count', { workflow: 'good' })).toBe(6);
        expect(metricSum(text, 'swarm_approval_wait_seconds_count', { workflow: 'gate', decision: 'approved' })).toBe(1);
        expect(metricSum(text, 'swarm_steps_in_flight')).toBe(0);
        expect(metricSum(text, 'swarm_store_commit_duration_seconds_count', { store: kind })).toBeGreaterThan(0);
        expect(metricSum(text, 'swarm_store_commit_batch_size_count', { store: kind })).toBe(metricSum(text, 'swarm_store_commit_duration_seconds_count', { store: kind }));
        // Never a run or step id in a label.
        for (const id of [...good, bad, gate]) expect(text).not.toContain(id);
        // Exactly the shared list, and the process and Node.js defaults.
        for (const def of METRICS) expect(text, def.name).toContain(`# TYPE ${def.name} ${def.type}`);
        expect(text).toContain('# TYPE process_cpu_seconds_total counter');
        expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');

        // The real cancel, committed, counts.
        const later = await swarm.startRun('good');
        await swarm.cancel(later, 'no longer needed');
        expect(metricSum(await m.render(), 'swarm_runs_finished_total', { workflow: 'good', status: 'cancelled' })).toBe(1);
      } finally {
        await o.close();
      }
    });

    it('a step stopped because its run was cancelled is not a lost lease', async () => {
      const o = await open(kind);
      const { swarm } = o;
      try {
        const m = swarm.metrics;
        if (!m) throw new Error('metrics are on');
        let started!: () => void;
        const running = new Promise<void>((resolve) => (started = resolve));
        swarm.defineBuiltin('hang', (_inputs, ctx) => {
          started();
          return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))));
        });
        await swarm.registerAgent(builtinAgent(o.dir, 'hang', 'hang'));
        await swarm.registerWorkflow(writeWorkflow(o.dir, 'hang', 'name: hang\nversion: 1.0.0\nsteps:\n  - id: h\n    agent: hang\n'));
        const run = await swarm.startRun('hang');
        const lines: Array<{ line: string; fields: unknown }> = [];
        const worker = swarm.worker({ runIds: [run], log: (line, fields) => lines.push({ line, fields }) }).start();
        await running;
        await swarm.cancel(run, 'no longer needed');
        await worker;
        // The worker learnt of the cancel by its lease renewal failing: on purpose, not a lost lease.
        await vi.waitFor(async () => expect(metricSum(await m.render(), 'swarm_steps_in_flight')).toBe(0));
        await new Promise((resolve) => setTimeout(resolve, 100));
        const text = await m.render();
        expect(metricSum(text, 'swarm_leases_lost_total')).toBe(0);
        expect(metricSum(text, 'swarm_runs_finished_total', { workflow: 'hang', status: 'cancelled' })).toBe(1);
        // The attempt it stopped is counted by the worker that ran it, with its run time.
        expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'hang', agent: 'hang', status: 'cancelled' })).toBe(1);
        expect(metricSum(text, 'swarm_step_duration_seconds_count', { workflow: 'hang', agent: 'hang', status: 'cancelled' })).toBe(1);
        expect(lines.filter((l) => l.line.includes('cancelled: its run was cancelled')).map((l) => l.fields)).toEqual([expect.objectContaining({ run_id: run, step_id: 'h', attempt: 1, status: 'cancelled', workflow: 'hang' })]);
      } finally {
        await o.close();
      }
    });

    it("an agent's own RUN_ENDED error, its run not cancelled, is a failure like any other", async () => {
      const o = await open(kind);
      const { swarm } = o;
      try {
        const m = swarm.metrics;
        if (!m) throw new Error('metrics are on');
        swarm.defineBuiltin('pretender', async () => {
          throw new StepError(RUN_ENDED, 'its run was cancelled', false);
        });
        await swarm.registerAgent(builtinAgent(o.dir, 'pretender', 'pretender'));
        await swarm.registerWorkflow(writeWorkflow(o.dir, 'pretend', 'name: pretend\nversion: 1.0.0\nsteps:\n  - id: p\n    agent: pretender\n'));
        const lines: string[] = [];
        const run = await swarm.startRun('pretend');
        await swarm.worker({ runIds: [run], log: (line) => lines.push(line) }).start();
        expect((await swarm.getRun(run)).run.status).toBe('failed');
        const text = await m.render();
        expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'pretend', status: 'failed' })).toBe(1);
        expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'pretend', status: 'cancelled' })).toBe(0);
        expect(lines.filter((l) => l.includes('cancelled:'))).toEqual([]);
      } finally {
        await o.close();
      }
    });

    it('reads the queue gauges from the store with indexed queries, one read per cache period', async () => {
      const o = await open(kind, false);
      const { swarm } = o;
      try {
        const now = await swarm.store.now();
        await Promise.all([1, 2].map(() => swarm.startRun('good')));
        const gate = await swarm.startRun('gate');
        await swarm.store.requestApprovals([{ run_id: gate, step_id: 'ask', call_id: 'step', tool: 'approval', arguments: '{}', requested_at: now }]);
        const worker = { hostname: 'h', host_id: 'h', pid: 1, concurrency: 1, scope: null, started_at: now };
        await swarm.store.registerWorker({ ...worker, id: 'live', heartbeat_at: now, stopped_at: null });
        await swarm.store.registerWorker({ ...worker, id: 'silent', heartbeat_at: now - 120_000, stopped_at: null });
        await swarm.store.registerWorker({ ...worker, id: 'gone', heartbeat_at: now, stopped_at: null });
        await swarm.store.stopWorker('gone');

        const g = await swarm.store.queueGauges(30_000);
        expect(g).toMatchObject({ ready_steps: 3, live_workers: 1, pending_approvals: 1 });
        expect(g.oldest_ready_at).not.toBeNull();
        expect(g.now - (g.oldest_ready_at ?? 0)).toBeGreaterThanOrEqual(0);

        const read = vi.spyOn(swarm.store, 'queueGauges');
        const m = createMetrics({ store: swarm.store, gaugeCacheMs: 60_000, liveWorkerWindowMs: 30_000, defaultMetrics: false });
        const texts = [await m.render(), await m.render(), await m.render()];
        expect(read, 'one read for three scrapes within the cache period').toHaveBeenCalledTimes(1);
        for (const text of texts) {
          expect(metricSum(text, 'swarm_queue_ready_steps')).toBe(3);
          expect(metricSum(text, 'swarm_workers_live')).toBe(1);
          expect(metricSum(text, 'swarm_approvals_pending')).toBe(1);
          expect(metricSum(text, 'swarm_queue_oldest_ready_age_seconds')).toBeGreaterThanOrEqual(0);
        }
        expect(hasSample(texts[0] as string, 'process_cpu_seconds_total'), 'defaults off').toBe(false);

        // Each query is answered from an index (the store's own plan, not a scan of the table).
        if (kind === 'sqlite') {
          const db = new Database(join(o.dir, '.swarm', 'swarm.db'), { readonly: true });
          try {
            const plans = [
              `SELECT COUNT(*), MIN(available_at) FROM step_executions WHERE status = 'ready' AND available_at <= 1`,
              'SELECT COUNT(*) FROM workers WHERE stopped_at IS NULL AND heartbeat_at >= 1',
              `SELECT COUNT(*) FROM approvals WHERE status = 'pending'`,
            ].map((sql) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>).map((r) => r.detail).join('; '));
            expect(plans[0]).toMatch(/USING (COVERING )?INDEX idx_steps_ready/);
            expect(plans[1]).toMatch(/USING (COVERING )?INDEX idx_workers_live/);
            expect(plans[2]).toMatch(/USING (COVERING )?INDEX idx_approvals_pending/);
          } finally {
            db.close();
          }
        } else {
          // A tiny table is cheaper to scan: with scans priced out, the plan shows the indexes exist for it.
          const { queueGaugesSql } = await import('../src/store/postgres/gauges-sql.js');
          const r = await server.query(o.url as string, `SET enable_seqscan = off; EXPLAIN ${queueGaugesSql('1000::bigint').replace('$1::bigint', '30000::bigint')}`);
          const results = (Array.isArray(r) ? r : [r]) as Array<{ rows: Array<{ 'QUERY PLAN'?: string }> }>;
          const plan = results.flatMap((x) => x.rows.map((row) => row['QUERY PLAN'] ?? '')).join('\n');
          expect(plan).not.toContain('Seq Scan');
          expect(plan).toMatch(/idx_workers_live/);
          expect(plan).toMatch(/idx_approvals_pending/);
        }
      } finally {
        await o.close();
      }
    });
  });
}

describe('metrics of LLM agents', () => {
  it('counts model calls, tokens, cost and tool calls through the real OpenAI client', async () => {
    const fake = await startFakeLlmServer();
    const dir = tempProject();
    const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, metrics: true, providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl } });
    try {
      const tools = `export const lookup = { name: 'lookup', description: 'Look up', parameters: { type: 'object', properties: {} }, execute: () => ({ found: true }) };
export const broken = { name: 'broken', description: 'Fails', parameters: { type: 'object', properties: {} }, execute: () => { throw new Error('down'); } };\n`;
      writeAgent(dir, 'clerk', 'name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: "Help."\ntools:\n  - module: tools.mjs\n', { 'tools.mjs': tools });
      await swarm.registerAgent(join(dir, 'agents', 'clerk'));
      await swarm.registerWorkflow(writeWorkflow(dir, 'ask', 'name: ask\nversion: 1.0.0\nsteps:\n  - id: q\n    agent: clerk\n    inputs: { message: "hi" }\n'));
      fake.push(
        { toolCalls: [{ id: 'c1', name: 'lookup', arguments: {} }, { id: 'c2', name: 'broken', arguments: {} }], usage: { input_tokens: 100, output_tokens: 10 } },
        { content: 'Done.', usage: { input_tokens: 130, output_tokens: 8 } },
      );
      const { run } = await swarm.runToCompletion(await swarm.startRun('ask'));
      expect(run.status).toBe('completed');
      if (!swarm.metrics) throw new Error('metrics are on');
      const text = await swarm.metrics.render();
      const model = { provider: 'openai', model: 'gpt-4o-mini' };
      expect(metricSum(text, 'swarm_model_calls_total', { ...model, outcome: 'ok' })).toBe(2);
      expect(metricSum(text, 'gen_ai_client_operation_duration_seconds_count', { gen_ai_provider_name: 'openai', gen_ai_request_model: 'gpt-4o-mini' })).toBe(2);
      expect(metricSum(text, 'gen_ai_client_token_usage_sum', { gen_ai_request_model: 'gpt-4o-mini', gen_ai_token_type: 'input' })).toBe(230);
      expect(metricSum(text, 'gen_ai_client_token_usage_sum', { gen_ai_request_model: 'gpt-4o-mini', gen_ai_token_type: 'output' })).toBe(18);
      expect(metricSum(text, 'gen_ai_client_token_usage_count', { gen_ai_token_type: 'input' })).toBe(2);
      expect(metricSum(text, 'swarm_llm_cost_usd_total', model)).toBeGreaterThan(0);
      expect(metricSum(text, 'swarm_tool_calls_total', { tool: 'lookup', outcome: 'ok' })).toBe(1);
      expect(metricSum(text, 'swarm_tool_calls_total', { tool: 'broken', outcome: 'error' })).toBe(1);
      expect(metricSum(text, 'swarm_tool_call_duration_seconds_count', { tool: 'lookup' })).toBe(1);
    } finally {
      await swarm.close();
      await fake.close();
      removeProject(dir);
    }
  });

  it('off (the default): no registry, the store has no observer, the hooks are the null object', async () => {
    const o = await open('sqlite', false);
    try {
      expect(o.swarm.metrics).toBeUndefined();
      const { run } = await o.swarm.runToCompletion(await o.swarm.startRun('good'));
      expect(run.status).toBe('completed');
      let observed = 0;
      await o.swarm.store.transaction(async (tx) => {
        observed += tx.observer ? 1 : 0;
      });
      expect(observed).toBe(0);
      expect(NO_METRICS.enabled).toBe(false);
      expect(NO_METRICS.commits).toBeUndefined();
    } finally {
      await o.close();
    }
  });

  it('GET /metrics in the HTTP API: the read scope once tokens exist, 404 METRICS_DISABLED when off; webhook refusals by outcome', async () => {
    const on = await open('sqlite');
    const off = await open('sqlite', false);
    try {
      const app = createApp(on.swarm, { maxBodyBytes: 2048 });
      const open1 = await app.request('/metrics');
      expect(open1.status, 'open while no token exists (loopback)').toBe(200);
      expect(open1.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      // Refused deliveries: unknown path, and a body over the limit (refused by the body limit, before any route).
      await on.swarm.registerWorkflow(writeWorkflow(on.dir, 'hook', 'name: hook\nversion: 1.0.0\ntrigger: { type: webhook, path: in/hook, auth: none }\nsteps:\n  - id: a\n    agent: ok\n'));
      expect((await app.request('/webhooks/none', { method: 'POST', body: '{}' })).status).toBe(404);
      expect((await app.request('/webhooks/in/hook', { method: 'POST', body: 'x'.repeat(4096), headers: { 'content-type': 'application/json' } })).status).toBe(413);
      expect((await app.request('/webhooks/in/hook', { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);
      expect((await app.request('/workflows/in/hook/trigger', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' } })).status).toBe(202);
      // The store failing during the lookup: a server error at a path nobody registered is not a label.
      vi.spyOn(on.swarm.store, 'registryGeneration').mockRejectedValueOnce(new Error('connection lost'));
      expect((await app.request('/webhooks/anything-7f3a', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(500);
      const reader = await on.swarm.createToken({ name: 'prometheus', scopes: ['read'] });
      const writer = await on.swarm.createToken({ name: 'ci', scopes: ['runs:write'] });
      expect((await app.request('/metrics')).status).toBe(401);
      expect((await app.request('/metrics', { headers: { authorization: `Bearer ${writer.token}` } })).status).toBe(403);
      const res = await app.request('/metrics', { headers: { authorization: `Bearer ${reader.token}` } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: '', outcome: 'not_found' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: '', outcome: 'too_large' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: 'in/hook', outcome: 'invalid' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: 'in/hook', outcome: 'accepted' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: '', outcome: 'error' })).toBe(1);
      expect(text).not.toContain('anything-7f3a');

      const disabled = await createApp(off.swarm).request('/metrics');
      expect(disabled.status).toBe(404);
      expect(await disabled.json()).toMatchObject({ status: 404, code: 'METRICS_DISABLED' });
    } finally {
      await on.close();
      await off.close();
    }
  });
});

describe('the hot path keeps its own cells', () => {
  it('renders counters and histograms exactly as prom-client observing each value would, across scrapes', async () => {
    const { Counter, Histogram, Registry } = await import('prom-client');
    const m = createMetrics({ defaultMetrics: false });
    const ref = new Registry();
    const calls = new Counter({ name: 'swarm_tool_calls_total', help: 'x', labelNames: ['tool', 'outcome'], registers: [ref] });
    const durations = new Histogram({ name: 'swarm_tool_call_duration_seconds', help: 'x', labelNames: ['tool'], buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [ref] });
    const section = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name}_`));
    const feed = (values: Array<[string, 'ok' | 'error', number]>): void => {
      for (const [tool, outcome, s] of values) {
        m.toolCall(tool, outcome, s);
        calls.inc({ tool, outcome });
        durations.observe({ tool }, s);
      }
    };
    feed([['fetch', 'ok', 0.003], ['fetch', 'ok', 0.05], ['fetch', 'error', 120], ['grep', 'ok', 0.5], ['grep', 'ok', 0.25]]);
    for (const round of [1, 2]) {
      const [ours, theirs] = [await m.render(), await ref.metrics()];
      for (const name of ['swarm_tool_calls_total', 'swarm_tool_call_duration_seconds']) {
        expect(section(ours, name).length).toBeGreaterThan(2);
        expect(section(ours, name).sort(), `${name}, scrape ${round}`).toEqual(section(theirs, name).sort());
      }
      // What arrives between scrapes is added once, never twice.
      feed([['fetch', 'ok', 0.01], ['new', 'ok', 7]]);
    }
  });
});
