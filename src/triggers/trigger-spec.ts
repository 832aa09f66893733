import { parseCondition } from '../core/condition.js';
import { NAME_PATTERN } from '../core/manifest/agent.js';
import { findReferences } from '../core/template.js';
import { parseScheduleSpec } from './schedule.js';
import { parseWebhookScheme } from './webhook-scheme.js';

/** The kinds of `trigger:` a workflow may declare. `manual` is the default. */
export const TRIGGER_TYPES = ['manual', 'webhook', 'schedule', 'event'] as const;
export type TriggerType = (typeof TRIGGER_TYPES)[number];

/** Events Swarm raises itself; any other name is a custom event (`swarm events emit`). */
export const BUILTIN_EVENTS = ['run.completed', 'run.failed', 'approval.requested'] as const;

/** A webhook path: what follows `/webhooks/` in the URL (letters, digits, `-`, `_`, `/`). */
const WEBHOOK_PATH = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/;
/** An event name: dot-separated lower-case words, like `order.paid`. */
const EVENT_NAME = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/;

const KEYS: Record<TriggerType, readonly string[]> = {
  manual: ['type'],
  webhook: ['type', 'path', 'secret', 'scheme', 'auth'],
  // The schedule's own keys are checked by parseScheduleSpec.
  schedule: [],
  event: ['type', 'on', 'source', 'filter'],
};

/** One problem of a `trigger:` block, with the YAML path of the value it is about (for its line). */
export interface TriggerProblem {
  path: Array<string | number>;
  field: string;
  problem: string;
}

/**
 * Check a workflow's `trigger:` block completely at registration, so a trigger that could never
 * fire is refused with its file and line instead of being stored and silently ignored. Returns
 * every problem found (an empty list when the trigger is valid).
 *
 * @example
 *   checkTrigger({ type: 'webhook', path: 'orders' })
 *   // [{ field: 'trigger.secret', problem: 'is required: … or write auth: none …', path: ['trigger'] }]
 */
export function checkTrigger(raw: unknown): TriggerProblem[] {
  const problems: TriggerProblem[] = [];
  const add = (sub: Array<string | number>, problem: string): void => {
    const path = ['trigger', ...sub];
    problems.push({ path, field: path.join('.'), problem });
  };
  if (raw === undefined) return problems;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    add([], 'must be a mapping such as {type: manual}');
    return problems;
  }
  const t = raw as Record<string, unknown>;
  const type = t.type as TriggerType;
  if (!(TRIGGER_TYPES as readonly string[]).includes(type)) return problems; // the schema check names it
  if (type === 'schedule') {
    const r = parseScheduleSpec(t);
    return r.ok ? problems : r.problems.map((p) => ({ path: [...p.path], field: p.field, problem: p.problem }));
  }
  for (const k of Object.keys(t)) {
    if (!KEYS[type].includes(k)) add([k], `is not an option of a ${type} trigger (options: ${KEYS[type].join(', ')})`);
  }
  if (type === 'webhook') checkWebhook(t, add);
  if (type === 'event') checkEvent(t, add);
  return problems;
}

function checkWebhook(t: Record<string, unknown>, add: (sub: Array<string | number>, problem: string) => void): void {
  if (t.path === undefined) add([], 'a webhook trigger needs a path, such as path: orders (it is received at POST /webhooks/orders)');
  else if (typeof t.path !== 'string' || !WEBHOOK_PATH.test(t.path)) {
    add(['path'], `must be lower-case letters, digits, '-' and '_', in parts separated by '/', such as orders or shop/orders (got ${JSON.stringify(t.path)})`);
  }
  if (t.auth !== undefined && t.auth !== 'none' && t.auth !== 'signature') add(['auth'], `must be 'signature' (the default) or 'none' (got ${JSON.stringify(t.auth)})`);
  const secrets = t.secret === undefined ? [] : Array.isArray(t.secret) ? t.secret : [t.secret];
  if (t.auth === 'none') {
    if (secrets.length) add(['auth'], "is 'none', yet a secret is given: remove one of them");
  } else if (!secrets.length) {
    add([], "a webhook trigger needs a secret to verify deliveries, such as secret: ${secrets.ORDERS_HOOK}; to accept unsigned deliveries from anyone, write auth: none");
  }
  secrets.forEach((s, i) => {
    const at = Array.isArray(t.secret) ? ['secret', i] : ['secret'];
    // The secret's value must not sit in a file that is registered, versioned and shown: a reference only.
    let refs;
    try {
      refs = typeof s === 'string' ? findReferences(s) : [];
    } catch (e) {
      add(at, (e as Error).message);
      return;
    }
    const whole = typeof s === 'string' && refs.length === 1 && refs[0]!.text.length + 3 === s.trim().length;
    if (!whole || refs[0]!.path[0] !== 'secrets' || refs[0]!.path.length !== 2) {
      add(at, 'must reference a secret, such as ${secrets.ORDERS_HOOK}, not hold its value (set it with SWARM_SECRET_ORDERS_HOOK)');
    }
  });
  if (t.scheme !== undefined || secrets.length) {
    const r = parseWebhookScheme(t.scheme ?? 'standard', 'scheme');
    if (!r.ok) for (const p of r.problems) add(p.field.split('.'), p.problem);
  }
}

function checkEvent(t: Record<string, unknown>, add: (sub: Array<string | number>, problem: string) => void): void {
  if (t.on === undefined) add([], `an event trigger needs on: the event's name, such as ${BUILTIN_EVENTS.join(', ')} or a custom name like order.paid`);
  else if (typeof t.on !== 'string' || !EVENT_NAME.test(t.on)) {
    add(['on'], `must be an event name: dot-separated lower-case words such as run.completed or order.paid (got ${JSON.stringify(t.on)})`);
  } else if (!(BUILTIN_EVENTS as readonly string[]).includes(t.on) && /^(run|step|approval|swarm)\./.test(t.on)) {
    // Swarm's own name spaces: a name there that Swarm does not raise would never fire.
    add(['on'], `Swarm raises no event '${t.on}': its own events are ${BUILTIN_EVENTS.join(', ')}; a custom event needs a name outside run.*, step.*, approval.* and swarm.*, such as order.paid`);
  }
  if (t.source !== undefined && (typeof t.source !== 'string' || !new RegExp(NAME_PATTERN).test(t.source))) {
    add(['source'], `must be the name of a workflow (got ${JSON.stringify(t.source)})`);
  }
  if (t.filter !== undefined) {
    if (typeof t.filter !== 'string') add(['filter'], `must be a condition on the event, which it sees as trigger, such as "trigger.total > 100" (got ${JSON.stringify(t.filter)})`);
    else {
      try {
        parseCondition(t.filter);
      } catch (e) {
        add(['filter'], (e as Error).message);
      }
    }
  }
}
