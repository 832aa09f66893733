/**
 * `swarm runs fork` on SQLite and PostgreSQL through the built command line: the refusals with exit
 * 2, a fork that runs the step and what follows once more (the side branch and the steps before are
 * copied with equal outputs), `runs verify` of the fork, and `runs show` with the lineage (text and
 * --json). Build first: the CLI runs dist/.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { stopPgTestServer } from './helpers/pg.js';
import { executions, FORK_BACKENDS, forkProject } from './helpers/fork-project.js';
import { removeProject, runCli } from './helpers/project.js';

afterAll(async () => {
  await stopPgTestServer();
});

interface RunDoc {
  run_id: string;
  status: string;
  steps: Array<{ id: string; status: string; outputs: unknown; attempts: number }>;
  fork_step_id?: string;
  parent_run_id?: string;
  lineage?: { parent_run_id: string | null; fork_step_id: string | null; depth: number; children: Array<{ run_id: string; fork_step_id: string }>; tree: Array<{ run_id: string; depth: number }> };
}

describe.each(FORK_BACKENDS)('swarm runs fork on $name', ({ env: makeEnv }) => {
  it('refuses bad requests with exit 2; forks, reruns the step and its descendants once, verifies, shows the lineage', async () => {
    const dir = forkProject();
    const env = await makeEnv();
    const cli = (args: string[]) => runCli(args, dir, env);
    try {
      expect((await cli(['agent', 'register', '--all'])).code).toBe(0);
      expect((await cli(['workflow', 'register', '--all'])).code).toBe(0);
      const log = join(dir, 'effects.log');
      const ran = await cli(['run', 'chain', JSON.stringify({ log }), '--json']);
      expect(ran.code, ran.stderr).toBe(0);
      const parent = JSON.parse(ran.stdout) as RunDoc;
      const parentDoc = JSON.parse((await cli(['runs', 'show', parent.run_id, '--json'])).stdout) as RunDoc;

      const unknown = await cli(['runs', 'fork', parent.run_id, '--at', 'zz']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("step 'zz' is not a step of this run; its steps are: s1, s2, t, s3, s4");
      const notCopied = await cli(['runs', 'fork', parent.run_id, '--at', 's2', '--replace-output', 's3={"step":"x","r":1}']);
      expect(notCopied.code).toBe(2);
      expect(notCopied.stderr).toContain("step 's3' is not copied by this fork");
      const badJson = await cli(['runs', 'fork', parent.run_id, '--at', 's2', '--replace-output', 's1={oops']);
      expect(badJson.code).toBe(2);
      expect(badJson.stderr).toContain('--replace-output s1: the value is not valid JSON');
      const badSchema = await cli(['runs', 'fork', parent.run_id, '--at', 's2', '--replace-output', 's1={"step":7}']);
      expect(badSchema.code).toBe(2);
      expect(badSchema.stderr).toContain("does not match agent effect@1.0.0's outputs");

      const forked = await cli(['runs', 'fork', parent.run_id, '--at', 's3', '--wait', '--json']);
      expect(forked.code, forked.stderr).toBe(0);
      const fork = JSON.parse(forked.stdout) as RunDoc;
      expect(fork.status).toBe('completed');
      expect(fork).toMatchObject({ parent_run_id: parent.run_id, fork_step_id: 's3' });
      const runs = executions(log);
      expect(runs.get(parent.run_id)?.sort()).toEqual(['s1', 's2', 's3', 's4', 't']);
      expect(runs.get(fork.run_id)?.sort()).toEqual(['s3', 's4']);
      const outputs = (d: RunDoc): Record<string, unknown> => Object.fromEntries(d.steps.map((s) => [s.id, s.outputs]));
      const forkDoc = JSON.parse((await cli(['runs', 'show', fork.run_id, '--json'])).stdout) as RunDoc;
      for (const s of ['s1', 's2', 't']) expect(outputs(forkDoc)[s]).toEqual(outputs(parentDoc)[s]);
      expect(outputs(forkDoc).s3).not.toEqual(outputs(parentDoc).s3);

      const verified = await cli(['runs', 'verify', fork.run_id]);
      expect(verified.code, verified.stderr).toBe(0);

      const shown = await cli(['runs', 'show', fork.run_id]);
      expect(shown.stdout).toContain(`forked from: run ${parent.run_id} at step 's3'`);
      expect(shown.stdout).toContain('lineage:');
      expect(shown.stdout).toMatch(new RegExp(`└─ .*${fork.run_id} at 's3'`));
      const parentShown = JSON.parse((await cli(['runs', 'show', parent.run_id, '--json'])).stdout) as RunDoc;
      expect(parentShown.lineage).toMatchObject({ parent_run_id: null, depth: 0, children: [{ run_id: fork.run_id, fork_step_id: 's3' }] });
      expect(forkDoc.lineage).toMatchObject({ parent_run_id: parent.run_id, fork_step_id: 's3', depth: 1 });
      expect(forkDoc.lineage?.tree.map((n) => n.run_id)).toEqual([parent.run_id, fork.run_id]);

      // Without --wait: the fork's id on stdout, what it copies on stderr.
      const detached = await cli(['runs', 'fork', fork.run_id, '--at', 's4']);
      expect(detached.code, detached.stderr).toBe(0);
      expect(detached.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
      expect(detached.stderr).toContain('runs again s4');
    } finally {
      removeProject(dir);
    }
  });
});
