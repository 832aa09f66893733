/**
 * Capabilities: what an agent may reach (`net:<host>:<port>` entries of agent.yaml's `capabilities:`)
 * and the capability envelope, the token string that carries a `net_cap` (the destinations an
 * attempt may reach through the policy proxy) or a `state_cap` (which state a branch may continue
 * from) between the parts that issue and check them. One module encodes, decodes and validates
 * both, and renders the redacted summary logs show (never the token itself, never secret material).
 *
 * The envelope, version 1: `swcap1.<payload>[.<mac>]` where `<payload>` is base64url (no padding)
 * of the canonical JSON (src/core/canonical-json.ts) of
 *   { v: 1, kind: "net_cap" | "state_cap", issued_at, expires_at (ISO 8601, UTC),
 *     subject?: { run_id, step_id?, attempt? },
 *     net?:   { destinations: ["host:port", …] }                      (kind net_cap)
 *     state?: { state_id, ratchet_step, secret? }                     (kind state_cap) }
 * and `<mac>`, when the issuer holds a key, is base64url of HMAC-SHA256(key, "swcap1." + payload).
 * Canonical JSON makes the token a function of its content: the same envelope always encodes to
 * the same string, so its digest names it (`token_ref` in node.json).
 *
 * @example
 *   const caps = parseNetCapabilities(['net:api.example.com:443', 'net:127.0.0.1:9000']);
 *   const token = encodeEnvelope({ kind: 'net_cap', issued_at: now, expires_at: later, net: { destinations: caps.map(destinationOf) } });
 *   decodeEnvelope(token, { now: new Date() });   // throws CAP_EXPIRED once `later` has passed
 *   summarizeEnvelope(token);                      // 'net_cap v1 → api.example.com:443, 127.0.0.1:9000; expires …; token sha256:1a2b3c4d…'
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { PolicyError, UserError } from '../core/errors.js';
import { canonicalJson } from '../core/canonical-json.js';

// ---------- net:<host>:<port> ----------

/** A destination an agent may reach: one host (a DNS name, or an IP literal) and one port. */
export interface NetCapability {
  /** Lower-case DNS name (no trailing dot), or an IP address in its canonical text form (IPv6 without brackets). */
  host: string;
  port: number;
  /** How `host` is written: a name is matched as written and resolved by the proxy; an address is matched exactly. */
  kind: 'name' | 'ipv4' | 'ipv6';
}

/** The prefix that marks a network capability; other entries of `capabilities:` are free-form labels. */
export const NET_CAPABILITY_PREFIX = 'net:';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Is `host` a DNS name this module accepts (letters, digits, hyphens; labels of 1–63; at most 253)? */
export function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  // An all-numeric last label reads as a (mistyped) IPv4 address, not a name.
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return false;
  return labels.every((l) => LABEL.test(l));
}

/**
 * Parse one `net:<host>:<port>` entry (IPv6 in brackets: `net:[::1]:8080`). Returns the problem as
 * text when it is not one, for the manifest's error (which names the file and the field).
 *
 * @example
 *   parseNetCapability('net:API.example.com:443');  // { host: 'api.example.com', port: 443, kind: 'name' }
 *   parseNetCapability('net:[::1]:80');             // { host: '::1', port: 80, kind: 'ipv6' }
 *   parseNetCapability('net:example.com');          // { error: "… expected net:<host>:<port> …" }
 */
export function parseNetCapability(text: string): NetCapability | { error: string } {
  if (!text.startsWith(NET_CAPABILITY_PREFIX)) return { error: `'${text}' does not start with '${NET_CAPABILITY_PREFIX}'` };
  const rest = text.slice(NET_CAPABILITY_PREFIX.length);
  const expected = `'${text}' is not a network capability: expected net:<host>:<port>, like net:api.example.com:443, net:127.0.0.1:9000 or net:[::1]:8080`;
  let hostText: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') return { error: expected };
    hostText = rest.slice(1, close);
    portText = rest.slice(close + 2);
    if (isIP(hostText) !== 6) return { error: `'${text}': '${hostText}' in brackets is not an IPv6 address` };
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) return { error: expected };
    hostText = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (hostText.includes(':')) return { error: `'${text}': write an IPv6 address in brackets, like net:[::1]:8080` };
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return { error: `'${text}': port '${portText}' must be a number from 1 to 65535` };
  }
  const port = Number(portText);
  if (hostText.includes('*')) return { error: `'${text}': wildcards are not supported; name each host` };
  const v = isIP(hostText);
  if (v === 4) return { host: hostText, port, kind: 'ipv4' };
  if (v === 6) return { host: canonicalIpv6(hostText), port, kind: 'ipv6' };
  const name = hostText.toLowerCase().replace(/\.$/, '');
  if (!isHostName(name)) return { error: `'${text}': '${hostText}' is neither a host name (letters, digits, hyphens and dots) nor an IP address` };
  return { host: name, port, kind: 'name' };
}

