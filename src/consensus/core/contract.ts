/**
 * Reading a task contract (a `swarm task submit` file, or a `kind: consensus` step's `task:`): every
 * problem is collected, each naming its path (`voting.quorum: 4 is more than the 3 voters`), and a
 * valid contract comes back with its defaults filled in, so what TASK_CREATED records is the whole
 * contract the task runs under.
 *
 * Defaults (CONTRACT_DEFAULTS): quorum = a majority of the voters (⌊n/2⌋ + 1), reveal deadline 60 s,
 * 3 vote rounds, expiry 10 min, 1 proposal round, knowledge lookup `exact` (min similarity 0.85),
 * 1 sample per proposer, one local verifier, voter strategy `best_verified`. Durations may be given
 * as `*_ms` numbers or as strings (`reveal_deadline: 30s`, `expiry: 10m`; units s, m, h, d).
 *
 * @example
 *   const r = parseTaskContract(JSON.parse(text), 'task.json');
 *   if (!r.ok) throw new TaskContractError(r.problems);
 *   r.contract.voting.quorum  // 2 for three voters
 *   // or, throwing TaskContractError (exit 2) with every problem:
 *   const contract = loadTaskContract(JSON.parse(text), 'task.json');
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { formatManifestProblem, UserError, type ManifestProblem } from '../../core/errors.js';
import { parseDuration } from '../../triggers/schedule.js';
import { schemaProblem } from '../policies/common.js';
import { POLICIES } from '../policies/index.js';
import { sha256Hex } from './crypto.js';
import { MAX_EVENT_PAYLOAD_BYTES, payloadBytes } from './limits.js';
import type { ExploreSpec, KnowledgeSpec, ProposerSpec, StageBudgets, TaskContract, VerifierSpec, VoterSpec } from './types.js';
import { BUDGET_BUCKETS } from './types.js';

/** The defaults a contract gets for what it leaves out. */
export const CONTRACT_DEFAULTS = {
  reveal_deadline_ms: 60_000,
  max_rounds: 3,
  expiry_ms: 10 * 60_000,
  explore_max_rounds: 1,
  knowledge_lookup: 'exact',
  min_similarity: 0.85,
  samples: 1,
  voter_strategy: 'best_verified',
} as const;

/** The most samples one proposer entry may ask for (each is a separate run of the agent or call of the executor). */
export const MAX_SAMPLES = 100;

/** The hash of a task's inputs (sha256 hex of their canonical JSON): with task_type, the knowledge store's EXACT key. */
export function inputsHash(inputs: Record<string, unknown>): string {
  return sha256Hex(canonicalJson(inputs));
}

/** Member ids: visible ASCII without spaces, short enough that `consensus:<id>` names a signing key. */
export const MEMBER_ID_PATTERN = /^[\x21-\x7e]{1,190}$/;

/** A majority of `n` voters: ⌊n/2⌋ + 1. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** A task contract is not valid; every problem is listed, one per line. Exit 2. */
export class TaskContractError extends UserError {
  readonly problems: readonly ManifestProblem[];
  constructor(problems: readonly ManifestProblem[]) {
    super('TASK_CONTRACT_INVALID', problems.map(formatManifestProblem).join('\n'), { file: problems[0]?.file, field: problems[0]?.field, ...(problems.length > 1 ? { problems } : {}) });
    this.problems = problems;
  }
}

export type ContractCheck = { ok: true; contract: TaskContract } | { ok: false; problems: ManifestProblem[] };

/** One participant of a task as the contract names it (before keys are attached: see Member). */
export interface Participant {
  role: 'proposer' | 'verifier' | 'voter';
  id: string;
  executor?: string;
  agent?: string;
  /** The sample number (1-based) of a proposer entry with `samples`. */
  sample?: number;
  local?: boolean;
  external?: boolean;
  strategy?: 'best_verified' | 'agent';
  /** An external voter's own key. */
  public_key?: string;
}

/**
 * The participants of a (resolved) contract, in contract order: each proposer sample, each verifier,
 * each voter, with its member id. Proposer ids: `executor:<name>` and `agent:<name>#<i>` by default;
 * an entry's own `id` (with `#<i>` when it has several samples). Verifier ids: `verifier:local`,
 * `executor:<name>`.
 */
