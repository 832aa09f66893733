/**
 * A PostgreSQL with pgvector for tests, in process: PGlite (PostgreSQL compiled to WebAssembly) with
 * its pgvector extension, served over the PostgreSQL wire protocol by pglite-socket, so Swarm's real
 * PostgreSQL store (node-postgres, its migrations, its SQL) runs against it unchanged. The embedded
 * PostgreSQL server of the other tests has no pgvector; this one lets the memory contract run the
 * pgvector SQL for real. One connection at a time: open the store with `poolSize: 1`.
 *
 * @example
 *   const pg = await startPgliteVector();
 *   const store = await openPostgresStore({ url: pg.url, durability: 'process', poolSize: 1 });
 *   …
 *   await store.close();
 *   await pg.close();
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export interface PgliteVector {
  url: string;
  close(): Promise<void>;
}

export async function startPgliteVector(): Promise<PgliteVector> {
  const db = await PGlite.create({ extensions: { vector } });
  await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1' });
  await server.start();
  const port = (server as unknown as { port?: number }).port;
  if (!port) throw new Error('pglite-socket did not report its port');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
