import clean from 'semver/functions/clean.js';
import valid from 'semver/functions/valid.js';
import { conditionReferences, parseCondition } from '../condition.js';
import { ManifestError } from '../errors.js';
import { declaredFields, FIELD_TYPES, toJsonSchema, validateAgainst, type FieldSpec, type IoSchema } from '../io-schema.js';
import { closest } from '../suggest.js';
import { findReferences, REFERENCE_ROOTS, type PathSegment } from '../template.js';
import { isValidRange, NAME_PATTERN, parseRef, type AgentManifest } from './agent.js';
import { isReservedName, ProblemList, reservedProblem } from './problems.js';
import { builtinSchema, checkManifest } from './schema-check.js';
import { checkTrigger } from '../../triggers/trigger-spec.js';
import { checkConcurrency, concurrencySchema, type ConcurrencyKeySpec } from './concurrency.js';
import { parseYaml, type YamlSource } from './yaml-source.js';
import { compileKind, STEP_KIND_PROPERTIES, type RawKindFields, type SleepSpec, type StepKind, type WaitSpec, type ConsensusStepSpec } from './step-kinds.js';
import { checkMapReference, checkNesting, MAX_MAP_ELEMENTS } from './nesting.js';
import { BUDGET_SCHEMA, parseBudgetSpec, type BudgetSpec } from './guardrails/budget.js';

export interface RetryPolicy {
  max_attempts: number;
  backoff_ms: number;
  max_backoff_ms: number;
}

export const DEFAULT_RETRY: RetryPolicy = { max_attempts: 1, backoff_ms: 1000, max_backoff_ms: 60_000 };

export type Handler =
  | { notify: { type: 'log'; message: string } }
  | { workflow: { name: string; inputs?: Record<string, unknown> } };

export interface StepSpec {
  id: string;
  /** Where the step is declared in workflow.yaml (steps are kept in run order, for error lines). */
  position: number;
  name?: string;
  /** The agent the step runs (`name@range`); '' for a step of a `kind` and for a sub-workflow step. */
  agent: string;
  /** `sleep` or `wait`: a step Swarm runs itself, without an agent (see step-kinds.ts). */
  kind?: StepKind;
  sleep?: SleepSpec;
  wait?: WaitSpec;
  /** A consensus step's task contract (see step-kinds.ts). */
  consensus?: ConsensusStepSpec;
  /** A sub-workflow step: the workflow (`name@range`, no range: the latest) whose run is this step. */
  workflow?: string;
  /** A map step: the `${…}` reference to the list it runs over, once per element. */
  map?: string;
  /** A map step: how many of its elements may run at once (default: all). */
  max_concurrency?: number;
  inputs: Record<string, unknown>;
  /** Every step this one waits for: `depends_on` plus the steps its inputs and condition reference. */
  deps: string[];
  /** The steps whose outputs the inputs reference (a skipped one skips this step too). */
  data_deps: string[];
  condition?: string;
  retry: RetryPolicy;
  timeout_seconds?: number;
  on_error: 'fail' | 'continue';
  /** Limits on this step's own usage (narrower than the run's budget; src/guardrails/budget.ts). */
  budget?: BudgetSpec;
}

/** A validated workflow.yaml, steps in topological order. */
export interface WorkflowManifest {
  name: string;
  version: string;
  description?: string;
  author?: string;
  trigger: { type: string; [key: string]: unknown };
  variables: Record<string, unknown>;
  /** JSON Schema for the trigger data, when the workflow declares `inputs`. */
  inputs?: IoSchema;
  /** The most steps of one run that may run at once. */
  concurrency?: number;
  /** `concurrency: {key, limit}`: how many runs with the same key may be active at once (see concurrency.ts). */
  concurrency_key?: ConcurrencyKeySpec;
  steps: StepSpec[];
  on_error: Handler[];
  on_success: Handler[];
  tags: string[];
  enabled?: boolean;
  /** The run's budget (over swarm.yaml's default): one budget for every llm step, handoff and sub-workflow of the run. */
  budget?: BudgetSpec;
}

