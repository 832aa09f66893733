/**
 * `swarm verify <bundle.tar> [--public-key K] [--parent parent.tar] [--json]`: check a run bundle
 * offline (src/bundles/verify.ts). It opens no store and reads no swarm.yaml, and this module imports
 * only the verifier, so `bin/swarm.js` can run it without loading the rest of the CLI.
 *
 * Exit codes: 0 the bundle verifies; 3 it does not (the report names the first mismatch: entry path
 * and field); 2 the file is missing, is not a bundle, or an option is bad.
 *
 * @example
 *   swarm verify run.tar --public-key "$(swarm keys export-public runs)"
 *   swarm verify fork.tar --parent run.tar --json
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { UserError } from '../../core/errors.js';
import { exitQuietlyOnClosedPipe } from '../closed-pipe.js';
import type { Command } from 'commander';
import type { VerifyBundleOptions, VerifyBundleReport } from '../../bundles/verify.js';

/** Where verify prints, and how it sets the exit code (the CLI's context, or the fast path's). */
export interface VerifyIo {
  out(line: string): void;
  err(line: string): void;
  setExitCode(code: number): void;
}

/** The options `swarm verify` parses. */
export interface VerifyCliOptions {
  publicKey?: string;
  parent?: string;
  parentPublicKey?: string;
  json?: boolean;
  [option: string]: unknown;
}

/**
 * Turns a file's bytes into the plaintext bundle (an encrypted bundle is decrypted here, before
 * verification). The default returns the bytes as they are.
 */
export type BundleOpener = (bytes: Buffer, file: string, o: VerifyCliOptions) => Promise<Buffer>;

const openers: BundleOpener[] = [];
// An encrypted bundle (age v1) is decrypted with --identity before it is verified. A key name opens
// the project's store; an identity file keeps verify offline.
openers.push(async (bytes, file, o) => {
  const { isEncryptedBundle, decryptBundle } = await import('../../bundles/encrypt.js');
  if (!isEncryptedBundle(bytes)) return bytes;
  const { resolveIdentities } = await import('../../branching/age-keys.js');
  const specs = (o.identity as string[] | undefined) ?? [];
  let close: (() => Promise<void>) | undefined;
  const keys = async (): Promise<import('../../identity/keys.js').SigningKeys> => {
    // A key name is looked up in the project's store, never in one made for the purpose (a mistyped
    // identity file's name would otherwise leave a new store behind).
    const { resolveConfig } = await import('../../config/config.js');
    const config = resolveConfig({ cwd: process.cwd(), env: process.env });
    if (!config.databaseUrl && !existsSync(config.dbPath)) throw new UserError('AGE_IDENTITY_INVALID', `no such file, and no Swarm store here to hold an age key of that name (${config.dbPath} does not exist)`);
    const { createContext } = await import('../context.js');
    const ctx = createContext(process.cwd(), process.env);
    close = () => ctx.close();
    return (await ctx.swarm()).signingKeys;
  };
  try {
    return Buffer.from(await decryptBundle(bytes, await resolveIdentities(specs, process.cwd(), keys), file));
  } finally {
    await close?.();
  }
});

/** Add `verify` to a program (the full CLI or the fast path). */
export function addVerifyCommand(program: Command, io: VerifyIo): Command {
  const cmd = program
    .command('verify <bundle>')
    .description('verify a run bundle offline (tar, schemas, digests, event chain, certificate signature, parent link); exit 3 names the first mismatch')
    .option('--public-key <key>', 'the expected signer: base64 Ed25519 public key (swarm keys export-public), a PEM, or a file holding either')
    .option('--parent <bundle>', "the parent run's bundle: check a fork's parent link")
    .option('--parent-public-key <key>', "the parent bundle's expected signer, when another key signed it (a fork made on another installation); default: --public-key")
    .option('--json', 'print the report as JSON');
  cmd.option('--identity <file|key>', 'decrypt an encrypted (age) bundle first: an age identity file, or an age key name (opens the project store); repeatable', (v: string, prev: string[] = []) => [...prev, v]);
  cmd.action(async (file: string, o: VerifyCliOptions) => io.setExitCode(await runVerify(file, o, io)));
  return cmd;
}

