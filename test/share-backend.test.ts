/**
 * The remote backend interface (src/branching/backend.ts) and the local backend behind it, on a real
 * SQLite project: pinned workflow refs (a full commit sha only; branches, tags, short shas and paths
 * outside .github/workflows refused), dispatch runs in the background, collect waits and exports
 * (encrypted to the request's recipients), cancel stops a sleeping run, fork jobs go to the fork
 * runner, and a refused request writes nothing.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePinnedWorkflowRef } from '../src/branching/backend.js';
import { localBackend, LocalBackend, type BundleExporter } from '../src/branching/local-backend.js';
import { verifyBundle } from '../src/bundles/verify.js';
import { decryptBundle, generateAgeIdentity } from '../src/bundles/encrypt.js';
import type { Swarm } from '../src/swarm.js';
import { EXAMPLES, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

const SHA = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

describe('pinned workflow refs', () => {
  it('accepts owner/repo/.github/workflows/<file>.yml@<40 hex>', () => {
    expect(parsePinnedWorkflowRef(`acme/runs/.github/workflows/branch.yml@${SHA}`)).toEqual({ owner: 'acme', repo: 'runs', path: '.github/workflows/branch.yml', sha: SHA, ref: `acme/runs/.github/workflows/branch.yml@${SHA}` });
    expect(parsePinnedWorkflowRef(`a-b/r.e_p-o/.github/workflows/x.yaml@${SHA}`).repo).toBe('r.e_p-o');
  });

  it.each([
    ['acme/runs/.github/workflows/branch.yml@main', 'WORKFLOW_REF_NOT_PINNED', /a branch or tag name/],
    ['acme/runs/.github/workflows/branch.yml@v1.2.0', 'WORKFLOW_REF_NOT_PINNED', /a branch or tag name/],
    ['acme/runs/.github/workflows/branch.yml@4b825dc', 'WORKFLOW_REF_NOT_PINNED', /a short commit sha/],
    [`acme/runs/.github/workflows/branch.yml@${SHA.toUpperCase()}`, 'WORKFLOW_REF_NOT_PINNED', /upper-case/],
    ['acme/runs/.github/workflows/branch.yml', 'WORKFLOW_REF_NOT_PINNED', /names no commit/],
    [`acme/runs/.github/workflows/branch.yml@${SHA}0`, 'WORKFLOW_REF_NOT_PINNED', /branch or tag/],
    [`acme/runs/ci/branch.yml@${SHA}`, 'WORKFLOW_REF_INVALID', /directly under .github\/workflows/],
    [`acme/runs/.github/workflows/../../x.yml@${SHA}`, 'WORKFLOW_REF_INVALID', /directly under/],
    [`acme/runs/.github/workflows/sub/x.yml@${SHA}`, 'WORKFLOW_REF_INVALID', /directly under/],
    [`acme/runs/.github/workflows/x.sh@${SHA}`, 'WORKFLOW_REF_INVALID', /ending .yml/],
    [`-acme/runs/.github/workflows/x.yml@${SHA}`, 'WORKFLOW_REF_INVALID', /not a GitHub owner/],
    [`acme/../.github/workflows/x.yml@${SHA}`, 'WORKFLOW_REF_INVALID', /not a repository name/],
    [`acme/.github/workflows/x.yml@${SHA}`, 'WORKFLOW_REF_INVALID', /directly under/],
  ])('refuses %s', (ref, code, message) => {
    let err: { code?: string; exitCode?: number; message?: string } = {};
    try {
      parsePinnedWorkflowRef(ref);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toMatchObject({ code, exitCode: 2 });
    expect(err.message).toMatch(message);
  });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A stand-in bundle: the run's id, status and step outputs (the backend only moves bytes). */
const exportStub: BundleExporter = async (swarm, runId) => {
  const { run, steps } = await swarm.getRun(runId);
  return new TextEncoder().encode(JSON.stringify({ id: run.id, status: run.status, outputs: steps.map((s) => [s.step_id, s.outputs]) }));
};

async function project(): Promise<{ swarm: Swarm; dir: string }> {
  const dir = tempProject();
  const swarm = await openProject(dir);
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  await swarm.registerAgent(join(EXAMPLES, 'agents', 'echo'));
  writeWorkflow(dir, 'chain', 'name: chain\nversion: 1.0.0\nsteps:\n  - id: a\n    agent: echo@1.0.0\n    inputs: { message: "${trigger.m}" }\n  - id: b\n    agent: echo@1.0.0\n    inputs: { message: "${steps.a.outputs.echoed}!" }\n');
  writeWorkflow(dir, 'slow', 'name: slow\nversion: 1.0.0\nsteps:\n  - id: nap\n    kind: sleep\n    for: 1h\n  - id: after\n    agent: echo@1.0.0\n    depends_on: nap\n    inputs: { message: late }\n');
  for (const r of await swarm.registerWorkflows(join(dir, 'workflows'))) if ('error' in r) throw r.error;
  return { swarm, dir };
}

