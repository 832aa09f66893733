/**
 * The attempt cgroups of a worker killed with SIGKILL: they stay until the worker that reaps it
 * removes them. Split from sandbox.test.ts because it runs alone (vitest.config.ts, SERIAL): any
 * other process reaping dead workers meanwhile sweeps the cgroups of every dead worker on the host.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pidAlive } from '../src/engine/reaper.js';
import { removeProject, runCli, spawnCli, tempProject, until, writeAgent, writeWorkflow } from './helpers/project.js';
import { agentPids, leftoverCgroups } from './helpers/processes.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('cgroups of dead workers', () => {
  it('a worker killed with SIGKILL mid-step leaves its attempt cgroup; the worker that reaps it removes it', async () => {
    const dir = tempProject('name: test\n');
    cleanups.push(() => removeProject(dir));
    writeAgent(dir, 'slow', 'name: slow\nversion: 1.0.0\nruntime: { type: bash, entry: run.sh }\n', {
      'run.sh': `#!/usr/bin/env bash\nif [ "$SWARM_ATTEMPT" = 1 ]; then sleep 60; fi\necho '{}' > "$2"\n`,
    });
    writeWorkflow(dir, 'one', 'name: one\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: slow@1.0.0\n');
    expect((await runCli(['agent', 'register', 'agents/slow'], dir)).code).toBe(0);
    expect((await runCli(['workflow', 'register', 'workflows/one'], dir)).code).toBe(0);
    const id = (await runCli(['run', 'one', '--detach'], dir)).stdout.trim();
    const worker = spawnCli(['worker'], dir);
    cleanups.push(() => void worker.kill('SIGKILL'));
    const pid = worker.pid as number;
    await until(() => agentPids(id).length > 0 && leftoverCgroups(pid).length > 0, 15_000, 'the step to run in its cgroup');
    worker.kill('SIGKILL');
    await until(() => !pidAlive(pid), 5000, 'the worker to die');
    expect(leftoverCgroups(pid)).toHaveLength(1);
    const resumed = await runCli(['runs', 'resume', id], dir);
    expect(resumed.code).toBe(0);
    expect(leftoverCgroups(pid)).toEqual([]);
    expect(agentPids(id)).toEqual([]);
  });
});
