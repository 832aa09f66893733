/**
 * `swarm task …` through the built CLI on a SQLite project: submit --wait runs the task in the
 * process (no worker running) and prints its decision; decision --json, cost, list; `runs show` of
 * the task's run prints its consensus result; decision exits
 * 3 for a failed task and 2 for an unknown one; a bad contract is refused (exit 2) naming its file
 * and line; a vote's key and candidate are checked before anything is signed or sent.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeProject, runCli, tempProject, writeSolverAgent } from './helpers/project.js';

let dir: string;
beforeAll(async () => {
  dir = tempProject('name: test\nsandbox: none\n');
  writeSolverAgent(dir, { costUsd: 0.02 });
  expect((await runCli(['agent', 'register', 'agents/solver'], dir)).code).toBe(0);
  const base = { task_type: 'add', inputs: { a: 2, b: 2 }, proposers: [{ agent: 'solver', samples: 2 }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }, { id: 'v2' }] }, budget: { explore: 1 } };
  writeFileSync(join(dir, 'good.json'), JSON.stringify({ ...base, task_id: 'cli-good', output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } } }));
  writeFileSync(join(dir, 'fails.yaml'), `task_id: cli-fails\ntask_type: add\ninputs: { a: 1, b: 1 }\noutput_schema: { type: object, required: [answer], properties: { answer: { type: string } } }\nproposers: [{ agent: solver }]\nverification: { policy: vp.schema_only.v1 }\nvoting: { voters: [{ id: v1 }] }\n`);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ task_type: 'add', proposers: [], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [] } }));
  writeFileSync(join(dir, 'quorum.yaml'), `task_type: add\ninputs: { a: 1, b: 1 }\noutput_schema: { type: object }\nproposers: [{ agent: solver }]\nverification: { policy: vp.schema_only.v1 }\nvoting:\n  voters: [{ id: v1 }]\n  quorum: 4\n`);
  writeFileSync(join(dir, 'broken.yaml'), 'task_type: add\nproposers: [{ agent: solver }\nvoting: {}\n');
  writeFileSync(join(dir, 'nosuch.json'), JSON.stringify({ ...base, output_schema: { type: 'object' }, proposers: [{ agent: 'nosuch' }] }));
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'alice.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'not-a-key.pem'), 'hello\n');
  const alice = (publicKey.export({ type: 'spki', format: 'der' })).subarray(-32).toString('base64');
  writeFileSync(join(dir, 'external.json'), JSON.stringify({ ...base, task_id: 'cli-ext', output_schema: { type: 'object' }, voting: { voters: [{ id: 'v1' }, { id: 'alice', external: true, public_key: alice }], quorum: 1, reveal_deadline_ms: 1000 } }));
}, 60_000);
afterAll(() => removeProject(dir));

describe('swarm task', () => {
  it('submit --wait, decision, cost, list', async () => {
    const sub = await runCli(['task', 'submit', 'good.json', '--wait'], dir);
    expect(sub.code, sub.stderr).toBe(0);
    expect(sub.stdout).toContain('task cli-good: finalized in round 1');
    expect(sub.stdout).toContain('answer    {"answer":4}');
    const d = await runCli(['task', 'decision', 'cli-good', '--json'], dir);
    expect(d.code).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ task_id: 'cli-good', status: 'finalized', decision: { output: { answer: 4 }, quorum: 2 } });
    // The task's run shows its result: the decision, the answer and the step's conclusion.
    const show = await runCli(['runs', 'show', (JSON.parse(d.stdout) as { run_id: string }).run_id], dir);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/final decision: \w{4}…\w{4} \(round 1, 2 approvals, quorum 2\)/);
    expect(show.stdout).toContain('final answer: {"answer":4}');
    expect(show.stdout).toMatch(/step 'task': finalized, candidate \w{4}…\w{4}/);
    expect(show.stdout).not.toContain('shared inputs');
    const cost = await runCli(['task', 'cost', 'cli-good', '--json'], dir);
    expect(JSON.parse(cost.stdout)).toMatchObject({ task_id: 'cli-good', budget: { explore: 1 }, exhausted: [] });
    expect((JSON.parse(cost.stdout) as { explore_usd: number }).explore_usd).toBeCloseTo(0.04);
    const text = await runCli(['task', 'cost', 'cli-good'], dir);
    expect(text.stdout).toMatch(/explore\s+\$0\.0400\s+\$1\.0000/);
    const list = await runCli(['task', 'list', '--json'], dir);
    const listed = (JSON.parse(list.stdout) as Array<{ task_id: string; created_at: string; status: string }>).find((t) => t.task_id === 'cli-good');
    // The summaries GET /api/v1/tasks gives: ISO times, not epoch milliseconds.
    expect(listed).toMatchObject({ task_id: 'cli-good', status: 'finalized', reason: null });
    expect(listed?.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  }, 120_000);

  it('decision exits 3 for a failed task, 2 for an unknown one; a bad contract exits 2', async () => {
    const sub = await runCli(['task', 'submit', 'fails.yaml', '--wait'], dir);
    expect(sub.code).toBe(3);
    const d = await runCli(['task', 'decision', 'cli-fails'], dir);
    expect(d.code).toBe(3);
    expect(d.stdout).toContain('failed (1404 ');
    const unknown = await runCli(['task', 'decision', 'nope'], dir);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([2, "swarm: no consensus task 'nope'"]);
    const bad = await runCli(['task', 'submit', 'bad.json'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('swarm: bad.json: proposers: must be a non-empty list');
  }, 60_000);

  it('contract problems name the file and, in YAML, the line; unknown agents and statuses exit 2', async () => {
    const quorum = await runCli(['task', 'submit', 'quorum.yaml'], dir);
    expect([quorum.code, quorum.stderr.trim()]).toEqual([2, 'swarm: quorum.yaml:8: voting.quorum: 4 is more than the 1 voter']);
    const broken = await runCli(['task', 'submit', 'broken.yaml'], dir);
    expect(broken.code).toBe(2);
    expect(broken.stderr.trim().split('\n')).toHaveLength(1);
    expect(broken.stderr).toMatch(/^swarm: broken\.yaml:2: invalid YAML/);
    const nosuch = await runCli(['task', 'submit', 'nosuch.json'], dir);
    expect(nosuch.code).toBe(2);
    expect(nosuch.stderr).toContain("swarm: nosuch.json: proposers[0].agent: agent 'nosuch' is not registered");
    const status = await runCli(['task', 'list', '--status', 'bogus'], dir);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain("--status 'bogus' is not a task status (one of created, proposing, verifying, voting, committed, finalized, expired, failed)");
  }, 60_000);

  it('vote: the key must be an Ed25519 PEM key, the candidate a unique prefix of a candidate of the task', async () => {
    const sub = await runCli(['task', 'submit', 'external.json', '--wait', '--json'], dir);
    expect(sub.code, sub.stderr).toBe(0);
    const hash = (JSON.parse(sub.stdout) as { decision: { candidate_hash: string } }).decision.candidate_hash;
    const vote = (key: string, candidate: string) => runCli(['task', 'vote', 'commit', 'cli-ext', '--voter', 'alice', '--key', key, '--candidate', candidate], dir);
    const notKey = await vote('not-a-key.pem', hash);
    expect(notKey.code).toBe(2);
    expect(notKey.stderr).toContain('the key file not-a-key.pem is not an Ed25519 private key in PKCS#8 PEM');
    const unknown = await vote('alice.pem', 'zzz');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`--candidate 'zzz' is not a candidate of task cli-ext (its candidates: ${hash})`);
    // A prefix resolves to the full hash: the vote goes to the task (and is refused there: the task is decided).
    const late = await vote('alice.pem', hash.slice(0, 12));
    expect(late.code, late.stderr).toBe(6);
    const watch = await runCli(['task', 'watch', 'cli-ext', '--full-hashes'], dir);
    expect(watch.stdout).toContain(`candidate_hash=${hash}`);
    const short = await runCli(['task', 'watch', 'cli-ext'], dir);
    expect(short.stdout).toContain('--full-hashes or --json prints them whole');
    expect(short.stdout).not.toContain(hash);
  }, 60_000);
});
