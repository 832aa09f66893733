/**
 * The SW4RM services' tunables from swarm.yaml (`sw4rm:`) and from the flags of `swarm sw4rm serve`:
 * parsing, ranges and the errors that name where a bad value came from; and that a value set in
 * swarm.yaml reaches the running router (a message dead-lettered after `max_attempts` deliveries).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/config.js';
import { startSw4rm, type Sw4rmServer } from '../src/sw4rm/server.js';
import { sw4rmTunables } from '../src/sw4rm/tunables.js';
import type { Swarm } from '../src/swarm.js';
import { env, rawClients } from './helpers/sw4rm-raw.js';
import { openProject, removeProject, runCli, tempProject, until } from './helpers/project.js';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

const where = (key: string): string => `here: ${key}`;

describe('sw4rm tunables', () => {
  it('reads durations with units, counts, and leaves unset ones to the defaults', () => {
    expect(sw4rmTunables({ lease: '500ms', dedup_window: '30m', hlc_tolerance: 90, max_attempts: 3, max_payload_bytes: '2048' }, where)).toEqual({
      leaseMs: 500,
      dedupWindowMs: 1_800_000,
      hlcToleranceMs: 90_000,
      maxAttempts: 3,
      maxPayloadBytes: 2048,
    });
    expect(sw4rmTunables({}, where)).toEqual({});
  });

  it.each([
    ['lease', '0s', /here: lease: must be a duration from 100ms to 1d/],
    ['lease', 'soon', /here: lease: must be a duration .* not "soon"/],
    ['max_attempts', 0, /here: max_attempts: must be a whole number from 1 to 1000/],
    ['max_attempts', 2.5, /not 2\.5/],
    ['heartbeat_timeout', '8d', /from 1s to 1d/],
  ])('refuses %s = %j, naming it and its range', (key, value, message) => {
    expect(() => sw4rmTunables({ [key]: value }, where)).toThrow(message);
  });

  it('swarm.yaml: `sw4rm:` is resolved into the configuration; a bad key or value names the file and field', () => {
    const dir = tempProject('name: t\nsw4rm:\n  lease: 2s\n  max_attempts: 4\n');
    try {
      expect(resolveConfig({ cwd: dir }).sw4rm).toEqual({ leaseMs: 2000, maxAttempts: 4 });
      writeFileSync(join(dir, 'swarm.yaml'), 'name: t\nsw4rm:\n  lease: forever\n');
      expect(() => resolveConfig({ cwd: dir })).toThrow(/swarm\.yaml:3: sw4rm\.lease: must be a duration/);
      writeFileSync(join(dir, 'swarm.yaml'), 'name: t\nsw4rm:\n  lease: 2s\n  max_attempts: 0\n');
      expect(() => resolveConfig({ cwd: dir })).toThrow(/swarm\.yaml:4: sw4rm\.max_attempts: must be a whole number from 1 to 1000/);
      writeFileSync(join(dir, 'swarm.yaml'), 'name: t\nsw4rm:\n  leases: 2s\n');
      expect(() => resolveConfig({ cwd: dir })).toThrow(/leases/);
    } finally {
      removeProject(dir);
    }
  });

  it('`swarm sw4rm serve` refuses a bad flag with exit 2, naming the flag, before it listens', async () => {
    const dir = tempProject();
    try {
      const r = await runCli(['sw4rm', 'serve', '--router', '0', '--registry', '0', '--scheduler', '0', '--max-attempts', '0'], dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--max-attempts: must be a whole number from 1 to 1000/);
      expect(r.stdout).not.toMatch(/router 127\.0\.0\.1/);
    } finally {
      removeProject(dir);
    }
  });

  it('a port in use: one line naming the flag as the command spells it, without gRPC’s own log line; a SW4RM flag without --sw4rm is refused', async () => {
    const dir = tempProject();
    const busy = createServer();
    try {
      await new Promise<void>((done) => busy.listen(0, '127.0.0.1', done));
      const port = String((busy.address() as AddressInfo).port);
      const own = await runCli(['sw4rm', 'serve', '--router', port, '--registry', '0', '--scheduler', '0'], dir);
      expect(own.code).toBe(2);
      expect(own.stderr.trim()).toBe(`swarm: cannot listen for the SW4RM router on 127.0.0.1:${port}: the port is in use; choose another with --router`);
      const served = await runCli(['serve', '--port', '0', '--no-worker', '--sw4rm', '--sw4rm-router', port, '--sw4rm-registry', '0', '--sw4rm-scheduler', '0'], dir);
      expect(served.code).toBe(2);
      expect(served.stderr).toContain('the port is in use; choose another with --sw4rm-router');
      expect(served.stderr).not.toMatch(/No address added/);
      const alone = await runCli(['serve', '--port', '0', '--sw4rm-router', '61051'], dir);
      expect(alone.code).toBe(2);
      expect(alone.stderr.trim()).toBe('swarm: --sw4rm-router needs --sw4rm (it configures the SW4RM services that --sw4rm starts)');
    } finally {
      busy.close();
      removeProject(dir);
    }
  }, 60_000);

  describe('reach the router', () => {
    let dir: string | undefined;
    let swarm: Swarm | undefined;
    let server: Sw4rmServer | undefined;
    let clients: ReturnType<typeof rawClients> | undefined;
    afterEach(async () => {
      clients?.close();
      await server?.close();
      await swarm?.close();
      if (dir) removeProject(dir);
      clients = server = swarm = dir = undefined;
    });

    it('lease and max_attempts from swarm.yaml: an unacknowledged message is dead after 2 deliveries', async () => {
      dir = tempProject('name: t\nsw4rm:\n  lease: 150ms\n  max_attempts: 2\n');
      swarm = await openProject(dir);
      server = await startSw4rm(swarm, { host: '127.0.0.1', ports: { router: 0, registry: 0, scheduler: 0 } });
      clients = rawClients(`127.0.0.1:${server.ports.router}`, `127.0.0.1:${server.ports.registry}`);
      expect((await clients.register('bob', 'Bob')).accepted).toBe(true);
      const e = env('alice');
      expect((await clients.send(e, 'bob')).accepted).toBe(true);
      const bob = clients.stream('bob'); // receives, never acknowledges
      await bob.waitFor(2); // delivered, then redelivered after the 150 ms lease
      const store = swarm.store;
      await until(async () => (await store.sw4rmMessages({ state: 'dead' })).length === 1, 10_000, 'the dead letter');
      expect((await store.sw4rmMessages({ state: 'dead' }))[0]).toMatchObject({ message_id: e.message_id, attempts: 2, dead_reason: 'MAX_ATTEMPTS' });
    });
  });
});