const STEP_ID = '^[A-Za-z_][A-Za-z0-9_-]{0,63}$';

const handlerSchema = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
  properties: {
    notify: {
      type: 'object',
      required: ['message'],
      additionalProperties: false,
      properties: { type: { enum: ['log'] }, message: { type: 'string' } },
    },
    workflow: {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: { name: { type: 'string' }, inputs: { type: 'object' } },
    },
  },
};

const workflowSchema = builtinSchema({
  type: 'object',
  required: ['name', 'version', 'steps'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN },
    version: { type: ['string', 'number'] },
    description: { type: 'string' },
    author: { type: 'string' },
    enabled: { type: 'boolean' },
    trigger: {
      type: 'object',
      required: ['type'],
      properties: { type: { enum: ['manual', 'webhook', 'schedule', 'event'] } },
    },
    variables: { type: 'object' },
    inputs: {
      anyOf: [
        {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'type'],
            additionalProperties: false,
            properties: {
              name: { type: 'string' },
              type: { enum: [...FIELD_TYPES] },
              required: { type: 'boolean' },
              description: { type: 'string' },
              default: {},
            },
          },
        },
        { type: 'object' },
      ],
    },
    concurrency: concurrencySchema,
    steps: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: {
          ...STEP_KIND_PROPERTIES,
          id: { type: 'string', pattern: STEP_ID },
          name: { type: 'string' },
          agent: { type: 'string', minLength: 1 },
          workflow: { type: 'string', minLength: 1 },
          map: { type: 'string', minLength: 1 },
          max_concurrency: { type: 'integer', minimum: 1, maximum: MAX_MAP_ELEMENTS },
          inputs: { type: 'object' },
          depends_on: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
          condition: { type: ['string', 'boolean'] },
          retry: {
            type: 'object',
            additionalProperties: false,
            properties: {
              max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
              backoff_ms: { type: 'integer', minimum: 0 },
              max_backoff_ms: { type: 'integer', minimum: 0 },
            },
          },
          timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 604800 },
          on_error: { enum: ['fail', 'continue'] },
          budget: BUDGET_SCHEMA,
        },
      },
    },
    budget: BUDGET_SCHEMA,
    on_error: { type: 'array', items: handlerSchema },
    on_success: { type: 'array', items: handlerSchema },
    tags: { type: 'array', items: { type: 'string' } },
  },
});

interface RawStep extends RawKindFields {
  id: string;
  name?: string;
  agent?: string;
  workflow?: string;
  map?: string;
  max_concurrency?: number;
  inputs?: Record<string, unknown>;
  depends_on?: string | string[];
  condition?: string | boolean;
  retry?: Partial<RetryPolicy>;
  timeout_seconds?: number;
  on_error?: 'fail' | 'continue';
  budget?: unknown;
}

/**
 * Parse and validate a workflow.yaml on its own (no registry): schema, duplicate ids, unknown
 * `depends_on`, references to unknown steps or undeclared variables, condition syntax, cycles.
 *
 * @example
 *   const wf = parseWorkflowManifest(text, 'workflows/echo-chain/workflow.yaml');
 *   wf.steps.map((s) => s.id); // topological order
 */
export function parseWorkflowManifest(text: string, file: string): WorkflowManifest {
  return parseWorkflowSource(text, file).manifest;
}

