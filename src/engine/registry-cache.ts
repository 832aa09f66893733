/**
 * What a process read of the registry, kept while the store's registry generation is unchanged:
 * the workflow record and run plan of each workflow reference runs were started with, and the
 * webhook trigger of each path. Every registry write (any process) bumps the generation in its
 * transaction, and every use begins with one read of it, so a registration committed before a call
 * starts is seen by that call: the cache saves the reads, parses and planning, never freshness.
 *
 * Entries may be newer than the generation they are filed under (a write can commit between the
 * generation's read and the registry's), never older: the next call reads the newer generation and
 * drops them.
 *
 * @example
 *   const gen = await store.registryGeneration();
 *   const hit = cache.planned(gen, 'echo-chain@^1');
 *   const entry = hit ?? cache.remember(gen, 'echo-chain@^1', { wf, plan });
 */
import type { RunPlan, TriggerRecord, WorkflowRecord } from '../store/types.js';
import { planId } from './plan.js';

export interface PlannedWorkflow {
  wf: WorkflowRecord;
  plan: RunPlan;
}

/** Bounds on the entries: a process sees few workflows; a flood of unknown webhook paths must not grow it. */
const MAX_PLANS = 500;
const MAX_WEBHOOKS = 1000;

export class RegistryCache {
  private generation: string | undefined;
  private readonly plans = new Map<string, PlannedWorkflow>();
  private readonly webhooks = new Map<string, TriggerRecord | undefined>();

  /** Drop everything unless it was read at `generation`. */
  private at(generation: string): void {
    if (generation === this.generation) return;
    this.plans.clear();
    this.webhooks.clear();
    this.generation = generation;
  }

  /** The workflow and plan cached for `ref` (as given to createRun) at `generation`. */
  planned(generation: string, ref: string): PlannedWorkflow | undefined {
    this.at(generation);
    return this.plans.get(ref);
  }

  /**
   * The workflow and plan cached for `ref` at the newest generation this cache has seen, with that
   * generation: a guess the caller confirms against the store (see `Swarm.createRunAt`).
   */
  latest(ref: string): { generation: string; entry: PlannedWorkflow } | undefined {
    const entry = this.plans.get(ref);
    return entry && this.generation !== undefined ? { generation: this.generation, entry } : undefined;
  }

  /** Keep a workflow and its plan for `ref`, read at `generation` or later; returns the entry. */
  remember(generation: string, ref: string, entry: PlannedWorkflow): PlannedWorkflow {
    // Filed only if no newer generation was seen meanwhile (that one's entries must not be mixed in).
    if (this.generation === generation) {
      if (this.plans.size >= MAX_PLANS) this.plans.clear();
      this.plans.set(ref, entry);
    }
    return entry;
  }

  /** The webhook trigger at `path` as of `generation`, read with `load` when not cached (none: cached too). */
  async webhook(generation: string, path: string, load: () => Promise<TriggerRecord | undefined>): Promise<TriggerRecord | undefined> {
    this.at(generation);
    if (this.webhooks.has(path)) return this.webhooks.get(path);
    const trigger = await load();
    // Filed only if no newer generation was seen meanwhile (that one's entries must not be mixed in).
    if (this.generation === generation) {
      if (this.webhooks.size >= MAX_WEBHOOKS) this.webhooks.clear();
      this.webhooks.set(path, trigger);
    }
    return trigger;
  }

  /**
   * The webhook trigger cached for `path` at the newest generation this cache has seen (undefined
   * inside: no trigger there), with that generation: a guess the caller confirms against the store
   * in the run's own transaction (see `Swarm.deliverWebhook`). Undefined when nothing is cached.
   */
  latestWebhook(path: string): { generation: string; trigger: TriggerRecord | undefined } | undefined {
    return this.generation !== undefined && this.webhooks.has(path) ? { generation: this.generation, trigger: this.webhooks.get(path) } : undefined;
  }

  /** Forget everything: the next call reads the registry again. */
  clear(): void {
    this.generation = undefined;
    this.plans.clear();
    this.webhooks.clear();
  }
}

const serialized = new WeakMap<RunPlan, { plan_json: string; plan_id: string }>();

/**
 * A plan's JSON and id, computed once per plan object: a cached plan starts many runs, and its JSON
 * and digest are the same for each. Plans are never mutated once built.
 *
 * @example
 *   const { plan_json, plan_id } = serializedPlan(plan);
 */
export function serializedPlan(plan: RunPlan): { plan_json: string; plan_id: string } {
  let hit = serialized.get(plan);
  if (!hit) {
    const plan_json = JSON.stringify(plan);
    hit = { plan_json, plan_id: planId(plan_json) };
    serialized.set(plan, hit);
  }
  return hit;
}
