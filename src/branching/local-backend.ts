/**
 * The local backend (src/branching/backend.ts): dispatch starts the run (or the fork) in this
 * process's store and runs it in the background with a worker limited to it; collect waits for it
 * to finish and exports its bundle; cancel cancels the run. What a CI backend does on a runner, this
 * does here, through the same interface, so code written against BranchBackend is tested locally.
 *
 * The fork and the export are passed in (`forkRun`, `exportBundle`): the backend depends on the
 * interfaces, not on how a fork copies checkpoints or how a bundle is written.
 *
 * @example
 *   const backend = new LocalBackend(swarm, { exportBundle: async (s, id) => (await exportRun(s, id)).bytes, forkRun });
 *   const h = await backend.dispatch({ job: { kind: 'fork', run_id, at: 'b' }, encrypt_to: ['age1…'] });
 *   const { bundle, encrypted } = await backend.collect(h);  // encrypted: true
 */
import { UserError } from '../core/errors.js';
import { TERMINAL_RUN, type RunStatus } from '../core/states.js';
import type { Swarm } from '../swarm.js';
import { checkRecipient, encryptBundle } from '../bundles/encrypt.js';
import {
  FINAL_DISPATCH_STATES,
  parsePinnedWorkflowRef,
  type BranchBackend,
  type BranchJob,
  type Collected,
  type DispatchHandle,
  type DispatchRequest,
  type DispatchState,
  type DispatchStatus,
} from './backend.js';

/** Make a fork of a finished run; returns the new run's id (the fork's library entry point). */
export type ForkRunner = (swarm: Swarm, job: Extract<BranchJob, { kind: 'fork' }>) => Promise<string>;
/** The bundle of a finished run, as `swarm runs export` writes it. */
export type BundleExporter = (swarm: Swarm, runId: string) => Promise<Uint8Array>;

export interface LocalBackendOptions {
  exportBundle: BundleExporter;
  /** Needed only to dispatch fork jobs. */
  forkRun?: ForkRunner;
}

/** The dispatch state of a run's status (the same words). */
const stateOf = (status: RunStatus): DispatchState => status;

export class LocalBackend implements BranchBackend {
  readonly name = 'local';
  /** The background executions of runs dispatched here, by run id. */
  private readonly running = new Map<string, Promise<unknown>>();
  /** The recipients each dispatched run's bundle is encrypted to. */
  private readonly recipients = new Map<string, readonly string[]>();

  constructor(
    private readonly swarm: Swarm,
    private readonly options: LocalBackendOptions,
  ) {}

  async dispatch(request: DispatchRequest): Promise<DispatchHandle> {
    // Checked here too, so a request that a CI backend would refuse is refused locally as well.
    const workflowRef = request.workflow_ref === undefined ? undefined : parsePinnedWorkflowRef(request.workflow_ref).ref;
    const recipients = (request.encrypt_to ?? []).map(checkRecipient);
    const job = request.job;
    let runId: string;
    if (job.kind === 'run') {
      runId = await this.swarm.startRun(job.workflow, job.input ?? {});
    } else {
      if (!this.options.forkRun) throw new UserError('BACKEND_CANNOT_FORK', 'this local backend was made without a fork runner');
      runId = await this.options.forkRun(this.swarm, job);
    }
    // The run executes in the background; its failure is the run's state, read by status and collect.
    this.running.set(runId, this.swarm.runToCompletion(runId).catch(() => undefined));
    this.recipients.set(runId, recipients);
    return { backend: this.name, id: runId, run_id: runId, runner_class: `swarm-local/${this.swarm.store.kind}`, workflow_ref: workflowRef, dispatched_at: Date.now() };
  }

  async status(handle: DispatchHandle): Promise<DispatchStatus> {
    const { run } = await this.swarm.getRun(handle.id);
    return { id: handle.id, run_id: run.id, state: stateOf(run.status) };
  }

  async collect(handle: DispatchHandle, options: { signal?: AbortSignal } = {}): Promise<Collected> {
    await this.running.get(handle.id);
    const { run } = await this.swarm.wait(handle.id, options.signal ? { signal: options.signal } : {});
    if (!TERMINAL_RUN.has(run.status)) throw new UserError('RUN_NOT_FINISHED', `run ${run.id} is ${run.status}; collect it once it is finished`, { runId: run.id });
    const plain = await this.options.exportBundle(this.swarm, run.id);
    const to = this.recipients.get(handle.id) ?? [];
    const bundle = to.length > 0 ? await encryptBundle(plain, to) : plain;
    return { id: handle.id, run_id: run.id, state: stateOf(run.status), bundle, encrypted: to.length > 0 };
  }

  async cancel(handle: DispatchHandle, reason = 'cancelled through the backend'): Promise<DispatchStatus> {
    const before = await this.status(handle);
    if (!FINAL_DISPATCH_STATES.has(before.state)) await this.swarm.cancel(handle.id, reason);
    await this.running.get(handle.id);
    return this.status(handle);
  }
}

/**
 * The local backend wired to this installation's fork (`swarm.fork`) and export (an imported run's
 * original bundle, else `exportRun`).
 *
 * @example
 *   const backend = await localBackend(swarm);
 *   const h = await backend.dispatch({ job: { kind: 'fork', run_id: runId, at: 'review' } });
 *   const { bundle } = await backend.collect(h);  // verifies with --parent against the parent's bundle
 */
export async function localBackend(swarm: Swarm): Promise<LocalBackend> {
  const { exportRun } = await import('../bundles/export.js');
  return new LocalBackend(swarm, {
    exportBundle: async (s, runId) => (await exportRun(s, runId)).bytes,
    forkRun: async (s, job) =>
      (
        await s.fork(job.run_id, {
          at: job.at,
          ...(job.input !== undefined ? { input: job.input as Record<string, unknown> } : {}),
          ...(job.replace_outputs ? { replaceOutputs: job.replace_outputs } : {}),
          ...(job.turn !== undefined ? { turn: job.turn } : {}),
        })
      ).run_id,
  });
}
