/**
 * From an executor's name to a client of it: the record from the store (every worker sees the same
 * registry), its bearer token from the secret it names. What the http runtime, the consensus engine
 * and `swarm executors check` use.
 *
 * @example
 *   const client = await executorClientFor(store, (n) => process.env[`SWARM_SECRET_${n}`], 'rt');
 *   client.record.public_key;  // the key pinned by `swarm executors add`
 *   await client.execute(req, { signal, traceparent });
 */
import { UserError } from '../../core/errors.js';
import type { Store } from '../../store/store.js';
import { createExecutorClient, UnknownExecutorError, type ExecutorClientOptions, type ResolvedExecutorClient } from './client.js';
import type { ExecutorRecord } from './contract.js';

/** Looks up a secret's value by name (stored secrets, then SWARM_SECRET_*); undefined when there is none. */
export type SecretLookup = (name: string) => string | undefined | Promise<string | undefined>;

/** A resolved client: its record is the full stored one. */
export interface RegisteredExecutorClient extends ResolvedExecutorClient {
  readonly record: ExecutorRecord;
}

/**
 * The client of the registered executor `name`. Throws UnknownExecutorError (EXECUTOR_UNKNOWN,
 * naming it and the registered ones) when there is none, and UserError EXECUTOR_TOKEN_MISSING when
 * its token secret is not set.
 */
export async function executorClientFor(
  store: Pick<Store, 'getExecutor' | 'listExecutors'>,
  secrets: SecretLookup,
  name: string,
  options: Omit<ExecutorClientOptions, 'token'> = {},
): Promise<RegisteredExecutorClient> {
  const record = await store.getExecutor(name);
  if (!record) throw new UnknownExecutorError(name, (await store.listExecutors()).map((e) => e.name));
  let token: string | undefined;
  if (record.token_secret) {
    token = await secrets(record.token_secret);
    if (token === undefined || token === '') {
      throw new UserError(
        'EXECUTOR_TOKEN_MISSING',
        `executor '${name}' sends its bearer token from secret '${record.token_secret}', which is not set; set it with 'swarm secrets set ${record.token_secret}' (or SWARM_SECRET_${record.token_secret})`,
        { executor: name, secret: record.token_secret },
      );
    }
  }
  return createExecutorClient(record, { ...options, ...(token !== undefined ? { token } : {}) }) as RegisteredExecutorClient;
}
