/**
 * The dashboard against a real `swarm serve` in a real headless Chromium: the pages are served with
 * their assets (an unknown page is the app's own not-found page), a run created elsewhere appears in
 * the list without a reload, a run's DAG nodes change color as its steps finish, a workflow's static
 * DAG is labelled as on a run's page and no edge crosses a node it does not connect, and a login is
 * required (and works) once tokens exist.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../helpers/cli.js';
import { browserFile, call, examplesProject, newPage, screenshot, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;

browserFile(async () => {
  s = await examplesProject();
  return (srv = await serve(s));
});

describe('the dashboard (real serve, real Chromium)', () => {
  it('serves its pages with their assets from this server only, and answers an unknown API path with a problem, not the page', async () => {
    const res = await fetch(`${srv.url}/runs/abc`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await res.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const a of assets) {
      const r = await fetch(`${srv.url}${a}`);
      expect(r.status, a).toBe(200);
      expect(r.headers.get('cache-control')).toContain('immutable');
    }
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
    const api = await fetch(`${srv.url}/api/v1/nope`, { headers: { accept: 'text/html' } });
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toContain('application/problem+json');
    // A page that does not exist: a browser gets the app (which says so), with a 404; a client
    // that does not ask for HTML keeps the problem document.
    const missing = await fetch(`${srv.url}/nosuchpage`, { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${srv.url}/nosuchpage`)).headers.get('content-type')).toContain('application/problem+json');
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/nosuchpage`);
      await page.getByText('No such page').waitFor();
    } finally {
      await context.close();
    }
  });

  it('draws a workflow’s static DAG with the run page’s labels, and no edge through a node it does not connect', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/registry/workflows/order-wait`);
      const node = (step: string) => page.locator(`.dag-node[data-step="${step}"]`);
      await node('confirm').waitFor();
      expect(await node('paid').textContent()).toContain('wait event order.paid');
      expect(await node('settle').textContent()).toContain('sleep 5s');
      // paid→confirm skips two columns; it must not be drawn through expired, settle or packed.
      const edges = (await call<{ dag: { edges: Array<{ from: string; to: string }> } }>(`${srv.url}/api/v1/workflows/order-wait`, 'GET')).json.dag.edges;
      expect(edges).toContainEqual({ from: 'paid', to: 'confirm' });
      for (const e of edges) expect(await crossed(page, e.from, e.to), `${e.from}→${e.to}`).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows a run created elsewhere without a reload, and colors its DAG nodes as its steps finish', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/runs`);
      await page.getByRole('heading', { name: 'Runs' }).waitFor();
      await page.locator('[data-live="open"]').waitFor(); // the runs stream is connected: what follows arrives by it
      const created = await call<{ run_id: string }>(`${srv.url}/api/v1/workflows/order-wait/runs`, 'POST', { input: { order_id: 7 } });
      expect(created.status).toBe(201);
      const id = created.json.run_id;
      // Appears in the list by the runs stream, no reload.
      const row = page.locator(`tr[data-run="${id}"]`);
      await row.waitFor({ timeout: 15_000 });
      await row.getByRole('link').click();
      await page.waitForURL(`**/runs/${id}`);
      const node = (step: string) => page.locator(`.dag-node[data-step="${step}"]`);
      await expectStatus(node('paid'), 'waiting');
      expect(await node('confirm').getAttribute('data-status')).toBe('pending');
      // The run by the end of its id, as in the list; a deadline 7 days away with its date.
      expect(await page.locator('.page-head h1').textContent()).toBe(`…${id.slice(-12)}`);
      const day = await page.evaluate(() => new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' }).format(new Date(Date.now() + 7 * 86_400_000)));
      await node('paid').filter({ hasText: `until ${day}` }).waitFor();
      await screenshot(page, 'run-waiting');
      // The event the first step waits for: the node turns completed by the run's stream.
      expect((await call(`${srv.url}/api/v1/events`, 'POST', { name: 'order.paid', data: { order_id: 7, total: 130 } })).status).toBe(201);
      await expectStatus(node('paid'), 'completed');
      await expectStatus(node('packed'), 'waiting', 20_000);
      expect((await call(`${srv.url}/api/v1/runs/${id}/signals/packed`, 'POST', { parcel: 'PX-1' })).status).toBe(202);
      await expectStatus(node('confirm'), 'completed', 20_000);
      expect(await node('expired').getAttribute('data-status')).toBe('skipped');
    } finally {
      await context.close();
    }
  });

  it('requires a login once a token exists: the pages send the browser to /login, a wrong token is refused, the right one signs in and covers API calls and streams', async () => {
    const t = await examplesProject();
    const made = await t.run(['tokens', 'create', '--name', 'dash', '--scope', 'read,run']);
    expect(made.code, made.stderr).toBe(0);
    const token = made.stdout.trim();
    const locked = await serve(t);
    const { context, page } = await newPage({ dark: true });
    try {
      expect((await fetch(`${locked.url}/api/v1/runs`)).status).toBe(401);
      await page.goto(`${locked.url}/runs`);
      await page.waitForURL('**/login?next=%2Fruns');
      await screenshot(page, 'login');
      await page.getByLabel('API token').fill('swm_not_a_token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'TOKEN_INVALID' }).waitFor();
      await page.getByLabel('API token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${locked.url}/runs`);
      await page.getByRole('heading', { name: 'Runs' }).waitFor();
      await page.locator('[data-live="open"]').waitFor(); // the runs stream is connected: what follows arrives by it
      const cookies = await context.cookies();
      const cookie = cookies.find((c) => c.name === 'swarm_token');
      expect(cookie?.httpOnly).toBe(true);
      expect(cookie?.sameSite).toBe('Strict');
      // The runs stream is covered by the cookie too: a run started by another client appears.
      const created = await call<{ run_id: string }>(`${locked.url}/api/v1/workflows/echo-chain/runs`, 'POST', { input: { message: 'hi' } }, { authorization: `Bearer ${token}` });
      expect(created.status).toBe(201);
      await page.locator(`tr[data-run="${created.json.run_id}"]`).waitFor({ timeout: 15_000 });
      // Signing out removes the cookie: the next page goes to the login again.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL('**/login');
      expect((await context.cookies()).find((c) => c.name === 'swarm_token')).toBeUndefined();
      // After signing in, the page goes to a path of this site only: `/\evil.example` is another
      // site to a browser, so it lands on / instead.
      await page.goto(`${locked.url}/login?next=${encodeURIComponent('/\\evil.example/x')}`);
      await page.getByLabel('API token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Runs' }).waitFor();
      expect(new URL(page.url()).origin).toBe(locked.url);
    } finally {
      await context.close();
      await locked.stop();
    }
  });
});

