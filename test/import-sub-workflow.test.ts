/**
 * Importing a run whose workflow has a sub-workflow step (examples/workflows/parent-child: step
 * `child` runs workflow `echo-chain`), through the real CLI on real files. The bundle carries the
 * run's own workflow, not the ones its sub-workflow steps start (resolved in the local registry when
 * the step runs, src/engine/nesting.ts), so as with a missing agent: where `echo-chain` is not
 * registered the import is refused (exit 2, WORKFLOW_NOT_FOUND, naming the step and the workflow)
 * and nothing is written; registered, the import succeeds and a fork at the step runs the child
 * here; registered but disabled (imported from a bundle of the child run), the import succeeds with
 * a note naming it, and a fork at the step runs once it is enabled.
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupSandboxes, makeSandbox, ok, type Sandbox, show } from './helpers/cli.js';
import { EXAMPLES } from './helpers/project.js';

afterAll(() => cleanupSandboxes());

const ECHO = join(EXAMPLES, 'agents', 'echo');
const ECHO_CHAIN = join(EXAMPLES, 'workflows', 'echo-chain');
const PARENT_CHILD = join(EXAMPLES, 'workflows', 'parent-child');

/** A project whose steps run unsandboxed (the echo agent reads and writes its files in place). */
const project = (): Sandbox => makeSandbox({ env: { SWARM_SANDBOX: 'none' } });

interface Imported {
  run_id: string;
  created: boolean;
  registered_workflow: boolean;
  notes: string[];
}

const count = (s: Sandbox, table: 'workflow_runs' | 'workflows' | 'events'): number => s.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)[0]!.n;

describe('importing a run with a sub-workflow step', () => {
  let parent: { id: string; bytes: Buffer };
  let child: { id: string; bytes: Buffer };

  beforeAll(async () => {
    const a = project();
    await ok(a, ['agent', 'register', ECHO]);
    await ok(a, ['workflow', 'register', ECHO_CHAIN]);
    await ok(a, ['workflow', 'register', PARENT_CHILD]);
    const run = await a.json<{ run_id: string; status: string }>(['run', 'parent-child', '{"message":"from afar"}', '--json']);
    expect(run.status).toBe('completed');
    const [childRow] = a.query<{ id: string }>('SELECT id FROM workflow_runs WHERE parent_run_id = ?', run.run_id);
    await ok(a, ['runs', 'export', run.run_id, '-o', 'parent.tar']);
    await ok(a, ['runs', 'export', childRow!.id, '-o', 'child.tar']);
    parent = { id: run.run_id, bytes: readFileSync(a.path('parent.tar')) };
    child = { id: childRow!.id, bytes: readFileSync(a.path('child.tar')) };
  }, 120_000);

  async function forkAtChild(s: Sandbox): Promise<void> {
    const fork = await s.run(['runs', 'fork', parent.id, '--at', 'child', '--wait', '--json']);
    expect(fork.code, show(fork)).toBe(0);
    expect(JSON.parse(fork.stdout)).toMatchObject({ status: 'completed' });
    expect(fork.stdout).toContain('the child said: Step 2 received: from afar');
  }

  it('the sub-workflow not registered here: refused with exit 2 naming the step and the workflow, and nothing is written; registered, it imports and a fork at the step runs the child here', async () => {
    const b = project();
    await ok(b, ['agent', 'register', ECHO]);
    writeFileSync(b.path('parent.tar'), parent.bytes);
    const refused = await b.run(['runs', 'import', 'parent.tar']);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain("workflow parent-child@1.0.0, step 'child': sub-workflow 'echo-chain' is not registered here; register it, then import again");
    expect([count(b, 'workflow_runs'), count(b, 'workflows'), count(b, 'events')]).toEqual([0, 0, 0]);

    await ok(b, ['workflow', 'register', ECHO_CHAIN]);
    const imported = JSON.parse((await ok(b, ['runs', 'import', 'parent.tar', '--json'])).stdout) as Imported;
    expect(imported).toMatchObject({ run_id: parent.id, created: true, registered_workflow: true });
    expect(imported.notes.filter((n) => n.includes('sub-workflow'))).toEqual([]);
    await forkAtChild(b);
  });

  it('the sub-workflow registered but disabled (imported from a bundle of its own run): imported, with a note naming it; a fork at the step runs once it is enabled', async () => {
    const c = project();
    await ok(c, ['agent', 'register', ECHO]);
    writeFileSync(c.path('child.tar'), child.bytes);
    writeFileSync(c.path('parent.tar'), parent.bytes);
    const first = JSON.parse((await ok(c, ['runs', 'import', 'child.tar', '--json'])).stdout) as Imported;
    expect(first).toMatchObject({ run_id: child.id, registered_workflow: true });
    const imported = JSON.parse((await ok(c, ['runs', 'import', 'parent.tar', '--json'])).stdout) as Imported;
    expect(imported.created).toBe(true);
    expect(imported.notes).toContain("sub-workflow echo-chain@1.0.0 of step 'child' is disabled here: a fork that runs that step fails until 'swarm workflow enable echo-chain'");
    await ok(c, ['workflow', 'enable', 'echo-chain']);
    await forkAtChild(c);
  });
});