/** Like parseWorkflowManifest, and also returns a line finder for later registry checks. */
export function parseWorkflowSource(text: string, file: string): { manifest: WorkflowManifest; lineOf: YamlSource['lineOf'] } {
  const src = parseYaml(text, file);
  checkManifest(src, workflowSchema);
  const problems = new ProblemList(file);
  const raw = src.value as Record<string, unknown> & { steps: RawStep[] };
  const version = String(raw.version);
  if (!valid(version)) {
    problems.add('version', `'${version}' is not a semantic version (like 1.0.0)${typeof raw.version === 'number' ? '; write it in quotes' : ''}`, src.lineOf(['version']));
  }
  if (isReservedName(raw.name)) problems.add('name', reservedProblem(raw.name as string, 'a workflow name'), src.lineOf(['name']));
  // A trigger that could never fire is refused here, with its line, never stored and ignored.
  for (const p of checkTrigger(raw.trigger)) problems.add(p.field, p.problem, src.lineOf(p.path) ?? src.lineOf(['trigger']));
  const variables = (raw.variables as Record<string, unknown> | undefined) ?? {};
  for (const k of Object.keys(variables)) if (isReservedName(k)) problems.add(`variables.${k}`, reservedProblem(k, 'a variable name'), src.lineOf(['variables', k]));
  if (Array.isArray(raw.inputs)) {
    (raw.inputs as FieldSpec[]).forEach((f, i) => {
      if (isReservedName(f.name)) problems.add(`inputs[${i}].name`, reservedProblem(f.name, 'an input name'), src.lineOf(['inputs', i, 'name']));
    });
  }
  const concurrency = checkConcurrency(raw.concurrency, variables, src, problems);
  const ids = new Map<string, number>();
  raw.steps.forEach((s, i) => {
    if (isReservedName(s.id)) problems.add(`steps[${i}].id`, reservedProblem(s.id, 'a step id'), src.lineOf(['steps', i, 'id']));
    else if (ids.has(s.id)) problems.add(`steps[${i}].id`, `duplicate step id '${s.id}' (first used by steps[${ids.get(s.id)}])`, src.lineOf(['steps', i, 'id']));
    else ids.set(s.id, i);
  });

  const steps: StepSpec[] = raw.steps.map((s, i) => compileStep(s, i, ids, variables, src, problems, raw.name as string));
  // Budgets: the run's, and each step's own (checked here, so a bad limit is refused at registration).
  const budgetAt = (value: unknown, path: Array<string | number>): BudgetSpec => parseBudgetSpec({ value, file, path, lineOf: (p) => src.lineOf(p), problems });
  const budget = raw.budget !== undefined ? budgetAt(raw.budget, ['budget']) : undefined;
  raw.steps.forEach((s, i) => {
    const step = steps[i];
    if (s.budget === undefined || !step) return;
    step.budget = budgetAt(s.budget, ['steps', i, 'budget']);
    const unused = unusedStepBudget(step);
    if (unused) problems.add(`steps[${i}].budget`, unused, src.lineOf(['steps', i, 'budget']));
  });

  for (const key of ['on_error', 'on_success'] as const) {
    ((raw[key] as Handler[] | undefined) ?? []).forEach((h, i) => {
      const where = ['notify' in h ? h.notify.message : h.workflow.inputs ?? {}];
      try {
        for (const ref of findReferences(where)) checkRoot(ref.path, ids, variables, key === 'on_error');
      } catch (e) {
        problems.add(`${key}[${i}]`, (e as Error).message, src.lineOf([key, i]));
      }
      if ('workflow' in h && h.workflow.name === raw.name) {
        problems.add(`${key}[${i}].workflow.name`, 'a workflow cannot start itself from its own handler', src.lineOf([key, i]));
      }
    });
  }
  // A cycle is only meaningful between steps that are otherwise valid.
  problems.throwIfAny();
  const ordered = topoSort(steps, (cycle) => {
    const first = ids.get(cycle[0] ?? '') ?? 0;
    throw new ManifestError(file, 'steps', `dependency cycle: ${cycle.join(' → ')}`, src.lineOf(['steps', first]));
  });

  const manifest: WorkflowManifest = {
    name: raw.name as string,
    version: clean(version) ?? version,
    ...(raw.description !== undefined ? { description: raw.description as string } : {}),
    ...(raw.author !== undefined ? { author: raw.author as string } : {}),
    trigger: (raw.trigger as WorkflowManifest['trigger'] | undefined) ?? { type: 'manual' },
    variables,
    ...(raw.inputs !== undefined ? { inputs: toJsonSchema(raw.inputs as FieldSpec[] | IoSchema) } : {}),
    ...(concurrency.steps !== undefined ? { concurrency: concurrency.steps } : {}),
    ...(concurrency.key ? { concurrency_key: concurrency.key } : {}),
    steps: ordered,
    on_error: (raw.on_error as Handler[] | undefined) ?? [],
    on_success: (raw.on_success as Handler[] | undefined) ?? [],
    tags: (raw.tags as string[] | undefined) ?? [],
    ...(raw.enabled !== undefined ? { enabled: raw.enabled as boolean } : {}),
    ...(budget ? { budget } : {}),
  };
  return { manifest, lineOf: src.lineOf.bind(src) };
}