export function contractParticipants(c: TaskContract): Participant[] {
  const out: Participant[] = [];
  for (const p of c.proposers) {
    const samples = p.samples ?? CONTRACT_DEFAULTS.samples;
    for (let i = 1; i <= samples; i++) {
      let id: string;
      if (p.id) id = samples > 1 ? `${p.id}#${i}` : p.id;
      else if (p.executor) id = samples > 1 ? `executor:${p.executor}#${i}` : `executor:${p.executor}`;
      else id = `agent:${p.agent ?? ''}#${i}`;
      out.push({ role: 'proposer', id, ...(p.executor ? { executor: p.executor } : {}), ...(p.agent ? { agent: p.agent } : {}), sample: i });
    }
  }
  for (const v of c.verification.verifiers ?? [{ local: true }]) {
    const id = v.id ?? (v.executor ? `executor:${v.executor}` : 'verifier:local');
    out.push({ role: 'verifier', id, ...(v.executor ? { executor: v.executor } : { local: true }) });
  }
  for (const v of c.voting.voters) {
    if (v.external) out.push({ role: 'voter', id: v.id, external: true, ...(v.public_key ? { public_key: v.public_key } : {}) });
    else out.push({ role: 'voter', id: v.id, strategy: v.strategy ?? CONTRACT_DEFAULTS.voter_strategy, ...(v.agent ? { agent: v.agent } : {}) });
  }
  return out;
}

/** Whether a string is base64 of a 32-byte Ed25519 public key. */
export function isPublicKey(v: unknown): v is string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]{43}=$/.test(v)) return false;
  return Buffer.from(v, 'base64').length === 32;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const str = (v: unknown): string => JSON.stringify(v) ?? String(v);

class Checker {
  readonly problems: ManifestProblem[] = [];
  constructor(private readonly where: string) {}
  add(field: string, problem: string): void {
    this.problems.push({ file: this.where, field, problem });
  }
  /** Report keys of `o` not in `allowed`. */
  known(o: Obj, at: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.add(at ? `${at}.${k}` : k, `unknown field (allowed: ${allowed.join(', ')})`);
  }
  /** A duration given as `<name>_ms` (a number) or `<name>` (a string like `30s`): milliseconds, or undefined. */
  duration(o: Obj, at: string, name: string): number | undefined {
    const msKey = `${name}_ms`;
    const ms = o[msKey];
    const text = o[name];
    const path = (k: string): string => (at ? `${at}.${k}` : k);
    if (ms !== undefined && text !== undefined) {
      this.add(path(name), `give ${name} or ${msKey}, not both`);
      return undefined;
    }
    if (ms !== undefined) {
      if (!isInt(ms) || ms <= 0) this.add(path(msKey), `${str(ms)} must be a whole number of milliseconds > 0`);
      else return ms;
    }
    if (text !== undefined) {
      const parsed = typeof text === 'string' ? parseDuration(text) : undefined;
      if (parsed === undefined || parsed <= 0) this.add(path(name), `${str(text)} is not a duration (write 30s, 10m, 2h or 1d, or ${msKey} in milliseconds)`);
      else return parsed;
    }
    return undefined;
  }
  posInt(v: unknown, field: string, what = 'an integer ≥ 1'): v is number {
    if (v === undefined) return false;
    if (!isInt(v) || v < 1) {
      this.add(field, `${str(v)} must be ${what}`);
      return false;
    }
    return true;
  }
}

function checkProposers(k: Checker, raw: unknown): ProposerSpec[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    k.add('proposers', raw === undefined ? 'is required (a list of {executor} or {agent, samples})' : 'must be a non-empty list of {executor} or {agent, samples}');
    return [];
  }
  return raw.map((p, i) => {
    const at = `proposers[${i}]`;
    if (!isObj(p)) {
      k.add(at, 'must be {executor: <name>} or {agent: <name>, samples: N}');
      return {};
    }
    k.known(p, at, ['executor', 'agent', 'samples', 'id']);
    const hasExec = p['executor'] !== undefined;
    const hasAgent = p['agent'] !== undefined;
    if (hasExec === hasAgent) k.add(at, hasExec ? 'names both executor and agent; a proposer is exactly one of them' : 'needs exactly one of executor or agent');
    for (const f of ['executor', 'agent', 'id'] as const) if (p[f] !== undefined && (typeof p[f] !== 'string' || p[f] === '')) k.add(`${at}.${f}`, 'must be a non-empty string');
    if (p['samples'] !== undefined && k.posInt(p['samples'], `${at}.samples`) && (p['samples']) > MAX_SAMPLES) k.add(`${at}.samples`, `${p['samples']} is more than ${MAX_SAMPLES}`);
    const spec: ProposerSpec = {};
    if (typeof p['executor'] === 'string') spec.executor = p['executor'];
    if (typeof p['agent'] === 'string') spec.agent = p['agent'];
    if (typeof p['id'] === 'string') spec.id = p['id'];
    spec.samples = isInt(p['samples']) ? p['samples'] : CONTRACT_DEFAULTS.samples;
    return spec;
  });
}

