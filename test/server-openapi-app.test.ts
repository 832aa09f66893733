/**
 * SwarmOpenAPIHono checks a route's request in one middleware; `@hono/zod-openapi` does it in one
 * per part. The same routes on both, the same requests (good ones and every kind of bad one): the
 * same answers, the same validated values in the handler, the same OpenAPI document.
 */
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { SwarmOpenAPIHono } from '../src/server/openapi-app.js';

const Body = z.object({ input: z.record(z.string(), z.unknown()).optional(), version: z.string().regex(/^\d+\.\d+\.\d+$/).optional() }).strict();

const create = createRoute({
  method: 'post',
  path: '/things/{name}/runs',
  request: {
    params: z.object({ name: z.string().min(2) }),
    query: z.object({ wait: z.string().regex(/^\d+s$/).optional(), tag: z.array(z.string()).or(z.string()).optional() }),
    headers: z.object({ 'Idempotency-Key': z.string().min(1).max(8).optional() }),
    body: { required: false, content: { 'application/json': { schema: Body } } },
  },
  responses: { 200: { description: 'ok' } },
});

const required = createRoute({
  method: 'put',
  path: '/things/{name}',
  request: {
    params: z.object({ name: z.string() }),
    body: { required: true, content: { 'application/json': { schema: z.object({ n: z.number().int() }) } } },
  },
  responses: { 200: { description: 'ok' } },
});

// An async refinement: a synchronous parse cannot run it.
const asyncCheck = createRoute({
  method: 'post',
  path: '/checked',
  request: { body: { required: true, content: { 'application/json': { schema: z.object({ n: z.number() }).refine(async (v) => Promise.resolve(v.n > 0), { message: 'must be positive' }) } } } },
  responses: { 200: { description: 'ok' } },
});

const plain = createRoute({ method: 'get', path: '/plain', responses: { 200: { description: 'ok' } } });

function build(App: new (init: ConstructorParameters<typeof SwarmOpenAPIHono>[0]) => OpenAPIHono): OpenAPIHono {
  const app = new App({
    defaultHook: (result, c) => (result.success ? undefined : c.json({ code: 'VALIDATION_FAILED', target: result.target, issues: result.error.issues.map((i) => [i.path.join('.'), i.code]) }, 422)),
  });
  const echo = (c: Context, parts: string[]): Response => {
    const req = c.req as unknown as { valid(target: string): unknown };
    return c.json(Object.fromEntries(parts.map((p) => [p, req.valid(p) ?? null])), 200);
  };
  app.openapi(create, (c) => echo(c, ['param', 'query', 'header', 'json']));
  app.openapi(required, (c) => echo(c, ['param', 'json']));
  app.openapi(asyncCheck, (c) => echo(c, ['json']));
  app.openapi(plain, (c) => c.json({ ok: true }, 200));
  app.onError((e, c) => (e instanceof HTTPException ? c.json({ status: e.status, message: e.message }, e.status) : c.json({ error: String(e) }, 500)));
  return app;
}

