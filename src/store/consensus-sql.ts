/**
 * The consensus tables' statements (migration 25, in each backend's migrations.ts), written once in the SQL both backends speak
 * (`?` placeholders; the PostgreSQL adapter numbers them). Each backend hands in a `Query` that runs
 * one statement in its transaction or on its connection: see sqlite/consensus-sql.ts and
 * postgres/consensus-sql.ts.
 *
 * @example
 *   const c = new ConsensusSql(q, ' FOR UPDATE', tx.now);
 *   await c.insertCandidate(row); // false when that proposer's candidate of that round is there
 */
import type { BudgetBucket, TaskStage, TaskStatus } from '../consensus/core/types.js';
import type {
  ConsensusCandidateRow,
  ConsensusCosts,
  ConsensusDecisionRow,
  ConsensusLoad,
  ConsensusResultRow,
  ConsensusTaskQuery,
  ConsensusTaskRow,
  ConsensusTaskUpdate,
  ConsensusTx,
  ConsensusVoteRow,
  SealedVote,
} from './consensus-types.js';
import { stepRowId, type Row } from './rows.js';
import type { StepKey } from './types.js';

/** Run one statement (`?` placeholders): its rows (for SELECT and RETURNING) and the rows it changed. */
export type ConsensusQuery = (sql: string, values: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : v === null || v === undefined ? null : JSON.stringify(v));
const json = <T>(v: unknown, fallback: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : fallback);

export function toTaskRow(r: Row): ConsensusTaskRow {
  return {
    task_id: String(r.task_id),
    run_id: String(r.run_id),
    step_id: String(r.step_id),
    task_type: String(r.task_type),
    contract: json(r.contract, {} as ConsensusTaskRow['contract']),
    members: json(r.members, []),
    status: String(r.status) as TaskStatus,
    stage: String(r.stage) as TaskStage,
    round: num(r.round),
    explore_round: num(r.explore_round),
    round_started_at: numOrNull(r.round_started_at),
    reason_code: numOrNull(r.reason_code),
    reason: strOrNull(r.reason),
    created_at: num(r.created_at),
    expires_at: num(r.expires_at),
    updated_at: num(r.updated_at),
  };
}

function toCandidateRow(r: Row): ConsensusCandidateRow {
  return {
    task_id: String(r.task_id),
    candidate_hash: String(r.candidate_hash),
    proposer_id: String(r.proposer_id),
    round: num(r.round),
    output: json(r.output, null),
    evidence: json(r.evidence, []),
    cost_usd: num(r.cost_usd),
    signature: String(r.signature),
    output_bytes: num(r.output_bytes),
    event_seq: num(r.event_seq),
    event_hash: String(r.event_hash),
    created_at: num(r.created_at),
  };
}

function toResultRow(r: Row): ConsensusResultRow {
  return {
    task_id: String(r.task_id),
    candidate_hash: String(r.candidate_hash),
    verifier_id: String(r.verifier_id),
    policy_id: String(r.policy_id),
    status: String(r.status) as ConsensusResultRow['status'],
    reason_codes: json(r.reason_codes, []),
    reason: strOrNull(r.reason),
    score: num(r.score),
    evidence: json(r.evidence, []),
    cost_usd: num(r.cost_usd),
    signature: String(r.signature),
    created_at: num(r.created_at),
  };
}

function toVoteRow(r: Row): ConsensusVoteRow {
  return {
    task_id: String(r.task_id),
    round: num(r.round),
    voter_id: String(r.voter_id),
    commitment: String(r.commitment),
    commit_signature: String(r.commit_signature),
    committed_at: num(r.committed_at),
    candidate_hash: strOrNull(r.candidate_hash),
    vote: strOrNull(r.vote) as ConsensusVoteRow['vote'],
    salt: strOrNull(r.salt),
    reveal_signature: strOrNull(r.reveal_signature),
    revealed_at: numOrNull(r.revealed_at),
    reveal_event_seq: numOrNull(r.reveal_event_seq),
    reveal_event_hash: strOrNull(r.reveal_event_hash),
  };
}

