/**
 * `swarm task watch <id>` through the built CLI on a SQLite project: started before the task runs,
 * it prints the task's lifecycle events as they happen (exactly the task's events of the run's log,
 * in order) and exits 0 once the task is finalized, 3 when it failed; an unknown task exits with an
 * error.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { exited, removeProject, runCli, spawnCli, tempProject, writeAgent, writeSolverAgent } from './helpers/project.js';

let dir: string;
beforeAll(async () => {
  dir = tempProject('name: test\nsandbox: none\n');
  writeSolverAgent(dir);
  expect((await runCli(['agent', 'register', 'agents/solver'], dir)).code).toBe(0);
  writeAgent(dir, 'spender', 'name: spender\nversion: 1.0.0\nruntime: { type: node, entry: main.js, timeout_seconds: 60 }\n', {
    'main.js': `require('fs').writeFileSync(process.argv[3], JSON.stringify({ answer: 4, cost_usd: 0.02 }));\n`,
  });
  expect((await runCli(['agent', 'register', 'agents/spender'], dir)).code).toBe(0);
  const base = { task_type: 'add', inputs: { a: 2, b: 2 }, proposers: [{ agent: 'solver' }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }] } };
  writeFileSync(join(dir, 'good.json'), JSON.stringify({ ...base, task_id: 'w-good', output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } } }));
  writeFileSync(join(dir, 'spend.json'), JSON.stringify({ ...base, task_id: 'w-spend', proposers: [{ agent: 'spender' }], explore: { max_rounds: 4 }, budget: { explore: 0.03 }, output_schema: { type: 'object', required: ['answer'] } }));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...base, task_id: 'w-bad', output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'string' } } } }));
}, 60_000);
afterAll(() => removeProject(dir));

interface Line {
  seq: number;
  type: string;
  hash: string;
  data: { task_id: string };
}

async function watchWhileRunning(file: string, id: string): Promise<{ code: number | null; lines: Line[]; stderr: string }> {
  const sub = await runCli(['task', 'submit', file], dir);
  expect(sub.code, sub.stderr).toBe(0);
  const watch = spawnCli(['task', 'watch', id, '--json'], dir);
  let stdout = '';
  let stderr = '';
  watch.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  watch.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  // The task has not run yet: the watcher is still following it.
  await new Promise((r) => setTimeout(r, 1500));
  expect(watch.exitCode).toBeNull();
  await runCli(['task', 'submit', file, '--wait'], dir);
  const code = await exited(watch);
  const lines = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
  return { code, lines, stderr };
}

async function logOf(id: string): Promise<Line[]> {
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') } });
  try {
    const d = await swarm.taskDecision(id);
    return (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === id) as unknown as Line[];
  } finally {
    await swarm.close();
  }
}

describe('swarm task watch', () => {
  it('follows a task to its decision: its events of the log, in order, then exit 0', async () => {
    const { code, lines, stderr } = await watchWhileRunning('good.json', 'w-good');
    expect(code, stderr).toBe(0);
    const log = await logOf('w-good');
    expect(log.length).toBeGreaterThan(5);
    expect(lines.map((l) => [l.seq, l.type, l.hash])).toEqual(log.map((e) => [e.seq, e.type, e.hash]));
    expect(lines.every((l) => l.data.task_id === 'w-good')).toBe(true);
    expect(lines[0]?.type).toBe('TASK_CREATED');
    expect(lines.at(-1)?.type).toBe('DECISION_FINALIZED');
  }, 60_000);

  it('exits 3 when the task fails; the last line is TASK_FAILED', async () => {
    const { code, lines } = await watchWhileRunning('bad.json', 'w-bad');
    expect(code).toBe(3);
    const log = await logOf('w-bad');
    expect(lines.map((l) => l.seq)).toEqual(log.map((e) => e.seq));
    expect(lines.at(-1)).toMatchObject({ type: 'TASK_FAILED', data: { task_id: 'w-bad', reason_code: 1404 } });
  }, 60_000);

  it('a spent explore bucket: watch shows the stop, swarm task cost shows the bucket exhausted', async () => {
    const { code, lines } = await watchWhileRunning('spend.json', 'w-spend');
    expect(code).toBe(0);
    // Rounds 1 and 2 spend 0.04 of 0.03: round 3 is not run.
    expect(lines.filter((l) => l.type === 'CANDIDATE_PROPOSED')).toHaveLength(2);
    expect(lines.filter((l) => l.type === 'TASK_STAGE_STOPPED')).toMatchObject([{ data: { task_id: 'w-spend', bucket: 'explore', reason_code: 1405, reason: 'STAGE_BUDGET_EXHAUSTED' } }]);
    const json = await runCli(['task', 'cost', 'w-spend', '--json'], dir);
    expect(json.code).toBe(0);
    const c = JSON.parse(json.stdout) as { explore_usd: number; exhausted: string[]; budget: Record<string, number> };
    expect(c.explore_usd).toBeCloseTo(0.04);
    expect(c).toMatchObject({ exhausted: ['explore'], budget: { explore: 0.03 } });
    const text = await runCli(['task', 'cost', 'w-spend'], dir);
    expect(text.stdout).toMatch(/explore\s+\$0\.0400\s+\$0\.0300\s+yes/);
    expect(text.stdout).not.toMatch(/verify\s+\S+\s+\S+\s+yes/);
  }, 60_000);

  it('prints the events as text without --json, and refuses an unknown task', async () => {
    const text = await runCli(['task', 'watch', 'w-good'], dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}TASK_CREATED/);
    expect(text.stdout.trim().split('\n').at(-1)).toContain('DECISION_FINALIZED');
    const unknown = await runCli(['task', 'watch', 'nope'], dir);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("no consensus task 'nope'");
  }, 60_000);
});
