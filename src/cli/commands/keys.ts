import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { isoSeconds, table } from '../render.js';

/**
 * `swarm keys create <name> | list | export-public <name>`: the kernel-held Ed25519 signing keys
 * (src/identity/keys.ts). Private keys never leave the store unsealed through the CLI; the public key
 * is what others pin to check signatures (an external voter's contract entry, an executor's peers).
 *
 * @example
 *   swarm keys create consensus:voter-1
 *   swarm keys export-public consensus:voter-1   # base64 of the raw 32-byte Ed25519 public key
 */
export function registerKeysCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('Ed25519 signing keys held by Swarm (private keys sealed under the master key): create, list, export-public');

  keys
    .command('create <name>')
    .description('create a signing key (fails if the name is taken) and print its public key')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const k = await swarm.signingKeys.create(name);
      if (o.json) return ctx.out(JSON.stringify(k, null, 2));
      ctx.out(`signing key ${k.name} created; public key ${k.public_key}`);
    });

  keys
    .command('list')
    .description('signing keys: names, public keys and creation dates (never private keys)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = await swarm.signingKeys.list();
      if (o.json) return ctx.out(JSON.stringify(list, null, 2));
      if (list.length === 0) return ctx.out("no signing keys (create one with 'swarm keys create <name>')");
      ctx.out(table(['NAME', 'PUBLIC KEY', 'CREATED'], list.map((k) => [k.name, k.public_key, isoSeconds(k.created_at)])));
    });

  keys
    .command('export-public <name>')
    .description('print a key’s public key: base64 of the raw 32-byte Ed25519 key (--pem for SPKI PEM)')
    .option('--pem', 'print it as an SPKI PEM block instead')
    .action(async (name: string, o: { pem?: boolean }) => {
      const swarm = await ctx.swarm();
      const b64 = await swarm.signingKeys.exportPublic(name);
      ctx.out(o.pem ? spkiPem(b64) : b64);
    });
}

/** The SPKI PEM of a raw Ed25519 public key (the fixed 12-byte DER prefix, then the key). */
function spkiPem(b64: string): string {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(b64, 'base64')]);
  const body = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN PUBLIC KEY-----\n${body}-----END PUBLIC KEY-----`;
}
