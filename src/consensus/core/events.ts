/**
 * The data of every consensus event (the types in src/core/events.ts), and one builder per event, so
 * that the engine writes and the log's replay reads the same shapes. Every data object carries
 * `task_id`. Builders apply the payload caps: a candidate output above MAX_EVENT_PAYLOAD_BYTES is
 * replaced by `output_ref` (its hash and size; the output stays in the candidates table), and
 * free-text reasons are cut to MAX_STRUCTURED_SUMMARY_BYTES. Pure.
 *
 * @example
 *   const e = candidateProposedEvent(candidate);    // { type: 'CANDIDATE_PROPOSED', data: {...} }
 *   await tx.appendEvent(runId, stepId, e.type, e.data);
 *   // later, in a replay:
 *   if (isConsensusEventType(ev.type)) projectTask([...]);
 */
import { EventType } from '../../core/events.js';
import { MAX_EVENT_PAYLOAD_BYTES, payloadBytes, truncateSummary } from './limits.js';
import type { MemberSignedKind } from './signed.js';
import type { BudgetBucket, Candidate, Decision, EvidenceRef, Member, TaskContract, TaskStage, VerifierResult, VoteCommit, VoteReveal } from './types.js';

/** Where a large output lives: the candidates table, keyed by task and hash. */
export interface OutputRef {
  /** sha256 hex of the output's canonical JSON (the candidate hash). */
  hash: string;
  /** Bytes of the output's canonical JSON. */
  size_bytes: number;
}

export interface TaskCreatedData {
  task_id: string;
  /** The contract with its defaults filled in (contract.ts `resolveContract`). */
  contract: TaskContract;
  /** The membership, fixed for the task's life: every proposer, verifier and voter with its public key. */
  members: Member[];
  /** sha256 hex of the canonical JSON of `contract.inputs` (the knowledge store's EXACT key, with task_type). */
  inputs_hash: string;
  created_at: number;
  /** created_at + contract.expiry_ms. */
  expires_at: number;
}

export interface TaskClaimedData {
  task_id: string;
  stage: TaskStage;
  /** The proposal round for `propose`, the vote round for `vote` and `finalize`; 1 for `verify`'s first pass. */
  round: number;
  /** The worker that took the stage up. */
  worker?: string;
}

/** A candidate as its event carries it: `output` inline, or `output_ref` when it is above the event cap. */
export interface CandidateProposedData {
  task_id: string;
  candidate_hash: string;
  proposer_id: string;
  round: number;
  cost_usd: number;
  evidence: EvidenceRef[];
  output?: unknown;
  output_ref?: OutputRef;
  signature: string;
}

export interface VerifierResultSubmittedData extends VerifierResult {
  /** The policy's explanation (at most MAX_STRUCTURED_SUMMARY_BYTES); not signed. */
  reason?: string;
}

/** Evidence a member attached to a candidate (beyond what the candidate came with). */
export interface EvidenceAddedData {
  task_id: string;
  candidate_hash: string;
  /** The member that added it (a proposer or verifier id). */
  member_id: string;
  evidence: EvidenceRef[];
}

/** The outcome of fetching a candidate's evidence and checking its digests (source 002's DA check). */
export interface EvidenceAvailableData {
  task_id: string;
  candidate_hash: string;
  /** Digests of the evidence that was reached and matched. */
  available: string[];
  /** Digests of the evidence that could not be reached or did not match its digest. */
  unreachable: string[];
}

export interface VoteCommitData extends VoteCommit {
  /** What the voter cost (an `agent` voter's model usage), charged to the `finalize` bucket; not signed. */
  cost_usd?: number;
}

export type VoteRevealData = VoteReveal;

/** A signed record was refused; it is not part of the task's state (only its cost, if any, counts). */
export interface TaskInputRejectedData {
  task_id: string;
  reason_code: number;
  reason: string;
  /** Which kind of record was refused: a signed record, or a judge agent's pick (`judge`: its voter then votes for the best verified candidate or abstains). */
  record_kind: MemberSignedKind | 'judge';
  /** Who sent it, as it claimed (may not be a member); a judge's voter. */
  member_id: string;
  /** Why, in words (a signature check's message, a schema problem, a judge's failure). */
  detail?: string;
  round?: number;
  candidate_hash?: string;
  /** What producing the refused record cost (charged to its stage's bucket). */
  cost_usd?: number;
}

