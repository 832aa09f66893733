/**
 * The knowledge store on SQLite (migration 26): decisions, proposals, the track record and the
 * lookups log. A decision, its proposals and the track record's counts go in one transaction, and
 * only when the decision is new: recording it again changes nothing.
 *
 * @example
 *   db.transaction(() => putKnowledgeDecision((sql) => db.prepare(sql), write, Date.now())).immediate();
 */
import type Database from 'better-sqlite3';
import {
  toKnowledgeDecisionRow,
  toKnowledgeLookupRow,
  toKnowledgeProposalRow,
  toKnowledgeTrackRow,
  type KnowledgeDecisionQuery,
  type KnowledgeDecisionRow,
  type KnowledgeDecisionWrite,
  type KnowledgeLookupRow,
  type KnowledgeLookupWrite,
  type KnowledgeProposalRow,
  type KnowledgeTrackFilter,
  type KnowledgeTrackRow,
} from '../knowledge-types.js';

type Stmt = (sql: string) => Database.Statement;
type Row = Record<string, unknown>;

/** Inside a transaction. */
export function putKnowledgeDecision(stmt: Stmt, w: KnowledgeDecisionWrite, now: number): { created: boolean } {
  const d = w.decision;
  const inserted = stmt(
    `INSERT INTO knowledge_decisions (task_id, task_type, run_id, inputs_hash, inputs, text, candidate_hash, output, evidence, decision, cost, total_usd, decided_at, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING`,
  ).run(
    d.task_id,
    d.task_type,
    d.run_id,
    d.inputs_hash,
    JSON.stringify(d.inputs),
    d.text,
    d.candidate_hash,
    JSON.stringify(d.output ?? null),
    JSON.stringify(d.evidence),
    JSON.stringify(d.decision),
    JSON.stringify(d.cost),
    d.cost.total_usd ?? 0,
    d.decided_at,
    d.recorded_at,
  ).changes;
  if (inserted === 0) return { created: false };
  const insertProposal = stmt(
    `INSERT INTO knowledge_proposals (task_id, proposer_id, round, candidate_hash, task_type, won, verification, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const bump = stmt(
    `INSERT INTO knowledge_track_record (task_type, proposer_id, proposed, won, failed, inconclusive, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?)
     ON CONFLICT (task_type, proposer_id) DO UPDATE SET proposed = proposed + 1, won = won + excluded.won, failed = failed + excluded.failed,
       inconclusive = inconclusive + excluded.inconclusive, updated_at = excluded.updated_at`,
  );
  for (const p of w.proposals) {
    if (insertProposal.run(p.task_id, p.proposer_id, p.round, p.candidate_hash, p.task_type, p.won ? 1 : 0, p.verification, p.cost_usd).changes === 0) continue;
    bump.run(p.task_type, p.proposer_id, p.won ? 1 : 0, p.verification === 'failed' ? 1 : 0, p.verification === 'inconclusive' ? 1 : 0, now);
  }
  return { created: true };
}

export function getKnowledgeDecision(stmt: Stmt, taskId: string): KnowledgeDecisionRow | undefined {
  const r = stmt('SELECT * FROM knowledge_decisions WHERE task_id = ?').get(taskId) as Row | undefined;
  return r ? toKnowledgeDecisionRow(r) : undefined;
}

export function listKnowledgeDecisions(stmt: Stmt, q: KnowledgeDecisionQuery): KnowledgeDecisionRow[] {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.task_type !== undefined) {
    where.push('task_type = ?');
    args.push(q.task_type);
  }
  if (q.inputs_hash !== undefined) {
    where.push('inputs_hash = ?');
    args.push(q.inputs_hash);
  }
  if (q.task_ids !== undefined) {
    if (q.task_ids.length === 0) return [];
    where.push(`task_id IN (SELECT value FROM json_each(?))`);
    args.push(JSON.stringify(q.task_ids));
  }
  if (q.before) {
    where.push('(decided_at < ? OR (decided_at = ? AND task_id < ?))');
    args.push(q.before.decided_at, q.before.decided_at, q.before.task_id);
  }
  const sql = `SELECT * FROM knowledge_decisions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY decided_at DESC, task_id DESC LIMIT ?`;
  return (stmt(sql).all(...args, q.limit ?? 100) as Row[]).map(toKnowledgeDecisionRow);
}

export function listKnowledgeProposals(stmt: Stmt, taskIds: readonly string[]): KnowledgeProposalRow[] {
  if (taskIds.length === 0) return [];
  return (
    stmt('SELECT * FROM knowledge_proposals WHERE task_id IN (SELECT value FROM json_each(?)) ORDER BY task_id, proposer_id, round, candidate_hash').all(JSON.stringify(taskIds)) as Row[]
  ).map(toKnowledgeProposalRow);
}

export function knowledgeTrackRecord(stmt: Stmt, f: KnowledgeTrackFilter): KnowledgeTrackRow[] {
  return (
    stmt('SELECT * FROM knowledge_track_record WHERE (? IS NULL OR task_type = ?) AND (? IS NULL OR proposer_id = ?) ORDER BY task_type, proposer_id').all(
      f.task_type ?? null,
      f.task_type ?? null,
      f.proposer_id ?? null,
      f.proposer_id ?? null,
    ) as Row[]
  ).map(toKnowledgeTrackRow);
}

export function knowledgeTaskTypes(stmt: Stmt): string[] {
  return stmt('SELECT DISTINCT task_type FROM knowledge_decisions ORDER BY task_type').pluck().all() as string[];
}

export function addKnowledgeLookup(stmt: Stmt, l: KnowledgeLookupWrite): KnowledgeLookupRow {
  const r = stmt(
    `INSERT INTO knowledge_lookups (task_id, task_type, inputs_hash, mode, hit_type, decision_task_id, similarity, rejected, looked_up_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
  ).get(l.task_id, l.task_type, l.inputs_hash, l.mode, l.hit_type, l.decision_task_id, l.similarity, JSON.stringify(l.rejected), l.looked_up_at) as Row;
  return toKnowledgeLookupRow(r);
}

export function listKnowledgeLookups(stmt: Stmt, q: { task_id?: string; limit?: number }): KnowledgeLookupRow[] {
  return (stmt('SELECT * FROM knowledge_lookups WHERE (? IS NULL OR task_id = ?) ORDER BY id DESC LIMIT ?').all(q.task_id ?? null, q.task_id ?? null, q.limit ?? 100) as Row[]).map(toKnowledgeLookupRow);
}