/**
 * Why a step's `budget:` would limit nothing, from the step alone: a step Swarm runs itself makes no
 * model or tool call, and a sub-workflow's calls are its child run's (see checkAgainstRegistry for
 * an agent that makes none).
 */
function unusedStepBudget(step: StepSpec): string | undefined {
  if (step.kind === 'consensus') return "a consensus step's spending is limited by its task's budget (explore, verify, finalize), not by a step budget";
  if (step.kind) return `a ${step.kind} step makes no model or tool calls: a budget limits nothing here`;
  if (step.workflow !== undefined) return `a sub-workflow step's calls are made by its child run, which a step budget does not limit: set budget: at the top of ${step.workflow}'s workflow.yaml (its calls draw on this run's budget too)`;
  return undefined;
}

/** The agents whose steps draw on a budget: llm agents (model and tool calls) and http agents (their executor's reported usage). */
const BUDGETED_RUNTIMES: readonly string[] = ['llm', 'http'];

function compileStep(s: RawStep, i: number, ids: Map<string, number>, variables: Record<string, unknown>, src: YamlSource, problems: ProblemList, workflowName: string): StepSpec {
  const at = (...p: PathSegment[]): number | undefined => src.lineOf(['steps', i, ...p]);
  const kind = compileKind(s, i, at, problems, (path, inCondition) => checkRoot(path, ids, variables, false, inCondition));
  const nested = checkNesting(s, i, { ids, variables, workflowName, at, problems, checkRef: (path) => checkRoot(path, ids, variables, false) });
  const agentRef = kind.kind ? '' : (s.agent ?? '');
  if (s.agent !== undefined && kind.kind === undefined) {
    const { range } = parseRef(s.agent);
    if (!isValidRange(range)) {
      problems.add(`steps[${i}].agent`, `'${s.agent}' has an invalid version (use name@1.2.3, name@^1.0, or name@latest)`, at('agent'));
    }
    if (isReservedName(parseRef(s.agent).name)) problems.add(`steps[${i}].agent`, reservedProblem(parseRef(s.agent).name, 'an agent name'), at('agent'));
  }
  const dependsOn = s.depends_on === undefined ? [] : Array.isArray(s.depends_on) ? s.depends_on : [s.depends_on];
  dependsOn.forEach((d, j) => {
    if (!ids.has(d)) problems.add(`steps[${i}].depends_on`, `unknown step '${d}'${suggest(d, ids)}`, at('depends_on', j));
    else if (d === s.id) problems.add(`steps[${i}].depends_on`, `step '${s.id}' cannot depend on itself`, at('depends_on'));
  });
  const inputs = s.inputs ?? {};
  for (const k of Object.keys(inputs)) if (isReservedName(k)) problems.add(`steps[${i}].inputs.${k}`, reservedProblem(k, 'an input name'), at('inputs', k));
  const dataDeps = new Set<string>([...kind.dataDeps, ...nested.deps]);
  const orderDeps = new Set<string>(kind.orderDeps);
  for (const [path, value] of leaves(inputs)) {
    try {
      for (const ref of findReferences(value)) {
        if (ref.path[0] === 'map') {
          checkMapReference(ref.path, s.map !== undefined);
          continue;
        }
        const dep = checkRoot(ref.path, ids, variables, false);
        if (!dep) continue;
        // Outputs make a data dependency (a skipped step has none to give); status and error only order.
        if (ref.path[2] === 'outputs' || ref.path.length <= 2) dataDeps.add(dep);
        else orderDeps.add(dep);
      }
    } catch (e) {
      problems.add(`steps[${i}].inputs.${path.join('.')}`, (e as Error).message, at('inputs', ...path));
    }
  }
  const condDeps = new Set<string>();
  let condition: string | undefined;
  if (s.condition !== undefined && s.condition !== true) {
    condition = String(s.condition);
    try {
      for (const path of conditionReferences(parseCondition(condition))) {
        const dep = checkRoot(path, ids, variables, false, true);
        if (dep) condDeps.add(dep);
      }
    } catch (e) {
      problems.add(`steps[${i}].condition`, (e as Error).message, at('condition'));
    }
  }
  for (const d of [...dataDeps, ...condDeps]) {
    if (d === s.id) problems.add(`steps[${i}]`, `step '${s.id}' references its own outputs`, at());
  }
  const retry = { ...DEFAULT_RETRY, ...(s.retry ?? {}) };
  if (retry.max_backoff_ms < retry.backoff_ms) retry.max_backoff_ms = retry.backoff_ms;
  return {
    id: s.id,
    position: i,
    ...(s.name !== undefined ? { name: s.name } : {}),
    agent: agentRef,
    ...(kind.kind ? { kind: kind.kind } : {}),
    ...(kind.sleep ? { sleep: kind.sleep } : {}),
    ...(kind.wait ? { wait: kind.wait } : {}),
    ...(kind.consensus ? { consensus: kind.consensus } : {}),
    ...(s.workflow !== undefined ? { workflow: s.workflow } : {}),
    ...(s.map !== undefined ? { map: s.map } : {}),
    ...(s.max_concurrency !== undefined ? { max_concurrency: s.max_concurrency } : {}),
    inputs,
    deps: [...new Set([...dependsOn, ...dataDeps, ...orderDeps, ...condDeps])].sort(),
    data_deps: [...dataDeps].sort(),
    ...(condition !== undefined ? { condition } : {}),
    retry,
    ...(s.timeout_seconds !== undefined ? { timeout_seconds: s.timeout_seconds } : {}),
    on_error: s.on_error ?? 'fail',
  };
}

