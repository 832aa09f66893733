/**
 * `swarm executors add | list` as real `bin/swarm` processes on SQLite, against a `swarm executor
 * serve` child: invalid names, URLs and keys (exit 2), the key pinned from /capabilities, an
 * unreachable executor registered with a warning.
 */
import { describe, expect, it } from 'vitest';
import { fakeExecutor } from './helpers/executor-fakes.js';
import { runCli, show, useServedExecutor } from './helpers/executor-cli.js';

describe('swarm executors and swarm executor serve', () => {
  const fx = useServedExecutor();

  it('add validates names, URLs and keys (exit 2); pins the public key from /capabilities; keeps going (with a warning) when unreachable', async () => {
    expect((await runCli(['executors', 'list'], fx.dir)).stdout).toContain('no executors registered');
    const badName = await runCli(['executors', 'add', 'bad name', 'http://127.0.0.1:1'], fx.dir);
    expect(badName.code, show(badName)).toBe(2);
    expect(badName.stderr).toContain("'bad name' is not a valid executor name");
    const badUrl = await runCli(['executors', 'add', 'rt', 'ftp://example.com'], fx.dir);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("'ftp://example.com' is not a valid executor URL: the scheme must be http or https, not ftp");
    const badKey = await runCli(['executors', 'add', 'rt', fx.served.url, '--public-key', 'nope'], fx.dir);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('--public-key must be base64 of a raw 32-byte Ed25519 public key');

    const add = await runCli(['executors', 'add', 'rt', `${fx.served.url}/`], fx.dir);
    expect(add.code, show(add)).toBe(0);
    expect(add.stdout).toContain(`pinned the public key of 'ref-cli' from ${fx.served.url}/capabilities: ${fx.served.publicKey}`);
    expect(add.stdout).toContain(`executor rt added: ${fx.served.url}`);

    const gone = await fakeExecutor(() => undefined);
    await gone.close();
    const down = await runCli(['executors', 'add', 'down', gone.url, '--token-secret', 'DOWN_TOKEN'], fx.dir);
    expect(down.code, show(down)).toBe(0);
    expect(down.stderr).toMatch(/warning: could not read .*\/capabilities \(executor 'down' at .* is unreachable: ECONNREFUSED.*registered without a pinned public key/s);

    const list = await runCli(['executors', 'list', '--json'], fx.dir);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((e) => [e.name, e.base_url, e.token_secret, e.public_key])).toEqual([
      ['down', gone.url, 'DOWN_TOKEN', null],
      ['rt', fx.served.url, null, fx.served.publicKey],
    ]);
    expect((await runCli(['executors', 'list'], fx.dir)).stdout).toMatch(/rt\s+http:\/\/127\.0\.0\.1:\d+\s+\S{12}…/);
  });
});
