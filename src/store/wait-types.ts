/**
 * The store's view of durable sleeps, waits and signals (migration 10): one registration row per
 * sleep or wait step, written in the transaction that parks the step, and the signals sent to runs.
 */
import type { StepKey } from './types.js';

/** Where a registration stands: `waiting` (parked), `delivered` (an event or signal satisfied it), `due` (its time came), `cancelled` (its step no longer waits). */
export type StepWaitStatus = 'waiting' | 'delivered' | 'due' | 'cancelled';

/** What a sleep or wait step asks for when it parks (the step runner builds it; the ledger records it). */
export interface WaitRequest {
  kind: 'sleep' | 'event' | 'signal';
  /** The event or signal name (null for a sleep). */
  name: string | null;
  /** The `match:` condition, evaluated against `context` plus `event` when an event arrives. */
  match: string | null;
  /** What `match` reads of the run (trigger, variables, steps), resolved when the wait began (JSON). */
  context_json: string | null;
  /** Events recorded since `since` count too (`buffer: true`). */
  buffer: boolean;
  /** When the run was created: the earliest event a buffered wait accepts. */
  since: number;
  /** The sleep's end or the wait's timeout (ms since the epoch); null: no timeout. */
  wake_at: number | null;
}

/** A registration as stored. */
export interface StepWaitRecord extends StepKey, WaitRequest {
  status: StepWaitStatus;
  /** The event id or signal sequence number that satisfied it. */
  event_id: string | null;
  /** The delivered event's or signal's data (JSON). */
  data_json: string | null;
  resolved_at: number | null;
  created_at: number;
}

/** A signal sent to a run (`swarm runs signal`, `POST /api/v1/runs/{id}/signals/{name}`). */
export interface RunSignalRecord {
  seq: number;
  run_id: string;
  name: string;
  data_json: string;
  created_at: number;
  /** The wait step that consumed it, or null while it is kept for one. */
  consumed_by: string | null;
  consumed_at: number | null;
}

/** An emitted event a buffered wait may take. */
export interface BufferedEvent {
  id: string;
  name: string;
  source: string | null;
  data_json: string;
  created_at: number;
}

/** The waits part of a ledger transaction (`LedgerTx.waits()`). */
export interface WaitsTx {
  /**
   * Record a registration unless one is there (a `cancelled` one is replaced: the step waits anew).
   * Returns the registration as it now is.
   */
  putWait(key: StepKey, req: WaitRequest): Promise<StepWaitRecord>;
  getWait(key: StepKey): Promise<StepWaitRecord | undefined>;
  /** Move a registration from `waiting` to another status (with what satisfied it); false if it was not waiting. */
  resolveWait(key: StepKey, status: Exclude<StepWaitStatus, 'waiting'>, delivery?: { event_id: string; data_json: string }): Promise<boolean>;
  /** Open waits for an event name (every run) or a signal name (one run), oldest first. On PostgreSQL they are locked. */
  openWaits(kind: 'event' | 'signal', name: string, runId?: string): Promise<StepWaitRecord[]>;
  /** Waiting registrations whose wake time has come, earliest first (locked, skipping rows another transaction holds). */
  dueWaits(now: number, limit: number): Promise<StepWaitRecord[]>;
  /**
   * Serialise the transactions that record an event of this name with those that start a buffered
   * wait for it (PostgreSQL: an advisory lock until commit; SQLite has one writer anyway).
   */
  lockEventName(name: string): Promise<void>;
  /** Events of this name recorded at or after `since` and not yet taken by a wait of `runId`, oldest first. */
  bufferedEvents(name: string, since: number, runId: string, limit: number): Promise<BufferedEvent[]>;
  /** Mark every open registration of the run cancelled (its run was cancelled or failed). */
  cancelRunWaits(runId: string): Promise<void>;
  insertSignal(runId: string, name: string, dataJson: string): Promise<number>;
  /** The oldest signal of this name kept for the run, marked consumed by `stepId`; undefined when none is kept. */
  takeSignal(runId: string, name: string, stepId: string): Promise<RunSignalRecord | undefined>;
}