async function expectStatus(locator: import('playwright-core').Locator, status: string, timeout = 15_000): Promise<void> {
  await locator.and(locator.page().locator(`[data-status="${status}"]`)).waitFor({ timeout }).catch(async (e: unknown) => {
    throw new Error(`expected ${status}, saw ${await locator.getAttribute('data-status').catch(() => '?')}: ${String(e)}`);
  });
}

/** The little of the page's DOM that `crossed` reads (the tests compile without the DOM's types). */
interface Rect {
  left: number;
  right: number;
  top: number;
  bottom: number;
}
interface PageDom {
  document: {
    querySelector(selector: string): {
      getTotalLength(): number;
      getPointAtLength(d: number): { x: number; y: number };
      getScreenCTM(): { a: number; b: number; c: number; d: number; e: number; f: number } | null;
    } | null;
    querySelectorAll(selector: string): ArrayLike<{ getAttribute(name: string): string | null; getBoundingClientRect(): Rect }>;
  };
}

/**
 * The nodes (other than its ends) that the drawn edge from→to passes through: points along its SVG
 * path, in the page's coordinates, inside a node's box.
 */
async function crossed(page: Page, from: string, to: string): Promise<string[]> {
  await page.locator(`[data-testid="rf__edge-${from}>${to}"] path`).first().waitFor({ state: 'attached' });
  return page.evaluate(
    ({ from, to }) => {
      const { document } = globalThis as unknown as PageDom;
      const path = document.querySelector(`[data-testid="rf__edge-${from}>${to}"] path.react-flow__edge-path`);
      if (!path) throw new Error(`no edge ${from}>${to}`);
      const m = path.getScreenCTM();
      if (!m) throw new Error('the edge is not drawn');
      const boxes = Array.from(document.querySelectorAll('.react-flow__node'))
        .map((n) => ({ id: n.getAttribute('data-id') ?? '', r: n.getBoundingClientRect() }))
        .filter((b) => b.id !== from && b.id !== to);
      const hit = new Set<string>();
      const length = path.getTotalLength();
      for (let d = 0; d <= length; d += 2) {
        const { x, y } = path.getPointAtLength(d);
        const px = m.a * x + m.c * y + m.e;
        const py = m.b * x + m.d * y + m.f;
        for (const b of boxes) if (px > b.r.left + 1 && px < b.r.right - 1 && py > b.r.top + 1 && py < b.r.bottom - 1) hit.add(b.id);
      }
      return [...hit];
    },
    { from, to },
  );
}
