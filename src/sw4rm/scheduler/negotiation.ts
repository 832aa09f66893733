/**
 * Negotiations and negotiation rooms kept in Swarm's store (migration 22). A negotiation's id is the
 * `correlation_id` of the envelopes that carry it: opening one with a different correlation id is
 * refused. Proposals, counter-proposals and evaluations are appended in order; a decision or an
 * abort closes it. A room holds a producer's artifact and its critics' votes; when every requested
 * critic has voted (or a waiter's deadline passes) the room decides with the quorum rule and the
 * confidence-weighted score summary (voting.ts): APPROVED at or above the threshold,
 * REVISION_REQUESTED below it, ESCALATED_TO_HITL when the quorum fails closed.
 *
 * @example
 *   const rooms = new Negotiations(swarm.store, Date.now);
 *   await rooms.submitProposal({ artifact_id: 'a1', negotiation_room_id: 'r1', requested_critics: ['c1'], ... });
 */
import { UserError } from '../../core/errors.js';
import type { Store } from '../../store/store.js';
import type { Sw4rmDoc } from '../../store/sw4rm-sched-types.js';
import { DEFAULT_QUORUM, evaluateQuorum, scoreSummary, type AggregatedScore, type QuorumPolicy } from './voting.js';

/** The score (0..10) at or above which a room approves; a WagglePolicy's score_threshold (0..1) × 10 overrides it. */
export const DEFAULT_APPROVE_SCORE = 7;
export const ROOM_POLICY_VERSION = 'swarm-room-v1';

export interface NegotiationState {
  negotiation_id: string;
  correlation_id: string;
  topic: string;
  participants: string[];
  intensity: string;
  debate_timeout_ms: number;
  status: 'open' | 'decided' | 'aborted';
  opened_at: number;
  decision?: { decided_by: string; content_type: string; result: string; decided_at: number };
  abort_reason?: string;
}

export interface NegotiationEntry {
  seq: number;
  kind: 'proposal' | 'counter' | 'evaluation';
  from_agent: string;
  content_type?: string;
  /** base64 */
  payload?: string;
  confidence_score?: number;
  notes?: string;
  at: number;
}

export interface RoomVote {
  artifact_id: string;
  critic_id: string;
  score: number;
  confidence: number;
  passed: boolean;
  strengths: string[];
  weaknesses: string[];
  recommendations: string[];
  negotiation_room_id: string;
  voted_at: number;
}

export interface RoomDecision {
  artifact_id: string;
  outcome: 'APPROVED' | 'REVISION_REQUESTED' | 'ESCALATED_TO_HITL';
  votes: RoomVote[];
  aggregated_score: AggregatedScore;
  policy_version: string;
  reason: string;
  negotiation_room_id: string;
  decided_at: number;
}

export interface RoomProposal {
  artifact_type: string;
  artifact_id: string;
  producer_id: string;
  /** base64 */
  artifact: string;
  artifact_content_type: string;
  requested_critics: string[];
  negotiation_room_id: string;
  created_at: number;
  decision?: RoomDecision;
}

const invalid = (what: string, field: string) => new UserError('SW4RM_NEGOTIATION_INVALID', what, { field });
function need(v: unknown, field: string): string {
  const s = typeof v === 'string' ? v.trim() : '';
  if (!s) throw invalid(`${field} is required`, field);
  return s;
}
const negGroup = (id: string) => `neg:${id}`;
const roomGroup = (room: string, artifact: string) => `room:${room}/${artifact}`;

export class Negotiations {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  // ---------- negotiations (negotiation.proto) ----------

  async open(req: { negotiation_id?: string; correlation_id?: string; topic?: string; participants?: string[]; intensity?: string; debate_timeout_ms?: number }): Promise<NegotiationState> {
    const id = need(req.negotiation_id, 'negotiation_id');
    const corr = (req.correlation_id ?? '').trim() || id;
    if (corr !== id) throw invalid(`correlation_id '${corr}' differs from negotiation_id '${id}': a negotiation's id is the correlation_id of its envelopes`, 'correlation_id');
    const now = this.now();
    const state: NegotiationState = { negotiation_id: id, correlation_id: corr, topic: req.topic ?? '', participants: [...new Set((req.participants ?? []).map((p) => p.trim()).filter(Boolean))], intensity: req.intensity ?? 'DEBATE_INTENSITY_UNSPECIFIED', debate_timeout_ms: req.debate_timeout_ms ?? 0, status: 'open', opened_at: now };
    let out = state;
    await this.store.updateSw4rmGroup(negGroup(id), ['negotiation'], (docs) => {
      const prev = docs[0]?.doc as NegotiationState | undefined;
      if (prev) {
        // Opening again with the same topic and participants is a retry; anything else is a clash.
        if (prev.topic === state.topic && prev.participants.join('\n') === state.participants.join('\n')) {
          out = prev;
          return { put: [], remove: [] };
        }
        throw new UserError('SW4RM_NEGOTIATION_EXISTS', `negotiation '${id}' is already open with another topic or participants`, { negotiation_id: id });
      }
      return { put: [this.negDoc(state, now)], remove: [] };
    });
    return out;
  }