export interface TaskStageStoppedData {
  task_id: string;
  stage: TaskStage;
  /** The bucket that ran out, when the reason is the budget. */
  bucket?: BudgetBucket;
  /** STAGE_BUDGET_EXHAUSTED, TOPK_REACHED, NO_NEW_EVIDENCE, or OK when the stage ran its max_rounds. */
  reason_code: number;
  reason: string;
  round?: number;
  spent_usd?: number;
  budget_usd?: number;
}

/**
 * The decision, before finalization: the Decision minus `finalized_at`. Its output is inline, or
 * `output_ref` when above the event cap (then `output` is left out).
 */
export type DecisionCommittedData = Omit<Decision, 'finalized_at' | 'output'> & { output?: unknown; output_ref?: OutputRef };

export interface DecisionFinalizedData {
  task_id: string;
  round: number;
  candidate_hash: string;
  finalized_at: number;
  /** The DECISION_COMMITTED event this finalizes. */
  decision_event: { seq: number; hash: string };
}

export interface TaskRetryScheduledData {
  task_id: string;
  /** The new vote round. */
  round: number;
  /** Reveals counted in the round that ended. */
  reveals: number;
  quorum: number;
  /** QUORUM_NOT_REACHED or TIE. */
  reason_code: number;
}

export interface TaskExpiredData {
  task_id: string;
  expires_at: number;
  reason_code: number;
  reason: string;
}

export interface TaskFailedData {
  task_id: string;
  reason_code: number;
  reason: string;
}

export interface KnowledgeHitData {
  task_id: string;
  hit_type: 'EXACT' | 'SIMILAR';
  /** The task whose decision was found. */
  decision_task_id: string;
  candidate_hash: string;
  similarity?: number;
}

export interface ReuseRejectRecordedData {
  task_id: string;
  hit_type: 'EXACT' | 'SIMILAR';
  decision_task_id: string;
  candidate_hash: string;
  /** REUSE_BLACKLISTED. */
  reason_code: number;
  reason: string;
}

/** The data type of each consensus event type. */
export interface ConsensusEventDataMap {
  TASK_CREATED: TaskCreatedData;
  TASK_CLAIMED: TaskClaimedData;
  CANDIDATE_PROPOSED: CandidateProposedData;
  EVIDENCE_ADDED: EvidenceAddedData;
  EVIDENCE_AVAILABLE: EvidenceAvailableData;
  VERIFIER_RESULT_SUBMITTED: VerifierResultSubmittedData;
  VOTE_COMMIT: VoteCommitData;
  VOTE_REVEAL: VoteRevealData;
  TASK_INPUT_REJECTED: TaskInputRejectedData;
  TASK_STAGE_STOPPED: TaskStageStoppedData;
  DECISION_COMMITTED: DecisionCommittedData;
  DECISION_FINALIZED: DecisionFinalizedData;
  TASK_RETRY_SCHEDULED: TaskRetryScheduledData;
  TASK_EXPIRED: TaskExpiredData;
  TASK_FAILED: TaskFailedData;
  KNOWLEDGE_HIT: KnowledgeHitData;
  REUSE_REJECT_RECORDED: ReuseRejectRecordedData;
}
export type ConsensusEventType = keyof ConsensusEventDataMap;

/** A consensus event as written: its type and its data. */
export type ConsensusEvent = { [T in ConsensusEventType]: { type: T; data: ConsensusEventDataMap[T] } }[ConsensusEventType];