/** The `net:` entries of a `capabilities:` list, parsed; throws (exit 2) on the first bad one. */
export function parseNetCapabilities(entries: readonly string[]): NetCapability[] {
  const out: NetCapability[] = [];
  for (const e of entries) {
    if (!e.startsWith(NET_CAPABILITY_PREFIX)) continue;
    const c = parseNetCapability(e);
    if ('error' in c) throw new UserError('CAPABILITY_INVALID', c.error, { capability: e });
    if (!out.some((o) => o.host === c.host && o.port === c.port)) out.push(c);
  }
  return out;
}

/** `host:port` (IPv6 in brackets): how a destination is written in envelopes, events and messages. */
export function destinationOf(c: { host: string; port: number }): string {
  return `${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`;
}

/** IPv6 text in one form (so `::0001` and `::1` match): lower case, via the URL parser's normalisation. */
export function canonicalIpv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

// ---------- the envelope ----------

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_PREFIX = 'swcap1.';
export const CAPABILITY_KINDS = ['net_cap', 'state_cap'] as const;
export type CapabilityKind = (typeof CAPABILITY_KINDS)[number];

/** The stable codes decode throws: malformed tokens are invalid input (exit 2), the rest policy violations (exit 6). */
export const CapabilityErrorCode = {
  MALFORMED: 'CAP_MALFORMED',
  VERSION: 'CAP_VERSION_UNSUPPORTED',
  KIND: 'CAP_KIND_MISMATCH',
  EXPIRED: 'CAP_EXPIRED',
  NOT_YET_VALID: 'CAP_NOT_YET_VALID',
  MAC_MISSING: 'CAP_MAC_MISSING',
  MAC_INVALID: 'CAP_MAC_INVALID',
} as const;

export interface CapabilityEnvelope {
  v: typeof ENVELOPE_VERSION;
  kind: CapabilityKind;
  /** ISO 8601 UTC. */
  issued_at: string;
  /** ISO 8601 UTC; decode refuses the envelope at and after this instant. */
  expires_at: string;
  /** Whom it was issued to. */
  subject?: { run_id: string; step_id?: string; attempt?: number };
  /** net_cap: the `host:port` destinations the holder may reach (exactly these). */
  net?: { destinations: string[] };
  /** state_cap: the state the holder may continue from; `secret` (base64url key material) is never shown in summaries. */
  state?: { state_id: string; ratchet_step: number; secret?: string };
}

/** What `encodeEnvelope` takes: the version is filled in. */
export type EnvelopeInput = Omit<CapabilityEnvelope, 'v'>;

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const mac = (key: Uint8Array, signed: string): string => createHmac('sha256', key).update(signed).digest('base64url');

/**
 * Validate an envelope's content; returns the problems (empty when valid). Used by encode (an
 * issuer cannot mint an invalid token) and decode (a holder cannot present one).
 */
