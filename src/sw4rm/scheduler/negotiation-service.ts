/**
 * The negotiation side of the scheduler port: NegotiationService (negotiation.proto),
 * NegotiationRoomService (negotiation_room.proto) and SchedulerPolicyService
 * (scheduler_policy.proto), on negotiation.ts and the store's `setting` documents.
 *
 * @example
 *   addNegotiationServices(server, { store, now: Date.now, pollMs: 250, closing, policies: policyStore(store, Date.now) });
 */
import type * as grpc from '@grpc/grpc-js';
import { UserError } from '../../core/errors.js';
import type { Store } from '../../store/store.js';
import { sw4rmProtos } from '../proto.js';
import { sleep } from '../../agents/providers/rate-limit.js';
import { callSignal, durationMs, timestamp, unary } from './grpc-util.js';
import { DEFAULT_APPROVE_SCORE, Negotiations, type RoomDecision, type RoomVote } from './negotiation.js';
import type { AbortRequest, PolicyMsg, DecisionMsg, EvaluationMsg, HitlActionRequest, NegotiationOpen, NegotiationRef, ProposalMsg, RoomRef, SetPolicyProfilesRequest, SetWagglePolicyRequest, SubmitEvaluationRequest, SubmitProposalRequest, SubmitVoteRequest } from './wire.js';

/** A WagglePolicy (policy.proto) as a plain object: the wire message with its sub-messages always there. */
export type WagglePolicy = Omit<PolicyMsg, 'hitl' | 'scoring'> & { hitl: NonNullable<PolicyMsg['hitl']>; scoring: NonNullable<PolicyMsg['scoring']> };

/** The policy in force before anyone sets one: 3 rounds, approve at 0.7 (7 of 10 in a room). */
export const DEFAULT_WAGGLE_POLICY: WagglePolicy = {
  max_rounds: 3,
  score_threshold: DEFAULT_APPROVE_SCORE / 10,
  diff_tolerance: 0.1,
  round_timeout_ms: 60_000,
  token_budget_per_round: 0,
  total_token_budget: 0,
  oscillation_limit: 2,
  hitl: { mode: 'None' },
  scoring: { require_schema_valid: false, require_examples_pass: false, llm_weight: 0.5 },
};

const HITL_MODES = ['None', 'PauseBetweenRounds', 'PauseOnFinalAccept'];

/** A policy checked and filled with defaults; SW4RM_POLICY_INVALID naming the field otherwise. */
export function checkPolicy(p: PolicyMsg | Partial<WagglePolicy> | null | undefined, field = 'policy'): WagglePolicy {
  if (!p) throw new UserError('SW4RM_POLICY_INVALID', `${field} is required`, { field });
  const out: WagglePolicy = { ...DEFAULT_WAGGLE_POLICY, ...p, hitl: { ...DEFAULT_WAGGLE_POLICY.hitl, ...(p.hitl ?? {}) }, scoring: { ...DEFAULT_WAGGLE_POLICY.scoring, ...(p.scoring ?? {}) } };
  for (const k of ['score_threshold', 'diff_tolerance'] as const) {
    if (!(out[k] >= 0 && out[k] <= 1)) throw new UserError('SW4RM_POLICY_INVALID', `${field}.${k} must be from 0 to 1 (got ${out[k]})`, { field: `${field}.${k}` });
  }
  if (!out.hitl.mode) out.hitl.mode = 'None';
  if (!HITL_MODES.includes(out.hitl.mode)) throw new UserError('SW4RM_POLICY_INVALID', `${field}.hitl.mode must be one of ${HITL_MODES.join(', ')} (got '${out.hitl.mode}')`, { field: `${field}.hitl.mode` });
  return out;
}

/** The waggle policy and the profiles, as `setting` documents. */
export function policyStore(store: Store, now: () => number) {
  const get = async <T>(key: string): Promise<T | undefined> => (await store.getSw4rmDocs('setting', [key]))[0]?.doc as T | undefined;
  const put = (key: string, doc: unknown) => store.updateSw4rmGroup('settings', ['setting'], () => ({ put: [{ kind: 'setting', key, grp: 'settings', owner: '', status: '', doc, updated_at: now() }], remove: [] }));
  return {
    policy: async () => (await get<WagglePolicy>('waggle')) ?? DEFAULT_WAGGLE_POLICY,
    setPolicy: (p: WagglePolicy) => put('waggle', p),
    profiles: async () => (await get<Array<{ name: string; policy: WagglePolicy }>>('profiles')) ?? [],
    setProfiles: (p: Array<{ name: string; policy: WagglePolicy }>) => put('profiles', p),
  };
}

