/**
 * Submitting standalone consensus tasks through the built CLI (and `swarm serve`, a real process) on
 * a SQLite project: an executor the contract names that is not registered is refused at submission
 * (exit 2 naming the executor and its place; 400 over HTTP), nothing written; a task whose run failed
 * before creating it reads as failed with the run's error (`task submit --wait`, `decision`, `watch`
 * exit 3; `cost` and GET /api/v1/tasks/{id} say why), never as pending; the same task_id with the same
 * contract is the first run, with another contract a refusal (exit 2; 409); `task list --run` takes
 * the short id, a prefix or a suffix, and an unknown run exits 2 as `runs show` does; `task vote`
 * with the task id before its verb is refused with the right form.
 *
 * Build first (`npm run build`): the CLI runs from dist/.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeProject, runCli, spawnCli, tempProject, until, writeSolverAgent, type CliResult } from './helpers/project.js';

let dir: string;
let publicKey: string;

const cli = (args: string[]): Promise<CliResult> => runCli(args, dir);
const show = (r: CliResult): string => `exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** Run the CLI, killing it after `ms` (a command that would wait forever comes back with `timedOut`). */
function cliWithin(args: string[], ms: number): Promise<CliResult & { timedOut: boolean }> {
  return new Promise((res) => {
    const child = spawnCli(args, dir);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin?.end();
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr, timedOut });
    });
  });
}

async function runIds(): Promise<string[]> {
  const r = await cli(['runs', 'list', '--json']);
  expect(r.code, show(r)).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ run_id: string }>).map((x) => x.run_id);
}

const contract = (lines: string[]): string => `${['task_type: add', ...lines, 'output_schema: { type: object, required: [answer] }', 'verification: { policy: vp.schema_only.v1 }'].join('\n')}\n`;

beforeAll(async () => {
  dir = tempProject('name: test\nsandbox: none\n');
  writeSolverAgent(dir, { costUsd: 0.01, typed: true });
  const reg = await cli(['agent', 'register', 'agents/solver']);
  expect(reg.code, show(reg)).toBe(0);
  publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  // The tester's contract, as typed: a proposer executor nobody registered.
  writeFileSync(join(dir, 'q.yaml'), 'task_type: add\ninputs: { a: 1, b: 2 }\noutput_schema: { type: object }\nproposers: [{ executor: nosuchexec }]\nverification: { policy: vp.schema_only.v1 }\nvoting: { voters: [{ id: v1 }] }\n');
  writeFileSync(join(dir, 'verifier.yaml'), contract(['inputs: { a: 1, b: 2 }', 'proposers: [{ agent: solver }]', 'voting: { voters: [{ id: v1 }] }']).replace('vp.schema_only.v1 }', 'vp.schema_only.v1, verifiers: [{ local: true }, { executor: rt-missing }] }'));
  writeFileSync(join(dir, 'known.yaml'), contract(['task_id: cli-known', 'inputs: { a: 1, b: 2 }', 'proposers: [{ executor: rt-known }]', 'voting: { voters: [{ id: v1 }] }']));
  writeFileSync(join(dir, 'gone.yaml'), contract(['task_id: cli-gone', 'inputs: { a: 1, b: 2 }', 'proposers: [{ executor: rt-gone }]', 'voting: { voters: [{ id: v1 }] }']));
  writeFileSync(join(dir, 'same.yaml'), contract(['task_id: cli-same', 'inputs: { a: 1, b: 2 }', 'proposers: [{ agent: solver }]', 'voting: { voters: [{ id: v1 }] }']));
  // The same contract written otherwise: keys in another order, defaults given (one sample, the quorum of one voter).
  writeFileSync(join(dir, 'same-again.yaml'), contract(['voting: { quorum: 1, voters: [{ id: v1 }] }', 'proposers: [{ samples: 1, agent: solver }]', 'inputs: { b: 2, a: 1 }', 'task_id: cli-same']));
  writeFileSync(join(dir, 'same-other.yaml'), contract(['task_id: cli-same', 'inputs: { a: 1, b: 40 }', 'proposers: [{ agent: solver }]', 'voting: { voters: [{ id: v1 }] }']));
}, 60_000);
afterAll(() => removeProject(dir));

