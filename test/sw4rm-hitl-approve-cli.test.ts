/**
 * `swarm approve` of a SW4RM HITL invocation's run: the SW4RM server that asked for the decision
 * reads it and finishes the run, so the CLI says so instead of asking for a worker (which an
 * ordinary waiting run needs: test/llm-cli.test.ts).
 */
import { afterAll, expect, it } from 'vitest';
import { HitlBridge } from '../src/sw4rm/scheduler/hitl.js';
import { Swarm } from '../src/swarm.js';
import { cliEnv, removeProject, runCli, tempProject } from './helpers/project.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeProject));

it('approving a HITL run names the SW4RM server as what finishes it, not a missing worker', async () => {
  const dir = tempProject();
  dirs.push(dir);
  const swarm = await Swarm.open({ cwd: dir, env: cliEnv(dir) });
  let runId: string;
  try {
    const hitl = new HitlBridge(swarm, { pollMs: 20, now: () => Date.now() });
    ({ run_id: runId } = await hitl.invoke({ reason_type: 'SECURITY_APPROVAL', context: Buffer.from('{"host":"db-1"}'), proposed_actions: ['rotate-keys'], priority: 5 }, 'inv-1'));
    expect((await swarm.getRun(runId)).run).toMatchObject({ workflow_name: 'sw4rm-hitl', status: 'waiting' });
  } finally {
    await swarm.close();
  }
  const out = await runCli(['approve', runId, '--reason', 'rotate-keys', '--by', 'ops'], dir);
  expect(out.code, out.stderr).toBe(0);
  expect(out.stderr).toContain('approved: step decide');
  expect(out.stderr).toContain('the SW4RM server that asked for this decision reads it and finishes the run');
  expect(out.stderr).not.toContain('no worker is running');
}, 30_000);