function toDecisionRow(r: Row): ConsensusDecisionRow {
  return {
    task_id: String(r.task_id),
    round: num(r.round),
    candidate_hash: String(r.candidate_hash),
    output: json(r.output, null),
    tally: json(r.tally, {}),
    quorum: num(r.quorum),
    proof: json(r.proof, { candidate_event: { seq: 0, hash: '' }, reveal_events: [] }),
    committed_at: num(r.committed_at),
    finalized_at: numOrNull(r.finalized_at),
  };
}

const TASK_UPDATE_COLUMNS = ['status', 'stage', 'round', 'explore_round', 'round_started_at', 'reason_code', 'reason'] as const;

const VOTE_COLS = 'task_id, round, voter_id, commitment, commit_signature, committed_at, candidate_hash, vote, salt, reveal_signature, revealed_at, reveal_event_seq, reveal_event_hash';

const CANDIDATES_SQL = 'SELECT * FROM consensus_candidates WHERE task_id = ? ORDER BY round, event_seq, proposer_id';
const RESULTS_SQL = 'SELECT * FROM consensus_results WHERE task_id = ? ORDER BY created_at, candidate_hash, verifier_id';
const ROUND_VOTES_SQL = `SELECT ${VOTE_COLS}, sealed FROM consensus_votes WHERE task_id = ? AND round = ? ORDER BY committed_at, voter_id`;

/** The reads the store offers (and the transaction too). */
export class ConsensusReads {
  constructor(protected readonly q: ConsensusQuery) {}

  async getTask(taskId: string): Promise<ConsensusTaskRow | undefined> {
    const r = (await this.q('SELECT * FROM consensus_tasks WHERE task_id = ?', [taskId])).rows[0];
    return r ? toTaskRow(r) : undefined;
  }

  async listTasks(query: ConsensusTaskQuery = {}): Promise<ConsensusTaskRow[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (query.run_id !== undefined) {
      where.push('run_id = ?');
      values.push(query.run_id);
    }
    if (query.status !== undefined) {
      where.push('status = ?');
      values.push(query.status);
    }
    if (query.task_type !== undefined) {
      where.push('task_type = ?');
      values.push(query.task_type);
    }
    if (query.after) {
      // The rows after the cursor in ORDER BY created_at DESC, task_id.
      where.push('(created_at < ? OR (created_at = ? AND task_id > ?))');
      values.push(query.after.created_at, query.after.created_at, query.after.task_id);
    }
    values.push(Math.max(1, Math.min(query.limit ?? 100, 1000)));
    const sql = `SELECT * FROM consensus_tasks${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, task_id LIMIT ?`;
    return (await this.q(sql, values)).rows.map(toTaskRow);
  }

  async candidates(taskId: string): Promise<ConsensusCandidateRow[]> {
    return (await this.q(CANDIDATES_SQL, [taskId])).rows.map(toCandidateRow);
  }

  async results(taskId: string): Promise<ConsensusResultRow[]> {
    return (await this.q(RESULTS_SQL, [taskId])).rows.map(toResultRow);
  }

  async votes(taskId: string, round?: number): Promise<ConsensusVoteRow[]> {
    const r =
      round === undefined
        ? await this.q(`SELECT ${VOTE_COLS} FROM consensus_votes WHERE task_id = ? ORDER BY round, committed_at, voter_id`, [taskId])
        : await this.q(`SELECT ${VOTE_COLS} FROM consensus_votes WHERE task_id = ? AND round = ? ORDER BY committed_at, voter_id`, [taskId, round]);
    return r.rows.map(toVoteRow);
  }

  async getDecision(taskId: string): Promise<ConsensusDecisionRow | undefined> {
    const r = (await this.q('SELECT * FROM consensus_decisions WHERE task_id = ?', [taskId])).rows[0];
    return r ? toDecisionRow(r) : undefined;
  }

  async costs(taskId: string): Promise<ConsensusCosts> {
    const out: ConsensusCosts = { explore: 0, verify: 0, finalize: 0 };
    for (const r of (await this.q('SELECT bucket, usd FROM consensus_costs WHERE task_id = ?', [taskId])).rows) out[String(r.bucket) as BudgetBucket] = num(r.usd);
    return out;
  }
}

