/**
 * One PostgreSQL server for the whole test run: started here before any test file, handed to every
 * file as `SWARM_TEST_DATABASE_URL` (each test still gets a fresh database in it), stopped at the end.
 * A server named by `SWARM_TEST_DATABASE_URL` beforehand is used as it is. Files that take a server
 * down on purpose (fault tests) still start their own restartable one.
 */
import { startRunPgServer } from './helpers/pg.js';

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.SWARM_TEST_DATABASE_URL) return undefined;
  const server = await startRunPgServer();
  process.env.SWARM_TEST_DATABASE_URL = server.url;
  process.env.SWARM_TEST_PG_SHARED_EMBEDDED = '1';
  return async () => {
    delete process.env.SWARM_TEST_DATABASE_URL;
    delete process.env.SWARM_TEST_PG_SHARED_EMBEDDED;
    await server.stop();
  };
}