/** Every string leaf of a value with its path (for error lines that point at the exact input). */
function leaves(value: unknown, path: PathSegment[] = []): Array<[PathSegment[], string]> {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  return [];
}

/**
 * Check a reference path against what is known at register time; returns the step it depends on.
 * `inHandler` allows `error.*`; conditions may read any step field.
 */
function checkRoot(path: PathSegment[], ids: Map<string, number>, variables: Record<string, unknown>, inHandler: boolean, inCondition = false): string | undefined {
  const [root, second, third] = path;
  if (!REFERENCE_ROOTS.includes(root as never)) {
    throw new Error(`unknown reference root '${String(root)}' in '${path.join('.')}' (use ${REFERENCE_ROOTS.join(', ')})`);
  }
  if (root === 'error' && !inHandler) throw new Error(`'error' is only available in on_error handlers`);
  if (root === 'variables' && second !== undefined && !Object.hasOwn(variables, String(second))) {
    throw new Error(`variable '${String(second)}' is not declared under variables:`);
  }
  if (root !== 'steps') return undefined;
  if (second === undefined) {
    if (inCondition) return undefined;
    throw new Error(`'steps' must name a step, like steps.<id>.outputs.<name>`);
  }
  const id = String(second);
  if (!ids.has(id)) throw new Error(`reference to unknown step '${id}' in '\${${path.join('.')}}'${suggest(id, ids)}`);
  if (third !== undefined && !['outputs', 'status', 'error'].includes(String(third))) {
    throw new Error(`'steps.${id}.${String(third)}' is not a step field (use outputs, status or error)`);
  }
  return id;
}

