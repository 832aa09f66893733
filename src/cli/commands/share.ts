/**
 * Handing runs between installations: `swarm runs import <bundle> [--identity …] [--public-key K]
 * [--json]`. Encryption is `swarm runs export --encrypt-to` (bundle.ts); `swarm verify --identity` is
 * in verify.ts (it runs without the rest of the CLI).
 *
 * Import's exit codes: 0 imported (or already imported: a no-op naming the run); 2 not a bundle, a
 * bad option, an encrypted bundle without a matching identity, a different run of that id exists,
 * an agent or a sub-workflow the bundle's workflow needs is not registered here; 3 the bundle does
 * not verify, or its encrypted bytes were altered (nothing is written).
 *
 * @example
 *   swarm runs import run.tar --public-key "$(cat signer.pub)"
 *   swarm runs import run.tar.age --identity bundles
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../core/errors.js';
import type { CliContext } from '../context.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function registerShareCommands(program: Command, ctx: CliContext): void {
  const runs = program.commands.find((c) => c.name() === 'runs');
  if (!runs) throw new Error('the runs command must be registered before the import command');

  runs
    .command('import <bundle>')
    .description('import a run from a bundle made elsewhere (verified first; the run keeps its id and can be forked here); an encrypted bundle needs --identity')
    .option('--identity <file|key>', 'an age identity file, or the name of an age key (swarm keys create <name> --type age); repeatable', collect)
    .option('--public-key <key>', 'refuse a bundle not signed by this key (base64 Ed25519 public key, as swarm keys export-public prints; a PEM; or a file holding either)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { identity?: string[]; publicKey?: string; json?: boolean }) => {
      const { openBundleBytes } = await import('../../bundles/encrypt.js');
      const { resolveIdentities } = await import('../../branching/age-keys.js');
      // A malformed key is the command line's mistake (exit 2), checked before anything is read.
      const publicKey = o.publicKey !== undefined ? await (await import('./verify.js')).publicKeyArg(o.publicKey, '--public-key') : undefined;
      const raw = await readBundleFile(resolve(ctx.cwd, file), file);
      const swarm = await ctx.swarm();
      const identities = await resolveIdentities(o.identity ?? [], ctx.cwd, () => Promise.resolve(swarm.signingKeys));
      const { bytes, encrypted } = await openBundleBytes(raw, identities, file);
      const r = await swarm.importBundle(Buffer.from(bytes), publicKey ? { publicKey } : {});
      if (o.json) return ctx.out(JSON.stringify({ file, encrypted, ...r }, null, 2));
      if (!r.created) ctx.out(`already imported: run ${r.run_id} (${r.workflow}, ${r.status}); nothing changed`);
      else ctx.out(`imported run ${r.run_id} (${r.workflow}, ${r.status}) from ${file}${encrypted ? ' (decrypted)' : ''}: ${r.copied.length} step(s) copied`);
      ctx.out(`  bundle_sha256: ${r.bundle_sha256}`);
      ctx.out(`  signer:        ${r.verify.signer?.key_name ?? '-'} ${r.verify.signer?.public_key ?? ''} (${r.verify.signer?.pinned ? 'pinned' : 'UNPINNED'})`);
      if (r.registered_workflow) ctx.out(`  workflow ${r.workflow} registered from the bundle (disabled: its triggers do not fire here)`);
      for (const n of r.notes) ctx.out(`  note: ${n}`);
    });
}

async function readBundleFile(path: string, shown: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new UserError('FILE_NOT_FOUND', `cannot read ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: shown });
  }
}
