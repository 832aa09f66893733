/**
 * Start-up of a CLI process: most `swarm` calls last a few hundred milliseconds, and in that time
 * V8's optimising compiler (TurboFan, on background threads) compiles functions that are then
 * thrown away with the process. It is kept off for the first second and switched back on after it,
 * so a short command does not pay for it and one that lasts (`run` of a long workflow, `chat`) gets
 * it once its start-up is over. The servers (`serve`, `worker`, `dev`, `executor serve`) keep it
 * from the start: they take load at once. SWARM_NODE_OPT=1 keeps it for every command.
 * bench/cli-startup.ts measures it (bench/README.md, "CLI start-up").
 *
 * The bin scripts import this module before the CLI (a dynamic import after it), so the flag is set
 * before any of the CLI's code is compiled.
 *
 * @example
 *   await import('../dist/src/cli/fast-start.js');
 *   const { main } = await import('../dist/src/cli/main.js');
 */
import { setFlagsFromString } from 'node:v8';

/** How long after the start the optimising compiler is switched back on. */
const OPTIMISE_AFTER_MS = 1000;

/** Commands that serve load from their first second: the optimising compiler stays on for them. */
const SERVERS = new Set(['serve', 'worker', 'dev', 'executor serve']);

const [command = '', sub = ''] = process.argv.slice(2);
if (!process.env.SWARM_NODE_OPT && !SERVERS.has(command) && !SERVERS.has(`${command} ${sub}`)) {
  setFlagsFromString('--no-opt');
  setTimeout(() => setFlagsFromString('--opt'), OPTIMISE_AFTER_MS).unref();
}
