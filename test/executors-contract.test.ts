/**
 * The executor contract (docs/executor-api.yaml): the document's schemas are the code's; every
 * request the client sends and every response the reference executor gives (answers and
 * problem+json errors) validate against the document; the client's failures carry stable codes and
 * say whether they are retryable (unreachable, timeout, HTTP 5xx/4xx, malformed answers); the
 * traceparent and the bearer token arrive. Real HTTP servers throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { createExecutorClient, checkBaseUrl, ExecutorError } from '../src/executors/http/client.js';
import { CONTRACT_SCHEMAS } from '../src/executors/http/schemas.js';
import { createReferenceExecutor, type ReferenceExecutor } from '../src/executors/http/reference-server.js';
import { candidateFieldsOf, verifierResultFieldsOf } from '../src/executors/http/signing.js';
import { verifySignedRecord } from '../src/consensus/core/signed.js';
import { candidateHash, verifyRecord } from '../src/consensus/core/crypto.js';
import type { ExecuteRequest } from '../src/executors/http/contract.js';
import type { Swarm } from '../src/swarm.js';
import { API_DOC, checkingFetch, fakeExecutor, responseProblems, sendJson } from './helpers/executor-fakes.js';
import { builtinAgent, openProject, removeProject, tempProject } from './helpers/project.js';

const task = (over: Partial<ExecuteRequest> = {}): ExecuteRequest => ({ task_id: 't1', task_type: 'echo-a', inputs: { message: 'hi' }, idempotency_key: `k-${Math.random()}`, deadline_ms: Date.now() + 10_000, ...over });

describe('the document', () => {
  it('is OpenAPI 3.1 with the four operations, and its component schemas are the code’s', () => {
    expect((API_DOC as unknown as { openapi: string }).openapi).toBe('3.1.0');
    expect(Object.keys(API_DOC.paths).sort()).toEqual(['/capabilities', '/execute', '/health', '/verify']);
    expect(API_DOC.components.schemas).toEqual(JSON.parse(JSON.stringify(CONTRACT_SCHEMAS)));
  });
});

describe('the reference executor against the document', () => {
  let dir: string;
  let swarm: Swarm;
  let ex: ReferenceExecutor;
  let server: Server;
  let url: string;
  let calls = 0;
  beforeAll(async () => {
    dir = tempProject();
    swarm = await openProject(dir);
    swarm.defineBuiltin('counted', async (inputs) => {
      calls++;
      return { echoed: inputs.message ?? null, n: calls };
    });
    builtinAgent(dir, 'echo-a', 'counted');
    builtinAgent(dir, 'other', 'echo');
    await swarm.registerAgents(join(dir, 'agents'));
    ex = await createReferenceExecutor({ swarm, stateDir: join(dir, 'executor-state'), name: 'ref-1', token: 'tok' });
    server = serve({ fetch: ex.app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await swarm.close();
    removeProject(dir);
  });

  it('answers health, capabilities and execute as the document says; the candidate is signed over the documented fields', async () => {
    const problems: string[] = [];
    const traces: string[] = [];
    const client = createExecutorClient({ name: 'ref', base_url: url }, { token: 'tok', fetch: checkingFetch(problems, traces) });
    expect(await client.health()).toMatchObject({ status: 'ok' });
    const caps = await client.capabilities();
    expect(caps).toMatchObject({ name: 'ref-1', task_types: ['echo-a', 'other'], protocol_version: '1', public_key: ex.publicKey });
    expect(caps.policies).toEqual(expect.arrayContaining(['vp.schema_only.v1', 'vp.schema_thresholds.v1', 'vp.crosscheck.v1']));
    const req = task({ proposer_id: 'executor:ref', round: 2 });
    const res = await client.execute(req, { traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01' });
    expect(res.output).toMatchObject({ echoed: 'hi' });
    expect(res.candidate_hash).toBe(candidateHash(res.output));
    expect(verifyRecord(ex.publicKey, 'candidate', candidateFieldsOf({ task_id: 't1', proposer_id: 'executor:ref', round: 2 }, res), res.signature)).toBe(true);
    // As the kernel checks it: the candidate record built from the request and the answer.
    const record = { task_id: 't1', round: 2, proposer_id: 'executor:ref', candidate_hash: res.candidate_hash, evidence: res.evidence, cost_usd: res.cost_usd, signature: res.signature };
    expect(verifySignedRecord(ex.publicKey, 'candidate', record)).toBe(true);
    // Signed for this task and proposer only.
    expect(verifyRecord(ex.publicKey, 'candidate', candidateFieldsOf({ task_id: 't2', proposer_id: 'executor:ref', round: 2 }, res), res.signature)).toBe(false);
    expect(verifySignedRecord(ex.publicKey, 'candidate', { ...record, proposer_id: 'executor:other' })).toBe(false);
    expect(traces.every((t) => /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/.test(t))).toBe(true);
    expect(problems).toEqual([]);
  });

  it('a repeated idempotency key returns the same answer without running the agent again', async () => {
    const client = createExecutorClient({ name: 'ref', base_url: url }, { token: 'tok' });
    const req = task();
    const before = ex.runs;
    const a = await client.execute(req);
    const b = await client.execute({ ...req, deadline_ms: Date.now() + 5000 });
    const [c, d] = await Promise.all([client.execute(task({ idempotency_key: 'same' })), client.execute(task({ idempotency_key: 'same' }))]);
    expect(b).toEqual(a);
    expect(d).toEqual(c);
    expect(ex.runs - before).toBe(2);
  });

  it('/verify runs the built-in policies, three-state, signed over the documented fields', async () => {
    const problems: string[] = [];
    const client = createExecutorClient({ name: 'ref', base_url: url }, { token: 'tok', fetch: checkingFetch(problems) });
    const output = { summary: 'ok', score: 0.4 };
    const candidate = { candidate_hash: candidateHash(output), output };
    const schema = { type: 'object', required: ['summary'], properties: { summary: { type: 'string' }, score: { type: 'number' } } };
    const passed = await client.verify({ task_id: 't1', task_type: 'x', policy_id: 'vp.schema_only.v1', output_schema: schema, candidate, verifier_id: 'verifier:ref' });
    expect(passed).toMatchObject({ status: 'passed', reason_codes: [] });
    const ids = { task_id: 't1', candidate_hash: candidate.candidate_hash, verifier_id: 'verifier:ref', policy_id: 'vp.schema_only.v1' };
    expect(verifyRecord(ex.publicKey, 'verifier_result', verifierResultFieldsOf(ids, passed), passed.signature)).toBe(true);
    expect(verifySignedRecord(ex.publicKey, 'verifier_result', { ...ids, ...passed })).toBe(true);
    const failed = await client.verify({ task_id: 't1', task_type: 'x', policy_id: 'vp.schema_only.v1', output_schema: { ...schema, required: ['summary', 'missing'] }, candidate });
    expect(failed.status).toBe('failed');
    expect(failed.reason_codes.length).toBeGreaterThan(0);
    const unknown = await client.verify({ task_id: 't1', task_type: 'x', policy_id: 'vp.nope.v9', candidate });
    expect(unknown).toMatchObject({ status: 'failed', reason: expect.stringContaining("unknown verification policy 'vp.nope.v9'") });
    const badHash = await client.verify({ task_id: 't1', task_type: 'x', policy_id: 'vp.schema_only.v1', candidate: { ...candidate, candidate_hash: '0'.repeat(64) } }).catch((e: unknown) => e);
    expect(badHash).toMatchObject({ code: 'EXECUTOR_HTTP_ERROR', status: 400, message: expect.stringContaining("is not the hash of the candidate's output") });
    expect(problems).toEqual([]);
  });

  it('selects the agent by the input `agent`, else task_type; errors are problem+json as documented', async () => {
    const problems: string[] = [];
    const client = createExecutorClient({ name: 'ref', base_url: url }, { token: 'tok', fetch: checkingFetch(problems) });
    expect((await client.execute(task({ task_type: 'anything', inputs: { agent: 'other', message: 'x' } }))).output).toEqual({ echoed: 'x' });
    const unknown = await client.execute(task({ task_type: 'nope' })).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ExecutorError);
    expect(unknown).toMatchObject({ code: 'EXECUTOR_HTTP_ERROR', status: 404, retryable: false, message: expect.stringContaining("AGENT_UNKNOWN: no agent served for task_type 'nope' (served: echo-a, other)") });
    // A body that is not an ExecuteRequest, and a request without the token.
    for (const [headers, body, status] of [
      [{ authorization: 'Bearer tok', 'content-type': 'application/json' }, '{"task_id":"t"}', 400],
      [{ 'content-type': 'application/json' }, JSON.stringify(task()), 401],
    ] as const) {
      const r = await fetch(`${url}/execute`, { method: 'POST', headers, body });
      expect(r.status).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      problems.push(...responseProblems('POST', '/execute', r.status, r.headers.get('content-type') ?? '', await r.json()));
    }
    const v = await fetch(`${url}/verify`, {
      method: 'POST',
      headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
      body: JSON.stringify({ task_id: 't', task_type: 'x', policy_id: 'vp.schema_only.v1', candidate: { candidate_hash: candidateHash({ a: 1 }), output: { a: 1 } }, output_schema: { type: 'object' } }),
    });
    problems.push(...responseProblems('POST', '/verify', v.status, v.headers.get('content-type') ?? '', await v.json()));
    expect(problems).toEqual([]);
  });
});

describe('the client', () => {
  it('sends the contract: JSON body, idempotency key, traceparent, bearer token; checks the answer', async () => {
    const fake = await fakeExecutor((_r, res) => sendJson(res, 200, { output: { ok: true }, cost_usd: 0.01 }));
    try {
      const client = createExecutorClient({ name: 'f', base_url: `${fake.url}/` }, { token: 's3cret' });
      const req = task({ idempotency_key: 'run-1/step-a' });
      expect(await client.execute(req, { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' })).toEqual({ output: { ok: true }, cost_usd: 0.01 });
      const seen = fake.seen[0];
      expect(seen).toMatchObject({ method: 'POST', path: '/execute', body: req });
      expect(seen?.headers.traceparent).toBe('00-11111111111111111111111111111111-2222222222222222-01');
      expect(seen?.headers.authorization).toBe('Bearer s3cret');
      expect(seen?.headers['content-type']).toBe('application/json');
    } finally {
      await fake.close();
    }
  });

  it('EXECUTOR_UNREACHABLE (retryable) when nothing listens', async () => {
    const fake = await fakeExecutor(() => undefined);
    await fake.close();
    const e = await createExecutorClient({ name: 'gone', base_url: fake.url }).health().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EXECUTOR_UNREACHABLE', retryable: true, message: expect.stringContaining(`executor 'gone' at ${fake.url} is unreachable: ECONNREFUSED`) });
  });

  it('EXECUTOR_TIMEOUT (retryable) at the deadline; the caller’s abort wins with its own reason', async () => {
    const fake = await fakeExecutor(async (_r, res) => {
      await new Promise((r) => setTimeout(r, 2000));
      sendJson(res, 200, { output: {} });
    });
    try {
      const client = createExecutorClient({ name: 'slow', base_url: fake.url });
      const t0 = Date.now();
      const e = await client.execute(task({ deadline_ms: Date.now() + 300 })).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'EXECUTOR_TIMEOUT', retryable: true, message: expect.stringMatching(/executor 'slow' did not answer POST \/execute within \d+ ms/) });
      expect(Date.now() - t0).toBeLessThan(1500);
      const abort = new AbortController();
      setTimeout(() => abort.abort(new Error('cancelled')), 100);
      expect(await client.health({ signal: abort.signal }).catch((x: unknown) => x)).toMatchObject({ code: 'EXECUTOR_ABORTED', message: expect.stringContaining('cancelled') });
    } finally {
      await fake.close();
    }
  });

  it('EXECUTOR_HTTP_ERROR with the status: 5xx, 408 and 429 are retryable, other 4xx are not; problem detail in the message', async () => {
    const fake = await fakeExecutor((r, res) => {
      const status = Number(r.path.split('=')[1] ?? '500');
      sendJson(res, status, { title: 'x', status, code: 'SOME_CODE', detail: `failed with ${status}` }, 'application/problem+json');
    });
    try {
      for (const [status, retryable] of [
        [503, true],
        [500, true],
        [429, true],
        [408, true],
        [400, false],
        [404, false],
        [422, false],
      ] as const) {
        const client = createExecutorClient({ name: 'e', base_url: fake.url }, { fetch: (u, i) => fetch(`${u as string}?s=${status}`, i) });
        const e = await client.execute(task()).catch((x: unknown) => x);
        expect(e).toMatchObject({ code: 'EXECUTOR_HTTP_ERROR', status, retryable, message: `executor 'e' answered POST /execute with HTTP ${status}: SOME_CODE: failed with ${status}` });
      }
    } finally {
      await fake.close();
    }
  });

  it('EXECUTOR_BAD_RESPONSE (not retryable) for text, and for JSON that is not what the contract says', async () => {
    const fake = await fakeExecutor((r, res) => {
      if (r.path === '/health') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>proxy</html>');
      } else sendJson(res, 200, { evidence: 'none' });
    });
    try {
      const client = createExecutorClient({ name: 'bad', base_url: fake.url });
      expect(await client.health().catch((x: unknown) => x)).toMatchObject({ code: 'EXECUTOR_BAD_RESPONSE', retryable: false, message: expect.stringContaining('not JSON') });
      expect(await client.execute(task()).catch((x: unknown) => x)).toMatchObject({
        code: 'EXECUTOR_BAD_RESPONSE',
        retryable: false,
        message: expect.stringMatching(/malformed ExecuteResponse: .*must have required property 'output'/),
      });
    } finally {
      await fake.close();
    }
  });

  it('base URLs: http(s) with a host; no credentials, query or fragment', () => {
    expect(checkBaseUrl('http://127.0.0.1:8787/')).toBe('http://127.0.0.1:8787');
    expect(checkBaseUrl('https://api.example.com/runtime/')).toBe('https://api.example.com/runtime');
    expect(() => checkBaseUrl('127.0.0.1:8787')).toThrow(/scheme must be http or https|not a valid executor URL/);
    expect(() => checkBaseUrl('ftp://x')).toThrow(/scheme must be http or https, not ftp/);
    expect(() => checkBaseUrl('http://u:p@x')).toThrow(/must not carry credentials/);
    expect(() => checkBaseUrl('http://x/?a=1')).toThrow(/query or a fragment/);
    expect(() => checkBaseUrl('not a url')).toThrow(/not a valid executor URL/);
  });
});
