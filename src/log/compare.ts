/**
 * Set a replayed run (replay.ts) against the rows the store holds for it, field by field. Pure: both
 * sides in, the differences out, each naming what differs and both values.
 *
 * @example
 *   const diffs = compareRun(replayRun({ events, plan }), stored);
 *   for (const d of diffs) console.log(describeDifference(d)); // "step 'join' status: the log says completed, the store holds failed"
 */
import type { ReplayedRun } from './replay.js';

/** What the store holds for a run, as far as the log can speak to it. */
export interface StoredRunState {
  run: {
    status: string;
    started_at: number | null;
    completed_at: number | null;
    error: string | null;
    error_step: string | null;
    event_seq: number;
    event_hash: string;
    running_steps: number;
    steps_remaining: number;
  };
  steps: ReadonlyArray<{ step_id: string; status: string; attempt: number; retry_count: number; error: string | null; map_index?: number | undefined; outputs_sha256: string | undefined }>;
  /** Sleep and wait registrations by step. */
  waits: ReadonlyMap<string, string>;
  signals: ReadonlyArray<{ seq: number; name: string; consumed_by: string | null }>;
  /** Decided approvals: the latest decision of each step. */
  approvals: ReadonlyMap<string, string>;
}

/** One way the store differs from the log. `subject` is `run`, `step <id>`, `wait <id>`, `signal <seq>`, `approval <id>` or `task <id>`. */
export interface Difference {
  subject: string;
  field: string;
  /** What replaying the log gives (null: nothing, the log has no such thing). */
  replayed: unknown;
  /** What the store holds (null: nothing). */
  stored: unknown;
}

const show = (v: unknown): string => (v === null || v === undefined ? 'nothing' : typeof v === 'string' ? v : JSON.stringify(v));

/** One line for a difference: `step 'join' status: the log says completed, the store holds failed`. */
export function describeDifference(d: Difference): string {
  return `${d.subject} ${d.field}: the log says ${show(d.replayed)}, the store holds ${show(d.stored)}`;
}

function subjectOf(kind: string, id: string | number): string {
  return typeof id === 'number' ? `${kind} ${id}` : `${kind} '${id}'`;
}

/** Every difference between a replayed run and the stored one (empty when they agree). */
export function compareRun(replayed: ReplayedRun, stored: StoredRunState): Difference[] {
  const out: Difference[] = [];
  const field = (subject: string, name: string, a: unknown, b: unknown): void => {
    if (a === undefined) return; // the log does not tell
    if ((a ?? null) !== (b ?? null)) out.push({ subject, field: name, replayed: a ?? null, stored: b ?? null });
  };
  const run = stored.run;
  field('run', 'status', replayed.status ?? null, run.status);
  field('run', 'head seq', replayed.event_seq, run.event_seq);
  field('run', 'head hash', replayed.event_hash, run.event_hash);
  field('run', 'started_at', replayed.started_at, run.started_at);
  field('run', 'completed_at', replayed.completed_at, run.completed_at);
  field('run', 'error', replayed.error, run.error);
  field('run', 'error_step', replayed.error_step, run.error_step);
  field('run', 'running_steps', replayed.running_steps, run.running_steps);
  // A finished run's count is no longer used by anything, and steps that end after it do not move it.
  if (replayed.status === undefined || !['completed', 'failed', 'cancelled'].includes(replayed.status)) field('run', 'steps_remaining', replayed.steps_remaining, run.steps_remaining);

  const rows = new Map(stored.steps.map((s) => [s.step_id, s]));
  for (const [id, s] of replayed.steps) {
    const subject = subjectOf('step', id);
    const row = rows.get(id);
    if (!row) {
      out.push({ subject, field: 'row', replayed: s.status, stored: null });
      continue;
    }
    field(subject, 'status', s.status, row.status);
    field(subject, 'attempt', s.attempt, row.attempt);
    field(subject, 'retry_count', s.retry_count, row.retry_count);
    if (s.status === 'completed' && row.status === 'completed') field(subject, 'outputs digest', s.outputs_sha256, row.outputs_sha256);
    if ((s.status === 'failed' || s.status === 'skipped') && s.status === row.status) field(subject, 'error', s.error, row.error);
  }
  // A row the log never named is one no event made: it must still be as it was created.
  for (const row of stored.steps) {
    if (replayed.steps.has(row.step_id)) continue;
    if (row.status !== 'pending') out.push({ subject: subjectOf('step', row.step_id), field: 'status', replayed: null, stored: row.status });
  }

  for (const [id, w] of replayed.waits) field(subjectOf('wait', id), 'status', w, stored.waits.get(id) ?? null);
  for (const [id, w] of stored.waits) if (!replayed.waits.has(id)) out.push({ subject: subjectOf('wait', id), field: 'status', replayed: null, stored: w });

  const signals = new Map(stored.signals.map((s) => [s.seq, s]));
  for (const [seq, s] of replayed.signals) {
    const row = signals.get(seq);
    if (!row) {
      out.push({ subject: subjectOf('signal', seq), field: 'row', replayed: s.name, stored: null });
      continue;
    }
    field(subjectOf('signal', seq), 'name', s.name, row.name);
    field(subjectOf('signal', seq), 'consumed_by', s.consumed_by, row.consumed_by);
  }
  for (const row of stored.signals) if (!replayed.signals.has(row.seq)) out.push({ subject: subjectOf('signal', row.seq), field: 'row', replayed: null, stored: row.name });

  for (const [id, decision] of replayed.approvals) field(subjectOf('approval', id), 'decision', decision, stored.approvals.get(id) ?? null);
  for (const [id, decision] of stored.approvals) if (!replayed.approvals.has(id)) out.push({ subject: subjectOf('approval', id), field: 'decision', replayed: null, stored: decision });
  return out;
}
