/**
 * What a task's proposers agree on and what they declare, end to end on SQLite:
 *  - vp.crosscheck.v1 counts every proposal behind a candidate (samples that give the same answer
 *    agree with each other), and kernel voters prefer the answer more proposers gave, then the
 *    proposer listed first — never the hash (for a+b = 10, the hash of {answer: 11} sorts first);
 *  - a proposer agent's declared inputs and outputs are enforced (refused at submission, failed
 *    with INPUT_INVALID at run time, an output that does not match is not a candidate);
 *  - unknown proposer and judge agents are refused at submission; a judge that is gone at run time
 *    leaves a TASK_INPUT_REJECTED saying so;
 *  - the events carry what the log needs to be checked on its own (signatures, evidence, the
 *    contract, the decision's output and times).
 */
import { describe, expect, it } from 'vitest';
import { candidateHash, verifyRecord } from '../src/consensus/core/crypto.js';
import { inputsHash } from '../src/consensus/core/contract.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { verifierResultSignedFields } from '../src/consensus/core/signed.js';
import type { Swarm } from '../src/swarm.js';
import { consensusProject, settledTask, useCleanups } from './helpers/consensus-project.js';
import { until, writeWorkflow } from './helpers/project.js';

const cleanups = useCleanups();

const sum = (i: Record<string, unknown>): number => Number(i['a']) + Number(i['b']);
const DECLARED = 'inputs:\n  - { name: a, type: number, required: true }\n  - { name: b, type: number, required: true }\noutputs:\n  - { name: answer, type: number, required: true }\n';

async function project(): Promise<{ swarm: Swarm; dir: string }> {
  return consensusProject('sqlite', cleanups, {
    builtins: {
      solver: async (i) => ({ answer: sum(i) }),
      solver2: async (i) => ({ answer: sum(i) + 1 }),
      liar: async () => ({ answer: 'ten' }),
      picker: async (i) => ({ candidate_hash: (i['candidates'] as Array<{ candidate_hash: string }>)[0]?.candidate_hash }),
    },
    manifests: { solver: DECLARED, solver2: DECLARED, liar: DECLARED },
  });
}

const crosscheck = (proposers: unknown[], params: Record<string, unknown> = {}) => ({
  task_type: 'add',
  inputs: { a: 4, b: 6 },
  proposers,
  verification: { policy: 'vp.crosscheck.v1', params: { fields: ['answer'], ...params } },
  voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], reveal_deadline_ms: 5000 },
});

/** A workflow step's task once it is final (it exists once its run has reached the step). */
function stepTask(swarm: Swarm, taskId: string): ReturnType<Swarm['taskDecision']> {
  return until(async () => {
    const d = await swarm.taskDecision(taskId).catch(() => undefined);
    return d && ['finalized', 'failed', 'expired'].includes(d.status) ? d : undefined;
  }, 30_000, 'the task settled');
}

async function decided(swarm: Swarm, contract: unknown) {
  const d = await settledTask(swarm, (await swarm.submitTask(contract)).task_id);
  const events = (await swarm.events(d.run_id as string)).filter((e) => (e.data as { task_id?: string }).task_id === d.task_id);
  return { d, events };
}

describe('crosscheck counts proposals, kernel voters never pick by hash', () => {
  it('two samples that give the same answer agree: the candidate passes', async () => {
    const { swarm } = await project();
    const { d, events } = await decided(swarm, crosscheck([{ agent: 'solver', samples: 2 }]));
    expect(d.status, JSON.stringify(d)).toBe('finalized');
    expect(d.decision?.output).toEqual({ answer: sum({ a: 4, b: 6 }) });
    const result = events.find((e) => e.type === 'VERIFIER_RESULT_SUBMITTED')?.data as { status: string; score: number };
    expect(result).toMatchObject({ status: 'passed', score: 1 });
  }, 60_000);

  it('answers within the tolerance both pass; the one more proposers gave wins', async () => {
    const { swarm } = await project();
    const { d, events } = await decided(swarm, crosscheck([{ agent: 'solver2' }, { agent: 'solver', samples: 2 }], { tolerance: 1 }));
    expect(d.status, JSON.stringify(d)).toBe('finalized');
    expect(d.decision?.output).toEqual({ answer: 10 });
    expect(events.filter((e) => e.type === 'VERIFIER_RESULT_SUBMITTED').map((e) => (e.data as { status: string }).status)).toEqual(['passed', 'passed']);
  }, 60_000);

  it('with level evidence the proposer listed first wins, whatever the hashes', async () => {
    const { swarm } = await project();
    // {answer: 11}'s hash sorts before {answer: 10}'s: hash order would pick the wrong sum.
    expect(candidateHash({ answer: 11 }) < candidateHash({ answer: 10 })).toBe(true);
    const first = await decided(swarm, crosscheck([{ agent: 'solver' }, { agent: 'solver2' }], { tolerance: 1 }));
    expect(first.d.decision?.output).toEqual({ answer: 10 });
    const second = await decided(swarm, crosscheck([{ agent: 'solver2' }, { agent: 'solver' }], { tolerance: 1 }));
    expect(second.d.decision?.output).toEqual({ answer: 11 });
  }, 60_000);
});

