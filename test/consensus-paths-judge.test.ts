/**
 * A kernel voter with `strategy: agent`: its judge agent is given the verified candidates (best
 * first, never a failed one) and the task's inputs, and the voter commits to and reveals the hash the
 * judge returns; a judge that names no verified candidate leaves the voter with the best verified one.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import type { Swarm } from '../src/swarm.js';
import { builtinAgent, openProject, removeProject, tempProject, until } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface JudgeInput {
  task_id: string;
  inputs: Record<string, unknown>;
  candidates: Array<{ candidate_hash: string; score: number; output: { answer: unknown } }>;
}

async function setup(pick: (i: JudgeInput) => unknown): Promise<{ swarm: Swarm; seen: JudgeInput[] }> {
  const dir = tempProject();
  cleanups.push(() => removeProject(dir));
  const swarm = await openProject(dir, { overrides: { pollMs: 50 } });
  cleanups.push(() => swarm.close());
  const seen: JudgeInput[] = [];
  swarm.defineBuiltin('two', async () => ({ answer: 2 }));
  swarm.defineBuiltin('three', async () => ({ answer: 3 }));
  swarm.defineBuiltin('wrong', async () => ({ answer: 'x' }));
  swarm.defineBuiltin('judge', async (inputs) => {
    seen.push(inputs as unknown as JudgeInput);
    return pick(inputs as unknown as JudgeInput);
  });
  for (const name of ['two', 'three', 'wrong', 'judge']) {
    builtinAgent(dir, name, name);
    await swarm.registerAgent(join(dir, 'agents', name));
  }
  const w = swarm.worker({ pollMs: 50 });
  cleanups.push(() => w.stop(2000));
  return { swarm, seen };
}

async function decide(swarm: Swarm) {
  const { task_id: taskId } = await swarm.submitTask({
    task_type: 'pick',
    inputs: { q: 'which' },
    proposers: [{ agent: 'two' }, { agent: 'three' }, { agent: 'wrong' }],
    verification: { policy: 'vp.schema_only.v1' },
    output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } },
    voting: { voters: [{ id: 'j1', strategy: 'agent', agent: 'judge' }], quorum: 1, reveal_deadline_ms: 5000 },
  });
  const d = await until(async () => {
    const x = await swarm.taskDecision(taskId);
    return ['finalized', 'failed', 'expired'].includes(x.status) ? x : undefined;
  }, 30_000, 'the task settled');
  return { taskId, d };
}

describe('kernel voter with strategy: agent', () => {
  it('votes for the candidate its judge picks, even when it is not the best ranked', async () => {
    // The judge picks the last of the verified candidates it is given (the best one comes first).
    const { swarm, seen } = await setup((i) => ({ candidate_hash: i.candidates[i.candidates.length - 1]?.candidate_hash }));
    const { taskId, d } = await decide(swarm);
    expect(d.status).toBe('finalized');
    expect(seen).toHaveLength(1);
    const given = seen[0] as JudgeInput;
    expect(given.task_id).toBe(taskId);
    expect(given.inputs).toEqual({ q: 'which' });
    // Only the two verified candidates, never the one that failed its schema.
    expect(given.candidates.map((c) => c.output.answer).sort()).toEqual([2, 3]);
    const picked = given.candidates[1] as JudgeInput['candidates'][number];
    const best = given.candidates[0] as JudgeInput['candidates'][number];
    expect(picked.candidate_hash).not.toBe(best.candidate_hash);
    expect(d.decision).toMatchObject({ candidate_hash: picked.candidate_hash, tally: { [picked.candidate_hash]: 1 }, output: { answer: picked.output.answer } });

    const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
    const reveals = events.filter((e) => e.type === 'VOTE_REVEAL');
    expect(reveals).toHaveLength(1);
    expect(reveals[0]?.data).toMatchObject({ voter_id: 'j1', candidate_hash: picked.candidate_hash, vote: 'approve' });
    expect(events.filter((e) => e.type === 'DECISION_FINALIZED')).toHaveLength(1);
    const view = await swarm.getTask(taskId);
    expect(view?.votes).toHaveLength(1);
    expect(view?.votes[0]).toMatchObject({ voter_id: 'j1', candidate_hash: picked.candidate_hash, vote: 'approve' });
    expect(view?.decision?.candidate_hash).toBe(picked.candidate_hash);
  }, 60_000);

  it('a judge that names no verified candidate leaves the voter with the best verified one', async () => {
    // The judge names the candidate that failed verification: a member of the task, not a verified one.
    const failed = candidateHash({ answer: 'x' });
    const { swarm, seen } = await setup(() => ({ candidate_hash: failed }));
    const { taskId, d } = await decide(swarm);
    expect(d.status).toBe('finalized');
    expect(seen).toHaveLength(1);
    const best = seen[0]?.candidates[0]?.candidate_hash ?? '';
    expect((await swarm.getTask(taskId))?.candidates.map((c) => c.candidate_hash)).toContain(failed);
    expect(best).not.toBe(failed);
    expect(d.decision?.candidate_hash).toBe(best);
    const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
    expect(events.find((e) => e.type === 'VOTE_REVEAL')?.data).toMatchObject({ voter_id: 'j1', candidate_hash: best });
  }, 60_000);
});
