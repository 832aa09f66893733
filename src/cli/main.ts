import { Command, CommanderError } from 'commander';
import { ExitCode, isSwarmError, ManifestError } from '../core/errors.js';
import { fileFault } from '../store/faults.js';
import { BuiltinCommands } from './builtin-commands.js';
import { createContext } from './context.js';
import { version } from './version.js';

const EXIT_CODES_HELP = `
Exit codes:
  0  success (swarm run: the run completed, or it waits for an approval, an event or a signal)
  2  invalid input (a bad file, argument, JSON or schema mismatch; unknown agent, workflow or run)
  3  verification failed (a run's event chain or checkpoints do not verify)
  4  execution failure (the run failed or was cancelled; a store fault: a full disk,
     an I/O error, a read-only or forbidden file; the message names the path)
  5  resume failure (the run cannot be resumed or retried in its state)
  6  policy violation (e.g. the workflow is disabled)
  7  swarm doctor: a check failed (its line says which, and what to do)
  130 interrupted (Ctrl-C); the run can be resumed`;

/**
 * The `swarm` command line. Every error becomes a one-line message on stderr and a documented exit
 * code here, in one place.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number> {
  const ctx = createContext(cwd, env);
  const program = new Command('swarm')
    .description('Swarm: a durable runtime for multi-agent work')
    .version(version())
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();
  const output = {
    writeErr: (s: string) => process.stderr.write(s),
    writeOut: (s: string) => process.stdout.write(s),
    // One error style for everything: `swarm: <what>` on one line (commander puts its "Did you mean" on a second).
    outputError: (s: string, write: (s: string) => void) => write(`swarm: ${s.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')} (see --help)\n`),
  };
  program.configureOutput(output);
  // The built-in commands load lazily (builtin-commands.ts): the command that runs, not all of them;
  // every one of them for --help or an unknown word (so help and suggestions are complete).
  await new BuiltinCommands(program, ctx, argv).register();
  for (const c of program.commands) {
    c.exitOverride().configureOutput(output);
    for (const sub of c.commands) sub.exitOverride().configureOutput(output);
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version succeed; help shown because a subcommand is missing is a usage error.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : ExitCode.INVALID_INPUT;
    }
    // `serve` or `worker` logging JSON: their last word is a JSON line too, with the error's code.
    const json = ctx.logger.format === 'json';
    if (isSwarmError(e)) {
      if (json) ctx.logger.error(e.message, { code: e.code, exit_code: e.exitCode });
      // A manifest with several problems: one line each, all of them.
      else for (const line of e instanceof ManifestError ? e.message.split('\n') : [e.message]) ctx.err(`swarm: ${line}`);
      return e.exitCode;
    }
    // A full disk or a permission fault on a file outside the store (a directory Swarm creates).
    const path = (e as { path?: unknown } | null | undefined)?.path;
    const fault = typeof path === 'string' ? fileFault(e, { what: 'directory', path }, 'writing') : undefined;
    if (fault) {
      if (json) ctx.logger.error(fault.message, { code: fault.code, exit_code: fault.exitCode });
      else ctx.err(`swarm: ${fault.message}`);
      return fault.exitCode;
    }
    if (json) {
      ctx.logger.error(`unexpected error: ${e instanceof Error ? e.message : String(e)}`, { err: e, exit_code: ExitCode.EXECUTION_FAILED });
      return ExitCode.EXECUTION_FAILED;
    }
    ctx.err(`swarm: unexpected error: ${e instanceof Error ? e.message : String(e)}`);
    if (env.SWARM_DEBUG) ctx.err(e instanceof Error ? (e.stack ?? '') : '');
    return ExitCode.EXECUTION_FAILED;
  } finally {
    await ctx.close().catch(() => undefined);
  }
}
