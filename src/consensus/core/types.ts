/**
 * The data of a consensus task (source 002's kernel): the contract a user submits, and the records
 * the lifecycle writes (candidates, verifier results, vote commitments and reveals, the decision).
 * Pure types: no I/O. The lifecycle and its events are in docs/consensus.md.
 *
 * @example
 *   const contract: TaskContract = {
 *     task_type: 'summary',
 *     inputs: { text: 'Swarm is a durable runtime.' },
 *     output_schema: { type: 'object', required: ['summary'], properties: { summary: { type: 'string' } } },
 *     proposers: [{ executor: 'rt-a' }, { agent: 'summarize', samples: 2 }],
 *     verification: { policy: 'vp.schema_only.v1' },
 *     voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }], quorum: 2, reveal_deadline_ms: 30_000 },
 *   };
 */

/** The stages of a task, in order. Stage budgets are per bucket: `explore` (propose), `verify`, `finalize` (vote and finalize). */
export const TASK_STAGES = ['propose', 'verify', 'vote', 'finalize'] as const;
export type TaskStage = (typeof TASK_STAGES)[number];
export const BUDGET_BUCKETS = ['explore', 'verify', 'finalize'] as const;
export type BudgetBucket = (typeof BUDGET_BUCKETS)[number];

/** Where a task is. `finalized`, `expired` and `failed` are final. */
export const TASK_STATUSES = ['created', 'proposing', 'verifying', 'voting', 'committed', 'finalized', 'expired', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Three-state verification (source 002): `inconclusive` when evidence could not be reached or checked. */
export type VerificationStatus = 'passed' | 'failed' | 'inconclusive';

/**
 * Who proposes: a registered HTTP executor (`swarm executors add`), or a registered agent package run
 * by the worker (`samples` independent runs of it; default 1). `id` names the participant in the
 * task's membership (default: `executor:<name>` / `agent:<name>#<i>`).
 */
export interface ProposerSpec {
  executor?: string;
  agent?: string;
  samples?: number;
  id?: string;
}

/**
 * Who verifies: `local` runs the policy in the worker; `executor` calls that executor's `POST /verify`.
 * Default: one local verifier.
 */
export interface VerifierSpec {
  executor?: string;
  local?: boolean;
  id?: string;
}

/**
 * Who votes. A kernel-managed voter (`id` only, signing with the key of that name, created on first
 * use) votes by `strategy`: `best_verified` (the candidate that passed verification with the best
 * score; ties broken by candidate hash) or `agent` (a registered agent package that receives the
 * candidates and verifier results and returns `{ candidate_hash }`). An `external` voter holds its
 * own key (`public_key`, base64 raw Ed25519) and commits and reveals through the API or the CLI.
 */
export interface VoterSpec {
  id: string;
  strategy?: 'best_verified' | 'agent';
  agent?: string;
  external?: boolean;
  public_key?: string;
}

export interface VerificationSpec {
  /** `vp.schema_only.v1`, `vp.schema_thresholds.v1` or `vp.crosscheck.v1`. */
  policy: string;
  /** The policy's parameters (see each policy's module). */
  params?: Record<string, unknown>;
  verifiers?: VerifierSpec[];
}

export interface VotingSpec {
  voters: VoterSpec[];
  /** Reveals needed for a decision (default: a majority of the voters). */
  quorum?: number;
  /** How long after the first commit reveals are accepted (default 60 s). */
  reveal_deadline_ms?: number;
  /** Vote rounds before the task fails for want of reveals (default 3). */
  max_rounds?: number;
}

/** Stage budgets in USD (the cost executors and agents report); a stage that would pass its bucket stops with a reason. */
export interface StageBudgets {
  explore?: number;
  verify?: number;
  finalize?: number;
}

export interface ExploreSpec {
  /** Keep at most this many distinct candidates (by hash); proposing stops when reached. */
  topk?: number;
  /** Rounds of proposals; stop after this many rounds in a row brought no new candidate hash. */
  stop?: { no_new_evidence_rounds?: number };
  /** At most this many proposal rounds (default 1). */
  max_rounds?: number;
}

export interface KnowledgeSpec {
  /** Look up prior decisions before proposing (default `exact`). */
  lookup?: 'off' | 'exact' | 'similar';
  /** Cosine similarity a SIMILAR hit needs (default 0.85). */
  min_similarity?: number;
  /** Task ids (or candidate hashes) of decisions that must not be reused. */
  reuse_blacklist?: string[];
}

/** What a user submits (`swarm task submit`, or a `kind: consensus` step's `task:`). */
export interface TaskContract {
  /** A stable id (default: generated; a step's task id is `<run id>/<step id>`). */
  task_id?: string;
  task_type: string;
  inputs: Record<string, unknown>;
  /** JSON Schema of a candidate's output. */
  output_schema?: Record<string, unknown>;
  proposers: ProposerSpec[];
  verification: VerificationSpec;
  voting: VotingSpec;
  budget?: StageBudgets;
  explore?: ExploreSpec;
  /** Milliseconds after creation at which an undecided task expires (default 10 min). */
  expiry_ms?: number;
  knowledge?: KnowledgeSpec;
}

/** A member of a task: its role, id and Ed25519 public key (base64 of the raw 32 bytes), fixed at TASK_CREATED. */
export interface Member {
  role: 'proposer' | 'verifier' | 'voter';
  id: string;
  public_key: string;
}

/** A reference to a piece of evidence: inline data, or a URL the kernel can fetch; `digest` is sha256 hex of its bytes. */
export interface EvidenceRef {
  kind: string;
  uri: string;
  digest: string;
  size_bytes?: number;
}

/** A proposal: an output, its evidence and what it cost. `candidate_hash` = sha256 of the canonical JSON of `output`. */
export interface Candidate {
  task_id: string;
  candidate_hash: string;
  proposer_id: string;
  round: number;
  output: unknown;
  evidence: EvidenceRef[];
  cost_usd: number;
  /** Base64 Ed25519 signature by the proposer over `signedPayload('candidate', …)`. */
  signature: string;
}

export interface VerifierResult {
  task_id: string;
  candidate_hash: string;
  verifier_id: string;
  policy_id: string;
  status: VerificationStatus;
  /** Reason codes (reason-codes.ts); empty when passed. */
  reason_codes: number[];
  /** A score in [0, 1] the policy assigns (1 when it has no finer notion). */
  score: number;
  evidence: EvidenceRef[];
  cost_usd: number;
  signature: string;
}

/** A vote commitment: `commitment` = commitmentHash(candidate_hash, vote, salt). Nothing else is revealed. */
export interface VoteCommit {
  task_id: string;
  round: number;
  voter_id: string;
  commitment: string;
  signature: string;
}

/** The reveal of a commitment. */
export interface VoteReveal {
  task_id: string;
  round: number;
  voter_id: string;
  candidate_hash: string;
  /** `approve` counts for the candidate; `reject` is recorded and counts for nothing. */
  vote: 'approve' | 'reject';
  salt: string;
  signature: string;
}

/**
 * The decision: the winning candidate, the tally per candidate hash, and the proof (the hashes of the
 * events it rests on), checkable by anyone with the run's log.
 */
export interface Decision {
  task_id: string;
  round: number;
  candidate_hash: string;
  output: unknown;
  tally: Record<string, number>;
  quorum: number;
  /** Seq and hash of the VOTE_REVEAL events counted, and of the CANDIDATE_PROPOSED of the winner. */
  proof: { candidate_event: { seq: number; hash: string }; reveal_events: Array<{ seq: number; hash: string }> };
  committed_at: number;
  finalized_at: number | null;
}

/** Per-task cost, by bucket (`swarm task cost`). */
export interface TaskCost {
  task_id: string;
  explore_usd: number;
  verify_usd: number;
  finalize_usd: number;
  total_usd: number;
  budget: StageBudgets;
  /** Buckets that stopped a stage. */
  exhausted: BudgetBucket[];
}
