/**
 * The knowledge store inside consensus steps, end to end through a real worker, on SQLite and on
 * PostgreSQL: a finalized decision is recorded; a second task with the same inputs gets an EXACT
 * hit (KNOWLEDGE_HIT in its log, the decision passed to its proposers as `seed_bundle`); a task
 * whose contract blacklists that decision records REUSE_REJECT_RECORDED and gets no seed.
 */
import { describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { inputsHash } from '../src/consensus/knowledge/index.js';
import { consensusProject, useCleanups } from './helpers/consensus-project.js';
import { writeWorkflow } from './helpers/project.js';

const cleanups = useCleanups();

const workflow = (name: string, blacklist: string): string => `name: ${name}
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
      proposers: [{ agent: solver, samples: 2 }]
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: v1 }, { id: v2 }, { id: v3 }], reveal_deadline_ms: 5000 }
      knowledge: { lookup: exact${blacklist} }
`;

async function scenario(postgres: boolean): Promise<void> {
  const seen: Array<{ a: unknown; seed: unknown }> = [];
  const solver = async (inputs: Record<string, unknown>) => {
    seen.push({ a: inputs.a, seed: inputs.seed_bundle });
    return { answer: Number(inputs.a) + Number(inputs.b), cost_usd: 0.01 };
  };
  const { swarm, dir } = await consensusProject(postgres ? 'postgres' : 'sqlite', cleanups, { builtins: { solver }, worker: false });
  await swarm.registerWorkflow(writeWorkflow(dir, 'add', workflow('add', '')));

  const run = async (wf: string, a: number): Promise<{ runId: string; types: string[]; data: Array<Record<string, unknown>> }> => {
    const runId = await swarm.startRun(wf, { a });
    const { run } = await swarm.runToCompletion(runId, { pollMs: 50 });
    expect(run.status).toBe('completed');
    const events = (await swarm.events(runId)).filter((e) => e.step_id === 'agree');
    return { runId, types: events.map((e) => e.type), data: events.map((e) => e.data) };
  };

  // The first task finds nothing; its decision is recorded.
  const first = await run('add', 2);
  const firstTask = `${first.runId}/agree`;
  expect(first.types).not.toContain('KNOWLEDGE_HIT');
  expect(seen.map((s) => s.seed)).toEqual([undefined, undefined]);
  const recorded = await swarm.store.getKnowledgeDecision(firstTask);
  expect(recorded).toMatchObject({ task_type: 'add', run_id: first.runId, inputs: { a: 2, b: 2 }, inputs_hash: inputsHash({ a: 2, b: 2 }), candidate_hash: candidateHash({ answer: 4 }), output: { answer: 4 } });
  expect(recorded?.cost.total_usd).toBeCloseTo(0.02, 6);
  expect((await swarm.store.knowledgeTrackRecord({ task_type: 'add' })).map((r) => [r.proposer_id, r.proposed, r.won])).toEqual([
    ['agent:solver#1', 1, 1],
    ['agent:solver#2', 1, 1],
  ]);

  // The same inputs again: an EXACT hit, in the log and in each proposer's inputs as seed_bundle.
  seen.length = 0;
  const second = await run('add', 2);
  const hitAt = second.types.indexOf('KNOWLEDGE_HIT');
  expect(hitAt).toBeGreaterThan(second.types.indexOf('TASK_CREATED'));
  expect(hitAt).toBeLessThan(second.types.indexOf('CANDIDATE_PROPOSED'));
  expect(second.data[hitAt]).toMatchObject({ task_id: `${second.runId}/agree`, hit_type: 'EXACT', decision_task_id: firstTask, candidate_hash: candidateHash({ answer: 4 }) });
  expect(seen).toHaveLength(2);
  for (const s of seen) expect(s.seed).toMatchObject({ hit_type: 'EXACT', task_id: firstTask, candidate_hash: candidateHash({ answer: 4 }), output: { answer: 4 } });
  // Its own decision is recorded too; the first task's stays as it was.
  expect((await swarm.store.getKnowledgeDecision(`${second.runId}/agree`))?.task_id).toBe(`${second.runId}/agree`);
  expect((await swarm.store.knowledgeTrackRecord({ task_type: 'add' })).map((r) => r.proposed)).toEqual([2, 2]);

  // Other inputs: a miss.
  seen.length = 0;
  const other = await run('add', 3);
  expect(other.types).not.toContain('KNOWLEDGE_HIT');
  expect(seen.map((s) => s.seed)).toEqual([undefined, undefined]);

  // Both earlier decisions of these inputs blacklisted (one by task id, one by its candidate hash,
  // which both share): two rejections recorded, no seed.
  await swarm.registerWorkflow(writeWorkflow(dir, 'add-fresh', workflow('add-fresh', `, reuse_blacklist: ["${firstTask}", "${candidateHash({ answer: 4 })}"]`)));
  seen.length = 0;
  const fresh = await run('add-fresh', 2);
  expect(fresh.types).not.toContain('KNOWLEDGE_HIT');
  const rejects = fresh.data.filter((_, i) => fresh.types[i] === 'REUSE_REJECT_RECORDED');
  expect(rejects.map((d) => [d.decision_task_id, d.reason_code, d.reason, d.hit_type])).toEqual([
    [`${second.runId}/agree`, ReasonCode.REUSE_BLACKLISTED, 'REUSE_BLACKLISTED', 'EXACT'],
    [firstTask, ReasonCode.REUSE_BLACKLISTED, 'REUSE_BLACKLISTED', 'EXACT'],
  ]);
  expect(seen.map((s) => s.seed)).toEqual([undefined, undefined]);
  const log = await swarm.store.listKnowledgeLookups({ limit: 10 });
  expect(log.map((l) => l.hit_type)).toEqual(['MISS', 'MISS', 'EXACT', 'MISS']);
}

describe('knowledge in consensus steps', () => {
  it('sqlite: records decisions, seeds a task with the same inputs (EXACT), honours the blacklist', () => scenario(false), 60_000);
  it('postgres: the same', () => scenario(true), 60_000);
});