export function validateEnvelope(e: unknown): string[] {
  const p: string[] = [];
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return ['the envelope is not a JSON object'];
  const o = e as Record<string, unknown>;
  const known = new Set(['v', 'kind', 'issued_at', 'expires_at', 'subject', 'net', 'state']);
  for (const k of Object.keys(o)) if (!known.has(k)) p.push(`unknown field '${k}'`);
  if (o.v !== ENVELOPE_VERSION) p.push(`v must be ${ENVELOPE_VERSION}`);
  if (!(CAPABILITY_KINDS as readonly unknown[]).includes(o.kind)) p.push(`kind must be one of ${CAPABILITY_KINDS.join(', ')}`);
  for (const k of ['issued_at', 'expires_at'] as const) {
    if (typeof o[k] !== 'string' || !ISO.test(o[k]) || Number.isNaN(Date.parse(o[k]))) p.push(`${k} must be an ISO 8601 UTC time (like 2026-01-01T00:00:00.000Z)`);
  }
  if (typeof o.issued_at === 'string' && typeof o.expires_at === 'string' && Date.parse(o.expires_at) <= Date.parse(o.issued_at)) p.push('expires_at must be after issued_at');
  if (o.subject !== undefined) {
    const s = o.subject as Record<string, unknown>;
    if (s === null || typeof s !== 'object' || typeof s.run_id !== 'string' || s.run_id === '') p.push('subject.run_id must be a non-empty string');
    else {
      if (s.step_id !== undefined && typeof s.step_id !== 'string') p.push('subject.step_id must be a string');
      if (s.attempt !== undefined && !(Number.isInteger(s.attempt) && (s.attempt as number) >= 1)) p.push('subject.attempt must be an integer ≥ 1');
    }
  }
  if (o.kind === 'net_cap') {
    const n = o.net as { destinations?: unknown } | undefined;
    if (!n || typeof n !== 'object' || !Array.isArray(n.destinations)) p.push('net.destinations is required for a net_cap (an array, may be empty)');
    else {
      for (const d of n.destinations) {
        const c = typeof d === 'string' ? parseNetCapability(`${NET_CAPABILITY_PREFIX}${d}`) : { error: 'not a string' };
        if ('error' in c) p.push(`net.destinations: '${String(d)}' is not host:port`);
        else if (destinationOf(c) !== d) p.push(`net.destinations: '${String(d)}' is not in canonical form ('${destinationOf(c)}')`);
      }
    }
    if (o.state !== undefined) p.push('state is only for a state_cap');
  }
  if (o.kind === 'state_cap') {
    const s = o.state as Record<string, unknown> | undefined;
    if (!s || typeof s !== 'object') p.push('state is required for a state_cap');
    else {
      if (typeof s.state_id !== 'string' || s.state_id === '') p.push('state.state_id must be a non-empty string');
      if (!Number.isInteger(s.ratchet_step) || (s.ratchet_step as number) < 0) p.push('state.ratchet_step must be an integer ≥ 0');
      if (s.secret !== undefined && (typeof s.secret !== 'string' || !/^[A-Za-z0-9_-]+$/.test(s.secret))) p.push('state.secret must be base64url');
    }
    if (o.net !== undefined) p.push('net is only for a net_cap');
  }
  return p;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/**
 * Encode an envelope as its token string. With `key`, the token carries an HMAC-SHA256 over it, and
 * decode with the same key refuses any change. Throws CAP_MALFORMED (exit 2) naming what is invalid.
 *
 * @example
 *   encodeEnvelope({ kind: 'state_cap', issued_at: '2026-01-01T00:00:00.000Z', expires_at: '2026-01-02T00:00:00.000Z', state: { state_id: 'run-1', ratchet_step: 0 } });
 */
export function encodeEnvelope(input: EnvelopeInput, options: { key?: Uint8Array } = {}): string {
  const envelope: CapabilityEnvelope = { v: ENVELOPE_VERSION, ...input };
  const problems = validateEnvelope(envelope);
  if (problems.length) throw new UserError(CapabilityErrorCode.MALFORMED, `invalid capability envelope: ${problems.join('; ')}`);
  const signed = `${ENVELOPE_PREFIX}${b64url(canonicalJson(envelope))}`;
  return options.key ? `${signed}.${mac(options.key, signed)}` : signed;
}

/**
 * Decode and check a token: its form, version, content, kind (when `kind` is given), time window
 * (at `now`, default the clock) and MAC (when `key` is given, a token without one is refused).
 * Throws with a stable code from `CapabilityErrorCode`; messages never repeat the token.
 */
export function decodeEnvelope(token: string, options: { now?: Date; key?: Uint8Array; kind?: CapabilityKind } = {}): CapabilityEnvelope {
  const malformed = (why: string): UserError => new UserError(CapabilityErrorCode.MALFORMED, `capability token is malformed: ${why}`);
  if (typeof token !== 'string' || !token.startsWith('swcap')) throw malformed("it does not start with 'swcap1.'");
  if (!token.startsWith(ENVELOPE_PREFIX)) throw new UserError(CapabilityErrorCode.VERSION, `capability token version '${(token.split('.')[0] ?? '').slice(0, 16)}' is not supported (this build reads ${ENVELOPE_PREFIX.slice(0, -1)})`);
  const parts = token.slice(ENVELOPE_PREFIX.length).split('.');
  if (parts.length > 2 || !parts[0] || !/^[A-Za-z0-9_-]+$/.test(parts.join(''))) throw malformed('expected swcap1.<base64url payload>[.<base64url mac>]');
  const [payload, tag] = parts as [string, string | undefined];
  let envelope: unknown;
  try {
    envelope = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw malformed('the payload is not base64url of JSON');
  }
  const problems = validateEnvelope(envelope);
  if (problems.length) throw malformed(problems.join('; '));
  if (canonicalJson(envelope) !== Buffer.from(payload, 'base64url').toString('utf8')) throw malformed('the payload is not canonical JSON');
  if (options.key) {
    if (tag === undefined) throw new PolicyError(CapabilityErrorCode.MAC_MISSING, 'capability token carries no MAC, and this holder requires one');
    const want = Buffer.from(mac(options.key, `${ENVELOPE_PREFIX}${payload}`), 'base64url');
    const got = Buffer.from(tag, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new PolicyError(CapabilityErrorCode.MAC_INVALID, 'capability token MAC does not verify (altered, or issued under another key)');
  }
  const e = envelope as CapabilityEnvelope;
  if (options.kind && e.kind !== options.kind) throw new PolicyError(CapabilityErrorCode.KIND, `capability token is a ${e.kind}, expected a ${options.kind}`);
  const now = (options.now ?? new Date()).getTime();
  if (now >= Date.parse(e.expires_at)) throw new PolicyError(CapabilityErrorCode.EXPIRED, `capability token (${e.kind}) expired at ${e.expires_at}`);
  if (now < Date.parse(e.issued_at) - CLOCK_SKEW_MS) throw new PolicyError(CapabilityErrorCode.NOT_YET_VALID, `capability token (${e.kind}) is not valid before ${e.issued_at}`);
  return e;
}

/** Issuer and holder clocks may differ this much before a fresh token reads as issued in the future. */
const CLOCK_SKEW_MS = 60_000;

/** The sha256 of a token, hex: its name in logs and records (the token itself is a bearer credential). */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * A one-line summary safe for logs: kind, version, subject, destinations or state id, the expiry
 * and the token's digest prefix; never the token, the MAC or a state secret. Accepts a token (a
 * token that does not decode is summarised as such, without its text) or a decoded envelope.
 *
 * @example
 *   summarizeEnvelope(token);  // 'net_cap v1 run r1/fetch#1 → 127.0.0.1:9000; expires 2026-…Z; token sha256:1a2b3c4d'
 */
export function summarizeEnvelope(tokenOrEnvelope: string | CapabilityEnvelope): string {
  let e: CapabilityEnvelope;
  let digest = '';
  if (typeof tokenOrEnvelope === 'string') {
    digest = `; token sha256:${tokenDigest(tokenOrEnvelope).slice(0, 8)}`;
    try {
      // Summaries are for logs: an expired token is still described (decode with a time inside its window).
      const peek = JSON.parse(Buffer.from(tokenOrEnvelope.slice(ENVELOPE_PREFIX.length).split('.')[0] ?? '', 'base64url').toString('utf8')) as CapabilityEnvelope;
      e = decodeEnvelope(tokenOrEnvelope, { now: new Date(Date.parse(peek.issued_at)) });
    } catch (err) {
      return `capability token (undecodable: ${(err as { code?: string }).code ?? 'CAP_MALFORMED'})${digest}`;
    }
  } else e = tokenOrEnvelope;
  const subject = e.subject ? ` run ${e.subject.run_id}${e.subject.step_id ? `/${e.subject.step_id}` : ''}${e.subject.attempt ? `#${e.subject.attempt}` : ''}` : '';
  const what =
    e.kind === 'net_cap'
      ? ` → ${e.net?.destinations.length ? e.net.destinations.join(', ') : '(no destinations)'}`
      : ` state ${e.state?.state_id ?? '?'} step ${e.state?.ratchet_step ?? '?'}${e.state?.secret ? ' secret [redacted]' : ''}`;
  return `${e.kind} v${e.v}${subject}${what}; expires ${e.expires_at}${digest}`;
}

/**
 * The net_cap an attempt gets: its declared destinations, valid for the attempt's timeout (plus a
 * minute). The worker issues one per sandboxed attempt with net capabilities and hands it to the proxy.
 *
 * @example
 *   const token = issueNetCap(parseNetCapabilities(agent.capabilities), { run_id, step_id, attempt }, 300_000);
 */
export function issueNetCap(caps: readonly NetCapability[], subject: { run_id: string; step_id?: string; attempt?: number }, ttlMs: number, options: { now?: Date; key?: Uint8Array } = {}): string {
  const now = options.now ?? new Date();
  return encodeEnvelope(
    { kind: 'net_cap', issued_at: now.toISOString(), expires_at: new Date(now.getTime() + ttlMs + 60_000).toISOString(), subject, net: { destinations: caps.map(destinationOf) } },
    options.key ? { key: options.key } : {},
  );
}
