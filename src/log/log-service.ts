/**
 * The log, read from the store: its head (the latest events across runs, or one run's head), a
 * run's replay set against its rows, and the verification of every chain. What `swarm log` prints;
 * the replay itself is pure (replay.ts, compare.ts).
 *
 * @example
 *   const report = await replayStoredRun(swarm, 'a1b2c3d4e5f6');
 *   if (!report.ok) for (const d of report.differences) console.log(describeDifference(d));
 */
import { digestJson, type RunEvent } from '../core/events.js';
import type { Swarm, VerifyReport } from '../swarm.js';
import type { Store } from '../store/store.js';
import type { RunRecord } from '../store/types.js';
import { projectTasks } from '../consensus/core/projection.js';
import { compareRun, type Difference, type StoredRunState } from './compare.js';
import { compareTasks, type StoredTask } from './compare-tasks.js';
import { replayRun, type ReplayPlan, type ReplayedRun } from './replay.js';

/** The newest event of a run. */
export interface HeadEvent {
  run_id: string;
  workflow: string;
  status: string;
  seq: number;
  type: string | null;
  hash: string;
  /** When the event was recorded (ms), or null for a run with no event. */
  at: number | null;
}

/** The head of the whole log: the runs whose latest events are newest, and counts. */
export interface LogHead {
  runs: number;
  events: number;
  /** Runs by status. */
  by_status: Record<string, number>;
  latest: HeadEvent[];
}

/** What a replay found for one run. */
export interface ReplayReport {
  run_id: string;
  events: number;
  ok: boolean;
  differences: Difference[];
  /** What the replay could not settle from the events. */
  notes: string[];
}

/** One run's verification, as `swarm runs verify` gives it. */
export interface RunVerification extends VerifyReport {
  run_id: string;
  workflow: string;
}

/** Every run of the store, newest first, a page at a time (keyset pagination). */
export async function* allRuns(store: Store, page = 200): AsyncGenerator<RunRecord> {
  let after: { created_at: number; id: string } | undefined;
  for (;;) {
    const batch = await store.listRuns({ limit: page, ...(after ? { after } : {}) });
    for (const r of batch) yield r;
    if (batch.length < page) return;
    const last = batch[batch.length - 1] as RunRecord;
    after = { created_at: last.created_at, id: last.id };
  }
}

async function headOf(store: Store, run: RunRecord): Promise<HeadEvent> {
  const [last] = run.event_seq > 0 ? await store.getEvents(run.id, run.event_seq - 1, 1) : [];
  return { run_id: run.id, workflow: run.workflow_name, status: run.status, seq: run.event_seq, type: last?.type ?? null, hash: run.event_hash, at: last?.at ?? null };
}

/** The head of one run's log: its last event's seq, type and hash (as the run row records them). */
export async function runHead(swarm: Swarm, idOrPart: string): Promise<HeadEvent> {
  const id = await swarm.resolveRunId(idOrPart);
  return headOf(swarm.store, (await swarm.store.getRun(id)) as RunRecord);
}

/** The head of the whole log: counts, and the `limit` runs whose last change is newest with their last event. */
export async function logHead(store: Store, limit = 10): Promise<LogHead> {
  let runs = 0;
  let events = 0;
  const by_status: Record<string, number> = {};
  // The newest changes: a run's row is updated with every event it records.
  const newest: RunRecord[] = [];
  for await (const r of allRuns(store)) {
    runs++;
    events += r.event_seq;
    by_status[r.status] = (by_status[r.status] ?? 0) + 1;
    newest.push(r);
    if (newest.length > limit * 4) {
      newest.sort(byChange);
      newest.length = limit;
    }
  }
  newest.sort(byChange);
  const latest = await Promise.all(newest.slice(0, limit).map((r) => headOf(store, r)));
  latest.sort((a, b) => (b.at ?? 0) - (a.at ?? 0) || (a.run_id < b.run_id ? 1 : -1));
  return { runs, events, by_status, latest };
}

function byChange(a: RunRecord, b: RunRecord): number {
  return b.updated_at - a.updated_at || (a.id < b.id ? 1 : -1);
}

