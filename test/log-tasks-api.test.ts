/**
 * The consensus task routes in process (`app.request()`) on a real SQLite store: the list with its
 * filters and cursor, one task with its candidates, verifier results (reason names), votes
 * (commitments only until revealed), tally, decision with its proof and cost by bucket; a bad
 * contract is a 400 naming the path; an unknown task a 404.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { createApp } from '../src/server/app.js';
import type { Swarm } from '../src/swarm.js';
import { EXAMPLES, openProject, removeProject, tempProject } from './helpers/project.js';
import { seedFinalizedTask, type SeededTask } from './helpers/task-seed.js';

let dir: string;
let swarm: Swarm;
let app: OpenAPIHono;
let seeded: SeededTask;
let other: SeededTask;

beforeAll(async () => {
  dir = tempProject();
  swarm = await openProject(dir);
  await swarm.registerAgents(join(EXAMPLES, 'agents'));
  await swarm.registerWorkflows(join(EXAMPLES, 'workflows'));
  const run = await swarm.startRun('echo-chain', { message: 'tasks' });
  await swarm.runToCompletion(run);
  seeded = await seedFinalizedTask(swarm, run, 'pick');
  other = await seedFinalizedTask(swarm, run, 'pick-again');
  app = createApp(swarm, { version: 'test' });
}, 60_000);
afterAll(async () => {
  await swarm?.close();
  removeProject(dir);
});

async function get<T>(path: string): Promise<{ status: number; json: T; type: string | null }> {
  const res = await app.request(path);
  return { status: res.status, json: (await res.json()) as T, type: res.headers.get('content-type') };
}

interface Summary {
  task_id: string;
  status: string;
}

describe('GET /api/v1/tasks', () => {
  it('lists tasks newest first with filters, and pages with a cursor', async () => {
    const all = await get<{ tasks: Summary[]; next_cursor: string | null }>('/api/v1/tasks');
    expect(all.status).toBe(200);
    expect(all.json.tasks.map((t) => t.task_id).sort()).toEqual([seeded.task_id, other.task_id].sort());
    expect(all.json.tasks[0]).toMatchObject({ run_id: seeded.run_id, task_type: 'summary', status: 'finalized', reason: null });
    expect(all.json.next_cursor).toBeNull();

    for (const q of ['status=finalized', 'task_type=summary', `run=${seeded.run_id.slice(-12)}`]) expect((await get<{ tasks: Summary[] }>(`/api/v1/tasks?${q}`)).json.tasks).toHaveLength(2);
    for (const q of ['status=expired', 'task_type=other']) expect((await get<{ tasks: Summary[] }>(`/api/v1/tasks?${q}`)).json.tasks).toEqual([]);
    const bad = await get<{ code: string; field: string }>('/api/v1/tasks?status=done');
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ code: 'VALIDATION_FAILED', field: 'query.status' });

    const first = await get<{ tasks: Summary[]; next_cursor: string | null }>('/api/v1/tasks?limit=1');
    expect(first.json.tasks).toHaveLength(1);
    expect(first.json.next_cursor).toEqual(expect.any(String));
    const second = await get<{ tasks: Summary[]; next_cursor: string | null }>(`/api/v1/tasks?limit=1&cursor=${first.json.next_cursor ?? ''}`);
    expect(second.json.tasks).toHaveLength(1);
    expect(second.json.next_cursor).toBeNull();
    expect([first.json.tasks[0]?.task_id, second.json.tasks[0]?.task_id].sort()).toEqual([seeded.task_id, other.task_id].sort());
  });
});

describe('GET /api/v1/tasks/{id}', () => {
  it('shows candidates, verifier results with reason names, votes, tally, the decision with its proof, and cost', async () => {
    const res = await get<Record<string, unknown>>(`/api/v1/tasks/${encodeURIComponent(seeded.task_id)}`);
    expect(res.status).toBe(200);
    const t = res.json as {
      candidates: Array<{ candidate_hash: string; proposer_id: string; output: unknown; cost_usd: number; event: { seq: number } }>;
      verifier_results: Array<{ candidate_hash: string; status: string; reason_codes: Array<{ code: number; name: string }> }>;
      votes: Array<Record<string, unknown>>;
      tally: Array<{ round: number; commits: number; reveals: number; approvals: Record<string, number> }>;
      decision: { candidate_hash: string; finalized: boolean; proof: { candidate_event: { seq: number; hash: string }; reveal_events: Array<{ seq: number; hash: string }> } };
      cost: { explore_usd: number; verify_usd: number; finalize_usd: number; total_usd: number; budget: Record<string, number> };
    };
    expect(t.candidates.map((c) => [c.proposer_id, c.candidate_hash])).toEqual([
      ['executor:rt-a', seeded.winner],
      ['executor:rt-b', seeded.loser],
    ]);
    expect(t.candidates[0]?.event.seq).toBe(seeded.proof.candidate);
    const failed = t.verifier_results.find((r) => r.candidate_hash === seeded.loser);
    expect(failed).toMatchObject({ status: 'failed', reason_codes: [{ code: 1001, name: 'SCHEMA_MISMATCH' }, { code: 1003, name: 'FIELD_MISSING' }] });
    // A commitment alone until it is revealed: what v3 voted for is not shown.
    const v3 = t.votes.find((v) => v.voter_id === 'v3');
    expect(v3).toMatchObject({ revealed: false, commitment: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(v3).not.toHaveProperty('candidate_hash');
    expect(v3).not.toHaveProperty('salt');
    expect(t.votes.find((v) => v.voter_id === 'v1')).toMatchObject({ revealed: true, vote: 'approve', candidate_hash: seeded.winner, salt: expect.any(String) });
    expect(t.tally).toEqual([{ round: 1, commits: 3, reveals: 2, approvals: { [seeded.winner]: 2 } }]);
    expect(t.decision).toMatchObject({ candidate_hash: seeded.winner, finalized: true });
    expect(t.decision.proof.reveal_events.map((e) => e.seq)).toEqual(seeded.proof.reveals);
    // The proof's hashes are the run's events.
    const events = await swarm.events(seeded.run_id);
    for (const ref of [t.decision.proof.candidate_event, ...t.decision.proof.reveal_events]) expect(events.find((e) => e.seq === ref.seq)?.hash).toBe(ref.hash);
    expect(t.cost.explore_usd).toBeCloseTo(0.35);
    expect(t.cost.verify_usd).toBeCloseTo(0.1);
    expect(t.cost.finalize_usd).toBeCloseTo(0.01);
    expect(t.cost.total_usd).toBeCloseTo(0.46);
    expect(t.cost.budget).toEqual({ explore: 1, verify: 0.5, finalize: 0.2 });
  });

  it('an unknown task is a 404 problem naming it', async () => {
    const res = await get<{ code: string; detail: string }>('/api/v1/tasks/nope');
    expect(res.status).toBe(404);
    expect(res.type).toContain('application/problem+json');
    expect(res.json).toMatchObject({ code: 'TASK_NOT_FOUND', task_id: 'nope' });
  });
});

describe('POST /api/v1/tasks', () => {
  async function post(body: unknown): Promise<{ status: number; json: { code: string; field?: string; detail: string }; type: string | null }> {
    const res = await app.request('/api/v1/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as { code: string; field?: string; detail: string }, type: res.headers.get('content-type') };
  }
  const contract = { task_type: 'summary', inputs: { message: 'x' }, output_schema: { type: 'object' }, proposers: [{ agent: 'echo' }], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v1' }], quorum: 1 } };

  it('a bad contract is a 400 problem naming the path at fault', async () => {
    for (const [body, field] of [
      [{ ...contract, proposers: [] }, 'proposers'],
      [{ ...contract, voting: { voters: [{ id: 'v1' }], quorum: 'two' } }, 'voting.quorum'],
      [{ ...contract, budget: { explore: -1 } }, 'budget.explore'],
      [{ ...contract, colour: 'blue' }, 'colour'],
      [{ ...contract, task_type: undefined }, 'task_type'],
    ] as const) {
      const res = await post(body);
      expect(res.status, JSON.stringify(res.json)).toBe(400);
      expect(res.type).toContain('application/problem+json');
      expect(res.json).toMatchObject({ code: 'TASK_CONTRACT_INVALID', field });
      expect(res.json.detail).toContain(field);
    }
    const notObject = await app.request('/api/v1/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1, 2]' });
    expect(notObject.status).toBe(400);
    expect(await notObject.json()).toMatchObject({ code: 'TASK_CONTRACT_INVALID' });
  });

  it('a good contract starts its run (201); the same task id again answers with that run (200)', async () => {
    const body = { ...contract, task_id: 'api-submitted' };
    const first = await app.request('/api/v1/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(first.status, await first.clone().text()).toBe(201);
    const created = (await first.json()) as { task_id: string; run_id: string; created: boolean };
    expect(created).toMatchObject({ task_id: 'api-submitted', created: true });
    expect(first.headers.get('location')).toBe('/api/v1/tasks/api-submitted');
    expect((await swarm.getRun(created.run_id)).run.workflow_name).toBe('swarm-consensus');
    const again = await app.request('/api/v1/tasks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ task_id: 'api-submitted', run_id: created.run_id, created: false });
    // No worker runs here: the task is not created yet, and the 404 says where it will be.
    const pending = await get<{ code: string; run_id: string }>('/api/v1/tasks/api-submitted');
    expect(pending.status).toBe(404);
    expect(pending.json).toMatchObject({ code: 'TASK_NOT_FOUND', run_id: created.run_id });
  });
});

describe('POST /api/v1/tasks/{id}/votes', () => {
  async function vote(id: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await app.request(`/api/v1/tasks/${encodeURIComponent(id)}/votes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it('a refused vote answers with its reason code and name, and is recorded in the run', async () => {
    const res = await vote(seeded.task_id, { kind: 'commit', voter_id: 'stranger', commitment: 'a'.repeat(64), signature: 'c2ln' });
    expect(res.status, JSON.stringify(res.json)).toBe(403);
    expect(res.json).toMatchObject({ reason_code: expect.any(Number), reason_name: res.json.code });
    const events = await swarm.events(seeded.run_id);
    expect(events.at(-1)).toMatchObject({ type: 'TASK_INPUT_REJECTED', data: expect.objectContaining({ task_id: seeded.task_id }) });
    const unknown = await vote('nope', { kind: 'reveal', voter_id: 'v1', candidate_hash: 'h', vote: 'approve', salt: 's', signature: 'c2ln' });
    expect(unknown.status).toBe(404);
    const malformed = await vote(seeded.task_id, { kind: 'maybe', voter_id: 'v1' });
    expect(malformed.status).toBe(422);
    expect(malformed.json).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