describe('the local backend', () => {
  it('dispatch runs in the background; collect waits and exports; encrypted to the recipients asked for', async () => {
    const { swarm } = await project();
    const backend = new LocalBackend(swarm, { exportBundle: exportStub });
    const h = await backend.dispatch({ job: { kind: 'run', workflow: 'chain', input: { m: 'hi' } }, workflow_ref: `acme/runs/.github/workflows/branch.yml@${SHA}` });
    expect(h).toMatchObject({ backend: 'local', runner_class: 'swarm-local/sqlite', workflow_ref: `acme/runs/.github/workflows/branch.yml@${SHA}` });
    expect(h.run_id).toBe(h.id);
    const got = await backend.collect(h);
    expect(got).toMatchObject({ id: h.id, run_id: h.id, state: 'completed', encrypted: false });
    const doc = JSON.parse(new TextDecoder().decode(got.bundle)) as { status: string; outputs: Array<[string, unknown]> };
    expect(doc.status).toBe('completed');
    expect(doc.outputs).toContainEqual(['b', { echoed: 'hi!' }]);
    expect(await backend.status(h)).toEqual({ id: h.id, run_id: h.id, state: 'completed' });

    const key = await generateAgeIdentity();
    const h2 = await backend.dispatch({ job: { kind: 'run', workflow: 'chain', input: { m: 'secret' } }, encrypt_to: [key.recipient] });
    const sealed = await backend.collect(h2);
    expect(sealed.encrypted).toBe(true);
    const opened = JSON.parse(new TextDecoder().decode(await decryptBundle(sealed.bundle, [key.identity]))) as { outputs: Array<[string, unknown]> };
    expect(opened.outputs).toContainEqual(['b', { echoed: 'secret!' }]);
  });

  it('cancel stops a sleeping run; collecting then gives the cancelled run', async () => {
    const { swarm } = await project();
    const backend = new LocalBackend(swarm, { exportBundle: exportStub });
    const h = await backend.dispatch({ job: { kind: 'run', workflow: 'slow' } });
    const deadline = Date.now() + 20_000;
    while ((await backend.status(h)).state !== 'waiting' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await backend.status(h)).state).toBe('waiting');
    expect(await backend.cancel(h)).toEqual({ id: h.id, run_id: h.id, state: 'cancelled' });
    const got = await backend.collect(h);
    expect(got.state).toBe('cancelled');
    expect((JSON.parse(new TextDecoder().decode(got.bundle)) as { status: string }).status).toBe('cancelled');
    // Cancelling again is harmless.
    expect((await backend.cancel(h)).state).toBe('cancelled');
  });

  it('fork jobs go to the fork runner; refused requests write nothing', async () => {
    const { swarm } = await project();
    const plain = new LocalBackend(swarm, { exportBundle: exportStub });
    await expect(plain.dispatch({ job: { kind: 'fork', run_id: 'x', at: 'b' } })).rejects.toMatchObject({ code: 'BACKEND_CANNOT_FORK', exitCode: 2 });
    await expect(plain.dispatch({ job: { kind: 'run', workflow: 'chain', input: { m: 'x' } }, workflow_ref: 'acme/runs/.github/workflows/branch.yml@main' })).rejects.toMatchObject({ code: 'WORKFLOW_REF_NOT_PINNED' });
    await expect(plain.dispatch({ job: { kind: 'run', workflow: 'chain', input: { m: 'x' } }, encrypt_to: ['age1nope'] })).rejects.toMatchObject({ code: 'AGE_RECIPIENT_INVALID' });
    expect(await swarm.listRuns()).toEqual([]);

    const calls: unknown[] = [];
    const forking = new LocalBackend(swarm, {
      exportBundle: exportStub,
      // A stand-in fork: records the job and starts a run of the same workflow.
      forkRun: async (s, job) => {
        calls.push(job);
        return s.startRun('chain', job.input ?? {});
      },
    });
    const h = await forking.dispatch({ job: { kind: 'fork', run_id: 'parent', at: 'b', input: { m: 'fork' }, replace_outputs: { a: { message: 'x' } } } });
    expect(calls).toEqual([{ kind: 'fork', run_id: 'parent', at: 'b', input: { m: 'fork' }, replace_outputs: { a: { message: 'x' } } }]);
    expect((await forking.collect(h)).state).toBe('completed');
  });

  it('wired to the real fork and export: a run and its fork collected as bundles that verify, the fork against its parent', async () => {
    const { swarm } = await project();
    const backend = await localBackend(swarm);
    const h = await backend.dispatch({ job: { kind: 'run', workflow: 'chain', input: { m: 'real' } } });
    const parent = await backend.collect(h);
    expect((await verifyBundle(Buffer.from(parent.bundle))).ok).toBe(true);
    const f = await backend.dispatch({ job: { kind: 'fork', run_id: h.id, at: 'b', replace_outputs: { a: { echoed: 'other' } } } });
    const fork = await backend.collect(f);
    expect(fork.state).toBe('completed');
    const report = await verifyBundle(Buffer.from(fork.bundle), { parent: Buffer.from(parent.bundle) });
    expect(report).toMatchObject({ ok: true, parent: { state_id: h.id, checked: true } });
    expect((await swarm.getRun(f.id)).steps.find((s) => s.step_id === 'b')?.outputs).toEqual({ echoed: 'other!' });
  });
});