/** How a backend runs a transaction's statements (see ConsensusSql). */
export interface ConsensusTxIo {
  /** A statement whose result is needed now. */
  q: ConsensusQuery;
  /** A write whose result nobody needs: a networked store queues it for its next round trip. */
  later?: (sql: string, values: readonly unknown[]) => void;
  /** A read queued for the next round trip (with BEGIN, see `load`); `onRows` hears its rows. */
  defer?: (sql: string, values: readonly unknown[], onRows: (rows: Row[]) => void) => void;
  /** The step row as this transaction locked it (with BEGIN), if it did: the fence needs no statement then. */
  lockedStep?: (id: string) => { status: string; attempt: number; lease_owner: string | null } | undefined;
  /** Locks the step row where the database can (PostgreSQL: ' FOR UPDATE'). */
  lockSuffix: string;
  /** The transaction's clock (read lazily: a networked store knows it once BEGIN is back). */
  now: () => number;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const candidateOrder = (a: ConsensusCandidateRow, b: ConsensusCandidateRow): number => a.round - b.round || a.event_seq - b.event_seq || byText(a.proposer_id, b.proposer_id);
const resultOrder = (a: ConsensusResultRow, b: ConsensusResultRow): number => a.created_at - b.created_at || byText(a.candidate_hash, b.candidate_hash) || byText(a.verifier_id, b.verifier_id);
const voteOrder = (a: ConsensusVoteRow, b: ConsensusVoteRow): number => a.committed_at - b.committed_at || byText(a.voter_id, b.voter_id);

/** A round's votes as read, with the kernel voters' sealed votes. */
interface RoundVotes {
  rows: ConsensusVoteRow[];
  sealed: Map<string, SealedVote>;
}

const sealedOf = (v: unknown): SealedVote | undefined => (typeof v === 'string' ? (JSON.parse(v) as SealedVote) : undefined);

/**
 * The writes, in a ledger transaction. Every writer of a task's rows holds its run's row lock (the
 * driver's transitions and submitted votes lock it first), so what this transaction has read of a
 * task cannot change under it but by its own writes: reads are kept (or loaded with BEGIN, `load`)
 * and the transaction's writes applied to them, and writes whose outcome is not needed are queued.
 */
export class ConsensusSql extends ConsensusReads implements ConsensusTx {
  private readonly io: ConsensusTxIo;
  /** Rows read in this transaction, with its own writes applied; null: read, and not there. */
  private readonly taskRows = new Map<string, ConsensusTaskRow | null>();
  private readonly candidateRows = new Map<string, ConsensusCandidateRow[]>();
  private readonly resultRows = new Map<string, ConsensusResultRow[]>();
  private readonly voteRows = new Map<string, RoundVotes>();
  private readonly decisionRows = new Map<string, ConsensusDecisionRow | null>();

  constructor(io: ConsensusTxIo) {
    super(io.q);
    this.io = io;
  }

  private get now(): number {
    return this.io.now();
  }

  /** A write: queued when the backend queues, else run now. */
  private async write(sql: string, values: readonly unknown[]): Promise<void> {
    if (this.io.later) this.io.later(sql, values);
    else await this.q(sql, values);
  }

  /**
   * Queue the reads of `spec` for the next round trip (a networked store's BEGIN); a backend
   * without one reads each when it is first asked for.
   */
  load(spec: ConsensusLoad): void {
    const defer = this.io.defer;
    if (!defer) return;
    const id = spec.task_id;
    defer('SELECT * FROM consensus_tasks WHERE task_id = ?', [id], (rows) => this.taskRows.set(id, rows[0] ? toTaskRow(rows[0]) : null));
    if (spec.candidates) defer(CANDIDATES_SQL, [id], (rows) => this.candidateRows.set(id, rows.map(toCandidateRow)));
    if (spec.results) defer(RESULTS_SQL, [id], (rows) => this.resultRows.set(id, rows.map(toResultRow)));
    if (spec.votes_round !== undefined) {
      const round = spec.votes_round;
      defer(ROUND_VOTES_SQL, [id, round], (rows) => this.voteRows.set(`${id}\u0000${round}`, roundVotes(rows)));
    }
    if (spec.decision) defer('SELECT * FROM consensus_decisions WHERE task_id = ?', [id], (rows) => this.decisionRows.set(id, rows[0] ? toDecisionRow(rows[0]) : null));
  }

