/**
 * Crash safety of consensus tasks: a worker process is killed with SIGKILL at a named point
 * (SWARM_FAULT) between the vote commits and their reveals, and between DECISION_COMMITTED and
 * DECISION_FINALIZED; another worker then takes the step over. The task finalizes exactly once: one
 * decision row, one DECISION_COMMITTED and one DECISION_FINALIZED, every proposal and every commit
 * once (the process agents that propose ran once each), and the event chain verifies. Used by
 * test/consensus-crash-sqlite.test.ts and test/consensus-crash-postgres.test.ts.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { Swarm } from '../../src/swarm.js';
import { pgTestServer } from './pg.js';
import { exited, removeProject, runCli, spawnCli, tempProject, writeAgent } from './project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A project with a node agent that proposes `{answer: 4}` and appends one line per run to `effects.log`. */
async function project(backend: 'sqlite' | 'postgres'): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = tempProject('name: test\nsandbox: none\n');
  cleanups.push(() => removeProject(dir));
  const env: Record<string, string> = {};
  if (backend === 'postgres') {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    env.SWARM_DATABASE_URL = url;
    cleanups.push(() => server.dropDatabase(url));
  }
  writeAgent(
    dir,
    'solver',
    `name: solver
version: 1.0.0
runtime: { type: node, entry: main.js, timeout_seconds: 60 }
`,
    {
      'main.js': `const fs = require('fs');
const [, o] = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(join(dir, 'effects.log'))}, process.env.SWARM_IDEMPOTENCY_KEY + '\\n');
fs.writeFileSync(o, JSON.stringify({ answer: 4 }));
`,
    },
  );
  expect((await runCli(['agent', 'register', 'agents/solver'], dir, env)).code).toBe(0);
  writeFileSync(
    join(dir, 'task.json'),
    JSON.stringify({
      task_id: 'crash-1',
      task_type: 'add',
      inputs: { a: 2, b: 2 },
      output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } },
      proposers: [{ agent: 'solver', samples: 2 }],
      verification: { policy: 'vp.schema_only.v1' },
      voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], reveal_deadline_ms: 60_000 },
    }),
  );
  return { dir, env };
}

export async function crashThenResume(backend: 'sqlite' | 'postgres', point: string): Promise<void> {
  const { dir, env } = await project(backend);
  const sub = await runCli(['task', 'submit', 'task.json', '--json'], dir, env);
  expect(sub.code, sub.stderr).toBe(0);
  const { run_id: runId } = JSON.parse(sub.stdout) as { run_id: string };
  const child = spawnCli(['worker'], dir, { ...env, SWARM_FAULT: `${point}:task` });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  await exited(child);
  expect(child.signalCode, stderr).toBe('SIGKILL');

  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...env }, overrides: { pollMs: 50 } });
  cleanups.push(() => swarm.close());
  const before = await swarm.getTask('crash-1');
  expect(before?.task.status).toBe(point === 'consensus-after-vote-commit' ? 'voting' : 'committed');
  const { run, steps } = await swarm.runToCompletion(runId, { pollMs: 50 });
  expect(run.status).toBe('completed');
  const out = steps.find((s) => s.step_id === 'task');
  expect(out?.attempt).toBe(2);
  expect(out?.outputs).toMatchObject({ task_id: 'crash-1', status: 'finalized', final_answer: { answer: 4 } });

  const events = await swarm.events(runId);
  const count = (t: string): number => events.filter((e) => e.type === t).length;
  expect(count('CANDIDATE_PROPOSED')).toBe(2);
  expect(count('VOTE_COMMIT')).toBe(3);
  expect(count('VOTE_REVEAL')).toBe(3);
  expect(count('DECISION_COMMITTED')).toBe(1);
  expect(count('DECISION_FINALIZED')).toBe(1);
  expect((await swarm.verify(runId)).ok).toBe(true);
  const view = await swarm.getTask('crash-1');
  expect(view?.decision?.finalized_at).toBeTruthy();
  expect(view?.candidates).toHaveLength(2);
  expect(view?.votes.map((v) => v.voter_id).sort()).toEqual(['v1', 'v2', 'v3']);
  // The proposing agents ran once each: the new worker proposed nothing again.
  const fx = existsSync(join(dir, 'effects.log')) ? readFileSync(join(dir, 'effects.log'), 'utf8').trim().split('\n') : [];
  expect(fx.sort()).toEqual(['crash-1/agent:solver#1/1', 'crash-1/agent:solver#2/1']);
  // A second finalize writes nothing: the decision row is the task's one.
  expect((await swarm.taskDecision('crash-1')).decision?.candidate_hash).toBe(view?.decision?.candidate_hash);
}

