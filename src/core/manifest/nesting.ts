/**
 * Register-time checks of map steps (`map:`, `max_concurrency:`) and sub-workflow steps
 * (`workflow: name@version`): what a workflow.yaml says on its own, then what the registry knows
 * (the child workflow exists, its inputs fit, no workflow reaches itself through its children).
 *
 * @example
 *   checkSubWorkflows(manifest, 'workflows/parent/workflow.yaml', lookup, lineOf); // throws ManifestError
 */
import { closest } from '../suggest.js';
import { findReferences, type PathSegment } from '../template.js';
import { validateAgainst, type IoSchema } from '../io-schema.js';
import { isValidRange, parseRef, pickRecord } from './agent.js';
import { isReservedName, ProblemList, reservedProblem } from './problems.js';
import type { StepSpec, WorkflowManifest } from './workflow.js';

/** The most elements one map step may have (a longer list fails the step when it runs). */
export const MAX_MAP_ELEMENTS = 10_000;

/** What a workflow's own checks pass to `checkNesting` for one step. */
export interface NestingContext {
  ids: Map<string, number>;
  variables: Record<string, unknown>;
  workflowName: string;
  at: (...p: PathSegment[]) => number | undefined;
  problems: ProblemList;
  /** The workflow's reference check: returns the step a reference depends on, throws a readable problem. */
  checkRef: (path: PathSegment[]) => string | undefined;
}

interface NestingStep {
  id: string;
  agent?: string;
  /** `sleep` or `wait` (step-kinds.ts): a step that needs neither agent nor workflow. */
  kind?: string;
  workflow?: string;
  map?: string;
  max_concurrency?: number;
}

/** Check one step's `agent:` / `workflow:` / `map:` / `max_concurrency:`; returns the steps its map reads. */
export function checkNesting(s: NestingStep, i: number, ctx: NestingContext): { deps: string[] } {
  const { problems, at } = ctx;
  const where = `steps[${i}]`;
  if (s.agent !== undefined && s.workflow !== undefined) {
    problems.add(`${where}.workflow`, `step '${s.id}' has both agent: and workflow:; a step runs an agent or a sub-workflow, not both`, at('workflow'));
  } else if (s.agent === undefined && s.workflow === undefined && s.kind === undefined) {
    problems.add(`${where}.agent`, `is required: step '${s.id}' needs agent: (the agent it runs), workflow: (the sub-workflow it runs) or kind: sleep / kind: wait (run by Swarm itself)`, at());
  }
  if (s.workflow !== undefined) {
    const { name, range } = parseRef(s.workflow);
    if (!isValidRange(range)) problems.add(`${where}.workflow`, `'${s.workflow}' has an invalid version (use name@1.2.3, name@^1.0, or just name for the latest)`, at('workflow'));
    if (isReservedName(name)) problems.add(`${where}.workflow`, reservedProblem(name, 'a workflow name'), at('workflow'));
    else if (name === ctx.workflowName) {
      problems.add(`${where}.workflow`, `step '${s.id}': workflow '${name}' cannot run itself as a sub-workflow (cycle: ${name} → ${name})`, at('workflow'));
    }
  }
  if (s.max_concurrency !== undefined && s.map === undefined) {
    problems.add(`${where}.max_concurrency`, `step '${s.id}': max_concurrency limits the elements of a map; add map: or remove it`, at('max_concurrency'));
  }
  const deps: string[] = [];
  if (s.map !== undefined) {
    try {
      const dep = checkMapSource(s.map, ctx);
      if (dep) deps.push(dep);
    } catch (e) {
      problems.add(`${where}.map`, `step '${s.id}': ${(e as Error).message}`, at('map'));
    }
  }
  return { deps };
}

