/**
 * A consensus step's `task:` as the engine reads it: checked at registration (problems with their
 * paths, for line numbers; values that are still `${…}` references are checked when the step runs)
 * and parsed into a TaskContract once its references are resolved.
 *
 * @example
 *   checkConsensusTask({ task_type: 't', inputs: {}, proposers: [], verification: { policy: 'vp.schema_only.v1' }, voting: { voters: [{ id: 'v' }] } });
 *   // [{ path: ['proposers'], message: 'needs at least one proposer' }]
 */
import { StepError } from '../../core/errors.js';
import type { TaskContract } from '../core/types.js';

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
  const problems = parse(raw);
  if (problems.length) {
    throw new StepError('TASK_CONTRACT_INVALID', `step '${stepId}': the task contract is invalid: ${problems.map((p) => `${p.path.length ? p.path.join('.') : 'task'}: ${p.message}`).join('; ')}`, false);
  }
  return raw as TaskContract;
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

/** The contract's shape (the policies check their own parameters when they run). */
function parse(raw: unknown): ContractProblem[] {
  const out: ContractProblem[] = [];
  const add = (path: Array<string | number>, message: string): void => void out.push({ path, message });
  if (!isObject(raw)) return [{ path: [], message: 'the task contract must be a mapping' }];
  if (typeof raw.task_type !== 'string' || !raw.task_type) add(['task_type'], 'needs a task_type (a non-empty string)');
  if (raw.task_id !== undefined && (typeof raw.task_id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(raw.task_id))) add(['task_id'], 'a task id is 1 to 200 letters, digits, ., _, :, / or -');
  if (raw.inputs !== undefined && !isObject(raw.inputs)) add(['inputs'], 'inputs must be a mapping');
  if (raw.output_schema !== undefined && !isObject(raw.output_schema)) add(['output_schema'], 'output_schema must be a JSON Schema (a mapping)');
  if (!Array.isArray(raw.proposers) || raw.proposers.length === 0) add(['proposers'], 'needs at least one proposer ({executor: name} or {agent: name, samples: n})');
  else
    raw.proposers.forEach((p, i) => {
      if (!isObject(p) || (typeof p.executor === 'string') === (typeof p.agent === 'string')) add(['proposers', i], 'a proposer names one executor or one agent');
      else if (p.samples !== undefined && !(Number.isInteger(p.samples) && (p.samples as number) >= 1 && (p.samples as number) <= 100)) add(['proposers', i, 'samples'], 'samples is a whole number from 1 to 100');
    });
  const ver = raw.verification;
  if (!isObject(ver) || typeof ver.policy !== 'string' || !ver.policy) add(['verification'], "needs verification: {policy: <id>} (vp.schema_only.v1, vp.schema_thresholds.v1 or vp.crosscheck.v1)");
  else if (ver.verifiers !== undefined && !Array.isArray(ver.verifiers)) add(['verification', 'verifiers'], 'verifiers must be a list');
  const voting = raw.voting;
  if (!isObject(voting) || !Array.isArray(voting.voters) || voting.voters.length === 0) add(['voting'], 'needs voting: {voters: [{id: …}, …]}');
  else {
    const ids = new Set<string>();
    voting.voters.forEach((v, i) => {
      if (!isObject(v) || typeof v.id !== 'string' || !v.id) return add(['voting', 'voters', i], 'a voter needs an id');
      if (ids.has(v.id)) add(['voting', 'voters', i, 'id'], `voter '${v.id}' is listed twice`);
      ids.add(v.id);
      if (v.external === true && typeof v.public_key !== 'string') add(['voting', 'voters', i, 'public_key'], 'an external voter needs its public_key (base64 Ed25519)');
      if (v.strategy === 'agent' && typeof v.agent !== 'string') add(['voting', 'voters', i, 'agent'], "strategy 'agent' needs the agent that judges");
    });
    if (voting.quorum !== undefined && !(Number.isInteger(voting.quorum) && (voting.quorum as number) >= 1 && (voting.quorum as number) <= voting.voters.length)) {
      add(['voting', 'quorum'], `quorum is a whole number from 1 to the number of voters (${voting.voters.length})`);
    }
    for (const k of ['reveal_deadline_ms', 'max_rounds'] as const) if (voting[k] !== undefined && !(Number.isInteger(voting[k]) && (voting[k] as number) > 0)) add(['voting', k], `${k} is a positive whole number`);
  }
  if (raw.expiry_ms !== undefined && !(Number.isInteger(raw.expiry_ms) && (raw.expiry_ms as number) > 0)) add(['expiry_ms'], 'expiry_ms is a positive whole number of milliseconds');
  if (raw.budget !== undefined) {
    if (!isObject(raw.budget)) add(['budget'], 'budget is a mapping of explore, verify and finalize (USD)');
    else for (const [k, v] of Object.entries(raw.budget)) if (!['explore', 'verify', 'finalize'].includes(k) || typeof v !== 'number' || v < 0) add(['budget', k], 'a budget bucket is explore, verify or finalize, in USD (a number ≥ 0)');
  }
  return out;
}
