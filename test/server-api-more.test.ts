/**
 * More of the HTTP API in process (`app.request()`): approvals, bulk cancel and retry, a step's LLM
 * transcript, secrets (a planted value never comes back), and `server.max_body_bytes`.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/config.js';
import type { Worker } from '../src/engine/worker.js';
import { createApp } from '../src/server/app.js';
import { MAX_BULK } from '../src/server/routes/bulk.js';
import { Swarm } from '../src/swarm.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { builtinAgent, EXAMPLES, removeProject, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';
import { expectProblem, request, type Answer, type Json } from './helpers/http.js';


let dir: string;
let swarm: Swarm;
let worker: Worker;
let fake: FakeLlmServer;
let app: ReturnType<typeof createApp>;
/** Every response body the app gave, for the planted-secret check. */
const answers: string[] = [];

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const r = await request(app, method, path, body, headers);
  answers.push(r.text, JSON.stringify([...r.headers]));
  return r;
}

const statusOf = async (id: string): Promise<string> => (await swarm.getRun(id)).run.status;

beforeAll(async () => {
  fake = await startFakeLlmServer();
  dir = tempProject('name: api-more\nsandbox: none\nserver:\n  max_body_bytes: 2048\n');
  swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, providerEnv: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl } });
  // Runs until cancelled: the run stays cancellable for as long as a test needs.
  swarm.defineBuiltin('hold', (_inputs, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true })));
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerAgent(builtinAgent(dir, 'hold', 'hold'));
  await swarm.registerAgent(builtinAgent(dir, 'gate', 'approval'));
  await swarm.registerAgent(writeAgent(dir, 'talker', 'name: talker\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: "Be brief."\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'hold', 'name: hold\nversion: 1.0.0\nsteps:\n  - id: h\n    agent: hold\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'deploy', 'name: deploy\nversion: 1.0.0\nsteps:\n  - { id: ok, agent: gate, inputs: { message: "Deploy v2?" } }\n  - { id: go, agent: echo, depends_on: [ok], inputs: { message: "go" } }\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'words', 'name: words\nversion: 1.0.0\nsteps:\n  - id: each\n    agent: echo\n    map: ${trigger.words}\n    inputs: { message: "${map.item}" }\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'nest', 'name: nest\nversion: 1.0.0\nsteps:\n  - id: sub\n    workflow: words\n    inputs: { words: [a, b] }\n'));
  await swarm.registerWorkflow(writeWorkflow(dir, 'talk', 'name: talk\nversion: 1.0.0\nsteps:\n  - { id: ask, agent: talker, inputs: { message: "hello" } }\n  - { id: after, agent: echo, depends_on: [ask], inputs: { message: "done" } }\n'));
  worker = swarm.worker({ concurrency: 8 });
  app = createApp(swarm, { version: '9.9.9' });
});

afterAll(async () => {
  await worker.stop(1000);
  await swarm.close();
  await fake.close();
  removeProject(dir);
});

describe('sub-workflow runs and map elements', () => {
  it('the run document links a child to its parent, ?parent= lists the children, map elements carry map_index', async () => {
    const parent = await swarm.startRun('nest', {});
    await until(async () => ((await statusOf(parent)) === 'completed' ? true : undefined), 20_000, 'the parent run to complete');
    const list = await call('GET', `/api/v1/runs?parent=${parent}`);
    expect(list.status).toBe(200);
    const runs = (list.json as { runs: Array<{ run_id: string; workflow_name: string; parent_run_id: string; parent_step_id: string }> }).runs;
    expect(runs.map((r) => [r.workflow_name, r.parent_run_id, r.parent_step_id])).toEqual([['words', parent, 'sub']]);
    // The parent as the CLI shows it (the end of its id) finds the same children; an unknown one is 404, not an empty list.
    const short = await call('GET', `/api/v1/runs?parent=${parent.slice(-12)}`);
    expect((short.json as { runs: Array<{ run_id: string }> }).runs.map((r) => r.run_id)).toEqual(runs.map((r) => r.run_id));
    expectProblem(await call('GET', '/api/v1/runs?parent=zzzzzz'), 404, 'RUN_NOT_FOUND');
    const child = await call('GET', `/api/v1/runs/${runs[0]!.run_id}`);
    expect(child.json).toMatchObject({ parent_run_id: parent, parent_step_id: 'sub', status: 'completed' });
    const steps = (child.json as { steps: Array<{ id: string; map_index?: number; outputs: unknown }> }).steps;
    expect(steps.map((s) => [s.id, s.map_index ?? null])).toEqual([['each', null], ['each[0]', 0], ['each[1]', 1]]);
    expect(steps[0]?.outputs).toEqual([{ echoed: 'a' }, { echoed: 'b' }]);
    const doc = (await call('GET', `/api/v1/runs/${parent}`)).json as Record<string, unknown>;
    expect(doc.parent_run_id).toBeUndefined();
    expect((doc.steps as Array<{ outputs: unknown }>)[0]?.outputs).toEqual({ each: [{ echoed: 'a' }, { echoed: 'b' }] });
  });
});

