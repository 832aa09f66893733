/**
 * Authentication of the HTTP API in process (`app.request()`): open while no token exists, then 401
 * for a missing, malformed, unknown, expired or revoked token (with WWW-Authenticate: Bearer), 403
 * naming the scope a route needs, the public routes, stream tokens only on `…/stream` GETs, the
 * cookie (same-origin writes only), the token routes, and the `required` and `off` modes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/server/app.js';
import { Hono } from 'hono';
import { authMiddleware, principalOf, scopeFor } from '../src/server/auth.js';
import type { Swarm } from '../src/swarm.js';
import { EXAMPLES, openProject, removeProject, tempProject } from './helpers/project.js';

type Json = Record<string, unknown>;
type App = ReturnType<typeof createApp>;

let dir: string;
let swarm: Swarm;
let app: App;

interface Answer {
  status: number;
  json: Json;
  headers: Headers;
  text: string;
}

async function call(target: App, method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers };
  const res = await target.request(path, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) });
  const text = await res.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = {};
  }
  return { status: res.status, json, headers: res.headers, text };
}

function expectProblem(r: Answer, status: number, code: string): Json {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toBe('application/problem+json');
  expect(r.json).toMatchObject({ status, code });
  return r.json;
}

/** A token written straight into the store (to make one that has already expired). */
async function plantToken(scopes: string, over: { expires_at?: number | null; revoked_at?: number | null } = {}): Promise<string> {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('hex');
  await swarm.store.putApiToken({ id, name: 'planted', secret_hash: createHash('sha256').update(secret).digest('hex'), scopes, created_at: Date.now() - 10_000, expires_at: over.expires_at ?? null, last_used_at: null, revoked_at: over.revoked_at ?? null });
  return `swarm_${id}_${secret}`;
}

/** Routes only this test has, to see who the middleware let through. */
function addProbes(target: App): void {
  target.get('/api/v1/probe', (c) => c.json({ principal: principalOf(c) }));
  target.get('/api/v1/probe/stream', (c) => c.json({ principal: principalOf(c) }));
}

const tokens: Record<'admin' | 'read' | 'run' | 'approve', string> = { admin: '', read: '', run: '', approve: '' };

beforeAll(async () => {
  dir = tempProject('name: auth-test\nsandbox: none\n');
  swarm = await openProject(dir);
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  await swarm.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
  app = createApp(swarm, { version: '9.9.9' });
  addProbes(app);
});

afterAll(async () => {
  await swarm.close();
  removeProject(dir);
});

describe('the route table', () => {
  it('reads need read, run writes runs:write, approvals approvals:write, tokens and secrets and switches admin, anything else written admin', () => {
    expect(scopeFor('GET', '/api/v1/runs')).toBe('read');
    expect(scopeFor('GET', '/webhooks')).toBe('read');
    expect(scopeFor('POST', '/api/v1/workflows/echo-chain/runs')).toBe('runs:write');
    expect(scopeFor('POST', '/api/v1/runs/abc/cancel')).toBe('runs:write');
    expect(scopeFor('POST', '/api/v1/events')).toBe('runs:write');
    expect(scopeFor('POST', '/api/v1/approvals/r1/s1/approve')).toBe('approvals:write');
    expect(scopeFor('POST', '/api/v1/runs/r1/approvals/c1/approve')).toBe('approvals:write');
    expect(scopeFor('GET', '/api/v1/tokens')).toBe('admin');
    expect(scopeFor('DELETE', '/api/v1/tokens/abc')).toBe('admin');
    expect(scopeFor('GET', '/api/v1/secrets')).toBe('admin');
    expect(scopeFor('POST', '/api/v1/workflows/echo-chain/disable')).toBe('admin');
    expect(scopeFor('POST', '/api/v1/schedules/nightly/pause')).toBe('admin');
    expect(scopeFor('POST', '/api/v1/stream-tokens')).toBe('read');
    expect(scopeFor('PUT', '/api/v1/something-new')).toBe('admin');
    for (const [m, p] of [['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/health'], ['POST', '/webhooks/orders'], ['POST', '/workflows/orders/trigger'], ['GET', '/api/v1/openapi.json'], ['GET', '/api/v1/docs'], ['GET', '/api/v1/docs/swagger-ui.css']] as const) {
      expect(scopeFor(m, p), `${m} ${p}`).toBe('public');
    }
    // Only reads of the API's description are public.
    expect(scopeFor('POST', '/api/v1/openapi.json')).toBe('admin');
  });
});