  private negDoc(s: NegotiationState, now: number): Sw4rmDoc {
    return { kind: 'negotiation', key: s.negotiation_id, grp: negGroup(s.negotiation_id), owner: '', status: s.status, doc: s, updated_at: now };
  }

  async get(id: string): Promise<NegotiationState | undefined> {
    return (await this.store.getSw4rmDocs('negotiation', [id]))[0]?.doc as NegotiationState | undefined;
  }

  async entries(id: string): Promise<NegotiationEntry[]> {
    return (await this.store.listSw4rmDocs('neg-entry', { group: negGroup(id) })).map((d) => d.doc as NegotiationEntry);
  }

  /** Append a proposal, counter-proposal or evaluation to an open negotiation (from a participant, when it names them). */
  async append(negotiationId: unknown, entry: Omit<NegotiationEntry, 'seq' | 'at'>): Promise<NegotiationEntry> {
    const id = need(negotiationId, 'negotiation_id');
    const from = need(entry.from_agent, 'from_agent');
    const now = this.now();
    let written: NegotiationEntry | undefined;
    await this.store.updateSw4rmGroup(negGroup(id), ['negotiation', 'neg-entry'], (docs) => {
      const state = this.openState(docs, id);
      if (state.participants.length && !state.participants.includes(from)) {
        throw new UserError('SW4RM_NOT_A_PARTICIPANT', `agent '${from}' is not a participant of negotiation '${id}' (participants: ${state.participants.join(', ')})`, { negotiation_id: id, field: 'from_agent' });
      }
      const seq = docs.filter((d) => d.kind === 'neg-entry').length + 1;
      written = { ...entry, from_agent: from, seq, at: now };
      return { put: [{ kind: 'neg-entry', key: `${id}/${String(seq).padStart(8, '0')}`, grp: negGroup(id), owner: from, status: entry.kind, doc: written, updated_at: now }], remove: [] };
    });
    return written as NegotiationEntry;
  }

  private openState(docs: Sw4rmDoc[], id: string): NegotiationState {
    const state = docs.find((d) => d.kind === 'negotiation')?.doc as NegotiationState | undefined;
    if (!state) throw new UserError('SW4RM_NEGOTIATION_UNKNOWN', `no negotiation '${id}': open it first`, { negotiation_id: id });
    if (state.status !== 'open') throw new UserError('SW4RM_NEGOTIATION_CLOSED', `negotiation '${id}' is ${state.status}`, { negotiation_id: id });
    return state;
  }

  /** Close an open negotiation with a decision (consensus, hitl or policy) or an abort. */
  async close(negotiationId: unknown, how: { decided_by: string; content_type: string; result: Buffer } | { abort: string }): Promise<NegotiationState> {
    const id = need(negotiationId, 'negotiation_id');
    const now = this.now();
    let out: NegotiationState | undefined;
    await this.store.updateSw4rmGroup(negGroup(id), ['negotiation'], (docs) => {
      const state = this.openState(docs, id);
      out = 'abort' in how
        ? { ...state, status: 'aborted', abort_reason: how.abort }
        : { ...state, status: 'decided', decision: { decided_by: how.decided_by || 'consensus', content_type: how.content_type, result: how.result.toString('base64'), decided_at: now } };
      return { put: [this.negDoc(out, now)], remove: [] };
    });
    return out as NegotiationState;
  }

  // ---------- rooms (negotiation_room.proto) ----------