describe('swarm task submit: what a contract names is checked, a task id names one contract', () => {
  it('refuses an executor that is not registered (exit 2, naming it and its place; nothing written); a registered one is taken', async () => {
    const before = await runIds();
    const q = await cli(['task', 'submit', 'q.yaml', '--wait']);
    expect([q.code, q.stderr.trim()], show(q)).toEqual([2, "swarm: q.yaml:4: proposers[0].executor: executor 'nosuchexec' is not registered (none is registered); add it with 'swarm executors add nosuchexec <base_url>'"]);
    expect(q.stdout).toBe('');
    const v = await cli(['task', 'submit', 'verifier.yaml']);
    expect(v.code, show(v)).toBe(2);
    expect(v.stderr).toContain("swarm: verifier.yaml:6: verification.verifiers[1].executor: executor 'rt-missing' is not registered (none is registered)");
    expect(await runIds()).toEqual(before);

    const add = await cli(['executors', 'add', 'rt-known', 'http://127.0.0.1:9', '--public-key', publicKey]);
    expect(add.code, show(add)).toBe(0);
    const known = await cli(['task', 'submit', 'known.yaml', '--json']);
    expect(known.code, show(known)).toBe(0);
    expect(JSON.parse(known.stdout)).toMatchObject({ task_id: 'cli-known', created: true });
    // Another executor missing now lists the registered ones.
    const again = await cli(['task', 'submit', 'q.yaml']);
    expect(again.stderr).toContain("executor 'nosuchexec' is not registered (registered: rt-known)");
  }, 120_000);

  it('a task whose run failed before creating it is failed with the run\'s error (exit 3), never pending', async () => {
    const add = await cli(['executors', 'add', 'rt-gone', 'http://127.0.0.1:9', '--public-key', publicKey]);
    expect(add.code, show(add)).toBe(0);
    const sub = await cli(['task', 'submit', 'gone.yaml', '--json']);
    expect(sub.code, show(sub)).toBe(0);
    const runId = (JSON.parse(sub.stdout) as { run_id: string }).run_id;
    // No worker has run it yet: pending.
    const pending = await cli(['task', 'decision', 'cli-gone']);
    expect([pending.code, pending.stdout.trim()], show(pending)).toEqual([0, 'task cli-gone: pending']);
    // Its executor goes away before the run starts: the run fails before TASK_CREATED.
    expect((await cli(['executors', 'remove', 'rt-gone'])).code).toBe(0);
    const gone = `task cli-gone: failed (its run ${runId} failed before the task was created: executor 'rt-gone' is not registered`;
    // The same contract again with --wait: the first run, run here to its end, and its failure reported.
    const wait = await cliWithin(['task', 'submit', 'gone.yaml', '--wait'], 60_000);
    expect([wait.timedOut, wait.code], show(wait)).toEqual([false, 3]);
    expect(wait.stdout).toContain(gone);
    const decision = await cli(['task', 'decision', 'cli-gone']);
    expect(decision.code, show(decision)).toBe(3);
    expect(decision.stdout).toContain(gone);
    const json = await cli(['task', 'decision', 'cli-gone', '--json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ task_id: 'cli-gone', run_id: runId, status: 'failed', decision: null, reason_code: null, reason: expect.stringContaining("executor 'rt-gone' is not registered") as unknown });
    const watch = await cliWithin(['task', 'watch', 'cli-gone'], 30_000);
    expect([watch.timedOut, watch.code], show(watch)).toEqual([false, 3]);
    expect(watch.stdout).toContain(gone);
    const cost = await cli(['task', 'cost', 'cli-gone']);
    expect(cost.code, show(cost)).toBe(2);
    expect(cost.stderr).toContain(`swarm: no consensus task 'cli-gone' (its run ${runId} failed before the task was created: executor 'rt-gone'`);
  }, 180_000);

  it('the same task_id with the same contract is the first run; with another contract it is refused (exit 2), nothing written', async () => {
    const first = await cli(['task', 'submit', 'same.yaml', '--wait', '--json']);
    expect(first.code, show(first)).toBe(0);
    const decided = JSON.parse(first.stdout) as { run_id: string; decision: { output: unknown } };
    expect(decided.decision.output).toEqual({ answer: 3 });
    const before = await runIds();
    const same = await cli(['task', 'submit', 'same-again.yaml', '--json']);
    expect(same.code, show(same)).toBe(0);
    expect(JSON.parse(same.stdout)).toEqual({ task_id: 'cli-same', run_id: decided.run_id, created: false });
    const other = await cli(['task', 'submit', 'same-other.yaml', '--wait']);
    expect(other.code, show(other)).toBe(2);
    expect(other.stdout).toBe('');
    expect(other.stderr.trim()).toBe(
      `swarm: task 'cli-same' was submitted before with a different contract (run ${decided.run_id}; it differs in inputs.b): a task_id names one contract; submit this one under another task_id, or without one for a generated id`,
    );
    expect(await runIds()).toEqual(before);
    const still = await cli(['task', 'decision', 'cli-same', '--json']);
    expect(JSON.parse(still.stdout)).toMatchObject({ status: 'finalized', decision: { output: { answer: 3 } } });
  }, 120_000);

  it('task list --run takes the short id, a prefix or a suffix; an unknown run exits 2 as runs show does', async () => {
    const d = await cli(['task', 'decision', 'cli-same', '--json']);
    const runId = (JSON.parse(d.stdout) as { run_id: string }).run_id;
    for (const id of [runId, runId.slice(-12), runId.slice(0, 18), runId.slice(-6)]) {
      const list = await cli(['task', 'list', '--run', id, '--json']);
      expect(list.code, show(list)).toBe(0);
      expect((JSON.parse(list.stdout) as Array<{ task_id: string }>).map((t) => t.task_id), id).toEqual(['cli-same']);
    }
    const text = await cli(['task', 'list', '--run', runId.slice(-12)]);
    expect(text.stdout).toMatch(/^cli-same\s+add\s+finalized/m);
    const unknown = await cli(['task', 'list', '--run', 'nosuch']);
    const runsShow = await cli(['runs', 'show', 'nosuch']);
    expect(runsShow.code).toBe(2);
    expect([unknown.code, unknown.stderr], show(unknown)).toEqual([runsShow.code, runsShow.stderr]);
    expect(unknown.stdout).toBe('');
  }, 120_000);

  it('task vote with the task id before the verb says the right form (exit 2)', async () => {
    const swapped = await cli(['task', 'vote', 'cli-same', 'commit', '--voter', 'alice', '--key', 'alice.pem', '--candidate', 'abc']);
    expect([swapped.code, swapped.stderr.trim()], show(swapped)).toEqual([2, "swarm: unknown command 'cli-same': the verb comes before the task id: 'swarm task vote commit cli-same …' (the same options) (see --help)"]);
    const reveal = await cli(['task', 'vote', 'cli-same', 'reveal', '--salt', 'x']);
    expect(reveal.code).toBe(2);
    expect(reveal.stderr).toContain("'swarm task vote reveal cli-same …'");
    const bare = await cli(['task', 'vote', 'cli-same']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("the forms are 'swarm task vote commit <task> --voter <id> --key <file> --candidate <hash>' and 'swarm task vote reveal <task>");
  }, 60_000);

  it('the API (swarm serve): an unknown executor is a 400, another contract under a task id a 409, a task whose run failed first a 404 saying why', async () => {
    const child = spawnCli(['serve', '--port', '0'], dir);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const url = await until(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], 30_000, 'the start-up line');
      const post = async (body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
        const res = await fetch(`${url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      };
      const base = { task_type: 'add', inputs: { a: 1, b: 2 }, output_schema: { type: 'object', required: ['answer'] }, proposers: [{ agent: 'solver' }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }] } };
      const before = await runIds();
      const unknown = await post({ ...base, proposers: [{ executor: 'nosuchexec' }] });
      expect(unknown.status, JSON.stringify(unknown.json)).toBe(400);
      expect(unknown.json).toMatchObject({ code: 'TASK_CONTRACT_INVALID', field: 'proposers.0.executor', detail: expect.stringContaining("executor 'nosuchexec' is not registered") as unknown });
      const other = await post({ ...base, task_id: 'cli-same', inputs: { a: 1, b: 40 } });
      expect(other.status, JSON.stringify(other.json)).toBe(409);
      expect(other.json).toMatchObject({ code: 'TASK_ID_REUSED', task_id: 'cli-same', differs: ['inputs.b'], detail: expect.stringContaining("task 'cli-same' was submitted before with a different contract") as unknown });
      expect(await runIds()).toEqual(before);
      const same = await post({ ...base, task_id: 'cli-same' });
      expect(same.status, JSON.stringify(same.json)).toBe(200);
      expect(same.json).toMatchObject({ task_id: 'cli-same', created: false });
      const gone = await fetch(`${url}/api/v1/tasks/cli-gone`);
      const doc = (await gone.json()) as Record<string, unknown>;
      expect(gone.status, JSON.stringify(doc)).toBe(404);
      expect(doc).toMatchObject({ code: 'TASK_NOT_FOUND', task_status: 'failed', detail: expect.stringContaining("failed before the task was created: executor 'rt-gone' is not registered") as unknown });
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  }, 120_000);
});
