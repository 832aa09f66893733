/**
 * CLI helpers of the executors tests: `bin/swarm` with colours stripped, and a `swarm executor serve`
 * child with its URL and public key read from its first line.
 */
import type { ChildProcess } from 'node:child_process';
import { runCli as runCliRaw, spawnCli, type CliResult } from './project.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
export async function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCliRaw(args, cwd, env);
  return { ...r, stdout: r.stdout.replace(ANSI, ''), stderr: r.stderr.replace(ANSI, '') };
}

export const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

export interface Served {
  child: ChildProcess;
  url: string;
  publicKey: string;
  output: () => string;
}

export async function serveExecutor(dir: string, stateDir: string): Promise<Served> {
  const child = spawnCli(['executor', 'serve', '--port', '0', '--state-dir', stateDir, '--name', 'ref-cli'], dir);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const m = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`executor serve did not start: ${out}`)), 20_000);
    const check = (): void => {
      const hit = /listening on (http:\/\/127\.0\.0\.1:\d+) .*public key (\S+);/.exec(out);
      if (hit) {
        clearTimeout(t);
        resolve(hit);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => reject(new Error(`executor serve exited ${code}: ${out}`)));
  });
  return { child, url: m[1] as string, publicKey: m[2] as string, output: () => out };
}

