import type { Command } from 'commander';
import { UserError } from '../../core/errors.js';
import type { CliContext } from '../context.js';
import type { SigningKeyInfo } from '../../identity/keys.js';
import { isoSeconds, table } from '../render.js';

/**
 * `swarm keys create <name> [--type ed25519|age] | list | export-public <name>`: the kernel-held
 * Ed25519 signing keys and age (X25519) identities that decrypt encrypted bundles
 * (src/identity/keys.ts). Private keys never leave the store unsealed through the CLI; the public key
 * is what others pin to check signatures (an external voter's contract entry, an executor's peers).
 *
 * @example
 *   swarm keys create consensus:voter-1
 *   swarm keys export-public consensus:voter-1   # base64 of the raw 32-byte Ed25519 public key
 *   swarm keys create bundles --type age          # export-public prints its age1… recipient
 */
export function registerKeysCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('Ed25519 signing keys held by Swarm (private keys sealed under the master key): create, list, export-public');

  keys
    .command('create <name>')
    .description('create a key (fails if the name is taken) and print its public key: an Ed25519 signing key, or with --type age an age identity for encrypted bundles (its public key is the age1… recipient)')
    .option('--type <type>', 'ed25519 (signing, the default) or age (decrypts bundles encrypted to it)', 'ed25519')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean; type: string }) => {
      if (o.type !== 'ed25519' && o.type !== 'age') throw new UserError('KEY_TYPE_INVALID', `--type must be ed25519 or age, not ${JSON.stringify(o.type)}`, { type: o.type });
      const swarm = await ctx.swarm();
      const k = o.type === 'age' ? await swarm.signingKeys.createAge(name) : await swarm.signingKeys.create(name);
      if (o.json) return ctx.out(JSON.stringify(keyJson(k), null, 2));
      ctx.out(o.type === 'age' ? `age key ${k.name} created; recipient ${k.public_key}` : `signing key ${k.name} created; public key ${k.public_key}`);
    });

  keys
    .command('list')
    .description('signing keys: names, public keys and creation dates (never private keys)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = await swarm.signingKeys.list();
      if (o.json) return ctx.out(JSON.stringify(list.map(keyJson), null, 2));
      if (list.length === 0) return ctx.out("no signing keys (create one with 'swarm keys create <name>')");
      ctx.out(table(['NAME', 'PUBLIC KEY', 'CREATED', 'TYPE'], list.map((k) => [k.name, k.public_key, isoSeconds(k.created_at), k.type ?? 'ed25519'])));
    });

  keys
    .command('export-public <name>')
    .description('print a key’s public key: base64 of the raw 32-byte Ed25519 key (--pem for SPKI PEM); for an age key its age1… recipient')
    .option('--pem', 'print it as an SPKI PEM block instead')
    .action(async (name: string, o: { pem?: boolean }) => {
      const swarm = await ctx.swarm();
      const b64 = await swarm.signingKeys.exportPublic(name);
      if (b64.startsWith('age1')) {
        if (o.pem) throw new UserError('KEY_WRONG_TYPE', `key ${name} is an age key: its public key is the recipient ${b64}, which has no PEM form`, { key: name });
        return ctx.out(b64);
      }
      ctx.out(o.pem ? spkiPem(b64) : b64);
    });
}

/** A key as `--json` prints it: its type always named, its creation time in ISO 8601 as JSON times are. */
function keyJson(k: SigningKeyInfo): { name: string; type: string; public_key: string; created_at: string } {
  return { name: k.name, type: k.type ?? 'ed25519', public_key: k.public_key, created_at: new Date(k.created_at).toISOString() };
}

/** The SPKI PEM of a raw Ed25519 public key (the fixed 12-byte DER prefix, then the key). */
function spkiPem(b64: string): string {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(b64, 'base64')]);
  const body = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN PUBLIC KEY-----\n${body}-----END PUBLIC KEY-----`;
}
