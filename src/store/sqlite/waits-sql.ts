/**
 * SQLite statements for durable sleeps, waits and signals (migration 10). SQLite has one writer at a
 * time (BEGIN IMMEDIATE), so the transaction that records an event and the one that parks a wait for
 * it never interleave: no locks are needed beyond that.
 */
import type Database from 'better-sqlite3';
import type { Row } from '../rows.js';
import type { StepKey } from '../types.js';
import type { BufferedEvent, RunSignalRecord, StepWaitRecord, StepWaitStatus, WaitRequest, WaitsTx } from '../wait-types.js';
import { toBufferedEvent, toRunSignal, toStepWait } from '../wait-rows.js';

type Stmt = (sql: string) => Database.Statement;

export class SqliteWaitsTx implements WaitsTx {
  constructor(
    private readonly stmt: Stmt,
    private readonly now: number,
  ) {}

  async putWait(key: StepKey, req: WaitRequest): Promise<StepWaitRecord> {
    this.stmt(
      `INSERT INTO step_waits (run_id, step_id, kind, name, match, context, buffer, since, wake_at, status, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?)
       ON CONFLICT (run_id, step_id) DO UPDATE SET kind = excluded.kind, name = excluded.name, match = excluded.match, context = excluded.context,
         buffer = excluded.buffer, since = excluded.since, wake_at = excluded.wake_at, status = 'waiting', event_id = NULL, data = NULL,
         resolved_at = NULL, created_at = excluded.created_at
       WHERE step_waits.status = 'cancelled'`,
    ).run(key.run_id, key.step_id, req.kind, req.name, req.match, req.context_json, req.buffer ? 1 : 0, req.since, req.wake_at, this.now);
    return (await this.getWait(key)) as StepWaitRecord;
  }

  async getWait(key: StepKey): Promise<StepWaitRecord | undefined> {
    return getStepWait(this.stmt, key.run_id, key.step_id);
  }

  async resolveWait(key: StepKey, status: Exclude<StepWaitStatus, 'waiting'>, delivery?: { event_id: string; data_json: string }): Promise<boolean> {
    return (
      this.stmt(`UPDATE step_waits SET status = ?, event_id = ?, data = ?, resolved_at = ? WHERE run_id = ? AND step_id = ? AND status = 'waiting'`).run(
        status, delivery?.event_id ?? null, delivery?.data_json ?? null, this.now, key.run_id, key.step_id,
      ).changes === 1
    );
  }

  async openWaits(kind: 'event' | 'signal', name: string, runId?: string): Promise<StepWaitRecord[]> {
    const rows = runId === undefined
      ? this.stmt(`SELECT * FROM step_waits WHERE kind = ? AND name = ? AND status = 'waiting' ORDER BY created_at, run_id, step_id`).all(kind, name)
      : this.stmt(`SELECT * FROM step_waits WHERE kind = ? AND name = ? AND status = 'waiting' AND run_id = ? ORDER BY created_at, step_id`).all(kind, name, runId);
    return (rows as Row[]).map(toStepWait);
  }

  async dueWaits(now: number, limit: number): Promise<StepWaitRecord[]> {
    const rows = this.stmt(`SELECT * FROM step_waits WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= ? ORDER BY wake_at LIMIT ?`).all(now, limit);
    return (rows as Row[]).map(toStepWait);
  }

  async lockEventName(): Promise<void> {
    // One writer at a time: nothing to lock.
  }

  async bufferedEvents(name: string, since: number, runId: string, limit: number): Promise<BufferedEvent[]> {
    const rows = this.stmt(
      `SELECT id, name, source, data, created_at FROM emitted_events e WHERE name = ? AND created_at >= ?
         AND NOT EXISTS (SELECT 1 FROM step_waits w WHERE w.run_id = ? AND w.event_id = e.id)
       ORDER BY created_at, id LIMIT ?`,
    ).all(name, since, runId, limit);
    return (rows as Row[]).map(toBufferedEvent);
  }

  async cancelRunWaits(runId: string): Promise<void> {
    this.stmt(`UPDATE step_waits SET status = 'cancelled', resolved_at = ? WHERE run_id = ? AND status = 'waiting'`).run(this.now, runId);
  }

  async insertSignal(runId: string, name: string, dataJson: string): Promise<number> {
    return Number(this.stmt(`INSERT INTO run_signals (run_id, name, data, created_at) VALUES (?, ?, ?, ?)`).run(runId, name, dataJson, this.now).lastInsertRowid);
  }

  async takeSignal(runId: string, name: string, stepId: string): Promise<RunSignalRecord | undefined> {
    const row = this.stmt(
      `UPDATE run_signals SET consumed_by = ?, consumed_at = ?
       WHERE seq = (SELECT seq FROM run_signals WHERE run_id = ? AND name = ? AND consumed_by IS NULL ORDER BY seq LIMIT 1) RETURNING *`,
    ).get(stepId, this.now, runId, name) as Row | undefined;
    return row ? toRunSignal(row) : undefined;
  }
}

export function getStepWait(stmt: Stmt, runId: string, stepId: string): StepWaitRecord | undefined {
  const row = stmt('SELECT * FROM step_waits WHERE run_id = ? AND step_id = ?').get(runId, stepId) as Row | undefined;
  return row ? toStepWait(row) : undefined;
}

export function listRunSignals(stmt: Stmt, runId: string): RunSignalRecord[] {
  return (stmt('SELECT * FROM run_signals WHERE run_id = ? ORDER BY seq').all(runId) as Row[]).map(toRunSignal);
}

/** The earliest wake time after `after` of a parked sleep or wait. */
export function nextWakeAt(stmt: Stmt, after: number): number | null {
  return stmt(`SELECT MIN(wake_at) FROM step_waits WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at > ?`).pluck().get(after) as number | null;
}