describe("proposer agents' declared inputs and outputs", () => {
  const schemaOnly = (inputs: unknown, proposers: unknown[] = [{ agent: 'solver' }]) => ({
    task_type: 'add',
    inputs,
    output_schema: { type: 'object', required: ['answer'] },
    proposers,
    verification: { policy: 'vp.schema_only.v1' },
    voting: { voters: [{ id: 'v1' }] },
  });

  it('inputs that do not match are refused at submission, naming the agent and the field', async () => {
    const { swarm } = await project();
    const err = await swarm.submitTask(schemaOnly({ a: 'two', c: true })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain('inputs: do not match agent solver@1.0.0 (proposers[0]):');
    expect(err?.message).toMatch(/a must be number/);
    await expect(swarm.submitTask(schemaOnly({}))).rejects.toThrow(/a is required/);
  }, 60_000);

  it('inputs resolved at run time that do not match fail the task with INPUT_INVALID', async () => {
    const { swarm, dir } = await project();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'add-late',
        `name: add-late
version: 1.0.0
steps:
  - id: agree
    kind: consensus
    task:
      task_type: add
      inputs: { a: "\${trigger.a}", b: 2 }
      output_schema: { type: object, required: [answer] }
      proposers: [{ agent: solver, samples: 2 }]
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: v1 }] }
`,
      ),
    );
    const runId = await swarm.startRun('add-late', { a: 'two' });
    const d = await stepTask(swarm, `${runId}/agree`);
    expect(d).toMatchObject({ status: 'failed', reason_code: ReasonCode.INPUT_INVALID });
    expect(d.reason).toContain('agent solver@1.0.0: a must be number');
    const events = await swarm.events(runId);
    expect(events.some((e) => e.type === 'CANDIDATE_PROPOSED')).toBe(false);
  }, 60_000);

  it('an output that does not match the agent is not a candidate, and the log says why', async () => {
    const { swarm } = await project();
    const { d, events } = await decided(swarm, schemaOnly({ a: 4, b: 6 }, [{ agent: 'liar' }, { agent: 'solver' }]));
    expect(d.status).toBe('finalized');
    expect(d.decision?.output).toEqual({ answer: 10 });
    expect(events.filter((e) => e.type === 'CANDIDATE_PROPOSED')).toHaveLength(1);
    const refused = events.filter((e) => e.type === 'TASK_INPUT_REJECTED').map((e) => e.data);
    expect(refused).toEqual([expect.objectContaining({ record_kind: 'candidate', member_id: 'agent:liar#1', reason_code: ReasonCode.OUTPUT_INVALID, reason: 'OUTPUT_INVALID' })]);
    expect(String(refused[0]?.['detail'])).toContain('answer must be number');
  }, 60_000);
});