  async submitProposal(p: Partial<Omit<RoomProposal, 'artifact'>> & { artifact?: Buffer }): Promise<RoomProposal> {
    const room = need(p.negotiation_room_id, 'proposal.negotiation_room_id');
    const artifact = need(p.artifact_id, 'proposal.artifact_id');
    const critics = [...new Set((p.requested_critics ?? []).map((c) => c.trim()).filter(Boolean))];
    if (critics.length === 0) throw invalid('proposal.requested_critics names no critic: a room needs at least one', 'proposal.requested_critics');
    const now = this.now();
    const proposal: RoomProposal = { artifact_type: p.artifact_type ?? 'ARTIFACT_TYPE_UNSPECIFIED', artifact_id: artifact, producer_id: need(p.producer_id, 'proposal.producer_id'), artifact: (p.artifact ?? Buffer.alloc(0)).toString('base64'), artifact_content_type: p.artifact_content_type ?? '', requested_critics: critics, negotiation_room_id: room, created_at: now };
    let out = proposal;
    await this.store.updateSw4rmGroup(roomGroup(room, artifact), ['room'], (docs) => {
      const prev = docs[0]?.doc as RoomProposal | undefined;
      if (prev) {
        // The same proposal again (a retry) is answered with the first; any other is refused, with what differs.
        const differs = proposalDifference(prev, proposal);
        if (!differs) {
          out = prev;
          return { put: [], remove: [] };
        }
        throw new UserError('SW4RM_PROPOSAL_EXISTS', `artifact '${artifact}' is already proposed in room '${room}' with another ${differs}`, { negotiation_room_id: room, artifact_id: artifact, field: `proposal.${differs}` });
      }
      return { put: [this.roomDoc(proposal, now)], remove: [] };
    });
    return out;
  }

  private roomDoc(p: RoomProposal, now: number): Sw4rmDoc {
    return { kind: 'room', key: `${p.negotiation_room_id}/${p.artifact_id}`, grp: roomGroup(p.negotiation_room_id, p.artifact_id), owner: p.producer_id, status: p.decision ? 'decided' : 'open', doc: p, updated_at: now };
  }

  /** Record a critic's vote; the vote that completes the roster decides the room (same transaction). */
  async submitVote(v: Partial<RoomVote>, policy: { approveScore: number; quorum?: QuorumPolicy }): Promise<{ vote: RoomVote; decision?: RoomDecision }> {
    const room = need(v.negotiation_room_id, 'vote.negotiation_room_id');
    const artifact = need(v.artifact_id, 'vote.artifact_id');
    const critic = need(v.critic_id, 'vote.critic_id');
    const score = Number(v.score);
    const confidence = Number(v.confidence);
    if (!(score >= 0 && score <= 10)) throw invalid(`vote.score must be from 0 to 10 (got ${String(v.score)})`, 'vote.score');
    if (!(confidence >= 0 && confidence <= 1)) throw invalid(`vote.confidence must be from 0 to 1 (got ${String(v.confidence)})`, 'vote.confidence');
    const now = this.now();
    const vote: RoomVote = { artifact_id: artifact, critic_id: critic, score, confidence, passed: Boolean(v.passed), strengths: v.strengths ?? [], weaknesses: v.weaknesses ?? [], recommendations: v.recommendations ?? [], negotiation_room_id: room, voted_at: now };
    let decision: RoomDecision | undefined;
    await this.store.updateSw4rmGroup(roomGroup(room, artifact), ['room', 'vote'], (docs) => {
      const proposal = this.proposalOf(docs, room, artifact);
      if (proposal.decision) throw new UserError('SW4RM_ROOM_DECIDED', `artifact '${artifact}' of room '${room}' is decided (${proposal.decision.outcome}); no more votes`, { negotiation_room_id: room, artifact_id: artifact });
      // The caller checks a voter's authority: here, only the critics the producer asked for vote.
      if (!proposal.requested_critics.includes(critic)) throw new UserError('SW4RM_NOT_A_CRITIC', `critic '${critic}' was not requested for artifact '${artifact}' (requested: ${proposal.requested_critics.join(', ')})`, { field: 'vote.critic_id' });
      const votes = [...docs.filter((d) => d.kind === 'vote' && (d.doc as RoomVote).critic_id !== critic).map((d) => d.doc as RoomVote), vote];
      const put: Sw4rmDoc[] = [{ kind: 'vote', key: `${room}/${artifact}/${critic}`, grp: roomGroup(room, artifact), owner: critic, status: '', doc: vote, updated_at: now }];
      if (proposal.requested_critics.every((c) => votes.some((x) => x.critic_id === c))) {
        decision = decide(proposal, votes, policy, now);
        put.push(this.roomDoc({ ...proposal, decision }, now));
      }
      return { put, remove: [] };
    });
    return { vote, ...(decision ? { decision } : {}) };
  }

