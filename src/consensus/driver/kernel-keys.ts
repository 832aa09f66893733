/**
 * Kernel-held identities of consensus members (`consensus:<member id>`) when no signing-key store is
 * available: an Ed25519 key derived from the deployment's key and the name, so every worker of the
 * deployment (and a worker that takes a task over after a crash) signs as the same member.
 *
 * @example
 *   const keyOf = derivedKernelKeys(secret);
 *   (await keyOf('consensus:v1')).publicKey; // the same on every worker sharing `secret`
 */
import { createHmac, createPrivateKey } from 'node:crypto';
import { publicKeyOf } from '../core/crypto.js';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function derivedKernelKeys(secret: Buffer): (name: string) => Promise<{ publicKey: string; privateKey: string }> {
  const cache = new Map<string, { publicKey: string; privateKey: string }>();
  return async (name) => {
    let k = cache.get(name);
    if (!k) {
      const seed = createHmac('sha256', secret).update(`swarm.consensus.kernel-key\n${name}`).digest();
      const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
      k = { publicKey: publicKeyOf(privateKey), privateKey };
      cache.set(name, k);
    }
    return k;
  };
}