describe('approvals', () => {
  it('lists pending requests; approve records who and why and the run goes on; reject fails the step with the reason', async () => {
    const a = await swarm.startRun('deploy', {});
    const b = await swarm.startRun('deploy', {});
    await until(async () => (await statusOf(a)) === 'waiting' && (await statusOf(b)) === 'waiting');

    const pending = await call('GET', '/api/v1/approvals');
    expect(pending.status).toBe(200);
    const list = pending.json.approvals as Json[];
    expect(list.filter((x) => x.run_id === a || x.run_id === b)).toHaveLength(2);
    expect(list.find((x) => x.run_id === a)).toMatchObject({ step_id: 'ok', call_id: 'step', status: 'pending', arguments: { message: 'Deploy v2?' }, decided_by: null });
    expect(((await call('GET', `/api/v1/approvals?run=${a.slice(-12)}`)).json.approvals as Json[]).map((x) => x.run_id)).toEqual([a]);

    const ok = await call('POST', `/api/v1/approvals/${a}/ok/approve`, { reason: 'release window', by: 'ada' });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ run_id: a, decision: 'approved', resumed: ['ok'] });
    const no = await call('POST', `/api/v1/approvals/${b.slice(-12)}/ok/reject`, { reason: 'not today', by: 'bob' });
    expect(no.json).toMatchObject({ run_id: b, decision: 'rejected', resumed: ['ok'] });

    expect((await swarm.wait(a)).run.status).toBe('completed');
    const failed = await swarm.wait(b);
    expect(failed.run.status).toBe('failed');
    expect(failed.steps.find((s) => s.step_id === 'ok')?.error).toContain('not today');
    const decided = (await call('GET', '/api/v1/approvals?status=all')).json.approvals as Json[];
    expect(decided.find((x) => x.run_id === a)).toMatchObject({ status: 'approved', reason: 'release window', decided_by: 'ada', decided_at: expect.any(String) as unknown });
    expect(decided.find((x) => x.run_id === b)).toMatchObject({ status: 'rejected', reason: 'not today', decided_by: 'bob' });
    expect(((await call('GET', '/api/v1/approvals?status=approved')).json.approvals as Json[]).map((x) => x.run_id)).toContain(a);

    // Deciding again, a wrong step, a wrong run, a bad body.
    expectProblem(await call('POST', `/api/v1/approvals/${a}/ok/approve`), 409, 'RUN_NOT_WAITING');
    const c = await swarm.startRun('deploy', {});
    await until(async () => (await statusOf(c)) === 'waiting');
    expectProblem(await call('POST', `/api/v1/approvals/${c}/go/approve`), 409, 'NOTHING_TO_DECIDE');
    expectProblem(await call('POST', '/api/v1/approvals/0000-nope/ok/approve'), 404, 'RUN_NOT_FOUND');
    expect(expectProblem(await call('POST', `/api/v1/approvals/${c}/ok/reject`, { reason: 'x', who: 'me' }), 422, 'VALIDATION_FAILED').detail).toContain('who');
    expectProblem(await call('GET', '/api/v1/approvals?status=maybe'), 422, 'VALIDATION_FAILED');
    // Without a body: approved, no reason recorded.
    expect((await call('POST', `/api/v1/approvals/${c}/ok/approve`)).status).toBe(200);
    expect((await swarm.listApprovals({ runId: c, status: 'all' }))[0]).toMatchObject({ status: 'approved', reason: null, decided_by: null });
  });
});