/** Every consensus event type, in lifecycle order. */
export const CONSENSUS_EVENT_TYPES: readonly ConsensusEventType[] = [
  EventType.TASK_CREATED,
  EventType.KNOWLEDGE_HIT,
  EventType.REUSE_REJECT_RECORDED,
  EventType.TASK_CLAIMED,
  EventType.CANDIDATE_PROPOSED,
  EventType.EVIDENCE_ADDED,
  EventType.EVIDENCE_AVAILABLE,
  EventType.VERIFIER_RESULT_SUBMITTED,
  EventType.VOTE_COMMIT,
  EventType.VOTE_REVEAL,
  EventType.TASK_INPUT_REJECTED,
  EventType.TASK_STAGE_STOPPED,
  EventType.TASK_RETRY_SCHEDULED,
  EventType.DECISION_COMMITTED,
  EventType.DECISION_FINALIZED,
  EventType.TASK_EXPIRED,
  EventType.TASK_FAILED,
];
const TYPES = new Set<string>(CONSENSUS_EVENT_TYPES);

/** Whether an event type is one of a consensus task's. */
export function isConsensusEventType(type: string): type is ConsensusEventType {
  return TYPES.has(type);
}

/** The task an event belongs to (`data.task_id`), or undefined for events of no task. */
export function eventTaskId(e: { type: string; data: Record<string, unknown> }): string | undefined {
  if (!isConsensusEventType(e.type)) return undefined;
  const id = e.data['task_id'];
  return typeof id === 'string' ? id : undefined;
}

function ev<T extends ConsensusEventType>(type: T, data: ConsensusEventDataMap[T]): { type: T; data: ConsensusEventDataMap[T] } {
  return { type, data };
}

// ---- builders ----

export function taskCreatedEvent(d: TaskCreatedData): { type: 'TASK_CREATED'; data: TaskCreatedData } {
  return ev('TASK_CREATED', { task_id: d.task_id, contract: d.contract, members: d.members, inputs_hash: d.inputs_hash, created_at: d.created_at, expires_at: d.expires_at });
}

export function taskClaimedEvent(d: TaskClaimedData): { type: 'TASK_CLAIMED'; data: TaskClaimedData } {
  return ev('TASK_CLAIMED', { task_id: d.task_id, stage: d.stage, round: d.round, ...(d.worker !== undefined ? { worker: d.worker } : {}) });
}

/**
 * A candidate's event. The output goes inline when the whole event fits MAX_EVENT_PAYLOAD_BYTES
 * (`limit`), else `output_ref` names it by hash and size.
 */
export function candidateProposedEvent(c: Candidate, limit: number = MAX_EVENT_PAYLOAD_BYTES): { type: 'CANDIDATE_PROPOSED'; data: CandidateProposedData } {
  const base = { task_id: c.task_id, candidate_hash: c.candidate_hash, proposer_id: c.proposer_id, round: c.round, cost_usd: c.cost_usd, evidence: c.evidence, signature: c.signature };
  const inline: CandidateProposedData = { ...base, output: c.output };
  if (payloadBytes(inline) <= limit) return ev('CANDIDATE_PROPOSED', inline);
  return ev('CANDIDATE_PROPOSED', { ...base, output_ref: { hash: c.candidate_hash, size_bytes: payloadBytes(c.output) } });
}

export function evidenceAddedEvent(d: EvidenceAddedData): { type: 'EVIDENCE_ADDED'; data: EvidenceAddedData } {
  return ev('EVIDENCE_ADDED', { task_id: d.task_id, candidate_hash: d.candidate_hash, member_id: d.member_id, evidence: d.evidence });
}

export function evidenceAvailableEvent(d: EvidenceAvailableData): { type: 'EVIDENCE_AVAILABLE'; data: EvidenceAvailableData } {
  return ev('EVIDENCE_AVAILABLE', { task_id: d.task_id, candidate_hash: d.candidate_hash, available: d.available, unreachable: d.unreachable });
}

export function verifierResultEvent(r: VerifierResult, reason?: string): { type: 'VERIFIER_RESULT_SUBMITTED'; data: VerifierResultSubmittedData } {
  const data: VerifierResultSubmittedData = {
    task_id: r.task_id,
    candidate_hash: r.candidate_hash,
    verifier_id: r.verifier_id,
    policy_id: r.policy_id,
    status: r.status,
    reason_codes: r.reason_codes,
    score: r.score,
    evidence: r.evidence,
    cost_usd: r.cost_usd,
    signature: r.signature,
  };
  if (reason) data.reason = truncateSummary(reason);
  return ev('VERIFIER_RESULT_SUBMITTED', data);
}

