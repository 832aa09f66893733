import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import pc from 'picocolors';
import { UserError } from '../../core/errors.js';
import { MASTER_KEY_BYTES, parseMasterKey } from '../../secrets/master-key.js';
import { checkSecretName, SECRET_VALUE_MAX_BYTES } from '../../secrets/vault.js';
import type { Swarm } from '../../swarm.js';
import { secretJson } from '../../views/secret.js';
import type { CliContext } from '../context.js';
import { isoSeconds, table } from '../render.js';

/**
 * `swarm secrets set | list | delete | rotate-key`: the encrypted secrets store. A value is read
 * from standard input (or a hidden prompt on a terminal), never from an argument, where it would
 * land in the shell's history and in every process listing.
 */
export function registerSecretsCommands(program: Command, ctx: CliContext): void {
  const secrets = program.command('secrets').description('encrypted secrets for ${secrets.NAME}: set, list, delete, rotate the master key');

  secrets
    .command('set <name>')
    .description('store a secret (its value from standard input, or a hidden prompt on a terminal); global, or one workflow’s with --workflow')
    .option('--workflow <name>', 'only runs of this workflow see it (it wins over a global secret of the same name)')
    .action(async (name: string, o: { workflow?: string }) => {
      checkSecretName(name);
      const value = process.stdin.isTTY ? await promptHidden(`value of ${name}: `) : await readStdin(name);
      const swarm = await ctx.swarm();
      const result = await swarm.setSecret(name, value, o.workflow === undefined ? {} : { workflow: o.workflow });
      ctx.out(`secret ${name} ${result === 'created' ? 'set' : 'replaced'} (${scopeText(o.workflow)})`);
      if (o.workflow !== undefined && (await swarm.store.listWorkflows(o.workflow)).length === 0) {
        ctx.err(pc.yellow(`warning: no workflow named '${o.workflow}' is registered (yet): only its runs will see this secret`));
      }
    });

  secrets
    .command('list')
    .description('stored secrets: names, scopes and dates (never values)')
    .option('--workflow <name>', 'only this workflow’s secrets')
    .option('--json', 'print JSON')
    .action(async (o: { workflow?: string; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = await swarm.listSecrets(o.workflow === undefined ? {} : { workflow: o.workflow });
      if (o.json) return ctx.out(JSON.stringify(list.map(secretJson), null, 2));
      if (list.length === 0) return ctx.out(`no stored secrets${o.workflow === undefined ? '' : ` for workflow '${o.workflow}'`}`);
      const rows = list.map((s) => [s.name, s.workflow === null ? 'global' : `workflow ${s.workflow}`, isoSeconds(s.created_at), isoSeconds(s.updated_at)]);
      ctx.out(table(['NAME', 'SCOPE', 'CREATED', 'UPDATED'], rows));
    });

  secrets
    .command('delete <name>')
    .description('delete a stored secret (global, or one workflow’s with --workflow)')
    .option('--workflow <name>', 'the workflow the secret belongs to')
    .action(async (name: string, o: { workflow?: string }) => {
      checkSecretName(name);
      const swarm = await ctx.swarm();
      if (!(await swarm.deleteSecret(name, o.workflow === undefined ? {} : { workflow: o.workflow }))) {
        throw new UserError('SECRET_NOT_FOUND', `no stored secret ${name} (${scopeText(o.workflow)}); see 'swarm secrets list'`, { secret: name });
      }
      ctx.out(`secret ${name} deleted (${scopeText(o.workflow)})`);
    });

  secrets
    .command('rotate-key')
    .description('re-key the store under a new master key: secrets re-wrapped, run event chains re-signed, the old key refused from then on')
    .option('--new-key-file <file>', 'read the new master key (64 hex digits or base64) from this file; else from SWARM_NEW_MASTER_KEY; with neither, a key kept in <home>/master.key is replaced by a new random one')
    .option('--json', 'print JSON')
    .action(async (o: { newKeyFile?: string; json?: boolean }) => {
      const fromEnv = ctx.env.SWARM_NEW_MASTER_KEY;
      if (ctx.env === process.env) delete process.env.SWARM_NEW_MASTER_KEY;
      if (o.newKeyFile !== undefined && fromEnv) throw new UserError('ROTATE_KEY_AMBIGUOUS', 'give the new master key once: --new-key-file or SWARM_NEW_MASTER_KEY, not both');
      const swarm = await ctx.swarm();
      const keyFile = swarm.config.masterKey === undefined ? swarm.config.masterKeyFile : undefined;
      let newKey: Buffer;
      if (o.newKeyFile !== undefined) newKey = parseMasterKey(readKeyFile(o.newKeyFile), o.newKeyFile);
      else if (fromEnv) newKey = parseMasterKey(fromEnv, 'environment variable SWARM_NEW_MASTER_KEY');
      else if (keyFile) newKey = randomBytes(MASTER_KEY_BYTES);
      else throw new UserError('ROTATE_KEY_NO_NEW_KEY', "the master key comes from SWARM_MASTER_KEY: give the new one in SWARM_NEW_MASTER_KEY or with --new-key-file (make one with 'openssl rand -hex 32')");
      const report = await rotate(swarm, newKey, keyFile);
      if (o.json) return ctx.out(JSON.stringify({ ...report, key_file: keyFile ?? null }, null, 2));
      ctx.out(`master key rotated: ${report.secrets} secret(s) re-wrapped, ${report.events} event(s) of ${report.runs} run(s) re-signed`);
      if (report.unverified.length) {
        ctx.err(pc.yellow(`warning: ${report.unverified.length} run(s) did not verify under the old key and were left as they were (they still fail 'swarm runs verify'): ${report.unverified.slice(0, 5).join(', ')}`));
      }
      ctx.out(keyFile ? `the new key is in ${keyFile}` : 'set SWARM_MASTER_KEY to the new key for every Swarm process (the old key is refused from now on)');
    });
}

/**
 * With a key file, the new key is written next to it first (0600) and moved into place only once
 * the store has committed: a crash in between leaves the old key and the old store, or the new key
 * in `<file>.next` and the new store (move it into place by hand).
 */
async function rotate(swarm: Swarm, newKey: Buffer, keyFile: string | undefined): ReturnType<Swarm['rotateMasterKey']> {
  if (!keyFile) return swarm.rotateMasterKey(newKey);
  const next = `${keyFile}.next`;
  writeFileSync(next, `${newKey.toString('hex')}\n`, { mode: 0o600 });
  chmodSync(next, 0o600);
  let report;
  try {
    report = await swarm.rotateMasterKey(newKey);
  } catch (e) {
    unlinkSync(next);
    throw e;
  }
  renameSync(next, keyFile);
  return report;
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError('MASTER_KEY_UNREADABLE', `cannot read the new master key file ${file}: ${(e as Error).message}`, { file }, { cause: e });
  }
}

function scopeText(workflow: string | undefined): string {
  return workflow === undefined ? 'global' : `workflow '${workflow}'`;
}



/** Standard input, whole, without one trailing newline (`echo value | swarm secrets set NAME`). */
async function readStdin(name: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    // A little over the limit is read, so the error names the limit rather than a truncated value.
    if (size > SECRET_VALUE_MAX_BYTES + 2) throw new UserError('SECRET_VALUE_TOO_LARGE', `secret ${name}: the value on standard input is larger than ${SECRET_VALUE_MAX_BYTES} bytes`, { secret: name });
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** A prompt on the terminal that does not echo what is typed. */
function promptHidden(label: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(label);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: Buffer | string): void => {
      for (const c of String(chunk)) {
        if (c === '\r' || c === '\n' || c === '\u0004') {
          finish();
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          finish();
          reject(new UserError('INTERRUPTED', 'cancelled: no secret was stored'));
          return;
        }
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
  });
}
