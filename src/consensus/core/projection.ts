/**
 * A task's state folded from its events in the run's log (pure). The engine resumes from it after a
 * crash; `swarm log replay` compares it with the stored consensus tables. Events of other tasks and
 * other types are skipped; a task's events before its TASK_CREATED are ignored. Once the task is
 * final (finalized, expired, failed) only costs still accrue (a rejected late record's cost was spent).
 *
 * Status: TASK_CREATED → created; TASK_CLAIMED(propose) or a CANDIDATE_PROPOSED → proposing;
 * TASK_CLAIMED(verify) or a VERIFIER_RESULT_SUBMITTED → verifying; TASK_CLAIMED(vote) or a VOTE_COMMIT
 * or TASK_RETRY_SCHEDULED → voting; DECISION_COMMITTED → committed; DECISION_FINALIZED → finalized;
 * TASK_EXPIRED → expired; TASK_FAILED → failed. Status never moves back (a late TASK_CLAIMED(propose)
 * while voting leaves it voting).
 *
 * @example
 *   const events = await store.listEvents(runId);
 *   const state = projectTask(events, `${runId}/vote`);
 *   state?.status   // 'finalized'
 *   checkReveal(voteContext(state!), reveal, Date.now());
 */
import type { CandidateProposedData, DecisionCommittedData, EvidenceAddedData, EvidenceAvailableData, KnowledgeHitData, OutputRef, ReuseRejectRecordedData, TaskCreatedData, TaskInputRejectedData, TaskStageStoppedData, VerifierResultSubmittedData, VoteCommitData, VoteRevealData } from './events.js';
import { CONTRACT_DEFAULTS } from './contract.js';
import { isConsensusEventType } from './events.js';
import { ReasonCode } from './reason-codes.js';
import type { RecordContext } from './records.js';
import { STAGE_BUCKET, addSpend, emptySpend, exhaustedBuckets, type BucketSpend } from './stage-budget.js';
import type { BudgetBucket, Decision, EvidenceRef, Member, TaskContract, TaskCost, TaskStatus } from './types.js';
import { TASK_STATUSES } from './types.js';
import type { VoteContext } from './votes.js';

