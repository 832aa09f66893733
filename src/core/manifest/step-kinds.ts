/**
 * Steps that run no agent: `kind: sleep` (durable sleep, `for:` a duration or `until:` a time) and
 * `kind: wait` (wait for a custom `event:` or a run `signal:`, with `match:`, `timeout:`,
 * `on_timeout:` and `buffer:`). This module checks their fields at registration, with lines.
 *
 * @example
 *   steps:
 *     - { id: cool_off, kind: sleep, for: 3d }
 *     - id: paid
 *       kind: wait
 *       event: order.paid
 *       match: event.data.order_id == trigger.order_id
 *       timeout: 7d
 *       on_timeout: continue
 *       buffer: true
 */
import { conditionReferences, parseCondition } from '../condition.js';
import { findReferences, REFERENCE_ROOTS, type PathSegment } from '../template.js';
import { checkCustomEventName } from '../../triggers/events.js';
import { parseDuration } from '../../triggers/schedule.js';
import type { ProblemList } from './problems.js';
import { checkConsensusTask } from '../../consensus/driver/contract.js';

export const STEP_KINDS = ['sleep', 'wait', 'consensus'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** A sleep step: `for_ms` (from when it starts sleeping) or `until` (a time, or a reference resolved when it starts). */
export interface SleepSpec {
  for_ms?: number;
  until?: string | number;
}

/** A wait step: exactly one of `event` and `signal`. */
export interface WaitSpec {
  event?: string;
  signal?: string;
  /** A condition over `event` (`event.data`, `event.id`, `event.source`) and the run (trigger, variables, steps). */
  match?: string;
  timeout_ms?: number;
  on_timeout: 'fail' | 'continue';
  /** Events raised after the run started but before the step began waiting count too. */
  buffer: boolean;
}

/** The roots a `match:` condition may read. */
export const MATCH_ROOTS: readonly string[] = [...REFERENCE_ROOTS.filter((r) => r !== 'error' && r !== 'secrets'), 'event'];

/** Schema properties of the kind fields (added to a step's schema). */
export const STEP_KIND_PROPERTIES = {
  kind: { enum: [...STEP_KINDS] },
  for: { type: 'string' },
  until: { type: ['string', 'number'] },
  event: { type: 'string' },
  signal: { type: 'string' },
  match: { type: 'string' },
  timeout: { type: 'string' },
  on_timeout: { enum: ['fail', 'continue'] },
  buffer: { type: 'boolean' },
  task: { type: ['object', 'string'] },
} as const;

const SLEEP_FIELDS = ['for', 'until'] as const;
const WAIT_FIELDS = ['event', 'signal', 'match', 'timeout', 'on_timeout', 'buffer'] as const;
const SIGNAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface RawKindFields {
  kind?: StepKind;
  agent?: string;
  inputs?: Record<string, unknown>;
  for?: string;
  until?: string | number;
  event?: string;
  signal?: string;
  match?: string;
  timeout?: string;
  on_timeout?: 'fail' | 'continue';
  buffer?: boolean;
  task?: unknown;
}

/** A consensus step: its task contract as written (`${…}` references in its fields resolve when the step runs). */
export interface ConsensusStepSpec {
  task: unknown;
}

export interface CompiledKind {
  kind?: StepKind;
  sleep?: SleepSpec;
  wait?: WaitSpec;
  consensus?: ConsensusStepSpec;
  /** Steps the kind's references read: their outputs (`until`) and any field (`match`). */
  dataDeps: string[];
  orderDeps: string[];
}

/**
 * Check a step's kind fields. `checkRef` checks a reference path as the rest of the manifest does
 * (throwing an Error that explains it) and returns the step it reads, if any.
 */
export function compileKind(s: RawKindFields, i: number, at: (...p: PathSegment[]) => number | undefined, problems: ProblemList, checkRef: (path: PathSegment[], inCondition: boolean) => string | undefined): CompiledKind {
  const out: CompiledKind = { dataDeps: [], orderDeps: [] };
  const field = (f: string): string => `steps[${i}].${f}`;
  const has = (f: string): boolean => (s as Record<string, unknown>)[f] !== undefined;
  if (s.kind === undefined) {
    // A step with neither agent: nor workflow: is reported once, by checkNesting (nesting.ts).
    for (const f of [...SLEEP_FIELDS, ...WAIT_FIELDS]) if (has(f)) problems.add(field(f), `'${f}' belongs to 'kind: ${(SLEEP_FIELDS as readonly string[]).includes(f) ? 'sleep' : 'wait'}' steps; add the kind or remove the field`, at(f));
    if (has('task')) problems.add(field('task'), `'task' belongs to 'kind: consensus' steps; add the kind or remove the field`, at('task'));
    return out;
  }
  out.kind = s.kind;
  if (s.agent !== undefined) problems.add(field('agent'), `a '${s.kind}' step runs no agent; remove 'agent' (or 'kind')`, at('agent'));
  if (s.inputs !== undefined) problems.add(field('inputs'), `a '${s.kind}' step takes no inputs`, at('inputs'));
  if (has('workflow')) problems.add(field('workflow'), `a '${s.kind}' step runs no sub-workflow; remove 'workflow' (or 'kind')`, at('workflow'));
  if (has('map')) problems.add(field('map'), `a '${s.kind}' step cannot map over a list; map an agent or a sub-workflow step`, at('map'));
  const duration = (f: 'for' | 'timeout', text: string): number | undefined => {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) problems.add(field(f), `'${text}' is not a duration; write a whole number and a unit, such as 30s, 15m, 2h or 3d`, at(f));
    return ms;
  };
  if (s.kind === 'consensus') {
    for (const f of [...SLEEP_FIELDS, ...WAIT_FIELDS]) if (has(f)) problems.add(field(f), `'${f}' belongs to 'kind: ${(SLEEP_FIELDS as readonly string[]).includes(f) ? 'sleep' : 'wait'}' steps, not consensus`, at(f));
    if (!has('task')) {
      problems.add(`steps[${i}]`, `a consensus step needs 'task:', its task contract (proposers, verification, voting; see docs/consensus.md)`, at());
      return out;
    }
    for (const [path, value] of templateLeaves(s.task)) {
      try {
        for (const ref of findReferences(value)) {
          const dep = checkRef(ref.path, false);
          if (dep) out.dataDeps.push(dep);
        }
      } catch (e) {
        problems.add(field(['task', ...path].join('.')), (e as Error).message, at('task', ...path));
      }
    }
    for (const p of checkConsensusTask(s.task)) problems.add(field(['task', ...p.path].join('.')), p.message, at('task', ...p.path));
    out.consensus = { task: s.task };
    return out;
  }
  if (s.kind === 'sleep') {
    for (const f of WAIT_FIELDS) if (has(f)) problems.add(field(f), `'${f}' belongs to 'kind: wait' steps, not sleep`, at(f));
    if (has('for') === has('until')) {
      problems.add(`steps[${i}]`, has('for') ? `a sleep step takes 'for' or 'until', not both` : `a sleep step needs 'for: <duration>' (such as 3d) or 'until: <time>' (ISO 8601, epoch ms, or a reference)`, at());
      return out;
    }
    if (s.for !== undefined) {
      const ms = duration('for', s.for);
      out.sleep = ms === undefined ? {} : { for_ms: ms };
      return out;
    }
    const until = s.until as string | number;
    if (typeof until === 'string') {
      let refs: ReturnType<typeof findReferences> = [];
      try {
        refs = findReferences(until);
        for (const ref of refs) {
          const dep = checkRef(ref.path, false);
          if (dep) out.dataDeps.push(dep);
        }
      } catch (e) {
        problems.add(field('until'), (e as Error).message, at('until'));
      }
      if (refs.length === 0 && untilTime(until) === undefined) problems.add(field('until'), `'${until}' is not a time; write ISO 8601 (2026-01-31T09:00:00Z), epoch milliseconds, or a reference such as \${steps.x.outputs.due_at}`, at('until'));
    } else if (untilTime(until) === undefined) problems.add(field('until'), `${until} is not a time in epoch milliseconds`, at('until'));
    out.sleep = { until };
    return out;
  }
  // kind: wait
  for (const f of SLEEP_FIELDS) if (has(f)) problems.add(field(f), `'${f}' belongs to 'kind: sleep' steps, not wait`, at(f));
  if (has('event') === has('signal')) {
    problems.add(`steps[${i}]`, has('event') ? `a wait step takes 'event' or 'signal', not both` : `a wait step needs 'event: <name>' (a custom event such as order.paid) or 'signal: <name>'`, at());
  }
  if (s.event !== undefined) {
    try {
      checkCustomEventName(s.event);
    } catch (e) {
      problems.add(field('event'), (e as Error).message, at('event'));
    }
  }
  if (s.signal !== undefined && !SIGNAL_NAME.test(s.signal)) problems.add(field('signal'), `'${s.signal}' is not a signal name: 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit`, at('signal'));
  if (s.signal !== undefined && s.buffer !== undefined) problems.add(field('buffer'), `signals are always kept until a wait takes them; 'buffer' applies to event waits`, at('buffer'));
  if (s.match !== undefined) {
    try {
      for (const path of conditionReferences(parseCondition(s.match, MATCH_ROOTS))) {
        if (path[0] === 'event') continue;
        const dep = checkRef(path, true);
        if (dep) out.orderDeps.push(dep);
      }
    } catch (e) {
      problems.add(field('match'), (e as Error).message.replace('invalid condition', 'invalid match'), at('match'));
    }
  }
  const timeout_ms = s.timeout === undefined ? undefined : duration('timeout', s.timeout);
  if (s.on_timeout !== undefined && s.timeout === undefined) problems.add(field('on_timeout'), `'on_timeout' needs 'timeout: <duration>'`, at('on_timeout'));
  out.wait = {
    ...(s.event !== undefined ? { event: s.event } : {}),
    ...(s.signal !== undefined ? { signal: s.signal } : {}),
    ...(s.match !== undefined ? { match: s.match } : {}),
    ...(timeout_ms !== undefined ? { timeout_ms } : {}),
    on_timeout: s.on_timeout ?? 'fail',
    buffer: s.buffer ?? false,
  };
  return out;
}

/** The string leaves of a value, with their paths (where `${…}` references may be). */
function templateLeaves(v: unknown, path: PathSegment[] = []): Array<[PathSegment[], string]> {
  if (typeof v === 'string') return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => templateLeaves(x, [...path, i]));
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => templateLeaves(x, [...path, k]));
  return [];
}

/** A sleep's `until:` value as epoch milliseconds: ISO 8601 text, or epoch ms (number or digits); undefined if neither. */
export function untilTime(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d{1,16}$/.test(text)) return Number(text);
  // ISO 8601 only (a date, optionally a time): Date.parse alone accepts many looser forms.
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
