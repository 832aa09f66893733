/**
 * LLM agents (`runtime.type: llm`) as consensus members, on the scripted model and the real SQLite
 * store. A judge gets a `message` (the task, the verified candidates with their hashes and
 * verification results, what to answer) besides the structured inputs, and its structured answer's
 * `candidate_hash` is its vote; a judge whose answer is unusable, or that fails, is recorded with a
 * reason code. Each sample of an LLM proposer is its own session. An LLM member's `usage.cost_usd`
 * is charged to its stage's bucket (explore for proposers, finalize for judges), so budgets limit
 * it. The candidate is the agent's answer (its content, or its structured output), never its usage
 * or session, so identical answers agree under vp.crosscheck.v1. The log replays to the same rows.
 */
import { describe, expect, it } from 'vitest';
import type { ModelRequest } from '../src/agents/types.js';
import { candidateHash } from '../src/consensus/core/crypto.js';
import type { ConsensusDeps } from '../src/consensus/driver/deps.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { replayStoredRun } from '../src/log/log-service.js';
import type { BuiltinAgent } from '../src/executors/builtins.js';
import type { Swarm } from '../src/swarm.js';
import { ScriptedModel, type ScriptedReply } from '../src/testing/scripted-model.js';
import { consensusProject, settledTask, useCleanups } from './helpers/consensus-project.js';
import { writeAgent } from './helpers/project.js';

const cleanups = useCleanups();

/** gpt-4o-mini's list price: $0.15 per million input tokens, $0.60 per million output tokens. */
const usd = (input: number, output: number): number => (input * 0.15 + output * 0.6) / 1_000_000;

const JUDGE_SCHEMA = 'output_schema: { type: object, required: [candidate_hash], properties: { candidate_hash: { type: string } } }\n';
const ANSWER_SCHEMA = 'output_schema: { type: object, required: [answer], properties: { answer: { type: number } } }\n';

/** An llm agent's agent.yaml (gpt-4o-mini through OpenAI; the scripted model answers instead). */
const llmAgent = (name: string, extra = ''): string => `name: ${name}\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini }\ninstructions: You are ${name}.\n${extra}`;

/** The text of the last user turn of a model request. */
const lastUser = (req: ModelRequest): string => String([...req.messages].reverse().find((m) => m.role === 'user')?.content ?? '');

async function project(o: { builtins?: Record<string, BuiltinAgent>; llm: Record<string, { yaml: string; script: (req: ModelRequest, i: number) => ScriptedReply | Promise<ScriptedReply> }> }): Promise<{ swarm: Swarm; models: Map<string, ScriptedModel> }> {
  // Priced as gpt-4o-mini, so each call has a cost_usd.
  const models = new Map(Object.entries(o.llm).map(([name, a]) => [name, new ScriptedModel(a.script, { id: 'openai/gpt-4o-mini' })]));
  const { swarm, dir } = await consensusProject('sqlite', cleanups, { builtins: o.builtins ?? {}, open: { models: (_spec, name) => models.get(name) } });
  for (const [name, a] of Object.entries(o.llm)) await swarm.registerAgent(writeAgent(dir, name, a.yaml));
  return { swarm, models };
}

/** Once the task's run has ended, its stored events replay to its stored state. */
async function expectReplays(swarm: Swarm, runId: string): Promise<void> {
  await swarm.wait(runId);
  expect((await replayStoredRun(swarm, runId)).differences).toEqual([]);
}

async function taskEvents(swarm: Swarm, runId: string, taskId: string) {
  return (await swarm.events(runId)).filter((e) => (e.data as { task_id?: string }).task_id === taskId);
}

const PICK = {
  task_type: 'pick',
  inputs: { q: 'which is right?' },
  proposers: [{ agent: 'two' }, { agent: 'three' }],
  verification: { policy: 'vp.schema_only.v1' },
  output_schema: { type: 'object', required: ['answer'], properties: { answer: { type: 'number' } } },
};
/** A task two samples of llmsolver answer, checked by crosscheck, one kernel voter. */
const TWO_SAMPLES = {
  task_type: 'add',
  inputs: { message: 'What is 40 + 2?' },
  proposers: [{ agent: 'llmsolver', samples: 2 }],
  verification: { policy: 'vp.crosscheck.v1' },
  voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
};
const TWO = candidateHash({ answer: 2 });
const THREE = candidateHash({ answer: 3 });

