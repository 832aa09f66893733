/**
 * The activity buffer: every message an agent sent or received, by message_id, with how far its ACKs
 * got. What is not yet acknowledged survives a restart (with a persistence) and `reconcile()` says
 * what to resend. ACK stages only move forward (RECEIVED → READ → a terminal stage); an ACK for a
 * message the buffer never saw is reported to the caller, not stored.
 *
 * @example
 *   const buffer = await ActivityBuffer.open({ maxItems: 1000, persistence: new JSONFilePersistence('activity.json') });
 *   buffer.recordOutgoing(env);
 *   buffer.ack({ ack_for_message_id: env.message_id, ack_stage: 'FULFILLED', error_code: 'ERROR_CODE_UNSPECIFIED', note: '' });
 *   buffer.reconcile({ olderThanMs: 30_000 }); // unacknowledged sends older than 30 s
 *   await buffer.close();
 */
import { ACK_STAGE_NUMBERS, ackStageName, envelopeStateName, errorCodeName, messageTypeName, TERMINAL_ACK_STAGES, type AckStage, type EnvelopeState, type ErrorCode } from './constants.js';
import type { Ack } from './acks.js';
import type { Envelope } from './envelope.js';
import { PersistedState, type PersistenceErrorHandler, type Sw4rmPersistence } from './persistence.js';

/** One message the agent sent ('out') or received ('in'), and its ACK progress. */
export interface ActivityRecord {
  message_id: string;
  direction: 'in' | 'out';
  envelope: Envelope;
  /** When it was recorded (ms). */
  recorded_at: number;
  /** The furthest stage reached; ACK_STAGE_UNSPECIFIED before the first ACK. */
  ack_stage: AckStage;
  error_code: ErrorCode;
  ack_note: string;
  /** When the stage last moved (ms); undefined before the first ACK. */
  acked_at?: number;
  /** Every stage seen, in arrival order (late and repeated ones included). */
  history: Array<{ stage: AckStage; at: number }>;
}

/** What `ack()` did. */
export type AckOutcome =
  | { status: 'applied'; record: ActivityRecord }
  /** Known message, but the stage does not move it forward (a repeat, or late after a terminal). */
  | { status: 'ignored'; record: ActivityRecord; reason: string }
  /** No such message in the buffer: nothing stored. */
  | { status: 'unknown'; ack_for_message_id: string };

export interface ActivityBufferOptions {
  /** Records kept (default 10,000): the oldest acknowledged ones go first; unacknowledged ones stay. */
  maxItems?: number;
  /** Keep the buffer here (see `ActivityBuffer.open`). */
  persistence?: Sw4rmPersistence;
  /** The persistence key (default 'activity'). */
  persistenceKey?: string;
  /** Batch saves: at most one write per this many ms (default 250). */
  saveDelayMs?: number;
  /** Told once when the persistence fails (the buffer then runs in memory). */
  onError?: PersistenceErrorHandler;
  /** Wall clock in ms (default Date.now). */
  now?: () => number;
}

const STAGE_ENVELOPE_STATE: Partial<Record<AckStage, EnvelopeState>> = {
  RECEIVED: 'ENVELOPE_STATE_PENDING',
  READ: 'ENVELOPE_STATE_RUNNING',
  FULFILLED: 'ENVELOPE_STATE_FULFILLED',
  REJECTED: 'ENVELOPE_STATE_REJECTED',
  FAILED: 'ENVELOPE_STATE_FAILED',
  TIMED_OUT: 'ENVELOPE_STATE_TIMED_OUT',
};

const SNAPSHOT_VERSION = 1;

/** True when the record reached a terminal stage (FULFILLED, REJECTED, FAILED, TIMED_OUT). */
export function isAcknowledged(r: Pick<ActivityRecord, 'ack_stage'>): boolean {
  return TERMINAL_ACK_STAGES.has(r.ack_stage);
}

export class ActivityBuffer {
  private readonly records = new Map<string, ActivityRecord>();
  private readonly byToken = new Map<string, string>();
  private readonly maxItems: number;
  private readonly clock: () => number;
  private readonly state: PersistedState | undefined;

