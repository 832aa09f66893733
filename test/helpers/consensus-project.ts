/**
 * The set-up the consensus, knowledge and log tests share: a Swarm on a fresh project, on SQLite or
 * on a PostgreSQL database of its own, with builtin agents registered and (by default) a worker
 * running; everything is undone after each test. And waiting for a task to settle.
 *
 * @example
 *   const cleanups = useCleanups();               // at the top of the test file
 *   const { swarm } = await consensusProject('postgres', cleanups, { builtins: { solver: async () => ({ answer: 4 }) } });
 *   const d = await settledTask(swarm, (await swarm.submitTask(contract)).task_id);
 */
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import type { BuiltinAgent } from '../../src/executors/builtins.js';
import { Swarm, type OpenSwarmOptions } from '../../src/swarm.js';
import { pgTestServer, stopPgTestServer } from './pg.js';
import { builtinAgent, removeProject, tempProject, until } from './project.js';

export type Backend = 'sqlite' | 'postgres';
export const BACKENDS = ['sqlite', 'postgres'] as const;

export type Cleanups = Array<() => Promise<void> | void>;

/** A list of clean-ups run (last first) after each test of the file; the PostgreSQL test server stops after the file. */
export function useCleanups(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => stopPgTestServer());
  return cleanups;
}

export interface ConsensusProjectOptions {
  /** Builtin agents to define and register, by name. */
  builtins?: Record<string, BuiltinAgent>;
  /** More agent.yaml lines for some of the builtins (declared inputs and outputs), by name. */
  manifests?: Record<string, string>;
  /** Start a worker (default true). */
  worker?: boolean;
  /** The store's and the worker's poll interval (default 50 ms). */
  pollMs?: number;
  /** More for Swarm.open (overrides are merged with the poll interval). */
  open?: Partial<OpenSwarmOptions>;
}

/** A project directory and the env that points Swarm at its store (a PostgreSQL database of its own for `postgres`). */
export async function projectEnv(backend: Backend, cleanups: Cleanups): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = tempProject();
  cleanups.push(() => removeProject(dir));
  const env: Record<string, string> = { SWARM_HOME: join(dir, '.swarm') };
  if (backend === 'postgres') {
    const server = await pgTestServer();
    const url = await server.createDatabase();
    env.SWARM_DATABASE_URL = url;
    cleanups.push(() => server.dropDatabase(url));
  }
  return { dir, env };
}

/** A Swarm on a fresh project with the given builtin agents registered and a worker running. */
export async function consensusProject(backend: Backend, cleanups: Cleanups, o: ConsensusProjectOptions = {}): Promise<{ swarm: Swarm; dir: string; env: Record<string, string> }> {
  const { dir, env } = await projectEnv(backend, cleanups);
  const pollMs = o.pollMs ?? 50;
  const swarm = await Swarm.open({ cwd: dir, env, ...o.open, overrides: { pollMs, ...o.open?.overrides } });
  cleanups.push(() => swarm.close());
  for (const [name, fn] of Object.entries(o.builtins ?? {})) {
    swarm.defineBuiltin(name, fn);
    builtinAgent(dir, name, name, o.manifests?.[name] ?? '');
    await swarm.registerAgent(join(dir, 'agents', name));
  }
  if (o.worker !== false) {
    const w = swarm.worker({ pollMs });
    cleanups.push(() => w.stop(2000));
  }
  return { swarm, dir, env };
}

/** The task's decision once it is final (finalized, failed or expired). */
export function settledTask(swarm: Swarm, taskId: string, timeoutMs = 30_000): ReturnType<Swarm['taskDecision']> {
  return until(async () => {
    const d = await swarm.taskDecision(taskId);
    return d.status === 'finalized' || d.status === 'failed' || d.status === 'expired' ? d : undefined;
  }, timeoutMs, 'the task settled');
}

/**
 * A consensus task whose one proposer cancels the task's run and then answers: the task step's next
 * write finds the run cancelled. No worker is started: the caller starts one on `runId`.
 */
export async function selfCancellingTask(backend: Backend, cleanups: Cleanups): Promise<{ swarm: Swarm; taskId: string; runId: string }> {
  const task: { swarm?: Swarm; runId?: string } = {};
  const builtins = {
    quitter: async () => {
      await task.swarm?.cancel(task.runId ?? '', 'no longer needed');
      return { answer: 4 };
    },
  };
  const { swarm } = await consensusProject(backend, cleanups, { builtins, worker: false });
  task.swarm = swarm;
  const { task_id: taskId, run_id: runId } = await swarm.submitTask({
    task_type: 'add',
    inputs: {},
    proposers: [{ agent: 'quitter' }],
    verification: { policy: 'vp.schema_only.v1' },
    output_schema: { type: 'object', required: ['answer'] },
    voting: { voters: [{ id: 'v1' }], reveal_deadline_ms: 5000 },
  });
  task.runId = runId;
  return { swarm, taskId, runId };
}