function suggest(name: string, ids: Map<string, number>): string {
  const near = closest(name, [...ids.keys()]) ?? [...ids.keys()].find((k) => k.toLowerCase() === name.toLowerCase() || k.startsWith(name) || name.startsWith(k));
  return near ? ` (did you mean '${near}'?)` : '';
}

/** Kahn's algorithm in declaration order; on a cycle, reports the steps that form it. */
export function topoSort(steps: StepSpec[], onCycle: (cycle: string[]) => never): StepSpec[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const indegree = new Map(steps.map((s) => [s.id, s.deps.length]));
  const succ = successorsOf(steps);
  const out: StepSpec[] = [];
  const queue = steps.filter((s) => s.deps.length === 0).map((s) => s.id);
  while (queue.length) {
    const id = queue.shift() as string;
    out.push(byId.get(id) as StepSpec);
    for (const n of succ.get(id) ?? []) {
      const d = (indegree.get(n) ?? 0) - 1;
      indegree.set(n, d);
      if (d === 0) queue.push(n);
    }
  }
  if (out.length < steps.length) onCycle(findCycle(steps));
  return out;
}

function findCycle(steps: StepSpec[]): string[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const dfs = (id: string): string[] | undefined => {
    state.set(id, 1);
    stack.push(id);
    for (const d of byId.get(id)?.deps ?? []) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!state.has(d)) {
        const c = dfs(d);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(id, 2);
    return undefined;
  };
  for (const s of steps) {
    if (!state.has(s.id)) {
      const c = dfs(s.id);
      if (c) return c.reverse();
    }
  }
  return [];
}

/** Map each step to the steps that wait for it. */
export function successorsOf(steps: ReadonlyArray<Pick<StepSpec, 'id' | 'deps'>>): Map<string, string[]> {
  const succ = new Map<string, string[]>(steps.map((s) => [s.id, []]));
  for (const s of steps) for (const d of s.deps) succ.get(d)?.push(s.id);
  return succ;
}

/**
 * What can be known of a step's inputs before it runs: every required input is given (or has a
 * default), and inputs written as plain values (no `${…}`) have the type the agent declares.
 */
function checkStepInputs(s: StepSpec, agent: AgentManifest, problems: ProblemList, lineOf?: (p: PathSegment[]) => number | undefined): void {
  const schema = agent.inputs as { properties?: Record<string, IoSchema & { default?: unknown }>; required?: string[] };
  const props = schema.properties ?? {};
  const prop = (name: string): (IoSchema & { default?: unknown }) | undefined => (Object.hasOwn(props, name) ? props[name] : undefined);
  for (const name of schema.required ?? []) {
    if (!Object.hasOwn(s.inputs, name) && prop(name)?.default === undefined) {
      const hint = closest(name, Object.keys(s.inputs));
      problems.add(
        `steps[${s.position}].inputs`,
        `step '${s.id}': agent ${agent.name}@${agent.version} requires input '${name}'${hint ? ` (did you mean to name '${hint}' '${name}'?)` : ''}`,
        lineOf?.(['steps', s.position, 'inputs']) ?? lineOf?.(['steps', s.position]),
      );
    }
  }
  for (const [name, value] of Object.entries(s.inputs)) {
    const p = prop(name);
    if (!p || findReferences(value).length > 0) continue;
    const found = validateAgainst(p, value);
    if (found.length) {
      problems.add(
        `steps[${s.position}].inputs.${name}`,
        `step '${s.id}': ${JSON.stringify(value)} does not fit agent ${agent.name}@${agent.version}'s input '${name}': ${found.join('; ').replace('(value) ', '')}`,
        lineOf?.(['steps', s.position, 'inputs', name]),
      );
    }
  }
}

