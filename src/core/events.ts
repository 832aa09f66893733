import { createHash } from 'node:crypto';

/** Every event type a run's log can hold. */
export const EventType = {
  RUN_CREATED: 'RUN_CREATED',
  RUN_STARTED: 'RUN_STARTED',
  RUN_COMPLETED: 'RUN_COMPLETED',
  RUN_FAILED: 'RUN_FAILED',
  RUN_CANCELLED: 'RUN_CANCELLED',
  RUN_RETRIED: 'RUN_RETRIED',
  STEP_STARTED: 'STEP_STARTED',
  STEP_COMPLETED: 'STEP_COMPLETED',
  STEP_FAILED: 'STEP_FAILED',
  STEP_RETRY_SCHEDULED: 'STEP_RETRY_SCHEDULED',
  STEP_SKIPPED: 'STEP_SKIPPED',
  STEP_CANCELLED: 'STEP_CANCELLED',
  STEP_RELEASED: 'STEP_RELEASED',
  STEP_WAITING: 'STEP_WAITING',
  APPROVAL_DECIDED: 'APPROVAL_DECIDED',
  HANDLER_LOG: 'HANDLER_LOG',
  HANDLER_STARTED_RUN: 'HANDLER_STARTED_RUN',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** One entry of a run's append-only log. `hash` covers every other field and the previous hash. */
export interface RunEvent {
  run_id: string;
  seq: number;
  type: EventType;
  step_id: string | null;
  data: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  at: number;
  prev_hash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** The hash of an event given its fields; data is hashed as the exact JSON text that is stored. */
export function hashEvent(e: { run_id: string; seq: number; type: string; step_id: string | null; at: number; prev_hash: string }, dataJson: string): string {
  return createHash('sha256')
    .update(`${e.prev_hash}\n${e.run_id}\n${e.seq}\n${e.type}\n${e.step_id ?? ''}\n${e.at}\n${dataJson}`)
    .digest('hex');
}

/** A digest of a step's outputs, recorded in STEP_COMPLETED so verify can check the checkpoint too. */
export function digestJson(json: string): string {
  return createHash('sha256').update(json).digest('hex');
}

export interface ChainProblem {
  seq: number;
  problem: string;
}

/**
 * Check a run's events: sequence numbers 1..n without gaps, each `prev_hash` equal to the hash of the
 * event before, each `hash` recomputed from the stored fields.
 */
export function verifyChain(events: ReadonlyArray<RunEvent & { data_json: string }>): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let prev = GENESIS_HASH;
  events.forEach((e, i) => {
    if (e.seq !== i + 1) problems.push({ seq: e.seq, problem: `expected sequence ${i + 1}, found ${e.seq}` });
    if (e.prev_hash !== prev) problems.push({ seq: e.seq, problem: 'prev_hash does not match the previous event' });
    const h = hashEvent(e, e.data_json);
    if (h !== e.hash) problems.push({ seq: e.seq, problem: 'hash does not match the event contents' });
    prev = e.hash;
  });
  return problems;
}
