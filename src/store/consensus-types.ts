/**
 * Consensus tasks in the store (migration 25): the task, its candidates, verifier results, votes
 * (one row per task, round and voter: the commitment, then its reveal), the decision (one per task:
 * the finality rule) and its cost per budget bucket. Rows are written through `LedgerTx.consensus()`
 * in the transaction that records the lifecycle event they describe; the store's read methods serve
 * the CLI and the API.
 *
 * @example
 *   await store.transaction(async (tx) => {
 *     const c = tx.consensus();
 *     if (!(await c.fence({ run_id, step_id }, attempt, workerId))) throw leaseLost();
 *     await c.insertCandidate(row);
 *   });
 *   const rows = await store.getConsensusCandidates(taskId);
 */
import type { BudgetBucket, Candidate, Decision, Member, TaskContract, TaskStage, TaskStatus, VerifierResult } from '../consensus/core/types.js';
import type { StepKey } from './types.js';

/** A task's row. `round` is the vote round; `explore_round` the last proposal round begun. */
export interface ConsensusTaskRow {
  task_id: string;
  run_id: string;
  step_id: string;
  task_type: string;
  contract: TaskContract;
  members: Member[];
  status: TaskStatus;
  stage: TaskStage;
  round: number;
  explore_round: number;
  /** When the current vote round's first commit was recorded (the reveal deadline counts from it). */
  round_started_at: number | null;
  reason_code: number | null;
  reason: string | null;
  created_at: number;
  expires_at: number;
  updated_at: number;
}

/** A candidate as stored: the record, its size, and the seq and hash of its CANDIDATE_PROPOSED event. */
export interface ConsensusCandidateRow extends Candidate {
  output_bytes: number;
  event_seq: number;
  event_hash: string;
  created_at: number;
}

export interface ConsensusResultRow extends VerifierResult {
  reason: string | null;
  created_at: number;
}

/** One voter's vote in one round: the commitment, then (once revealed) what it committed to. */
export interface ConsensusVoteRow {
  task_id: string;
  round: number;
  voter_id: string;
  commitment: string;
  commit_signature: string;
  committed_at: number;
  candidate_hash: string | null;
  vote: 'approve' | 'reject' | null;
  salt: string | null;
  reveal_signature: string | null;
  revealed_at: number | null;
  reveal_event_seq: number | null;
  reveal_event_hash: string | null;
}

/** What a kernel-managed voter committed to, kept (never in an event) until it reveals, so a worker taking over can reveal it. */
export interface SealedVote {
  candidate_hash: string;
  vote: 'approve' | 'reject';
  salt: string;
}

export type ConsensusDecisionRow = Decision;

/** Cost so far per bucket, in USD. */
export type ConsensusCosts = Record<BudgetBucket, number>;

export interface ConsensusTaskQuery {
  run_id?: string;
  status?: TaskStatus;
  task_type?: string;
  /**
   * Keyset paging: only tasks after this one in the list's order (created_at descending, then
   * task_id ascending), i.e. the last task of the previous page.
   */
  after?: { created_at: number; task_id: string };
  /** Newest first; default 100, at most 1000. */
  limit?: number;
}

/** A change to a task row (only the given fields change). */
export type ConsensusTaskUpdate = Partial<Pick<ConsensusTaskRow, 'status' | 'stage' | 'round' | 'explore_round' | 'round_started_at' | 'reason_code' | 'reason'>>;

/**
 * What a consensus transition will read, named before it begins: a networked store reads it with
 * BEGIN and the locks (one round trip), and the transaction's reads of it are then served from what
 * was read, with the transaction's own writes applied.
 */
export interface ConsensusLoad {
  task_id: string;
  candidates?: boolean;
  results?: boolean;
  /** The votes (and kernel voters' sealed votes) of this round. */
  votes_round?: number;
  decision?: boolean;
}

/**
 * The consensus part of a ledger transaction (`LedgerTx.consensus()`). Every insert is idempotent
 * (a row already there is left as it is, and the call says so), so a worker that resumes a task
 * after a crash never writes a proposal, result or vote twice.
 */
export interface ConsensusTx {
  /**
   * Lock the step's row and check that it is still `running` under this attempt (and owner): the
   * fencing token of every write a step's driver makes. False when the worker lost its lease.
   */
  fence(key: StepKey, attempt: number, owner: string | null): Promise<boolean>;
  getTask(taskId: string): Promise<ConsensusTaskRow | undefined>;
  /** Insert a task unless one with its id exists; returns whether it was inserted. */
  insertTask(row: ConsensusTaskRow): Promise<boolean>;
  updateTask(taskId: string, update: ConsensusTaskUpdate): Promise<void>;
  insertCandidate(row: ConsensusCandidateRow): Promise<boolean>;
  candidates(taskId: string): Promise<ConsensusCandidateRow[]>;
  insertResult(row: ConsensusResultRow): Promise<boolean>;
  results(taskId: string): Promise<ConsensusResultRow[]>;
  /** A commitment (one per task, round and voter); `sealed` is a kernel voter's own vote, kept for its reveal. */
  insertCommit(row: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'commitment' | 'commit_signature' | 'committed_at'>, sealed?: SealedVote): Promise<boolean>;
  /** Record a reveal on its commitment unless it was revealed; returns whether it was recorded. */
  reveal(row: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'candidate_hash' | 'vote' | 'salt' | 'reveal_signature' | 'revealed_at' | 'reveal_event_seq' | 'reveal_event_hash'>): Promise<boolean>;
  votes(taskId: string, round?: number): Promise<ConsensusVoteRow[]>;
  /** A kernel voter's sealed vote of a round, if it committed one. */
  sealed(taskId: string, round: number, voterId: string): Promise<SealedVote | undefined>;
  /** Insert the decision unless the task has one (the finality rule); returns whether it was inserted. */
  insertDecision(row: ConsensusDecisionRow): Promise<boolean>;
  /** Mark the decision finalized unless it was; returns whether this call did. */
  finalizeDecision(taskId: string, at: number): Promise<boolean>;
  getDecision(taskId: string): Promise<ConsensusDecisionRow | undefined>;
  addCost(taskId: string, bucket: BudgetBucket, usd: number): Promise<void>;
  costs(taskId: string): Promise<ConsensusCosts>;
  /**
   * Writes whose outcome the caller does not need, with the conflict rules of insertTask,
   * insertCandidate, insertResult, insertCommit and reveal: a networked store sends them with the
   * transaction's next read or its COMMIT (as it does updateTask and addCost). The transaction's own
   * reads see them.
   */
  queueTask(row: ConsensusTaskRow): Promise<void>;
  queueCandidate(row: ConsensusCandidateRow): Promise<void>;
  queueResult(row: ConsensusResultRow): Promise<void>;
  queueCommit(row: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'commitment' | 'commit_signature' | 'committed_at'>, sealed?: SealedVote): Promise<void>;
  queueReveal(row: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'candidate_hash' | 'vote' | 'salt' | 'reveal_signature' | 'revealed_at' | 'reveal_event_seq' | 'reveal_event_hash'>): Promise<void>;
  /** insertDecision and finalizeDecision, queued: the caller has read the decision row (under the run's lock) and knows what they will do. */
  queueDecision(row: ConsensusDecisionRow): Promise<void>;
  queueFinalize(taskId: string, at: number): Promise<void>;
}
