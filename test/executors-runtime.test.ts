/**
 * `runtime: {type: http}` steps through a real worker, against real HTTP servers: the reference
 * executor as a `swarm executor serve` child process behind a proxy that loses its first answer
 * (503): the retry reuses the idempotency key and the agent runs once; shared_inputs merged with
 * prompt and agent_id injected; the traceparent arrives (its trace id is the run's); the cost counts
 * against the run's budget. Then the failures: a timeout (retried, then failed), a 4xx and a
 * malformed answer (not retried), an unknown executor (named).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Swarm } from '../src/swarm.js';
import { generateIdentity, signRecord } from '../src/consensus/core/crypto.js';
import { candidateFieldsOf } from '../src/executors/http/signing.js';
import { fakeExecutor, sendJson, type FakeExecutor } from './helpers/executor-fakes.js';
import { exited, openProject, removeProject, spawnCli, tempProject, writeAgent, writeWorkflow } from './helpers/project.js';

const COUNT_AGENT = `name: count
version: 1.0.0
runtime:
  type: node
  entry: count.js
`;

/** Appends a line per run to runs.log beside the project; answers with what it received and how many runs so far. */
const countJs = (log: string): string => `
const fs = require('fs');
const inputs = JSON.parse(fs.readFileSync(process.env.SWARM_INPUT_FILE, 'utf8'));
fs.appendFileSync(${JSON.stringify(log)}, process.env.SWARM_IDEMPOTENCY_KEY + '\\n');
const n = fs.readFileSync(${JSON.stringify(log)}, 'utf8').trim().split('\\n').length;
fs.writeFileSync(process.env.SWARM_OUTPUT_FILE, JSON.stringify({ n, received: inputs }));
`;

const remoteAgent = (name: string, executor: string, timeoutSeconds = 20): string => `name: ${name}
version: 1.0.0
runtime:
  type: http
  executor: ${executor}
  task_type: count
  prompt: Count the runs.
  timeout_seconds: ${timeoutSeconds}
`;

const workflow = (name: string, agent: string, retry = '{ max_attempts: 3, backoff_ms: 100 }', budget = ''): string => `name: ${name}
version: 1.0.0
${budget}steps:
  - id: a
    agent: ${agent}
    inputs:
      text: "\${trigger.text}"
    retry: ${retry}
`;

async function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`executor serve did not start: ${out}`)), 20_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => reject(new Error(`executor serve exited ${code}: ${out}`)));
  });
}

