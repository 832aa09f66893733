/**
 * A consensus step's `task:` as the engine reads it: checked at registration (problems with their
 * paths, for line numbers; values that are still `${…}` references are checked when the step runs)
 * and parsed into a TaskContract once its references are resolved (both by the contract module,
 * src/consensus/core/contract.ts).
 *
 * @example
 *   checkConsensusTask({ task_type: 't', inputs: {}, proposers: [], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v' }] } });
 *   // [{ path: ['proposers'], message: 'needs at least one proposer' }]
 */
import { StepError, UserError } from '../../core/errors.js';
import { validateAgainst } from '../../core/io-schema.js';
import { parseRef, pickRecord } from '../../core/manifest/agent.js';
import type { AgentRecord } from '../../store/types.js';
import type { TaskContract } from '../core/types.js';
import { parseTaskContract } from '../core/contract.js';
import type { AgentInfo } from './deps.js';

export interface ContractProblem {
  path: Array<string | number>;
  message: string;
}

/** A problem's path as a field name, `voting.voters[0].agent`, under `prefix` when given (`steps[2].task`). */
export function contractField(path: ReadonlyArray<string | number>, prefix = ''): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), prefix);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isTemplate = (v: unknown): boolean => typeof v === 'string' && v.includes('${');

/**
 * The problems of a contract. A path whose value is a `${…}` reference (or lies under one) is not
 * judged: it is resolved when the step runs, and checked then.
 */
export function contractProblems(raw: unknown): ContractProblem[] {
  return parse(raw).filter((p) => !underTemplate(raw, p.path));
}

/** Registration's check of a step's `task:` (a whole `${…}` reference is checked when the step runs). */
export function checkConsensusTask(raw: unknown): ContractProblem[] {
  if (isTemplate(raw)) return [];
  if (!isObject(raw)) return [{ path: [], message: 'the task must be a mapping (the task contract), or a ${…} reference to one' }];
  return contractProblems(raw);
}

/**
 * The contract of a step once its references are resolved; a bad one fails the step (not retried:
 * the same contract is as bad the next time).
 */
export function resolveTaskContract(raw: unknown, stepId: string): TaskContract {
  const r = parseTaskContract(raw, `steps.${stepId}.task`);
  if (!r.ok) throw new StepError('TASK_CONTRACT_INVALID', `step '${stepId}': the task contract is invalid: ${r.problems.map((p) => `${p.field || 'task'}: ${p.problem}`).join('; ')}`, false);
  return r.contract;
}

function underTemplate(raw: unknown, path: ReadonlyArray<string | number>): boolean {
  let v: unknown = raw;
  if (isTemplate(v)) return true;
  for (const seg of path) {
    if (Array.isArray(v) && typeof seg === 'number') v = v[seg];
    else if (isObject(v)) v = v[String(seg)];
    else return false;
    if (isTemplate(v)) return true;
  }
  return false;
}

/** core's parseTaskContract, its problems with paths (`voting.voters[1].id` → ['voting', 'voters', 1, 'id']). */
function parse(raw: unknown): ContractProblem[] {
  const r = parseTaskContract(raw, 'task');
  if (r.ok) return [];
  return r.problems.map((p) => ({ path: (p.field ?? '').split(/[.[\]]/).filter(Boolean).map((seg) => (/^\d+$/.test(seg) ? Number(seg) : seg)), message: p.problem }));
}

/** The agent a reference (`name`, `name@range`) picks among registered records, as a consensus member uses it. */
export function agentInfoOf(records: readonly AgentRecord[], ref: string): AgentInfo | undefined {
  const rec = pickRecord(records, parseRef(ref).range);
  return rec ? { name: rec.manifest.name, version: rec.manifest.version, runtime: rec.manifest.runtime.type, inputs: rec.manifest.inputs, outputs: rec.manifest.outputs } : undefined;
}

/**
 * The agents a contract names, checked against the registry: every proposer agent and judge agent
 * (`voting.voters[].agent`) must be registered, and the task's inputs must match each proposer
 * agent's declared inputs (every sample gets them), as a workflow step's agent and inputs must.
 * References (`${…}`) are checked when the step runs. `versionsOf` lists an agent's registered
 * versions by name.
 */
export async function agentProblems(raw: unknown, versionsOf: (name: string) => Promise<readonly AgentRecord[]>): Promise<ContractProblem[]> {
  if (!isObject(raw)) return [];
  const problems: ContractProblem[] = [];
  const uses: Array<{ path: Array<string | number>; ref: string; proposer: boolean }> = [];
  const proposers = raw['proposers'];
  if (Array.isArray(proposers)) proposers.forEach((p, i) => isObject(p) && typeof p['agent'] === 'string' && uses.push({ path: ['proposers', i, 'agent'], ref: p['agent'], proposer: true }));
  const voters = isObject(raw['voting']) ? raw['voting']['voters'] : undefined;
  if (Array.isArray(voters)) voters.forEach((v, i) => isObject(v) && typeof v['agent'] === 'string' && uses.push({ path: ['voting', 'voters', i, 'agent'], ref: v['agent'], proposer: false }));
  const inputs = raw['inputs'] ?? {};
  const checked = new Set<string>();
  for (const u of uses) {
    if (underTemplate(raw, u.path)) continue;
    const versions = await versionsOf(parseRef(u.ref).name);
    const info = agentInfoOf(versions, u.ref);
    if (!info) {
      const have = versions.length ? ` (registered versions: ${versions.map((a) => a.version).join(', ')})` : '';
      problems.push({ path: u.path, message: `agent '${u.ref}' is not registered${have}; register it with 'swarm agent register'` });
      continue;
    }
    if (!u.proposer || checked.has(u.ref) || !isObject(inputs) || underTemplate(raw, ['inputs']) || JSON.stringify(inputs).includes('${')) continue;
    checked.add(u.ref);
    const bad = validateAgainst(info.inputs, structuredClone(inputs));
    if (bad.length) problems.push({ path: ['inputs'], message: `do not match agent ${info.name}@${info.version} (proposers[${String(u.path[1])}]): ${bad.join('; ')}` });
  }
  return problems;
}

/** A contract refused at submission, with every problem (a caller that has the file names each with its line). */
export class TaskContractError extends UserError {
  constructor(readonly problems: readonly ContractProblem[]) {
    super('TASK_CONTRACT_INVALID', `the task contract is invalid: ${problems.map((p) => `${p.path.length ? p.path.join('.') : '(contract)'}: ${p.message}`).join('; ')}`, { field: problems[0]?.path.join('.') ?? '' });
  }
}
