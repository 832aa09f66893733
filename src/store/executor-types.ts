/**
 * Registered remote executors (migration 24): name → base URL, the secret holding its bearer token,
 * and the Ed25519 public key pinned when it was added. In the store, so every worker of a deployment
 * sees the same executors. Also the run-level `shared_inputs` column's row shape.
 *
 * @example
 *   await store.putExecutor({ name: 'rt', base_url: 'http://127.0.0.1:8787', token_secret: null, public_key: null });
 *   (await store.getExecutor('rt'))?.base_url;  // 'http://127.0.0.1:8787'
 */
import type { ExecutorRecord } from '../executors/http/contract.js';

export type { ExecutorRecord };

/** What `putExecutor` writes (the timestamps are the store's). */
export type ExecutorWrite = Pick<ExecutorRecord, 'name' | 'base_url' | 'token_secret' | 'public_key'>;

export function toExecutorRecord(r: Record<string, unknown>): ExecutorRecord {
  return {
    name: String(r.name),
    base_url: String(r.base_url),
    token_secret: r.token_secret === null || r.token_secret === undefined ? null : (r.token_secret as string),
    public_key: r.public_key === null || r.public_key === undefined ? null : (r.public_key as string),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}
