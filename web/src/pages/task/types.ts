/** The task documents of the API (`GET /api/v1/tasks`, `GET /api/v1/tasks/{id}`), as the task pages read them. */

export const TASK_STATUSES = ['created', 'proposing', 'verifying', 'voting', 'committed', 'finalized', 'expired', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface Reason {
  code: number;
  name: string;
}

export interface TaskSummary {
  task_id: string;
  run_id: string;
  step_id: string;
  task_type: string;
  status: TaskStatus;
  stage: string;
  round: number;
  reason: (Reason & { message: string | null }) | null;
  created_at: string;
  updated_at: string;
  expires_at: string;
}

export interface TaskPage {
  tasks: TaskSummary[];
  next_cursor: string | null;
}

export interface EventRef {
  seq: number;
  hash: string;
}

export interface Candidate {
  candidate_hash: string;
  proposer_id: string;
  round: number;
  output: unknown;
  output_bytes: number;
  evidence: unknown[];
  cost_usd: number;
  signature: string;
  event: EventRef;
  created_at: string;
}

export interface VerifierResult {
  candidate_hash: string;
  verifier_id: string;
  policy_id: string;
  status: 'passed' | 'failed' | 'inconclusive';
  reason_codes: Reason[];
  reason: string | null;
  score: number;
  cost_usd: number;
}

export interface Vote {
  round: number;
  voter_id: string;
  commitment: string;
  committed_at: string;
  revealed: boolean;
  candidate_hash?: string | null;
  vote?: 'approve' | 'reject' | null;
  salt?: string | null;
  revealed_at?: string | null;
  event?: EventRef | null;
}

export interface Tally {
  round: number;
  commits: number;
  reveals: number;
  approvals: Record<string, number>;
}

export interface Decision {
  round: number;
  candidate_hash: string;
  output: unknown;
  tally: Record<string, number>;
  quorum: number;
  proof: { candidate_event: EventRef; reveal_events: EventRef[] };
  committed_at: string;
  finalized_at: string | null;
  finalized: boolean;
}

export interface TaskCost {
  explore_usd: number;
  verify_usd: number;
  finalize_usd: number;
  total_usd: number;
  budget: Partial<Record<'explore' | 'verify' | 'finalize', number>>;
  exhausted: string[];
}

export interface Task extends TaskSummary {
  explore_round: number;
  contract: Record<string, unknown>;
  members: Array<{ role: string; id: string; public_key: string }>;
  candidates: Candidate[];
  verifier_results: VerifierResult[];
  votes: Vote[];
  tally: Tally[];
  decision: Decision | null;
  cost: TaskCost;
}