  async fence(key: StepKey, attempt: number, owner: string | null): Promise<boolean> {
    const id = stepRowId(key.run_id, key.step_id);
    const row = this.io.lockedStep?.(id) ?? (await this.q(`SELECT attempt, status, lease_owner FROM step_executions WHERE id = ?${this.io.lockSuffix}`, [id])).rows[0];
    return !!row && row.status === 'running' && num(row.attempt) === attempt && (owner === null || row.lease_owner === owner);
  }

  override async getTask(taskId: string): Promise<ConsensusTaskRow | undefined> {
    const t = await readThrough(this.taskRows, taskId, async () => (await super.getTask(taskId)) ?? null);
    return t ? { ...t } : undefined;
  }

  override async candidates(taskId: string): Promise<ConsensusCandidateRow[]> {
    return [...(await readThrough(this.candidateRows, taskId, () => super.candidates(taskId)))];
  }

  override async results(taskId: string): Promise<ConsensusResultRow[]> {
    return [...(await readThrough(this.resultRows, taskId, () => super.results(taskId)))];
  }

  private async roundVotes(taskId: string, round: number): Promise<RoundVotes> {
    return readThrough(this.voteRows, `${taskId}\u0000${round}`, async () => roundVotes((await this.q(ROUND_VOTES_SQL, [taskId, round])).rows));
  }

  override async votes(taskId: string, round?: number): Promise<ConsensusVoteRow[]> {
    if (round === undefined) return super.votes(taskId);
    return (await this.roundVotes(taskId, round)).rows.map((r) => ({ ...r }));
  }

  override async getDecision(taskId: string): Promise<ConsensusDecisionRow | undefined> {
    const d = await readThrough(this.decisionRows, taskId, async () => (await super.getDecision(taskId)) ?? null);
    return d ? { ...d } : undefined;
  }

  async insertTask(t: ConsensusTaskRow): Promise<boolean> {
    const r = await this.q(INSERT_TASK_SQL, taskValues(t));
    this.taskRows.delete(t.task_id);
    return r.rowCount === 1;
  }

  async queueTask(t: ConsensusTaskRow): Promise<void> {
    await this.write(INSERT_TASK_SQL, taskValues(t));
    if (this.taskRows.get(t.task_id) === null) this.taskRows.set(t.task_id, { ...t });
  }

  async updateTask(taskId: string, u: ConsensusTaskUpdate): Promise<void> {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const k of TASK_UPDATE_COLUMNS) {
      if (u[k] === undefined) continue;
      sets.push(`${k} = ?`);
      values.push(u[k]);
    }
    if (!sets.length) return;
    const now = this.now;
    sets.push('updated_at = ?');
    values.push(now);
    await this.write(`UPDATE consensus_tasks SET ${sets.join(', ')} WHERE task_id = ?`, [...values, taskId]);
    const t = this.taskRows.get(taskId);
    if (t) {
      for (const k of TASK_UPDATE_COLUMNS) if (u[k] !== undefined) (t as unknown as Record<string, unknown>)[k] = u[k];
      t.updated_at = now;
    }
  }

  async insertCandidate(c: ConsensusCandidateRow): Promise<boolean> {
    const r = await this.q(INSERT_CANDIDATE_SQL, candidateValues(c));
    this.candidateRows.delete(c.task_id);
    return r.rowCount === 1;
  }

  async queueCandidate(c: ConsensusCandidateRow): Promise<void> {
    await this.write(INSERT_CANDIDATE_SQL, candidateValues(c));
    const rows = this.candidateRows.get(c.task_id);
    if (rows && !rows.some((x) => x.proposer_id === c.proposer_id && x.round === c.round)) {
      rows.push({ ...c, output: c.output ?? null });
      rows.sort(candidateOrder);
    }
  }

  async insertResult(v: ConsensusResultRow): Promise<boolean> {
    const r = await this.q(INSERT_RESULT_SQL, resultValues(v));
    this.resultRows.delete(v.task_id);
    return r.rowCount === 1;
  }

