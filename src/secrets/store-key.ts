import { UserError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import { KEY_CHECK_META_KEY } from '../store/rows.js';
import { deriveKey, KeyPurpose, keyCheckValue, type MasterKeySource } from './master-key.js';
import { secretsKek, type SecretsKek } from './vault.js';

/** The keys a Swarm process works with, derived from the master key once at open. */
export interface StoreKeys {
  /** HMAC key of the run event chain. */
  readonly chain: Buffer;
  /**
   * When the store was first used with a key (the store's clock, ms): runs created before this may
   * have unkeyed chains (`runs verify --allow-legacy`).
   */
  readonly keyedSince: number;
  /** The master key itself (master key rotation needs the old one). */
  readonly master: Buffer;
  /** The key-encryption key of the encrypted secrets store. */
  readonly kek: SecretsKek;
}

const KEY_CHECK = KEY_CHECK_META_KEY;
const KEYED_SINCE = 'chain_keyed_since';

/**
 * Load the master key and make sure it is the store's: the first process to use a store records a
 * check value of its key there (both backends, in `swarm_meta`); every later one compares. A process
 * with another key would write chains no one else can verify, so it stops here, before any write.
 */
export async function openStoreKeys(store: Store, source: MasterKeySource): Promise<StoreKeys> {
  const master = source.load();
  const check = keyCheckValue(master);
  const stored = await store.initMeta(KEY_CHECK, check);
  if (stored !== check) {
    throw new UserError(
      'MASTER_KEY_MISMATCH',
      `the master key from ${source.description} is not the key the store ${store.location} was set up with; ` +
        `every process using one store needs the same key: set SWARM_MASTER_KEY to the same value on every machine (see docs/integrity-and-secrets.md)`,
      { source: source.description, store: store.location },
    );
  }
  const keyedSince = Number(await store.initMeta(KEYED_SINCE, String(await store.now())));
  return { chain: deriveKey(master, KeyPurpose.EVENT_CHAIN), keyedSince: Number.isFinite(keyedSince) ? keyedSince : 0, master, kek: secretsKek(master) };
}
