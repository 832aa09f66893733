/**
 * Start-up of a CLI process: most `swarm` calls last a few hundred milliseconds, and in that time
 * V8's optimising compiler (TurboFan, on background threads) compiles functions that are then
 * thrown away with the process. It is kept off for the first second and switched back on after it,
 * so a short command does not pay for it and a long-lived one (`worker`, `serve`, `run` of a long
 * workflow) gets it once its start-up is over. Measured on `swarm runs list`: 0.50 s of CPU time
 * with it, 0.40 s without, wall time the same or shorter (bench/README.md, "CLI start-up").
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
export const OPTIMISE_AFTER_MS = 1000;

if (!process.env.SWARM_NODE_OPT) {
  setFlagsFromString('--no-opt');
  setTimeout(() => setFlagsFromString('--opt'), OPTIMISE_AFTER_MS).unref();
}
