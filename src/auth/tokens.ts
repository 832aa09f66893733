/**
 * API tokens of the HTTP API: their format, scopes, creation, revocation and verification.
 *
 * A token is `swarm_<id>_<secret>`: a 12-hex-digit id (listed, not secret) and 64 hex digits of
 * random secret. The store keeps the SHA-256 of the secret, never the token (a fast hash is right
 * for 256 random bits: there is nothing to guess); a request's token is looked up by its id and its
 * secret compared in constant time. A stream token (`swarm_stream_<id>_<expiry>_<hmac>`) is a
 * stateless, read-only token of a few minutes, signed with a key derived from the master key and
 * tied to the token that minted it: for EventSource, which cannot send an Authorization header.
 *
 * Verified tokens are cached in memory for `cacheMs` (5 s): a revocation made by another process
 * takes effect within that time (at once in the process that revoked). `last_used_at` is written at
 * most once a minute per token and process, never in the request's path.
 *
 * @example
 *   const { token } = await swarm.createToken({ name: 'ci', scopes: parseScopes('run,read') });
 *   const r = await swarm.authenticateToken(token); // { ok: true, principal: { token_id, scopes: ['read', 'runs:write'] … } }
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { UserError } from '../core/errors.js';
import { closest } from '../core/suggest.js';
import type { Store } from '../store/store.js';
import type { ApiTokenRecord } from '../store/types.js';

/** The scopes, weakest first. `admin` grants every scope; a write scope does not grant `read`. */
export const SCOPES = ['read', 'runs:write', 'approvals:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Short names accepted wherever scopes are given. */
export const SCOPE_ALIASES: Readonly<Record<string, Scope>> = { run: 'runs:write', approve: 'approvals:write' };

/** How long a stream token lives. */
export const STREAM_TOKEN_TTL_MS = 5 * 60_000;
/** How long a verified token (or "no token exists") is trusted without asking the store again. */
export const TOKEN_CACHE_MS = 5_000;
/** `last_used_at` is written at most this often per token (and process). */
export const TOUCH_EVERY_MS = 60_000;
/** The longest token name. */
export const TOKEN_NAME_MAX = 100;

const TOKEN = /^swarm_([0-9a-f]{12})_([0-9a-f]{64})$/;
const STREAM_TOKEN = /^swarm_stream_([0-9a-f]{12}|open)_(\d{13})_([0-9a-f]{64})$/;
/** The parent of a stream token minted while the API had no tokens (only good while it has none). */
const OPEN_PARENT = 'open';
const NO_HASH = Buffer.alloc(32);

/**
 * Scopes from a comma-separated list (or several lists), aliases resolved, in SCOPES order.
 *
 * @example
 *   parseScopes('run, read'); // ['read', 'runs:write']
 */
export function parseScopes(lists: string | readonly string[]): Scope[] {
  const given = (typeof lists === 'string' ? [lists] : lists).flatMap((l) => l.split(',')).map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  if (given.length === 0) throw new UserError('TOKEN_SCOPE_INVALID', `give at least one scope: ${SCOPES.join(', ')} (aliases: run, approve)`);
  const out = new Set<Scope>();
  for (const s of given) {
    const scope = (SCOPES as readonly string[]).includes(s) ? (s as Scope) : SCOPE_ALIASES[s];
    if (!scope) {
      const near = closest(s, [...SCOPES, ...Object.keys(SCOPE_ALIASES)]);
      throw new UserError('TOKEN_SCOPE_INVALID', `unknown scope '${s}'${near ? `: did you mean '${near}'?` : ''} (scopes: ${SCOPES.join(', ')}; aliases: run = runs:write, approve = approvals:write)`, { scope: s });
    }
    out.add(scope);
  }
  return SCOPES.filter((s) => out.has(s));
}

/** Does a token with `granted` scopes have `needed`? `admin` has them all. */
export function grants(granted: readonly Scope[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * When a token given `--expires` ends: a duration from `now` (`90m`, `12h`, `30d`, `8w`) or a date
 * (`2027-01-31`, an ISO time). `never` (or nothing): no expiry.
 */
export function parseExpiry(value: string | undefined, now: number, where = '--expires'): number | null {
  const v = (value ?? '').trim();
  if (v === '' || v === 'never') return null;
  const m = /^(\d{1,6})\s*(m|h|d|w)$/.exec(v);
  const at = m ? now + Number(m[1]) * (UNITS[m[2] ?? 'd'] ?? 0) : /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(at)) throw new UserError('TOKEN_EXPIRY_INVALID', `${where} must be a duration like 90m, 12h, 30d or 8w, a date like 2027-01-31, or 'never'; not '${v}'`, { field: where });
  if (at <= now) throw new UserError('TOKEN_EXPIRY_INVALID', `${where} ${v} is not in the future`, { field: where });
  return at;
}

/** A token as listed: never its secret (nor its hash). */
export interface TokenInfo {
  id: string;
  name: string;
  scopes: Scope[];
  status: 'active' | 'expired' | 'revoked';
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** A new token: the token itself (shown this once, stored nowhere) and what is stored about it. */
export interface CreatedToken {
  token: string;
  info: TokenInfo;
}

export interface CreateTokenOptions {
  name?: string;
  scopes: readonly Scope[];
  /** Epoch ms; null or absent: never expires. */
  expiresAt?: number | null;
}

/** Who a request is: the token it showed (a stream token counts as its minting token, with `read` only). */
export interface Principal {
  kind: 'token' | 'stream';
  token_id: string;
  name: string;
  scopes: readonly Scope[];
  /** A stream token's own end (epoch ms); the API token's expiry is read from the store. */
  expires_at?: number;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; code: 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'TOKEN_REVOKED'; reason: string };

/** A minted stream token and when it ends (epoch ms). */
export interface StreamToken {
  token: string;
  expires_at: number;
  scopes: ['read'];
}

/** Is this a stream token (by its form)? */
export function isStreamToken(token: string): boolean {
  return token.startsWith('swarm_stream_');
}

function statusOf(rec: ApiTokenRecord, now: number): TokenInfo['status'] {
  return rec.revoked_at !== null ? 'revoked' : rec.expires_at !== null && rec.expires_at <= now ? 'expired' : 'active';
}

function toInfo(rec: ApiTokenRecord, now: number): TokenInfo {
  return {
    id: rec.id,
    name: rec.name,
    scopes: parseScopes(rec.scopes),
    status: statusOf(rec, now),
    created_at: rec.created_at,
    expires_at: rec.expires_at,
    last_used_at: rec.last_used_at,
    revoked_at: rec.revoked_at,
  };
}

/** The JSON of a token, for `swarm tokens list --json` and the API (ISO times). */
export function tokenJson(t: TokenInfo): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return { id: t.id, name: t.name, scopes: t.scopes, status: t.status, created_at: iso(t.created_at), expires_at: iso(t.expires_at), last_used_at: iso(t.last_used_at), revoked_at: iso(t.revoked_at) };
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

function checkName(name: string): string {
  const n = name.trim();
  // eslint-disable-next-line no-control-regex
  if (n.length > TOKEN_NAME_MAX || /[\u0000-\u001f\u007f]/.test(n)) throw new UserError('TOKEN_NAME_INVALID', `a token name is at most ${TOKEN_NAME_MAX} characters with no control characters`, { field: 'name' });
  return n;
}

function checkId(id: string): string {
  if (!/^[0-9a-f]{12}$/.test(id)) throw new UserError('TOKEN_NOT_FOUND', `'${id.slice(0, 40)}' is not a token id (12 hex digits: the <id> of swarm_<id>_<secret>)`, { token: id.slice(0, 40) });
  return id;
}

interface Cached {
  rec: ApiTokenRecord | undefined;
  at: number;
}

/**
 * Creates, lists, revokes and verifies tokens for one store, with the in-memory cache that keeps
 * verification off the store on the request path. One per Swarm (see `Swarm.authenticateToken`).
 */
export class TokenAuthority {
  private readonly records = new Map<string, Cached>();
  private readonly loading = new Map<string, Promise<ApiTokenRecord | undefined>>();
  private readonly touched = new Map<string, number>();
  private live: { value: boolean; at: number } | undefined;
  private liveLoading: Promise<boolean> | undefined;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly store: Store,
    /** The HMAC key of stream tokens (derived from the master key, so every process agrees). */
    private readonly streamKey: () => Buffer,
    options: { cacheMs?: number; now?: () => number; log?: (line: string) => void } = {},
  ) {
    this.cacheMs = options.cacheMs ?? TOKEN_CACHE_MS;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => undefined);
  }

  async create(options: CreateTokenOptions): Promise<CreatedToken> {
    const name = checkName(options.name ?? '');
    const scopes = parseScopes([...options.scopes]);
    const now = this.now();
    const expiresAt = options.expiresAt ?? null;
    if (expiresAt !== null && (!Number.isFinite(expiresAt) || expiresAt <= now)) throw new UserError('TOKEN_EXPIRY_INVALID', 'the expiry is not in the future', { field: 'expires' });
    // 48 random bits of id: a clash is rare and only costs another try.
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = randomBytes(6).toString('hex');
      const secret = randomBytes(32).toString('hex');
      const rec: ApiTokenRecord = { id, name, secret_hash: sha256(secret).toString('hex'), scopes: scopes.join(','), created_at: now, expires_at: expiresAt, last_used_at: null, revoked_at: null };
      if (!(await this.store.putApiToken(rec))) continue;
      this.live = { value: true, at: this.now() };
      return { token: `swarm_${id}_${secret}`, info: toInfo(rec, now) };
    }
    throw new UserError('TOKEN_ID_CLASH', 'could not find a free token id in 5 tries; try again');
  }

  async list(): Promise<TokenInfo[]> {
    const now = this.now();
    return (await this.store.listApiTokens()).map((r) => toInfo(r, now));
  }

  /** Revoke by id: the token as it is now, and whether it was revoked already. TOKEN_NOT_FOUND when there is none. */
  async revoke(id: string): Promise<{ info: TokenInfo; already: boolean }> {
    const before = await this.store.getApiToken(checkId(id));
    const at = this.now();
    // An earlier revocation keeps its time (the store's COALESCE), also when two revoke at once.
    const rec = before && before.revoked_at === null ? await this.store.revokeApiToken(id, at) : before;
    if (!rec) throw new UserError('TOKEN_NOT_FOUND', `no token with id ${id}; see 'swarm tokens list'`, { token: id });
    this.records.delete(id);
    this.live = undefined;
    return { info: toInfo(rec, at), already: before?.revoked_at !== null };
  }

  /** Does the API require a token (some token is neither revoked nor expired)? Cached for `cacheMs`. */
  async required(): Promise<boolean> {
    const now = this.now();
    if (this.live && now - this.live.at < this.cacheMs) return this.live.value;
    this.liveLoading ??= this.store
      .hasLiveApiTokens(now)
      .then((value) => {
        this.live = { value, at: this.now() };
        return value;
      })
      .finally(() => (this.liveLoading = undefined));
    return this.liveLoading;
  }

  /** Verify a token (a stream token too); never throws for a bad token, only for a store fault. */
  async authenticate(token: string): Promise<AuthResult> {
    const stream = STREAM_TOKEN.exec(token);
    if (stream) return this.authenticateStream(stream[1] ?? '', Number(stream[2]), stream[3] ?? '');
    const m = TOKEN.exec(token);
    if (!m) return { ok: false, code: 'TOKEN_INVALID', reason: 'the token is not a Swarm API token (swarm_<id>_<secret>)' };
    const id = m[1] ?? '';
    const rec = await this.record(id);
    // Compared even for an unknown id, so the answer takes the same time either way.
    const same = timingSafeEqual(sha256(m[2] ?? ''), rec ? Buffer.from(rec.secret_hash, 'hex') : NO_HASH);
    if (!rec || !same) return { ok: false, code: 'TOKEN_INVALID', reason: 'the token is not valid (unknown, or altered)' };
    const bad = this.refuse(rec, `token ${id}`);
    if (bad) return bad;
    this.touch(rec);
    return { ok: true, principal: { kind: 'token', token_id: id, name: rec.name, scopes: this.scopesOf(rec) } };
  }

  /**
   * A read-only token for `?access_token=` on stream routes, valid `ttlMs` (at most 5 minutes) and no
   * longer than the minting token. `by` null: the API has no tokens (it is open).
   */
  mintStream(by: Principal | null, ttlMs = STREAM_TOKEN_TTL_MS): StreamToken {
    const parent = by ? by.token_id : OPEN_PARENT;
    const expires = this.now() + Math.min(Math.max(ttlMs, 1000), STREAM_TOKEN_TTL_MS);
    return { token: `swarm_stream_${parent}_${expires}_${this.sign(parent, expires)}`, expires_at: expires, scopes: ['read'] };
  }

  private sign(parent: string, expires: number): string {
    return createHmac('sha256', this.streamKey()).update(`stream-token:${parent}:${expires}`).digest('hex');
  }

  private async authenticateStream(parent: string, expires: number, mac: string): Promise<AuthResult> {
    if (!timingSafeEqual(Buffer.from(this.sign(parent, expires), 'hex'), Buffer.from(mac, 'hex'))) return { ok: false, code: 'TOKEN_INVALID', reason: 'the stream token is not valid (altered, or signed under another master key)' };
    if (expires <= this.now()) return { ok: false, code: 'TOKEN_EXPIRED', reason: `the stream token expired at ${new Date(expires).toISOString()}; mint another with POST /api/v1/stream-tokens` };
    if (parent === OPEN_PARENT) return { ok: false, code: 'TOKEN_INVALID', reason: 'the stream token was minted while the API had no tokens; mint another with a token' };
    const rec = await this.record(parent);
    if (!rec) return { ok: false, code: 'TOKEN_REVOKED', reason: `the token ${parent} that minted this stream token no longer exists` };
    const bad = this.refuse(rec, `the token ${parent} that minted this stream token`);
    if (bad) return bad;
    if (!grants(this.scopesOf(rec), 'read')) return { ok: false, code: 'TOKEN_INVALID', reason: `the token ${parent} that minted this stream token has no read scope` };
    this.touch(rec);
    return { ok: true, principal: { kind: 'stream', token_id: parent, name: rec.name, scopes: ['read'], expires_at: expires } };
  }

  /**
   * Is what authenticated a request still good (not revoked, not expired)? Asked again while a
   * long request such as an event stream goes on; read through the same 5 s cache.
   */
  async stillValid(principal: Principal): Promise<boolean> {
    if (principal.expires_at !== undefined && principal.expires_at <= this.now()) return false;
    const rec = await this.record(principal.token_id);
    return rec !== undefined && this.refuse(rec, 'the token') === undefined;
  }

  private refuse(rec: ApiTokenRecord, what: string): AuthResult | undefined {
    if (rec.revoked_at !== null) return { ok: false, code: 'TOKEN_REVOKED', reason: `${what} was revoked at ${new Date(rec.revoked_at).toISOString()}` };
    if (rec.expires_at !== null && rec.expires_at <= this.now()) return { ok: false, code: 'TOKEN_EXPIRED', reason: `${what} expired at ${new Date(rec.expires_at).toISOString()}` };
    return undefined;
  }

  private readonly parsedScopes = new Map<string, Scope[]>();

  /** A record's scopes, parsed once per distinct list (a handful per store). */
  private scopesOf(rec: ApiTokenRecord): Scope[] {
    let scopes = this.parsedScopes.get(rec.scopes);
    if (!scopes) {
      scopes = parseScopes(rec.scopes);
      if (this.parsedScopes.size < 100) this.parsedScopes.set(rec.scopes, scopes);
    }
    return scopes;
  }

  /** The token's record, from the cache when fresh; concurrent misses share one read. */
  private async record(id: string): Promise<ApiTokenRecord | undefined> {
    const hit = this.records.get(id);
    if (hit && this.now() - hit.at < this.cacheMs) return hit.rec;
    let p = this.loading.get(id);
    if (!p) {
      p = this.store.getApiToken(id).finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    const rec = await p;
    // Requests with made-up ids could grow the cache without end: past a bound it starts again.
    if (this.records.size >= 10_000) this.records.clear();
    this.records.set(id, { rec, at: this.now() });
    return rec;
  }

  /** Record the use in the background, at most once per TOUCH_EVERY_MS per token. */
  private touch(rec: ApiTokenRecord): void {
    const now = this.now();
    const last = Math.max(this.touched.get(rec.id) ?? 0, rec.last_used_at ?? 0);
    if (now - last < TOUCH_EVERY_MS) return;
    this.touched.set(rec.id, now);
    this.store.touchApiToken(rec.id, now).catch((e: unknown) => this.log(`could not record the use of token ${rec.id}: ${e instanceof Error ? e.message : String(e)}`));
  }
}
