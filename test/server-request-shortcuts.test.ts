/**
 * The request path's shortcuts (src/server/request.ts, memo-router.ts, the scope memo of auth.ts)
 * give what the general way gives: the path `new URL()` parses, the headers a Fetch `Headers`
 * object holds (over real HTTP, where the shortcut reads Node's raw headers), the router's matches,
 * the scopes of the rules.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';
import { describe, expect, it } from 'vitest';
import { MemoRouter } from '../src/server/memo-router.js';
import { requestHeaders, requestPath } from '../src/server/request.js';
import { ROUTE_SCOPES, scopeFor } from '../src/server/auth.js';

const PATHS = [
  '/webhooks/orders',
  '/webhooks/shop/orders',
  '/webhooks/%61bc',
  '/webhooks/a%2Fb',
  '/webhooks/a%252Fb',
  '/webhooks/a/./b',
  '/webhooks/a/../b',
  '/webhooks/.hidden',
  '/webhooks/a;b=c,d',
  "/webhooks/a!$&'()*+:@~_-",
  '/workflows/shop/orders/trigger',
  '/webhooks/%E2%82%AC',
];

describe('requestPath', () => {
  it('is the pathname new URL() parses, for plain and escaped paths alike', async () => {
    const app = new Hono();
    app.all('*', (c) => c.json({ fast: requestPath(c), parsed: new URL(c.req.url).pathname }));
    for (const path of PATHS) {
      const res = await app.request(`http://localhost${path}?q=1`);
      const { fast, parsed } = (await res.json()) as { fast: string; parsed: string };
      expect(fast, path).toBe(parsed);
    }
  });
});

describe('requestHeaders', () => {
  it('over real HTTP: the same record as Object.fromEntries of the Fetch headers, repeated headers joined', async () => {
    const app = new Hono();
    app.post('*', (c) => c.json({ fast: requestHeaders(c), fetch: Object.fromEntries(c.req.raw.headers) }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      const { port } = server.address() as AddressInfo;
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/hook' }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.setHeader('Webhook-Id', 'msg_1');
        req.setHeader('webhook-signature', ['v1,AAAA', 'v1,BBBB']);
        req.setHeader('X-Custom', '  padded  ');
        req.setHeader('content-type', 'application/json');
        req.end('{}');
      });
      const { fast, fetch } = JSON.parse(body) as { fast: Record<string, string>; fetch: Record<string, string> };
      expect(fast).toEqual(fetch);
      expect(fast['webhook-signature']).toBe('v1,AAAA, v1,BBBB');
      expect(fast['webhook-id']).toBe('msg_1');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('in process (no Node request): the Fetch headers as a record', async () => {
    const app = new Hono();
    app.post('*', (c) => c.json(requestHeaders(c)));
    const res = await app.request('/hook', { method: 'POST', headers: { 'Webhook-Id': 'msg_2' }, body: '{}' });
    expect(await res.json()).toMatchObject({ 'webhook-id': 'msg_2' });
  });
});

describe('MemoRouter', () => {
  const routes: Array<[string, string]> = [
    ['POST', '/api/v1/workflows/:name/runs'],
    ['GET', '/api/v1/runs/stream'],
    ['GET', '/api/v1/runs/:id/stream'],
    ['GET', '/api/v1/runs/:id'],
    ['ALL', '*'],
  ];
  const build = <T>(router: { add(m: string, p: string, h: T): void }, handler: (i: number) => T): void => routes.forEach(([m, p], i) => router.add(m, p, handler(i)));

  it('matches as the router it wraps, the first time and when remembered', () => {
    const plain = new SmartRouter<number>({ routers: [new RegExpRouter(), new TrieRouter()] });
    const memo = new MemoRouter(new SmartRouter<number>({ routers: [new RegExpRouter(), new TrieRouter()] }));
    build(plain, (i) => i);
    build(memo, (i) => i);
    const asked: Array<[string, string]> = [
      ['POST', '/api/v1/workflows/hello/runs'],
      ['GET', '/api/v1/runs/stream'],
      ['GET', '/api/v1/runs/abc/stream'],
      ['GET', '/api/v1/runs/abc'],
      ['DELETE', '/nothing/here'],
      ['POST', `/api/v1/workflows/${'x'.repeat(300)}/runs`],
    ];
    const handlers = (r: ReturnType<typeof plain.match>): unknown => r[0].map(([h, p]) => [h, p]);
    for (let round = 0; round < 2; round++) {
      for (const [m, p] of asked) expect(handlers(memo.match(m, p)), `${m} ${p}`).toEqual(handlers(plain.match(m, p)));
    }
    expect(memo.name).toBe(plain.name);
  });
});

describe('scopeFor', () => {
  it('answers as the rules do, asked once or many times', () => {
    const asked: Array<[string, string]> = [
      ['POST', '/api/v1/workflows/hello/runs'],
      ['GET', '/api/v1/workflows/hello/runs'],
      ['POST', '/api/v1/tokens'],
      ['GET', '/healthz'],
      ['POST', '/webhooks/orders'],
      ['PUT', '/api/v1/unknown'],
      ['GET', `/api/v1/runs/${'y'.repeat(300)}`],
    ];
    const first = asked.map(([m, p]) => scopeFor(m, p));
    expect(first).toEqual(['runs:write', 'read', 'admin', 'public', 'public', 'admin', 'read']);
    for (let i = 0; i < 3; i++) expect(asked.map(([m, p]) => scopeFor(m, p))).toEqual(first);
    expect(ROUTE_SCOPES.length).toBeGreaterThan(10);
  });
});
