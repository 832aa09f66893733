/**
 * The remote executor contract (source 002's runtime HTTP integration), as TypeScript types. The
 * OpenAPI 3.1 document `docs/executor-api.yaml` is the normative form; tests validate both the
 * client's requests and the reference executor's responses against it.
 *
 *   GET  /health        → ExecutorHealth
 *   GET  /capabilities  → ExecutorCapabilities
 *   POST /execute       ExecuteRequest → ExecuteResponse
 *   POST /verify        VerifyRequest  → VerifyResponse
 *
 * @example
 *   const client = createExecutorClient({ name: 'rt', base_url: 'http://127.0.0.1:8787' });
 *   const out = await client.execute({ task_id: 't1', task_type: 'echo', inputs: { prompt: 'hi' }, idempotency_key: 't1/p1/1', deadline_ms: Date.now() + 30_000 });
 */
import type { EvidenceRef, VerificationStatus } from '../../consensus/core/types.js';

export interface ExecutorHealth {
  status: 'ok' | 'degraded';
  version?: string;
}

export interface ExecutorCapabilities {
  /** The executor's name for itself. */
  name: string;
  /** Task types (or agent names) it can execute. */
  task_types: string[];
  /** Verification policies its `/verify` runs. */
  policies: string[];
  /** Its Ed25519 identity: base64 of the raw public key; it signs candidates and verifier results. */
  public_key?: string;
  protocol_version: string;
}

/** A task contract as an executor receives it. */
export interface ExecuteRequest {
  task_id: string;
  task_type: string;
  /** The task's inputs (with `shared_inputs` merged, `prompt` and `agent_id` injected: see shared-inputs.ts). */
  inputs: Record<string, unknown>;
  /** The same key on every retry of the same attempt: an executor must not do the work twice for it. */
  idempotency_key: string;
  /** Epoch milliseconds by which the answer must arrive. */
  deadline_ms: number;
  /** JSON Schema the output must match, when the task has one. */
  output_schema?: Record<string, unknown>;
  /** A prior decision found in the knowledge store (EXACT or SIMILAR), for the executor to start from. */
  seed_bundle?: SeedBundle;
  /** The proposer id the candidate will be attributed to (it signs as this member). */
  proposer_id?: string;
  /** The proposal round (1-based). */
  round?: number;
}

export interface SeedBundle {
  hit_type: 'EXACT' | 'SIMILAR';
  task_id: string;
  candidate_hash: string;
  output: unknown;
  similarity?: number;
  evidence: EvidenceRef[];
}

/** A candidate: the output, evidence references, cost, and the executor's signature (crypto.ts, kind `candidate`). */
export interface ExecuteResponse {
  output: unknown;
  evidence?: EvidenceRef[];
  cost_usd?: number;
  candidate_hash?: string;
  signature?: string;
}

export interface VerifyRequest {
  task_id: string;
  task_type: string;
  policy_id: string;
  params?: Record<string, unknown>;
  output_schema?: Record<string, unknown>;
  candidate: { candidate_hash: string; output: unknown; evidence?: EvidenceRef[] };
  /** Other candidates of the task (for `vp.crosscheck.v1`). */
  others?: Array<{ candidate_hash: string; output: unknown }>;
  verifier_id?: string;
}

export interface VerifyResponse {
  status: VerificationStatus;
  reason_codes: number[];
  reason?: string;
  score?: number;
  evidence?: EvidenceRef[];
  cost_usd?: number;
  signature?: string;
}

/** A registered executor, as the store keeps it (`swarm executors add`). */
export interface ExecutorRecord {
  name: string;
  base_url: string;
  /** The secret holding a bearer token sent as `Authorization: Bearer …` (`--token-secret`). */
  token_secret: string | null;
  /** The public key pinned when it was added (from `/capabilities`, or `--public-key`). */
  public_key: string | null;
  created_at: number;
  updated_at: number;
}

/** Options of one call: an abort signal (the step's), and the W3C `traceparent` to send. */
export interface ExecutorCallOptions {
  signal?: AbortSignal;
  traceparent?: string;
  timeout_ms?: number;
}

/** A typed client of one executor (src/executors/http/client.ts). */
export interface ExecutorClient {
  readonly name: string;
  health(opts?: ExecutorCallOptions): Promise<ExecutorHealth>;
  capabilities(opts?: ExecutorCallOptions): Promise<ExecutorCapabilities>;
  execute(req: ExecuteRequest, opts?: ExecutorCallOptions): Promise<ExecuteResponse>;
  verify(req: VerifyRequest, opts?: ExecutorCallOptions): Promise<VerifyResponse>;
}
