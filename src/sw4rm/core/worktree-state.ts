/**
 * Which repository worktree an agent is bound to, under a policy: `beforeBind` may refuse a bind
 * (then nothing changes), `afterBind` hears about each one. With a persistence the binding survives
 * a restart.
 *
 * @example
 *   const wt = await WorktreeState.open({
 *     persistence: new StorePersistence(swarm.store, 'agent-1'),
 *     policy: { beforeBind: (repo) => ['main-repo', 'test-repo'].includes(repo) || `repo ${repo} is not allowed` },
 *   });
 *   await wt.bind('main-repo', 'feature-branch', { version: '1.2.3' }); // { bound: true, binding }
 *   wt.current()?.worktree_id; // 'feature-branch'
 */
import { PersistedState, type PersistenceErrorHandler, type Sw4rmPersistence } from './persistence.js';

export interface WorktreeBinding {
  repo_id: string;
  worktree_id: string;
  metadata: Record<string, unknown>;
  /** When it was bound (ms). */
  bound_at: number;
}

/**
 * The policy hooks. `beforeBind` returns true to allow, false or a reason (string) to refuse; it may
 * be async. A hook that throws refuses the bind with its message.
 */
export interface WorktreePolicy {
  beforeBind?(repoId: string, worktreeId: string, current: WorktreeBinding | undefined): boolean | string | Promise<boolean | string>;
  afterBind?(binding: WorktreeBinding): void | Promise<void>;
}

export type BindResult = { bound: true; binding: WorktreeBinding } | { bound: false; reason: string };

export interface WorktreeStatus {
  state: 'UNBOUND' | 'BOUND';
  binding: WorktreeBinding | undefined;
  /** False without a persistence, or once it failed. */
  persistent: boolean;
  /** Binds done by this object (refused ones excluded). */
  binds: number;
  /** The last refusal's reason, if any. */
  last_refusal: string | undefined;
}

export interface WorktreeStateOptions {
  policy?: WorktreePolicy;
  persistence?: Sw4rmPersistence;
  /** The persistence key (default 'worktree'). */
  persistenceKey?: string;
  /** Default 0: a bind is written at once (binds are rare). */
  saveDelayMs?: number;
  onError?: PersistenceErrorHandler;
  now?: () => number;
}

const ID = /^[^\0\n]{1,512}$/;

export class WorktreeState {
  private binding: WorktreeBinding | undefined;
  private binds = 0;
  private lastRefusal: string | undefined;
  private readonly policy: WorktreePolicy;
  private readonly clock: () => number;
  private readonly state: PersistedState | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: WorktreeStateOptions = {}) {
    this.policy = options.policy ?? {};
    this.clock = options.now ?? Date.now;
    this.state = options.persistence
      ? new PersistedState(
          {
            persistence: options.persistence,
            key: options.persistenceKey ?? 'worktree',
            saveDelayMs: options.saveDelayMs ?? 0,
            ...(options.onError ? { onError: options.onError } : {}),
          },
          () => ({ version: 1, binding: this.binding ?? null }),
        )
      : undefined;
  }

  /** A WorktreeState with the saved binding loaded (an unreadable persistence: reported, unbound). */
  static async open(options: WorktreeStateOptions = {}): Promise<WorktreeState> {
    const wt = new WorktreeState(options);
    if (wt.state) {
      const doc = (await wt.state.load()) as { version?: unknown; binding?: WorktreeBinding | null } | undefined;
      if (doc && doc.version === 1 && doc.binding && typeof doc.binding.repo_id === 'string') wt.binding = doc.binding;
    }
    return wt;
  }

  /**
   * Bind to `repoId`/`worktreeId` if the policy allows; a refusal (or an invalid id) changes nothing
   * and says why. Binds run one at a time. Resolves once the binding is saved (with a persistence).
   */
  bind(repoId: string, worktreeId: string, metadata: Record<string, unknown> = {}): Promise<BindResult> {
    const run = this.queue.then(() => this.bindNow(repoId, worktreeId, metadata));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The binding, or undefined when unbound. */
  current(): WorktreeBinding | undefined {
    return this.binding ? { ...this.binding, metadata: { ...this.binding.metadata } } : undefined;
  }

  status(): WorktreeStatus {
    return { state: this.binding ? 'BOUND' : 'UNBOUND', binding: this.current(), persistent: this.state?.persistent ?? false, binds: this.binds, last_refusal: this.lastRefusal };
  }

  /** Drop the binding; returns the one there was. */
  unbind(): Promise<WorktreeBinding | undefined> {
    const run = this.queue.then(async () => {
      const was = this.current();
      this.binding = undefined;
      this.state?.changed();
      await this.state?.flush();
      return was;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async flush(): Promise<void> {
    await this.state?.flush();
  }

  async close(): Promise<void> {
    await this.queue;
    await this.state?.close();
  }

  private async bindNow(repoId: string, worktreeId: string, metadata: Record<string, unknown>): Promise<BindResult> {
    const refuse = (reason: string): BindResult => {
      this.lastRefusal = reason;
      return { bound: false, reason };
    };
    if (typeof repoId !== 'string' || !ID.test(repoId)) return refuse('repo_id must be a non-empty string (at most 512 characters, no NUL or line feed)');
    if (typeof worktreeId !== 'string' || !ID.test(worktreeId)) return refuse('worktree_id must be a non-empty string (at most 512 characters, no NUL or line feed)');
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(JSON.stringify(metadata ?? {})) as Record<string, unknown>;
    } catch (e) {
      return refuse(`metadata must be JSON: ${(e as Error).message}`);
    }
    if (this.policy.beforeBind) {
      let verdict: boolean | string;
      try {
        verdict = await this.policy.beforeBind(repoId, worktreeId, this.current());
      } catch (e) {
        return refuse(`the policy refused: ${(e as Error).message}`);
      }
      if (verdict !== true) return refuse(typeof verdict === 'string' && verdict ? verdict : `the policy refused ${repoId}/${worktreeId}`);
    }
    const binding: WorktreeBinding = { repo_id: repoId, worktree_id: worktreeId, metadata: meta, bound_at: this.clock() };
    this.binding = binding;
    this.binds += 1;
    this.state?.changed();
    await this.state?.flush();
    try {
      await this.policy.afterBind?.({ ...binding, metadata: { ...meta } });
    } catch {
      // The bind stands: afterBind observes, it cannot undo.
    }
    return { bound: true, binding: { ...binding, metadata: { ...meta } } };
  }
}