  private proposalOf(docs: Sw4rmDoc[], room: string, artifact: string): RoomProposal {
    const p = docs.find((d) => d.kind === 'room')?.doc as RoomProposal | undefined;
    if (!p) throw new UserError('SW4RM_ROOM_UNKNOWN', `no artifact '${artifact}' in room '${room}': submit the proposal first`, { negotiation_room_id: room, artifact_id: artifact });
    return p;
  }

  async room(roomId: unknown, artifactId: unknown): Promise<{ proposal: RoomProposal; votes: RoomVote[] }> {
    const room = need(roomId, 'negotiation_room_id');
    const artifact = need(artifactId, 'artifact_id');
    const g = roomGroup(room, artifact);
    const proposal = (await this.store.listSw4rmDocs('room', { group: g }))[0]?.doc as RoomProposal | undefined;
    if (!proposal) throw new UserError('SW4RM_ROOM_UNKNOWN', `no artifact '${artifact}' in room '${room}'`, { negotiation_room_id: room, artifact_id: artifact });
    return { proposal, votes: (await this.store.listSw4rmDocs('vote', { group: g })).map((d) => d.doc as RoomVote) };
  }

  /** A waiter's deadline passed: decide with the votes there are (the quorum rule says how), once. */
  async decideNow(roomId: string, artifactId: string, policy: { approveScore: number; quorum?: QuorumPolicy }): Promise<RoomDecision> {
    const now = this.now();
    let out: RoomDecision | undefined;
    await this.store.updateSw4rmGroup(roomGroup(roomId, artifactId), ['room', 'vote'], (docs) => {
      const proposal = this.proposalOf(docs, roomId, artifactId);
      if (proposal.decision) {
        out = proposal.decision;
        return { put: [], remove: [] };
      }
      out = decide(proposal, docs.filter((d) => d.kind === 'vote').map((d) => d.doc as RoomVote), policy, now);
      return { put: [this.roomDoc({ ...proposal, decision: out }, now)], remove: [] };
    });
    return out as RoomDecision;
  }
}

const EMPTY_SCORE: AggregatedScore = { mean: 0, min_score: 0, max_score: 0, std_dev: 0, weighted_mean: 0, vote_count: 0 };

/** The room's decision from its votes: quorum first, then the confidence-weighted mean against the threshold. */
export function decide(p: RoomProposal, votes: RoomVote[], policy: { approveScore: number; quorum?: QuorumPolicy }, now: number): RoomDecision {
  const q = evaluateQuorum(votes, p.requested_critics, policy.quorum ?? DEFAULT_QUORUM);
  const base = { artifact_id: p.artifact_id, votes, policy_version: ROOM_POLICY_VERSION, negotiation_room_id: p.negotiation_room_id, decided_at: now };
  if (q.action === 'escalate_hitl' || q.all_votes.length === 0) {
    return { ...base, outcome: 'ESCALATED_TO_HITL', aggregated_score: votes.length ? scoreSummary(votes) : EMPTY_SCORE, reason: `quorum not met: ${q.received} of ${q.expected} requested critics voted, ${q.threshold} needed` };
  }
  const agg = scoreSummary(q.all_votes.map((x) => ({ score: x.score ?? 0, confidence: x.confidence ?? 0 })));
  const ok = agg.weighted_mean >= policy.approveScore;
  const how = q.action === 'none' ? '' : ` (${q.action.replace(/_/g, ' ')})`;
  return { ...base, outcome: ok ? 'APPROVED' : 'REVISION_REQUESTED', aggregated_score: agg, reason: `confidence-weighted mean ${agg.weighted_mean.toFixed(2)} ${ok ? '>=' : '<'} ${policy.approveScore}${how}` };
}

/** The first field in which a proposal for the same artifact differs from the one recorded (undefined: the same proposal). */
function proposalDifference(prev: RoomProposal, next: RoomProposal): string | undefined {
  if (prev.producer_id !== next.producer_id) return 'producer_id';
  if (prev.artifact !== next.artifact) return 'artifact';
  if (prev.artifact_type !== next.artifact_type) return 'artifact_type';
  if (prev.artifact_content_type !== next.artifact_content_type) return 'artifact_content_type';
  const critics = new Set(prev.requested_critics);
  if (critics.size !== next.requested_critics.length || next.requested_critics.some((c) => !critics.has(c))) return 'requested_critics';
  return undefined;
}