/** What the registry knows about an agent, for register-time checks of a workflow. */
export type AgentLookup = (name: string, range: string) => { manifest?: AgentManifest; versions: string[] };

/**
 * Check a workflow against the registry: every agent exists at a matching version, and every
 * `${steps.X.outputs.Y}` names an output X's agent declares (when its outputs are a closed list).
 * Every problem is reported at once. Returns the manifest each step id resolves to now.
 */
export function checkAgainstRegistry(
  wf: WorkflowManifest,
  file: string,
  lookup: AgentLookup,
  lineOf?: (p: PathSegment[]) => number | undefined,
  knownAgents: readonly string[] = [],
): Map<string, AgentManifest> {
  const problems = new ProblemList(file);
  const resolved = new Map<string, AgentManifest>();
  for (const s of wf.steps) {
    // Sleep and wait steps run no agent; a sub-workflow step neither (checkSubWorkflows checks its workflow).
    if (s.kind || s.workflow !== undefined) continue;
    const { name, range } = parseRef(s.agent);
    const { manifest, versions } = lookup(name, range);
    if (!manifest) {
      const i = s.position;
      const near = versions.length ? undefined : closest(name, knownAgents);
      const hint = versions.length
        ? `registered versions: ${versions.join(', ')}`
        : near
          ? `did you mean '${near}'?`
          : `no agent named '${name}' is registered (run 'swarm agent register <path>')`;
      problems.add(`steps[${i}].agent`, `step '${s.id}': agent '${s.agent}' not found; ${hint}`, lineOf?.(['steps', i, 'agent']));
      continue;
    }
    resolved.set(s.id, manifest);
    checkStepInputs(s, manifest, problems, lineOf);
    if (s.budget && !BUDGETED_RUNTIMES.includes(manifest.runtime.type)) {
      problems.add(
        `steps[${s.position}].budget`,
        `step '${s.id}': agent ${manifest.name}@${manifest.version} is a '${manifest.runtime.type}' agent, which makes no model calls: a step budget limits only llm and http agents' steps`,
        lineOf?.(['steps', s.position, 'budget']),
      );
    }
  }
  for (const s of wf.steps) {
    const i = s.position;
    const uses: Array<{ path: PathSegment[]; text: string; field: string; at: PathSegment[] }> = [];
    for (const [at, value] of leaves(s.inputs)) for (const ref of findReferences(value)) uses.push({ path: ref.path, text: `\${${ref.text}}`, field: `inputs.${at.join('.')}`, at: ['inputs', ...at] });
    if (s.condition !== undefined) for (const path of conditionReferences(parseCondition(s.condition))) uses.push({ path, text: path.join('.'), field: 'condition', at: ['condition'] });
    for (const use of uses) {
      const [root, stepId, field, out] = use.path;
      if (root !== 'steps' || field !== 'outputs' || out === undefined) continue;
      if (wf.steps.find((x) => x.id === stepId)?.map !== undefined) {
        // A map step's outputs are the list of its elements' outputs: indexed, never named.
        if (typeof out !== 'number') {
          problems.add(`steps[${i}].${use.field}`, `'${use.text}': step '${String(stepId)}' maps over a list, so its outputs are a list (use \${steps.${String(stepId)}.outputs} or \${steps.${String(stepId)}.outputs[0].${String(out)}})`, lineOf?.(['steps', i, ...use.at]));
        }
        continue;
      }
      const upstream = resolved.get(String(stepId));
      const fields = upstream ? declaredFields(upstream.outputs) : undefined;
      if (fields && !fields.includes(String(out))) {
        problems.add(
          `steps[${i}].${use.field}`,
          `'${use.text}': agent ${upstream?.name}@${upstream?.version} has no output '${String(out)}' (outputs: ${fields.join(', ') || 'none'})`,
          lineOf?.(['steps', i, ...use.at]),
        );
      }
    }
  }
  problems.throwIfAny();
  return resolved;
}
