import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addVerifyCommand } from './verify.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/**
 * `swarm runs export <run> -o <file> [--key <name>] [--encrypt-to <age1…|key>]… [--json]` and
 * `swarm verify` (verify.ts): run bundles (docs/branching.md#bundles).
 *
 * Export's exit codes: 0 written; 2 the run is unknown or not finished, or a bad option; 3 the run's
 * keyed event chain in the store does not verify (nothing is written); 4 the file cannot be written.
 *
 * @example
 *   swarm runs export 0193… -o run.tar
 *   swarm runs export 0193… -o run.tar.age --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
 *   swarm verify run.tar --public-key "$(swarm keys export-public runs)"
 */
export function registerBundleCommands(program: Command, ctx: CliContext): void {
  const runs = program.commands.find((c) => c.name() === 'runs');
  if (!runs) throw new Error('the runs command must be registered before the bundle commands');
  runs
    .command('export <run>')
    .description('write a finished run as a deterministic, signed bundle (tar): state, events, transcripts, node.json, result.json, certificate.json; an imported run exports as the bundle it came from')
    .requiredOption('-o, --output <file>', 'the bundle file to write (replaced atomically; a link is followed; - for standard output)')
    .option('--key <name>', 'the signing key (created if missing; default runs)')
    .option('--encrypt-to <age1…|key>', 'encrypt the bundle (age v1) to this recipient: an age1… recipient or the name of an age key; repeatable', collect)
    .option('--json', 'print JSON')
    .action(async (run: string, o: { output: string; key?: string; encryptTo?: string[]; json?: boolean }) => {
      // Loaded when the command runs: the rest of the CLI does not pay for it.
      const { exportRun, writeFileAtomic } = await import('../../bundles/export.js');
      const { sha256Ref } = await import('../../bundles/model.js');
      const swarm = await ctx.swarm();
      // Recipients are checked before the run is read, so a typo costs nothing.
      const recipients = o.encryptTo?.length ? await (await import('../../branching/age-keys.js')).resolveRecipients(o.encryptTo, () => Promise.resolve(swarm.signingKeys)) : [];
      const out = await exportRun(swarm, run, o.key ? { keyName: o.key } : {});
      // Encrypted in memory: the plain bundle never touches the disk.
      const bytes = recipients.length ? Buffer.from(await (await import('../../bundles/encrypt.js')).encryptBundle(out.bytes, recipients)) : out.bytes;
      // `-o -`: the bundle is the standard output, and what is said about it goes to standard error.
      const toStdout = o.output === '-';
      const say = toStdout ? (l: string): void => ctx.err(l) : (l: string): void => ctx.out(l);
      if (toStdout) await new Promise<void>((done, fail) => process.stdout.write(bytes, (e) => (e ? fail(e) : done())));
      else await writeFileAtomic(resolve(ctx.cwd, o.output), bytes);
      const { bytes: _plain, file_sha256: plainSha, imported, ...digests } = out;
      const fileSha = recipients.length ? sha256Ref(bytes) : plainSha;
      if (o.json) {
        const extra = { ...(recipients.length ? { encrypted_to: recipients, plain_sha256: plainSha } : {}), ...(imported ? { imported: true } : {}) };
        return say(JSON.stringify({ file: o.output, size: bytes.length, file_sha256: fileSha, ...digests, ...extra }, null, 2));
      }
      const how = [recipients.length ? `encrypted (age) to ${recipients.length} recipient(s)` : '', imported ? 'the bundle it was imported from' : ''].filter(Boolean);
      say(`exported run ${out.run_id} to ${toStdout ? 'standard output' : o.output} (${bytes.length} bytes${how.length ? `, ${how.join(', ')}` : ''})`);
      say(`  file sha256:   ${fileSha}`);
      if (recipients.length) say(`  plain sha256:  ${plainSha} (swarm verify ${toStdout ? '<file>' : o.output} --identity <file|key>)`);
      say(`  bundle_sha256: ${out.bundle_sha256}`);
      say(`  manifest:      ${out.bundle_manifest_sha256}`);
      say(`  certificate:   ${out.certificate_sha256}`);
      say(`  signer:        ${out.signer.key_name} ${out.signer.public_key}`);
    });
  addVerifyCommand(program, { out: (l) => ctx.out(l), err: (l) => ctx.err(l), setExitCode: (c) => (ctx.exitCode = c) });
}
