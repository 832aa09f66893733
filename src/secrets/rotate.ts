import { checkChain, GENESIS_HASH, hashEvent, type RunEvent } from '../core/events.js';
import type { RechainedEvent, RekeyPlan } from '../store/types.js';
import { deriveKey, KeyPurpose, keyCheckValue } from './master-key.js';
import { rewrapSecret, secretsKek } from './vault.js';

/**
 * What rotating the master key from `oldMaster` to `newMaster` changes, for `Store.rekey`:
 *
 * - every secret's data key is re-wrapped under the new KEK (values are not re-encrypted);
 * - every run's event chain is re-computed under the new chain key, but only a chain that verifies
 *   under the old key: a chain that does not (tampered, or broken) is left as it is, so rotation
 *   never launders it into one that verifies. An unkeyed (legacy) prefix stays unkeyed;
 * - the key check value becomes the new key's, so a process still holding the old key is refused.
 */
export function rekeyPlan(oldMaster: Buffer, newMaster: Buffer): RekeyPlan {
  const oldKek = secretsKek(oldMaster);
  const newKek = secretsKek(newMaster);
  const oldChain = deriveKey(oldMaster, KeyPurpose.EVENT_CHAIN);
  const newChain = deriveKey(newMaster, KeyPurpose.EVENT_CHAIN);
  return {
    oldCheck: keyCheckValue(oldMaster),
    newCheck: keyCheckValue(newMaster),
    rewrap: (rec) => {
      const w = rewrapSecret(oldKek, newKek, rec.name, rec.scope, rec);
      return { wrapped_key: w.wrapped_key, kek_id: w.kek_id };
    },
    rechain: (_runId, events) => rechain(oldChain, newChain, events),
  };
}

/** A chain re-hashed under `to`, or undefined when it does not verify under `from` (legacy prefix allowed). */
export function rechain(from: Buffer, to: Buffer, events: ReadonlyArray<RunEvent & { data_json: string }>): RechainedEvent[] | undefined {
  if (checkChain(from, events, { allowLegacy: true }).problems.length > 0) return undefined;
  const out: RechainedEvent[] = [];
  let prev = GENESIS_HASH;
  for (const e of events) {
    // The unkeyed prefix keeps its hashes (and so the prev_hash links into it); keyed events get new ones.
    const keyed = hashEvent(from, e, e.data_json) === e.hash;
    const hash = keyed ? hashEvent(to, { ...e, prev_hash: prev }, e.data_json) : e.hash;
    out.push({ seq: e.seq, prev_hash: prev, hash });
    prev = hash;
  }
  return out;
}
