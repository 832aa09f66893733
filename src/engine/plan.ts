import { conditionReferences, parseCondition, type Condition } from '../core/condition.js';
import { ExecutionError, UserError } from '../core/errors.js';
import { parseRef, pickRecord } from '../core/manifest/agent.js';
import { successorsOf, type StepSpec } from '../core/manifest/workflow.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import { digestJson } from '../core/events.js';
import { findReferences, type PathSegment } from '../core/template.js';
import type { AgentRecord, RunPlan, WorkflowRecord } from '../store/types.js';

/** A plan's id: the digest of its JSON, so identical plans are stored once. */
export function planId(planJson: string): string {
  return digestJson(planJson);
}

/** A run plan with the lookups the engine needs, built once per run and cached. */
export interface LoadedPlan {
  plan: RunPlan;
  steps: Map<string, StepSpec>;
  /** Step id → the agent it runs. */
  stepAgents: Map<string, { id: string; path: string; manifest: AgentManifest }>;
  successors: Map<string, string[]>;
  conditions: Map<string, Condition>;
  /** Step id → what its inputs and condition read of the run: the trigger data, and which earlier steps (absent: everything). */
  reads: Map<string, StepReads>;
  /** Does anything in the plan reference `${secrets.*}`? Only then do steps load stored secrets. */
  usesSecrets: boolean;
}

export interface StepReads {
  trigger: boolean;
  steps: string[];
}

/**
 * What a step's inputs and condition reference, so that a worker fetches only that before running it
 * (a step that reads neither the trigger nor another step's outputs needs no read of the store).
 */
function stepReads(spec: StepSpec, condition: Condition | undefined): StepReads {
  const paths: PathSegment[][] = findReferences([spec.inputs, spec.map ?? '']).map((r) => r.path);
  if (condition) paths.push(...conditionReferences(condition));
  let trigger = false;
  const steps = new Set<string>();
  for (const [root, id] of paths) {
    if (root === 'trigger') trigger = true;
    else if (root === 'steps') {
      // `${steps}` as a whole reads every upstream step.
      if (typeof id === 'string') steps.add(id);
      else for (const d of spec.deps) steps.add(d);
    }
  }
  return { trigger, steps: spec.deps.filter((d) => steps.has(d)) };
}

export function loadPlan(json: string): LoadedPlan {
  const plan = JSON.parse(json) as RunPlan;
  const steps = new Map(plan.workflow.steps.map((s) => [s.id, s]));
  const conditions = new Map<string, Condition>();
  for (const s of plan.workflow.steps) if (s.condition !== undefined) conditions.set(s.id, parseCondition(s.condition));
  const stepAgents = new Map<string, { id: string; path: string; manifest: AgentManifest }>();
  for (const [stepId, agentId] of Object.entries(plan.step_agents)) {
    const a = plan.agents[agentId];
    if (a) stepAgents.set(stepId, { id: agentId, ...a });
  }
  const reads = new Map<string, StepReads>();
  for (const s of plan.workflow.steps) {
    try {
      reads.set(s.id, stepReads(s, conditions.get(s.id)));
    } catch {
      // A reference that does not parse (registration refuses those): the step reads everything,
      // and running it reports the reference as its own failure.
    }
  }
  return {
    plan,
    steps,
    stepAgents,
    successors: successorsOf(plan.workflow.steps),
    conditions,
    reads,
    usesSecrets: /\$\{\s*secrets\./.test(json),
  };
}

/** A small LRU of loaded plans, keyed by plan id (a plan's content never changes). */
export class PlanCache {
  private readonly map = new Map<string, LoadedPlan>();
  constructor(private readonly max = 2000) {}

  private set(planId: string, p: LoadedPlan): void {
    this.map.set(planId, p);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  private readonly loading = new Map<string, Promise<LoadedPlan>>();

  /** The plan if it is cached (no fetch). */
  peek(planId: string): LoadedPlan | undefined {
    return this.map.get(planId);
  }

  async load(planId: string, fetch: () => Promise<string | undefined>): Promise<LoadedPlan> {
    const hit = this.map.get(planId);
    if (hit) return hit;
    // Single flight: concurrent misses share one fetch.
    let inflight = this.loading.get(planId);
    if (!inflight) {
      inflight = (async () => {
        const json = await fetch();
        if (json === undefined) throw new ExecutionError('PLAN_NOT_FOUND', `plan ${planId} is missing from the store`, { planId });
        const p = loadPlan(json);
        this.set(planId, p);
        return p;
      })().finally(() => this.loading.delete(planId));
      this.loading.set(planId, inflight);
    }
    return inflight;
  }
}

/** The registered versions of every agent a workflow names, fetched once per name. */
export async function agentsFor(wf: WorkflowRecord['manifest'], versionsOf: (name: string) => Promise<AgentRecord[]>): Promise<(name: string) => AgentRecord[]> {
  const byName = new Map<string, AgentRecord[]>();
  for (const s of wf.steps) {
    if (s.kind || s.workflow !== undefined) continue;
    const { name } = parseRef(s.agent);
    if (!byName.has(name)) byName.set(name, await versionsOf(name));
  }
  return (name) => byName.get(name) ?? [];
}

/**
 * Freeze a workflow into a run plan: each step's agent range resolves to the newest registered version
 * that satisfies it, now, so later registrations never change this run.
 */
export function buildRunPlan(wf: WorkflowRecord, agentsByName: (name: string) => AgentRecord[], config: Record<string, unknown>): RunPlan {
  const agents: RunPlan['agents'] = {};
  const step_agents: RunPlan['step_agents'] = {};
  for (const s of wf.manifest.steps) {
    // Steps of a kind (sleep, wait) run no agent: they have no entry in step_agents; a sub-workflow
    // step's workflow is resolved when it starts (src/engine/nesting.ts).
    if (s.kind || s.workflow !== undefined) continue;
    const { name, range } = parseRef(s.agent);
    const candidates = agentsByName(name);
    const rec = pickRecord(candidates, range);
    if (!rec) {
      throw new UserError(
        'AGENT_NOT_FOUND',
        `workflow ${wf.name}@${wf.version}, step '${s.id}': agent '${s.agent}' is not registered${candidates.length ? ` (registered: ${candidates.map((a) => a.version).join(', ')})` : ''}`,
        { stepId: s.id, agent: s.agent },
      );
    }
    step_agents[s.id] = rec.id;
    agents[rec.id] = { path: rec.path, manifest: rec.manifest };
  }
  return { version: 1, workflow: wf.manifest, workflow_id: wf.id, step_agents, agents, config };
}
