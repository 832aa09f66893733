/**
 * `kind: consensus` steps end to end through a real worker on a SQLite file: proposers (agent
 * samples), local verification, kernel voters, commit-reveal, the decision and its proof in the
 * run's log; templates in the contract resolved at run time; bad contracts refused at registration
 * with their lines; a task whose candidates all fail verification fails the step.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManifestError } from '../src/core/errors.js';
import { verifyRecord } from '../src/consensus/core/crypto.js';
import { candidateSignedFields } from '../src/consensus/core/signed.js';
import type { Swarm } from '../src/swarm.js';
import { runJson } from '../src/views/run.js';
import { builtinAgent, openProject, removeProject, tempProject, writeWorkflow } from './helpers/project.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ dir: string; swarm: Swarm }> {
  const dir = tempProject();
  const swarm = await openProject(dir, { overrides: { pollMs: 50 } });
  cleanups.push(() => removeProject(dir));
  cleanups.push(() => swarm.close());
  swarm.defineBuiltin('solver', async (inputs) => ({ answer: Number(inputs.a) + Number(inputs.b), cost_usd: 0.01 }));
  swarm.defineBuiltin('wrong', async () => ({ answer: 'five' }));
  for (const name of ['solver', 'wrong']) {
    builtinAgent(dir, name, name);
    await swarm.registerAgent(join(dir, 'agents', name));
  }
  return { dir, swarm };
}

const SCHEMA = `      output_schema:
        type: object
        required: [answer]
        properties: { answer: { type: number } }
`;

describe('kind: consensus', () => {
  it('proposes, verifies, votes and finalizes; the outputs carry the decision with a proof the log backs', async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'add',
        `name: add
version: 1.0.0
inputs:
  - { name: a, type: number, required: true }
steps:
  - id: agree
    kind: consensus
    task:
      task_type: add
      inputs: { a: "\${trigger.a}", b: 2 }
${SCHEMA}      proposers: [{ agent: solver, samples: 2 }, { agent: wrong }]
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: v1 }, { id: v2 }, { id: v3 }], reveal_deadline_ms: 5000 }
      budget: { explore: 1 }
`,
      ),
    );
    const runId = await swarm.startRun('add', { a: 2 });
    const { run, steps } = await swarm.runToCompletion(runId, { pollMs: 50 });
    expect(run.status).toBe('completed');
    const out = steps.find((s) => s.step_id === 'agree')?.outputs as { final_decision: { candidate_hash: string; tally: Record<string, number>; proof: unknown } };
    expect(out).toMatchObject({ task_id: `${runId}/agree`, status: 'finalized', final_answer: { answer: 4 }, final_decision: { quorum: 2 } });
    const hash = out.final_decision.candidate_hash;
    expect(out.final_decision.tally).toEqual({ [hash]: 3 });

    const events = await swarm.events(runId);
    const types: string[] = events.filter((e) => e.step_id === 'agree').map((e) => e.type);
    const order = ['TASK_CREATED', 'TASK_CLAIMED', 'CANDIDATE_PROPOSED', 'VERIFIER_RESULT_SUBMITTED', 'VOTE_COMMIT', 'VOTE_REVEAL', 'DECISION_COMMITTED', 'DECISION_FINALIZED'];
    expect(order.map((t) => types.indexOf(t)).every((i, k, a) => i >= 0 && (k === 0 || i > (a[k - 1] as number)))).toBe(true);
    expect(types.filter((t) => t === 'CANDIDATE_PROPOSED')).toHaveLength(3);
    expect(types.filter((t) => t === 'VOTE_COMMIT')).toHaveLength(3);
    expect(types.filter((t) => t === 'DECISION_FINALIZED')).toHaveLength(1);
    // The proof names events that exist, with their hashes: the winner's proposal and the approving reveals.
    const bySeq = new Map(events.map((e) => [e.seq, e]));
    const proof = out.final_decision.proof as { candidate_event: { seq: number; hash: string }; reveal_events: Array<{ seq: number; hash: string }> };
    expect(bySeq.get(proof.candidate_event.seq)).toMatchObject({ type: 'CANDIDATE_PROPOSED', hash: proof.candidate_event.hash, data: { candidate_hash: hash } });
    expect(proof.reveal_events).toHaveLength(3);
    for (const r of proof.reveal_events) expect(bySeq.get(r.seq)).toMatchObject({ type: 'VOTE_REVEAL', hash: r.hash, data: { candidate_hash: hash, vote: 'approve' } });
    expect((await swarm.verify(runId)).ok).toBe(true);

    // The task's rows: signatures check against the membership fixed at TASK_CREATED.
    const view = await swarm.getTask(`${runId}/agree`);
    expect(view?.task.status).toBe('finalized');
    expect(view?.results.map((r) => r.status).sort()).toEqual(['failed', 'passed']);
    const members = view?.task.members ?? [];
    for (const c of view?.candidates ?? []) {
      const key = members.find((m) => m.role === 'proposer' && m.id === c.proposer_id)?.public_key ?? '';
      expect(verifyRecord(key, 'candidate', candidateSignedFields(c), c.signature)).toBe(true);
    }
    expect(view?.cost.explore_usd).toBeCloseTo(0.02);
    expect(view?.votes.every((v) => v.revealed_at !== null)).toBe(true);
    expect((await swarm.taskDecision(`${runId}/agree`)).decision?.candidate_hash).toBe(hash);
    // The run's result: the last consensus step's decision and answer, and each step's conclusion.
    expect(runJson(await swarm.getRun(runId)).result).toEqual({
      final_decision: out.final_decision,
      final_answer: { answer: 4 },
      conclusions: [{ step: 'agree', task_id: `${runId}/agree`, status: 'finalized', candidate_hash: hash, error: null }],
    });
  });

  it('fails the step (not retried) when no candidate passes verification', async () => {
    const { dir, swarm } = await setup();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'bad',
        `name: bad
version: 1.0.0
steps:
  - id: agree
    kind: consensus
    task:
      task_type: add
      inputs: {}
${SCHEMA}      proposers: [{ agent: wrong }]
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: v1 }] }
`,
      ),
    );
    const runId = await swarm.startRun('bad', {});
    const { run, steps } = await swarm.runToCompletion(runId, { pollMs: 50 });
    expect(run.status).toBe('failed');
    const step = steps.find((s) => s.step_id === 'agree');
    expect(step?.error).toContain('NO_VERIFIED_CANDIDATE');
    expect(step?.attempt).toBe(1);
    const failed = (await swarm.events(runId)).find((e) => e.type === 'TASK_FAILED');
    expect(failed?.data).toMatchObject({ reason_code: 1404, reason: 'NO_VERIFIED_CANDIDATE' });
  });

  it('refuses a bad contract at registration, with the lines of its problems', async () => {
    const { dir, swarm } = await setup();
    const path = writeWorkflow(
      dir,
      'broken',
      `name: broken
version: 1.0.0
steps:
  - id: agree
    kind: consensus
    agent: solver
    task:
      task_type: add
      inputs: {}
      proposers: []
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: v1 }, { id: v1 }], quorum: 5 }
`,
    );
    const err = (await swarm.registerWorkflow(path).catch((e: unknown) => e)) as ManifestError;
    expect(err).toBeInstanceOf(ManifestError);
    const text = err.message;
    expect(text).toMatch(/workflow.yaml:6: .*runs no agent/);
    expect(text).toMatch(/workflow.yaml:10: .*task\.proposers: must be a non-empty list/);
    expect(text).toMatch(/workflow.yaml:12: .*task\.voting\.quorum: 5 is more than the 2 voters/);
  });
});