/** The shape of a stored plan the replay reads (`RunPlan.workflow.steps`). */
export function planShape(planJson: string | undefined): ReplayPlan | undefined {
  if (!planJson) return undefined;
  const plan = JSON.parse(planJson) as { workflow?: { steps?: Array<{ id: string; deps?: string[]; kind?: string }> } };
  const steps = plan.workflow?.steps;
  if (!Array.isArray(steps)) return undefined;
  return { steps: steps.map((s) => ({ id: s.id, deps: s.deps ?? [], kind: s.kind })) };
}

/** What the store holds for a run, in the shape `compareRun` reads. */
export async function storedRunState(store: Store, run: RunRecord, replayed: ReplayedRun, plan: ReplayPlan | undefined): Promise<StoredRunState> {
  const steps = (await store.getSteps(run.id)).map((s) => ({
    step_id: s.step_id,
    status: s.status,
    attempt: s.attempt,
    retry_count: s.retry_count,
    error: s.error,
    map_index: s.map_index,
    // The checkpoint's digest, computed as `swarm runs verify` computes it.
    outputs_sha256: s.status === 'completed' ? digestJson(JSON.stringify(s.outputs ?? {})) : undefined,
  }));
  const waits = new Map<string, string>();
  const waitSteps = new Set([...(plan?.steps ?? []).filter((s) => s.kind === 'sleep' || s.kind === 'wait').map((s) => s.id), ...replayed.waits.keys()]);
  for (const id of waitSteps) {
    const w = await store.getStepWait(run.id, id);
    if (w) waits.set(id, w.status);
  }
  const signals = (await store.listRunSignals(run.id)).map((s) => ({ seq: s.seq, name: s.name, consumed_by: s.consumed_by }));
  const approvals = new Map<string, string>();
  const decided = (await store.listApprovals({ run_id: run.id })).filter((a) => a.status !== 'pending').sort((a, b) => (a.decided_at ?? 0) - (b.decided_at ?? 0));
  for (const a of decided) approvals.set(a.step_id, a.status);
  return {
    run: {
      status: run.status,
      started_at: run.started_at,
      completed_at: run.completed_at,
      error: run.error,
      error_step: run.error_step,
      event_seq: run.event_seq,
      event_hash: run.event_hash,
      running_steps: run.running_steps,
      steps_remaining: run.steps_remaining,
    },
    steps,
    waits,
    signals,
    approvals,
  };
}

/** The consensus tasks of a run with all their rows. */
export async function storedTasks(store: Store, runId: string): Promise<StoredTask[]> {
  const out: StoredTask[] = [];
  for (const task of await store.listConsensusTasks({ run_id: runId, limit: 1000 })) {
    const id = task.task_id;
    const [candidates, results, votes, decision, costs] = await Promise.all([store.getConsensusCandidates(id), store.getConsensusResults(id), store.getConsensusVotes(id), store.getConsensusDecision(id), store.getConsensusCosts(id)]);
    out.push({ task, candidates, results, votes, decision, costs });
  }
  return out;
}

/** Replay one run's events (its steps' and its consensus tasks') and compare the result with its stored rows. */
export async function replayStoredRun(swarm: Swarm, idOrPart: string): Promise<ReplayReport> {
  const id = await swarm.resolveRunId(idOrPart);
  const store = swarm.store;
  const run = (await store.getRun(id)) as RunRecord;
  const events: RunEvent[] = await store.getEvents(id);
  const plan = planShape(await store.getPlanJson(id));
  const replayed = replayRun({ events, plan });
  const differences = [...compareRun(replayed, await storedRunState(store, run, replayed, plan)), ...compareTasks(projectTasks(events), await storedTasks(store, id))];
  return { run_id: id, events: events.length, ok: differences.length === 0, differences, notes: replayed.notes };
}

/** Verify one run's chain, or every run's (newest first), with `Swarm.verify`. */
export async function verifyRuns(swarm: Swarm, options: { run?: string; allowLegacy?: boolean } = {}): Promise<RunVerification[]> {
  const out: RunVerification[] = [];
  const check = async (r: RunRecord): Promise<void> => {
    out.push({ run_id: r.id, workflow: r.workflow_name, ...(await swarm.verify(r.id, { allowLegacy: options.allowLegacy === true })) });
  };
  if (options.run) await check((await swarm.store.getRun(await swarm.resolveRunId(options.run))) as RunRecord);
  else for await (const r of allRuns(swarm.store)) await check(r);
  return out;
}