function checkVerification(k: Checker, raw: unknown, hasSchema: boolean): TaskContract['verification'] {
  if (!isObj(raw)) {
    k.add('verification', raw === undefined ? 'is required ({policy: vp.schema_only.v1, params: {...}})' : 'must be {policy, params, verifiers}');
    return { policy: '', params: {}, verifiers: [] };
  }
  k.known(raw, 'verification', ['policy', 'params', 'verifiers']);
  const policyId = raw['policy'];
  const params = raw['params'] === undefined ? {} : raw['params'];
  if (!isObj(params)) k.add('verification.params', 'must be an object');
  const policy = typeof policyId === 'string' ? POLICIES.get(policyId) : undefined;
  if (typeof policyId !== 'string' || policyId === '') k.add('verification.policy', `is required (one of ${[...POLICIES.keys()].join(', ')})`);
  else if (!policy) k.add('verification.policy', `unknown policy '${policyId}' (known: ${[...POLICIES.keys()].join(', ')})`);
  else {
    if (isObj(params)) for (const p of policy.checkParams(params)) k.add(`verification.params.${p.split(':')[0] ?? ''}`, p.slice(p.indexOf(':') + 1).trim());
    if (policy.requiresOutputSchema && !hasSchema) k.add('verification.policy', `${policy.id} checks candidates against output_schema, and the contract has none`);
  }
  let verifiers: VerifierSpec[] = [{ local: true }];
  const rawV = raw['verifiers'];
  if (rawV !== undefined) {
    if (!Array.isArray(rawV) || rawV.length === 0) k.add('verification.verifiers', 'must be a non-empty list of {local: true} or {executor: <name>}');
    else
      verifiers = rawV.map((v, i) => {
        const at = `verification.verifiers[${i}]`;
        if (!isObj(v)) {
          k.add(at, 'must be {local: true} or {executor: <name>}');
          return {};
        }
        k.known(v, at, ['executor', 'local', 'id']);
        if (v['local'] !== undefined && typeof v['local'] !== 'boolean') k.add(`${at}.local`, 'must be true or false');
        const exec = v['executor'];
        if (exec !== undefined && (typeof exec !== 'string' || exec === '')) k.add(`${at}.executor`, 'must be a non-empty string');
        if (exec !== undefined && v['local'] === true) k.add(at, 'is either local or an executor, not both');
        if (v['id'] !== undefined && (typeof v['id'] !== 'string' || v['id'] === '')) k.add(`${at}.id`, 'must be a non-empty string');
        const spec: VerifierSpec = typeof exec === 'string' ? { executor: exec } : { local: true };
        if (typeof v['id'] === 'string') spec.id = v['id'];
        return spec;
      });
  }
  return { policy: typeof policyId === 'string' ? policyId : '', params: isObj(params) ? params : {}, verifiers };
}

