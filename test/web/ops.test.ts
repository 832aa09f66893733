/**
 * The Registry, Triggers and Operations pages against a real `swarm serve` in a real headless
 * Chromium: a run form built from a workflow's input schema starts a run with typed input and shows
 * the server's 422 on the field; a schedule shows its timezone and next five ticks, pauses, resumes
 * and runs now; the workers view shows the serve's own worker; an approval granted from Operations
 * lets its run finish; a token created on the page works against the API until it is revoked there.
 */
import { describe, expect, it } from 'vitest';
import { until, type Sandbox } from '../helpers/cli.js';
import { browserFile, call, examplesProject, newPage, screenshot, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;

const WORKFLOWS: Record<string, string> = {
  typed: `name: typed
version: 1.0.0
description: Typed inputs for the run form
inputs:
  type: object
  required: [count, mode]
  properties:
    title: { type: string, default: hello }
    count: { type: integer, minimum: 1, description: How many times }
    ratio: { type: number }
    loud: { type: boolean }
    mode: { type: string, enum: [fast, slow] }
    tags: { type: array, items: { type: string } }
steps:
  - id: first
    agent: echo
    inputs: { message: "\${trigger.title}" }
  - id: second
    agent: echo
    depends_on: [first]
    inputs: { message: "\${trigger.mode}" }
`,
  overnight: `name: overnight
version: 1.0.0
trigger: { type: schedule, cron: "30 2 * * *", timezone: America/New_York }
steps:
  - { id: a, agent: echo, inputs: { message: hi } }
`,
  hooked: `name: hooked
version: 1.0.0
trigger: { type: webhook, path: in/hooked, auth: none }
steps:
  - { id: a, agent: echo, inputs: { message: hooked } }
`,
  gated: `name: gated
version: 1.0.0
steps:
  - id: review
    agent: approval
    inputs: { message: "Ship it?" }
  - id: ship
    agent: echo
    depends_on: [review]
    inputs: { message: shipped }
`,
};

browserFile(async () => {
  s = await examplesProject();
  for (const [name, yaml] of Object.entries(WORKFLOWS)) s.write(`workflows/${name}/workflow.yaml`, yaml);
  const r = await s.run(['workflow', 'register', '--all', 'workflows']);
  expect(r.code, r.stderr).toBe(0);
  return (srv = await serve(s));
});

type Json = Record<string, unknown>;

describe('Registry, Triggers and Operations (real serve, real Chromium)', () => {
  it('the run form built from the input schema starts a run with typed input; a bad input shows the server’s 422 on its field', async () => {
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/registry`);
      await page.getByRole('table', { name: 'Agents' }).waitFor();
      await screenshot(page, 'registry');
      await page.getByRole('link', { name: 'typed', exact: true }).click();
      await page.waitForURL('**/registry/workflows/typed');
      await page.locator('.dag-node[data-step="second"]').waitFor();
      const form = page.getByRole('form', { name: 'Run typed' });
      // One field per input, by type; the default is prefilled; required ones are marked.
      expect(await form.getByLabel(/^title/).inputValue()).toBe('hello');
      expect(await form.getByLabel(/^count/).getAttribute('data-kind')).toBe('integer');
      expect(await form.getByLabel(/^loud/).getAttribute('data-kind')).toBe('boolean');
      expect(await form.getByLabel(/^mode/).getAttribute('data-kind')).toBe('enum');
      expect(await form.getByLabel(/^tags/).getAttribute('data-kind')).toBe('json');
      await expect(form.locator('label[for="run-input-count"]').textContent()).resolves.toContain('required');
      await screenshot(page, 'registry-workflow');

      // Client-side: a missing required field and a non-number are refused before sending.
      await form.getByLabel(/^ratio/).fill('abc');
      await form.getByRole('button', { name: 'Start run' }).click();
      await form.locator('#run-input-ratio-error').filter({ hasText: 'must be a number' }).waitFor();
      await form.locator('#run-input-count-error').filter({ hasText: 'is required' }).waitFor();

      // The server's check (minimum 1) comes back as a 422 and lands on the field.
      await form.getByLabel(/^ratio/).fill('0.5');
      await form.getByLabel(/^count/).fill('0');
      await form.getByLabel(/^mode/).selectOption({ label: 'slow' });
      await form.getByLabel(/^loud/).selectOption('true');
      await form.getByLabel(/^tags/).fill('["a", "b"]');
      await form.getByRole('button', { name: 'Start run' }).click();
      await form.locator('#run-input-count-error').filter({ hasText: 'must be >= 1' }).waitFor();
      await form.getByText('INPUT_INVALID').waitFor();
      expect(await form.getByLabel(/^count/).getAttribute('aria-invalid')).toBe('true');

      await form.getByLabel(/^count/).fill('3');
      await form.getByRole('button', { name: 'Start run' }).click();
      await page.waitForURL(/\/runs\/[0-9a-f-]+$/);
      const id = page.url().split('/runs/')[1]!;
      const run = await call<{ trigger: Json; workflow: string }>(`${srv.url}/api/v1/runs/${id}`, 'GET');
      expect(run.json.workflow).toBe('typed');
      expect(run.json.trigger).toEqual({ title: 'hello', count: 3, ratio: 0.5, loud: true, mode: 'slow', tags: ['a', 'b'] });

      // An LLM agent: its model, tools and handoffs (links to those agents).
      await page.goto(`${srv.url}/registry/agents/triage`);
      await page.getByText('openai / gpt-4o-mini').waitFor();
      await page.getByRole('link', { name: 'billing', exact: true }).click();
      await page.waitForURL('**/registry/agents/billing');
      await page.getByRole('heading', { name: 'billing' }).waitFor();
      expect(await page.getByRole('table', { name: 'Tools' }).locator('tbody tr').count()).toBeGreaterThan(0);
    } finally {
      await context.close();
    }
  });

  it('a schedule shows its timezone and next five ticks; pause and resume change its state; run now starts a run; a webhook shows its URL and deliveries', async () => {
    const delivered = await call<{ run_id: string }>(`${srv.url}/webhooks/in/hooked`, 'POST', { n: 1 });
    expect(delivered.status).toBe(202);
    const { context, page } = await newPage();
    try {
      await page.goto(`${srv.url}/triggers`);
      const card = page.locator('[data-schedule="overnight"]');
      await card.waitFor();
      expect(await card.getByTestId('timezone').textContent()).toBe('America/New_York');
      await card.locator('li[data-tick]').nth(4).waitFor();
      expect(await card.locator('li[data-tick]').count()).toBe(5);
      const preview = await call<{ ticks: string[] }>(`${srv.url}/api/v1/schedules/overnight/preview?count=5`, 'GET');
      expect(await Promise.all((await card.locator('li[data-tick]').all()).map((li) => li.getAttribute('data-tick')))).toEqual(preview.json.ticks);
      expect(await card.locator('li[data-tick]').first().textContent()).toContain('America/New_York');
      // The webhook: its full URL on this server, and the delivery above as a recent one.
      const hook = page.locator('tr[data-webhook="in/hooked"]');
      expect(await hook.getByTestId('webhook-url').textContent()).toBe(`${srv.url}/webhooks/in/hooked`);
      await hook.getByRole('link', { name: `…${delivered.json.run_id.slice(-12)}` }).waitFor();
      await screenshot(page, 'triggers');

      await card.getByRole('button', { name: 'Pause' }).click();
      await page.locator('[data-schedule="overnight"][data-state="paused"]').waitFor();
      expect((await call<{ paused: boolean }>(`${srv.url}/api/v1/schedules/overnight`, 'GET')).json.paused).toBe(true);
      await card.getByRole('button', { name: 'Resume' }).click();
      await page.locator('[data-schedule="overnight"][data-state="active"]').waitFor();
      expect((await call<{ paused: boolean }>(`${srv.url}/api/v1/schedules/overnight`, 'GET')).json.paused).toBe(false);

      await card.getByRole('button', { name: 'Run now' }).click();
      await card.getByRole('status').filter({ hasText: 'Started' }).waitFor();
      const runs = await call<{ runs: Array<{ run_id: string; trigger_type: string }> }>(`${srv.url}/api/v1/runs?workflow=overnight`, 'GET');
      expect(runs.json.runs.map((r) => r.trigger_type)).toEqual(['schedule']);
    } finally {
      await context.close();
    }
  });

  it("the workers view shows the serve's own worker, live, with a recent heartbeat; an approval approved there lets its run finish", async () => {
    const created = await call<{ run_id: string }>(`${srv.url}/api/v1/workflows/gated/runs`, 'POST', { input: {} });
    expect(created.status).toBe(201);
    const id = created.json.run_id;
    const { context, page } = await newPage({ dark: true });
    try {
      await page.goto(`${srv.url}/operations`);
      const mine = page.locator(`tr[data-pid="${srv.child.pid}"]`);
      await mine.waitFor();
      expect(await mine.getAttribute('data-live')).toBe('true');
      expect(await mine.getByTestId('heartbeat').textContent()).toMatch(/^\d+ s ago$/);
      const approval = page.locator(`tr[data-approval="${id}/review"]`);
      await approval.waitFor({ timeout: 15_000 });
      // The run by the end of its id, as the runs list shows it.
      expect(await approval.getByRole('link').first().textContent()).toBe(`…${id.slice(-12)}`);
      await screenshot(page, 'operations');
      await approval.getByRole('button', { name: 'Approve' }).click();
      await approval.waitFor({ state: 'detached' });
      const done = await until('the run completes', async () => {
        const r = await call<{ status: string }>(`${srv.url}/api/v1/runs/${id}`, 'GET');
        return r.json.status === 'completed' ? r.json : undefined;
      });
      expect(done.status).toBe('completed');
    } finally {
      await context.close();
    }
  });

  it('a token created on the page works against the API and fails with 401 once revoked there; a read-only session sees "needs the admin scope"', async () => {
    // The first token turns authentication on: sign in with an admin one, as an operator would.
    expect((await call(`${srv.url}/api/v1/secrets/OPS_KEY`, 'PUT', { value: 'never-on-the-page' })).status).toBe(201);
    const admin = await call<{ token: string }>(`${srv.url}/api/v1/tokens`, 'POST', { name: 'ops-admin', scopes: ['admin'] });
    expect(admin.status).toBe(201);
    const { context, page } = await newPage();
    const reader = await newPage();
    try {
      await page.goto(`${srv.url}/operations`);
      await page.waitForURL('**/login?next=%2Foperations');
      await page.getByLabel('API token').fill(admin.json.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${srv.url}/operations`);
      // Secrets: the name, never the value.
      await page.locator('tr[data-secret="OPS_KEY"]').waitFor();
      expect(await page.content()).not.toContain('never-on-the-page');
      const form = page.getByRole('form', { name: 'Create a token' });
      await form.getByLabel('Name').fill('from-page');
      await form.getByLabel('runs:write').check();
      await form.getByRole('button', { name: 'Create token' }).click();
      const token = (await page.getByTestId('new-token').locator('code').textContent())!.trim();
      const bearer = { authorization: `Bearer ${token}` };
      expect((await call(`${srv.url}/api/v1/runs`, 'GET', undefined, bearer)).status).toBe(200);
      const row = page.locator('tr[data-token]').filter({ hasText: 'from-page' });
      await row.waitFor();
      expect(await row.textContent()).toContain('read, runs:write');

      // A session with that (read) token sees the secrets and tokens sections say what is missing.
      await reader.page.goto(`${srv.url}/login?next=%2Foperations`);
      await reader.page.getByLabel('API token').fill(token);
      await reader.page.getByRole('button', { name: 'Sign in' }).click();
      await reader.page.waitForURL(`${srv.url}/operations`);
      // The two sections load apart: wait for the second before counting.
      const needs = reader.page.getByRole('status').filter({ hasText: 'Needs the admin scope' });
      await needs.nth(1).waitFor();
      expect(await needs.count()).toBe(2);

      await row.getByRole('button', { name: /^Revoke/ }).click();
      await page.locator('tr[data-token][data-status="revoked"]').filter({ hasText: 'from-page' }).waitFor();
      expect((await call(`${srv.url}/api/v1/runs`, 'GET', undefined, bearer)).status).toBe(401);
    } finally {
      await context.close();
      await reader.context.close();
    }
  });
});