describe('bulk cancel and retry', () => {
  it('by ids: each run answered (done, refused, not found); by filter, with a cap; bad requests refused whole', async () => {
    const ids = [await swarm.startRun('hold', {}), await swarm.startRun('hold', {}), await swarm.startRun('hold', {})];
    const [a, b, c] = ids as [string, string, string];
    await until(async () => (await swarm.getRun(a)).steps[0]?.status === 'running');

    const first = await call('POST', '/api/v1/runs/cancel', { ids: [a, b.slice(-12), 'ffff-not-a-run', a], reason: 'cleanup' });
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({ done: 2, refused: 0, not_found: 1, more: false });
    expect(first.json.results).toEqual([
      { id: a, run_id: a, result: 'done', steps: expect.any(Array) as unknown },
      { id: b.slice(-12), run_id: b, result: 'done', steps: expect.any(Array) as unknown },
      // Told as an API client is told: the route that lists runs, not the CLI command.
      { id: 'ffff-not-a-run', result: 'not_found', code: 'RUN_NOT_FOUND', detail: "run 'ffff-not-a-run' not found", hint: 'GET /api/v1/runs lists the runs' },
    ]);
    expect(await statusOf(a)).toBe('cancelled');
    expect(await statusOf(c)).not.toBe('cancelled');
    const again = await call('POST', '/api/v1/runs/cancel', { ids: [a] });
    expect(again.json.results).toEqual([{ id: a, result: 'refused', code: 'RUN_NOT_CANCELLABLE', detail: expect.stringContaining('already cancelled') as unknown }]);

    // Retry by filter: the cancelled runs of the workflow; a running one is refused when named.
    const retried = await call('POST', '/api/v1/runs/retry', { filter: { workflow: 'hold', status: 'cancelled' } });
    expect(retried.json).toMatchObject({ done: 2, refused: 0, more: false });
    expect(((retried.json.results as Json[]).map((r) => r.run_id) as string[]).sort()).toEqual([a, b].sort());
    expect(((await call('POST', '/api/v1/runs/retry', { ids: [c] })).json.results as Json[])[0]).toMatchObject({ result: 'refused', code: 'RUN_NOT_RETRYABLE' });

    // Cancel by filter with a limit: `more` says to repeat.
    const some = await call('POST', '/api/v1/runs/cancel', { filter: { workflow: 'hold' }, limit: 1 });
    expect(some.json).toMatchObject({ done: 1, more: true, results: [{ run_id: c, result: 'done' }] });
    const rest = await call('POST', '/api/v1/runs/cancel', { filter: { workflow: 'hold' } });
    expect(rest.json).toMatchObject({ done: 2, refused: 1, more: false });
    const queuedOrRunning = async (): Promise<number> => (await swarm.listRuns({ workflow: 'hold' })).filter((r) => r.status !== 'cancelled').length;
    expect(await queuedOrRunning()).toBe(0);

    expect(expectProblem(await call('POST', '/api/v1/runs/cancel', { ids: [a], filter: { workflow: 'hold' } }), 422, 'VALIDATION_FAILED').detail).toContain('either ids or filter');
    expectProblem(await call('POST', '/api/v1/runs/cancel', {}), 422, 'VALIDATION_FAILED');
    // More ids than the cap (with a body limit that lets them through).
    const roomy = createApp(swarm, { maxBodyBytes: 1 << 20 });
    const tooMany = await roomy.request('/api/v1/runs/retry', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: Array.from({ length: MAX_BULK + 1 }, (_, i) => `r${i}`) }) });
    expect(tooMany.status).toBe(422);
    expect(await tooMany.json()).toMatchObject({ code: 'VALIDATION_FAILED', field: 'ids' });
    expect(expectProblem(await call('POST', '/api/v1/runs/cancel', { filter: { status: 'sleeping' } }), 422, 'VALIDATION_FAILED').field).toBe('filter.status');
    // A date in a filter is answered as in the query of GET /api/v1/runs: 422 naming it, never rolled over.
    for (const action of ['cancel', 'retry']) {
      for (const field of ['since', 'until']) {
        for (const value of ['2026-13-45', '2026-12-01T25:00:00Z', 'yesterday', '2026-02-30']) {
          const p = expectProblem(await call('POST', `/api/v1/runs/${action}`, { filter: { [field]: value } }), 422, 'VALIDATION_FAILED');
          expect(p.field, `${action} ${field}=${value}`).toBe(`filter.${field}`);
        }
      }
    }
    // A leap day is on the calendar (2000: divisible by 400); no run was created that day.
    expect((await call('POST', '/api/v1/runs/cancel', { filter: { workflow: 'hold', since: '2000-02-29', until: '2000-03-01T00:00:00Z' } })).json).toMatchObject({ done: 0, more: false });
  });

  it('reason is for cancel only: a bulk retry with one is 422 naming it, and retries nothing', async () => {
    const id = await swarm.startRun('hold', {});
    await call('POST', '/api/v1/runs/cancel', { ids: [id] });
    expect((await swarm.getRun(id)).run.status).toBe('cancelled');
    for (const body of [{ filter: { status: 'cancelled' }, reason: 'x' }, { ids: [id], reason: 'x' }]) {
      const p = expectProblem(await call('POST', '/api/v1/runs/retry', body), 422, 'VALIDATION_FAILED');
      expect(p.field).toBe('reason');
      expect(p.detail).toContain('is not a known field');
    }
    expect((await swarm.getRun(id)).run.status).toBe('cancelled');
    expectProblem(await call('POST', '/api/v1/runs/retry', '{"ids": ['), 400, 'JSON_INVALID');
  });
});

