/**
 * Prometheus metrics of real processes over real HTTP: `swarm serve` scraped at GET /metrics after
 * real runs (completed ones, a failure after a retry, an approval, webhook deliveries good and bad, a
 * schedule firing), and `swarm worker --metrics-port` scraped on its own port; every exposition
 * passes `promtool check metrics` (Debian's prometheus package; the test fails if it is missing).
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveWebhookScheme, signWebhook } from '../src/triggers/index.js';
import { cleanupSandboxes, examplesStore, makeSandbox, show, until, type CliResult, type Sandbox } from './helpers/cli.js';
import { hasSample, metricSum } from './helpers/prometheus.js';

afterAll(() => cleanupSandboxes());

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
/** A short lease: workers heartbeat every third of it, so heartbeats show within a second. */
const ENV = { SWARM_SANDBOX: 'none', SWARM_SECRET_HOOK: SECRET, SWARM_LEASE_TTL_MS: '900' };

type Json = Record<string, unknown>;

async function project(): Promise<Sandbox> {
  const s = makeSandbox({ env: ENV });
  s.copyStore(await examplesStore());
  s.write('agents/flop/agent.yaml', 'name: flop\nversion: 1.0.0\nruntime:\n  type: node\n  entry: main.js\n');
  s.write('agents/flop/package.json', '{"type":"commonjs"}');
  s.write('agents/flop/main.js', "process.stderr.write('always fails\\n');\nprocess.exit(1);\n");
  s.write('workflows/flop/workflow.yaml', 'name: flop\nversion: 1.0.0\nsteps:\n  - id: try\n    agent: flop\n    retry: { max_attempts: 2, backoff_ms: 50, max_backoff_ms: 50 }\n');
  s.write('workflows/gate/workflow.yaml', 'name: gate\nversion: 1.0.0\nsteps:\n  - id: ask\n    agent: approval\n');
  s.write('workflows/hook/workflow.yaml', 'name: hook\nversion: 1.0.0\ntrigger: { type: webhook, path: hook, secret: "${secrets.HOOK}" }\nsteps:\n  - id: a\n    agent: echo\n    inputs: { message: "${trigger.n}" }\n');
  s.write('workflows/tick/workflow.yaml', 'name: tick\nversion: 1.0.0\ntrigger: { type: schedule, cron: "* * * * * *", overlap: allow_all }\nsteps:\n  - id: a\n    agent: echo\n    inputs: { message: tick }\n');
  for (const args of [['agent', 'register', 'agents/flop'], ['workflow', 'register', '--all', 'workflows']]) {
    const r = await s.run(args);
    expect(r.code, show(r)).toBe(0);
  }
  return s;
}

/** Start a long-lived command and wait for a line matching `ready` in its output. */
async function startUntil(s: Sandbox, args: string[], ready: RegExp): Promise<{ match: string; child: ChildProcess; done: Promise<CliResult>; output: () => string }> {
  const { child, done } = s.start(args, { timeoutMs: 90_000 });
  let out = '';
  child.stdout?.on('data', (d: Buffer | string) => (out += String(d)));
  child.stderr?.on('data', (d: Buffer | string) => (out += String(d)));
  const match = await until(`'${ready.source}' in the output of swarm ${args[0]}`, async () => ready.exec(out)?.[1], 20_000, 25);
  return { match, child, done, output: () => out };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, json: (await res.json()) as Json };
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

/** `promtool check metrics` on an exposition: it must be installed, and must find nothing wrong. */
function promtoolCheck(text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool cannot run (${r.error.message}): install Debian's prometheus package (.ci/run does)`);
  expect(r.status, `promtool check metrics:\n${r.stdout}${r.stderr}`).toBe(0);
}