/** `map:` must be one `${…}` reference that may be a list; returns the step it reads, if any. */
function checkMapSource(map: string, ctx: NestingContext): string | undefined {
  const refs = findReferences(map);
  const ref = refs[0];
  if (refs.length !== 1 || !ref || map.trim() !== `\${${ref.text}}`) {
    throw new Error(`map: must be one reference to a list, like \${steps.list.outputs.items} or \${trigger.files} (got '${map}')`);
  }
  const [root, second, third] = ref.path;
  if (root === 'map') throw new Error(`map: cannot read \${${ref.text}}: a map runs over a list known before it starts`);
  if (root === 'secrets' || root === 'run' || root === 'error') throw new Error(`map: \${${ref.text}} is not a list (map over step outputs, the trigger, a variable or config)`);
  const dep = ctx.checkRef(ref.path);
  if (root === 'steps') {
    if (third === undefined) throw new Error(`map: \${${ref.text}} is a step, not a list (use \${steps.${String(second)}.outputs.<name>})`);
    if (third !== 'outputs') throw new Error(`map: \${${ref.text}} is a step's ${String(third)}, not a list`);
  }
  if (root === 'variables' && second !== undefined) {
    let v: unknown = ctx.variables;
    for (const seg of ref.path.slice(1)) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
    // A variable's value is known now: one that is not a list can never be mapped over.
    if (v !== undefined && !Array.isArray(v) && !(typeof v === 'string' && v.includes('${'))) {
      throw new Error(`map: \${${ref.text}} is ${describe(v)}, not a list`);
    }
  }
  return dep;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v} (${JSON.stringify(v)})`;
}

/** `${map.item}` / `${map.index}` in a step's inputs: only in a map step, only those two. */
export function checkMapReference(path: PathSegment[], inMapStep: boolean): void {
  if (!inMapStep) throw new Error(`'\${${path.join('.')}}' is only available in a step with map: (each element's \${map.item} and \${map.index})`);
  const field = path[1];
  if (field !== 'item' && field !== 'index') throw new Error(`'map.${String(field)}' is not known (use \${map.item} or \${map.index})`);
  if (field === 'index' && path.length > 2) throw new Error(`'\${${path.join('.')}}': map.index is a number`);
}

/** The registered versions of a workflow (empty when there are none). */
export type WorkflowLookup = (name: string) => ReadonlyArray<{ version: string; manifest: WorkflowManifest; enabled?: boolean }>;

/**
 * Check a workflow's sub-workflow steps against the registry: each names a registered workflow (at
 * a matching version), its static inputs fit the child's `inputs`, and no chain of sub-workflows
 * leads back to this workflow (A → B → A). Every problem is reported at once.
 */
export function checkSubWorkflows(wf: WorkflowManifest, file: string, lookup: WorkflowLookup, lineOf?: (p: PathSegment[]) => number | undefined, known: readonly string[] = []): void {
  const problems = new ProblemList(file);
  for (const s of wf.steps) {
    if (s.workflow === undefined) continue;
    const field = `steps[${s.position}].workflow`;
    const line = lineOf?.(['steps', s.position, 'workflow']);
    const { name, range } = parseRef(s.workflow);
    const versions = lookup(name);
    const child = pickRecord(versions, range);
    if (!child) {
      const near = versions.length ? undefined : closest(name, known);
      const hint = versions.length ? `registered versions: ${versions.map((v) => v.version).join(', ')}` : near ? `did you mean '${near}'?` : `register it first ('swarm workflow register <path>')`;
      problems.add(field, `step '${s.id}': sub-workflow '${s.workflow}' not found; ${hint}`, line);
      continue;
    }
    const cycle = findCycle(wf.name, child.manifest, lookup, [wf.name, name]);
    if (cycle) problems.add(field, `step '${s.id}': sub-workflow cycle: ${cycle.join(' → ')}`, line);
    checkChildInputs(s, child.manifest, problems, lineOf);
  }
  problems.throwIfAny();
}

/** A path from `child` back to `root` through registered sub-workflows (each workflow visited once). */
function findCycle(root: string, child: WorkflowManifest, lookup: WorkflowLookup, path: string[], seen = new Set<string>()): string[] | undefined {
  if (seen.has(child.name)) return undefined;
  seen.add(child.name);
  for (const s of child.steps) {
    if (s.workflow === undefined) continue;
    const { name, range } = parseRef(s.workflow);
    if (name === root) return [...path, root];
    const next = pickRecord(lookup(name), range);
    if (!next) continue;
    const found = findCycle(root, next.manifest, lookup, [...path, name], seen);
    if (found) return found;
  }
  return undefined;
}

/** Inputs known before the run: required child inputs are given, and inputs without references fit. */
function checkChildInputs(s: StepSpec, child: WorkflowManifest, problems: ProblemList, lineOf?: (p: PathSegment[]) => number | undefined): void {
  const schema: (IoSchema & { properties?: Record<string, IoSchema & { default?: unknown }>; required?: string[] }) | undefined = child.inputs;
  if (!schema) return;
  const where = `steps[${s.position}].inputs`;
  const line = lineOf?.(['steps', s.position, 'inputs']) ?? lineOf?.(['steps', s.position]);
  if (findReferences(s.inputs).length === 0) {
    const found = validateAgainst(schema, s.inputs);
    if (found.length) problems.add(where, `step '${s.id}': inputs do not fit workflow ${child.name}@${child.version}'s inputs: ${found.join('; ')}`, line);
    return;
  }
  const props = schema.properties ?? {};
  for (const name of schema.required ?? []) {
    if (!Object.hasOwn(s.inputs, name) && (Object.hasOwn(props, name) ? props[name]?.default : undefined) === undefined) {
      problems.add(where, `step '${s.id}': workflow ${child.name}@${child.version} requires input '${name}'`, line);
    }
  }
}