export function voteCommitEvent(c: VoteCommit, cost_usd?: number): { type: 'VOTE_COMMIT'; data: VoteCommitData } {
  return ev('VOTE_COMMIT', { task_id: c.task_id, round: c.round, voter_id: c.voter_id, commitment: c.commitment, signature: c.signature, ...(cost_usd ? { cost_usd } : {}) });
}

export function voteRevealEvent(r: VoteReveal): { type: 'VOTE_REVEAL'; data: VoteRevealData } {
  return ev('VOTE_REVEAL', { task_id: r.task_id, round: r.round, voter_id: r.voter_id, candidate_hash: r.candidate_hash, vote: r.vote, salt: r.salt, signature: r.signature });
}

export function taskInputRejectedEvent(d: TaskInputRejectedData): { type: 'TASK_INPUT_REJECTED'; data: TaskInputRejectedData } {
  return ev('TASK_INPUT_REJECTED', { ...d, reason: truncateSummary(d.reason) });
}

export function taskStageStoppedEvent(d: TaskStageStoppedData): { type: 'TASK_STAGE_STOPPED'; data: TaskStageStoppedData } {
  return ev('TASK_STAGE_STOPPED', { ...d, reason: truncateSummary(d.reason) });
}

/** The decision's event, without `finalized_at`; the output inline or by reference, as for candidates. */
export function decisionCommittedEvent(d: Decision | Omit<Decision, 'finalized_at'>, limit: number = MAX_EVENT_PAYLOAD_BYTES): { type: 'DECISION_COMMITTED'; data: DecisionCommittedData } {
  const base = { task_id: d.task_id, round: d.round, candidate_hash: d.candidate_hash, tally: d.tally, quorum: d.quorum, proof: d.proof, committed_at: d.committed_at };
  const inline: DecisionCommittedData = { ...base, output: d.output };
  if (payloadBytes(inline) <= limit) return ev('DECISION_COMMITTED', inline);
  return ev('DECISION_COMMITTED', { ...base, output_ref: { hash: d.candidate_hash, size_bytes: payloadBytes(d.output) } });
}

export function decisionFinalizedEvent(d: DecisionFinalizedData): { type: 'DECISION_FINALIZED'; data: DecisionFinalizedData } {
  return ev('DECISION_FINALIZED', { task_id: d.task_id, round: d.round, candidate_hash: d.candidate_hash, finalized_at: d.finalized_at, decision_event: d.decision_event });
}

export function taskRetryScheduledEvent(d: TaskRetryScheduledData): { type: 'TASK_RETRY_SCHEDULED'; data: TaskRetryScheduledData } {
  return ev('TASK_RETRY_SCHEDULED', { task_id: d.task_id, round: d.round, reveals: d.reveals, quorum: d.quorum, reason_code: d.reason_code });
}

export function taskExpiredEvent(d: TaskExpiredData): { type: 'TASK_EXPIRED'; data: TaskExpiredData } {
  return ev('TASK_EXPIRED', { ...d, reason: truncateSummary(d.reason) });
}

export function taskFailedEvent(d: TaskFailedData): { type: 'TASK_FAILED'; data: TaskFailedData } {
  return ev('TASK_FAILED', { ...d, reason: truncateSummary(d.reason) });
}

export function knowledgeHitEvent(d: KnowledgeHitData): { type: 'KNOWLEDGE_HIT'; data: KnowledgeHitData } {
  return ev('KNOWLEDGE_HIT', { task_id: d.task_id, hit_type: d.hit_type, decision_task_id: d.decision_task_id, candidate_hash: d.candidate_hash, ...(d.similarity !== undefined ? { similarity: d.similarity } : {}) });
}

export function reuseRejectRecordedEvent(d: ReuseRejectRecordedData): { type: 'REUSE_REJECT_RECORDED'; data: ReuseRejectRecordedData } {
  return ev('REUSE_REJECT_RECORDED', { ...d, reason: truncateSummary(d.reason) });
}
