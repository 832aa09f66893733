/**
 * Crash safety of a fork, on SQLite and PostgreSQL: the process running a fork (`runs fork --wait`) is
 * killed with SIGKILL in the middle of the fork step; forking the unfinished fork is refused
 * (RUN_NOT_FINISHED, exit 2); `runs resume` finishes it: the interrupted step runs again, the steps
 * after it run once, the copied steps never run in the fork, and its chain verifies. Build first.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { stopPgTestServer } from './helpers/pg.js';
import { executions, FORK_BACKENDS, forkProject } from './helpers/fork-project.js';
import { exited, removeProject, runCli, spawnCli, until } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

describe.each(FORK_BACKENDS)('a fork killed mid-step on $name', ({ env: makeEnv }) => {
  it('resumes without redoing copied steps', async () => {
    const dir = forkProject();
    const env = await makeEnv();
    const cli = (args: string[]) => runCli(args, dir, env);
    try {
      expect((await cli(['agent', 'register', '--all'])).code).toBe(0);
      expect((await cli(['workflow', 'register', '--all'])).code).toBe(0);
      const log = join(dir, 'effects.log');
      const ran = await cli(['run', 'chain', JSON.stringify({ log }), '--json']);
      expect(ran.code, ran.stderr).toBe(0);
      const parentId = (JSON.parse(ran.stdout) as { run_id: string }).run_id;

      // The fork's s2 sleeps on its first attempt (its new input says so): kill the process then.
      const child = spawnCli(['runs', 'fork', parentId, '--at', 's2', '--input', JSON.stringify({ log, slow_step: 's2' }), '--wait'], dir, env);
      const forkId = await until(() => [...executions(log).entries()].find(([run, steps]) => run !== parentId && steps.includes('s2'))?.[0], 40_000, "the fork's s2 to start");
      child.kill('SIGKILL');
      await exited(child);

      const again = await cli(['runs', 'fork', forkId, '--at', 's3']);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain('only a finished run');

      const resumed = await cli(['runs', 'resume', forkId]);
      expect(resumed.code, resumed.stderr).toBe(0);
      const steps = executions(log).get(forkId) ?? [];
      // s2 twice (killed, then resumed), what follows it once; s1 and t were copied, never run here.
      expect(steps.sort()).toEqual(['s2', 's2', 's3', 's4']);
      const shown = JSON.parse((await cli(['runs', 'show', forkId, '--json'])).stdout) as { status: string; fork_step_id: string; steps: Array<{ id: string; status: string }> };
      expect(shown.status).toBe('completed');
      expect(shown.fork_step_id).toBe('s2');
      expect(shown.steps.every((s) => s.status === 'completed')).toBe(true);
      const verified = await cli(['runs', 'verify', forkId]);
      expect(verified.code, verified.stderr).toBe(0);
    } finally {
      removeProject(dir);
    }
  });
});