/** An event as the projection reads it (a RunEvent has all of these). */
export interface ProjectableEvent {
  seq: number;
  hash: string;
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/** Where an event is in the log. */
export interface EventRef {
  seq: number;
  hash: string;
}

export interface CandidateState {
  candidate_hash: string;
  /** The output when an event carried it inline; else see output_ref (the candidates table has it). */
  output?: unknown;
  output_ref?: OutputRef;
  /** Every accepted proposal of this hash, in log order (several proposers may agree). */
  proposals: Array<{ proposer_id: string; round: number; cost_usd: number; signature: string; event: EventRef; at: number }>;
  /** The candidate's evidence: the first proposal's, then what EVIDENCE_ADDED brought. */
  evidence: EvidenceRef[];
  /** The first CANDIDATE_PROPOSED of this hash (the decision's proof names it). */
  event: EventRef;
  available: string[];
  unreachable: string[];
}

export interface TaskState {
  task_id: string;
  status: TaskStatus;
  /** The current vote round (1-based). */
  round: number;
  /** Proposal rounds claimed so far (the highest TASK_CLAIMED(propose) round, or proposals' round). */
  propose_round: number;
  contract: TaskContract;
  members: Member[];
  inputs_hash: string;
  created_at: number;
  expires_at: number;
  /** Candidates by hash; `candidate_order` lists the hashes in the order they first appeared. */
  candidates: Record<string, CandidateState>;
  candidate_order: string[];
  verifier_results: Array<VerifierResultSubmittedData & { event: EventRef }>;
  commits: Array<VoteCommitData & { event: EventRef; at: number }>;
  reveals: Array<VoteRevealData & { event: EventRef; at: number }>;
  /** When each round's first commitment was recorded (the reveal deadline counts from it). */
  round_opened_at: Record<number, number>;
  decision: Decision | null;
  decision_event: EventRef | null;
  cost: BucketSpend;
  stopped: TaskStageStoppedData[];
  rejected: TaskInputRejectedData[];
  retries: Array<{ round: number; reveals: number; quorum: number; reason_code: number }>;
  knowledge_hits: KnowledgeHitData[];
  reuse_rejected: ReuseRejectRecordedData[];
  /** Why the task expired or failed. */
  failure: { reason_code: number; reason: string } | null;
  claims: Array<{ stage: string; round: number; worker?: string; at: number }>;
  last_event: EventRef | null;
  updated_at: number;
}

const RANK = new Map<TaskStatus, number>(TASK_STATUSES.map((s, i) => [s, i]));
const FINAL: ReadonlySet<TaskStatus> = new Set(['finalized', 'expired', 'failed']);

/** Whether a status is final (finalized, expired, failed). */
export function isFinalStatus(s: TaskStatus): boolean {
  return FINAL.has(s);
}

function advance(state: TaskState, to: TaskStatus): void {
  if (FINAL.has(state.status)) return;
  if ((RANK.get(to) ?? 0) > (RANK.get(state.status) ?? 0)) state.status = to;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function created(e: ProjectableEvent): TaskState {
  const d = e.data as unknown as TaskCreatedData;
  return {
    task_id: d.task_id,
    status: 'created',
    round: 1,
    propose_round: 0,
    contract: d.contract,
    members: d.members,
    inputs_hash: d.inputs_hash,
    created_at: d.created_at,
    expires_at: d.expires_at,
    candidates: {},
    candidate_order: [],
    verifier_results: [],
    commits: [],
    reveals: [],
    round_opened_at: {},
    decision: null,
    decision_event: null,
    cost: emptySpend(),
    stopped: [],
    rejected: [],
    retries: [],
    knowledge_hits: [],
    reuse_rejected: [],
    failure: null,
    claims: [],
    last_event: { seq: e.seq, hash: e.hash },
    updated_at: e.at,
  };
}

const REJECTED_BUCKET: Readonly<Record<TaskInputRejectedData['record_kind'], BudgetBucket>> = {
  candidate: 'explore',
  verifier_result: 'verify',
  vote_commit: 'finalize',
  vote_reveal: 'finalize',
  judge: 'finalize',
};

/** Apply one event of the task to its state (mutates `s`). */
function apply(s: TaskState, e: ProjectableEvent): void {
  const ref: EventRef = { seq: e.seq, hash: e.hash };
  const final = FINAL.has(s.status);
  s.last_event = ref;
  s.updated_at = e.at;
  switch (e.type) {
    case 'TASK_CLAIMED': {
      const stage = String(e.data['stage']);
      const round = num(e.data['round']);
      s.claims.push({ stage, round, ...(typeof e.data['worker'] === 'string' ? { worker: e.data['worker'] } : {}), at: e.at });
      if (stage === 'propose') {
        s.propose_round = Math.max(s.propose_round, round);
        advance(s, 'proposing');
      } else if (stage === 'verify') advance(s, 'verifying');
      else if (stage === 'vote') advance(s, 'voting');
      return;
    }
    case 'CANDIDATE_PROPOSED': {
      const d = e.data as unknown as CandidateProposedData;
      s.cost = addSpend(s.cost, 'explore', num(d.cost_usd));
      if (final) return;
      s.propose_round = Math.max(s.propose_round, d.round);
      const proposal = { proposer_id: d.proposer_id, round: d.round, cost_usd: num(d.cost_usd), signature: d.signature, event: ref, at: e.at };
      const known = s.candidates[d.candidate_hash];
      if (known) {
        known.proposals.push(proposal);
        if (known.output === undefined && 'output' in d) known.output = d.output;
      } else {
        s.candidates[d.candidate_hash] = {
          candidate_hash: d.candidate_hash,
          ...('output' in d ? { output: d.output } : {}),
          ...(d.output_ref ? { output_ref: d.output_ref } : {}),
          proposals: [proposal],
          evidence: [...(d.evidence ?? [])],
          event: ref,
          available: [],
          unreachable: [],
        };
        s.candidate_order.push(d.candidate_hash);
      }
      advance(s, 'proposing');
      return;
    }
    case 'EVIDENCE_ADDED': {
      const d = e.data as unknown as EvidenceAddedData;
      const c = s.candidates[d.candidate_hash];
      if (c && !final) for (const ev of d.evidence ?? []) if (!c.evidence.some((x) => x.digest === ev.digest && x.uri === ev.uri)) c.evidence.push(ev);
      return;
    }
    case 'EVIDENCE_AVAILABLE': {
      const d = e.data as unknown as EvidenceAvailableData;
      const c = s.candidates[d.candidate_hash];
      if (c && !final) {
        c.available = [...d.available];
        c.unreachable = [...d.unreachable];
      }
      return;
    }
    case 'VERIFIER_RESULT_SUBMITTED': {
      const d = e.data as unknown as VerifierResultSubmittedData;
      s.cost = addSpend(s.cost, 'verify', num(d.cost_usd));
      if (final) return;
      s.verifier_results.push({ ...d, event: ref });
      advance(s, 'verifying');
      return;
    }
    case 'VOTE_COMMIT': {
      const d = e.data as unknown as VoteCommitData;
      s.cost = addSpend(s.cost, 'finalize', num(d.cost_usd));
      if (final) return;
      s.commits.push({ ...d, event: ref, at: e.at });
      if (s.round_opened_at[d.round] === undefined) s.round_opened_at[d.round] = e.at;
      advance(s, 'voting');
      return;
    }
    case 'VOTE_REVEAL': {
      if (final) return;
      s.reveals.push({ ...(e.data as unknown as VoteRevealData), event: ref, at: e.at });
      return;
    }
    case 'TASK_INPUT_REJECTED': {
      const d = e.data as unknown as TaskInputRejectedData;
      s.rejected.push(d);
      const bucket = REJECTED_BUCKET[d.record_kind];
      if (bucket) s.cost = addSpend(s.cost, bucket, num(d.cost_usd));
      return;
    }
    case 'TASK_STAGE_STOPPED':
      s.stopped.push(e.data as unknown as TaskStageStoppedData);
      return;
    case 'TASK_RETRY_SCHEDULED': {
      if (final) return;
      const round = num(e.data['round']);
      s.retries.push({ round, reveals: num(e.data['reveals']), quorum: num(e.data['quorum']), reason_code: num(e.data['reason_code']) });
      s.round = Math.max(s.round, round);
      advance(s, 'voting');
      return;
    }
    case 'DECISION_COMMITTED': {
      if (final || s.decision) return;
      const d = e.data as unknown as DecisionCommittedData;
      const output = 'output' in d ? d.output : s.candidates[d.candidate_hash]?.output;
      s.decision = { task_id: d.task_id, round: d.round, candidate_hash: d.candidate_hash, output, tally: d.tally, quorum: d.quorum, proof: d.proof, committed_at: d.committed_at, finalized_at: null };
      s.decision_event = ref;
      advance(s, 'committed');
      return;
    }
    case 'DECISION_FINALIZED': {
      if (final || !s.decision) return;
      s.decision.finalized_at = num(e.data['finalized_at']);
      s.status = 'finalized';
      return;
    }
    case 'TASK_EXPIRED':
    case 'TASK_FAILED':
      if (final) return;
      s.failure = { reason_code: num(e.data['reason_code']), reason: typeof e.data['reason'] === 'string' ? e.data['reason'] : '' };
      s.status = e.type === 'TASK_EXPIRED' ? 'expired' : 'failed';
      return;
    case 'KNOWLEDGE_HIT':
      s.knowledge_hits.push(e.data as unknown as KnowledgeHitData);
      return;
    case 'REUSE_REJECT_RECORDED':
      s.reuse_rejected.push(e.data as unknown as ReuseRejectRecordedData);
      return;
  }
}

/**
 * Fold the events of one task into its state. Without `taskId`, the task of the first TASK_CREATED
 * among the events. Undefined when the task has no TASK_CREATED.
 */
export function projectTask(events: Iterable<ProjectableEvent>, taskId?: string): TaskState | undefined {
  let state: TaskState | undefined;
  for (const e of events) {
    if (!isConsensusEventType(e.type)) continue;
    const id = e.data['task_id'];
    if (typeof id !== 'string') continue;
    if (!state) {
      if (e.type === 'TASK_CREATED' && (taskId === undefined || id === taskId)) state = created(e);
      continue;
    }
    if (id === state.task_id) apply(state, e);
  }
  return state;
}

/** Every task of a run's log, by task id, in order of creation. */
export function projectTasks(events: Iterable<ProjectableEvent>): Map<string, TaskState> {
  const out = new Map<string, TaskState>();
  for (const e of events) {
    if (!isConsensusEventType(e.type)) continue;
    const id = e.data['task_id'];
    if (typeof id !== 'string') continue;
    const s = out.get(id);
    if (s) apply(s, e);
    else if (e.type === 'TASK_CREATED') out.set(id, created(e));
  }
  return out;
}

/** The vote checks' view of a task (votes.ts). */
export function voteContext(s: TaskState): VoteContext {
  return {
    status: s.status,
    round: s.round,
    members: s.members,
    candidate_hashes: new Set(s.candidate_order),
    commits: s.commits,
    reveals: s.reveals,
    round_opened_at: s.round_opened_at[s.round] ?? null,
    reveal_deadline_ms: s.contract.voting.reveal_deadline_ms ?? CONTRACT_DEFAULTS.reveal_deadline_ms,
  };
}

/** The proposal and verifier-result checks' view of a task (records.ts). */
export function recordContext(s: TaskState): RecordContext {
  const proposals = s.candidate_order.flatMap((h) => (s.candidates[h]?.proposals ?? []).map((p) => ({ proposer_id: p.proposer_id, round: p.round, candidate_hash: h })));
  return { status: s.status, members: s.members, candidate_hashes: new Set(s.candidate_order), proposals, policy_id: s.contract.verification.policy };
}

/** The reveals of one round (default: the current one), in log order. */
export function roundReveals(s: TaskState, round: number = s.round): TaskState['reveals'] {
  return s.reveals.filter((r) => r.round === round);
}

/** The per-task cost report (`swarm task cost`). */
export function taskCost(s: TaskState): TaskCost {
  const budget = s.contract.budget ?? {};
  const exhausted = new Set<BudgetBucket>(exhaustedBuckets(budget, s.cost));
  for (const st of s.stopped) if (st.bucket) exhausted.add(st.bucket);
  else if (st.reason_code === ReasonCode.STAGE_BUDGET_EXHAUSTED) exhausted.add(STAGE_BUCKET[st.stage]);
  return {
    task_id: s.task_id,
    explore_usd: s.cost.explore,
    verify_usd: s.cost.verify,
    finalize_usd: s.cost.finalize,
    total_usd: s.cost.explore + s.cost.verify + s.cost.finalize,
    budget,
    exhausted: [...exhausted],
  };
}