describe('llm agents in consensus tasks (sqlite)', () => {
  it('an llm judge gets a message with the candidates and their verification, and its structured answer is its vote, charged to finalize', async () => {
    const { swarm, models } = await project({
      builtins: { two: async () => ({ answer: 2 }), three: async () => ({ answer: 3 }) },
      // Approves the candidate whose answer is 3 (the best ranked is 2: `two` is listed first).
      llm: { llmjudge: { yaml: llmAgent('llmjudge', JUDGE_SCHEMA), script: () => ({ content: JSON.stringify({ candidate_hash: THREE }), usage: { input_tokens: 100_000, output_tokens: 10_000 } }) } },
    });
    const { task_id: taskId } = await swarm.submitTask({ ...PICK, voting: { voters: [{ id: 'j2', strategy: 'agent', agent: 'llmjudge' }], quorum: 1, reveal_deadline_ms: 5000 }, budget: { finalize: 1 } });
    const d = await settledTask(swarm, taskId);
    expect(d.status).toBe('finalized');
    expect(d.decision).toMatchObject({ candidate_hash: THREE, output: { answer: 3 } });

    // What the model was asked: the task, both verified candidates by hash with their answers and results, and what to answer.
    const judge = models.get('llmjudge') as ScriptedModel;
    expect(judge.requests).toHaveLength(1);
    const text = lastUser(judge.requests[0] as ModelRequest);
    for (const s of [taskId, 'pick', '"q":"which is right?"', TWO, THREE, '"answer":2', '"answer":3', 'passed', 'vp.schema_only.v1', 'candidate_hash']) expect(text).toContain(s);
    expect(judge.requests[0]?.system).toBe('You are llmjudge.');

    const events = await taskEvents(swarm, d.run_id as string, taskId);
    expect(events.filter((e) => e.type === 'TASK_INPUT_REJECTED')).toEqual([]);
    expect(events.find((e) => e.type === 'VOTE_REVEAL')?.data).toMatchObject({ voter_id: 'j2', candidate_hash: THREE, vote: 'approve' });
    // Its usage is charged to the finalize bucket, with its commit.
    expect(events.find((e) => e.type === 'VOTE_COMMIT')?.data).toMatchObject({ voter_id: 'j2', cost_usd: expect.closeTo(usd(100_000, 10_000), 10) });
    const cost = await swarm.taskCost(taskId);
    expect(cost.finalize_usd).toBeCloseTo(usd(100_000, 10_000), 10);
    expect(cost.explore_usd).toBe(0);
    // The judge's conversation is its own session, by voter and vote round.
    const task = (await swarm.getTask(taskId))?.task;
    const sessions = await swarm.listSessions({ run_id: d.run_id as string });
    expect(sessions.map((s) => [s.id, s.step_id, s.agent, s.status, s.turns])).toEqual([[`${d.run_id}/${task?.step_id}/vote/j2/1`, task?.step_id, 'llmjudge', 'completed', 1]]);
    await expectReplays(swarm, d.run_id as string);
  }, 60_000);

  it('an llm judge that answers no verified candidate, or fails, is recorded with its reason code and cost; its voter votes for the best verified one', async () => {
    const { swarm } = await project({
      builtins: { two: async () => ({ answer: 2 }), three: async () => ({ answer: 3 }) },
      llm: {
        // A well-formed answer naming no candidate of the task.
        nohash: { yaml: llmAgent('nohash', JUDGE_SCHEMA), script: () => ({ content: '{"candidate_hash": "nope"}', usage: { input_tokens: 1000, output_tokens: 10 } }) },
        // Never answers JSON: the loop gives up after its output retries.
        prose: { yaml: llmAgent('prose', JUDGE_SCHEMA), script: () => ({ content: 'I like the second one.', usage: { input_tokens: 2000, output_tokens: 20 } }) },
      },
    });
    const voters = [
      { id: 'j1', strategy: 'agent', agent: 'nohash' },
      { id: 'j2', strategy: 'agent', agent: 'prose' },
    ];
    const { task_id: taskId } = await swarm.submitTask({ ...PICK, voting: { voters, quorum: 2, reveal_deadline_ms: 5000 } });
    const d = await settledTask(swarm, taskId);
    expect(d.status).toBe('finalized');
    expect(d.decision?.candidate_hash).toBe(TWO);
    const events = await taskEvents(swarm, d.run_id as string, taskId);
    const notes = events.filter((e) => e.type === 'TASK_INPUT_REJECTED').map((e) => e.data);
    const task = (await swarm.getTask(taskId))?.task;
    const session = (voter: string): string => `${d.run_id}/${task?.step_id}/vote/${voter}/1`;
    expect(notes).toHaveLength(2);
    const j1 = notes.find((n) => n['member_id'] === 'j1');
    const j2 = notes.find((n) => n['member_id'] === 'j2');
    expect(j1).toMatchObject({ record_kind: 'judge', agent: 'nohash', round: 1, reason_code: ReasonCode.CANDIDATE_UNKNOWN, reason: 'CANDIDATE_UNKNOWN', session_id: session('j1') });
    expect(j1?.['detail']).toContain("'nope'");
    expect(j1?.['detail']).toContain('votes for the best verified candidate');
    expect(j2).toMatchObject({ record_kind: 'judge', agent: 'prose', round: 1, reason_code: ReasonCode.EXECUTOR_UNAVAILABLE, reason: 'EXECUTOR_UNAVAILABLE', session_id: session('j2') });
    expect(j2?.['detail']).toContain('output schema');
    // Both voters fell back to the best verified candidate.
    expect(events.filter((e) => e.type === 'VOTE_REVEAL').map((e) => (e.data as { candidate_hash: string }).candidate_hash)).toEqual([TWO, TWO]);
    // What each judge spent is charged to finalize, the failed conversation's too (from its session).
    const sessions = await swarm.listSessions({ run_id: d.run_id as string });
    const spent = sessions.reduce((s, x) => s + x.cost_usd, 0);
    expect(sessions.map((s) => s.id).sort()).toEqual([session('j1'), session('j2')]);
    expect(sessions.find((s) => s.id === session('j2'))?.status).toBe('failed');
    expect(spent).toBeGreaterThan(usd(3000, 30));
    expect((await swarm.taskCost(taskId)).finalize_usd).toBeCloseTo(spent, 10);
    await expectReplays(swarm, d.run_id as string);
  }, 60_000);

  it('samples of an llm proposer are each their own session; their usage is charged to explore, so budget.explore stops the next round', async () => {
    const { swarm, models } = await project({
      // The same answer each time, with different token counts.
      llm: { llmsolver: { yaml: llmAgent('llmsolver', ANSWER_SCHEMA), script: (_req, i) => ({ content: '{"answer": 42}', usage: { input_tokens: 100_000 * (i + 1), output_tokens: 1000 } }) } },
    });
    const { task_id: taskId } = await swarm.submitTask({ ...TWO_SAMPLES, explore: { max_rounds: 2 }, budget: { explore: 0.01 } });
    const d = await settledTask(swarm, taskId);
    expect(d.status).toBe('finalized');
    // The candidate is the answer: no usage, session or turns in it.
    expect(d.decision).toMatchObject({ candidate_hash: candidateHash({ answer: 42 }), output: { answer: 42 } });
    const view = await swarm.getTask(taskId);
    const step = view?.task.step_id as string;
    expect(view?.candidates.map((c) => c.output)).toEqual([{ answer: 42 }, { answer: 42 }]);
    // Two identical answers agree: crosscheck passes them.
    expect(view?.results.map((r) => [r.status, r.score])).toEqual([['passed', 1]]);

    // One session per sample (by member and round), each with its own transcript and tokens.
    const sessions = (await swarm.listSessions({ run_id: d.run_id as string })).sort((a, b) => a.id.localeCompare(b.id));
    expect(sessions.map((s) => [s.id, s.step_id, s.turns])).toEqual([
      [`${d.run_id}/${step}/propose/agent:llmsolver#1/1`, step, 1],
      [`${d.run_id}/${step}/propose/agent:llmsolver#2/1`, step, 1],
    ]);
    expect(new Set(sessions.map((s) => s.input_tokens))).toEqual(new Set([100_000, 200_000]));
    for (const s of sessions) expect((await swarm.getSession(s.id)).messages.map((m) => [m.role, m.content])).toEqual([['user', 'What is 40 + 2?'], ['assistant', '{"answer": 42}']]);

    const events = await taskEvents(swarm, d.run_id as string, taskId);
    const proposed = events.filter((e) => e.type === 'CANDIDATE_PROPOSED').map((e) => e.data);
    expect(proposed).toHaveLength(2);
    for (const p of proposed) {
      expect(p['output']).toEqual({ answer: 42 });
      // Beside the candidate: the session it came from and its usage; its cost is the usage's.
      const s = sessions.find((x) => x.id === (p['session'] as { id?: string } | undefined)?.id);
      expect(s).toBeDefined();
      expect(p['session']).toMatchObject({ agent: 'llmsolver', turns: 1, usage: { input_tokens: s?.input_tokens, output_tokens: 1000 } });
      expect(p['cost_usd']).toBeCloseTo(s?.cost_usd as number, 12);
    }
    // The spending is the explore bucket's, and the spent bucket stops the second round before any call.
    const spent = usd(100_000, 1000) + usd(200_000, 1000);
    const cost = await swarm.taskCost(taskId);
    expect(cost.explore_usd).toBeCloseTo(spent, 10);
    expect(cost.exhausted).toEqual(['explore']);
    expect(events.filter((e) => e.type === 'TASK_STAGE_STOPPED').map((e) => e.data)).toEqual([expect.objectContaining({ stage: 'propose', bucket: 'explore', reason_code: ReasonCode.STAGE_BUDGET_EXHAUSTED, round: 2 })]);
    expect(models.get('llmsolver')?.calls).toBe(2);
    await expectReplays(swarm, d.run_id as string);
  }, 60_000);

  it("a sample's session is resumed by the worker that takes the step over: a finished conversation is not asked again", async () => {
    const { swarm, models } = await project({
      llm: { llmsolver: { yaml: llmAgent('llmsolver', ANSWER_SCHEMA), script: (_req, i) => ({ content: '{"answer": 42}', usage: { input_tokens: 1000 * (i + 1), output_tokens: 10 } }) } },
    });
    const { task_id: taskId } = await swarm.submitTask(TWO_SAMPLES);
    const d = await settledTask(swarm, taskId);
    expect(d.status).toBe('finalized');
    const step = (await swarm.getTask(taskId))?.task.step_id as string;
    const first = `${d.run_id}/${step}/propose/agent:llmsolver#1/1`;
    const before = (await swarm.listSessions({ run_id: d.run_id as string })).find((s) => s.id === first);
    expect(before?.status).toBe('completed');
    // As a worker that took the step over (attempt 2) asks sample 1 of round 1 again: the same session answers, the model is not called.
    const deps = (swarm as unknown as { consensusDeps: ConsensusDeps }).consensusDeps;
    const ask = (session: string) =>
      deps.runAgent({ agent: 'llmsolver', inputs: { message: 'What is 40 + 2?' }, runId: d.run_id as string, stepId: step, attempt: 2, idempotencyKey: `${taskId}/agent:llmsolver#1/1`, session, workflow: 'swarm-consensus', signal: new AbortController().signal });
    expect(await ask(first)).toMatchObject({ content: { answer: 42 }, session_id: first, turns: 1, usage: { input_tokens: before?.input_tokens } });
    expect(models.get('llmsolver')?.calls).toBe(2);
    // Another round of the same sample is a conversation of its own.
    const next = `${d.run_id}/${step}/propose/agent:llmsolver#1/2`;
    expect(await ask(next)).toMatchObject({ content: { answer: 42 }, session_id: next, usage: { input_tokens: 3000 } });
    expect(models.get('llmsolver')?.calls).toBe(3);
    expect((await swarm.getSession(first)).messages).toHaveLength(2);
  }, 60_000);

  it('an llm proposer whose task has no message is given one; its text answer is the candidate', async () => {
    const { swarm, models } = await project({
      llm: { texter: { yaml: llmAgent('texter'), script: (_req, i) => ({ content: '42', usage: { input_tokens: 10 + i, output_tokens: 1 } }) } },
    });
    const { task_id: taskId } = await swarm.submitTask({
      task_type: 'add',
      inputs: { a: 40, b: 2 },
      proposers: [{ agent: 'texter', samples: 2 }],
      verification: { policy: 'vp.crosscheck.v1' },
      voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
    });
    const d = await settledTask(swarm, taskId);
    expect(d.status).toBe('finalized');
    expect(d.decision).toMatchObject({ candidate_hash: candidateHash('42'), output: '42' });
    const asked = models.get('texter')?.requests.map(lastUser) ?? [];
    expect(asked).toHaveLength(2);
    for (const t of asked) for (const s of ['add', '"a":40', '"b":2']) expect(t).toContain(s);
  }, 60_000);
});
