/**
 * The dashboard on PostgreSQL: the same pages against a `swarm serve` whose store is a real
 * PostgreSQL database (the run's shared server, a fresh database for this file).
 */
import { describe, expect, it } from 'vitest';
import { EXAMPLES, makeSandbox, show, type Sandbox } from '../helpers/cli.js';
import { pgTestServer } from '../helpers/pg.js';
import { browserFile, call, newPage, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;

browserFile(async () => {
  const url = await (await pgTestServer()).createDatabase();
  s = makeSandbox({ env: { SWARM_SANDBOX: 'none', SWARM_DATABASE_URL: url } });
  for (const [kind, dir] of [['agent', EXAMPLES.agents], ['workflow', EXAMPLES.workflows]] as const) {
    const r = await s.run([kind, 'register', '--all', dir], { timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
  }
  srv = await serve(s);
  expect(srv.output()).toContain('postgres store');
  return srv;
}, 120_000);

describe('the dashboard on PostgreSQL', () => {
  it('lists a run live and draws its DAG to completion', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/`);
      await page.getByRole('heading', { name: 'Runs' }).waitFor();
      await page.locator('[data-live="open"]').waitFor(); // the runs stream is connected: what follows arrives by it
      const created = await call<{ run_id: string }>(`${srv.url}/api/v1/workflows/echo-chain/runs`, 'POST', { input: { message: 'on postgres' } });
      expect(created.status).toBe(201);
      const row = page.locator(`tr[data-run="${created.json.run_id}"]`);
      await row.waitFor({ timeout: 15_000 });
      await row.getByRole('link').first().click();
      for (const step of ['step1', 'step2']) await page.locator(`.dag-node[data-step="${step}"][data-status="completed"]`).waitFor({ timeout: 20_000 });
    } finally {
      await context.close();
    }
  });

  it('shows every other view without an error, with what the PostgreSQL store holds', async () => {
    const { context, page } = await newPage();
    try {
      for (const [path, heading] of [['/registry', 'Registry'], ['/triggers', 'Triggers'], ['/operations', 'Operations']] as const) {
        await page.goto(`${srv.url}${path}`);
        await page.getByRole('heading', { name: heading, exact: true }).waitFor();
        // Every query of the page has answered (nothing still loading) before errors are counted.
        await expect.poll(() => page.getByText('Loading…').count(), { timeout: 20_000 }).toBe(0);
        expect(await page.getByRole('alert').count(), `${path} shows an error`).toBe(0);
      }
      // What those pages read came from this store: the registered workflows, and this serve's worker.
      await page.goto(`${srv.url}/registry`);
      await page.getByRole('link', { name: 'echo-chain', exact: true }).first().waitFor();
      await page.goto(`${srv.url}/operations`);
      await page.locator('[data-live="true"]').first().waitFor({ timeout: 20_000 });
    } finally {
      await context.close();
    }
  });
});
