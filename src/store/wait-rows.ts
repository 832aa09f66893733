/** Row mapping for the waits tables (migration 10), shared by both stores. */
import type { Row } from './rows.js';
import type { BufferedEvent, RunSignalRecord, StepWaitRecord, StepWaitStatus } from './wait-types.js';

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toStepWait(r: Row): StepWaitRecord {
  return {
    run_id: r.run_id as string,
    step_id: r.step_id as string,
    kind: r.kind as StepWaitRecord['kind'],
    name: (r.name as string | null) ?? null,
    match: (r.match as string | null) ?? null,
    context_json: (r.context as string | null) ?? null,
    buffer: Boolean(Number(r.buffer)),
    since: Number(r.since),
    wake_at: num(r.wake_at),
    status: r.status as StepWaitStatus,
    event_id: (r.event_id as string | null) ?? null,
    data_json: (r.data as string | null) ?? null,
    resolved_at: num(r.resolved_at),
    created_at: Number(r.created_at),
  };
}

export function toRunSignal(r: Row): RunSignalRecord {
  return {
    seq: Number(r.seq),
    run_id: r.run_id as string,
    name: r.name as string,
    data_json: r.data as string,
    created_at: Number(r.created_at),
    consumed_by: (r.consumed_by as string | null) ?? null,
    consumed_at: num(r.consumed_at),
  };
}

export function toBufferedEvent(r: Row): BufferedEvent {
  return { id: r.id as string, name: r.name as string, source: (r.source as string | null) ?? null, data_json: r.data as string, created_at: Number(r.created_at) };
}
