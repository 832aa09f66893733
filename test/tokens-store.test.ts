/**
 * API tokens: the store methods on SQLite and PostgreSQL (one suite over both), a migration missing
 * below the newest applied one (branches numbering theirs side by side), and the token authority:
 * format, scopes, expiry, verification, stream tokens, the cache and the throttled `last_used_at`.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { grants, parseExpiry, parseScopes, STREAM_TOKEN_TTL_MS, TokenAuthority, TOKEN_CACHE_MS, TOUCH_EVERY_MS } from '../src/auth/tokens.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import type { ApiTokenRecord } from '../src/store/types.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { thrown } from './helpers/errors.js';

afterAll(() => stopPgTestServer());

const rec = (id: string, over: Partial<ApiTokenRecord> = {}): ApiTokenRecord => ({
  id,
  name: `token ${id}`,
  secret_hash: createHash('sha256').update(id).digest('hex'),
  scopes: 'read',
  created_at: 1_000,
  expires_at: null,
  last_used_at: null,
  revoked_at: null,
  ...over,
});


/** A clock the test moves. */
function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

type Sql = (text: string) => Promise<Array<Record<string, unknown>>>;
interface Backend {
  open: () => Promise<Store>;
  cleanup: () => Promise<void>;
  /** SQL on a connection of its own (not the store's). */
  sql: Sql;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-tokens-'));
  const path = join(dir, 'swarm.db');
  return {
    open: async () => openSqliteStore({ path, durability: 'full' }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    sql: async (text) => {
      const db = new Database(path);
      try {
        if (/^\s*SELECT/i.test(text)) return db.prepare(text).all() as Array<Record<string, unknown>>;
        db.exec(text);
        return [];
      } finally {
        db.close();
      }
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  const server = await pgTestServer();
  const url = await server.createDatabase();
  return {
    open: () => openPostgresStore({ url, durability: 'full' }),
    cleanup: () => server.dropDatabase(url),
    sql: async (text) => (await server.query(url, text)).rows as Array<Record<string, unknown>>,
  };
}

function tokenSuite(name: 'sqlite' | 'postgres', make: () => Promise<Backend>): void {
  describe(`api tokens in the store: ${name}`, () => {
    async function withStore(fn: (store: Store, reopen: () => Promise<Store>, sql: Sql) => Promise<void>): Promise<void> {
      const backend = await make();
      const opened: Store[] = [];
      const open = async (): Promise<Store> => {
        const s = await backend.open();
        opened.push(s);
        return s;
      };
      try {
        await fn(await open(), open, backend.sql);
      } finally {
        for (const s of opened) await s.close();
        await backend.cleanup();
      }
    }

    it('put, get, list (oldest first); a second put of the same id writes nothing', async () => {
      await withStore(async (store) => {
        expect(await store.listApiTokens()).toEqual([]);
        expect(await store.putApiToken(rec('aaaaaaaaaaaa', { created_at: 2_000, expires_at: 9_000 }))).toBe(true);
        expect(await store.putApiToken(rec('bbbbbbbbbbbb'))).toBe(true);
        expect(await store.putApiToken(rec('aaaaaaaaaaaa', { name: 'other' }))).toBe(false);
        expect(await store.getApiToken('aaaaaaaaaaaa')).toEqual(rec('aaaaaaaaaaaa', { created_at: 2_000, expires_at: 9_000 }));
        expect(await store.getApiToken('cccccccccccc')).toBeUndefined();
        expect((await store.listApiTokens()).map((t) => t.id)).toEqual(['bbbbbbbbbbbb', 'aaaaaaaaaaaa']);
      });
    });

    it('revoke keeps the first revocation time; an unknown id is undefined', async () => {
      await withStore(async (store) => {
        await store.putApiToken(rec('aaaaaaaaaaaa'));
        expect((await store.revokeApiToken('aaaaaaaaaaaa', 5_000))?.revoked_at).toBe(5_000);
        expect((await store.revokeApiToken('aaaaaaaaaaaa', 6_000))?.revoked_at).toBe(5_000);
        expect(await store.revokeApiToken('cccccccccccc', 6_000)).toBeUndefined();
      });
    });

    it('touch never moves last_used_at back', async () => {
      await withStore(async (store) => {
        await store.putApiToken(rec('aaaaaaaaaaaa'));
        await store.touchApiToken('aaaaaaaaaaaa', 7_000);
        await store.touchApiToken('aaaaaaaaaaaa', 3_000);
        expect((await store.getApiToken('aaaaaaaaaaaa'))?.last_used_at).toBe(7_000);
        await store.touchApiToken('aaaaaaaaaaaa', 8_000);
        expect((await store.getApiToken('aaaaaaaaaaaa'))?.last_used_at).toBe(8_000);
      });
    });

    it('live tokens: none, then one until it expires or is revoked', async () => {
      await withStore(async (store) => {
        expect(await store.hasLiveApiTokens(1_000)).toBe(false);
        await store.putApiToken(rec('aaaaaaaaaaaa', { expires_at: 10_000 }));
        expect(await store.hasLiveApiTokens(9_999)).toBe(true);
        expect(await store.hasLiveApiTokens(10_000)).toBe(false);
        await store.putApiToken(rec('bbbbbbbbbbbb'));
        expect(await store.hasLiveApiTokens(20_000)).toBe(true);
        await store.revokeApiToken('bbbbbbbbbbbb', 20_000);
        expect(await store.hasLiveApiTokens(20_000)).toBe(false);
      });
    });

    it('a migration missing below the newest applied one is applied at the next open (a gap is not skipped)', async () => {
      await withStore(async (store, reopen, sql) => {
        await store.putApiToken(rec('aaaaaaaaaaaa'));
        const newest = await store.schemaVersion();
        expect(newest).toBe(store.supportedSchemaVersion);
        // As a database migrated by a branch that lacked migration 3: the newest is recorded, 3 is not.
        await sql(`DROP INDEX idx_steps_ready_order; CREATE INDEX idx_steps_ready ON step_executions(available_at) WHERE status = 'ready'; DELETE FROM schema_migrations WHERE version = 3`);
        const versions = async (): Promise<number[]> => (await sql('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r.version));
        expect(await versions()).not.toContain(3);
        await store.close();
        const again = await reopen();
        expect(await again.schemaVersion()).toBe(newest);
        expect(await versions()).toContain(3);
        const indexes = (name === 'sqlite' ? await sql(`SELECT name FROM sqlite_master WHERE type = 'index'`) : await sql('SELECT indexname AS name FROM pg_indexes')).map((r) => r.name);
        expect(indexes).toContain('idx_steps_ready_order');
        expect(indexes).not.toContain('idx_steps_ready');
        expect((await again.listApiTokens()).map((t) => t.id)).toEqual(['aaaaaaaaaaaa']);
      });
    });
  });
}

tokenSuite('sqlite', sqliteBackend);
tokenSuite('postgres', postgresBackend);

describe('scopes and expiry', () => {
  it('scopes: aliases resolved, duplicates folded, SCOPES order; unknown ones named with a suggestion', () => {
    expect(parseScopes('run, read')).toEqual(['read', 'runs:write']);
    expect(parseScopes(['approve', 'approvals:write', 'ADMIN'])).toEqual(['approvals:write', 'admin']);
    const e = thrown(() => parseScopes('read,rnus:write'));
    expect(e.code).toBe('TOKEN_SCOPE_INVALID');
    expect(e.message).toContain("unknown scope 'rnus:write': did you mean 'runs:write'?");
    expect(thrown(() => parseScopes(' , ')).code).toBe('TOKEN_SCOPE_INVALID');
  });

  it('admin grants every scope; a write scope does not grant read', () => {
    expect(grants(['admin'], 'runs:write')).toBe(true);
    expect(grants(['admin'], 'read')).toBe(true);
    expect(grants(['runs:write'], 'read')).toBe(false);
    expect(grants(['read'], 'runs:write')).toBe(false);
    expect(grants(['approvals:write'], 'approvals:write')).toBe(true);
  });

  it('expiry: durations, dates, never; the past and nonsense refused naming the option', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseExpiry('30d', now)).toBe(now + 30 * 86_400_000);
    expect(parseExpiry('90m', now)).toBe(now + 90 * 60_000);
    expect(parseExpiry('2w', now)).toBe(now + 14 * 86_400_000);
    expect(parseExpiry('2027-01-31', now)).toBe(Date.UTC(2027, 0, 31));
    expect(parseExpiry('never', now)).toBeNull();
    expect(parseExpiry(undefined, now)).toBeNull();
    expect(thrown(() => parseExpiry('soon', now)).message).toBe("--expires must be a duration like 90m, 12h, 30d or 8w, a date like 2027-01-31, or 'never'; not 'soon'");
    expect(thrown(() => parseExpiry('2020-01-01', now)).message).toContain('is not in the future');
  });
});

describe('token authority (on a SQLite store, with a clock the test moves)', () => {
  async function authority(): Promise<{ auth: TokenAuthority; store: Store; t: ReturnType<typeof clock>; done: () => Promise<void> }> {
    const b = await sqliteBackend();
    const store = await b.open();
    const t = clock();
    const auth = new TokenAuthority(store, () => Buffer.alloc(32, 9), { now: t.now });
    return {
      auth,
      store,
      t,
      done: async () => {
        await store.close();
        await b.cleanup();
      },
    };
  }

  it('a token is swarm_<id>_<secret>; only the hash of its secret is stored; it verifies with its scopes', async () => {
    const { auth, store, done } = await authority();
    try {
      const { token, info } = await auth.create({ name: 'ci', scopes: ['runs:write', 'read'] });
      expect(token).toMatch(/^swarm_[0-9a-f]{12}_[0-9a-f]{64}$/);
      const secret = token.split('_')[2] ?? '';
      expect((await store.getApiToken(info.id))?.secret_hash).toBe(createHash('sha256').update(secret).digest('hex'));
      expect(JSON.stringify(await store.listApiTokens())).not.toContain(secret);
      expect(await auth.authenticate(token)).toEqual({ ok: true, principal: { kind: 'token', token_id: info.id, name: 'ci', scopes: ['read', 'runs:write'] } });
      // One character of the secret changed; a made-up id with the right secret; not a token at all.
      const altered = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
      for (const bad of [altered, `swarm_000000000000_${secret}`, 'hello']) expect(await auth.authenticate(bad)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    } finally {
      await done();
    }
  });

  it('expired and revoked tokens are refused as such; a revocation by this authority takes effect at once', async () => {
    const { auth, t, done } = await authority();
    try {
      const short = await auth.create({ scopes: ['read'], expiresAt: t.now() + 60_000 });
      expect((await auth.authenticate(short.token)).ok).toBe(true);
      t.advance(60_000);
      expect(await auth.authenticate(short.token)).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      const other = await auth.create({ scopes: ['read'] });
      expect((await auth.authenticate(other.token)).ok).toBe(true);
      expect(await auth.revoke(other.info.id)).toMatchObject({ already: false, info: { status: 'revoked' } });
      expect(await auth.authenticate(other.token)).toMatchObject({ ok: false, code: 'TOKEN_REVOKED' });
      expect((await auth.revoke(other.info.id)).already).toBe(true);
      await expect(auth.revoke('abcdefabcdef')).rejects.toMatchObject({ code: 'TOKEN_NOT_FOUND' });
      await expect(auth.revoke('not an id')).rejects.toMatchObject({ code: 'TOKEN_NOT_FOUND' });
    } finally {
      await done();
    }
  });

  it('verified tokens are cached: one store read per token per 5 s, and a revocation elsewhere takes effect within that time', async () => {
    const { auth: other, store, t, done } = await authority();
    const reads: string[] = [];
    const counted = new Proxy(store, {
      get(target, prop) {
        if (prop === 'getApiToken') return (id: string) => (reads.push(id), target.getApiToken(id));
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    // `other` is another process on the same store: it creates and revokes; `auth` serves requests.
    const auth = new TokenAuthority(counted, () => Buffer.alloc(32, 9), { now: t.now });
    try {
      const { token, info } = await other.create({ scopes: ['read'] });
      const results = await Promise.all(Array.from({ length: 50 }, () => auth.authenticate(token)));
      expect(results.every((r) => r.ok)).toBe(true);
      for (let i = 0; i < 50; i++) expect((await auth.authenticate(token)).ok).toBe(true);
      expect(reads).toEqual([info.id]);
      await other.revoke(info.id);
      t.advance(TOKEN_CACHE_MS - 1);
      expect((await auth.authenticate(token)).ok).toBe(true);
      t.advance(1);
      expect(await auth.authenticate(token)).toMatchObject({ ok: false, code: 'TOKEN_REVOKED' });
      expect(reads).toEqual([info.id, info.id]);
    } finally {
      await done();
    }
  });

  it('"a token exists" is cached too: a token created elsewhere makes the API require one within 5 s; at once when created here', async () => {
    const { auth, store, t, done } = await authority();
    const here = new TokenAuthority(store, () => Buffer.alloc(32, 9), { now: t.now });
    try {
      expect(await auth.required()).toBe(false);
      await here.create({ scopes: ['read'] });
      expect(await here.required()).toBe(true);
      expect(await auth.required()).toBe(false);
      t.advance(TOKEN_CACHE_MS);
      expect(await auth.required()).toBe(true);
    } finally {
      await done();
    }
  });

  it('last_used_at is written at most once a minute per token, never by the request itself', async () => {
    const { store, t, done } = await authority();
    const touches: number[] = [];
    const counted = new Proxy(store, {
      get(target, prop) {
        if (prop === 'touchApiToken') return (id: string, at: number) => (touches.push(at), target.touchApiToken(id, at));
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const auth = new TokenAuthority(counted, () => Buffer.alloc(32, 9), { now: t.now });
    try {
      const { token, info } = await auth.create({ scopes: ['read'] });
      const start = t.now();
      for (let i = 0; i < 100; i++) {
        expect((await auth.authenticate(token)).ok).toBe(true);
        t.advance(100);
      }
      expect(touches).toEqual([start]);
      t.advance(TOUCH_EVERY_MS);
      await auth.authenticate(token);
      expect(touches).toHaveLength(2);
      await new Promise((r) => setTimeout(r, 20));
      expect((await store.getApiToken(info.id))?.last_used_at).toBe(touches[1]);
    } finally {
      await done();
    }
  });

  it('stream tokens: read only, 5 minutes, tied to the token that minted them; altered, expired, orphaned or foreign ones refused', async () => {
    const { auth, store, t, done } = await authority();
    try {
      const { info } = await auth.create({ name: 'dash', scopes: ['read', 'runs:write'] });
      const parent = { kind: 'token' as const, token_id: info.id, name: 'dash', scopes: info.scopes };
      const minted = auth.mintStream(parent);
      expect(minted.token).toMatch(new RegExp(`^swarm_stream_${info.id}_\\d{13}_[0-9a-f]{64}$`));
      expect(minted.expires_at).toBe(t.now() + STREAM_TOKEN_TTL_MS);
      expect(await auth.authenticate(minted.token)).toEqual({ ok: true, principal: { kind: 'stream', token_id: info.id, name: 'dash', scopes: ['read'], expires_at: minted.expires_at } });
      // A later expiry written into the token breaks its signature.
      const stretched = minted.token.replace(/_(\d{13})_/, (_m, ms: string) => `_${Number(ms) + 3_600_000}_`);
      expect(await auth.authenticate(stretched)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      // Signed under another key (another master key).
      const foreign = new TokenAuthority(store, () => Buffer.alloc(32, 1), { now: t.now }).mintStream(parent);
      expect(await auth.authenticate(foreign.token)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      // Minted while the API was open: no good once tokens exist.
      expect(await auth.authenticate(auth.mintStream(null).token)).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
      t.advance(STREAM_TOKEN_TTL_MS);
      expect(await auth.authenticate(minted.token)).toMatchObject({ ok: false, code: 'TOKEN_EXPIRED' });
      const fresh = auth.mintStream(parent);
      await auth.revoke(info.id);
      expect(await auth.authenticate(fresh.token)).toMatchObject({ ok: false, code: 'TOKEN_REVOKED' });
    } finally {
      await done();
    }
  });
});