describe('metrics of real processes', () => {
  it('swarm serve: GET /metrics after real runs, approvals, webhooks and a schedule counts exactly them; promtool accepts it', async () => {
    const s = await project();
    const srv = await startUntil(s, ['serve', '--port', '0'], /listening on (http:\/\/\S+)/);
    const url = srv.match;
    try {
      // Three runs to completion, one that fails after a retry, one waiting for a person.
      for (let i = 0; i < 3; i++) {
        const r = await post(`${url}/api/v1/workflows/echo-chain/runs?wait=30s`, { input: { message: `m${i}` } });
        expect(r.json.status, JSON.stringify(r.json)).toBe('completed');
      }
      const flop = await post(`${url}/api/v1/workflows/flop/runs?wait=30s`, { input: {} });
      expect(flop.json.status).toBe('failed');
      const gate = (await post(`${url}/api/v1/workflows/gate/runs`, { input: {} })).json.run_id as string;
      await until('the gate to wait', async () => (((await (await fetch(`${url}/api/v1/runs/${gate}`)).json()) as Json).status === 'waiting' ? true : undefined));
      expect((await post(`${url}/api/v1/approvals/${gate}/ask/approve`, {})).status).toBe(200);
      await until('the gate to complete', async () => (((await (await fetch(`${url}/api/v1/runs/${gate}`)).json()) as Json).status === 'completed' ? true : undefined));

      // Webhook deliveries: one accepted, its redelivery, a bad signature, an unknown path.
      const scheme = resolveWebhookScheme('standard');
      const body = JSON.stringify({ n: 'one' });
      const signed = signWebhook(scheme, SECRET, body, { id: 'msg_1' });
      expect((await post(`${url}/webhooks/hook`, body, signed)).status).toBe(202);
      expect((await post(`${url}/webhooks/hook`, body, signed)).status).toBe(200);
      expect((await post(`${url}/webhooks/hook`, body, signWebhook(scheme, 'whsec_wrongwrongwrongwrongwrongwrong', body, { id: 'msg_2' }))).status).toBe(401);
      expect((await post(`${url}/webhooks/nowhere/at-all`, body, signed)).status).toBe(404);

      // The schedule fires every second; the worker heartbeats every 0.3 s.
      const text = await until('a schedule fire and a heartbeat', async () => {
        const t = await scrape(`${url}/metrics`);
        return metricSum(t, 'swarm_schedule_fires_total', { workflow: 'tick', outcome: 'started' }) >= 1 && metricSum(t, 'swarm_worker_heartbeats_total') >= 1 ? t : undefined;
      });
      promtoolCheck(text);

      expect(metricSum(text, 'swarm_runs_started_total', { workflow: 'echo-chain', trigger: 'api' })).toBe(3);
      expect(metricSum(text, 'swarm_runs_finished_total', { workflow: 'echo-chain', trigger: 'api', status: 'completed' })).toBe(3);
      expect(metricSum(text, 'swarm_run_duration_seconds_count', { workflow: 'echo-chain', status: 'completed' })).toBe(3);
      expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'echo-chain', agent: 'echo', status: 'completed' })).toBe(6);
      expect(metricSum(text, 'swarm_step_duration_seconds_count', { workflow: 'echo-chain', agent: 'echo' })).toBe(6);
      expect(metricSum(text, 'swarm_step_queue_wait_seconds_count', { workflow: 'echo-chain' })).toBe(6);
      expect(metricSum(text, 'swarm_runs_finished_total', { workflow: 'flop', status: 'failed' })).toBe(1);
      expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'flop', agent: 'flop', status: 'retrying' })).toBe(1);
      expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'flop', agent: 'flop', status: 'failed' })).toBe(1);
      expect(metricSum(text, 'swarm_step_retries_total', { workflow: 'flop', agent: 'flop' })).toBe(1);
      expect(metricSum(text, 'swarm_approval_wait_seconds_count', { workflow: 'gate', decision: 'approved' })).toBe(1);
      expect(metricSum(text, 'swarm_runs_finished_total', { workflow: 'gate', status: 'completed' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: 'hook', outcome: 'accepted' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: 'hook', outcome: 'duplicate' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: 'hook', outcome: 'bad_signature' })).toBe(1);
      expect(metricSum(text, 'swarm_webhook_requests_total', { path: '', outcome: 'not_found' })).toBe(1);
      expect(text, 'an unknown path is never a label').not.toContain('nowhere');
      expect(metricSum(text, 'swarm_runs_started_total', { workflow: 'hook', trigger: 'webhook' })).toBe(1);
      expect(metricSum(text, 'swarm_runs_started_total', { workflow: 'tick', trigger: 'schedule' })).toBeGreaterThanOrEqual(1);
      // The store-wide gauges: this serve's worker is live, nothing waits for a person any more.
      expect(metricSum(text, 'swarm_workers_live')).toBe(1);
      expect(metricSum(text, 'swarm_approvals_pending')).toBe(0);
      expect(hasSample(text, 'swarm_queue_ready_steps')).toBe(true);
      expect(metricSum(text, 'swarm_store_commit_duration_seconds_count', { store: 'sqlite' })).toBeGreaterThan(0);
      expect(hasSample(text, 'process_resident_memory_bytes')).toBe(true);
    } finally {
      srv.child.kill('SIGTERM');
      const r = await srv.done;
      expect(r.code, show(r)).toBe(0);
    }
  });

  it('swarm worker --metrics-port: its own steps, heartbeats and the store gauges on its own port; promtool accepts it', async () => {
    const s = await project();
    const bad = await s.run(['worker', '--metrics-port', '70000']);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain('--metrics-port must be a port number from 0 to 65535');
    const hostOnly = await s.run(['worker', '--metrics-host', '0.0.0.0']);
    expect(hostOnly.code, show(hostOnly)).toBe(2);
    expect(hostOnly.stderr).toContain("--metrics-host '0.0.0.0' needs --metrics-port");

    const w = await startUntil(s, ['worker', '--metrics-port', '0', '--concurrency', '2'], /metrics: (http:\/\/\S+)/);
    try {
      expect(w.match).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      for (const message of ['a', 'b']) {
        const r = await s.run(['run', 'echo-chain', JSON.stringify({ message }), '--detach']);
        expect(r.code, show(r)).toBe(0);
      }
      const text = await until('both runs finished by the worker', async () => {
        const t = await scrape(w.match);
        return metricSum(t, 'swarm_runs_finished_total', { workflow: 'echo-chain', status: 'completed' }) === 2 && metricSum(t, 'swarm_worker_heartbeats_total') >= 1 ? t : undefined;
      });
      promtoolCheck(text);
      // Created by the CLI's process, finished here: each process counts what it did.
      expect(metricSum(text, 'swarm_runs_started_total')).toBe(0);
      expect(metricSum(text, 'swarm_steps_finished_total', { workflow: 'echo-chain', agent: 'echo', status: 'completed' })).toBe(4);
      expect(metricSum(text, 'swarm_step_queue_wait_seconds_count', { workflow: 'echo-chain' })).toBe(4);
      expect(metricSum(text, 'swarm_workers_live')).toBe(1);
      // `curl localhost:N/`: a 404 problem naming the request, as `swarm serve` answers an unknown route.
      const root = await fetch(w.match.replace('/metrics', '/'));
      expect(root.status).toBe(404);
      expect(root.headers.get('content-type')).toBe('application/problem+json');
      expect(await root.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', detail: 'no route GET /; this port serves GET /metrics only' });
    } finally {
      w.child.kill('SIGTERM');
      const r = await w.done;
      expect(r.code, show(r)).toBe(0);
    }
    await expect(fetch(w.match), 'the metrics port closes with the worker').rejects.toThrow();
  });
});