  async queueResult(v: ConsensusResultRow): Promise<void> {
    await this.write(INSERT_RESULT_SQL, resultValues(v));
    const rows = this.resultRows.get(v.task_id);
    if (rows && !rows.some((x) => x.candidate_hash === v.candidate_hash && x.verifier_id === v.verifier_id)) {
      rows.push({ ...v });
      rows.sort(resultOrder);
    }
  }

  async insertCommit(v: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'commitment' | 'commit_signature' | 'committed_at'>, sealed?: SealedVote): Promise<boolean> {
    const r = await this.q(INSERT_COMMIT_SQL, commitValues(v, sealed));
    this.voteRows.delete(`${v.task_id}\u0000${v.round}`);
    return r.rowCount === 1;
  }

  async queueCommit(v: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'commitment' | 'commit_signature' | 'committed_at'>, sealed?: SealedVote): Promise<void> {
    await this.write(INSERT_COMMIT_SQL, commitValues(v, sealed));
    const have = this.voteRows.get(`${v.task_id}\u0000${v.round}`);
    if (!have || have.rows.some((x) => x.voter_id === v.voter_id)) return;
    have.rows.push({ ...v, candidate_hash: null, vote: null, salt: null, reveal_signature: null, revealed_at: null, reveal_event_seq: null, reveal_event_hash: null });
    have.rows.sort(voteOrder);
    if (sealed) have.sealed.set(v.voter_id, { ...sealed });
  }

  async reveal(v: RevealRow): Promise<boolean> {
    const r = await this.q(REVEAL_SQL, revealValues(v));
    this.voteRows.delete(`${v.task_id}\u0000${v.round}`);
    return r.rowCount === 1;
  }

  async queueReveal(v: RevealRow): Promise<void> {
    await this.write(REVEAL_SQL, revealValues(v));
    const have = this.voteRows.get(`${v.task_id}\u0000${v.round}`);
    const row = have?.rows.find((x) => x.voter_id === v.voter_id && x.revealed_at === null);
    if (!have || !row) return;
    Object.assign(row, { candidate_hash: v.candidate_hash, vote: v.vote, salt: v.salt, reveal_signature: v.reveal_signature, revealed_at: v.revealed_at, reveal_event_seq: v.reveal_event_seq, reveal_event_hash: v.reveal_event_hash });
    have.sealed.delete(v.voter_id);
  }

  async sealed(taskId: string, round: number, voterId: string): Promise<SealedVote | undefined> {
    const s = (await this.roundVotes(taskId, round)).sealed.get(voterId);
    return s ? { ...s } : undefined;
  }

  async insertDecision(d: ConsensusDecisionRow): Promise<boolean> {
    const r = await this.q(INSERT_DECISION_SQL, decisionValues(d));
    this.decisionRows.delete(d.task_id);
    return r.rowCount === 1;
  }

  async queueDecision(d: ConsensusDecisionRow): Promise<void> {
    await this.write(INSERT_DECISION_SQL, decisionValues(d));
    if (this.decisionRows.get(d.task_id) === null) this.decisionRows.set(d.task_id, { ...d });
  }

  async finalizeDecision(taskId: string, at: number): Promise<boolean> {
    this.decisionRows.delete(taskId);
    return (await this.q(FINALIZE_SQL, [at, taskId])).rowCount === 1;
  }

  async queueFinalize(taskId: string, at: number): Promise<void> {
    await this.write(FINALIZE_SQL, [at, taskId]);
    const d = this.decisionRows.get(taskId);
    if (d && d.finalized_at === null) d.finalized_at = at;
  }

  async addCost(taskId: string, bucket: BudgetBucket, usd: number): Promise<void> {
    if (!(usd > 0)) return;
    await this.write(
      `INSERT INTO consensus_costs (task_id, bucket, usd) VALUES (?, ?, ?)
       ON CONFLICT (task_id, bucket) DO UPDATE SET usd = consensus_costs.usd + excluded.usd`,
      [taskId, bucket, usd],
    );
  }
}

type RevealRow = Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'candidate_hash' | 'vote' | 'salt' | 'reveal_signature' | 'revealed_at' | 'reveal_event_seq' | 'reveal_event_hash'>;

