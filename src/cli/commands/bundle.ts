import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { addVerifyCommand } from './verify.js';

/**
 * `swarm runs export <run> -o <file> [--key <name>] [--json]` and `swarm verify` (verify.ts): run
 * bundles (docs/branching.md#bundles).
 *
 * Export's exit codes: 0 written; 2 the run is unknown or not finished, or a bad option; 3 the run's
 * keyed event chain in the store does not verify (nothing is written); 4 the file cannot be written.
 *
 * @example
 *   swarm runs export 0193… -o run.tar
 *   swarm verify run.tar --public-key "$(swarm keys export-public runs)"
 */
export function registerBundleCommands(program: Command, ctx: CliContext): void {
  const runs = program.commands.find((c) => c.name() === 'runs');
  if (!runs) throw new Error('the runs command must be registered before the bundle commands');
  runs
    .command('export <run>')
    .description('write a finished run as a deterministic, signed bundle (tar): state, events, transcripts, node.json, result.json, certificate.json')
    .requiredOption('-o, --output <file>', 'the bundle file to write (replaced atomically)')
    .option('--key <name>', 'the signing key (created if missing; default runs)')
    .option('--json', 'print JSON')
    .action(async (run: string, o: { output: string; key?: string; json?: boolean }) => {
      // Loaded when the command runs: the rest of the CLI does not pay for it.
      const { exportRun, writeFileAtomic } = await import('../../bundles/export.js');
      const swarm = await ctx.swarm();
      const out = await exportRun(swarm, run, o.key ? { keyName: o.key } : {});
      const file = resolve(ctx.cwd, o.output);
      await writeFileAtomic(file, out.bytes);
      const { bytes, ...digests } = out;
      if (o.json) return ctx.out(JSON.stringify({ file: o.output, size: bytes.length, ...digests }, null, 2));
      ctx.out(`exported run ${out.run_id} to ${o.output} (${bytes.length} bytes)`);
      ctx.out(`  file sha256:   ${out.file_sha256}`);
      ctx.out(`  bundle_sha256: ${out.bundle_sha256}`);
      ctx.out(`  manifest:      ${out.bundle_manifest_sha256}`);
      ctx.out(`  certificate:   ${out.certificate_sha256}`);
      ctx.out(`  signer:        ${out.signer.key_name} ${out.signer.public_key}`);
    });
  addVerifyCommand(program, { out: (l) => ctx.out(l), err: (l) => ctx.err(l), setExitCode: (c) => (ctx.exitCode = c) });
}
