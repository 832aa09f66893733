/**
 * The dashboard's pages on a `swarm serve` that requires a token (one exists), over real HTTP: a
 * browser asking for a page no route serves gets the dashboard's 404 page (the app, which says "No
 * such page") with or without a token, as it gets the known pages (the login follows from the app);
 * not the API's 401 problem document. API paths, clients that do not ask for HTML, other methods, and
 * paths a route serves keep their problem documents.
 * Build first (`npm run build`): the CLI runs from dist/, the pages from dist/web.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, makeSandbox, show, until, type CliResult } from './helpers/cli.js';

const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

let url: string;
let token: string;
let server: { child: ChildProcess; done: Promise<CliResult> } | undefined;
let output = '';

beforeAll(async () => {
  const s = makeSandbox();
  const made = await s.run(['tokens', 'create', '--name', 'dash', '--scope', 'read']);
  expect(made.code, show(made)).toBe(0);
  token = made.stdout.trim();
  server = s.start(['serve', '--port', '0', '--no-worker'], { timeoutMs: 120_000 });
  server.child.stdout?.on('data', (d: Buffer | string) => (output += String(d)));
  server.child.stderr?.on('data', (d: Buffer | string) => (output += String(d)));
  url = (await until('the start-up line', async () => /listening on (http:\/\/\S+)/.exec(output)?.[1], 30_000, 50).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${output}`);
  })).replace(/\/$/, '');
  expect(output).not.toContain('API open');
});

afterAll(async () => {
  if (server && server.child.exitCode === null) server.child.kill('SIGTERM');
  await server?.done;
  cleanupSandboxes();
});

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const res = await fetch(`${url}${path}`, { method, headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), headers: res.headers };
}

function expectProblem(r: { status: number; type: string; text: string }, status: number, code: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.type).toBe('application/problem+json');
  expect((JSON.parse(r.text) as { code: string }).code).toBe(code);
}

describe('an unknown dashboard page on a server that requires a token', () => {
  it('a browser gets the dashboard’s 404 page, signed in or not, like the known pages it gets without a token', async () => {
    // A known page without a token: the app (which sends the browser to /login).
    const known = await get('/runs', BROWSER);
    expect(known.status).toBe(200);
    expect(known.type).toMatch(/^text\/html/);
    expect(known.text).toContain('<div id="root">');

    for (const path of ['/dashboard/no-such-page', '/dashboard', '/no/such/page?x=1']) {
      const anonymous = await get(path, BROWSER);
      expect(anonymous.status, `${path}: ${anonymous.text}`).toBe(404);
      expect(anonymous.type).toMatch(/^text\/html/);
      expect(anonymous.text).toBe(known.text);
      expect(anonymous.headers.get('www-authenticate')).toBeNull();
      expect(anonymous.headers.get('content-security-policy')).toBe(known.headers.get('content-security-policy'));
      // What a signed-in browser gets for it: the same page.
      const signedIn = await get(path, { ...BROWSER, cookie: `swarm_token=${token}` });
      expect([signedIn.status, signedIn.type.split(';')[0], signedIn.text]).toEqual([404, 'text/html', known.text]);
      // A cookie that is no longer valid changes nothing either (the app sends the browser to /login).
      const stale = await get(path, { ...BROWSER, cookie: 'swarm_token=swarm_nope_nope' });
      expect([stale.status, stale.text]).toEqual([404, known.text]);
      expect((await get(path, BROWSER, 'HEAD')).status).toBe(404);
    }
  });

  it('API paths, clients that do not ask for HTML, writes, and paths a route serves keep the problem documents', async () => {
    expectProblem(await get('/api/v1/no-such-route', BROWSER), 401, 'AUTH_REQUIRED');
    expectProblem(await get('/api/v1/runs', BROWSER), 401, 'AUTH_REQUIRED');
    expectProblem(await get('/api/v1/no-such-route', { ...BROWSER, authorization: `Bearer ${token}` }), 404, 'ROUTE_NOT_FOUND');
    expectProblem(await get('/dashboard/no-such-page'), 401, 'AUTH_REQUIRED');
    expectProblem(await get('/dashboard/no-such-page', { accept: 'application/json' }), 401, 'AUTH_REQUIRED');
    expectProblem(await get('/dashboard/no-such-page', { authorization: `Bearer ${token}` }), 404, 'ROUTE_NOT_FOUND');
    expectProblem(await get('/dashboard/no-such-page', BROWSER, 'POST'), 401, 'AUTH_REQUIRED');
    // A route that exists outside /api keeps its authentication for a browser too.
    expectProblem(await get('/metrics', BROWSER), 401, 'AUTH_REQUIRED');
    expectProblem(await get('/webhooks', BROWSER), 401, 'AUTH_REQUIRED');
  });
});