describe('unknown agents', () => {
  const base = { task_type: 'add', inputs: { a: 1, b: 2 }, output_schema: { type: 'object' }, verification: { policy: 'vp.schema_only.v1' } };

  it('are refused at submission: proposers and judges', async () => {
    const { swarm } = await project();
    await expect(swarm.submitTask({ ...base, proposers: [{ agent: 'nosuch' }], voting: { voters: [{ id: 'v1' }] } })).rejects.toThrow(/proposers\.0\.agent: agent 'nosuch' is not registered/);
    await expect(swarm.submitTask({ ...base, proposers: [{ agent: 'solver' }], voting: { voters: [{ id: 'v1', strategy: 'agent', agent: 'nosuchpicker' }] } })).rejects.toThrow(/voting\.voters\.0\.agent: agent 'nosuchpicker' is not registered/);
  }, 60_000);

  it('are refused at workflow registration, naming the step, the field and the line; a template is left to run time', async () => {
    const { swarm, dir } = await project();
    const step = (proposer: string, judge: string) => `name: unknown-members
version: 1.0.0
steps:
  - id: agree
    kind: consensus
    task:
      task_type: add
      inputs: { a: 1, b: 2 }
      output_schema: { type: object }
      proposers: [{ agent: ${proposer} }]
      verification: { policy: vp.schema_only.v1 }
      voting:
        voters:
          - { id: j1, strategy: agent, agent: ${judge} }
`;
    await expect(swarm.registerWorkflow(writeWorkflow(dir, 'unknown-members', step('nosuch', 'picker')))).rejects.toThrow(/workflow\.yaml:10: steps\[0\]\.task\.proposers\[0\]\.agent: agent 'nosuch' is not registered/);
    await expect(swarm.registerWorkflow(writeWorkflow(dir, 'unknown-members', step('solver', 'nosuchpicker')))).rejects.toThrow(/workflow\.yaml:14: steps\[0\]\.task\.voting\.voters\[0\]\.agent: agent 'nosuchpicker' is not registered/);
    expect(await swarm.listWorkflows()).not.toContainEqual(expect.objectContaining({ name: 'unknown-members' }));
    await swarm.registerWorkflow(writeWorkflow(dir, 'unknown-members', step('solver', 'picker')));
  }, 60_000);

  it('a judge agent that is not there at run time is recorded, and its voter votes for the best verified candidate', async () => {
    const { swarm, dir } = await project();
    await swarm.registerWorkflow(
      writeWorkflow(
        dir,
        'judged',
        `name: judged
version: 1.0.0
inputs:
  - { name: judge, type: string, required: true }
steps:
  - id: agree
    kind: consensus
    task:
      task_type: add
      inputs: { a: 1, b: 2 }
      output_schema: { type: object, required: [answer] }
      proposers: [{ agent: solver }]
      verification: { policy: vp.schema_only.v1 }
      voting: { voters: [{ id: j1, strategy: agent, agent: "\${trigger.judge}" }], quorum: 1 }
`,
      ),
    );
    const runId = await swarm.startRun('judged', { judge: 'gone' });
    const d = await stepTask(swarm, `${runId}/agree`);
    expect(d.status).toBe('finalized');
    const notes = (await swarm.events(runId)).filter((e) => e.type === 'TASK_INPUT_REJECTED').map((e) => e.data);
    expect(notes).toEqual([expect.objectContaining({ record_kind: 'judge', member_id: 'j1', reason_code: ReasonCode.AGENT_UNKNOWN, agent: 'gone' })]);
    expect(String(notes[0]?.['detail'])).toContain("judge agent 'gone' is not registered; voter j1 votes for the best verified candidate");
  }, 60_000);
});

describe('the log carries what checking it needs', () => {
  it('TASK_CREATED, VERIFIER_RESULT_SUBMITTED, DECISION_COMMITTED and DECISION_FINALIZED', async () => {
    const { swarm } = await project();
    const { d, events } = await decided(swarm, { ...crosscheck([{ agent: 'solver', samples: 2 }]), voting: { voters: [{ id: 'v1' }] } });
    expect(d.status).toBe('finalized');
    const data = (type: string) => events.find((e) => e.type === type)?.data as Record<string, unknown>;
    const created = data('TASK_CREATED');
    expect(created['contract']).toMatchObject({ task_id: d.task_id, task_type: 'add', inputs: { a: 4, b: 6 }, voting: { quorum: 1 } });
    expect(created['inputs_hash']).toBe(inputsHash({ a: 4, b: 6 }));
    expect(typeof created['created_at']).toBe('number');
    // A verifier result checks against the verifier's key from TASK_CREATED, with nothing but the log.
    const result = data('VERIFIER_RESULT_SUBMITTED');
    expect(result['evidence']).toEqual([]);
    const member = (created['members'] as Array<{ role: string; id: string; public_key: string }>).find((m) => m.role === 'verifier' && m.id === result['verifier_id']);
    const fields = verifierResultSignedFields(result as unknown as Parameters<typeof verifierResultSignedFields>[0]);
    expect(verifyRecord(member?.public_key ?? '', 'verifier_result', fields, String(result['signature']))).toBe(true);
    expect(verifyRecord(member?.public_key ?? '', 'verifier_result', { ...fields, score: 0.5 }, String(result['signature']))).toBe(false);
    const committed = data('DECISION_COMMITTED');
    expect(committed).toMatchObject({ candidate_hash: d.decision?.candidate_hash, output: { answer: 10 }, committed_at: d.decision?.committed_at });
    expect(data('DECISION_FINALIZED')).toMatchObject({ candidate_hash: d.decision?.candidate_hash, finalized_at: d.decision?.finalized_at });
  }, 60_000);
});
