/**
 * The reference executor (`swarm executor serve`): the executor contract (docs/executor-api.yaml)
 * in front of the agent packages registered in this deployment's store, so a real executor is one
 * command away.
 *
 *   POST /execute  runs one registered agent (process, builtin or llm) the way a worker runs a step
 *                  (the same executors, outside any run). The agent: the input `agent` when it is a
 *                  string, else the task's `task_type`, else the only agent served (`--agent` once).
 *                  Only agents served (`--agent NAME`, repeatable; default: every registered one).
 *                  Answers are remembered by idempotency key in the state directory: a repeat (a
 *                  retry, or after a restart) returns the same answer without running the agent.
 *   POST /verify   runs a built-in verification policy (src/consensus/policies/).
 *   GET /health, GET /capabilities (its task types, policies and Ed25519 public key).
 *
 * Candidates and verifier results are signed with the executor's Ed25519 identity (created on first
 * start in the state directory, `identity.json`), over the fields in signing.ts. `drain()` (SIGTERM)
 * refuses new work with 503 and resolves once work in flight is done.
 *
 * @example
 *   const ex = await createReferenceExecutor({ swarm, stateDir: '.swarm/executor' });
 *   serve({ fetch: ex.app.fetch, port: 8787 });
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { errorMessage, isSwarmError, StepError } from '../../core/errors.js';
import { candidateHash, generateIdentity, publicKeyOf, signRecord } from '../../consensus/core/crypto.js';
import { evaluatePolicy, POLICIES } from '../../consensus/policies/index.js';
import type { AgentRecord } from '../../store/types.js';
import type { Swarm } from '../../swarm.js';
import type { EvidenceRef } from '../../consensus/core/types.js';
import type { ExecuteRequest, ExecuteResponse, ExecutorCapabilities, VerifyRequest, VerifyResponse } from './contract.js';
import { contractValidator, EXECUTOR_PROTOCOL_VERSION } from './schemas.js';
import { candidateFieldsOf, verifierResultFieldsOf } from './signing.js';
import { contextFromCarrier, tracingEnabled } from '../../observability/tracing.js';

/** The built-in policy ids (as the seed names them), served by `/verify`. */
export const BUILTIN_POLICY_IDS = ['vp.schema_only.v1', 'vp.schema_thresholds.v1', 'vp.crosscheck.v1'] as const;
/** Runtime types the reference executor runs (http and sw4rm agents run elsewhere). */
const RUNNABLE = new Set(['node', 'python', 'bash', 'process', 'builtin', 'llm']);
/** Evidence inline in an answer: an agent's standard output, when it is at most this long. */
const INLINE_LOG_BYTES = 4096;

export interface ReferenceExecutorOptions {
  swarm: Swarm;
  /** Where its identity and remembered answers live (created when absent). */
  stateDir: string;
  /** Agent names served (default: every registered agent of a runnable type). */
  agents?: readonly string[];
  /** Its name in /capabilities (default `swarm-reference`). */
  name?: string;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** A line per request (method, path, task, traceparent) and per agent run. */
  log?: (line: string) => void;
  version?: string;
}

export interface ReferenceExecutor {
  app: Hono;
  /** Base64 of its raw Ed25519 public key. */
  publicKey: string;
  /** Agent runs so far (a remembered answer runs nothing). */
  readonly runs: number;
  /** Refuse new work (503); resolves when the work in flight is done. */
  drain(): Promise<void>;
}

interface Identity {
  publicKey: string;
  privateKey: string;
}

/** The executor's identity: read from `identity.json`, or generated there (mode 0600) on first start. */
export function loadOrCreateIdentity(stateDir: string): Identity {
  const file = join(stateDir, 'identity.json');
  if (existsSync(file)) {
    const id = JSON.parse(readFileSync(file, 'utf8')) as { private_key?: string };
    if (typeof id.private_key !== 'string') throw new Error(`${file} holds no private_key; remove it to generate a new identity`);
    return { privateKey: id.private_key, publicKey: publicKeyOf(id.private_key) };
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const id = generateIdentity();
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ public_key: id.publicKey, private_key: id.privateKey }, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return id;
}

class HttpProblem extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

