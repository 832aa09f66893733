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
import { StepError } from '../../core/errors.js';
import type { TaskContract } from '../core/types.js';
import { parseTaskContract } from '../core/contract.js';

export interface ContractProblem {
  path: Array<string | number>;
  message: string;
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
