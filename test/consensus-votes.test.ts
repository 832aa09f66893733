/**
 * External voters through the facade (what `swarm task vote` and the API call), with a real worker
 * driving the task: every refusal reason (not a member, unsigned, foreign signature, duplicate
 * commit, commit after reveals began, reveal without commit, mismatch, unknown candidate, duplicate
 * reveal, late) answered with its reason code and recorded as TASK_INPUT_REJECTED; a round without
 * enough reveals fails at its deadline; an external voter and a kernel voter decide together. SQLite
 * and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { commitmentHash, generateIdentity, newSalt, signRecord } from '../src/consensus/core/crypto.js';
import { ReasonCode } from '../src/consensus/core/reason-codes.js';
import { voteCommitSignedFields, voteRevealSignedFields } from '../src/consensus/core/signed.js';
import type { Swarm } from '../src/swarm.js';
import { consensusProject, useCleanups, type Backend } from './helpers/consensus-project.js';
import { until } from './helpers/project.js';

const cleanups = useCleanups();

async function open(backend: Backend): Promise<Swarm> {
  return (await consensusProject(backend, cleanups, { builtins: { solver: async () => ({ answer: 4 }) } })).swarm;
}

interface Voter {
  id: string;
  key: string;
}

function commit(taskId: string, v: Voter, hash: string, salt: string, signer = v.key) {
  const commitment = commitmentHash(hash, 'approve', salt);
  return { kind: 'commit' as const, task_id: taskId, round: 1, voter_id: v.id, commitment, signature: signRecord(signer, 'vote_commit', voteCommitSignedFields({ task_id: taskId, round: 1, voter_id: v.id, commitment })) };
}

function reveal(taskId: string, v: Voter, hash: string, salt: string) {
  const f = { task_id: taskId, round: 1, voter_id: v.id, candidate_hash: hash, vote: 'approve' as const, salt };
  return { kind: 'reveal' as const, ...f, signature: signRecord(v.key, 'vote_reveal', voteRevealSignedFields(f)) };
}

async function refused(p: Promise<unknown>): Promise<number> {
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as { code?: string; context?: { reason_code?: number }; exitCode?: number } | undefined;
  expect(e?.exitCode).toBe(6);
  return e?.context?.reason_code ?? -1;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`external voters (${backend})`, () => {
    it('refuses each bad vote with its reason code and records it; too few reveals fail the task at the deadline', async () => {
      const swarm = await open(backend);
      const ids = [generateIdentity(), generateIdentity(), generateIdentity()];
      const [e1, e2, e3] = ids.map((k, i) => ({ id: `ext${i + 1}`, key: k.privateKey })) as [Voter, Voter, Voter];
      const stranger = generateIdentity();
      const { task_id: taskId } = await swarm.submitTask({
        task_type: 'add',
        inputs: {},
        proposers: [{ agent: 'solver' }],
        verification: { policy: 'vp.schema_only.v1' },
        output_schema: { type: 'object', required: ['answer'] },
        voting: { voters: ids.map((k, i) => ({ id: `ext${i + 1}`, external: true, public_key: k.publicKey })), quorum: 2, reveal_deadline_ms: 4000, max_rounds: 1 },
      });
      const view = await until(async () => {
        const v = await swarm.getTask(taskId);
        return v?.task.status === 'voting' ? v : undefined;
      }, 20_000, 'the task voting');
      const hash = view.candidates[0]?.candidate_hash ?? '';
      const unknown = 'f'.repeat(64);
      const s1 = newSalt();
      const s2 = newSalt();

      expect(await refused(swarm.submitVote(commit(taskId, { id: 'stranger', key: stranger.privateKey }, hash, s1)))).toBe(ReasonCode.NOT_MEMBER);
      expect(await refused(swarm.submitVote({ ...commit(taskId, e1, hash, s1), signature: '' }))).toBe(ReasonCode.SIGNATURE_MISSING);
      expect(await refused(swarm.submitVote(commit(taskId, e1, hash, s1, stranger.privateKey)))).toBe(ReasonCode.SIGNATURE_INVALID);
      await swarm.submitVote(commit(taskId, e1, hash, s1));
      expect(await refused(swarm.submitVote(commit(taskId, e1, hash, s1)))).toBe(ReasonCode.COMMIT_DUPLICATE);
      await swarm.submitVote(commit(taskId, e2, unknown, s2));
      expect(await refused(swarm.submitVote(reveal(taskId, e3, hash, s1)))).toBe(ReasonCode.REVEAL_WITHOUT_COMMIT);
      expect(await refused(swarm.submitVote(reveal(taskId, e1, hash, s2)))).toBe(ReasonCode.REVEAL_MISMATCH);
      expect(await refused(swarm.submitVote(reveal(taskId, e2, unknown, s2)))).toBe(ReasonCode.REVEAL_UNKNOWN_CANDIDATE);
      await swarm.submitVote(reveal(taskId, e1, hash, s1));
      expect(await refused(swarm.submitVote(reveal(taskId, e1, hash, s1)))).toBe(ReasonCode.REVEAL_DUPLICATE);
      expect(await refused(swarm.submitVote(commit(taskId, e3, hash, s1)))).toBe(ReasonCode.COMMIT_CLOSED);

      // One approval of a quorum of two: at the deadline the task fails (max_rounds 1), and a reveal now is late.
      const done = await until(async () => {
        const d = await swarm.taskDecision(taskId);
        return d.status === 'failed' ? d : undefined;
      }, 20_000, 'the task failed');
      expect(done.reason_code).toBe(ReasonCode.QUORUM_NOT_REACHED);
      expect(await refused(swarm.submitVote(reveal(taskId, e2, unknown, s2)))).toBe(ReasonCode.REVEAL_LATE);

      // The task's failure and its run's are separate commits: wait for the run to settle too.
      const run = await until(async () => {
        const r = (await swarm.getRun(done.run_id as string)).run;
        return r.status !== 'running' ? r : undefined;
      }, 20_000, 'the task run settled');
      const events = await swarm.events(done.run_id as string);
      const rejected = events.filter((e) => e.type === 'TASK_INPUT_REJECTED').map((e) => (e.data as { reason_code: number }).reason_code);
      expect(rejected).toEqual([
        ReasonCode.NOT_MEMBER,
        ReasonCode.SIGNATURE_MISSING,
        ReasonCode.SIGNATURE_INVALID,
        ReasonCode.COMMIT_DUPLICATE,
        ReasonCode.REVEAL_WITHOUT_COMMIT,
        ReasonCode.REVEAL_MISMATCH,
        ReasonCode.REVEAL_UNKNOWN_CANDIDATE,
        ReasonCode.REVEAL_DUPLICATE,
        ReasonCode.COMMIT_CLOSED,
        ReasonCode.REVEAL_LATE,
      ]);
      expect(events.filter((e) => e.type === 'VOTE_COMMIT')).toHaveLength(2);
      expect(events.filter((e) => e.type === 'VOTE_REVEAL')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'TASK_FAILED')).toHaveLength(1);
      expect(run.status).toBe('failed');
    }, 60_000);

    it('an external voter and a kernel voter decide together: the kernel reveals once everyone committed', async () => {
      const swarm = await open(backend);
      const ext = generateIdentity();
      const { task_id: taskId } = await swarm.submitTask({
        task_type: 'add',
        inputs: {},
        proposers: [{ agent: 'solver' }],
        verification: { policy: 'vp.schema_only.v1' },
        output_schema: { type: 'object', required: ['answer'] },
        voting: { voters: [{ id: 'v1' }, { id: 'ext', external: true, public_key: ext.publicKey }], quorum: 2, reveal_deadline_ms: 30_000 },
      });
      const view = await until(async () => {
        const v = await swarm.getTask(taskId);
        return v?.task.status === 'voting' && v.votes.length === 1 ? v : undefined;
      }, 20_000, 'the kernel voter committed');
      // The kernel voter has committed, not revealed: its vote stays hidden until every voter committed.
      expect(view.votes[0]).toMatchObject({ voter_id: 'v1', revealed_at: null, candidate_hash: null });
      const hash = view.candidates[0]?.candidate_hash ?? '';
      const salt = newSalt();
      const me = { id: 'ext', key: ext.privateKey };
      await swarm.submitVote(commit(taskId, me, hash, salt));
      await until(async () => ((await swarm.getTask(taskId))?.votes.find((v) => v.voter_id === 'v1')?.revealed_at ?? null) !== null, 20_000, 'the kernel voter revealed');
      await swarm.submitVote(reveal(taskId, me, hash, salt));
      const d = await until(async () => {
        const x = await swarm.taskDecision(taskId);
        return x.status === 'finalized' ? x : undefined;
      }, 20_000, 'finalized');
      expect(d.decision).toMatchObject({ candidate_hash: hash, tally: { [hash]: 2 }, quorum: 2, output: { answer: 4 } });
      expect(d.decision?.proof.reveal_events).toHaveLength(2);
    }, 60_000);
  });
}