describe('the LLM transcript of a step', () => {
  it("is the step's agent session: messages, usage; a step without one and an unknown step are 404", async () => {
    fake.push({ content: 'Hello from the model', usage: { input_tokens: 12, output_tokens: 5 } });
    const id = await swarm.startRun('talk', {});
    expect((await swarm.wait(id)).run.status).toBe('completed');
    const t = await call('GET', `/api/v1/runs/${id.slice(-12)}/steps/ask/transcript`);
    expect(t.status, t.text).toBe(200);
    expect(t.json).toMatchObject({ run_id: id, step: 'ask', session: { id: `${id}/ask`, agent: 'talker', status: 'completed', input_tokens: 12, output_tokens: 5 } });
    expect(t.json.session).not.toHaveProperty('envelope');
    const messages = t.json.messages as Json[];
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[1]).toMatchObject({ content: 'Hello from the model', agent: 'talker' });
    expect(t.json.tool_calls).toEqual([]);
    expect(expectProblem(await call('GET', `/api/v1/runs/${id}/steps/after/transcript`), 404, 'SESSION_NOT_FOUND').detail).toContain('only llm steps');
    expectProblem(await call('GET', `/api/v1/runs/${id}/steps/nope/transcript`), 404, 'STEP_NOT_FOUND');
    expectProblem(await call('GET', '/api/v1/runs/0000-nope/steps/ask/transcript'), 404, 'RUN_NOT_FOUND');
  });
});

describe('secrets', () => {
  const PLANTED = 'pl4nted-s3cret-value-7f3a9c';

  it('set, list, replace, delete through the vault; a planted value is in no answer', async () => {
    const before = answers.length;
    const created = await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: PLANTED });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ name: 'CRM_TOKEN', scope: 'global', workflow: null, created_at: expect.any(String) as unknown });
    expect((await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: `${PLANTED}-2` })).status).toBe(200);
    const scoped = await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: PLANTED, workflow: 'deploy' });
    expect(scoped.json).toMatchObject({ name: 'CRM_TOKEN', scope: 'workflow', workflow: 'deploy' });
    expect(scoped.status).toBe(201);

    const list = (await call('GET', '/api/v1/secrets')).json.secrets as Json[];
    expect(list.map((s) => [s.name, s.workflow])).toEqual([
      ['CRM_TOKEN', null],
      ['CRM_TOKEN', 'deploy'],
    ]);
    expect(Object.keys(list[0] as Json).sort()).toEqual(['created_at', 'key_id', 'name', 'scope', 'updated_at', 'workflow']);
    expect(((await call('GET', '/api/v1/secrets?workflow=deploy')).json.secrets as Json[]).map((s) => s.workflow)).toEqual(['deploy']);

    // Refusals that carry the value in the request: none echoes it.
    expectProblem(await call('PUT', '/api/v1/secrets/bad-name', { value: PLANTED }), 400, 'SECRET_NAME_INVALID');
    expectProblem(await call('PUT', '/api/v1/secrets/CRM_TOKEN', `{"value": "${PLANTED}`), 400, 'JSON_INVALID');
    expectProblem(await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: PLANTED, scope: PLANTED }), 422, 'VALIDATION_FAILED');
    expectProblem(await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: 42 }), 422, 'VALIDATION_FAILED');
    expectProblem(await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: '' }), 400, 'SECRET_VALUE_EMPTY');
    expectProblem(await call('PUT', '/api/v1/secrets/CRM_TOKEN', { value: `${PLANTED}${'x'.repeat(3000)}` }), 413, 'LIMIT_EXCEEDED');

    expect((await call('DELETE', '/api/v1/secrets/CRM_TOKEN?workflow=deploy')).status).toBe(204);
    expectProblem(await call('DELETE', '/api/v1/secrets/CRM_TOKEN?workflow=deploy'), 404, 'SECRET_NOT_FOUND');
    expect((await call('DELETE', '/api/v1/secrets/CRM_TOKEN')).status).toBe(204);
    expect((await call('GET', '/api/v1/secrets')).json.secrets).toEqual([]);

    const said = answers.slice(before);
    expect(said.length).toBeGreaterThan(20);
    for (const text of said) expect(text).not.toContain(PLANTED);
  });
});

