/**
 * One run's page against a real `swarm serve` in a real headless Chromium: the DAG draws map,
 * sub-workflow, sleep and wait steps and follows their states; a signal is sent from the page; an
 * approval is granted from the banner and the run completes; an LLM step's conversation shows its
 * handoff (the agents talk to the project's fake LLM server over HTTP); verify passes, then fails
 * once an event is changed behind the store's back; "Run again" with edited input starts a new run
 * with that input (and shows the field the server refused first, then only a JSON error); Retry on a
 * failed run's page follows the retried run; a waiting step's timeline bar covers its wait; an
 * unknown `?step=` is named.
 */
import Database from 'better-sqlite3';
import type { Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeLlmServer, type FakeLlmServer } from '../../src/testing/fake-llm-server.js';
import { cleanupSandboxes, until, type Sandbox } from '../helpers/cli.js';
import { call, closeBrowser, examplesProject, newPage, pageErrors, screenshot, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;
let fake: FakeLlmServer;

beforeAll(async () => {
  fake = await startFakeLlmServer();
  s = await examplesProject({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl });
  srv = await serve(s);
});
afterAll(async () => {
  await srv?.stop();
  await fake?.close();
  await closeBrowser();
  cleanupSandboxes();
});
afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([]);
});

async function start(workflow: string, input: unknown): Promise<string> {
  const created = await call<{ run_id: string }>(`${srv.url}/api/v1/workflows/${workflow}/runs`, 'POST', { input });
  expect(created.status, JSON.stringify(created.json)).toBe(201);
  return created.json.run_id;
}

const node = (page: Page, step: string): Locator => page.locator(`.dag-node[data-step="${step}"]`);

async function expectStatus(locator: Locator, status: string, timeout = 20_000): Promise<void> {
  await locator.and(locator.page().locator(`[data-status="${status}"]`)).waitFor({ timeout }).catch(async (e: unknown) => {
    throw new Error(`expected ${status}, saw ${await locator.getAttribute('data-status').catch(() => '?')}: ${String(e)}`);
  });
}

/** Seconds from a duration as the pages write it: `850 ms`, `5.01 s`, `1m 5s`. */
function seconds(text: string | null): number {
  const m = /^(?:(\d+)m (\d+)s|([\d.]+) s|(\d+) ms)$/.exec(text?.trim() ?? '');
  if (!m) throw new Error(`not a duration: ${text}`);
  return m[1] !== undefined ? Number(m[1]) * 60 + Number(m[2]) : m[3] !== undefined ? Number(m[3]) : Number(m[4]) / 1000;
}

