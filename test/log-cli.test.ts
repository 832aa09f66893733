/**
 * `swarm log head | replay | verify` through the real CLI on a real SQLite file:
 * the head of an empty store and of one with runs; a step row or an event changed behind the
 * store's back makes replay and verify exit 3 naming the run and what differs. Build first:
 * `node scripts/build.mjs`.
 */
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Swarm } from '../src/swarm.js';
import { cleanupSandboxes, makeSandbox, show, type Sandbox } from './helpers/cli.js';
import { EXAMPLES } from './helpers/project.js';

afterAll(() => cleanupSandboxes());

interface Head {
  runs: number;
  events: number;
  by_status: Record<string, number>;
  latest: Array<{ run_id: string; workflow: string; seq: number; type: string | null; hash: string }>;
}

/** Runs made in this process through the library, on the sandbox's store (the CLI reads them after). */
async function runs(s: Sandbox, list: Array<[string, unknown]>): Promise<string[]> {
  const swarm = await Swarm.open({ cwd: s.root, env: s.env });
  try {
    await swarm.registerAgents(join(EXAMPLES, 'agents'));
    await swarm.registerWorkflows(join(EXAMPLES, 'workflows'));
    const ids: string[] = [];
    for (const [workflow, input] of list) {
      const id = await swarm.startRun(workflow, input);
      expect((await swarm.runToCompletion(id)).run.status).toBe('completed');
      ids.push(id);
    }
    return ids;
  } finally {
    await swarm.close();
  }
}

describe('swarm log on SQLite', () => {
  it('head of an empty store: nothing, exit 0; verify of an empty store: 0 runs, exit 0', async () => {
    const s = makeSandbox();
    const head = await s.run(['log', 'head']);
    expect(head.code, show(head)).toBe(0);
    expect(head.stdout).toContain('the log is empty');
    expect(await s.json<Head>(['log', 'head', '--json'])).toEqual({ runs: 0, events: 0, by_status: {}, latest: [] });
    const verify = await s.run(['log', 'verify']);
    expect(verify.code, show(verify)).toBe(0);
    expect(verify.stdout).toContain('0 run(s), 0 events: 0 verify, 0 fail');
  });

  it('head, replay and verify of real runs; a changed step row or event exits 3 naming the run and the difference', async () => {
    const s = makeSandbox();
    const [chain, fan] = (await runs(s, [['echo-chain', { message: 'hello' }], ['fan-out', { text: 'short text' }]])) as [string, string];

    const head = await s.json<Head>(['log', 'head', '--json']);
    const counts = s.query<{ n: number }>('SELECT count(*) AS n FROM events')[0]?.n;
    expect(head).toMatchObject({ runs: 2, events: counts, by_status: { completed: 2 } });
    expect(head.latest.map((e) => e.run_id).sort()).toEqual([chain, fan].sort());
    const row = s.query<{ event_seq: number; event_hash: string }>('SELECT event_seq, event_hash FROM workflow_runs WHERE id = ?', fan)[0];
    expect(head.latest.find((e) => e.run_id === fan)).toMatchObject({ seq: row?.event_seq, hash: row?.event_hash, type: 'RUN_COMPLETED', workflow: 'fan-out' });
    const one = await s.run(['log', 'head', fan.slice(-12)]);
    expect(one.code, show(one)).toBe(0);
    expect(one.stdout.trim()).toBe(`${fan}  seq ${row?.event_seq}  RUN_COMPLETED  ${row?.event_hash}`);
    const text = await s.run(['log', 'head']);
    expect(text.stdout).toContain(`${counts} events in 2 runs (2 completed)`);

    for (const id of [chain, fan]) {
      const r = await s.run(['log', 'replay', id]);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toContain(`ok: run ${id}`);
    }
    const ok = await s.run(['log', 'verify']);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toContain('2 run(s)');

    // A step row changed behind the store's back: replay names the run, the step and the field.
    const db = new Database(s.db);
    try {
      expect(db.prepare(`UPDATE step_executions SET status = 'skipped', error = 'made up' WHERE run_id = ? AND step_id = 'shout'`).run(fan).changes).toBe(1);
    } finally {
      db.close();
    }
    const replay = await s.run(['log', 'replay', fan]);
    expect(replay.code, show(replay)).toBe(3);
    expect(replay.stderr).toContain(`run ${fan}`);
    expect(replay.stderr).toContain("step 'shout' status: the log says completed, the store holds skipped");
    const json = JSON.parse((await s.run(['log', 'replay', fan, '--json'])).stdout) as { ok: boolean; differences: Array<{ subject: string; field: string; replayed: unknown; stored: unknown }> };
    expect(json).toMatchObject({ ok: false, differences: [{ subject: "step 'shout'", field: 'status', replayed: 'completed', stored: 'skipped' }] });

    // An event changed: verify names the run that fails and counts the one that still verifies.
    const db2 = new Database(s.db);
    try {
      expect(db2.prepare(`UPDATE events SET data = json_set(data, '$.outputs_sha256', ?) WHERE run_id = ? AND type = 'STEP_COMPLETED' AND step_id = 'step1'`).run('f'.repeat(64), chain).changes).toBe(1);
    } finally {
      db2.close();
    }
    const verify = await s.run(['log', 'verify']);
    expect(verify.code, show(verify)).toBe(3);
    expect(verify.stderr).toMatch(new RegExp(`✖ run ${chain} \\(echo-chain\\): \\d+ problem\\(s\\); first at seq \\d+: hash does not match the event contents`));
    expect(verify.stderr).toContain('2 run(s)');
    expect(verify.stderr).toContain('1 verify, 1 fail');
    // The changed event is also what replay reads: the digest it says is not the checkpoint's.
    const replayChain = await s.run(['log', 'replay', chain]);
    expect(replayChain.code, show(replayChain)).toBe(3);
    expect(replayChain.stderr).toContain(`step 'step1' outputs digest: the log says ${'f'.repeat(64)}, the store holds`);
    const bad = await s.run(['log', 'verify', chain, '--json']);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ runs: 1, failed: 1, reports: [{ run_id: chain, ok: false }] });
  }, 60_000);
});
