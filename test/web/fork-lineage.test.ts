/**
 * A run's lineage on its page, against a real `swarm serve` in a real headless Chromium: a run forked
 * twice (a fork of the run, and a fork of that fork) draws the tree of forks on every page of the
 * tree, the page's own run marked, the others links; following a link opens that run's page with
 * the tree again. A run with no forks draws none.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { Swarm } from '../../src/swarm.js';
import type { Sandbox } from '../helpers/cli.js';
import { browserFile, call, examplesProject, newPage, screenshot, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;
let root: string;
let lonely: string;

browserFile(async () => {
  s = await examplesProject();
  const swarm = await Swarm.open({ cwd: s.root, env: s.env });
  try {
    root = await swarm.startRun('echo-chain', { message: 'lineage' });
    await swarm.runToCompletion(root);
    lonely = await swarm.startRun('echo-chain', { message: 'alone' });
    await swarm.runToCompletion(lonely);
  } finally {
    await swarm.close();
  }
  srv = await serve(s);
  return srv;
}, 120_000);

async function open(path: string): Promise<Page> {
  const { page } = await newPage();
  await page.goto(`${srv.url}${path}`);
  return page;
}

async function fork(id: string, body: unknown): Promise<string> {
  const r = await call<{ run_id: string }>(`${srv.url}/api/v1/runs/${id}/fork`, 'POST', body);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
  // The server's worker runs it; a fork of it needs it finished.
  await expect.poll(async () => (await call<{ status: string }>(`${srv.url}/api/v1/runs/${r.json.run_id}`, 'GET')).json.status, { timeout: 30_000 }).toBe('completed');
  return r.json.run_id;
}

describe('the lineage on a run’s page (real serve, real Chromium)', () => {
  it('draws the tree of forks with the current run marked and links to parent and children', async () => {
    const child = await fork(root, { at: 'step2' });
    const grandchild = await fork(child, { at: 'step2', replace_outputs: { step1: { echoed: 'replaced' } } });

    const page = await open(`/runs/${child}`);
    const nav = page.getByRole('navigation', { name: 'Lineage' });
    await nav.waitFor();
    await nav.locator(`li[data-run="${grandchild}"]`).waitFor();
    // Root, child, grandchild, nested by depth; the page's own run is the marked one.
    const items = await nav.locator('li[data-run]').all();
    expect(await Promise.all(items.map(async (l) => [await l.getAttribute('data-run'), await l.getAttribute('data-depth')]))).toEqual([
      [root, '0'],
      [child, '1'],
      [grandchild, '2'],
    ]);
    expect(await nav.locator('[aria-current="page"]').getAttribute('title')).toBe(child);
    expect(await nav.locator(`li[data-run="${child}"] > .lineage-node`).getAttribute('class')).toContain('lineage-current');
    expect(await nav.textContent()).toContain('forked from');
    expect(await nav.locator(`li[data-run="${grandchild}"] > .lineage-node`).textContent()).toContain('forked at step2');
    await screenshot(page, 'run-lineage');

    // The child's link opens the grandchild's page: the same tree, the grandchild marked.
    await nav.locator(`li[data-run="${grandchild}"] > .lineage-node a`).click();
    await page.waitForURL(`**/runs/${grandchild}`);
    const again = page.getByRole('navigation', { name: 'Lineage' });
    await expect.poll(async () => again.locator('[aria-current="page"]').getAttribute('title').catch(() => null)).toBe(grandchild);
    // The parent link of the header leads back to the child.
    await again.getByRole('link', { name: `…${child.slice(-12)}` }).first().click();
    await page.waitForURL(`**/runs/${child}**`);
    await page.context().close();
  });

  it('draws nothing for a run with no forks', async () => {
    const page = await open(`/runs/${lonely}`);
    await page.locator('.dag-node[data-step="step2"][data-status="completed"]').waitFor();
    expect(await page.getByRole('navigation', { name: 'Lineage' }).count()).toBe(0);
    await page.context().close();
  });
});