describe('a run’s page (real serve, real Chromium)', () => {
  it('draws a map step as one node with its elements’ progress, lists them, and shows an element’s resolved inputs; a sub-workflow step links to its child run', async () => {
    const { context, page } = await newPage();
    try {
      const id = await start('map-resize', { images: ['a.png', 'b.png', 'c.png', 'd.png', 'e.png'] });
      await page.goto(`${srv.url}/runs/${id}`);
      await expectStatus(node(page, 'report'), 'completed');
      await expect.poll(() => node(page, 'resize').textContent()).toContain('5/5');
      expect(await node(page, 'resize').locator('.dag-bar .s-completed').count()).toBe(1);
      await node(page, 'resize').click();
      const panel = page.getByRole('complementary', { name: 'Step resize' });
      await panel.locator('tr[data-element="resize[4]"]').waitFor();
      expect(await panel.locator('tr[data-element]').count()).toBe(5);
      await panel.getByRole('button', { name: 'resize[2]' }).click();
      const element = page.getByRole('complementary', { name: 'Step resize[2]' });
      // The inputs as the engine resolved them for this element.
      await element.getByLabel('Inputs').filter({ hasText: '"c.png"' }).waitFor();
      expect(await element.getByLabel('Inputs').textContent()).toContain('"128x128"');
      // The timeline has a row per step, the map's elements folded under it.
      await page.locator('[data-timeline-step="report"]').waitFor();
      await page.getByRole('button', { name: 'Unfold the elements of resize' }).click();
      await page.locator('[data-timeline-step="resize[4]"]').waitFor();
      await screenshot(page, 'run-step-panel');

      const parent = await start('parent-child', { message: 'hello child' });
      await page.goto(`${srv.url}/runs/${parent}`);
      await expectStatus(node(page, 'after'), 'completed');
      expect(await node(page, 'child').textContent()).toContain('workflow echo-chain');
      await node(page, 'child').getByRole('link', { name: 'child run' }).click();
      await page.getByText('child of').waitFor();
      // Run ids by their end, as the runs list shows them: the header's and the parent's.
      await page.getByRole('link', { name: `…${parent.slice(-12)}` }).waitFor();
      const child = new URL(page.url()).pathname.split('/').pop() ?? '';
      expect(await page.locator('.page-head h1').textContent()).toBe(`…${child.slice(-12)}`);
      await expectStatus(node(page, 'step2'), 'completed');
    } finally {
      await context.close();
    }
  });

  it('shows a sleep step’s wake time and a wait step’s signal, and sends the signal from the page: the run completes; the timeline shows the waits', async () => {
    const { context, page } = await newPage();
    // Only an LLM step has a conversation: no other step's panel asks for one.
    const transcripts: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/transcript')) transcripts.push(r.url());
    });
    try {
      const id = await start('order-wait', { order_id: 11 });
      await page.goto(`${srv.url}/runs/${id}`);
      await expectStatus(node(page, 'paid'), 'waiting');
      expect(await node(page, 'paid').textContent()).toContain('wait event order.paid');
      expect(await node(page, 'settle').textContent()).toContain('sleep 5s');
      expect((await call(`${srv.url}/api/v1/events`, 'POST', { name: 'order.paid', data: { order_id: 11, total: 99 } })).status).toBe(201);
      // The sleep (5 s: long enough to be seen on a busy machine) shows when it wakes while it sleeps.
      await node(page, 'settle').and(page.locator('[data-status="waiting"]')).filter({ hasText: 'wakes' }).waitFor({ timeout: 20_000 });
      await expectStatus(node(page, 'packed'), 'waiting');
      const form = page.getByRole('form', { name: 'Signal packed' });
      await form.getByLabel('Data (JSON)').fill('{"parcel": "PX-9"}');
      await form.getByRole('button', { name: 'Send signal' }).click();
      await expectStatus(node(page, 'confirm'), 'completed');
      // Keyboard: a focused DAG node opens its step with Enter, as a click does.
      await page.locator('.react-flow__node[data-id="packed"]').focus();
      await page.keyboard.press('Enter');
      await page.getByRole('complementary', { name: 'Step packed' }).waitFor();
      // A click on a node opens its step. On a loaded machine the DAG may still be moving under the
      // pointer (its layout settles after the panel opened beside it): a click that opened nothing is
      // made again, at most twice more.
      const panel = page.getByRole('complementary', { name: 'Step confirm' });
      for (let clicks = 0; clicks < 3; clicks++) {
        await node(page, 'confirm').click();
        if (await panel.waitFor({ timeout: 5_000 }).then(() => true, () => false)) break;
      }
      try {
        await panel.getByLabel('Outputs').filter({ hasText: 'PX-9' }).waitFor();
      } catch (e) {
        // Which side is behind: the step as the server has it, and what the page shows.
        const steps = (await call<{ steps: Array<{ id: string; status: string; completed_at: string | null; outputs: unknown }> }>(`${srv.url}/api/v1/runs/${id}/steps`, 'GET')).json.steps;
        const server = steps.find((s) => s.id === 'confirm');
        const shown = (await panel.count()) ? await panel.textContent() : `no panel of confirm; panels open: ${JSON.stringify(await page.getByRole('complementary').allTextContents())}`;
        throw new Error(`confirm's outputs never showed PX-9. Server: ${JSON.stringify(server)}. Page: ${JSON.stringify(shown)}`, { cause: e });
      }
      expect(transcripts).toEqual([]);
      // The sleep's bar covers its 5 s (the API's own times for it are those of its wake-up, a few
      // ms), and the axis the whole run.
      const settle = seconds(await page.locator('[data-timeline-step="settle"] .tl-dur').textContent());
      expect(settle).toBeGreaterThanOrEqual(4.9);
      expect(seconds(await page.locator('.tl-axis .tl-track span').last().textContent())).toBeGreaterThanOrEqual(settle);
      await page.locator('[data-timeline-step="settle"]').getByRole('button', { name: 'settle' }).click();
      await page.getByRole('complementary', { name: 'Step settle' }).waitFor();
      expect(await page.getByRole('complementary', { name: 'Step settle' }).textContent()).toMatch(/Duration[\d.]+ s \(ran \d+ ms\)/);
    } finally {
      await context.close();
    }
  });

  it('an LLM step’s conversation shows the handoff and the tool call; the approval is granted from the banner and the run completes', async () => {
    fake.push(
      { content: JSON.stringify({ invoice_id: 'INV-1002', amount: 90, currency: 'EUR', intent: 'billing', summary: 'Asks whether INV-1002 was paid.' }) },
      { toolCalls: [{ id: 'call_t', name: 'transfer_to_billing', arguments: {} }] },
      { toolCalls: [{ id: 'call_l', name: 'lookup_invoice', arguments: { invoice_id: 'INV-1002' } }] },
      { content: 'INV-1002 (90 EUR) is still open.' },
    );
    const { context, page } = await newPage();
    try {
      const id = await start('support-desk', { message: 'Did you get my payment for INV-1002?', customer: 'Ada' });
      await page.goto(`${srv.url}/runs/${id}`);
      const banner = page.getByRole('region', { name: 'Approval for review' });
      await banner.waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
        throw new Error(`${String(e)}\nrun: ${JSON.stringify((await call(`${srv.url}/api/v1/runs/${id}`, 'GET')).json)}\nmodel calls: ${fake.requests.length}\n${srv.output().slice(-2000)}`);
      });
      expect(await node(page, 'review').textContent()).toContain('awaiting approval');
      await screenshot(page, 'run-approval');

      await node(page, 'answer').click();
      const convo = page.getByRole('region', { name: 'Conversation' });
      const handoff = convo.locator('[data-handoff="billing"]');
      await handoff.waitFor();
      expect(await handoff.textContent()).toMatch(/triage hands off to billing/);
      const tool = convo.locator('[data-tool="lookup_invoice"]');
      expect(await tool.textContent()).toContain('"INV-1002"');
      expect(await tool.textContent()).toContain('"open"');
      expect(await convo.locator('[data-role="assistant"]').last().textContent()).toContain('INV-1002 (90 EUR) is still open.');
      expect(await convo.textContent()).toMatch(/\d+ in · \d+ out/);
      await handoff.scrollIntoViewIfNeeded();
      await screenshot(page, 'run-llm-transcript');

      await banner.getByRole('button', { name: 'Approve' }).click();
      await page.locator('.page-head .badge[data-status="completed"]').waitFor({ timeout: 20_000 });
      await expectStatus(node(page, 'send'), 'completed');
      expect(await banner.count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('verify passes, and fails once an event is changed behind the store’s back', async () => {
    const { context, page } = await newPage({ dark: true });
    try {
      const id = await start('echo-chain', { message: 'chain' });
      await page.goto(`${srv.url}/runs/${id}`);
      await page.locator('.page-head .badge[data-status="completed"]').waitFor({ timeout: 20_000 });
      await screenshot(page, 'run-dark');
      await page.getByRole('tab', { name: /Event log/ }).click();
      await page.locator('[data-verify="ok"]').waitFor();
      expect(await page.locator('tr[data-seq]').count()).toBeGreaterThan(3);
      const db = new Database(s.db);
      try {
        expect(db.prepare('UPDATE events SET at = at + 1 WHERE run_id = ? AND seq = 3').run(id).changes).toBe(1);
      } finally {
        db.close();
      }
      await page.getByRole('button', { name: 'Verify again' }).click();
      await page.locator('[data-verify="failed"]').waitFor();
      await page.locator('tr[data-seq="3"].bad').waitFor();
      expect(await page.locator('.verify-problems').textContent()).toContain('seq 3');
    } finally {
      await context.close();
    }
  });

  it('“Run again” starts a new run with the edited input, after showing the field the server refused', async () => {
    const { context, page } = await newPage();
    try {
      const id = await start('echo-chain', { message: 'first' });
      await page.goto(`${srv.url}/runs/${id}`);
      await page.locator('.page-head .badge[data-status="completed"]').waitFor({ timeout: 20_000 });
      await screenshot(page, 'run');
      await page.getByRole('button', { name: 'Run again…' }).click();
      const editor = page.getByRole('form', { name: 'Run again' });
      const input = editor.getByLabel(/Input of the new run/);
      expect(JSON.parse(await input.inputValue())).toEqual({ message: 'first' });
      await input.fill('{"message": 5}');
      await editor.getByRole('button', { name: 'Start run' }).click();
      const refused = editor.getByRole('alert');
      await refused.waitFor();
      expect(await refused.textContent()).toContain('INPUT_INVALID');
      expect(await refused.getAttribute('data-field')).toContain('message');
      // A JSON error shows alone: the server's answer to the previous input is gone.
      await input.fill('{"message": ');
      await editor.getByRole('button', { name: 'Start run' }).click();
      await editor.getByRole('alert').filter({ hasText: 'not JSON' }).waitFor();
      expect(await editor.getByRole('alert').count()).toBe(1);
      await input.fill('{"message": "edited"}');
      await editor.getByRole('button', { name: 'Start run' }).click();
      await page.waitForURL((u) => /\/runs\/[0-9a-f-]+$/.test(u.pathname) && !u.pathname.endsWith(id));
      const next = new URL(page.url()).pathname.split('/').pop() ?? '';
      const doc = await call<{ trigger: unknown; workflow: string }>(`${srv.url}/api/v1/runs/${next}`, 'GET');
      expect(doc.json).toMatchObject({ workflow: 'echo-chain', trigger: { message: 'edited' } });
      await page.locator('.page-head .badge[data-status="completed"]').waitFor({ timeout: 20_000 });
    } finally {
      await context.close();
    }
  });
  it('Retry on a failed run’s page follows the retried run without a reload; a failed step says it has no outputs; an unknown ?step= is named', async () => {
    const { context, page } = await newPage();
    try {
      // http://127.0.0.1:9 is refused by the network guard: the fetch step fails for good.
      const id = await start('fetch-url', { url: 'http://127.0.0.1:9/' });
      await page.goto(`${srv.url}/runs/${id}?step=nosuchstep`);
      await page.locator('.page-head .badge[data-status="failed"]').waitFor({ timeout: 30_000 });
      await page.getByRole('complementary', { name: 'Step nosuchstep' }).getByText('No step nosuchstep in this run').waitFor();
      await page.locator('.run-error').getByRole('button', { name: 'fetch' }).click();
      const panel = page.getByRole('complementary', { name: 'Step fetch' });
      await panel.getByText('None: the step failed.').waitFor();
      const eventsOf = async (): Promise<string[]> => (await call<{ events: Array<{ type: string }> }>(`${srv.url}/api/v1/runs/${id}/events`, 'GET')).json.events.map((e) => e.type);
      const tab = page.getByRole('tab', { name: /Event log/ });
      await tab.filter({ hasText: `(${(await eventsOf()).length})` }).waitFor();

      await page.getByRole('button', { name: 'Retry' }).click();
      // The retried run fails again (the same refused URL): once it has, the page shows all its events.
      const after = await until('the retried run fails again', async () => {
        const types = await eventsOf();
        return types.includes('RUN_RETRIED') && types[types.length - 1] === 'RUN_FAILED' ? types : undefined;
      }, 30_000, 100);
      await tab.filter({ hasText: `(${after.length})` }).waitFor({ timeout: 20_000 });
      await tab.click();
      await page.locator('tr[data-seq]').filter({ hasText: 'RUN_RETRIED' }).waitFor();
      await page.locator('.page-head .badge[data-status="failed"]').waitFor();
    } finally {
      await context.close();
    }
  });
});
