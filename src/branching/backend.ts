/**
 * Where a branch runs: the remote backend interface (docs/branching.md, "Backends"). A backend is
 * handed a job (run a workflow, or fork a run), runs it somewhere, and gives back the run's bundle
 * (src/bundles/layout.ts): the bundle is the only thing that travels, and whoever collects it
 * verifies it offline before importing it (`swarm verify`, `swarm runs import`). So a backend is
 * trusted for availability, never for integrity: a remote runner that lies produces a bundle that
 * does not verify, or one signed by a key the collector did not pin.
 *
 * - `dispatch(request)` starts the job and returns a handle at once (the job runs in the background).
 * - `status(handle)` says where it is.
 * - `collect(handle)` waits until the job is over and returns its bundle (encrypted to
 *   `encrypt_to` when the request named recipients).
 * - `cancel(handle)` stops it; collecting afterwards gives the cancelled run's bundle.
 *
 * A remote backend runs a workflow file of a repository at a pinned commit: `workflow_ref` must be
 * `owner/repo/.github/workflows/<file>.yml@<40 hex>` (parsePinnedWorkflowRef). A branch or tag name
 * moves, so a certificate naming one would not say what ran; they are refused.
 *
 * @example
 *   const backend = new LocalBackend(swarm, { exportBundle });
 *   const h = await backend.dispatch({ job: { kind: 'run', workflow: 'echo-chain', input: { message: 'hi' } } });
 *   const { bundle, state } = await backend.collect(h);   // state 'completed', bundle: the tar's bytes
 */
import { UserError } from '../core/errors.js';

/** What to run: a fresh run of a workflow, or a fork of a finished run (`swarm runs fork`'s options). */
export type BranchJob =
  | { kind: 'run'; workflow: string; input?: unknown }
  | {
      kind: 'fork';
      run_id: string;
      at: string;
      input?: unknown;
      /** `--replace-output <step>=<json>`: step id to its new output. */
      replace_outputs?: Record<string, unknown>;
      turn?: number;
    };

export interface DispatchRequest {
  job: BranchJob;
  /**
   * The CI workflow file that runs the job, pinned to a commit (required by a remote backend;
   * checked when given to the local one, which records it and otherwise runs in this process).
   */
  workflow_ref?: string;
  /** age recipients (`age1…`) the collected bundle is encrypted to; none: a plain bundle. */
  encrypt_to?: readonly string[];
}

/** A dispatched job. `id` is the backend's own (the run id for the local backend, the workflow run's id on CI). */
export interface DispatchHandle {
  backend: string;
  id: string;
  /** The Swarm run id, once known (at once for the local backend; after the runner reports on CI). */
  run_id: string | undefined;
  /** The certificate's `runtime.runner_class` the bundle will carry (e.g. `swarm-local/sqlite`). */
  runner_class: string;
  workflow_ref: string | undefined;
  dispatched_at: number;
}

export type DispatchState = 'queued' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';

/** States after which nothing more happens. */
export const FINAL_DISPATCH_STATES: ReadonlySet<DispatchState> = new Set(['completed', 'failed', 'cancelled']);

export interface DispatchStatus {
  id: string;
  run_id: string | undefined;
  state: DispatchState;
}

export interface Collected extends DispatchStatus {
  /** The bundle as the backend hands it over: a plain tar, or an age file when `encrypted`. */
  bundle: Uint8Array;
  encrypted: boolean;
}

/** The remote backend interface (see the module comment). */
export interface BranchBackend {
  /** `local`, `github-actions`, … */
  readonly name: string;
  dispatch(request: DispatchRequest): Promise<DispatchHandle>;
  status(handle: DispatchHandle): Promise<DispatchStatus>;
  collect(handle: DispatchHandle, options?: { signal?: AbortSignal }): Promise<Collected>;
  cancel(handle: DispatchHandle, reason?: string): Promise<DispatchStatus>;
}

/** A workflow file of a repository at one commit. */
export interface PinnedWorkflowRef {
  owner: string;
  repo: string;
  /** The file's path in the repository: `.github/workflows/<name>.yml` (or `.yaml`). */
  path: string;
  /** The commit: 40 lower-case hex digits. */
  sha: string;
  /** The ref as written: `owner/repo/path@sha`. */
  ref: string;
}

// GitHub's own rules: owner 1-39 of [A-Za-z0-9-]; repository names of [A-Za-z0-9._-] (not `.` or `..`).
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;
const WORKFLOW_FILE = /^\.github\/workflows\/[A-Za-z0-9._-]+\.ya?ml$/;
const FULL_SHA = /^[0-9a-f]{40}$/;

/**
 * Parse and check a pinned workflow ref: `owner/repo/.github/workflows/<file>.yml@<40 hex>`. A branch,
 * a tag, a short or upper-case SHA, a path outside `.github/workflows/` or with `..` is
 * WORKFLOW_REF_NOT_PINNED or WORKFLOW_REF_INVALID (exit 2).
 *
 * @example
 *   parsePinnedWorkflowRef('acme/runs/.github/workflows/branch.yml@4b825dc642cb6eb9a060e54bf8d69288fbee4904')
 *   // { owner: 'acme', repo: 'runs', path: '.github/workflows/branch.yml', sha: '4b825dc6…', ref: '…' }
 *   parsePinnedWorkflowRef('acme/runs/.github/workflows/branch.yml@main')  // throws WORKFLOW_REF_NOT_PINNED
 */
export function parsePinnedWorkflowRef(ref: string): PinnedWorkflowRef {
  const bad = (why: string): UserError => new UserError('WORKFLOW_REF_INVALID', `workflow ref ${JSON.stringify(ref)} is not valid: ${why}; write owner/repo/.github/workflows/<file>.yml@<40-hex commit>`, { workflow_ref: ref });
  const at = ref.lastIndexOf('@');
  if (at < 0) throw new UserError('WORKFLOW_REF_NOT_PINNED', `workflow ref ${JSON.stringify(ref)} names no commit: pin it as …@<40-hex commit sha> (a branch or tag moves)`, { workflow_ref: ref });
  const location = ref.slice(0, at);
  const sha = ref.slice(at + 1);
  if (!FULL_SHA.test(sha)) {
    const what = /^[0-9a-fA-F]{7,39}$/.test(sha) ? 'a short commit sha' : /^[0-9A-F]{40}$/i.test(sha) ? 'an upper-case sha' : `${JSON.stringify(sha)}, a branch or tag name`;
    throw new UserError('WORKFLOW_REF_NOT_PINNED', `workflow ref ${JSON.stringify(ref)} is pinned to ${what}: only a full 40-hex lower-case commit sha pins it (branches and tags move)`, { workflow_ref: ref });
  }
  const parts = location.split('/');
  if (parts.length < 4) throw bad('it needs an owner, a repository and a workflow file path');
  const [owner, repo, ...rest] = parts as [string, string, ...string[]];
  const path = rest.join('/');
  if (!OWNER.test(owner)) throw bad(`${JSON.stringify(owner)} is not a GitHub owner name`);
  if (!REPO.test(repo) || repo === '.' || repo === '..') throw bad(`${JSON.stringify(repo)} is not a repository name`);
  if (rest.some((p) => p === '' || p === '.' || p === '..') || !WORKFLOW_FILE.test(path)) throw bad(`${JSON.stringify(path)} is not a file directly under .github/workflows/ ending .yml or .yaml`);
  return { owner, repo, path, sha, ref };
}
