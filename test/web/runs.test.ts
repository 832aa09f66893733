/**
 * The runs list against a real `swarm serve` in a real headless Chromium: live rows that keep to
 * the filters, filters in the URL (reload and back button), a bulk cancel of "all matching" that
 * cancels exactly the matching waiting runs (checked over the API), a bulk retry of failed runs, and
 * filters in the URL that mean nothing named, not silently dropped.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { until, type Sandbox } from '../helpers/cli.js';
import { browserFile, call, examplesProject, newPage, screenshot, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;

browserFile(async () => {
  s = await examplesProject();
  return (srv = await serve(s));
});

interface RunDoc {
  run_id: string;
  status: string;
}

async function start(workflow: string, input: Record<string, unknown>, metadata?: Record<string, string>): Promise<string> {
  const r = await call<RunDoc>(`${srv.url}/api/v1/workflows/${workflow}/runs`, 'POST', { input, ...(metadata ? { metadata } : {}) });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  return r.json.run_id;
}

async function statusOf(id: string): Promise<string> {
  return (await call<RunDoc>(`${srv.url}/api/v1/runs/${id}`, 'GET')).json.status;
}

/** Until every run has this status (the worker of `serve` moves them). */
async function allReach(ids: string[], status: string): Promise<void> {
  await until(`${ids.length} runs ${status}`, async () => ((await Promise.all(ids.map(statusOf))).every((x) => x === status) ? true : undefined), 30_000, 100);
}

const row = (page: Page, id: string) => page.locator(`tr[data-run="${id}"]`);