/** Read a bundle file through the openers (bad file: exit 2). */
async function openBundle(file: string, o: VerifyCliOptions, io: VerifyIo): Promise<Buffer | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    io.err(`swarm: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return undefined;
  }
  for (const open of openers) bytes = await open(bytes, file, o);
  return bytes;
}

/** The key given to --public-key: the value itself, or the contents of a file of that name. */
async function keyOf(value: string): Promise<string> {
  if (/^[A-Za-z0-9+/=]+$/.test(value) && value.length <= 64) return value;
  try {
    return (await readFile(value, 'utf8')).trim();
  } catch {
    return value;
  }
}

/**
 * A public key given on the command line (base64 of the raw 32 bytes, an SPKI PEM, or a file holding
 * either) as base64 of the raw 32 bytes; a UserError (exit 2) naming the flag when it is none.
 */
export async function publicKeyArg(given: string, flag: string): Promise<string> {
  const { normalizeKey } = await import('../../bundles/verify.js');
  try {
    const key = normalizeKey(await keyOf(given));
    if (Buffer.from(key, 'base64').length !== 32) throw new Error('not 32 bytes');
    return key;
  } catch {
    throw new UserError('ARGUMENT_INVALID', `${flag} ${given} is not an Ed25519 public key (base64 of 32 bytes, or a PEM, or a file holding either)`, { field: flag });
  }
}

/** Run verify and print its report; returns the exit code. */
export async function runVerify(file: string, o: VerifyCliOptions, io: VerifyIo): Promise<number> {
  const bytes = await openBundle(file, o, io);
  if (!bytes) return 2;
  // The verifier loads when verify runs, not when the CLI registers the command.
  const { verifyBundle } = await import('../../bundles/verify.js');
  const options: VerifyBundleOptions = {};
  const pin = async (given: string, flag: string): Promise<string | undefined> => {
    try {
      return await publicKeyArg(given, flag);
    } catch (e) {
      io.err(`swarm: ${(e as Error).message}`);
      return undefined;
    }
  };
  if (o.publicKey !== undefined) {
    const key = await pin(o.publicKey, '--public-key');
    if (key === undefined) return 2;
    options.publicKey = key;
  }
  if (o.parentPublicKey !== undefined) {
    if (o.parent === undefined) {
      io.err('swarm: --parent-public-key needs --parent (the parent bundle it pins)');
      return 2;
    }
    const key = await pin(o.parentPublicKey, '--parent-public-key');
    if (key === undefined) return 2;
    options.parentPublicKey = key;
  }
  if (o.parent !== undefined) {
    const parent = await openBundle(o.parent, o, io);
    if (!parent) return 2;
    options.parent = parent;
  }
  const report = await verifyBundle(bytes, options);
  if (o.json) io.out(JSON.stringify({ file, ...report }, null, 2));
  else printReport(file, report, io);
  return report.exit_code;
}

function printReport(file: string, r: VerifyBundleReport, io: VerifyIo): void {
  if (!r.ok) {
    io.out(`FAILED: ${file}${r.run_id ? ` (run ${r.run_id})` : ''}`);
    if (r.checks.length) io.out(`  passed: ${r.checks.join(', ')}`);
    io.out(`  first mismatch: ${r.problem?.message ?? 'unknown'}`);
    io.err(r.exit_code === 2 ? `swarm: ${r.problem?.message ?? 'not a bundle'}` : `swarm: verification failed: ${r.problem?.message ?? 'unknown'}`);
    return;
  }
  io.out(`ok: ${file} verifies (run ${r.run_id ?? '-'})`);
  io.out(`  checks:        ${r.checks.join(', ')}`);
  io.out(`  bundle_sha256: ${r.bundle_sha256 ?? '-'}`);
  io.out(`  manifest:      ${r.bundle_manifest_sha256 ?? '-'}`);
  io.out(`  certificate:   ${r.certificate_sha256 ?? '-'}`);
  io.out(`  file:          ${r.file_sha256}`);
  io.out(`  signer:        ${r.signer?.key_name ?? '-'} ${r.signer?.public_key ?? ''} (${r.signer?.pinned ? 'pinned' : 'UNPINNED'})`);
  const p = r.parent;
  const how = !p?.checked ? 'not checked' : p.match === 'events-prefix' ? "checked: the parent bundle is a later state, whose log starts with the fork point's" : 'checked';
  io.out(`  parent:        ${!p || p.state_id === 'genesis' ? 'none (genesis)' : `${p.state_id} ${p.bundle_sha256} (${how})`}`);
  for (const n of r.notes) io.out(`  note: ${n}`);
}

/**
 * The fast path of `swarm verify` (bin/swarm.js): the command alone, without the rest of the CLI.
 *
 * @example
 *   process.exitCode = await verifyMain(['run.tar', '--json']);
 */
export async function verifyMain(argv: string[]): Promise<number> {
  const { Command, CommanderError } = await import('commander');
  exitQuietlyOnClosedPipe();
  let code = 0;
  const io: VerifyIo = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`), setExitCode: (c) => (code = c) };
  const program = new Command('swarm').exitOverride();
  const output = {
    writeErr: (s: string) => process.stderr.write(s),
    writeOut: (s: string) => process.stdout.write(s),
    outputError: (s: string, write: (s: string) => void) => write(`swarm: ${s.trim().replace(/^error: /, '')} (see --help)\n`),
  };
  program.configureOutput(output);
  addVerifyCommand(program, io).exitOverride().configureOutput(output);
  try {
    await program.parseAsync(['verify', ...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' ? 0 : 2;
    // An opener's refusal (an encrypted bundle without a matching identity: 2; altered ciphertext: 3).
    const { isSwarmError } = await import('../../core/errors.js');
    if (isSwarmError(e)) {
      io.err(`swarm: ${e.message}`);
      return e.exitCode;
    }
    io.err(`swarm: unexpected error: ${e instanceof Error ? e.message : String(e)}`);
    return 4;
  }
}
