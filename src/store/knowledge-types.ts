/**
 * The knowledge store's rows (migration 26): finalized consensus decisions with their evidence and
 * cost, each proposer's part in each decided task, the track record per (task type, proposer), and
 * the log of lookups. The vectors for SIMILAR lookups are not here: they are memories of the vector
 * memory (src/memory/), one namespace per task type (see src/consensus/knowledge/).
 *
 * @example
 *   const { created } = await store.putKnowledgeDecision(write);
 *   const [latest] = await store.listKnowledgeDecisions({ task_type: 'summary', inputs_hash: h, limit: 5 });
 */
import type { EvidenceRef, TaskCost, VerificationStatus } from '../consensus/core/types.js';

/** A decision as the knowledge store keeps it (one per task id). */
export interface KnowledgeDecisionRow {
  task_id: string;
  task_type: string;
  run_id: string | null;
  /** sha256 hex of canonicalJson(inputs): the key of EXACT lookups. */
  inputs_hash: string;
  inputs: Record<string, unknown>;
  /** The text embedded for SIMILAR lookups (see taskText). */
  text: string;
  candidate_hash: string;
  output: unknown;
  /** The winner's evidence, then the evidence of the verifier results on it. */
  evidence: EvidenceRef[];
  /** The decision record as finalized (tally, quorum, proof, round, times). */
  decision: Record<string, unknown>;
  cost: TaskCost;
  decided_at: number;
  recorded_at: number;
}

/**
 * How one proposer's candidate fared in one decided task. `verification` sums up its verifier
 * results: `failed` if any failed, else `inconclusive` if any was, else `passed` if any passed,
 * else `unverified`.
 */
export interface KnowledgeProposalRow {
  task_id: string;
  task_type: string;
  proposer_id: string;
  candidate_hash: string;
  round: number;
  won: boolean;
  verification: VerificationStatus | 'unverified';
  cost_usd: number;
}

/** A proposer's record on one task type, summed over the decisions recorded. */
export interface KnowledgeTrackRow {
  task_type: string;
  proposer_id: string;
  /** Candidates it proposed in decided tasks. */
  proposed: number;
  /** Of those, the decision's winner. */
  won: number;
  failed: number;
  inconclusive: number;
  updated_at: number;
}

/** What putKnowledgeDecision writes, in one transaction. */
export interface KnowledgeDecisionWrite {
  decision: KnowledgeDecisionRow;
  proposals: KnowledgeProposalRow[];
}

export type KnowledgeHitType = 'EXACT' | 'SIMILAR';

/** One rejected reuse: a decision found but on the task's reuse_blacklist. */
export interface KnowledgeRejection {
  /** The task whose decision was not reused. */
  task_id: string;
  candidate_hash: string;
  /** `REUSE_BLACKLISTED` (reason code 1409). */
  reason: 'REUSE_BLACKLISTED';
  /** What the blacklist entry matched: the decision's task id or its candidate hash. */
  matched: 'task_id' | 'candidate_hash';
  hit_type: KnowledgeHitType;
  similarity?: number;
}

/** A lookup as logged (every call of lookup, hit or miss). */
export interface KnowledgeLookupRow {
  id: string;
  task_id: string;
  task_type: string;
  inputs_hash: string;
  mode: 'exact' | 'similar';
  /** MISS: nothing reusable was found. */
  hit_type: KnowledgeHitType | 'MISS';
  /** The task id of the decision reused. */
  decision_task_id: string | null;
  similarity: number | null;
  rejected: KnowledgeRejection[];
  looked_up_at: number;
}

export type KnowledgeLookupWrite = Omit<KnowledgeLookupRow, 'id'>;

/** Which decisions: by task type, or some task ids; newest first (decided_at, then task id), paged by `before`. */
export interface KnowledgeDecisionQuery {
  task_type?: string;
  task_ids?: readonly string[];
  /** EXACT: only decisions of these inputs (with task_type). */
  inputs_hash?: string;
  limit?: number;
  /** A page's last row: rows after it in the order. */
  before?: { decided_at: number; task_id: string };
}

export interface KnowledgeTrackFilter {
  task_type?: string;
  proposer_id?: string;
}

/** Rows of a JSON column, read back (SQLite and PostgreSQL both keep them as text). */
export function parseJsonColumn<T>(v: unknown): T {
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

export function toKnowledgeDecisionRow(r: Record<string, unknown>): KnowledgeDecisionRow {
  return {
    task_id: r.task_id as string,
    task_type: r.task_type as string,
    run_id: (r.run_id as string | null) ?? null,
    inputs_hash: r.inputs_hash as string,
    inputs: parseJsonColumn(r.inputs),
    text: r.text as string,
    candidate_hash: r.candidate_hash as string,
    output: parseJsonColumn(r.output),
    evidence: parseJsonColumn(r.evidence),
    decision: parseJsonColumn(r.decision),
    cost: parseJsonColumn(r.cost),
    decided_at: Number(r.decided_at),
    recorded_at: Number(r.recorded_at),
  };
}

export function toKnowledgeProposalRow(r: Record<string, unknown>): KnowledgeProposalRow {
  return {
    task_id: r.task_id as string,
    task_type: r.task_type as string,
    proposer_id: r.proposer_id as string,
    candidate_hash: r.candidate_hash as string,
    round: Number(r.round),
    won: r.won === true || Number(r.won) === 1,
    verification: r.verification as KnowledgeProposalRow['verification'],
    cost_usd: Number(r.cost_usd),
  };
}

export function toKnowledgeTrackRow(r: Record<string, unknown>): KnowledgeTrackRow {
  return {
    task_type: r.task_type as string,
    proposer_id: r.proposer_id as string,
    proposed: Number(r.proposed),
    won: Number(r.won),
    failed: Number(r.failed),
    inconclusive: Number(r.inconclusive),
    updated_at: Number(r.updated_at),
  };
}

export function toKnowledgeLookupRow(r: Record<string, unknown>): KnowledgeLookupRow {
  return {
    id: String(r.id),
    task_id: r.task_id as string,
    task_type: r.task_type as string,
    inputs_hash: r.inputs_hash as string,
    mode: r.mode as KnowledgeLookupRow['mode'],
    hit_type: r.hit_type as KnowledgeLookupRow['hit_type'],
    decision_task_id: (r.decision_task_id as string | null) ?? null,
    similarity: r.similarity === null || r.similarity === undefined ? null : Number(r.similarity),
    rejected: parseJsonColumn(r.rejected),
    looked_up_at: Number(r.looked_up_at),
  };
}