describe('http-runtime steps', () => {
  let execDir: string;
  let serveChild: ChildProcess;
  let executorUrl: string;
  let dir: string;
  let swarm: Swarm;
  const fakes: FakeExecutor[] = [];

  beforeAll(async () => {
    execDir = tempProject();
    writeAgent(execDir, 'count', COUNT_AGENT, { 'count.js': countJs(join(execDir, 'runs.log')) });
    dir = tempProject();
    swarm = await openProject(dir);
  });
  afterAll(async () => {
    await swarm.close();
    if (serveChild && serveChild.exitCode === null) {
      serveChild.kill('SIGTERM');
      await exited(serveChild);
    }
    for (const f of fakes) await f.close();
    removeProject(dir);
    removeProject(execDir);
  });

  it('a lost answer (503 after the work) is retried with the same idempotency key; the reference executor does not run the agent twice', async () => {
    const reg = await import('./helpers/project.js').then((h) => h.runCli(['agent', 'register', join(execDir, 'agents', 'count')], execDir));
    expect(reg.code, reg.stderr).toBe(0);
    serveChild = spawnCli(['executor', 'serve', '--port', '0', '--agent', 'count', '--state-dir', join(execDir, 'state')], execDir, { SWARM_SANDBOX: 'none' });
    executorUrl = await listening(serveChild);
    // The proxy forwards every request; the first /execute's answer is replaced by a 503.
    const proxy = await fakeExecutor(async (r, res, n) => {
      const upstream = await fetch(`${executorUrl}${r.path}`, { method: r.method, headers: { 'content-type': 'application/json', traceparent: String(r.headers.traceparent ?? '') }, ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}) });
      const body: unknown = await upstream.json();
      if (r.path === '/execute' && n === 0) sendJson(res, 503, { title: 'lost', status: 503, code: 'UPSTREAM_LOST', detail: 'the answer was lost on the way back' }, 'application/problem+json');
      else sendJson(res, upstream.status, body, upstream.headers.get('content-type') ?? 'application/json');
    });
    fakes.push(proxy);
    // Its key pinned: the reference executor's signed answers are checked on the way in.
    const caps = (await (await fetch(`${executorUrl}/capabilities`)).json()) as { public_key: string };
    await swarm.store.putExecutor({ name: 'rt', base_url: proxy.url, token_secret: null, public_key: caps.public_key });
    writeAgent(dir, 'remote', remoteAgent('remote', 'rt'));
    writeWorkflow(dir, 'remote-flow', workflow('remote-flow', 'remote', undefined, 'budget: { cost_usd: 5 }\n'));
    expect((await swarm.registerAgent(join(dir, 'agents', 'remote'))).warnings).toBeUndefined();
    await swarm.registerWorkflows(join(dir, 'workflows'));

    const runId = await swarm.startRun('remote-flow', { text: 'hello' }, { sharedInputs: { ticket: 'T-1', prompt: 'spoofed', agent_id: 'spoofed' } });
    const d = await swarm.runToCompletion(runId);
    expect(d.run.status, d.run.error ?? '').toBe('completed');
    const step = d.steps[0];
    expect(step?.attempt).toBe(2);
    expect(step?.outputs).toEqual({ n: 1, received: { ticket: 'T-1', text: 'hello', prompt: 'Count the runs.', agent_id: 'remote' } });
    // The agent ran once: one line in its log, under the step's idempotency key.
    expect(readFileSync(join(execDir, 'runs.log'), 'utf8').trim().split('\n')).toEqual([`${runId}/a`]);
    const executes = proxy.seen.filter((s) => s.path === '/execute');
    expect(executes).toHaveLength(2);
    expect(executes.map((s) => (s.body as { idempotency_key: string }).idempotency_key)).toEqual([`${runId}/a`, `${runId}/a`]);
    expect(executes.map((s) => (s.body as { task_id: string }).task_id)).toEqual([`${runId}/a`, `${runId}/a`]);
    // The traceparent arrives; without tracing its trace id is the run's id.
    for (const s of executes) expect(s.headers.traceparent).toMatch(new RegExp(`^00-${runId.replace(/-/g, '')}-[0-9a-f]{16}-01$`));
    // The answer carried no cost (a process agent): the call counted as one model call of the run's budget.
    expect(d.budget?.limits.cost_usd).toMatchObject({ used: 0, allowed: 5 });
  });

  it("the executor's cost_usd counts against the run's budget", async () => {
    const fake = await fakeExecutor((_r, res) => sendJson(res, 200, { output: { ok: true }, cost_usd: 0.25 }));
    fakes.push(fake);
    await swarm.store.putExecutor({ name: 'priced', base_url: fake.url, token_secret: null, public_key: null });
    writeAgent(dir, 'priced', remoteAgent('priced', 'priced'));
    writeWorkflow(dir, 'priced-flow', workflow('priced-flow', 'priced', undefined, 'budget: { cost_usd: 1 }\n'));
    await swarm.registerAgent(join(dir, 'agents', 'priced'));
    await swarm.registerWorkflows(join(dir, 'workflows'));
    const d = await swarm.runToCompletion(await swarm.startRun('priced-flow', { text: 'x' }));
    expect(d.run.status).toBe('completed');
    expect(d.steps[0]?.outputs).toEqual({ ok: true });
    expect(d.budget?.limits.cost_usd).toMatchObject({ used: 0.25, allowed: 1 });
    expect(JSON.stringify(await swarm.logs(d.run.id, 'a'))).toMatch(/executor priced: POST \/execute answered in \d+ ms; cost \$0.25/);
  });

  it('a signed answer must verify against the pinned key: the right key passes, another is refused (not retried)', async () => {
    const id = generateIdentity();
    const fake = await fakeExecutor((r, res) => {
      const req = r.body as { task_id: string; proposer_id: string; round: number };
      const answer = { output: { signed: true }, evidence: [], cost_usd: 0 };
      sendJson(res, 200, { ...answer, signature: signRecord(id.privateKey, 'candidate', candidateFieldsOf(req, answer)) });
    });
    fakes.push(fake);
    await swarm.store.putExecutor({ name: 'signer', base_url: fake.url, token_secret: null, public_key: id.publicKey });
    await swarm.store.putExecutor({ name: 'impostor', base_url: fake.url, token_secret: null, public_key: generateIdentity().publicKey });
    for (const n of ['signer', 'impostor']) {
      writeAgent(dir, `by-${n}`, remoteAgent(`by-${n}`, n));
      writeWorkflow(dir, `flow-by-${n}`, workflow(`flow-by-${n}`, `by-${n}`));
      await swarm.registerAgent(join(dir, 'agents', `by-${n}`));
    }
    await swarm.registerWorkflows(join(dir, 'workflows'));
    const ok = await swarm.runToCompletion(await swarm.startRun('flow-by-signer', { text: 'x' }));
    expect(ok.run.status).toBe('completed');
    expect(ok.steps[0]?.outputs).toEqual({ signed: true });
    expect((fake.seen[0]?.body as { proposer_id: string }).proposer_id).toBe('executor:signer');
    const bad = await swarm.runToCompletion(await swarm.startRun('flow-by-impostor', { text: 'x' }));
    expect(bad.run.status).toBe('failed');
    expect(bad.steps[0]?.attempt).toBe(1);
    expect(bad.run.error).toContain("executor 'impostor' signed its answer with a key other than the one pinned");
  });

  it('failures: a timeout is retried then fails; a 4xx and a malformed answer are not retried; an unknown executor is named', async () => {
    const slow = await fakeExecutor(async (_r, res) => {
      await new Promise((r) => setTimeout(r, 2500));
      if (!res.destroyed) sendJson(res, 200, { output: {} });
    });
    const refuses = await fakeExecutor((_r, res) => sendJson(res, 422, { title: 'no', status: 422, code: 'AGENT_FAILED', detail: 'bad task' }, 'application/problem+json'));
    const garbled = await fakeExecutor((_r, res) => sendJson(res, 200, { result: 'no output field' }));
    fakes.push(slow, refuses, garbled);
    for (const [name, f] of [
      ['slow', slow],
      ['refuses', refuses],
      ['garbled', garbled],
    ] as const) {
      await swarm.store.putExecutor({ name, base_url: f.url, token_secret: null, public_key: null });
      writeAgent(dir, `on-${name}`, remoteAgent(`on-${name}`, name, name === 'slow' ? 1 : 20));
      writeWorkflow(dir, `flow-${name}`, workflow(`flow-${name}`, `on-${name}`, '{ max_attempts: 2, backoff_ms: 50 }'));
    }
    writeAgent(dir, 'on-ghost', remoteAgent('on-ghost', 'ghost'));
    writeWorkflow(dir, 'flow-ghost', workflow('flow-ghost', 'on-ghost'));
    for (const n of ['slow', 'refuses', 'garbled']) await swarm.registerAgent(join(dir, 'agents', `on-${n}`));
    const ghost = await swarm.registerAgent(join(dir, 'agents', 'on-ghost'));
    expect(ghost.warnings).toEqual(["executor 'ghost' is not registered yet: its steps fail until 'swarm executors add ghost <base_url>'"]);
    await swarm.registerWorkflows(join(dir, 'workflows'));

    const run = async (wf: string): Promise<{ error: string; attempts: number }> => {
      const d = await swarm.runToCompletion(await swarm.startRun(wf, { text: 'x' }));
      expect(d.run.status).toBe('failed');
      return { error: d.run.error ?? '', attempts: d.steps[0]?.attempt ?? 0 };
    };
    const t = await run('flow-slow');
    expect(t.attempts).toBe(2);
    expect(t.error).toMatch(/EXECUTOR_TIMEOUT|did not answer POST \/execute within \d+ ms/);
    expect(slow.seen.filter((s) => s.path === '/execute')).toHaveLength(2);

    const r = await run('flow-refuses');
    expect(r).toMatchObject({ attempts: 1, error: expect.stringContaining("executor 'refuses' answered POST /execute with HTTP 422: AGENT_FAILED: bad task") });
    const g = await run('flow-garbled');
    expect(g).toMatchObject({ attempts: 1, error: expect.stringContaining("executor 'garbled' answered POST /execute with a malformed ExecuteResponse") });
    const u = await run('flow-ghost');
    expect(u).toMatchObject({ attempts: 1, error: expect.stringContaining("executor 'ghost' is not registered (registered: ") });
    expect(existsSync(join(dir, 'runs.log'))).toBe(false);
  });
});
