/**
 * HTTP executors as proposers and as a verifier: two reference executors (real HTTP servers
 * speaking the executor contract) propose, one of them verifies, kernel voters decide. Their
 * candidates are signed with their own keys, pinned when they were registered.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createReferenceExecutor } from '../src/executors/http/reference-server.js';
import { builtinAgent, openProject, removeProject, tempProject } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('two HTTP executors propose, one verifies, the kernel voters finalize', async () => {
  const dir = tempProject();
  cleanups.push(() => removeProject(dir));
  const swarm = await openProject(dir, { overrides: { pollMs: 50 } });
  cleanups.push(() => swarm.close());
  swarm.defineBuiltin('add', async (inputs) => ({ answer: Number(inputs.a) + Number(inputs.b) }));
  builtinAgent(dir, 'add', 'add');
  await swarm.registerAgent(join(dir, 'agents', 'add'));
  for (const name of ['rt-a', 'rt-b']) {
    const ex = await createReferenceExecutor({ swarm, stateDir: join(dir, '.swarm', name), name });
    const server: ServerType = await new Promise((res) => {
      const s = serve({ fetch: ex.app.fetch, port: 0, hostname: '127.0.0.1' }, () => res(s));
    });
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    await swarm.store.putExecutor({ name, base_url: `http://127.0.0.1:${port}`, token_secret: null, public_key: ex.publicKey });
  }
  const { task_id, run_id } = await swarm.submitTask({
    task_type: 'add',
    inputs: { a: 40, b: 2 },
    output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } },
    proposers: [{ executor: 'rt-a' }, { executor: 'rt-b' }],
    verification: { policy: 'vp.schema_only.v1', verifiers: [{ executor: 'rt-a' }] },
    voting: { voters: [{ id: 'v1' }, { id: 'v2' }] },
  });
  const { run } = await swarm.runToCompletion(run_id, { pollMs: 50 });
  expect(run.status).toBe('completed');
  const view = await swarm.getTask(task_id);
  expect(view?.candidates.map((c) => c.proposer_id).sort()).toEqual(['executor:rt-a', 'executor:rt-b']);
  expect(view?.results.map((r) => [r.verifier_id, r.status])).toEqual([['executor:rt-a', 'passed']]);
  expect(view?.decision).toMatchObject({ output: { answer: 42 }, quorum: 2 });
  expect((await swarm.events(run_id)).filter((e) => e.type === 'TASK_INPUT_REJECTED')).toEqual([]);
}, 60_000);