describe('server.max_body_bytes', () => {
  it('is the body limit of the API (2 KiB here, from swarm.yaml); the default is 1 MiB; a bad value is refused', async () => {
    const big = expectProblem(await call('POST', '/api/v1/workflows/deploy/runs', { input: { pad: 'x'.repeat(3000) } }), 413, 'LIMIT_EXCEEDED');
    expect(big.detail).toContain('server.max_body_bytes');
    expect(big).toMatchObject({ limit: 'server.max_body_bytes', max: 2048 });
    expect(swarm.config.server.maxBodyBytes).toBe(2048);
    const other = tempProject('name: x\n');
    const bad = tempProject('name: x\nserver:\n  max_body_bytes: 10\n');
    try {
      expect(resolveConfig({ cwd: other }).server.maxBodyBytes).toBe(1_048_576);
      expect(() => resolveConfig({ cwd: bad })).toThrow(/server\.max_body_bytes|max_body_bytes/);
    } finally {
      removeProject(other);
      removeProject(bad);
    }
  });
});

describe('problems for an HTTP client', () => {
  it('name the API route to use where the CLI names a command; the CLI keeps its wording', async () => {
    const cli = /'swarm [a-z]/;
    const missingRun = expectProblem(await call('GET', '/api/v1/runs/0190aaaa-0000-7000-8000-000000000000'), 404, 'RUN_NOT_FOUND');
    expect(missingRun).toMatchObject({ detail: "run '0190aaaa-0000-7000-8000-000000000000' not found", hint: 'GET /api/v1/runs lists the runs' });
    await expect(swarm.getRun('0190aaaa-0000-7000-8000-000000000000')).rejects.toThrow("run 'swarm runs list' to see runs");

    const noSchedule = expectProblem(await call('GET', '/api/v1/schedules/nope'), 404, 'WORKFLOW_NOT_FOUND');
    expect(noSchedule).toMatchObject({ detail: "workflow 'nope' not found", hint: 'GET /api/v1/schedules lists the schedules' });

    // A version the workflow does not have changes nothing (every version would have been switched).
    const noVersion = expectProblem(await call('POST', '/api/v1/workflows/hold@9.9.9/disable'), 404, 'WORKFLOW_NOT_FOUND');
    expect(noVersion.detail).toMatch(/workflow 'hold@9\.9\.9' not found/);
    expect((await swarm.getWorkflow('hold')).enabled).toBe(true);
    await expect(swarm.setWorkflowEnabled('hold@9.9.9', false)).rejects.toThrow(/registered versions: /);
    expect((await call('POST', '/api/v1/workflows/hold/disable')).status).toBe(200);
    try {
      const disabled = expectProblem(await call('POST', '/api/v1/workflows/hold/runs', { input: {} }), 403, 'WORKFLOW_DISABLED');
      expect(disabled).toMatchObject({ detail: 'workflow hold is disabled', workflow: 'hold', hint: 'POST /api/v1/workflows/hold/enable enables it' });
      await expect(swarm.startRun('hold', {})).rejects.toThrow("enable it with 'swarm workflow enable hold'");
    } finally {
      await call('POST', '/api/v1/workflows/hold/enable');
    }

    const noToken = expectProblem(await call('DELETE', '/api/v1/tokens/0123456789ab'), 404, 'TOKEN_NOT_FOUND');
    expect(noToken).toMatchObject({ detail: 'no token with id 0123456789ab', hint: 'GET /api/v1/tokens lists the tokens' });
    const notAnId = expectProblem(await call('DELETE', '/api/v1/tokens/swarm_x'), 404, 'TOKEN_NOT_FOUND');
    for (const p of [missingRun, noSchedule, noToken, notAnId]) expect(String(p.detail)).not.toMatch(cli);
  });
});