describe('authentication, in order: open, then tokens', () => {
  it('with no token the API is open; the first token can be created over it (local development)', async () => {
    expect((await call(app, 'GET', '/api/v1/runs')).status).toBe(200);
    expect((await call(app, 'GET', '/api/v1/probe')).json).toEqual({ principal: null });
    const created = await call(app, 'POST', '/api/v1/tokens', { body: { name: 'root', scopes: ['admin'] } });
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.json).toMatchObject({ name: 'root', scopes: ['admin'], status: 'active', expires_at: null, revoked_at: null });
    expect(created.json.token).toMatch(/^swarm_[0-9a-f]{12}_[0-9a-f]{64}$/);
    tokens.admin = created.json.token as string;
  });

  it('once a token exists: no token → 401 AUTH_REQUIRED with WWW-Authenticate: Bearer', async () => {
    const r = await call(app, 'GET', '/api/v1/runs');
    expectProblem(r, 401, 'AUTH_REQUIRED');
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="swarm"');
    expect(r.json.detail).toContain('Authorization: Bearer <token>');
    // An HTTP client is told the API route, not a command of the server's CLI.
    expect(r.json.detail).toMatch(/^this API requires a token: send Authorization: Bearer <token>, a token with the '[a-z:]+' scope \(an admin token creates one: POST \/api\/v1\/tokens\)$/);
    expectProblem(await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { body: { input: { message: 'x' } } }), 401, 'AUTH_REQUIRED');
  });

  it('tokens of each scope, made over the API by the admin token; the list never shows a secret', async () => {
    for (const [key, scopes] of [['read', 'read'], ['run', 'run'], ['approve', ['approve']]] as const) {
      const r = await call(app, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { name: key, scopes, expires: '30d' } });
      expect(r.status, r.text).toBe(201);
      tokens[key] = r.json.token as string;
    }
    const list = await call(app, 'GET', '/api/v1/tokens', { token: tokens.admin });
    expect(list.status).toBe(200);
    expect((list.json.tokens as Json[]).map((t) => [t.name, t.scopes])).toEqual([['root', ['admin']], ['read', ['read']], ['run', ['runs:write']], ['approve', ['approvals:write']]]);
    for (const t of Object.values(tokens)) expect(list.text).not.toContain(t.split('_')[2]);
    expect(list.text).not.toContain('secret_hash');
    expectProblem(await call(app, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { scopes: 'read,wirte' } }), 422, 'TOKEN_SCOPE_INVALID');
    expectProblem(await call(app, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { scopes: 'read', expires: 'yesterday' } }), 422, 'TOKEN_EXPIRY_INVALID');
    expectProblem(await call(app, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { scopes: [] } }), 422, 'VALIDATION_FAILED');
  });

  it('malformed, unknown and altered tokens → 401 TOKEN_INVALID (error="invalid_token")', async () => {
    const basic = await call(app, 'GET', '/api/v1/runs', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expectProblem(basic, 401, 'TOKEN_INVALID');
    expect(basic.headers.get('www-authenticate')).toMatch(/^Bearer realm="swarm", error="invalid_token"/);
    expectProblem(await call(app, 'GET', '/api/v1/runs', { token: 'not-a-token' }), 401, 'TOKEN_INVALID');
    const altered = tokens.read.slice(0, -1) + (tokens.read.endsWith('a') ? 'b' : 'a');
    expectProblem(await call(app, 'GET', '/api/v1/runs', { token: altered }), 401, 'TOKEN_INVALID');
    expectProblem(await call(app, 'GET', '/api/v1/runs', { token: `swarm_ffffffffffff_${tokens.read.split('_')[2]}` }), 401, 'TOKEN_INVALID');
  });

  it('an expired token → 401 TOKEN_EXPIRED; a revoked one (DELETE /api/v1/tokens/{id}) → 401 TOKEN_REVOKED at once', async () => {
    const expired = await plantToken('read', { expires_at: Date.now() - 1000 });
    const r = expectProblem(await call(app, 'GET', '/api/v1/runs', { token: expired }), 401, 'TOKEN_EXPIRED');
    expect(r.detail).toMatch(/expired at \d{4}-/);
    const doomed = await call(app, 'POST', '/api/v1/tokens', { token: tokens.admin, body: { name: 'doomed', scopes: 'read' } });
    expect((await call(app, 'GET', '/api/v1/runs', { token: doomed.json.token as string })).status).toBe(200);
    const revoked = await call(app, 'DELETE', `/api/v1/tokens/${doomed.json.id as string}`, { token: tokens.admin });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json).toMatchObject({ id: doomed.json.id, status: 'revoked', revoked_at: expect.any(String) as unknown });
    expectProblem(await call(app, 'GET', '/api/v1/runs', { token: doomed.json.token as string }), 401, 'TOKEN_REVOKED');
    expectProblem(await call(app, 'DELETE', '/api/v1/tokens/abcdefabcdef', { token: tokens.admin }), 404, 'TOKEN_NOT_FOUND');
  });

  it('a token without the route’s scope → 403 TOKEN_SCOPE_INSUFFICIENT naming the scope; with it, the route answers', async () => {
    const start = { body: { input: { message: 'hi' } } };
    const noRun = expectProblem(await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { token: tokens.read, ...start }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expect(noRun).toMatchObject({ required_scope: 'runs:write', token_scopes: ['read'] });
    expect(noRun.detail).toContain("needs the 'runs:write' scope");
    const created = await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { token: tokens.run, ...start });
    expect(created.status, created.text).toBe(201);
    // A write scope does not grant read.
    const r = await call(app, 'GET', `/api/v1/runs/${created.json.run_id as string}`, { token: tokens.run });
    expectProblem(r, 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="swarm", error="insufficient_scope", scope="read"');
    expect((await call(app, 'GET', `/api/v1/runs/${created.json.run_id as string}`, { token: tokens.read })).status).toBe(200);
    expect((await call(app, 'GET', `/api/v1/runs/${created.json.run_id as string}`, { token: tokens.admin })).status).toBe(200);
    // Admin routes: the token list, a workflow switch, anything written that the table does not name.
    expectProblem(await call(app, 'GET', '/api/v1/tokens', { token: tokens.read }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expectProblem(await call(app, 'POST', '/api/v1/workflows/echo-chain/disable', { token: tokens.run }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expectProblem(await call(app, 'POST', '/api/v1/not-a-route', { token: tokens.run }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expectProblem(await call(app, 'POST', '/api/v1/not-a-route', { token: tokens.admin }), 404, 'ROUTE_NOT_FOUND');
    // approvals:write gets past the middleware on approval routes (404: no such run), not elsewhere.
    expectProblem(await call(app, 'POST', '/api/v1/approvals/r/s/approve', { token: tokens.approve }), 404, 'RUN_NOT_FOUND');
    expectProblem(await call(app, 'POST', '/api/v1/approvals/r/s/approve', { token: tokens.run }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expectProblem(await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { token: tokens.approve, ...start }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    expect((await call(app, 'GET', '/api/v1/probe', { token: tokens.read })).json).toMatchObject({ principal: { kind: 'token', name: 'read', scopes: ['read'] } });
  });

  it('public routes answer without a token: probes, the API description, webhooks and seed triggers (signatures authenticate those)', async () => {
    for (const p of ['/healthz', '/readyz', '/health', '/api/v1/openapi.json', '/api/v1/docs']) expect((await call(app, 'GET', p)).status, p).toBe(200);
    // No webhook at this path: 404 from the route, not 401 (the middleware let them through).
    expectProblem(await call(app, 'POST', '/webhooks/orders', { body: {} }), 404, 'WEBHOOK_NOT_FOUND');
    expectProblem(await call(app, 'POST', '/workflows/orders/trigger', { body: {} }), 404, 'WEBHOOK_NOT_FOUND');
    expectProblem(await call(app, 'GET', '/webhooks'), 401, 'AUTH_REQUIRED');
  });

  it('stream tokens: minted with read, accepted as ?access_token= only on GET …/stream; API tokens never in the query', async () => {
    expectProblem(await call(app, 'POST', '/api/v1/stream-tokens', { token: tokens.run }), 403, 'TOKEN_SCOPE_INSUFFICIENT');
    const minted = await call(app, 'POST', '/api/v1/stream-tokens', { token: tokens.read });
    expect(minted.status, minted.text).toBe(201);
    expect(minted.headers.get('cache-control')).toBe('no-store');
    expect(minted.json).toMatchObject({ scopes: ['read'] });
    const st = minted.json.token as string;
    expect(Date.parse(minted.json.expires_at as string) - Date.now()).toBeLessThanOrEqual(5 * 60_000);
    // The stream routes, as the middleware sees them (a probe in place of the stream).
    const streams = new Hono();
    streams.use('*', authMiddleware(swarm));
    streams.get('/api/v1/runs/:id/stream', (c) => c.json({ principal: principalOf(c) }));
    streams.get('/api/v1/workflows/:name/stream', (c) => c.json({ principal: principalOf(c) }));
    const ok = await call(streams as unknown as App, 'GET', `/api/v1/runs/0001/stream?access_token=${st}`);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json).toMatchObject({ principal: { kind: 'stream', name: 'read', scopes: ['read'] } });
    // Only the event streams: not any route whose path happens to end in /stream.
    expectProblem(await call(streams as unknown as App, 'GET', `/api/v1/workflows/stream/stream?access_token=${st}`), 401, 'AUTH_QUERY_TOKEN_REFUSED');
    expectProblem(await call(app, 'GET', `/api/v1/probe/stream?access_token=${st}`), 401, 'AUTH_QUERY_TOKEN_REFUSED');
    // Elsewhere: not in the query, not as a bearer token either.
    expectProblem(await call(app, 'GET', `/api/v1/probe?access_token=${st}`), 401, 'AUTH_QUERY_TOKEN_REFUSED');
    expectProblem(await call(app, 'GET', '/api/v1/probe', { token: st }), 401, 'TOKEN_INVALID');
    expectProblem(await call(app, 'POST', `/api/v1/runs/0001/stream?access_token=${st}`), 401, 'AUTH_QUERY_TOKEN_REFUSED');
    // A long-lived API token in a URL would land in logs: refused even on a stream route.
    expectProblem(await call(app, 'GET', `/api/v1/runs/0001/stream?access_token=${tokens.read}`), 401, 'AUTH_QUERY_TOKEN_REFUSED');
    const altered = st.slice(0, -1) + (st.endsWith('a') ? 'b' : 'a');
    expectProblem(await call(app, 'GET', `/api/v1/runs/0001/stream?access_token=${altered}`), 401, 'TOKEN_INVALID');
  });

  it('the swarm_token cookie: reads; writes only from this origin (Origin header), else 403', async () => {
    expect((await call(app, 'GET', '/api/v1/probe', { headers: { cookie: `swarm_token=${tokens.read}` } })).json).toMatchObject({ principal: { name: 'read' } });
    const body = { input: { message: 'from the dashboard' } };
    expectProblem(await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { body, headers: { cookie: `swarm_token=${tokens.run}` } }), 403, 'AUTH_COOKIE_CROSS_ORIGIN');
    expectProblem(await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { body, headers: { cookie: `swarm_token=${tokens.run}`, origin: 'https://evil.example' } }), 403, 'AUTH_COOKIE_CROSS_ORIGIN');
    const same = await call(app, 'POST', '/api/v1/workflows/echo-chain/runs', { body, headers: { cookie: `swarm_token=${tokens.run}`, origin: 'http://localhost' } });
    expect(same.status, same.text).toBe(201);
    expectProblem(await call(app, 'GET', '/api/v1/runs', { headers: { cookie: 'swarm_token=nonsense' } }), 401, 'TOKEN_INVALID');
  });

  it('the dashboard session: POST /api/v1/session checks the token and sets an HttpOnly SameSite=Strict cookie; bad, stream and cross-origin sign-ins are refused; DELETE removes it', async () => {
    const open = await call(app, 'GET', '/api/v1/session');
    expect(open.json).toEqual({ auth_required: true, authenticated: false, token_id: null, name: null, scopes: [] });
    expect(open.headers.get('cache-control')).toBe('no-store');
    const signed = await call(app, 'POST', '/api/v1/session', { body: { token: tokens.read }, headers: { origin: 'http://localhost' } });
    expect(signed.status, signed.text).toBe(200);
    expect(signed.json).toMatchObject({ authenticated: true, name: 'read', scopes: ['read'] });
    const cookie = signed.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^swarm_token=${tokens.read};`));
    for (const part of ['HttpOnly', 'SameSite=Strict', 'Path=/']) expect(cookie).toContain(part);
    // As long as the token lasts, at most 30 days.
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(30 * 86_400);
    expect(cookie).not.toContain('Secure'); // plain http here; https sets it
    expect((await call(app, 'GET', '/api/v1/session', { headers: { cookie: `swarm_token=${tokens.read}` } })).json).toMatchObject({ authenticated: true, name: 'read' });
    for (const bad of ['swarm_ffffffffffff_nope', '']) {
      const r = await call(app, 'POST', '/api/v1/session', { body: { token: bad } });
      expect(r.headers.get('set-cookie')).toBeNull();
      expect(r.status).toBe(bad === '' ? 422 : 401);
    }
    const stream = (await call(app, 'POST', '/api/v1/stream-tokens', { token: tokens.read })).json.token as string;
    expectProblem(await call(app, 'POST', '/api/v1/session', { body: { token: stream } }), 401, 'TOKEN_INVALID');
    // Behind a proxy that ends TLS: the page is https, the request http, the host the same.
    const proxied = await call(app, 'POST', '/api/v1/session', { body: { token: tokens.read }, headers: { origin: 'https://swarm.example', host: 'swarm.example', 'x-forwarded-proto': 'https' } });
    expect(proxied.status, proxied.text).toBe(200);
    expect(proxied.headers.get('set-cookie')).toContain('Secure');
    const evil = await call(app, 'POST', '/api/v1/session', { body: { token: tokens.read }, headers: { origin: 'https://evil.example' } });
    expectProblem(evil, 403, 'AUTH_COOKIE_CROSS_ORIGIN');
    expect(evil.headers.get('set-cookie')).toBeNull();
    const out = await call(app, 'DELETE', '/api/v1/session');
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^swarm_token=; Max-Age=0;/);
  });

  it('last_used_at is recorded (in the background, at most once a minute)', async () => {
    const id = tokens.read.split('_')[1] ?? '';
    const listed = (await swarm.listTokens()).find((t) => t.id === id);
    expect(listed?.last_used_at).toEqual(expect.any(Number));
  });
});

describe('modes', () => {
  it('required: 401 even with no token at all; off: open even with tokens', async () => {
    const other = tempProject('name: auth-modes\nsandbox: none\n');
    const s = await openProject(other);
    try {
      const required = createApp(s, { auth: 'required' });
      expectProblem(await call(required, 'GET', '/api/v1/runs'), 401, 'AUTH_REQUIRED');
      expect((await call(required, 'GET', '/healthz')).status).toBe(200);
      await s.createToken({ scopes: ['read'] });
      const off = createApp(s, { auth: 'off' });
      expect((await call(off, 'GET', '/api/v1/runs')).status).toBe(200);
    } finally {
      await s.close();
      removeProject(other);
    }
  });
});

describe('an open API (no token) and web pages', () => {
  it('answers only requests addressed to a loopback name, and refuses writes from another origin', async () => {
    const other = tempProject('name: auth-open\nsandbox: none\n');
    const s = await openProject(other);
    try {
      await s.registerAgent(join(EXAMPLES, 'agents', 'echo'));
      await s.registerWorkflow(join(EXAMPLES, 'workflows', 'echo-chain'));
      const open = createApp(s);
      // DNS rebinding: a page under its own name reaching this server.
      const host = expectProblem(await call(open, 'GET', '/api/v1/runs', { headers: { host: 'evil.example:8090' } }), 403, 'HOST_REFUSED');
      expect(host).toMatchObject({ hint: 'POST /api/v1/tokens' });
      expect(String(host.detail)).not.toMatch(/'swarm /);
      expectProblem(await call(open, 'POST', '/api/v1/tokens', { headers: { host: 'evil.example:8090' }, body: { scopes: ['admin'] } }), 403, 'HOST_REFUSED');
      for (const host of ['localhost:8090', '127.0.0.1:8090', '[::1]:8090']) expect((await call(open, 'GET', '/api/v1/runs', { headers: { host } })).status, host).toBe(200);
      // A cross-site form or fetch: its Origin is not this server's.
      const origin = expectProblem(await call(open, 'POST', '/api/v1/workflows/echo-chain/disable', { headers: { host: '127.0.0.1:8090', origin: 'http://evil.example' } }), 403, 'ORIGIN_REFUSED');
      expect(origin).toMatchObject({ hint: 'POST /api/v1/tokens' });
      expect(String(origin.detail)).not.toMatch(/'swarm /);
      expectProblem(await call(open, 'POST', '/api/v1/workflows/echo-chain/runs', { headers: { host: '127.0.0.1:8090', origin: 'null' }, body: { input: { message: 'x' } } }), 403, 'ORIGIN_REFUSED');
      expect((await s.listRuns({ limit: 5 })).length).toBe(0);
      expect((await s.listWorkflows()).every((w) => w.enabled)).toBe(true);
      // The same origin (the server's own page), and clients that send no Origin (curl), may write.
      expect((await call(open, 'POST', '/api/v1/workflows/echo-chain/runs', { headers: { host: '127.0.0.1:8090', origin: 'http://127.0.0.1:8090' }, body: { input: { message: 'x' } } })).status).toBe(201);
      expect((await call(open, 'POST', '/api/v1/workflows/echo-chain/runs', { body: { input: { message: 'y' } } })).status).toBe(201);
      // Served on a non-loopback address with --insecure: any host name.
      const anyHost = createApp(s, { openToAnyHost: true });
      expect((await call(anyHost, 'GET', '/api/v1/runs', { headers: { host: '10.1.2.3:8090' } })).status).toBe(200);
    } finally {
      await s.close();
      removeProject(other);
    }
  });
});

describe('an open event stream and its token', () => {
  it('ends with an end event once the token it was opened with is revoked', async () => {
    const other = tempProject('name: auth-stream\nsandbox: none\n');
    const s = await openProject(other);
    try {
      const { token, info } = await s.createToken({ name: 'watcher', scopes: ['read'] });
      const streaming = createApp(s, { sseAuthCheckMs: 50 });
      const res = await streaming.request('/api/v1/runs/stream', { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain('retry:');
      await s.revokeToken(info.id);
      let text = '';
      const deadline = Date.now() + 10_000;
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += new TextDecoder().decode(chunk.value);
        if (Date.now() > deadline) throw new Error(`the stream did not end after the revocation: ${text}`);
      }
      expect(text).toContain('event: end');
      expect(text).toContain('token_no_longer_valid');
    } finally {
      await s.close();
      removeProject(other);
    }
  });
});