export interface NegotiationDeps {
  store: Store;
  now: () => number;
  pollMs: number;
  closing: AbortSignal;
  policies: ReturnType<typeof policyStore>;
}

const empty = {};

function voteOut(v: RoomVote) {
  return { ...v, voted_at: timestamp(v.voted_at) };
}

function decisionOut(d: RoomDecision) {
  return { ...d, votes: d.votes.map(voteOut), decided_at: timestamp(d.decided_at) };
}

export function addNegotiationServices(server: grpc.Server, deps: NegotiationDeps): void {
  const protos = sw4rmProtos();
  const neg = new Negotiations(deps.store, deps.now);
  const roomPolicy = async () => ({ approveScore: (await deps.policies.policy()).score_threshold * 10 });

  server.addService(protos.negotiation.NegotiationService.service, {
    Open: unary<NegotiationOpen>(async (req) => {
      await neg.open({ negotiation_id: req.negotiation_id, correlation_id: req.correlation_id, topic: req.topic, participants: req.participants, intensity: req.intensity, debate_timeout_ms: durationMs(req.debate_timeout) });
      return empty;
    }),
    Propose: unary<ProposalMsg>(async (req) => {
      await neg.append(req.negotiation_id, { kind: 'proposal', from_agent: req.from_agent, content_type: req.content_type, payload: Buffer.from(req.payload ?? []).toString('base64') });
      return empty;
    }),
    Counter: unary<ProposalMsg>(async (req) => {
      await neg.append(req.negotiation_id, { kind: 'counter', from_agent: req.from_agent, content_type: req.content_type, payload: Buffer.from(req.payload ?? []).toString('base64') });
      return empty;
    }),
    Evaluate: unary<EvaluationMsg>(async (req) => {
      const c = Number(req.confidence_score ?? 0);
      if (!(c >= 0 && c <= 1)) throw new UserError('SW4RM_NEGOTIATION_INVALID', `confidence_score must be from 0 to 1 (got ${c})`, { field: 'confidence_score' });
      await neg.append(req.negotiation_id, { kind: 'evaluation', from_agent: req.from_agent, confidence_score: c, notes: req.notes ?? '' });
      return empty;
    }),
    Decide: unary<DecisionMsg>(async (req) => {
      await neg.close(req.negotiation_id, { decided_by: req.decided_by ?? '', content_type: req.content_type ?? '', result: Buffer.from(req.result ?? []) });
      return empty;
    }),
    Abort: unary<AbortRequest>(async (req) => {
      await neg.close(req.negotiation_id, { abort: String(req.reason ?? '') });
      return empty;
    }),
  });

  server.addService(protos.negotiation_room.NegotiationRoomService.service, {
    SubmitProposal: unary<SubmitProposalRequest>(async (req) => {
      const p = await neg.submitProposal({ ...(req.proposal ?? {}), artifact: Buffer.from(req.proposal?.artifact ?? []) });
      return { artifact_id: p.artifact_id, negotiation_room_id: p.negotiation_room_id };
    }),
    SubmitVote: unary<SubmitVoteRequest>(async (req) => {
      const { vote } = await neg.submitVote(req.vote ?? {}, await roomPolicy());
      return { artifact_id: vote.artifact_id, critic_id: vote.critic_id };
    }),
    GetVotes: unary<RoomRef>(async (req) => {
      const { votes } = await neg.room(req.negotiation_room_id, req.artifact_id);
      return { votes: votes.map(voteOut), vote_count: votes.length };
    }),
    GetDecision: unary<RoomRef>(async (req) => {
      const { proposal } = await neg.room(req.negotiation_room_id, req.artifact_id);
      if (!proposal.decision) throw new UserError('SW4RM_DECISION_UNKNOWN', `artifact '${proposal.artifact_id}' of room '${proposal.negotiation_room_id}' is not decided yet (${proposal.requested_critics.length} critics requested)`, { artifact_id: proposal.artifact_id });
      return { decision: decisionOut(proposal.decision) };
    }),
    WaitForDecision: unary<RoomRef>(async (req, call) => {
      const signal = AbortSignal.any([callSignal(call), deps.closing]);
      const timeoutMs = Number(req.timeout_seconds ?? 0) * 1000;
      const until = timeoutMs > 0 ? deps.now() + timeoutMs : Infinity;
      for (;;) {
        const { proposal } = await neg.room(req.negotiation_room_id, req.artifact_id);
        if (proposal.decision) return { decision: decisionOut(proposal.decision) };
        // The waiter's deadline: decide with the votes there are (the quorum rule says how).
        if (deps.now() >= until) return { decision: decisionOut(await neg.decideNow(proposal.negotiation_room_id, proposal.artifact_id, await roomPolicy())) };
        if (signal.aborted) throw new UserError('SW4RM_WAIT_ABANDONED', 'the caller stopped waiting for the decision', {});
        await sleep(Math.min(deps.pollMs, Math.max(1, until - deps.now())), signal).catch(() => undefined); // an abort ends the wait; the loop sees it
      }
    }),
  });

  server.addService(protos.scheduler.SchedulerPolicyService.service, {
    SetWagglePolicy: unary<SetWagglePolicyRequest>(async (req) => {
      await deps.policies.setPolicy(checkPolicy(req.policy ?? undefined));
      return { ok: true, reason: '' };
    }),
    GetWagglePolicy: unary<object>(async () => ({ policy: await deps.policies.policy() })),
    SetPolicyProfiles: unary<SetPolicyProfilesRequest>(async (req) => {
      const profiles = ((req.profiles ?? []) as Array<{ name?: string; policy?: WagglePolicy }>).map((p, i) => {
        const name = (p.name ?? '').trim();
        if (!name) throw new UserError('SW4RM_POLICY_INVALID', `profiles[${i}].name is required`, { field: `profiles[${i}].name` });
        return { name, policy: checkPolicy(p.policy, `profiles[${i}].policy`) };
      });
      await deps.policies.setProfiles(profiles);
      return { ok: true, reason: '' };
    }),
    ListPolicyProfiles: unary<object>(async () => ({ profiles: await deps.policies.profiles() })),
    GetEffectivePolicy: unary<NegotiationRef>(async (req) => {
      const id = String(req.negotiation_id ?? '').trim();
      const n = id ? await neg.get(id) : undefined;
      if (id && !n) throw new UserError('SW4RM_NEGOTIATION_UNKNOWN', `no negotiation '${id}'`, { negotiation_id: id });
      // A profile named after the negotiation's debate intensity (LOW, HIGH …) wins over the default policy.
      const profile = n ? (await deps.policies.profiles()).find((p) => p.name.toUpperCase() === n.intensity) : undefined;
      return { effective: { policy: profile?.policy ?? (await deps.policies.policy()), applied: {} } };
    }),
    SubmitEvaluation: unary<SubmitEvaluationRequest>(async (req) => {
      const r = req.report;
      if (!r) throw new UserError('SW4RM_NEGOTIATION_INVALID', 'SubmitEvaluation: report is required', { field: 'report' });
      await neg.append(req.negotiation_id, { kind: 'evaluation', from_agent: r.from_agent, confidence_score: Number(r.llm_confidence ?? 0), notes: JSON.stringify({ deterministic_score: r.deterministic_score ?? 0, notes: r.notes ?? '', delta: r.delta ?? null }) });
      return { accepted: true, reason: '' };
    }),
    HitlAction: unary<HitlActionRequest>(async (req) => {
      const action = String(req.action ?? '').trim();
      if (!action) throw new UserError('SW4RM_NEGOTIATION_INVALID', 'HitlAction: action is required', { field: 'action' });
      await neg.close(req.negotiation_id, { decided_by: 'hitl', content_type: 'application/json', result: Buffer.from(JSON.stringify({ action, rationale: req.rationale ?? '' })) });
      return { ok: true, reason: '' };
    }),
  });
}
