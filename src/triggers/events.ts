/**
 * Events that start runs: what an event looks like to the run it starts (its trigger data), how an
 * event trigger's `filter` is decided, and the checks on a custom event's name and id. Pure: the
 * ledger applies it inside the transaction that changes a run's state (built-in events) or records a
 * custom event, so a triggered run exists exactly when its event does.
 *
 * @example
 *   # workflow.yaml of a workflow started when an `orders` run fails with a big total
 *   trigger: { type: event, on: run.failed, source: orders, filter: "trigger.run.trigger.total > 100" }
 *
 *   await swarm.emitEvent('order.paid', { order: 42, total: 130 }, { id: 'evt-42' });
 */
import { UserError } from '../core/errors.js';
import { evaluate, parseCondition, type Condition } from '../core/condition.js';
import { BUILTIN_EVENTS } from './trigger-spec.js';

/** What a triggered run sees as `trigger`: the event. */
export interface TriggerEvent {
  /** Unique per occurrence: `<run id>:<event seq>` for built-in events, the emitter's id (or a new one) for custom events. */
  id: string;
  /** `run.completed`, `run.failed`, `approval.requested`, or a custom name. */
  name: string;
  /** The workflow whose run raised it (built-in events), or what the emitter named (custom); null when none. */
  source: string | null;
  /** When it happened (ISO 8601, UTC). */
  at: string;
  /** How many event-triggered runs led to it (1 for an event of a run nobody's event started); runs stop starting past MAX_EVENT_DEPTH. */
  depth: number;
  /**
   * The workflows of the event-started runs that led to the event, oldest first (empty for an event of
   * a run nobody's event started, and for custom events). A workflow in it is not started again by the
   * event: without this, two listeners with no `source` would start each other 2^depth times.
   */
  chain?: string[];
  /** Built-in events: the run the event is about. */
  run?: { id: string; workflow: string; version: string; status: string; error: string | null; step: string | null };
  /** approval.requested: the step that waits, and why. */
  step?: string;
  reason?: string;
  /** Custom events: what the emitter sent. */
  data?: unknown;
}

/**
 * How deep a chain of event-triggered runs may go (A's completion starts B, whose completion starts
 * C, …): a workflow triggered by its own events would otherwise start runs forever. Past it, the
 * event starts nothing and the source run's log says so.
 */
export const MAX_EVENT_DEPTH = 10;

/** The longest custom event id accepted: it is part of idempotency keys. */
export const MAX_EVENT_ID_LENGTH = 200;

/** An event name: dot-separated lower-case words, like `order.paid` (the rule `trigger.on` follows). */
export const EVENT_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

/** Name spaces Swarm raises events in: a custom event may not pose as one of them. */
export const RESERVED_EVENT_PREFIXES = ['run.', 'step.', 'approval.', 'swarm.'] as const;

/** The idempotency key of the run an event trigger starts for an event: one run per (event, trigger), whoever races. */
export function eventRunKey(eventId: string, triggerId: string): string {
  return `event:${eventId}:${triggerId}`;
}

/** Refuse a custom event name that is malformed or Swarm's own (UserError EVENT_NAME_INVALID, naming the rule). */
export function checkCustomEventName(name: unknown): string {
  if (typeof name !== 'string' || !EVENT_NAME.test(name) || name.length > 200) {
    throw new UserError('EVENT_NAME_INVALID', `event name ${JSON.stringify(name)} is not valid: dot-separated lower-case words such as order.paid`, { field: 'name' });
  }
  if ((BUILTIN_EVENTS as readonly string[]).includes(name) || RESERVED_EVENT_PREFIXES.some((p) => name.startsWith(p))) {
    throw new UserError('EVENT_NAME_RESERVED', `event name '${name}' is Swarm's own (${RESERVED_EVENT_PREFIXES.map((p) => `${p}*`).join(', ')} are raised by Swarm, never emitted); choose another, such as order.paid`, { field: 'name' });
  }
  return name;
}

/** Refuse an event id that could not be a key: 1 to 200 printable characters without spaces. */
export function checkEventId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_EVENT_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id)) {
    throw new UserError('EVENT_ID_INVALID', `event ${field} must be 1 to ${MAX_EVENT_ID_LENGTH} printable characters without spaces (got ${JSON.stringify(typeof id === 'string' && id.length > 40 ? `${id.slice(0, 40)}…` : id)})`, { field });
  }
  return id;
}

const parsed = new Map<string, Condition>();

/**
 * Does an event trigger's `filter` let the event through? No filter: yes. The filter sees the event as
 * `trigger` (`trigger.run.status`, `trigger.data.total`). Throws when the filter cannot be parsed (it
 * was checked at registration, so only an older registration can get here).
 */
export function filterPasses(filter: unknown, event: TriggerEvent): boolean {
  if (filter === undefined || filter === null || filter === '') return true;
  const text = typeof filter === 'string' ? filter : JSON.stringify(filter);
  let ast = parsed.get(text);
  if (!ast) {
    ast = parseCondition(text);
    // Filters are few (one per event trigger): the cache cannot grow past the registered ones by much.
    if (parsed.size > 1000) parsed.clear();
    parsed.set(text, ast);
  }
  return Boolean(evaluate(ast, { trigger: event }));
}

function asEvent(trigger: unknown): Partial<TriggerEvent> | null {
  const t = trigger as Partial<TriggerEvent> | null;
  const isEvent = t !== null && typeof t === 'object' && typeof t.id === 'string' && typeof t.name === 'string' && typeof t.at === 'string' && typeof t.depth === 'number';
  return isEvent ? t : null;
}

/** The depth of an event raised by a run whose trigger data is `trigger` (an event, if an event started it). */
export function depthAfter(trigger: unknown): number {
  const t = asEvent(trigger);
  return t ? Math.max(1, Math.floor(t.depth as number)) + 1 : 1;
}

/**
 * The chain of an event raised by a run of `workflow` whose trigger data is `trigger`: the chain of
 * the event that started the run plus `workflow`, or empty when no event started it. An event from
 * before chains were recorded counts as a chain of its own workflow only.
 *
 * @example
 *   chainAfter({ id: 'r1:5', name: 'run.completed', at: '…', depth: 1, chain: ['a'] }, 'b') // ['a', 'b']
 *   chainAfter(null, 'a') // []
 */
export function chainAfter(trigger: unknown, workflow: string): string[] {
  const t = asEvent(trigger);
  if (!t) return [];
  const before = Array.isArray(t.chain) ? t.chain.filter((w): w is string => typeof w === 'string') : [];
  return [...before, workflow];
}
