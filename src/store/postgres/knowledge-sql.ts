/**
 * The knowledge store on PostgreSQL (migration 26): decisions, proposals, the track record and the
 * lookups log. A decision, its proposals and the track record's counts go in one transaction, and
 * only when the decision is new (`ON CONFLICT DO NOTHING` decides under concurrent recorders too):
 * recording it again changes nothing.
 *
 * @example
 *   await store.atomically(async (q) => ({ value: await putKnowledgeDecisionIn(q, write, now), notify: false }));
 */
import { noNul } from './pg-tx.js';
import type { KnowledgeDecisionQuery, KnowledgeDecisionWrite, KnowledgeLookupWrite, KnowledgeTrackFilter } from '../knowledge-types.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Array<Record<string, unknown>>; rowCount: number }>;

/** JSON text for a TEXT column: PostgreSQL text holds no NUL, and JSON escapes it anyway. */
const json = (v: unknown): string => JSON.stringify(v ?? null);

const INSERT_DECISION_SQL = `INSERT INTO knowledge_decisions (task_id, task_type, run_id, inputs_hash, inputs, text, candidate_hash, output, evidence, decision, cost, total_usd, decided_at, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (task_id) DO NOTHING`;

/**
 * A decision's proposals, and each proposer's counts in the track record bumped for the proposals
 * this inserted (not for those already there): one statement, whatever the number of proposals.
 */
const INSERT_PROPOSALS_SQL = `WITH ins AS (
  INSERT INTO knowledge_proposals (task_id, proposer_id, round, candidate_hash, task_type, won, verification, cost_usd)
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::float8[])
  ON CONFLICT DO NOTHING
  RETURNING task_type, proposer_id, won, verification
)
INSERT INTO knowledge_track_record AS t (task_type, proposer_id, proposed, won, failed, inconclusive, updated_at)
SELECT task_type, proposer_id, count(*), count(*) FILTER (WHERE won), count(*) FILTER (WHERE verification = 'failed'), count(*) FILTER (WHERE verification = 'inconclusive'), $9::bigint
FROM ins GROUP BY task_type, proposer_id
ON CONFLICT (task_type, proposer_id) DO UPDATE SET proposed = t.proposed + EXCLUDED.proposed, won = t.won + EXCLUDED.won, failed = t.failed + EXCLUDED.failed,
  inconclusive = t.inconclusive + EXCLUDED.inconclusive, updated_at = EXCLUDED.updated_at`;

/** Inside a transaction. */
export async function putKnowledgeDecisionIn(q: Query, w: KnowledgeDecisionWrite, now: number): Promise<{ created: boolean }> {
  const d = w.decision;
  const inserted = await q(INSERT_DECISION_SQL, [
    noNul(d.task_id),
    noNul(d.task_type),
    d.run_id === null ? null : noNul(d.run_id),
    d.inputs_hash,
    json(d.inputs),
    noNul(d.text),
    d.candidate_hash,
    json(d.output),
    json(d.evidence),
    json(d.decision),
    json(d.cost),
    d.cost.total_usd ?? 0,
    Math.round(d.decided_at),
    Math.round(d.recorded_at),
  ]);
  if (inserted.rowCount === 0) return { created: false };
  const ps = w.proposals;
  if (ps.length > 0) {
    await q(INSERT_PROPOSALS_SQL, [
      ps.map((p) => noNul(p.task_id)),
      ps.map((p) => noNul(p.proposer_id)),
      ps.map((p) => p.round),
      ps.map((p) => p.candidate_hash),
      ps.map((p) => noNul(p.task_type)),
      ps.map((p) => p.won),
      ps.map((p) => p.verification),
      ps.map((p) => p.cost_usd),
      Math.round(now),
    ]);
  }
  return { created: true };
}

export const GET_DECISION_SQL = 'SELECT * FROM knowledge_decisions WHERE task_id = $1';

/** One statement for every query shape (NULL parameters switch filters off), so it is prepared once. */
export const LIST_DECISIONS_SQL = `SELECT * FROM knowledge_decisions
WHERE ($1::text IS NULL OR task_type = $1) AND ($2::text IS NULL OR inputs_hash = $2) AND ($3::text[] IS NULL OR task_id = ANY($3))
  AND ($4::bigint IS NULL OR decided_at < $4 OR (decided_at = $4 AND task_id COLLATE "C" < $5))
ORDER BY decided_at DESC, task_id COLLATE "C" DESC LIMIT $6`;

export function listDecisionsParams(q: KnowledgeDecisionQuery): unknown[] {
  return [
    q.task_type === undefined ? null : noNul(q.task_type),
    q.inputs_hash ?? null,
    q.task_ids === undefined ? null : q.task_ids.map((t) => noNul(t)),
    q.before ? Math.round(q.before.decided_at) : null,
    q.before ? noNul(q.before.task_id) : null,
    q.limit ?? 100,
  ];
}

export const LIST_PROPOSALS_SQL = 'SELECT * FROM knowledge_proposals WHERE task_id = ANY($1::text[]) ORDER BY task_id COLLATE "C", proposer_id COLLATE "C", round, candidate_hash';

export const TRACK_RECORD_SQL = `SELECT * FROM knowledge_track_record WHERE ($1::text IS NULL OR task_type = $1) AND ($2::text IS NULL OR proposer_id = $2)
ORDER BY task_type COLLATE "C", proposer_id COLLATE "C"`;

export function trackRecordParams(f: KnowledgeTrackFilter): unknown[] {
  return [f.task_type === undefined ? null : noNul(f.task_type), f.proposer_id === undefined ? null : noNul(f.proposer_id)];
}

export const TASK_TYPES_SQL = 'SELECT task_type FROM knowledge_decisions GROUP BY task_type ORDER BY task_type COLLATE "C"';

export const ADD_LOOKUP_SQL = `INSERT INTO knowledge_lookups (task_id, task_type, inputs_hash, mode, hit_type, decision_task_id, similarity, rejected, looked_up_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`;

export function addLookupParams(l: KnowledgeLookupWrite): unknown[] {
  return [noNul(l.task_id), noNul(l.task_type), l.inputs_hash, l.mode, l.hit_type, l.decision_task_id === null ? null : noNul(l.decision_task_id), l.similarity, json(l.rejected), Math.round(l.looked_up_at)];
}

export const LIST_LOOKUPS_SQL = 'SELECT * FROM knowledge_lookups WHERE ($1::text IS NULL OR task_id = $1) ORDER BY id DESC LIMIT $2';
