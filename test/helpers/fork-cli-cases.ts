/**
 * The bodies of the fork tests of the command line, one test file per backend (each file stays short
 * on a busy machine): `runs fork` with its refusals, verify and the lineage in `runs show`; and a fork
 * killed with SIGKILL mid-step, then resumed. Build first: the CLI runs dist/.
 */
import { expect } from 'vitest';
import { join } from 'node:path';
import { executions, forkProject } from './fork-project.js';
import { exited, removeProject, runCli, spawnCli, until } from './project.js';

interface RunDoc {
  run_id: string;
  status: string;
  steps: Array<{ id: string; status: string; outputs: unknown; attempts: number }>;
  fork_step_id?: string;
  parent_run_id?: string;
  lineage?: { parent_run_id: string | null; fork_step_id: string | null; depth: number; children: Array<{ run_id: string; fork_step_id: string }>; tree: Array<{ run_id: string; depth: number }> };
}

export const CLI_CASE = 'refuses bad requests with exit 2; forks, reruns the step and its descendants once, verifies, shows the lineage';

/** Refusals with exit 2; a fork that reruns the step and its descendants once; verify; the lineage in runs show. */
export async function cliCase(makeEnv: () => Promise<Record<string, string>>): Promise<void> {
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
    const twice = await cli(['runs', 'fork', parent.run_id, '--at', 's2', '--replace-output', 's1={"step":"a"}', '--replace-output', 's1={"step":"b"}']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('--replace-output s1 is given twice');

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
}

export const CRASH_CASE = 'resumes without redoing copied steps';

/** A fork killed mid-step resumes without redoing copied steps; forking the unfinished fork is refused. */
export async function crashCase(makeEnv: () => Promise<Record<string, string>>): Promise<void> {
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
}
