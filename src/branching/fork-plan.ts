/**
 * Which steps of a run a fork at a step copies and which it runs again: `<step>` and everything that
 * depends on it (transitively) run again; of the rest, the steps the parent completed are copied;
 * the others start as they would in a fresh run. Pure: the plan's steps and the parent's statuses in,
 * the sets out.
 *
 * @example
 *   const p = forkPlan(steps, 'b', new Map([['a', 'completed'], ['b', 'completed'], ['c', 'completed']]));
 *   // p.rerun: ['b', 'c'] (c depends on b), p.copied: ['a']
 */
import { UserError } from '../core/errors.js';

export interface ForkPlanStep {
  id: string;
  deps: readonly string[];
}

export interface ForkPlan {
  /** Copied from the parent as completed, in an order where each step comes after its deps. */
  copied: string[];
  /** `at` and its descendants, in plan order. */
  rerun: string[];
  /** Neither: not completed in the parent and not downstream of `at` (they start as in a fresh run). */
  fresh: string[];
}

/** The step sets of a fork at `at`; UNKNOWN_STEP (exit 2) with the list of steps when `at` is not one. */
export function forkPlan(steps: readonly ForkPlanStep[], at: string, parentStatus: ReadonlyMap<string, string>): ForkPlan {
  const ids = steps.map((s) => s.id);
  if (!ids.includes(at)) {
    throw new UserError('UNKNOWN_STEP', `step '${at}' is not a step of this run; its steps are: ${ids.join(', ')}`, { step: at, steps: ids });
  }
  const successors = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const s of steps) for (const d of s.deps) successors.get(d)?.push(s.id);
  const downstream = new Set<string>([at]);
  const queue = [at];
  while (queue.length) {
    const id = queue.shift() as string;
    for (const next of successors.get(id) ?? []) {
      if (!downstream.has(next)) {
        downstream.add(next);
        queue.push(next);
      }
    }
  }
  const rerun = ids.filter((id) => downstream.has(id));
  const copySet = new Set(ids.filter((id) => !downstream.has(id) && parentStatus.get(id) === 'completed'));
  const fresh = ids.filter((id) => !downstream.has(id) && !copySet.has(id));
  return { copied: topological(steps, copySet), rerun, fresh };
}

/** The steps of `only`, each after its deps (plan order among equals). */
function topological(steps: readonly ForkPlanStep[], only: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const done = new Set<string>();
  const byId = new Map(steps.map((s) => [s.id, s]));
  const visit = (id: string, depth: number): void => {
    if (done.has(id) || !only.has(id) || depth > steps.length) return;
    for (const d of byId.get(id)?.deps ?? []) visit(d, depth + 1);
    done.add(id);
    out.push(id);
  };
  for (const s of steps) visit(s.id, 0);
  return out;
}
