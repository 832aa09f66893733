/**
 * The consensus task pages against a real `swarm serve` in a real headless Chromium: a finalized
 * task (written into the store as the lifecycle writes one: rows and hash-chained events) is listed,
 * linked from its run's page, and its page shows the candidates side by side with their proposers,
 * costs and verification results (status badges, reason names), the votes (an unrevealed one as its
 * commitment only) and the tally, the decision with its proof linking to the run's event log, and
 * the cost by bucket.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { Swarm } from '../../src/swarm.js';
import type { Sandbox } from '../helpers/cli.js';
import { seedFinalizedTask, type SeededTask } from '../helpers/task-seed.js';
import { browserFile, examplesProject, newPage, screenshot, serve, type Served } from './browser.js';

let s: Sandbox;
let srv: Served;
let task: SeededTask;

browserFile(async () => {
  s = await examplesProject();
  // The task is written before the server starts, through the library on the same store.
  const swarm = await Swarm.open({ cwd: s.root, env: s.env });
  try {
    const run = await swarm.startRun('echo-chain', { message: 'consensus' });
    await swarm.runToCompletion(run);
    task = await seedFinalizedTask(swarm, run);
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

describe('consensus tasks in the dashboard', () => {
  it('lists the task, and its run links to it', async () => {
    const page = await open('/tasks');
    const row = page.locator(`tr[data-task="${task.task_id}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-status')).toBe('finalized');
    expect(await row.textContent()).toContain('summary');
    const runPage = await open(`/runs/${task.run_id}`);
    const link = runPage.getByTestId('run-tasks');
    await link.waitFor();
    expect(await link.textContent()).toBe('1 consensus task');
    await link.click();
    await runPage.locator(`tr[data-task="${task.task_id}"]`).waitFor();
    expect(new URL(runPage.url()).searchParams.get('run')).toBe(task.run_id);
    await runPage.locator(`tr[data-task="${task.task_id}"] a`).first().click();
    await runPage.getByTestId('decision').waitFor();
    expect(decodeURIComponent(new URL(runPage.url()).pathname)).toBe(`/tasks/${task.task_id}`);
  });

  it('shows candidates side by side, votes and tally, the decision with its proof, and cost by bucket', async () => {
    const page = await open(`/tasks/${encodeURIComponent(task.task_id)}`);
    await page.getByTestId('decision').waitFor();

    // Candidates, side by side: output, proposer, cost, verification per verifier.
    const winner = page.locator(`[data-candidate="${task.winner}"]`);
    const loser = page.locator(`[data-candidate="${task.loser}"]`);
    expect(await winner.getAttribute('class')).toContain('winner');
    expect(await winner.textContent()).toContain('executor:rt-a');
    expect(await winner.getByTestId('candidate-cost').textContent()).toBe('$0.20');
    expect(await winner.textContent()).toContain('A durable runtime for agents.');
    expect(await winner.locator('[data-verifier="local"] [data-status]').getAttribute('data-status')).toBe('passed');
    expect(await loser.textContent()).toContain('executor:rt-b');
    expect(await loser.locator('[data-verifier="local"] [data-status]').getAttribute('data-status')).toBe('failed');
    expect(await loser.locator('.reason-chip').allTextContents()).toEqual(['SCHEMA_MISMATCH', 'FIELD_MISSING']);
    const [a, b] = await Promise.all([winner.boundingBox(), loser.boundingBox()]);
    expect(a && b && Math.abs(a.y - b.y) < 2 && a.x < b.x).toBe(true);

    // Votes: v3 only committed (its commitment, nothing of its choice); the tally counts the reveals.
    const v3 = page.locator('tr[data-voter="v3"]');
    expect(await v3.getAttribute('data-revealed')).toBe('no');
    expect(await v3.textContent()).toContain('not yet');
    expect(await v3.textContent()).not.toContain(task.winner.slice(0, 10));
    expect(await page.locator('tr[data-voter="v1"]').textContent()).toContain(`approve ${task.winner.slice(0, 10)}`);
    expect(await page.getByTestId('tally').textContent()).toContain('2 of 3 revealed');
    expect(await page.locator(`[data-tally="${task.winner}"]`).textContent()).toContain('2 approves');

    // The decision and its proof: the events it rests on.
    const decision = page.getByTestId('decision');
    expect(await decision.locator('[data-status]').first().getAttribute('data-status')).toBe('finalized');
    const items = decision.locator('.proof li');
    const seqs: number[] = [];
    for (let i = 0; i < (await items.count()); i++) seqs.push(Number(await items.nth(i).getAttribute('data-seq')));
    expect(seqs).toEqual([task.proof.candidate, ...task.proof.reveals]);

    // Cost by bucket.
    const cost = page.getByTestId('cost');
    expect(await cost.locator('tr[data-bucket="explore"]').textContent()).toContain('$0.35');
    expect(await cost.locator('tr[data-bucket="explore"]').textContent()).toContain('$1.00');
    expect(await cost.locator('tr[data-bucket="total"]').textContent()).toContain('$0.46');
    await screenshot(page, 'task');

    // A proof link opens the run's event log, where that event is.
    await decision.locator('.proof li').first().getByRole('link').click();
    await page.locator(`table.events tr[data-seq="${task.proof.candidate}"]`).waitFor();
    expect(await page.locator(`table.events tr[data-seq="${task.proof.candidate}"]`).textContent()).toContain('CANDIDATE_PROPOSED');
  });
});
