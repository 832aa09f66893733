/**
 * The consensus driver's dependencies as a Swarm provides them (src/swarm.ts calls this once, so it
 * stays thin): the ledger's event recording, agent runs through the executor of the agent's runtime,
 * kernel signing keys, and the executors registry.
 *
 * @example
 *   const runner = consensusRunner(consensusDeps({ store, ledger, executorFor, workRoot, kernelKey, executor }));
 *   swarm.worker({ consensus: runner });
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { StepError } from '../../core/errors.js';
import { validateAgainst } from '../../core/io-schema.js';
import { parseRef, pickRecord } from '../../core/manifest/agent.js';
import type { Ledger } from '../../engine/ledger.js';
import type { ConsensusStepRunner } from '../../engine/step-runner.js';
import type { Executor } from '../../executors/executor.js';
import type { Store } from '../../store/store.js';
import type { AgentRecord } from '../../store/types.js';
import { runInContext } from '../../observability/tracing.js';
import type { ConsensusDeps, KnowledgeHooks } from './deps.js';
import type { Knowledge } from '../knowledge/index.js';
import { lazyModule } from '../../core/lazy-module.js';

const consensusDriver = lazyModule(() => import('./driver.js'));
/** The contract checks (with the policies they import), loaded with the driver: at the first consensus step. */
const contractModule = lazyModule(() => import('./contract.js'));

export interface ConsensusHost {
  store: Store;
  ledger: Ledger;
  executorFor: (runtimeType: string) => Executor;
  /** Root of the agents' per-attempt work directories. */
  workRoot: string;
  kernelKey: ConsensusDeps['kernelKey'];
  executor: ConsensusDeps['executor'];
  knowledge?: KnowledgeHooks;
  faults?: ReadonlySet<string>;
  log?: (message: string) => void;
  /** Replaces secret values in event data before it is stored. */
  redact?: (data: Record<string, unknown>) => Record<string, unknown>;
}

/** The agent version a reference (`name`, `name@range`) picks among the registered ones. */
async function registered(store: Store, ref: string): Promise<AgentRecord | undefined> {
  const { name, range } = parseRef(ref);
  return pickRecord(await store.listAgents(name), range);
}

export function consensusDeps(h: ConsensusHost): ConsensusDeps {
  return {
    store: h.store,
    record: async (tx, runId, stepId, events) => {
      await h.ledger.recordEvents(
        tx,
        runId,
        events.map((e) => ({ type: e.type, step_id: stepId, data: h.redact ? h.redact(e.data) : e.data })),
      );
      const s = await tx.getRunState(runId);
      if (!s) throw new StepError('RUN_NOT_FOUND', `run ${runId} is gone`, false);
      return { seq: Number(s.event_seq), hash: s.event_hash };
    },
    kernelKey: h.kernelKey,
    executor: h.executor,
    agent: async (ref) => (await contractModule()).agentInfoOf(await h.store.listAgents(parseRef(ref).name), ref),
    runAgent: async (req) => {
      const rec = await registered(h.store, req.agent);
      if (!rec) throw new StepError('AGENT_NOT_FOUND', `agent '${req.agent}' is not registered`, false);
      // As for a workflow step: the agent gets only inputs it declares it takes (defaults filled in).
      const inputProblems = validateAgainst(rec.manifest.inputs, req.inputs);
      if (inputProblems.length) throw new StepError('INPUT_INVALID', `inputs do not match agent ${rec.manifest.name}@${rec.manifest.version}: ${inputProblems.join('; ')}`, false);
      const timeoutMs = Math.round(rec.manifest.runtime.timeout_seconds * 1000);
      const slug = createHash('sha256').update(req.idempotencyKey).digest('hex').slice(0, 16);
      const exec = await runInContext(req.trace, () => h.executorFor(rec.manifest.runtime.type).execute({
        runId: req.runId,
        stepId: req.stepId,
        attempt: req.attempt,
        idempotencyKey: req.idempotencyKey,
        workflow: req.workflow,
        agent: { id: rec.id, path: rec.path, manifest: rec.manifest },
        inputs: req.inputs,
        signal: AbortSignal.any([req.signal, AbortSignal.timeout(timeoutMs)]),
        timeoutMs,
        workDir: join(h.workRoot, req.runId, req.stepId, String(req.attempt), slug),
        ...(req.session ? { session: req.session } : {}),
        ...(req.trace ? { trace: req.trace } : {}),
      }));
      if (exec.ok === true) return exec.outputs;
      if (exec.ok === 'waiting') throw new StepError('AGENT_WAITING', `agent '${req.agent}' paused (${exec.reason}); a consensus member cannot wait for a person`, false);
      throw exec.error;
    },
    ...(h.knowledge ? { knowledge: h.knowledge } : {}),
    ...(h.faults ? { faults: h.faults } : {}),
    ...(h.log ? { log: h.log } : {}),
  };
}

/**
 * The knowledge store as the driver uses it: a lookup before proposing (with its events), the decision
 * kept after finalizing. Given as a function, the knowledge store (and its modules) is made at the
 * first consensus step that uses it.
 */
export function knowledgeHooks(of: Knowledge | (() => Promise<Knowledge>), store: Store): KnowledgeHooks {
  let made: Promise<Knowledge> | undefined;
  const knowledgeNow = (): Promise<Knowledge> => (made ??= typeof of === 'function' ? of() : Promise.resolve(of));
  return {
    lookup: async (contract, taskId) => {
      const [knowledge, { knowledgeEvents, toSeedBundle }] = await Promise.all([knowledgeNow(), import('../knowledge/index.js')]);
      const r = await knowledge.lookup({ task_id: taskId, task_type: contract.task_type, inputs: contract.inputs, ...(contract.knowledge ? { knowledge: contract.knowledge } : {}) });
      return { ...(r.hit ? { seed_bundle: toSeedBundle(r.hit) } : {}), events: knowledgeEvents(taskId, r).map((e) => ({ type: e.type, data: { ...e.data } })) };
    },
    record: async (taskId) => {
      const [task, decision, candidates, results, c] = await Promise.all([store.getConsensusTask(taskId), store.getConsensusDecision(taskId), store.getConsensusCandidates(taskId), store.getConsensusResults(taskId), store.getConsensusCosts(taskId)]);
      if (!task || !decision) return;
      const budget = task.contract.budget ?? {};
      const knowledge = await knowledgeNow();
      await knowledge.record({
        decision,
        task: { task_id: taskId, task_type: task.task_type, inputs: task.contract.inputs, run_id: task.run_id },
        candidates,
        results,
        cost: { task_id: taskId, explore_usd: c.explore, verify_usd: c.verify, finalize_usd: c.finalize, total_usd: c.explore + c.verify + c.finalize, budget, exhausted: (['explore', 'verify', 'finalize'] as const).filter((b) => budget[b] !== undefined && c[b] >= (budget[b])) },
      });
    },
  };
}

/**
 * The step runner's hook for `kind: consensus` steps. The driver (and the policies, verification and
 * voting it imports) loads at the first consensus step, not with every Swarm.
 */
export function consensusRunner(deps: ConsensusDeps): ConsensusStepRunner {
  return async (step, spec, ctx, workerId, signal, workflow, trace) => (await consensusDriver()).runConsensusStep(deps, step, spec, ctx, workerId, signal, workflow, trace);
}