const json = { 'content-type': 'application/json' };
const REQUESTS: Array<[string, RequestInit & { path: string }]> = [
  ['a good request', { path: '/things/abc/runs?wait=3s', method: 'POST', headers: { ...json, 'idempotency-key': 'k1' }, body: JSON.stringify({ input: { a: 1 }, version: '1.0.0' }) }],
  ['no body, no content type', { path: '/things/abc/runs', method: 'POST' }],
  ['an empty JSON object', { path: '/things/abc/runs', method: 'POST', headers: json, body: '{}' }],
  ['a content type with a charset', { path: '/things/abc/runs', method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"input":{}}' }],
  ['a +json media type', { path: '/things/abc/runs', method: 'POST', headers: { 'content-type': 'application/vnd.thing+json' }, body: '{"input":{}}' }],
  ['a query given twice', { path: '/things/abc/runs?tag=a&tag=b', method: 'POST' }],
  ['a bad query', { path: '/things/abc/runs?wait=soon', method: 'POST', headers: json, body: '{}' }],
  ['a bad parameter', { path: '/things/a/runs', method: 'POST', headers: json, body: '{}' }],
  ['a bad header (and a bad body after it)', { path: '/things/abc/runs', method: 'POST', headers: { ...json, 'idempotency-key': 'much-too-long' }, body: '{"nope":1}' }],
  ['an unknown field', { path: '/things/abc/runs', method: 'POST', headers: json, body: '{"nope":1}' }],
  ['a wrong type', { path: '/things/abc/runs', method: 'POST', headers: json, body: '{"version":1}' }],
  ['malformed JSON', { path: '/things/abc/runs', method: 'POST', headers: json, body: '{"input":' }],
  ['a form body', { path: '/things/abc/runs', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' }],
  ['text/plain', { path: '/things/abc/runs', method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' }],
  ['a required body missing', { path: '/things/x', method: 'PUT' }],
  ['a required body without a content type', { path: '/things/x', method: 'PUT', body: '{"n":1}' }],
  ['a required body, good', { path: '/things/x', method: 'PUT', headers: json, body: '{"n":1}' }],
  ['a required body, wrong', { path: '/things/x', method: 'PUT', headers: json, body: '{"n":1.5}' }],
  ['an async refinement that holds', { path: '/checked', method: 'POST', headers: json, body: '{"n":1}' }],
  ['an async refinement that fails', { path: '/checked', method: 'POST', headers: json, body: '{"n":-1}' }],
  ['a route without request parts', { path: '/plain', method: 'GET' }],
];

describe('SwarmOpenAPIHono', () => {
  const library = build(OpenAPIHono);
  const ours = build(SwarmOpenAPIHono);

  it.each(REQUESTS)('%s: the same answer as @hono/zod-openapi', async (_, { path, ...init }) => {
    const [a, b] = await Promise.all([library.request(path, init), ours.request(path, init)]);
    const [ta, tb] = await Promise.all([a.text(), b.text()]);
    expect({ status: b.status, body: tb }).toEqual({ status: a.status, body: ta });
  });

  it('answers the cases above as expected (not only alike)', async () => {
    const status = async (i: number): Promise<number> => {
      const [, { path, ...init }] = REQUESTS[i] as [string, RequestInit & { path: string }];
      return (await ours.request(path, init)).status;
    };
    expect(await Promise.all(REQUESTS.map((_, i) => status(i)))).toEqual([200, 200, 200, 200, 200, 200, 422, 422, 422, 422, 422, 400, 415, 415, 422, 415, 200, 422, 200, 422, 200]);
    const good = (await (await ours.request('/things/abc/runs?wait=3s', { method: 'POST', headers: { ...json, 'Idempotency-Key': 'k1', 'x-other': 'dropped' }, body: '{"input":{"a":1}}' })).json()) as Record<string, unknown>;
    expect(good).toEqual({ param: { name: 'abc' }, query: { wait: '3s' }, header: { 'Idempotency-Key': 'k1' }, json: { input: { a: 1 } } });
  });

  it('takes an optional JSON body sent empty as no body, where the library answers 400 (the one difference)', async () => {
    for (const body of ['', '  \n']) {
      const init = { method: 'POST', headers: json, body };
      const [a, b] = await Promise.all([library.request('/things/abc/runs', init), ours.request('/things/abc/runs', init)]);
      expect(a.status).toBe(400);
      expect(b.status).toBe(200);
      expect(((await b.json()) as { json: unknown }).json).toEqual({});
    }
    // A required body sent empty is still malformed JSON.
    const required = await ours.request('/things/x', { method: 'PUT', headers: json, body: '' });
    expect(required.status).toBe(400);
  });

  it('documents the routes as the library does', () => {
    const doc = (app: OpenAPIHono): unknown => app.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 't', version: '1' } });
    expect(doc(ours)).toEqual(doc(library));
  });
});
