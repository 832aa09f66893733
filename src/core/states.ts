/**
 * The run and step state machines. Every change of state commits in one transaction together with
 * the event that records it and the scheduling it causes.
 *
 * Run:  queued → running → completed | failed | cancelled
 *       running ⇄ waiting   (a step waits for a human's approval; approve/reject resumes it)
 *       failed | cancelled → queued   (retry)
 *
 * Step: pending → ready            (all dependencies finished)
 *       ready → running            (claimed by a worker under a lease; attempt += 1)
 *       running → completed        (outputs checkpointed once)
 *       running → ready            (failed with retries left: available again after a backoff)
 *       running → running          (lease expired: reclaimed by another worker; attempt += 1)
 *       running → failed | skipped
 *       running → waiting           (paused for an approval; no lease held)
 *       waiting → ready             (approved or rejected: the step runs again and acts on the decision)
 *       pending | ready | running → cancelled   (run cancelled, or another step failed the run)
 *       failed | cancelled | skipped → pending | ready   (run retry)
 */
export const RUN_STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const STEP_STATUSES = ['pending', 'ready', 'running', 'waiting', 'completed', 'failed', 'skipped', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export const TERMINAL_RUN: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'cancelled']);
export const TERMINAL_STEP: ReadonlySet<StepStatus> = new Set(['completed', 'failed', 'skipped', 'cancelled']);

const RUN_TRANSITIONS: Record<RunStatus, readonly RunStatus[]> = {
  queued: ['running', 'completed', 'failed', 'cancelled'],
  running: ['waiting', 'completed', 'failed', 'cancelled'],
  waiting: ['running', 'completed', 'failed', 'cancelled'],
  completed: [],
  failed: ['queued'],
  cancelled: ['queued'],
};

const STEP_TRANSITIONS: Record<StepStatus, readonly StepStatus[]> = {
  pending: ['ready', 'cancelled', 'skipped'],
  ready: ['running', 'cancelled'],
  running: ['completed', 'ready', 'running', 'waiting', 'failed', 'skipped', 'cancelled'],
  waiting: ['ready', 'cancelled'],
  completed: [],
  failed: ['pending', 'ready'],
  skipped: ['pending', 'ready'],
  cancelled: ['pending', 'ready'],
};

export function canTransitionRun(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

export function canTransitionStep(from: StepStatus, to: StepStatus): boolean {
  return STEP_TRANSITIONS[from].includes(to);
}
