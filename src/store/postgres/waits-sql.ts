/**
 * PostgreSQL statements for durable sleeps, waits and signals (migration 10). Under READ COMMITTED a
 * transaction recording an event and one parking a buffered wait for it could each miss the other's
 * uncommitted row; both take an advisory lock on the event's name first, so the second sees the first.
 * Open waits are locked when read (one delivery each); due waits with SKIP LOCKED (workers share them).
 */
import type { Row } from '../rows.js';
import type { StepKey } from '../types.js';
import type { BufferedEvent, RunSignalRecord, StepWaitRecord, StepWaitStatus, WaitRequest, WaitsTx } from '../wait-types.js';
import { toBufferedEvent, toRunSignal, toStepWait } from '../wait-rows.js';

type Query = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

export class PgWaitsTx implements WaitsTx {
  constructor(
    private readonly q: Query,
    private readonly now: number,
  ) {}

  async putWait(key: StepKey, req: WaitRequest): Promise<StepWaitRecord> {
    await this.q(
      `INSERT INTO step_waits (run_id, step_id, kind, name, match, context, buffer, since, wake_at, status, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', $10)
       ON CONFLICT (run_id, step_id) DO UPDATE SET kind = excluded.kind, name = excluded.name, match = excluded.match, context = excluded.context,
         buffer = excluded.buffer, since = excluded.since, wake_at = excluded.wake_at, status = 'waiting', event_id = NULL, data = NULL,
         resolved_at = NULL, created_at = excluded.created_at
       WHERE step_waits.status = 'cancelled'`,
      [key.run_id, key.step_id, req.kind, req.name, req.match, req.context_json, req.buffer ? 1 : 0, req.since, req.wake_at, this.now],
    );
    return (await this.getWait(key)) as StepWaitRecord;
  }

  async getWait(key: StepKey): Promise<StepWaitRecord | undefined> {
    const row = (await this.q('SELECT * FROM step_waits WHERE run_id = $1 AND step_id = $2', [key.run_id, key.step_id])).rows[0];
    return row ? toStepWait(row) : undefined;
  }

  async resolveWait(key: StepKey, status: Exclude<StepWaitStatus, 'waiting'>, delivery?: { event_id: string; data_json: string }): Promise<boolean> {
    const r = await this.q(`UPDATE step_waits SET status = $1, event_id = $2, data = $3, resolved_at = $4 WHERE run_id = $5 AND step_id = $6 AND status = 'waiting'`, [
      status, delivery?.event_id ?? null, delivery?.data_json ?? null, this.now, key.run_id, key.step_id,
    ]);
    return r.rowCount === 1;
  }

  async openWaits(kind: 'event' | 'signal', name: string, runId?: string): Promise<StepWaitRecord[]> {
    const r = runId === undefined
      ? await this.q(`SELECT * FROM step_waits WHERE kind = $1 AND name = $2 AND status = 'waiting' ORDER BY created_at, run_id, step_id FOR UPDATE`, [kind, name])
      : await this.q(`SELECT * FROM step_waits WHERE kind = $1 AND name = $2 AND status = 'waiting' AND run_id = $3 ORDER BY created_at, step_id FOR UPDATE`, [kind, name, runId]);
    return r.rows.map(toStepWait);
  }

  async dueWaits(now: number, limit: number): Promise<StepWaitRecord[]> {
    const r = await this.q(
      `SELECT * FROM step_waits WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= $1 ORDER BY wake_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [now, limit],
    );
    return r.rows.map(toStepWait);
  }

  async lockEventName(name: string): Promise<void> {
    await this.q(`SELECT pg_advisory_xact_lock(hashtext('swarm.wait_event'), hashtext($1))`, [name]);
  }

  async bufferedEvents(name: string, since: number, runId: string, limit: number): Promise<BufferedEvent[]> {
    const r = await this.q(
      `SELECT id, name, source, data, created_at FROM emitted_events e WHERE name = $1 AND created_at >= $2
         AND NOT EXISTS (SELECT 1 FROM step_waits w WHERE w.run_id = $3 AND w.event_id = e.id)
       ORDER BY created_at, id LIMIT $4`,
      [name, since, runId, limit],
    );
    return r.rows.map(toBufferedEvent);
  }

  async cancelRunWaits(runId: string): Promise<void> {
    await this.q(`UPDATE step_waits SET status = 'cancelled', resolved_at = $1 WHERE run_id = $2 AND status = 'waiting'`, [this.now, runId]);
  }

  async insertSignal(runId: string, name: string, dataJson: string): Promise<number> {
    const r = await this.q(`INSERT INTO run_signals (run_id, name, data, created_at) VALUES ($1, $2, $3, $4) RETURNING seq`, [runId, name, dataJson, this.now]);
    return Number(r.rows[0]?.seq);
  }

  async takeSignal(runId: string, name: string, stepId: string): Promise<RunSignalRecord | undefined> {
    const r = await this.q(
      `UPDATE run_signals SET consumed_by = $1, consumed_at = $2
       WHERE seq = (SELECT seq FROM run_signals WHERE run_id = $3 AND name = $4 AND consumed_by IS NULL ORDER BY seq LIMIT 1 FOR UPDATE) RETURNING *`,
      [stepId, this.now, runId, name],
    );
    return r.rows[0] ? toRunSignal(r.rows[0]) : undefined;
  }
}

/** Store-level reads (no transaction). */
export const WAIT_READS = {
  getStepWait: 'SELECT * FROM step_waits WHERE run_id = $1 AND step_id = $2',
  listRunSignals: 'SELECT * FROM run_signals WHERE run_id = $1 ORDER BY seq',
  nextWakeAt: `SELECT MIN(wake_at) AS w FROM step_waits WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at > $1`,
} as const;
