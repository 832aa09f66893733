import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Swarm, type OpenSwarmOptions } from '../../src/swarm.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const EXAMPLES = join(ROOT, 'examples');
export const CLI = join(ROOT, 'bin', 'swarm.js');

/** A fresh project directory (with swarm.yaml) under the system temp dir. */
export function tempProject(swarmYaml = 'name: test\n'): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-test-'));
  writeFileSync(join(dir, 'swarm.yaml'), swarmYaml);
  mkdirSync(join(dir, 'agents'));
  mkdirSync(join(dir, 'workflows'));
  return dir;
}

export function removeProject(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Write an agent package: agents/<name>/agent.yaml plus any extra files (scripts are made executable). */
export function writeAgent(dir: string, name: string, yaml: string, files: Record<string, string> = {}): string {
  const pkg = join(dir, 'agents', name);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'agent.yaml'), yaml);
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(pkg, f), text);
    if (f.endsWith('.sh') || f.endsWith('.py')) chmodSync(join(pkg, f), 0o755);
  }
  if (Object.keys(files).some((f) => f.endsWith('.js'))) writeFileSync(join(pkg, 'package.json'), '{"type":"commonjs"}');
  return pkg;
}

/**
 * The `solver` node agent the consensus CLI tests share: it answers `{answer: a + b}` (and reports
 * `cost_usd` when given one); `typed` declares its inputs a and b and its output.
 */
export function writeSolverAgent(dir: string, o: { costUsd?: number; typed?: boolean } = {}): string {
  const io = o.typed ? 'inputs:\n  - { name: a, type: number, required: true }\n  - { name: b, type: number, required: true }\noutputs:\n  - { name: answer, type: number }\n' : '';
  const cost = o.costUsd !== undefined ? `, cost_usd: ${o.costUsd}` : '';
  return writeAgent(dir, 'solver', `name: solver\nversion: 1.0.0\nruntime: { type: node, entry: main.js, timeout_seconds: 60 }\n${io}`, {
    'main.js': `const fs = require('fs');
const [i, o] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(i, 'utf8'));
fs.writeFileSync(o, JSON.stringify({ answer: input.a + input.b${cost} }));
`,
  });
}

export function writeWorkflow(dir: string, name: string, yaml: string): string {
  const d = join(dir, 'workflows', name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'workflow.yaml'), yaml);
  return d;
}

/** A builtin agent package (runs a function registered with swarm.defineBuiltin, or a shipped built-in). */
export function builtinAgent(dir: string, name: string, entry: string, extra = ''): string {
  return writeAgent(dir, name, `name: ${name}\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: ${entry}\n${extra}`);
}

/** Open a Swarm on a project, with a short lease so tests that need expiry do not wait long. */
export async function openProject(dir: string, options: Partial<OpenSwarmOptions> = {}): Promise<Swarm> {
  return Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm') }, ...options });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion. */
export function runCli(args: string[], cwd: string, env: Record<string, string> = {}, input?: string): Promise<CliResult> {
  return new Promise((res) => {
    const child = spawnCli(args, cwd, env);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

/** The environment runCli and spawnCli give the CLI in `cwd`. */
export function cliEnv(cwd: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, SWARM_HOME: join(cwd, '.swarm'), CI: 'true', ...env };
}

/** Start the CLI and return the child process (for kill tests). */
export function spawnCli(args: string[], cwd: string, env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd, env: cliEnv(cwd, env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * Register every agent and workflow package of a project (its agents/ and workflows/) through the
 * library, as `swarm agent register --all` and `swarm workflow register --all` run in `cwd` with
 * `env` would: for tests whose fixtures these are, not what they check (two CLI processes fewer).
 * Fails on any package that does not register. Returns the names registered.
 */
export async function registerPackages(cwd: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const swarm = await Swarm.open({ cwd, env });
  try {
    const results = [...(await swarm.registerAgents()), ...(await swarm.registerWorkflows())];
    const failed = results.flatMap((r) => ('error' in r ? [`${r.path}: ${r.error.message}`] : []));
    if (failed.length) throw new Error(`cannot register the fixtures:\n${failed.join('\n')}`);
    return results.map((r) => ('error' in r ? '' : r.record.name));
  } finally {
    await swarm.close();
  }
}

/** Poll until `check` returns a truthy value (or throw after `timeoutMs`). */
export async function until<T>(check: () => T | Promise<T>, timeoutMs = 20_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res(child.exitCode);
    else child.once('exit', (code) => res(code));
  });
}
