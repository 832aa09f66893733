/**
 * The SW4RM scheduler port over real gRPC (127.0.0.1, port 0) on both stores: cooperative and
 * forced preemption by class and priority, a cancellation cascading to registered children, a
 * negotiation room deciding from its critics' votes (and still there after a restart), a
 * negotiation's lifecycle, and a HITL invocation approved through Swarm's approvals API answering
 * the waiting Decide call.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { sw4rmProtos } from '../src/sw4rm/proto.js';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import { pgTestServer, stopPgTestServer, type PgTestServer } from './helpers/pg.js';
import { removeProject, tempProject, until } from './helpers/project.js';

let pgServer: PgTestServer;
beforeAll(async () => {
  pgServer = await pgTestServer();
});
afterAll(async () => {
  await stopPgTestServer();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Any) => void) => void;
type Client = grpc.Client & Record<string, Unary>;

function call(client: Client, method: string, req: unknown, metadata = new grpc.Metadata()): Promise<Any> {
  return new Promise((resolve, reject) => client[method]!(req, metadata, { deadline: Date.now() + 20_000 }, (err, res) => (err ? reject(err) : resolve(res))));
}

function md(pairs: Record<string, string>): grpc.Metadata {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(pairs)) m.set(k, v);
  return m;
}

async function rejects(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

interface Env {
  swarm: Swarm;
  server: Sw4rmServer;
  clock: { now: number };
  client(service: string): Client;
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function open(backend: 'sqlite' | 'postgres'): Promise<Env> {
  const dir = tempProject();
  const env: Record<string, string> = { SWARM_HOME: join(dir, '.swarm') };
  if (backend === 'postgres') env.SWARM_DATABASE_URL = await pgServer.createDatabase();
  const swarm = await Swarm.open({ cwd: dir, env });
  expect(swarm.store.kind).toBe(backend);
  const clock = { now: Date.now() };
  const start = () => startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 }, now: () => clock.now });
  let server = await start();
  const clients: Client[] = [];
  const protos = sw4rmProtos();
  const ctor = (service: string): grpc.ServiceClientConstructor => {
    const [pkg, name] = service.split('.') as [string, string];
    return protos[pkg]![name] as grpc.ServiceClientConstructor;
  };
  const e: Env = {
    swarm,
    get server() {
      return server;
    },
    clock,
    client(service) {
      const c = new (ctor(service))(`127.0.0.1:${server.ports.scheduler}`, grpc.credentials.createInsecure()) as Client;
      clients.push(c);
      return c;
    },
    async restart() {
      await server.close();
      server = await start();
    },
    async close() {
      for (const c of clients) c.close();
      await server.close();
      await swarm.close();
      removeProject(dir);
    },
  };
  return e;
}

const activity = async (sched: Client, agent: string): Promise<Record<string, string>> =>
  Object.fromEntries(((await call(sched, 'PollActivityBuffer', { agent_id: agent })).entries as Array<{ task_id: string; description: string }>).map((x) => [x.task_id, x.description]));

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`SW4RM scheduler port on ${backend}`, () => {
    it('the store: a group change is atomic (concurrent changes serialise; a throwing change writes nothing)', async () => {
      const e = await open(backend);
      try {
        const store = e.swarm.store;
        const bump = () =>
          store.updateSw4rmGroup('g1', ['counter'], (docs) => {
            const n = ((docs[0]?.doc as { n: number } | undefined)?.n ?? 0) + 1;
            return { put: [{ kind: 'counter', key: 'c', grp: 'g1', owner: 'me', status: String(n), doc: { n }, updated_at: n }], remove: [] };
          });
        await Promise.all(Array.from({ length: 20 }, bump));
        expect((await store.getSw4rmDocs('counter', ['c', 'missing']))[0]).toMatchObject({ status: '20', doc: { n: 20 }, owner: 'me' });
        await expect(
          store.updateSw4rmGroup('g1', ['counter'], () => {
            throw new Error('refused');
          }),
        ).rejects.toThrow('refused');
        expect((await store.listSw4rmDocs('counter', { owner: 'me' })).map((d) => d.doc)).toEqual([{ n: 20 }]);
        await store.updateSw4rmGroup('g1', ['counter'], () => ({ put: [], remove: [{ kind: 'counter', key: 'c' }] }));
        expect(await store.listSw4rmDocs('counter', { group: 'g1' })).toEqual([]);
      } finally {
        await e.close();
      }
    });

    it('orders by class and priority, asks the lower task to yield, preempts it by force after the grace, and a purge frees the slot', async () => {
      const e = await open(backend);
      try {
        const sched = e.client('scheduler.SchedulerService');
        const bulk = md({ 'sw4rm-communication-class': 'BULK' });
        expect((await call(sched, 'SubmitTask', { agent_id: 'low', task_id: 'l1', priority: 0, scope: 'gpu', params: Buffer.from('{}'), content_type: 'application/json' }, bulk)).reason).toMatch(/^RUNNING/);
        // A retried submit changes nothing.
        expect((await call(sched, 'SubmitTask', { agent_id: 'low', task_id: 'l1', priority: 0, scope: 'gpu' }, bulk)).reason).toMatch(/^already submitted: RUNNING/);
        expect((await call(sched, 'SubmitTask', { agent_id: 'high', task_id: 'h1', priority: 10, scope: 'gpu' })).reason).toMatch(/^QUEUED/);
        expect((await activity(sched, 'low')).l1).toMatch(/^PREEMPT_REQUESTED/);
        // The urgent lane: a PRIVILEGED task of the lowest priority goes ahead of the queued STANDARD one.
        await call(sched, 'SubmitTask', { agent_id: 'ops', task_id: 'o1', priority: -19, scope: 'gpu' }, md({ 'sw4rm-communication-class': 'PRIVILEGED' }));
        e.clock.now += 4999;
        expect((await activity(sched, 'low')).l1).toMatch(/^PREEMPT_REQUESTED/);
        e.clock.now += 1;
        expect((await activity(sched, 'low')).l1).toMatch(/^PREEMPTED FORCED_PREEMPTION/);
        expect((await activity(sched, 'ops')).o1).toMatch(/^RUNNING/);
        expect((await activity(sched, 'high')).h1).toMatch(/^QUEUED/);
        // The privileged task ends (purged): the slot goes to the next in line.
        expect((await call(sched, 'PurgeActivity', { agent_id: 'ops', task_ids: ['o1'] })).purged).toBe(1);
        expect((await activity(sched, 'high')).h1).toMatch(/^RUNNING/);
        expect(await activity(sched, 'ops')).toEqual({});
        // Explicit preemption and bad input.
        expect((await call(sched, 'RequestPreemption', { agent_id: 'high', task_id: 'h1', reason: 'maintenance' })).enqueued).toBe(true);
        expect((await call(sched, 'RequestPreemption', { agent_id: 'high', task_id: 'nope' })).enqueued).toBe(false);
        expect((await activity(sched, 'high')).h1).toMatch(/^PREEMPT_REQUESTED .*maintenance/);
        const bad = await rejects(call(sched, 'SubmitTask', { agent_id: 'x', task_id: 't', priority: 21 }));
        expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(bad.details).toMatch(/SW4RM_TASK_INVALID: SubmitTask: priority must be an integer from -19 to 20/);
        expect(bad.metadata.get('sw4rm-error-code')).toEqual(['VALIDATION_ERROR']);
        expect(await activity(sched, 'x')).toEqual({});
      } finally {
        await e.close();
      }
    });

    it('cancels a delegation and its registered direct children over gRPC; forced preemption after the minimum grace', async () => {
      const e = await open(backend);
      try {
        const sched = e.client('scheduler.SchedulerService');
        const handoff = e.client('handoff.HandoffService');
        for (const [parent, child] of [['root', 'child-a'], ['root', 'child-b'], ['child-a', 'grandchild']]) {
          await call(handoff, 'RequestHandoff', { request_id: child, from_agent: 'boss', to_agent: 'worker', reason: 'delegate', budget: { deadline_epoch_ms: e.clock.now + 60_000 } }, md({ 'sw4rm-correlation-id': parent! }));
        }
        expect(((await call(handoff, 'GetPendingHandoffs', { agent_id: 'worker' })).pending_requests as Array<{ request_id: string }>).map((h) => h.request_id).sort()).toEqual(['child-a', 'child-b', 'grandchild']);
        for (const id of ['root', 'child-a', 'grandchild']) await call(sched, 'SubmitTask', { agent_id: 'worker', task_id: id, scope: id });
        await call(sched, 'SubmitTask', { agent_id: 'worker', task_id: 'child-b', scope: 'root' }); // queued behind root
        const t0 = e.clock.now;
        const res = await call(handoff, 'CancelDelegation', { correlation_id: 'root', reason: 'abort', grace_period_ms: 0 });
        expect(res.acknowledged).toBe(true);
        expect(res.message).toMatch(/3 correlation\(s\); forced preemption after 5000 ms/);
        let a = await activity(sched, 'worker');
        expect(a.root).toMatch(/^PREEMPT_REQUESTED .*cancelled: abort/);
        expect(a['child-a']).toMatch(/^PREEMPT_REQUESTED/);
        expect(a['child-b']).toMatch(/^CANCELLED/);
        expect(a.grandchild).toMatch(/^RUNNING/); // direct children only
        e.clock.now = t0 + 4999;
        expect((await activity(sched, 'worker'))['child-a']).toMatch(/^PREEMPT_REQUESTED/);
        e.clock.now = t0 + 5000;
        a = await activity(sched, 'worker');
        expect(a.root).toMatch(/^PREEMPTED FORCED_PREEMPTION/);
        expect(a['child-a']).toMatch(/^PREEMPTED FORCED_PREEMPTION/);
        expect(a.grandchild).toMatch(/^RUNNING/);
        const blank = await rejects(call(handoff, 'CancelDelegation', { correlation_id: '  ' }));
        expect(blank.code).toBe(grpc.status.INVALID_ARGUMENT);
      } finally {
        await e.close();
      }
    });

    it('a negotiation room decides when every requested critic has voted; votes and decision survive a restart', async () => {
      const e = await open(backend);
      try {
        let room = e.client('negotiation_room.NegotiationRoomService');
        await call(room, 'SubmitProposal', { proposal: { artifact_type: 'CODE', artifact_id: 'a1', producer_id: 'dev', artifact: Buffer.from('diff'), artifact_content_type: 'text/plain', requested_critics: ['c1', 'c2'], negotiation_room_id: 'r1' } });
        // The same proposal again (critics in another order) is a retry; other critics for the artifact are refused.
        expect(await call(room, 'SubmitProposal', { proposal: { artifact_type: 'CODE', artifact_id: 'a1', producer_id: 'dev', artifact: Buffer.from('diff'), artifact_content_type: 'text/plain', requested_critics: ['c2', 'c1'], negotiation_room_id: 'r1' } })).toMatchObject({ artifact_id: 'a1', negotiation_room_id: 'r1' });
        const otherCritics = await rejects(call(room, 'SubmitProposal', { proposal: { artifact_type: 'CODE', artifact_id: 'a1', producer_id: 'dev', artifact: Buffer.from('diff'), artifact_content_type: 'text/plain', requested_critics: ['c1', 'c3'], negotiation_room_id: 'r1' } }));
        expect(otherCritics.code).toBe(grpc.status.ALREADY_EXISTS);
        expect(otherCritics.details).toMatch(/artifact 'a1' is already proposed in room 'r1' with another requested_critics/);
        await call(room, 'SubmitVote', { vote: { artifact_id: 'a1', critic_id: 'c1', score: 9, confidence: 0.75, passed: true, negotiation_room_id: 'r1' } });
        expect((await rejects(call(room, 'GetDecision', { artifact_id: 'a1', negotiation_room_id: 'r1' }))).code).toBe(grpc.status.NOT_FOUND);
        expect((await rejects(call(room, 'SubmitVote', { vote: { artifact_id: 'a1', critic_id: 'intruder', score: 1, confidence: 1, negotiation_room_id: 'r1' } }))).code).toBe(grpc.status.PERMISSION_DENIED);
        const badScore = await rejects(call(room, 'SubmitVote', { vote: { artifact_id: 'a1', critic_id: 'c2', score: 11, confidence: 1, negotiation_room_id: 'r1' } }));
        expect(badScore.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(badScore.details).toMatch(/vote.score must be from 0 to 10/);
        expect((await call(room, 'GetVotes', { artifact_id: 'a1', negotiation_room_id: 'r1' })).vote_count).toBe(1);
        const waiting = call(room, 'WaitForDecision', { artifact_id: 'a1', negotiation_room_id: 'r1' });
        await call(room, 'SubmitVote', { vote: { artifact_id: 'a1', critic_id: 'c2', score: 5, confidence: 0.25, passed: true, negotiation_room_id: 'r1' } });
        const { decision } = await waiting;
        expect(decision.outcome).toBe('APPROVED');
        expect(decision.aggregated_score).toMatchObject({ mean: 7, min_score: 5, max_score: 9, weighted_mean: 8, vote_count: 2 });
        expect((await rejects(call(room, 'SubmitVote', { vote: { artifact_id: 'a1', critic_id: 'c2', score: 1, confidence: 1, negotiation_room_id: 'r1' } }))).code).toBe(grpc.status.FAILED_PRECONDITION);
        await e.restart();
        room = e.client('negotiation_room.NegotiationRoomService');
        expect(((await call(room, 'GetVotes', { artifact_id: 'a1', negotiation_room_id: 'r1' })).votes as Array<{ critic_id: string }>).map((v) => v.critic_id).sort()).toEqual(['c1', 'c2']);
        expect((await call(room, 'GetDecision', { artifact_id: 'a1', negotiation_room_id: 'r1' })).decision.outcome).toBe('APPROVED');
        // A waiter's deadline with the quorum short: decided with what there is (fail closed: a human).
        await call(room, 'SubmitProposal', { proposal: { artifact_id: 'a2', producer_id: 'dev', requested_critics: ['c1', 'c2', 'c3'], negotiation_room_id: 'r1' } });
        await call(room, 'SubmitVote', { vote: { artifact_id: 'a2', critic_id: 'c1', score: 9, confidence: 1, negotiation_room_id: 'r1' } });
        const late = call(room, 'WaitForDecision', { artifact_id: 'a2', negotiation_room_id: 'r1', timeout_seconds: 1 });
        // The server's clock moves on while the waiter waits (whenever its request arrived).
        const tick = setInterval(() => (e.clock.now += 250), 20);
        try {
          const { decision: short } = await late;
          expect(short.outcome).toBe('ESCALATED_TO_HITL');
          expect(short.reason).toMatch(/quorum not met: 1 of 3 requested critics voted, 2 needed/);
        } finally {
          clearInterval(tick);
        }

        const neg = e.client('negotiation.NegotiationService');
        const mismatch = await rejects(call(neg, 'Open', { negotiation_id: 'n1', correlation_id: 'other', participants: ['a', 'b'] }));
        expect(mismatch.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(mismatch.details).toMatch(/a negotiation's id is the correlation_id/);
        await call(neg, 'Open', { negotiation_id: 'n1', correlation_id: 'n1', topic: 'api shape', participants: ['a', 'b'], intensity: 'HIGH' });
        await call(neg, 'Propose', { negotiation_id: 'n1', from_agent: 'a', content_type: 'text/plain', payload: Buffer.from('v1') });
        await call(neg, 'Counter', { negotiation_id: 'n1', from_agent: 'b', content_type: 'text/plain', payload: Buffer.from('v2') });
        expect((await rejects(call(neg, 'Propose', { negotiation_id: 'n1', from_agent: 'z', payload: Buffer.from('x') }))).code).toBe(grpc.status.PERMISSION_DENIED);
        const policy = e.client('scheduler.SchedulerPolicyService');
        await call(policy, 'SetPolicyProfiles', { profiles: [{ name: 'HIGH', policy: { max_rounds: 9, score_threshold: 0.9, hitl: { mode: 'PauseOnFinalAccept' } } }] });
        expect((await call(policy, 'GetEffectivePolicy', { negotiation_id: 'n1' })).effective.policy.max_rounds).toBe(9);
        expect((await rejects(call(policy, 'SetWagglePolicy', { policy: { score_threshold: 2 } }))).details).toMatch(/policy.score_threshold must be from 0 to 1/);
        await call(policy, 'HitlAction', { negotiation_id: 'n1', action: 'accept-v2', rationale: 'shorter' });
        expect((await rejects(call(neg, 'Propose', { negotiation_id: 'n1', from_agent: 'a', payload: Buffer.from('v3') }))).code).toBe(grpc.status.FAILED_PRECONDITION);
        const docs = await e.swarm.store.listSw4rmDocs('neg-entry', { group: 'neg:n1' });
        expect(docs.map((d) => d.status)).toEqual(['proposal', 'counter']);
        expect((await e.swarm.store.getSw4rmDocs('negotiation', ['n1']))[0]?.doc).toMatchObject({ status: 'decided', decision: { decided_by: 'hitl' } });
      } finally {
        await e.close();
      }
    });

    it('a HITL invocation becomes a Swarm approval; approving it through the API answers the waiting Decide call', async () => {
      const e = await open(backend);
      try {
        const hitl = e.client('hitl.HitlService');
        const answer = call(hitl, 'Decide', { reason_type: 'SECURITY_APPROVAL', context: Buffer.from(JSON.stringify({ host: 'db-1' })), proposed_actions: ['rotate-keys', 'ignore'], priority: 5 }, md({ 'sw4rm-hitl-id': 'inv-1' }));
        const pending = await until(async () => (await e.swarm.listApprovals()).find((a) => a.tool === 'approval'), 20_000);
        // As for any approval: decided once its step has paused (the run is waiting).
        await until(async () => ((await e.swarm.getRun(pending.run_id)).run.status === 'waiting' ? true : undefined), 20_000);
        const run = await e.swarm.getRun(pending.run_id);
        expect(run.run.workflow_name).toBe('sw4rm-hitl');
        expect(JSON.parse(pending.arguments)).toMatchObject({ message: 'SW4RM HITL SECURITY_APPROVAL (priority 5): rotate-keys | ignore', data: { context: { host: 'db-1' } } });
        await e.swarm.approve(pending.run_id, undefined, { reason: 'ignore', by: 'ops' });
        const decision = await answer;
        expect(decision.action).toBe('ignore');
        expect(decision.rationale).toBe('ignore');
        expect(JSON.parse(Buffer.from(decision.decision_payload).toString())).toMatchObject({ hitl_id: 'inv-1', run_id: pending.run_id, status: 'approved', decided_by: 'ops' });
        // The same invocation id again: the decided approval answers at once, no second run.
        const again = await call(hitl, 'Decide', { reason_type: 'SECURITY_APPROVAL', proposed_actions: ['rotate-keys'] }, md({ 'sw4rm-hitl-id': 'inv-1' }));
        expect(again.action).toBe('ignore');
        await until(async () => ((await e.swarm.getRun(pending.run_id)).run.status === 'completed' ? true : undefined), 20_000);
      } finally {
        await e.close();
      }
    });
  });
}