function roundVotes(rows: readonly Row[]): RoundVotes {
  const sealed = new Map<string, SealedVote>();
  for (const r of rows) {
    const s = sealedOf(r.sealed);
    if (s) sealed.set(String(r.voter_id), s);
  }
  return { rows: rows.map(toVoteRow), sealed };
}

const INSERT_TASK_SQL = `INSERT INTO consensus_tasks (task_id, run_id, step_id, task_type, contract, members, status, stage, round, explore_round, round_started_at, reason_code, reason, created_at, expires_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING`;
const taskValues = (t: ConsensusTaskRow): unknown[] => [t.task_id, t.run_id, t.step_id, t.task_type, JSON.stringify(t.contract), JSON.stringify(t.members), t.status, t.stage, t.round, t.explore_round, t.round_started_at, t.reason_code, t.reason, t.created_at, t.expires_at, t.updated_at];

const INSERT_CANDIDATE_SQL = `INSERT INTO consensus_candidates (task_id, proposer_id, round, candidate_hash, output, output_bytes, evidence, cost_usd, signature, event_seq, event_hash, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, proposer_id, round) DO NOTHING`;
const candidateValues = (c: ConsensusCandidateRow): unknown[] => [c.task_id, c.proposer_id, c.round, c.candidate_hash, JSON.stringify(c.output ?? null), c.output_bytes, JSON.stringify(c.evidence), c.cost_usd, c.signature, c.event_seq, c.event_hash, c.created_at];

const INSERT_RESULT_SQL = `INSERT INTO consensus_results (task_id, candidate_hash, verifier_id, policy_id, status, reason_codes, reason, score, evidence, cost_usd, signature, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, candidate_hash, verifier_id) DO NOTHING`;
const resultValues = (v: ConsensusResultRow): unknown[] => [v.task_id, v.candidate_hash, v.verifier_id, v.policy_id, v.status, JSON.stringify(v.reason_codes), v.reason, v.score, JSON.stringify(v.evidence), v.cost_usd, v.signature, v.created_at];

const INSERT_COMMIT_SQL = `INSERT INTO consensus_votes (task_id, round, voter_id, commitment, commit_signature, committed_at, sealed)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, round, voter_id) DO NOTHING`;
const commitValues = (v: Pick<ConsensusVoteRow, 'task_id' | 'round' | 'voter_id' | 'commitment' | 'commit_signature' | 'committed_at'>, sealed?: SealedVote): unknown[] => [v.task_id, v.round, v.voter_id, v.commitment, v.commit_signature, v.committed_at, sealed ? JSON.stringify(sealed) : null];

const REVEAL_SQL = `UPDATE consensus_votes SET candidate_hash = ?, vote = ?, salt = ?, reveal_signature = ?, revealed_at = ?, reveal_event_seq = ?, reveal_event_hash = ?, sealed = NULL
       WHERE task_id = ? AND round = ? AND voter_id = ? AND revealed_at IS NULL`;
const revealValues = (v: RevealRow): unknown[] => [v.candidate_hash, v.vote, v.salt, v.reveal_signature, v.revealed_at, v.reveal_event_seq, v.reveal_event_hash, v.task_id, v.round, v.voter_id];

const INSERT_DECISION_SQL = `INSERT INTO consensus_decisions (task_id, round, candidate_hash, output, tally, quorum, proof, committed_at, finalized_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING`;
const decisionValues = (d: ConsensusDecisionRow): unknown[] => [d.task_id, d.round, d.candidate_hash, JSON.stringify(d.output ?? null), JSON.stringify(d.tally), d.quorum, JSON.stringify(d.proof), d.committed_at, d.finalized_at];
const FINALIZE_SQL = 'UPDATE consensus_decisions SET finalized_at = ? WHERE task_id = ? AND finalized_at IS NULL';

/** What `map` holds for `key`, else `load()`'s value, kept there (null is a value: "read, and there is none"). */
async function readThrough<K, V>(map: Map<K, V>, key: K, load: () => Promise<V>): Promise<V> {
  const held = map.get(key);
  if (held !== undefined) return held;
  const v = await load();
  map.set(key, v);
  return v;
}
