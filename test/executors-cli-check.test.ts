/**
 * `swarm executors check | remove` as real `bin/swarm` processes on SQLite, against a `swarm executor
 * serve` child: what check prints, exit codes 2 (unknown executor, token secret not set), 3 (a public
 * key that is not the pinned one), 4 (unreachable).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { openProject } from './helpers/project.js';
import { fakeExecutor } from './helpers/executor-fakes.js';
import { runCli, show, useServedExecutor } from './helpers/executor-cli.js';

describe('swarm executors and swarm executor serve', () => {
  const fx = useServedExecutor();
  beforeAll(async () => {
    // Registered through the library (`add` has its own test file): one store, as the CLI's.
    const gone = await fakeExecutor(() => undefined);
    await gone.close();
    const swarm = await openProject(fx.dir);
    await swarm.store.putExecutor({ name: 'rt', base_url: fx.served.url, token_secret: null, public_key: fx.served.publicKey });
    await swarm.store.putExecutor({ name: 'down', base_url: gone.url, token_secret: 'DOWN_TOKEN', public_key: null });
    await swarm.close();
  });

  it('check prints /health and /capabilities (exit 0), 4 when unreachable, 3 when the key is not the pinned one, 2 when unknown; remove forgets one', async () => {
    const ok = await runCli(['executors', 'check', 'rt'], fx.dir);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toContain('health:        ok');
    expect(ok.stdout).toContain('name:          ref-cli (protocol 1)');
    expect(ok.stdout).toContain('task types:    echo-a');
    expect(ok.stdout).toContain('vp.schema_only.v1');
    expect(ok.stdout).toContain(`public key:    ${fx.served.publicKey} (the pinned key)`);
    const json = JSON.parse((await runCli(['executors', 'check', 'rt', '--json'], fx.dir)).stdout) as { ok: boolean; health: { status: string } };
    expect(json).toMatchObject({ ok: true, health: { status: 'ok' } });

    // DOWN_TOKEN is set so the token resolves; the executor itself is not there.
    const down = await runCli(['executors', 'check', 'down'], fx.dir, { SWARM_SECRET_DOWN_TOKEN: 't' });
    expect(down.code, show(down)).toBe(4);
    expect(down.stderr).toContain('EXECUTOR_UNREACHABLE');
    const noToken = await runCli(['executors', 'check', 'down'], fx.dir);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("sends its bearer token from secret 'DOWN_TOKEN', which is not set");

    const other = Buffer.alloc(32, 7).toString('base64');
    expect((await runCli(['executors', 'add', 'rt-pinned', fx.served.url, '--public-key', other], fx.dir)).code).toBe(0);
    const mismatch = await runCli(['executors', 'check', 'rt-pinned'], fx.dir);
    expect(mismatch.code, show(mismatch)).toBe(3);
    expect(mismatch.stderr).toContain("the executor's public key is not the one pinned when it was added");

    const unknown = await runCli(['executors', 'check', 'nope'], fx.dir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("executor 'nope' is not registered (registered: down, rt, rt-pinned)");

    expect((await runCli(['executors', 'remove', 'down'], fx.dir)).stdout).toContain('executor down removed');
    const again = await runCli(['executors', 'remove', 'down'], fx.dir);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("executor 'down' is not registered");
  });
});
