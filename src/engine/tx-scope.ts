/**
 * One ledger transaction's working set: the run states it read (each written back once), the events
 * it appends (chained and hashed in order) and what it reports to its caller. Every ledger operation
 * opens one, works through it, and flushes it before the transaction commits.
 *
 * @example
 *   const scope = new TxScope(tx, maxEventBytes, chainKey);
 *   scope.emit(await scope.run(runId), EventType.RUN_CANCELLED, null, { reason });
 *   await scope.flush();
 */
import { UserError } from '../core/errors.js';
import { EventType, hashEvent } from '../core/events.js';
import { byteLength, LimitExceededError } from '../core/limits.js';
import type { CommitResult, Completion, EventRow, LedgerTx, RunState, StepKey } from '../store/types.js';

/** The per-transaction working set: run states read once, written once; events appended in order. */
export class TxScope {
  readonly runs = new Map<string, RunState>();
  readonly dirty = new Set<RunState>();
  readonly events: EventRow[] = [];
  /** Steps this transaction's completions made ready, in order. */
  readonly madeReady: StepKey[] = [];
  readonly result: CommitResult = { claimed: [], refused: [], lost: [], finished: [], created: [], messages: [] };
  /** A worker commit's completions, for the store's commit observer (metrics). */
  completions: readonly Completion[] | undefined;
  /** Steps claimed fresh, with when each became ready (queue wait): kept only when the store is observed. */
  claims: Array<{ run_id: string; ready_at: number }> | undefined;
  constructor(
    readonly tx: LedgerTx,
    private readonly maxEventBytes: number,
    private readonly chainKey: Buffer,
  ) {}

  async run(id: string): Promise<RunState> {
    let s = this.runs.get(id);
    if (!s) {
      s = await this.tx.getRunState(id);
      if (!s) throw new UserError('RUN_NOT_FOUND', `run '${id}' not found`, { runId: id });
      this.runs.set(id, s);
    }
    return s;
  }

  emit(state: RunState, type: EventType, stepId: string | null, data: Record<string, unknown>): void {
    const seq = state.event_seq + 1;
    const at = this.tx.now;
    const data_json = fitEvent(type, data, this.maxEventBytes);
    const base = { run_id: state.id, seq, type, step_id: stepId, at, prev_hash: state.event_hash };
    const hash = hashEvent(this.chainKey, base, data_json);
    // Written out rather than spread from `base` (on Node 20 each property added after a spread costs about 0.5 µs).
    this.events.push({ run_id: base.run_id, seq, type, step_id: stepId, at, prev_hash: base.prev_hash, data_json, hash });
    state.event_seq = seq;
    state.event_hash = hash;
    this.dirty.add(state);
  }

  /** A step claimed fresh that became ready at `readyAt` (for the metrics' queue wait). */
  claimedReady(runId: string, readyAt: number): void {
    (this.claims ??= []).push({ run_id: runId, ready_at: readyAt });
  }

  async flush(): Promise<void> {
    for (const s of this.dirty) await this.tx.saveRunState(s);
    if (this.events.length) await this.tx.insertEvents(this.events);
    // Metrics read the flushed work once the transaction has committed (nothing when nobody observes).
    this.tx.observer?.flushed(this.tx, this);
  }
}

/** Step-id lists kept in full in an event that would otherwise be over its limit. */
const LIST_KEPT = 100;

/**
 * An event's data as stored JSON, within `max` bytes. Step-id lists (`ready`, `cancelled`, `reset`)
 * only inform (the step rows are the truth), so an event over the limit keeps the first of them and
 * their count; any other event over the limit is refused, which rolls its transaction back.
 */
export function fitEvent(type: EventType, data: Record<string, unknown>, max: number): string {
  let json = JSON.stringify(data);
  // A UTF-16 unit is at most 3 bytes of UTF-8: short text needs no byte count.
  if (json.length * 3 <= max || byteLength(json) <= max) return json;
  const lists = Object.entries(data).filter((e): e is [string, unknown[]] => Array.isArray(e[1]) && e[1].length > LIST_KEPT);
  if (lists.length) {
    const trimmed: Record<string, unknown> = { ...data };
    for (const [k, v] of lists) {
      trimmed[k] = v.slice(0, LIST_KEPT);
      trimmed[`${k}_total`] = v.length;
    }
    json = JSON.stringify(trimmed);
    if (byteLength(json) <= max) return json;
  }
  throw new LimitExceededError(`the data of a ${type} event`, 'event_payload_bytes', max, byteLength(json));
}
