/**
 * `log replay` of a run with a `kind: consensus` step, run for real by a worker (proposers, local
 * verification, kernel voters, commit-reveal, decision): the task projected from the log equals the
 * consensus tables on SQLite and PostgreSQL; a vote changed behind the store's back is named.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeDifference } from '../src/log/compare.js';
import { replayStoredRun } from '../src/log/log-service.js';
import type { Swarm } from '../src/swarm.js';
import { consensusProject, useCleanups } from './helpers/consensus-project.js';
import { writeWorkflow } from './helpers/project.js';

const cleanups = useCleanups();

const WORKFLOW = `name: add
version: 1.0.0
inputs:
  - { name: a, type: number, required: true }
steps:
  - id: agree
    kind: consensus
    task:
      task_type: add
      inputs: { a: "\${trigger.a}", b: 2 }
      output_schema:
        type: object
        required: [answer]
        properties: { answer: { type: number } }
      proposers: [{ agent: solver, samples: 2 }, { agent: wrong }]
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: v1 }, { id: v2 }, { id: v3 }], reveal_deadline_ms: 5000 }
      budget: { explore: 1 }
  - id: after
    agent: solver
    depends_on: agree
    inputs: { a: 1, b: 1 }
`;

const BUILTINS = {
  solver: async (inputs: Record<string, unknown>) => ({ answer: Number(inputs.a) + Number(inputs.b), cost_usd: 0.01 }),
  wrong: async () => ({ answer: 'five' }),
};

async function consensusRun(swarm: Swarm, dir: string): Promise<string> {
  await swarm.registerWorkflow(writeWorkflow(dir, 'add', WORKFLOW));
  const runId = await swarm.startRun('add', { a: 2 });
  const { run } = await swarm.runToCompletion(runId, { pollMs: 50 });
  expect(run.status).toBe('completed');
  expect((await swarm.getTask(`${runId}/agree`))?.task.status).toBe('finalized');
  return runId;
}

describe('log replay of consensus tasks', () => {
  it('the task projected from the log equals its rows on SQLite; a changed vote is named', async () => {
    const { swarm, dir } = await consensusProject('sqlite', cleanups, { builtins: BUILTINS, worker: false });
    const runId = await consensusRun(swarm, dir);
    const report = await replayStoredRun(swarm, runId);
    expect(report.differences.map(describeDifference)).toEqual([]);
    const db = new Database(join(dir, '.swarm', 'swarm.db'));
    try {
      expect(db.prepare(`UPDATE consensus_votes SET vote = 'reject' WHERE task_id = ? AND voter_id = 'v1'`).run(`${runId}/agree`).changes).toBe(1);
    } finally {
      db.close();
    }
    const after = await replayStoredRun(swarm, runId);
    expect(after.ok).toBe(false);
    expect(after.differences).toEqual([expect.objectContaining({ subject: `task '${runId}/agree'`, field: 'vote v1 1' })]);
    expect(describeDifference(after.differences[0] ?? { subject: '', field: '', replayed: null, stored: null })).toContain('"vote":"approve"');
  }, 60_000);

  it('the task projected from the log equals its rows on PostgreSQL', async () => {
    const { swarm, dir } = await consensusProject('postgres', cleanups, { builtins: BUILTINS, worker: false });
    const runId = await consensusRun(swarm, dir);
    expect((await replayStoredRun(swarm, runId)).differences.map(describeDifference)).toEqual([]);
  }, 60_000);
});