describe('the runs list (real serve, real Chromium)', () => {
  it('adds a live run that matches the filters and leaves out one that does not', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/runs?status=waiting&workflow=order-wait`);
      await page.getByRole('heading', { name: 'Runs' }).waitFor();
      await page.locator('[data-live="open"]').waitFor(); // the runs stream is connected: what follows arrives by it
      await page.getByText('No runs match these filters').waitFor();
      // The echo-chain run changes first: once the order-wait run shows, the other was seen and left out.
      const other = await start('echo-chain', { message: 'not me' });
      await allReach([other], 'completed');
      const id = await start('order-wait', { order_id: 1 });
      await row(page, id).waitFor({ timeout: 20_000 });
      expect(await row(page, id).getAttribute('data-status')).toBe('waiting');
      expect(await row(page, other).count()).toBe(0);
      expect(await row(page, id).getByRole('cell').nth(4).textContent()).toMatch(/^0\/\d+$/);
    } finally {
      await context.close();
    }
  });

  it('keeps the filters in the URL: they narrow the list, survive a reload, and the back button undoes them', async () => {
    const eu = await start('order-wait', { order_id: 21 }, { region: 'eu' });
    const us = await start('order-wait', { order_id: 22 }, { region: 'us' });
    await allReach([eu, us], 'waiting');
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/runs`);
      await row(page, us).waitFor();
      // The URL is the state: the box shows checked once the navigation it makes is done.
      await page.getByRole('checkbox', { name: 'waiting' }).click();
      await page.waitForURL(/status=waiting/);
      await expect.poll(() => page.getByRole('checkbox', { name: 'waiting' }).isChecked(), { timeout: 10_000 }).toBe(true);
      await page.getByRole('textbox', { name: 'Metadata' }).fill('region=eu');
      await page.getByRole('button', { name: 'Add' }).click();
      await page.waitForURL(/metadata\.region=eu/);
      await row(page, eu).waitFor();
      await row(page, us).waitFor({ state: 'detached' });
      const rows = await Promise.all((await page.locator('tbody tr').all()).map((tr) => tr.getAttribute('data-status')));
      expect(rows).toEqual(['waiting']);

      await page.reload();
      await row(page, eu).waitFor();
      expect(await row(page, us).count()).toBe(0);
      expect(await page.getByRole('checkbox', { name: 'waiting' }).isChecked()).toBe(true);
      await page.getByRole('button', { name: 'Remove the metadata filter region' }).waitFor();

      await page.goBack();
      await page.waitForURL((u) => !u.search.includes('metadata'));
      await row(page, us).waitFor();
      await page.getByRole('button', { name: 'Clear filters' }).first().click();
      await page.waitForURL((u) => u.search === '');
    } finally {
      await context.close();
    }
  });

  it('names the filters of a URL that mean nothing (the API would refuse them) and lists without them', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/runs?status=waiting,bogus&since=yesterday`);
      const alert = page.getByTestId('bad-filters');
      await alert.waitFor();
      expect(await alert.textContent()).toContain('status=bogus');
      expect(await alert.textContent()).toContain('since=yesterday');
      expect(await alert.textContent()).not.toContain('status=waiting');
      await page.getByRole('checkbox', { name: 'waiting' }).and(page.locator(':checked')).waitFor();
      await alert.getByRole('button', { name: 'Remove them' }).click();
      await page.waitForURL((u) => u.search === '?status=waiting');
      await alert.waitFor({ state: 'detached' });
    } finally {
      await context.close();
    }
  });

  it('bulk-cancels all runs matching a filter, and nothing else', async () => {
    const batch = await Promise.all([0, 1, 2, 3].map((i) => start('order-wait', { order_id: 100 + i }, { batch: 'b1' })));
    const others = await Promise.all([0, 1].map((i) => start('order-wait', { order_id: 200 + i }, { batch: 'b2' })));
    await allReach([...batch, ...others], 'waiting');
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/runs?workflow=order-wait&metadata.batch=b1`);
      await row(page, batch[3]!).waitFor();
      await screenshot(page, 'runs-list');
      await page.getByRole('checkbox', { name: 'Select all runs on this page' }).check();
      await page.getByTestId('selection').filter({ hasText: '4 runs selected' }).waitFor();
      await page.getByRole('button', { name: 'Select all runs matching these filters' }).click();
      await page.getByTestId('selection').filter({ hasText: 'All runs matching these filters' }).waitFor();
      // A run that matches but was created after the choice is not part of it.
      const later = await start('order-wait', { order_id: 104 }, { batch: 'b1' });
      others.push(later);
      await allReach([later], 'waiting');
      await page.getByRole('button', { name: 'Cancel…' }).click();
      const dialog = page.getByRole('alertdialog');
      await dialog.getByText('Only the queued, running, waiting ones are cancelled').waitFor();
      await dialog.getByRole('button', { name: 'Cancel all runs matching these filters' }).click();
      const progress = page.locator('[data-testid="bulk-progress"][data-finished="true"]');
      await progress.waitFor({ timeout: 20_000 });
      expect(await progress.getAttribute('data-done')).toBe('4');
      expect(await progress.getAttribute('data-failed')).toBe('0');
      await screenshot(page, 'runs-bulk-cancel');
      for (const id of batch) expect(await statusOf(id)).toBe('cancelled');
      for (const id of others) expect(await statusOf(id)).toBe('waiting');
      // The list shows their new state (the stream, and a refetch after the action).
      for (const id of batch) await page.locator(`tr[data-run="${id}"][data-status="cancelled"]`).waitFor();
    } finally {
      await context.close();
    }
  });

  it('retries chosen failed runs, with progress and the reason of a refusal', async () => {
    // http://127.0.0.1:9 is refused by the network guard: the fetch step fails for good.
    const failed = await Promise.all([0, 1].map(() => start('fetch-url', { url: 'http://127.0.0.1:9/' }, { batch: 'f1' })));
    await allReach(failed, 'failed');
    const waiting = await start('order-wait', { order_id: 300 }, { batch: 'f1' });
    await allReach([waiting], 'waiting');
    const { context, page } = await newPage({ dark: true });
    try {
      await page.goto(`${srv.url}/runs?metadata.batch=f1`);
      for (const id of [...failed, waiting]) await row(page, id).waitFor();
      await screenshot(page, 'runs-list-dark');
      for (const id of [...failed, waiting]) await row(page, id).getByRole('checkbox').check();
      await page.getByRole('button', { name: 'Retry…' }).click();
      await page.getByRole('alertdialog').getByRole('button', { name: 'Retry 3 runs' }).click();
      const progress = page.locator('[data-testid="bulk-progress"][data-finished="true"]');
      await progress.waitFor({ timeout: 20_000 });
      expect([await progress.getAttribute('data-done'), await progress.getAttribute('data-failed')]).toEqual(['2', '1']);
      await progress.getByText('RUN_NOT_RETRYABLE').waitFor();
      for (const id of failed) {
        const events = await call<{ events: Array<{ type: string }> }>(`${srv.url}/api/v1/runs/${id}/events`, 'GET');
        expect(events.json.events.map((e) => e.type)).toContain('RUN_RETRIED');
      }
      expect(await statusOf(waiting)).toBe('waiting');
    } finally {
      await context.close();
    }
  });
});
