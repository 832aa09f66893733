import { parseCondition, type Condition } from '../core/condition.js';
import { ExecutionError, UserError } from '../core/errors.js';
import { pickVersion, parseRef } from '../core/manifest/agent.js';
import { successorsOf, type StepSpec } from '../core/manifest/workflow.js';
import type { AgentRecord, RunPlan, WorkflowRecord } from '../store/types.js';

/** A run plan with the lookups the engine needs, built once per run and cached. */
export interface LoadedPlan {
  plan: RunPlan;
  steps: Map<string, StepSpec>;
  successors: Map<string, string[]>;
  conditions: Map<string, Condition>;
  index: Map<string, number>;
}

export function loadPlan(json: string): LoadedPlan {
  const plan = JSON.parse(json) as RunPlan;
  const steps = new Map(plan.workflow.steps.map((s) => [s.id, s]));
  const conditions = new Map<string, Condition>();
  for (const s of plan.workflow.steps) if (s.condition !== undefined) conditions.set(s.id, parseCondition(s.condition));
  return {
    plan,
    steps,
    successors: successorsOf(plan.workflow.steps),
    conditions,
    index: new Map(plan.workflow.steps.map((s, i) => [s.id, i])),
  };
}

/** A small LRU of loaded plans, keyed by run id (plans never change once a run exists). */
export class PlanCache {
  private readonly map = new Map<string, LoadedPlan>();
  constructor(private readonly max = 2000) {}

  get(runId: string): LoadedPlan | undefined {
    const p = this.map.get(runId);
    if (p) {
      this.map.delete(runId);
      this.map.set(runId, p);
    }
    return p;
  }

  set(runId: string, p: LoadedPlan): void {
    this.map.set(runId, p);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  async load(runId: string, fetch: () => Promise<string | undefined>): Promise<LoadedPlan> {
    const hit = this.get(runId);
    if (hit) return hit;
    const json = await fetch();
    if (json === undefined) throw new ExecutionError('RUN_NOT_FOUND', `run ${runId} has no plan`, { runId });
    const p = loadPlan(json);
    this.set(runId, p);
    return p;
  }
}

/**
 * Freeze a workflow into a run plan: each step's agent range resolves to the newest registered version
 * that satisfies it, now, so later registrations never change this run.
 */
export function buildRunPlan(wf: WorkflowRecord, agentsByName: (name: string) => AgentRecord[], config: Record<string, unknown>): RunPlan {
  const agents: RunPlan['agents'] = {};
  for (const s of wf.manifest.steps) {
    const { name, range } = parseRef(s.agent);
    const candidates = agentsByName(name);
    const version = pickVersion(
      candidates.map((a) => a.version),
      range,
    );
    const rec = candidates.find((a) => a.version === version);
    if (!rec) {
      throw new UserError(
        'AGENT_NOT_FOUND',
        `workflow ${wf.name}@${wf.version}, step '${s.id}': agent '${s.agent}' is not registered${candidates.length ? ` (registered: ${candidates.map((a) => a.version).join(', ')})` : ''}`,
        { stepId: s.id, agent: s.agent },
      );
    }
    agents[s.id] = { id: rec.id, path: rec.path, manifest: rec.manifest };
  }
  return { version: 1, workflow: wf.manifest, workflow_id: wf.id, agents, config };
}
