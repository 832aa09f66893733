/**
 * Schedules as users see them (`swarm schedules …`, `/api/v1/schedules`): list, show, preview,
 * pause, resume, and fire one run now. `Swarm`'s schedule methods delegate here; the CLI and the
 * HTTP routes call those methods, never the store.
 *
 * @example
 *   const [nightly] = await listSchedules(store, Date.now());
 *   nightly.next_run_at; // '2025-01-07T02:00:00.000Z'
 */
import { NotFoundError, UserError } from '../core/errors.js';
import type { TriggerRecord, WorkflowRecord } from '../store/types.js';
import { nextTicks, parseScheduleSpec, type CatchupPolicy, type OverlapPolicy, type ScheduleSpec } from './schedule.js';

/** A schedule trigger, as listed and shown. Times are ISO 8601 (UTC). */
export interface ScheduleInfo {
  /** The workflow (and the schedule's id). */
  workflow: string;
  /** The registered version whose trigger applies (the newest). */
  version: string;
  cron: string;
  timezone: string;
  overlap: OverlapPolicy;
  catchup: { policy: CatchupPolicy; window_seconds: number; max_runs: number };
  /** The workflow is enabled (a disabled workflow's schedule does not fire). */
  enabled: boolean;
  /** Paused with `swarm schedules pause` (it does not fire until resumed). */
  paused: boolean;
  /** The next tick after now (and after the last one fired), whether or not a server is running to fire it. */
  next_run_at: string | null;
  /** The tick last fired (its run's `scheduled_at`), or null when it never fired. */
  last_fired_at: string | null;
  /** `overlap: buffer_one`: the tick waiting for the active run to end, or null. */
  buffered_tick: string | null;
  created_at: string;
  updated_at: string;
}

/** The slice of the store these read and write. */
export interface ScheduleStore {
  listTriggers(filter?: { type?: 'schedule'; workflow?: string }): Promise<TriggerRecord[]>;
  listWorkflows(name?: string): Promise<WorkflowRecord[]>;
  setTriggerPaused(id: string, paused: boolean): Promise<boolean>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The trigger's spec (registration validated it; a row that no longer parses is reported, not guessed). */
export function specOf(t: TriggerRecord): ScheduleSpec {
  const parsed = parseScheduleSpec(t.config);
  if (!parsed.ok) throw new UserError('SCHEDULE_INVALID', `the schedule of workflow ${t.workflow_name} is not valid (${parsed.problems.map((p) => `${p.field} ${p.problem}`).join('; ')}); register it again`, { workflow: t.workflow_name });
  return parsed.spec;
}

export function scheduleInfo(t: TriggerRecord, now: number): ScheduleInfo {
  const spec = specOf(t);
  const next = nextTicks(spec, new Date(Math.max(now, t.last_fired_at ?? 0)), 1)[0];
  return {
    workflow: t.workflow_name,
    version: t.workflow_version,
    cron: spec.cron,
    timezone: spec.timezone,
    overlap: spec.overlap,
    catchup: { policy: spec.catchup.policy, window_seconds: spec.catchup.window_ms / 1000, max_runs: spec.catchup.max_runs },
    enabled: t.enabled,
    paused: t.paused,
    next_run_at: next ? next.toISOString() : null,
    last_fired_at: iso(t.last_fired_at),
    buffered_tick: iso(t.buffered_tick),
    created_at: new Date(t.created_at).toISOString(),
    updated_at: new Date(t.updated_at).toISOString(),
  };
}

export async function listSchedules(store: ScheduleStore, now: number): Promise<ScheduleInfo[]> {
  return (await store.listTriggers({ type: 'schedule' })).map((t) => scheduleInfo(t, now));
}

/**
 * The schedule trigger of `workflow`. A workflow that is not registered: WORKFLOW_NOT_FOUND; one
 * whose (newest version's) trigger is not a schedule: SCHEDULE_NOT_FOUND, naming the trigger it has.
 */
export async function scheduleTrigger(store: ScheduleStore, workflow: string): Promise<TriggerRecord> {
  const [t] = await store.listTriggers({ type: 'schedule', workflow });
  if (t) return t;
  const versions = await store.listWorkflows(workflow);
  if (versions.length === 0) throw new NotFoundError('workflow', workflow, "see 'swarm schedules list'");
  const other = (await store.listTriggers({ workflow }))[0]?.type ?? 'manual';
  throw new UserError('SCHEDULE_NOT_FOUND', `workflow ${workflow} has no schedule (its trigger is ${other}); declare trigger: {type: schedule, cron: …} in its workflow.yaml and register it`, { workflow });
}

/** The next `count` ticks of a workflow's schedule, after now (or after the last tick fired). */
export async function previewSchedule(store: ScheduleStore, workflow: string, count: number, now: number): Promise<{ schedule: ScheduleInfo; ticks: string[] }> {
  const t = await scheduleTrigger(store, workflow);
  const ticks = nextTicks(specOf(t), new Date(Math.max(now, t.last_fired_at ?? 0)), count);
  return { schedule: scheduleInfo(t, now), ticks: ticks.map((d) => d.toISOString()) };
}

/** Pause or resume; returns the schedule as it is now. */
export async function setSchedulePaused(store: ScheduleStore, workflow: string, paused: boolean, now: number): Promise<ScheduleInfo> {
  const t = await scheduleTrigger(store, workflow);
  await store.setTriggerPaused(t.id, paused);
  return scheduleInfo({ ...t, paused, updated_at: now }, now);
}