function checkVoting(k: Checker, raw: unknown): TaskContract['voting'] {
  if (!isObj(raw)) {
    k.add('voting', raw === undefined ? 'is required ({voters: [...], quorum, reveal_deadline})' : 'must be {voters, quorum, reveal_deadline, max_rounds}');
    return { voters: [] };
  }
  k.known(raw, 'voting', ['voters', 'quorum', 'reveal_deadline', 'reveal_deadline_ms', 'max_rounds']);
  const voters: VoterSpec[] = [];
  const rawVoters = raw['voters'];
  if (!Array.isArray(rawVoters) || rawVoters.length === 0) k.add('voting.voters', rawVoters === undefined ? 'is required (a list of {id})' : 'must be a non-empty list of {id}');
  else
    rawVoters.forEach((v, i) => {
      const at = `voting.voters[${i}]`;
      if (!isObj(v)) {
        k.add(at, 'must be {id, strategy} or {id, external: true, public_key}');
        return;
      }
      k.known(v, at, ['id', 'strategy', 'agent', 'external', 'public_key']);
      const id = v['id'];
      if (typeof id !== 'string' || id === '') k.add(`${at}.id`, 'is required (a non-empty string)');
      const spec: VoterSpec = { id: typeof id === 'string' ? id : '' };
      if (v['external'] !== undefined && typeof v['external'] !== 'boolean') k.add(`${at}.external`, 'must be true or false');
      if (v['external'] === true) {
        spec.external = true;
        if (v['strategy'] !== undefined || v['agent'] !== undefined) k.add(at, 'an external voter casts its own votes; strategy and agent are for kernel-managed voters');
        if (v['public_key'] === undefined) k.add(`${at}.public_key`, 'is required for an external voter (base64 of its 32-byte Ed25519 public key)');
        else if (!isPublicKey(v['public_key'])) k.add(`${at}.public_key`, 'is not base64 of a 32-byte Ed25519 public key');
        else spec.public_key = v['public_key'];
      } else {
        if (v['public_key'] !== undefined) k.add(`${at}.public_key`, 'only an external voter brings its own key (add external: true); a kernel-managed voter signs with a kernel-held key');
        const strategy = v['strategy'] ?? CONTRACT_DEFAULTS.voter_strategy;
        if (strategy !== 'best_verified' && strategy !== 'agent') k.add(`${at}.strategy`, `${str(strategy)} must be one of "best_verified", "agent"`);
        else spec.strategy = strategy;
        if (strategy === 'agent' && (typeof v['agent'] !== 'string' || v['agent'] === '')) k.add(`${at}.agent`, 'is required with strategy agent (the agent package that picks a candidate)');
        if (strategy !== 'agent' && v['agent'] !== undefined) k.add(`${at}.agent`, 'is only used with strategy: agent');
        if (typeof v['agent'] === 'string' && strategy === 'agent') spec.agent = v['agent'];
      }
      voters.push(spec);
    });
  const quorum = raw['quorum'];
  let q = majority(voters.length);
  if (quorum !== undefined && k.posInt(quorum, 'voting.quorum')) {
    if (voters.length > 0 && quorum > voters.length) k.add('voting.quorum', `${quorum} is more than the ${voters.length} voter${voters.length === 1 ? '' : 's'}`);
    q = quorum;
  }
  const deadline = k.duration(raw, 'voting', 'reveal_deadline') ?? CONTRACT_DEFAULTS.reveal_deadline_ms;
  let maxRounds: number = CONTRACT_DEFAULTS.max_rounds;
  if (raw['max_rounds'] !== undefined && k.posInt(raw['max_rounds'], 'voting.max_rounds')) maxRounds = raw['max_rounds'];
  return { voters, quorum: q, reveal_deadline_ms: deadline, max_rounds: maxRounds };
}

function checkBudget(k: Checker, raw: unknown): StageBudgets | undefined {
  if (raw === undefined) return undefined;
  if (!isObj(raw)) {
    k.add('budget', 'must be {explore, verify, finalize} in USD');
    return undefined;
  }
  k.known(raw, 'budget', BUDGET_BUCKETS);
  const out: StageBudgets = {};
  for (const b of BUDGET_BUCKETS) {
    const v = raw[b];
    if (v === undefined) continue;
    if (!isNum(v) || v < 0) k.add(`budget.${b}`, `${str(v)} must be a number of USD ≥ 0`);
    else out[b] = v;
  }
  return out;
}

function checkExplore(k: Checker, raw: unknown): ExploreSpec {
  const out: ExploreSpec = { max_rounds: CONTRACT_DEFAULTS.explore_max_rounds };
  if (raw === undefined) return out;
  if (!isObj(raw)) {
    k.add('explore', 'must be {topk, stop: {no_new_evidence_rounds}, max_rounds}');
    return out;
  }
  k.known(raw, 'explore', ['topk', 'stop', 'max_rounds']);
  if (k.posInt(raw['topk'], 'explore.topk')) out.topk = raw['topk'];
  if (k.posInt(raw['max_rounds'], 'explore.max_rounds')) out.max_rounds = raw['max_rounds'];
  const stop = raw['stop'];
  if (stop !== undefined) {
    if (!isObj(stop)) k.add('explore.stop', 'must be {no_new_evidence_rounds}');
    else {
      k.known(stop, 'explore.stop', ['no_new_evidence_rounds']);
      if (k.posInt(stop['no_new_evidence_rounds'], 'explore.stop.no_new_evidence_rounds')) out.stop = { no_new_evidence_rounds: stop['no_new_evidence_rounds'] };
    }
  }
  return out;
}

