/**
 * Handing runs between installations: `swarm runs import <bundle> [--identity …] [--public-key K]
 * [--json]`, and encryption on `swarm runs export --encrypt-to <age1… | key name>` (repeatable).
 * `swarm verify --identity` is added in verify.ts (it runs without the rest of the CLI).
 *
 * Import's exit codes: 0 imported (or already imported: a no-op naming the run); 2 not a bundle, a
 * bad option, an encrypted bundle without a matching identity, a different run of that id exists,
 * an agent the bundle's workflow needs is not registered here; 3 the bundle does not verify, or its
 * encrypted bytes were altered (nothing is written).
 *
 * @example
 *   swarm runs import run.tar --public-key "$(cat signer.pub)"
 *   swarm runs export 0193… -o run.tar.age --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
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
    .option('--public-key <key>', 'refuse a bundle not signed by this key (base64 Ed25519 public key, as swarm keys export-public prints)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { identity?: string[]; publicKey?: string; json?: boolean }) => {
      const { openBundleBytes } = await import('../../bundles/encrypt.js');
      const { resolveIdentities } = await import('../../branching/age-keys.js');
      const raw = await readBundleFile(resolve(ctx.cwd, file), file);
      const swarm = await ctx.swarm();
      const identities = await resolveIdentities(o.identity ?? [], ctx.cwd, () => Promise.resolve(swarm.signingKeys));
      const { bytes, encrypted } = await openBundleBytes(raw, identities, file);
      const r = await swarm.importBundle(Buffer.from(bytes), o.publicKey ? { publicKey: o.publicKey } : {});
      if (o.json) return ctx.out(JSON.stringify({ file, encrypted, ...r }, null, 2));
      if (!r.created) ctx.out(`already imported: run ${r.run_id} (${r.workflow}, ${r.status}); nothing changed`);
      else ctx.out(`imported run ${r.run_id} (${r.workflow}, ${r.status}) from ${file}${encrypted ? ' (decrypted)' : ''}: ${r.copied.length} step(s) copied`);
      ctx.out(`  bundle_sha256: ${r.bundle_sha256}`);
      ctx.out(`  signer:        ${r.verify.signer?.key_name ?? '-'} ${r.verify.signer?.public_key ?? ''} (${r.verify.signer?.pinned ? 'pinned' : 'UNPINNED'})`);
      if (r.registered_workflow) ctx.out(`  workflow ${r.workflow} registered from the bundle (disabled: its triggers do not fire here)`);
      for (const n of r.notes) ctx.out(`  note: ${n}`);
    });

  // --encrypt-to on export: the plain bundle never touches the disk.
  const exportCmd = runs.commands.find((c) => c.name() === 'export');
  if (!exportCmd) return;
  exportCmd
    .option('--encrypt-to <age1…|key>', 'encrypt the bundle (age v1) to this recipient: an age1… recipient or the name of an age key; repeatable', collect)
    .action(async (run: string, o: { output: string; key?: string; json?: boolean; encryptTo?: string[] }) => {
      const { encryptBundle } = await import('../../bundles/encrypt.js');
      const { resolveRecipients } = await import('../../branching/age-keys.js');
      const { exportRun, writeFileAtomic } = await import('../../bundles/export.js');
      const { sha256Ref } = await import('../../bundles/model.js');
      const swarm = await ctx.swarm();
      // Recipients are checked before the run is read, so a typo costs nothing.
      const recipients = await resolveRecipients(o.encryptTo ?? [], () => Promise.resolve(swarm.signingKeys));
      const runId = await swarm.resolveRunId(run);
      // An imported run: the bundle it came from, byte for byte (signed by its original signer).
      const imported = await swarm.store.getImportedBundle(runId);
      const built = imported ? undefined : await exportRun(swarm, runId, o.key ? { keyName: o.key } : {});
      const plain = imported ? imported.bundle : (built?.bytes as Buffer);
      const bytes = recipients.length ? Buffer.from(await encryptBundle(plain, recipients)) : plain;
      await writeFileAtomic(resolve(ctx.cwd, o.output), bytes);
      const { bytes: _bytes, ...digests } = built ?? { bytes: undefined, run_id: runId, bundle_sha256: imported?.bundle_sha256, certificate_sha256: imported?.certificate_sha256 };
      const extra = { ...(recipients.length ? { encrypted_to: recipients, file_sha256: sha256Ref(bytes), plain_sha256: sha256Ref(plain) } : {}), ...(imported ? { imported: true, file_sha256: sha256Ref(bytes) } : {}) };
      if (o.json) return ctx.out(JSON.stringify({ file: o.output, size: bytes.length, ...digests, ...extra }, null, 2));
      ctx.out(`exported run ${runId} to ${o.output} (${bytes.length} bytes${recipients.length ? `, encrypted (age) to ${recipients.length} recipient(s)` : ''}${imported ? ', the bundle it was imported from' : ''})`);
      ctx.out(`  file sha256:   ${sha256Ref(bytes)}`);
      if (recipients.length) ctx.out(`  plain sha256:  ${sha256Ref(plain)} (swarm verify ${o.output} --identity <file|key>)`);
      ctx.out(`  bundle_sha256: ${digests.bundle_sha256 ?? '-'}`);
      if (built) {
        ctx.out(`  manifest:      ${built.bundle_manifest_sha256}`);
        ctx.out(`  certificate:   ${built.certificate_sha256}`);
        ctx.out(`  signer:        ${built.signer.key_name} ${built.signer.public_key}`);
      } else ctx.out(`  certificate:   ${imported?.certificate_sha256 ?? '-'}`);
    });
}

async function readBundleFile(path: string, shown: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new UserError('FILE_NOT_FOUND', `cannot read ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: shown });
  }
}