function problem(c: Context, p: HttpProblem): Response {
  const body = { type: `urn:swarm:executor:${p.code.toLowerCase().replace(/_/g, '-')}`, title: p.code, status: p.status, detail: p.message, code: p.code, retryable: p.retryable };
  return c.body(JSON.stringify(body), p.status, { 'content-type': 'application/problem+json' });
}

const checkExecute = contractValidator('ExecuteRequest');
const checkVerify = contractValidator('VerifyRequest');

/**
 * The reference executor's HTTP app over a Swarm (its store's agents).
 *
 * @example
 *   const ex = await createReferenceExecutor({ swarm, stateDir, agents: ['summarize'] });
 *   const res = await ex.app.request('/capabilities');
 */
export async function createReferenceExecutor(o: ReferenceExecutorOptions): Promise<ReferenceExecutor> {
  const name = o.name ?? 'swarm-reference';
  const identity = loadOrCreateIdentity(o.stateDir);
  const answersDir = join(o.stateDir, 'answers');
  const workRoot = join(o.stateDir, 'work');
  mkdirSync(answersDir, { recursive: true, mode: 0o700 });
  mkdirSync(workRoot, { recursive: true, mode: 0o700 });
  const log = o.log ?? (() => undefined);
  const served = o.agents && o.agents.length ? new Set(o.agents) : undefined;
  const answers = new Map<string, ExecuteResponse>();
  const inflight = new Map<string, Promise<ExecuteResponse>>();
  let draining = false;
  let busy = 0;
  let idle: (() => void) | undefined;
  let runs = 0;

  const answerFile = (key: string): string => join(answersDir, `${createHash('sha256').update(key).digest('hex')}.json`);
  const remembered = (key: string): ExecuteResponse | undefined => {
    const hit = answers.get(key);
    if (hit) return hit;
    const file = answerFile(key);
    if (!existsSync(file)) return undefined;
    const saved = (JSON.parse(readFileSync(file, 'utf8')) as { response: ExecuteResponse }).response;
    answers.set(key, saved);
    return saved;
  };
  const remember = (key: string, res: ExecuteResponse): void => {
    const file = answerFile(key);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ idempotency_key: key, at: Date.now(), response: res }), { mode: 0o600 });
    renameSync(tmp, file);
    answers.set(key, res);
    if (answers.size > 10_000) answers.delete(answers.keys().next().value as string);
  };

  /** The agents served, newest version of each, of a runnable type. */
  const servedAgents = async (): Promise<AgentRecord[]> => {
    const all = await o.swarm.listAgents();
    const newest = new Map<string, AgentRecord>();
    for (const a of all) {
      if (!RUNNABLE.has(a.manifest.runtime.type) || (served && !served.has(a.name))) continue;
      const had = newest.get(a.name);
      if (!had || a.created_at > had.created_at) newest.set(a.name, a);
    }
    return [...newest.values()].sort((a, b) => a.name.localeCompare(b.name));
  };

  const pickAgent = async (req: ExecuteRequest): Promise<AgentRecord> => {
    const asked = typeof req.inputs.agent === 'string' ? req.inputs.agent : undefined;
    const agents = await servedAgents();
    const byName = new Map(agents.map((a) => [a.name, a]));
    const found = (asked !== undefined ? byName.get(asked) : undefined) ?? (asked === undefined ? byName.get(req.task_type) : undefined) ?? (asked === undefined && served?.size === 1 ? agents[0] : undefined);
    if (!found) {
      const what = asked !== undefined ? `input agent '${asked}'` : `task_type '${req.task_type}'`;
      throw new HttpProblem(404, 'AGENT_UNKNOWN', `no agent served for ${what} (served: ${agents.map((a) => a.name).join(', ') || 'none'})`, false);
    }
    return found;
  };

  const runAgent = async (req: ExecuteRequest, traceparent: string | undefined): Promise<ExecuteResponse> => {
    const agent = await pickAgent(req);
    const m = agent.manifest;
    const { agent: _selector, ...inputs } = req.inputs;
    // An llm agent's user turn: the task's `message` or `messages`, else its prompt (and the rest of the inputs).
    if (m.runtime.type === 'llm' && inputs.message === undefined && inputs.messages === undefined) {
      const { prompt, agent_id: _id, ...rest } = inputs;
      inputs.message = [typeof prompt === 'string' ? prompt : '', Object.keys(rest).length ? JSON.stringify(rest) : ''].filter(Boolean).join('\n\n') || '(no input)';
    }
    const left = req.deadline_ms - Date.now();
    if (left <= 0) throw new HttpProblem(504, 'DEADLINE_EXCEEDED', `the deadline passed before agent '${m.name}' could start`, true);
    const timeoutMs = Math.min(left, m.runtime.timeout_seconds * 1000);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new StepError('DEADLINE_EXCEEDED', `agent '${m.name}' did not finish within ${timeoutMs} ms (the task's deadline)`, true)), timeoutMs);
    const keyHash = createHash('sha256').update(req.idempotency_key).digest('hex');
    const workDir = mkdtempSync(join(workRoot, `${keyHash.slice(0, 12)}-`));
    const parent = traceparent && tracingEnabled() ? contextFromCarrier({ traceparent }) : undefined;
    log(`execute ${req.task_id}: agent ${agent.id} (key ${req.idempotency_key}${traceparent ? `, traceparent ${traceparent}` : ''})`);
    runs++;
    try {
      const r = await o.swarm.executorFor(m.runtime.type).execute({
        // Outside any run: an llm agent's session is keyed by the task's idempotency key.
        runId: `executor:${keyHash.slice(0, 32)}`,
        stepId: m.name,
        attempt: 1,
        idempotencyKey: req.idempotency_key,
        agent: { id: agent.id, path: agent.path, manifest: m },
        inputs,
        signal: abort.signal,
        timeoutMs,
        workDir,
        // The caller's span (its traceparent), when tracing is on here: the agent's spans join its trace.
        ...(parent ? { trace: parent } : {}),
      });
      if (r.ok === 'waiting') throw new HttpProblem(422, 'AGENT_WAITING', `agent '${m.name}' paused for a human (${r.reason}); the reference executor does not take approvals`, false);
      if (!r.ok) {
        const e = r.error;
        const status = e.code === 'DEADLINE_EXCEEDED' || e.code === 'STEP_TIMEOUT' ? 504 : e.retryable ? 500 : 422;
        throw new HttpProblem(status, e.code === 'DEADLINE_EXCEEDED' ? e.code : 'AGENT_FAILED', `agent '${m.name}' failed: ${e.code}: ${e.message}`, e.retryable);
      }
      const output = r.outputs;
      const usage = (output as { usage?: { cost_usd?: unknown } } | null)?.usage;
      const cost = typeof usage?.cost_usd === 'number' ? usage.cost_usd : 0;
      const evidence: EvidenceRef[] = [];
      const stdout = r.logs?.stdout ?? '';
      if (stdout && Buffer.byteLength(stdout) <= INLINE_LOG_BYTES) {
        const bytes = Buffer.from(stdout);
        evidence.push({ kind: 'stdout', uri: `data:text/plain;base64,${bytes.toString('base64')}`, digest: createHash('sha256').update(bytes).digest('hex'), size_bytes: bytes.length });
      }
      const answer = { output, evidence, cost_usd: cost };
      const fields = candidateFieldsOf({ task_id: req.task_id, proposer_id: req.proposer_id ?? name, round: req.round ?? 1 }, answer);
      return { ...answer, candidate_hash: fields.candidate_hash as string, signature: signRecord(identity.privateKey, 'candidate', fields) };
    } finally {
      clearTimeout(timer);
      rmSync(workDir, { recursive: true, force: true });
    }
  };

  /** Counts work in flight, for drain. */
  const tracked = async <T>(fn: () => Promise<T>): Promise<T> => {
    busy++;
    try {
      return await fn();
    } finally {
      busy--;
      if (busy === 0) idle?.();
    }
  };

  const readBody = async (c: Context, check: (v: unknown) => string[], what: string): Promise<unknown> => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new HttpProblem(400, 'INPUT_INVALID', `the body must be a JSON ${what}`, false);
    }
    const problems = check(body);
    if (problems.length) throw new HttpProblem(400, 'INPUT_INVALID', `not a valid ${what}: ${problems.join('; ')}`, false);
    return body;
  };

  const app = new Hono();
  app.onError((e, c) => {
    if (e instanceof HttpProblem) return problem(c, e);
    log(`error: ${errorMessage(e)}`);
    return problem(c, new HttpProblem(500, isSwarmError(e) ? e.code : 'EXECUTOR_ERROR', errorMessage(e), !isSwarmError(e) || e.exitCode !== 2));
  });
  app.use('*', async (c, next) => {
    if (o.token !== undefined) {
      const given = Buffer.from(c.req.header('authorization') ?? '');
      const want = Buffer.from(`Bearer ${o.token}`);
      if (given.length !== want.length || !timingSafeEqual(given, want)) throw new HttpProblem(401, 'UNAUTHORIZED', 'a bearer token is required (Authorization: Bearer <token>)', false);
    }
    await next();
  });
  app.get('/health', (c) => c.json({ status: draining ? 'degraded' : 'ok', version: o.version ?? 'unknown' }));
  app.get('/capabilities', async (c) => {
    const caps: ExecutorCapabilities = {
      name,
      task_types: (await servedAgents()).map((a) => a.name),
      policies: [...new Set([...BUILTIN_POLICY_IDS, ...POLICIES.keys()])],
      public_key: identity.publicKey,
      protocol_version: EXECUTOR_PROTOCOL_VERSION,
    };
    return c.json(caps);
  });
  app.post('/execute', async (c) => {
    const req = (await readBody(c, checkExecute, 'ExecuteRequest')) as ExecuteRequest;
    const traceparent = c.req.header('traceparent');
    log(`POST /execute task ${req.task_id} type ${req.task_type} key ${req.idempotency_key}${traceparent ? ` traceparent ${traceparent}` : ''}`);
    const hit = remembered(req.idempotency_key);
    if (hit) return c.json(hit);
    if (draining) throw new HttpProblem(503, 'DRAINING', 'the executor is shutting down; try another or try again', true);
    // A repeat of a key whose work is still going waits for that work (it is not done twice).
    let work = inflight.get(req.idempotency_key);
    if (!work) {
      work = tracked(() => runAgent(req, traceparent)).then((res) => {
        remember(req.idempotency_key, res);
        return res;
      });
      inflight.set(req.idempotency_key, work);
      void work.catch(() => undefined).finally(() => inflight.delete(req.idempotency_key));
    }
    return c.json(await work);
  });
  app.post('/verify', async (c) => {
    const req = (await readBody(c, checkVerify, 'VerifyRequest')) as VerifyRequest;
    log(`POST /verify task ${req.task_id} policy ${req.policy_id} candidate ${req.candidate.candidate_hash}`);
    if (draining) throw new HttpProblem(503, 'DRAINING', 'the executor is shutting down; try another or try again', true);
    return c.json(
      await tracked(async () => {
        // The candidate is named by its output: a hash that does not match is the caller's mistake.
        if (candidateHash(req.candidate.output) !== req.candidate.candidate_hash) {
          throw new HttpProblem(400, 'INPUT_INVALID', `candidate_hash ${req.candidate.candidate_hash} is not the hash of the candidate's output (${candidateHash(req.candidate.output)}; sha256 of its canonical JSON)`, false);
        }
        let outcome;
        try {
          outcome = evaluatePolicy(req.policy_id, req.params ?? {}, {
            ...(req.output_schema ? { output_schema: req.output_schema } : {}),
            candidate: req.candidate,
            ...(req.others ? { others: req.others } : {}),
          });
        } catch (e) {
          throw new HttpProblem(500, 'POLICY_ERROR', `policy ${req.policy_id} failed: ${errorMessage(e)}`, false);
        }
        const answer = { status: outcome.status, reason_codes: outcome.reason_codes, score: outcome.score, evidence: [], cost_usd: 0 };
        const fields = verifierResultFieldsOf({ task_id: req.task_id, candidate_hash: req.candidate.candidate_hash, verifier_id: req.verifier_id ?? name, policy_id: req.policy_id }, answer);
        const res: VerifyResponse = { ...answer, reason: outcome.reason, signature: signRecord(identity.privateKey, 'verifier_result', fields) };
        return res;
      }),
    );
  });

  return {
    app,
    publicKey: identity.publicKey,
    get runs() {
      return runs;
    },
    drain: async () => {
      draining = true;
      if (busy === 0) return;
      await new Promise<void>((resolve) => (idle = resolve));
    },
  };
}