function checkKnowledge(k: Checker, raw: unknown): KnowledgeSpec {
  const out: KnowledgeSpec = { lookup: CONTRACT_DEFAULTS.knowledge_lookup, min_similarity: CONTRACT_DEFAULTS.min_similarity, reuse_blacklist: [] };
  if (raw === undefined) return out;
  if (!isObj(raw)) {
    k.add('knowledge', 'must be {lookup, min_similarity, reuse_blacklist}');
    return out;
  }
  k.known(raw, 'knowledge', ['lookup', 'min_similarity', 'reuse_blacklist']);
  const lookup = raw['lookup'];
  if (lookup !== undefined) {
    if (lookup !== 'off' && lookup !== 'exact' && lookup !== 'similar') k.add('knowledge.lookup', `${str(lookup)} must be one of "off", "exact", "similar"`);
    else out.lookup = lookup;
  }
  const ms = raw['min_similarity'];
  if (ms !== undefined) {
    if (!isNum(ms) || ms < 0 || ms > 1) k.add('knowledge.min_similarity', `${str(ms)} must be a number from 0 to 1`);
    else out.min_similarity = ms;
  }
  const bl = raw['reuse_blacklist'];
  if (bl !== undefined) {
    if (!Array.isArray(bl) || bl.some((x) => typeof x !== 'string' || x === '')) k.add('knowledge.reuse_blacklist', 'must be a list of task ids or candidate hashes');
    else out.reuse_blacklist = (bl as string[]).slice();
  }
  return out;
}

const TOP_LEVEL = ['task_id', 'task_type', 'inputs', 'output_schema', 'proposers', 'verification', 'voting', 'budget', 'explore', 'expiry', 'expiry_ms', 'knowledge'] as const;

/**
 * Check a raw contract (parsed JSON or YAML). `where` names it in problems (a file, or
 * `workflow.yaml: steps[2].task`). Returns the contract with its defaults filled in, or every problem.
 */
export function parseTaskContract(raw: unknown, where: string): ContractCheck {
  const k = new Checker(where);
  if (!isObj(raw)) {
    k.add('', 'a task contract must be an object ({task_type, inputs, proposers, verification, voting, …})');
    return { ok: false, problems: k.problems };
  }
  k.known(raw, '', TOP_LEVEL);
  const taskId = raw['task_id'];
  if (taskId !== undefined && (typeof taskId !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(taskId))) {
    k.add('task_id', `${str(taskId)} must be 1-200 characters of letters, digits and . _ : / - (starting with a letter or digit)`);
  }
  const taskType = raw['task_type'];
  if (typeof taskType !== 'string' || taskType === '') k.add('task_type', 'is required (a non-empty string naming the kind of task)');
  const inputs = raw['inputs'] ?? {};
  if (!isObj(inputs)) k.add('inputs', 'must be an object');
  const schema = raw['output_schema'];
  if (schema !== undefined) {
    const problem = schemaProblem(schema);
    if (problem) k.add('output_schema', problem);
  }
  const proposers = checkProposers(k, raw['proposers']);
  const verification = checkVerification(k, raw['verification'], schema !== undefined);
  const voting = checkVoting(k, raw['voting']);
  const budget = checkBudget(k, raw['budget']);
  const explore = checkExplore(k, raw['explore']);
  const expiry = k.duration(raw, '', 'expiry') ?? CONTRACT_DEFAULTS.expiry_ms;
  const knowledge = checkKnowledge(k, raw['knowledge']);

  const contract: TaskContract = {
    ...(typeof taskId === 'string' ? { task_id: taskId } : {}),
    task_type: typeof taskType === 'string' ? taskType : '',
    inputs: isObj(inputs) ? inputs : {},
    ...(isObj(schema) ? { output_schema: schema } : {}),
    proposers,
    verification,
    voting,
    ...(budget ? { budget } : {}),
    explore,
    expiry_ms: expiry,
    knowledge,
  };

  if (k.problems.length === 0) {
    // Member ids are unique within a role: a signature is checked against (role, id).
    const seen = new Map<string, string>();
    contractParticipants(contract).forEach((p) => {
      const where = p.role === 'proposer' ? 'proposers' : p.role === 'verifier' ? 'verification.verifiers' : 'voting.voters';
      if (!MEMBER_ID_PATTERN.test(p.id)) k.add(where, `member id ${JSON.stringify(p.id)} must be 1-190 visible ASCII characters without spaces (the kernel's key for it is named consensus:<id>)`);
      const key = `${p.role}\u0000${p.id}`;
      if (seen.has(key)) k.add(where, `two ${p.role}s have the id '${p.id}'; give each its own id`);
      seen.set(key, p.id);
    });
    const size = payloadBytes(contract);
    if (size > MAX_EVENT_PAYLOAD_BYTES) k.add('', `the contract is ${size} bytes of JSON; at most ${MAX_EVENT_PAYLOAD_BYTES} (put large inputs behind references)`);
  }
  return k.problems.length > 0 ? { ok: false, problems: k.problems } : { ok: true, contract };
}

/** parseTaskContract, throwing TaskContractError (exit 2) with every problem. */
export function loadTaskContract(raw: unknown, where: string): TaskContract {
  const r = parseTaskContract(raw, where);
  if (!r.ok) throw new TaskContractError(r.problems);
  return r.contract;
}
