/**
 * The first token made from the dashboard: while no token exists the API (and the dashboard) is
 * open; creating one from Operations turns sign-in on, and the browser that made it signs in with
 * it at once, so the token shown once stays on the page instead of the page jumping to the login.
 */
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../helpers/cli.js';
import { browserFile, call, examplesProject, newPage, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;

browserFile(async () => {
  s = await examplesProject();
  return (srv = await serve(s));
});

describe('the first token, made from the dashboard', () => {
  it('is an admin token by default, signs this browser in, stays shown; other browsers must now sign in', async () => {
    const { context, page } = await newPage();
    try {
      expect((await call(`${srv.url}/api/v1/runs`, 'GET')).status).toBe(200); // open: no token yet
      await page.goto(`${srv.url}/operations`);
      await page.getByRole('note').filter({ hasText: 'The first token turns sign-in on' }).waitFor();
      const form = page.getByRole('form', { name: 'Create a token' });
      expect(await form.getByRole('checkbox', { name: 'admin' }).isChecked()).toBe(true);
      await form.getByRole('button', { name: 'Create token' }).click();
      const shown = page.getByTestId('new-token');
      await shown.waitFor();
      const token = (await shown.locator('code').textContent())?.trim() ?? '';
      expect(token).toMatch(/^swarm_/);
      // Still here (no trip to the login), signed in by cookie with the token just made.
      await page.getByRole('heading', { name: 'Operations' }).waitFor();
      expect(page.url()).toBe(`${srv.url}/operations`);
      const cookie = (await context.cookies()).find((c) => c.name === 'swarm_token');
      expect(cookie?.value).toBe(token);
      // The API now wants a token, and takes this one with the admin scope.
      expect((await call(`${srv.url}/api/v1/runs`, 'GET')).status).toBe(401);
      expect((await call(`${srv.url}/api/v1/tokens`, 'GET', undefined, { authorization: `Bearer ${token}` })).status).toBe(200);
      // The page keeps working (its next reads use the cookie) and shows the new token in the list.
      await page.reload();
      await page.locator('table').filter({ hasText: 'admin' }).first().waitFor();
      expect(page.url()).toBe(`${srv.url}/operations`);
      const other = await newPage();
      try {
        await other.page.goto(`${srv.url}/runs`);
        await other.page.waitForURL('**/login?next=%2Fruns');
      } finally {
        await other.context.close();
      }
    } finally {
      await context.close();
    }
  });
});
