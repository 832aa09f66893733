/**
 * `swarm executors add | list | check | remove` as real `bin/swarm` processes on SQLite, against a
 * `swarm executor serve` child: exit codes 2 (invalid input, unknown executor), 3 (a public key that
 * is not the pinned one), 4 (unreachable); the key pinned from /capabilities.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { exited, removeProject, runCli as runCliRaw, spawnCli, tempProject, writeAgent, type CliResult } from './helpers/project.js';
import { fakeExecutor } from './helpers/executor-fakes.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
async function runCli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  const r = await runCliRaw(args, cwd, env);
  return { ...r, stdout: r.stdout.replace(ANSI, ''), stderr: r.stderr.replace(ANSI, '') };
}

const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

interface Served {
  child: ChildProcess;
  url: string;
  publicKey: string;
  output: () => string;
}

async function serveExecutor(dir: string, stateDir: string): Promise<Served> {
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

describe('swarm executors and swarm executor serve', () => {
  let execDir: string;
  let dir: string;
  let served: Served;
  const stateDir = (): string => join(execDir, 'state');

  beforeAll(async () => {
    execDir = tempProject();
    writeAgent(execDir, 'echo-a', 'name: echo-a\nversion: 1.0.0\nruntime: { type: builtin, entry: echo }\n');
    const r = await runCli(['agent', 'register', '--all'], execDir);
    expect(r.code, show(r)).toBe(0);
    served = await serveExecutor(execDir, stateDir());
    dir = tempProject();
  });
  afterAll(async () => {
    if (served.child.exitCode === null) {
      served.child.kill('SIGKILL');
      await exited(served.child);
    }
    removeProject(dir);
    removeProject(execDir);
  });

  it('add validates names, URLs and keys (exit 2); pins the public key from /capabilities; keeps going (with a warning) when unreachable', async () => {
    expect((await runCli(['executors', 'list'], dir)).stdout).toContain('no executors registered');
    const badName = await runCli(['executors', 'add', 'bad name', 'http://127.0.0.1:1'], dir);
    expect(badName.code, show(badName)).toBe(2);
    expect(badName.stderr).toContain("'bad name' is not a valid executor name");
    const badUrl = await runCli(['executors', 'add', 'rt', 'ftp://example.com'], dir);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("'ftp://example.com' is not a valid executor URL: the scheme must be http or https, not ftp");
    const badKey = await runCli(['executors', 'add', 'rt', served.url, '--public-key', 'nope'], dir);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('--public-key must be base64 of a raw 32-byte Ed25519 public key');

    const add = await runCli(['executors', 'add', 'rt', `${served.url}/`], dir);
    expect(add.code, show(add)).toBe(0);
    expect(add.stdout).toContain(`pinned the public key of 'ref-cli' from ${served.url}/capabilities: ${served.publicKey}`);
    expect(add.stdout).toContain(`executor rt added: ${served.url}`);

    const gone = await fakeExecutor(() => undefined);
    await gone.close();
    const down = await runCli(['executors', 'add', 'down', gone.url, '--token-secret', 'DOWN_TOKEN'], dir);
    expect(down.code, show(down)).toBe(0);
    expect(down.stderr).toMatch(/warning: could not read .*\/capabilities \(executor 'down' at .* is unreachable: ECONNREFUSED.*registered without a pinned public key/s);

    const list = await runCli(['executors', 'list', '--json'], dir);
    const rows = (JSON.parse(list.stdout) as { executors: Array<Record<string, unknown>> }).executors;
    expect(rows.map((e) => [e.name, e.base_url, e.token_secret, e.public_key])).toEqual([
      ['down', gone.url, 'DOWN_TOKEN', null],
      ['rt', served.url, null, served.publicKey],
    ]);
    expect((await runCli(['executors', 'list'], dir)).stdout).toMatch(/rt\s+http:\/\/127\.0\.0\.1:\d+\s+\S{12}…/);
  });

  it('check prints /health and /capabilities (exit 0), 4 when unreachable, 3 when the key is not the pinned one, 2 when unknown; remove forgets one', async () => {
    const ok = await runCli(['executors', 'check', 'rt'], dir);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toContain('health:        ok');
    expect(ok.stdout).toContain('name:          ref-cli (protocol 1)');
    expect(ok.stdout).toContain('task types:    echo-a');
    expect(ok.stdout).toContain('vp.schema_only.v1');
    expect(ok.stdout).toContain(`public key:    ${served.publicKey} (the pinned key)`);
    const json = JSON.parse((await runCli(['executors', 'check', 'rt', '--json'], dir)).stdout) as { ok: boolean; health: { status: string } };
    expect(json).toMatchObject({ ok: true, health: { status: 'ok' } });

    // DOWN_TOKEN is set so the token resolves; the executor itself is not there.
    const down = await runCli(['executors', 'check', 'down'], dir, { SWARM_SECRET_DOWN_TOKEN: 't' });
    expect(down.code, show(down)).toBe(4);
    expect(down.stderr).toContain('EXECUTOR_UNREACHABLE');
    const noToken = await runCli(['executors', 'check', 'down'], dir);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("sends its bearer token from secret 'DOWN_TOKEN', which is not set");

    const other = Buffer.alloc(32, 7).toString('base64');
    expect((await runCli(['executors', 'add', 'rt-pinned', served.url, '--public-key', other], dir)).code).toBe(0);
    const mismatch = await runCli(['executors', 'check', 'rt-pinned'], dir);
    expect(mismatch.code, show(mismatch)).toBe(3);
    expect(mismatch.stderr).toContain("the executor's public key is not the one pinned when it was added");

    const unknown = await runCli(['executors', 'check', 'nope'], dir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("executor 'nope' is not registered (registered: down, rt, rt-pinned)");

    expect((await runCli(['executors', 'remove', 'down'], dir)).stdout).toContain('executor down removed');
    const again = await runCli(['executors', 'remove', 'down'], dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("executor 'down' is not registered");
  });
});