  /** An in-memory buffer, or one that saves to `persistence` (prefer `open`, which loads first). */
  constructor(options: ActivityBufferOptions = {}) {
    this.maxItems = Math.max(1, options.maxItems ?? 10_000);
    this.clock = options.now ?? Date.now;
    this.state = options.persistence
      ? new PersistedState(
          {
            persistence: options.persistence,
            key: options.persistenceKey ?? 'activity',
            saveDelayMs: options.saveDelayMs ?? 250,
            ...(options.onError ? { onError: options.onError } : {}),
          },
          () => this.toJSON(),
        )
      : undefined;
  }

  /**
   * A buffer with what its persistence holds loaded. An unreadable persistence is reported through
   * `onError` and the buffer starts empty, in memory.
   */
  static async open(options: ActivityBufferOptions = {}): Promise<ActivityBuffer> {
    const buffer = new ActivityBuffer(options);
    if (buffer.state) buffer.restore(await buffer.state.load());
    return buffer;
  }

  /** False when there is no persistence or it failed (the buffer runs in memory). */
  get persistent(): boolean {
    return this.state?.persistent ?? false;
  }

  get size(): number {
    return this.records.size;
  }

  /** Record a message this agent sends (before sending it, so a crash in between is reconciled). */
  recordOutgoing(envelope: Envelope): ActivityRecord {
    return this.record('out', envelope);
  }

  /** Record a message this agent received. */
  recordIncoming(envelope: Envelope): ActivityRecord {
    return this.record('in', envelope);
  }

  /**
   * Apply an ACK to the message it names. Stages only move forward; a terminal stage is final. An ACK
   * for a message not in the buffer changes nothing and says so (`status: 'unknown'`).
   */
  ack(ack: Pick<Ack, 'ack_for_message_id' | 'ack_stage'> & Partial<Pick<Ack, 'error_code' | 'note'>>): AckOutcome {
    const rec = this.records.get(ack.ack_for_message_id);
    if (!rec) return { status: 'unknown', ack_for_message_id: ack.ack_for_message_id };
    const stage = ackStageName(ack.ack_stage);
    if (!stage || stage === 'ACK_STAGE_UNSPECIFIED') return { status: 'ignored', record: rec, reason: `${String(ack.ack_stage)} is not an ACK stage` };
    const at = this.clock();
    rec.history.push({ stage, at });
    let outcome: AckOutcome;
    if (isAcknowledged(rec)) {
      outcome = { status: 'ignored', record: rec, reason: `already ${rec.ack_stage}` };
    } else if (!TERMINAL_ACK_STAGES.has(stage) && ACK_STAGE_NUMBERS[stage] <= ACK_STAGE_NUMBERS[rec.ack_stage]) {
      outcome = { status: 'ignored', record: rec, reason: `already ${rec.ack_stage}` };
    } else {
      rec.ack_stage = stage;
      rec.error_code = errorCodeName(ack.error_code ?? 'ERROR_CODE_UNSPECIFIED') ?? 'ERROR_CODE_UNSPECIFIED';
      rec.ack_note = ack.note ?? '';
      rec.acked_at = at;
      const envState = STAGE_ENVELOPE_STATE[stage];
      if (envState) rec.envelope = { ...rec.envelope, state: envState };
      outcome = { status: 'applied', record: rec };
    }
    this.changed();
    return outcome;
  }

  get(messageId: string): ActivityRecord | undefined {
    return this.records.get(messageId);
  }

  /** The latest record carrying this idempotency token (a retry of the same logical message). */
  findByIdempotencyToken(token: string): ActivityRecord | undefined {
    const id = token ? this.byToken.get(token) : undefined;
    return id === undefined ? undefined : this.records.get(id);
  }

  /** Records not yet at a terminal stage, oldest first (one direction, or both). */
  unacked(direction?: 'in' | 'out'): ActivityRecord[] {
    return [...this.records.values()].filter((r) => !isAcknowledged(r) && (direction === undefined || r.direction === direction));
  }

  /** The `n` most recent records, oldest first. */
  recent(n = 50): ActivityRecord[] {
    const all = [...this.records.values()];
    return n <= 0 ? [] : all.slice(-n);
  }

  /**
   * What needs resending (after a restart, or periodically): messages this agent sent that are not
   * acknowledged and were recorded at least `olderThanMs` ago (default 0: all of them).
   */
  reconcile(options: { olderThanMs?: number; now?: number } = {}): ActivityRecord[] {
    const cutoff = (options.now ?? this.clock()) - (options.olderThanMs ?? 0);
    return this.unacked('out').filter((r) => r.recorded_at <= cutoff);
  }

