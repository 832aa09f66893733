/**
 * What `--encrypt-to` and `--identity` name, resolved: an `age1…` recipient is used as it is, an
 * identity file (an existing path; `age-keygen`'s format) is read, and anything else is the name of
 * an age key in the store (`swarm keys create <name> --type age`). A file keeps a command offline:
 * only a key name needs the store. Secret keys are never taken from the command line itself (they
 * would show in the process list and the shell's history).
 *
 * @example
 *   await resolveRecipients(['age1ql3z…', 'bundles'], () => swarm.signingKeys)  // ['age1ql3z…', 'age1…']
 *   await resolveIdentities(['./key.txt'], cwd)                                  // ['AGE-SECRET-KEY-1…']
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import type { SigningKeys } from '../identity/keys.js';
import { AGE_IDENTITY_PATTERN, checkRecipient, parseIdentityFile } from '../bundles/encrypt.js';

/** Where key names are looked up; called only when a name is given (so a file or recipient needs no store). */
export type KeyLookup = () => Promise<Pick<SigningKeys, 'ageIdentity' | 'ageRecipient'>>;

/** `--encrypt-to` values: `age1…` recipients or age key names. */
export async function resolveRecipients(specs: readonly string[], keys: KeyLookup): Promise<string[]> {
  const out: string[] = [];
  for (const spec of specs) out.push(spec.startsWith('age1') ? checkRecipient(spec) : await (await keys()).ageRecipient(spec));
  return out;
}

/** `--identity` values: identity files or age key names. */
export async function resolveIdentities(specs: readonly string[], cwd: string, keys?: KeyLookup): Promise<string[]> {
  const out: string[] = [];
  for (const spec of specs) {
    if (AGE_IDENTITY_PATTERN.test(spec.trim())) {
      throw new UserError('AGE_IDENTITY_INVALID', '--identity takes an identity file or an age key name, never the secret key itself (it would show in the process list)');
    }
    const path = resolve(cwd, spec);
    if (existsSync(path) && statSync(path).isFile()) {
      out.push(...parseIdentityFile(readFileSync(path, 'utf8'), spec));
      continue;
    }
    if (!keys) throw new UserError('AGE_IDENTITY_INVALID', `--identity ${spec}: no such file (a key name needs a Swarm project)`, { file: spec });
    let found: Awaited<ReturnType<KeyLookup>>;
    try {
      found = await keys();
    } catch (e) {
      if (e instanceof UserError && e.code === 'AGE_IDENTITY_INVALID') throw new UserError('AGE_IDENTITY_INVALID', `--identity ${spec}: ${e.message}`, { file: spec });
      throw e;
    }
    out.push(await found.ageIdentity(spec));
  }
  return out;
}