  /** Write pending changes now. */
  async flush(): Promise<void> {
    await this.state?.flush();
  }

  /** Flush; the buffer keeps working in memory afterwards. */
  async close(): Promise<void> {
    await this.state?.close();
  }

  /**
   * The buffer as JSON: what the persistence stores. Payloads (base64) are kept for the records not
   * yet acknowledged, the ones a restart may resend; an acknowledged record is kept without its
   * payload (its `content_length` still says how long it was), which keeps a busy buffer's saves small.
   */
  toJSON(): { version: number; records: unknown[] } {
    return {
      version: SNAPSHOT_VERSION,
      records: [...this.records.values()].map((r) => ({ ...r, envelope: { ...r.envelope, payload: isAcknowledged(r) ? '' : r.envelope.payload.toString('base64') } })),
    };
  }

  private record(direction: 'in' | 'out', envelope: Envelope): ActivityRecord {
    const id = envelope.message_id;
    if (typeof id !== 'string' || id === '') throw new TypeError('ActivityBuffer: an envelope without a message_id cannot be recorded');
    const existing = this.records.get(id);
    if (existing) return existing;
    const rec: ActivityRecord = {
      message_id: id,
      direction,
      envelope,
      recorded_at: this.clock(),
      ack_stage: 'ACK_STAGE_UNSPECIFIED',
      error_code: 'ERROR_CODE_UNSPECIFIED',
      ack_note: '',
      history: [],
    };
    this.records.set(id, rec);
    if (envelope.idempotency_token) this.byToken.set(envelope.idempotency_token, id);
    this.prune();
    this.changed();
    return rec;
  }

  /** Over `maxItems`: drop the oldest acknowledged records; unacknowledged ones are never dropped. */
  private prune(): void {
    let excess = this.records.size - this.maxItems;
    if (excess <= 0) return;
    for (const [id, r] of this.records) {
      if (excess <= 0) break;
      if (!isAcknowledged(r)) continue;
      this.records.delete(id);
      const token = r.envelope.idempotency_token;
      if (token && this.byToken.get(token) === id) this.byToken.delete(token);
      excess -= 1;
    }
  }

  private changed(): void {
    this.state?.changed();
  }

  private restore(doc: unknown): void {
    if (doc === undefined || doc === null) return;
    const d = doc as { version?: unknown; records?: unknown };
    if (d.version !== SNAPSHOT_VERSION || !Array.isArray(d.records)) return;
    for (const raw of d.records as Array<Record<string, unknown>>) {
      const rec = fromJsonRecord(raw);
      if (!rec) continue;
      this.records.set(rec.message_id, rec);
      if (rec.envelope.idempotency_token) this.byToken.set(rec.envelope.idempotency_token, rec.message_id);
    }
  }
}

function fromJsonRecord(raw: Record<string, unknown>): ActivityRecord | undefined {
  const env = raw.envelope as Record<string, unknown> | undefined;
  if (!env || typeof raw.message_id !== 'string' || (raw.direction !== 'in' && raw.direction !== 'out')) return undefined;
  const envelope = {
    ...(env as unknown as Envelope),
    payload: Buffer.from(typeof env.payload === 'string' ? env.payload : '', 'base64'),
    message_type: messageTypeName(env.message_type) ?? 'MESSAGE_TYPE_UNSPECIFIED',
    state: envelopeStateName(env.state) ?? 'ENVELOPE_STATE_UNSPECIFIED',
  };
  return {
    message_id: raw.message_id,
    direction: raw.direction,
    envelope,
    recorded_at: Number(raw.recorded_at) || 0,
    ack_stage: ackStageName(raw.ack_stage) ?? 'ACK_STAGE_UNSPECIFIED',
    error_code: errorCodeName(raw.error_code) ?? 'ERROR_CODE_UNSPECIFIED',
    ack_note: typeof raw.ack_note === 'string' ? raw.ack_note : '',
    ...(typeof raw.acked_at === 'number' ? { acked_at: raw.acked_at } : {}),
    history: Array.isArray(raw.history) ? (raw.history as ActivityRecord['history']) : [],
  };
}
