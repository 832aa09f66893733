/**
 * Verify a webhook delivery against its trigger's scheme and secrets: the signature over the raw body
 * bytes, compared in constant time, and the delivery's timestamp against the receiver's clock.
 *
 * A refused delivery is a result, not an exception: the HTTP layer answers it (401 for a bad signature,
 * 400 for a malformed request) and may log the message, so a message names the header and what was
 * wrong with it but never a secret or a signature Swarm computed. Only a trigger configured with no
 * usable secret throws, since that is the receiver's fault and no delivery could pass.
 *
 * @example
 *   const scheme = resolveWebhookScheme('standard');
 *   const result = verifyWebhook(scheme, [process.env.ORDERS_HOOK!], req.headers, rawBody, new Date());
 *   if (!result.ok) return reply(result.code === 'WEBHOOK_SIGNATURE_MISMATCH' ? 401 : 400, result.message);
 *   startRun({ idempotencyKey: result.deliveryId, … });
 */
import { timingSafeEqual } from 'node:crypto';
import { UserError } from '../core/errors.js';
import { BoundedMemo } from '../core/bounded-memo.js';
import {
  GITHUB_HEADERS,
  isBase64,
  signedLead,
  STANDARD_HEADERS,
  STRIPE_HEADERS,
  webhookAlgorithm,
  webhookDigest,
  webhookKey,
  type WebhookScheme,
  type WebhookSchemeType,
} from './webhook-scheme.js';

/** Request headers as Node's `IncomingMessage.headers` has them, or any record: names are matched case-insensitively. */
export type WebhookHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Why a delivery was refused. Stable strings the HTTP layer maps to a status. */
export const WebhookFailureCode = {
  /** A header the scheme needs is absent or empty. */
  HEADER_MISSING: 'WEBHOOK_HEADER_MISSING',
  /** A header is there but cannot be read: no signature in the expected form, a timestamp that is not a number, given twice. */
  HEADER_MALFORMED: 'WEBHOOK_HEADER_MALFORMED',
  /** The timestamp is further from now than the tolerance, in the past (a replay) or the future. */
  TIMESTAMP_OUT_OF_TOLERANCE: 'WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE',
  /** Well-formed signatures, none made with any configured secret over these bytes. */
  SIGNATURE_MISMATCH: 'WEBHOOK_SIGNATURE_MISMATCH',
} as const;
export type WebhookFailureCode = (typeof WebhookFailureCode)[keyof typeof WebhookFailureCode];

export interface VerifiedWebhook {
  ok: true;
  scheme: WebhookSchemeType;
  /** The sender's id for this delivery (idempotency key), when the scheme has one. */
  deliveryId?: string;
  /** When the sender sent it, for schemes that sign a timestamp. */
  timestamp?: Date;
  /** Which of the configured secrets matched: during a rotation, tells when the old one stops being used. */
  secretIndex: number;
}

export interface RefusedWebhook {
  ok: false;
  code: WebhookFailureCode;
  /** What was wrong, naming the header; safe to log and to send back. */
  message: string;
  /** The header at fault, lower-case. */
  header?: string;
}

export type WebhookVerification = VerifiedWebhook | RefusedWebhook;

export interface VerifyWebhookOptions {
  /** Overrides the scheme's tolerance (seconds, either way). */
  toleranceSeconds?: number;
}

/** Longest delivery id accepted: it becomes an idempotency key, and a sender's ids are far shorter. */
export const WEBHOOK_MAX_ID_LENGTH = 256;

/**
 * Verify one delivery. `secrets` are tried in order (the current and the previous one during a
 * rotation); `rawBody` must be the bytes as received, before any JSON parsing; `now` is the
 * receiver's clock (passed in so tests and replays are deterministic).
 *
 * Checks, in order: the headers are present and readable, the timestamp is within tolerance, and some
 * signature in the header was made with some secret. Throws a `UserError` only when `secrets` holds
 * no usable secret.
 */
export function verifyWebhook(
  scheme: WebhookScheme,
  secrets: readonly string[],
  headers: WebhookHeaders,
  rawBody: Uint8Array,
  now: Date,
  options: VerifyWebhookOptions = {},
): WebhookVerification {
  if (secrets.length === 0) throw new UserError('WEBHOOK_SECRET_INVALID', `the ${scheme.type} webhook trigger has no secret; configure at least one`);
  const keys = secrets.map((s) => keyOf(scheme, s));
  const read = readDelivery(scheme, new HeaderReader(headers));
  if (!read.ok) return read;
  const { delivery } = read;

  let timestamp: Date | undefined;
  if (delivery.timestamp !== undefined) {
    const tolerance = options.toleranceSeconds ?? ('toleranceSeconds' in scheme ? scheme.toleranceSeconds : undefined);
    const seconds = Number(delivery.timestamp.value);
    const skew = seconds - now.getTime() / 1000;
    if (tolerance !== undefined && Math.abs(skew) > tolerance) {
      const away = Math.ceil(Math.abs(skew));
      const side = skew < 0 ? `${away} s in the past` : `${away} s in the future`;
      return refuse(
        'TIMESTAMP_OUT_OF_TOLERANCE',
        `${delivery.timestamp.label ?? `${delivery.timestamp.header} ${delivery.timestamp.value}`} is ${side}; the tolerance is ${tolerance} s (a replayed delivery, or the sender's or this machine's clock is wrong)`,
        delivery.timestamp.header,
      );
    }
    timestamp = new Date(seconds * 1000);
  }

  const lead = signedLead(scheme, { id: delivery.id, timestamp: delivery.timestamp?.value });
  for (const [i, key] of keys.entries()) {
    const expected = webhookDigest(scheme, key, lead, rawBody);
    // Every candidate is compared, even after a match, so the time taken does not tell which one matched.
    let matched = false;
    for (const candidate of delivery.signatures) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) matched = true;
    }
    if (matched) {
      const deliveryId = delivery.deliveryId ?? (scheme.type === 'stripe' ? stripeEventId(rawBody) : undefined);
      return {
        ok: true,
        scheme: scheme.type,
        ...(deliveryId !== undefined ? { deliveryId } : {}),
        ...(timestamp ? { timestamp } : {}),
        secretIndex: i,
      };
    }
  }
  const sigs = delivery.signatures.length === 1 ? 'the signature' : `none of the ${delivery.signatures.length} signatures`;
  const made = delivery.signatures.length === 1 ? 'was not made' : 'was made';
  const keysText = keys.length === 1 ? 'the configured secret' : `any of the ${keys.length} configured secrets`;
  const ignored = delivery.skipped ? ` (${delivery.skipped})` : '';
  return refuse(
    'SIGNATURE_MISMATCH',
    `no signature matched: ${sigs} in ${delivery.signatureHeader}${ignored} ${made} with ${keysText} over this body; check the secret, and that the body is passed on unparsed`,
    delivery.signatureHeader,
  );
}

/** What a delivery's headers say, read and checked for form. */
interface Delivery {
  signatureHeader: string;
  /** Candidate digests, decoded; the right length for the scheme's algorithm. */
  signatures: Buffer[];
  /** Entries of the signature header that were passed over, in words (`1 v1a signature ignored`). */
  skipped?: string;
  /** The id that is part of the signed content (standard). */
  id?: string;
  deliveryId?: string;
  /** `label`: how a message names it (default: the header and the value). */
  timestamp?: { value: string; header: string; label?: string };
}

type Read = { ok: true; delivery: Delivery } | RefusedWebhook;

function readDelivery(scheme: WebhookScheme, h: HeaderReader): Read {
  const digestLength = DIGEST_BYTES[webhookAlgorithm(scheme)];
  switch (scheme.type) {
    case 'standard': {
      const id = h.id(STANDARD_HEADERS.id);
      if (!id.ok) return id;
      const ts = h.timestamp(STANDARD_HEADERS.timestamp);
      if (!ts.ok) return ts;
      const sig = h.required(STANDARD_HEADERS.signature);
      if (!sig.ok) return sig;
      const parsed = parseStandardSignatures(sig.value, digestLength);
      if (!parsed.ok) return parsed;
      return { ok: true, delivery: { id: id.value, deliveryId: id.value, timestamp: { value: ts.value, header: STANDARD_HEADERS.timestamp }, ...parsed.value } };
    }
    case 'github': {
      const sig = h.required(GITHUB_HEADERS.signature);
      if (!sig.ok) return sig;
      const parsed = parseListedSignatures(GITHUB_HEADERS.signature, sig.value, 'sha256=', 'hex', digestLength);
      if (!parsed.ok) return parsed;
      const id = h.optionalId(GITHUB_HEADERS.id);
      if (!id.ok) return id;
      return { ok: true, delivery: { ...parsed.value, ...(id.value !== undefined ? { deliveryId: id.value } : {}) } };
    }
    case 'stripe': {
      const sig = h.required(STRIPE_HEADERS.signature);
      if (!sig.ok) return sig;
      return parseStripeSignature(sig.value, digestLength);
    }
    case 'hmac': {
      const sig = h.required(scheme.header);
      if (!sig.ok) return sig;
      const parsed = parseListedSignatures(scheme.header, sig.value, scheme.prefix, scheme.encoding, digestLength);
      if (!parsed.ok) return parsed;
      const delivery: Delivery = { ...parsed.value };
      if (scheme.idHeader) {
        const id = h.id(scheme.idHeader);
        if (!id.ok) return id;
        delivery.deliveryId = id.value;
      }
      if (scheme.timestampHeader) {
        const ts = h.timestamp(scheme.timestampHeader);
        if (!ts.ok) return ts;
        delivery.timestamp = { value: ts.value, header: scheme.timestampHeader };
      }
      return { ok: true, delivery };
    }
  }
}

const DIGEST_BYTES = { sha256: 32, sha512: 64, sha1: 20 } as const;

/** `v1,<base64> v1,<base64> v1a,<base64>`: the v1 entries are candidates, other versions are passed over. */
function parseStandardSignatures(value: string, digestLength: number): Parsed<Pick<Delivery, 'signatureHeader' | 'signatures' | 'skipped'>> {
  const header = STANDARD_HEADERS.signature;
  const entries = value.split(' ').filter((e) => e !== '');
  const where = (i: number): string => (entries.length > 1 ? `entry ${i + 1} of ${header}` : header);
  const signatures: Buffer[] = [];
  let otherVersions: Map<string, number> | undefined;
  let problem: string | undefined;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as string;
    const comma = entry.indexOf(',');
    if (comma <= 0) {
      problem ??= `${where(i)} is not 'v1,<base64 signature>'`;
      continue;
    }
    if (comma !== 2 || !entry.startsWith('v1')) {
      const version = entry.slice(0, comma);
      (otherVersions ??= new Map()).set(version, (otherVersions.get(version) ?? 0) + 1);
      continue;
    }
    const digest = decodeSignature(entry.slice(comma + 1), 'base64', digestLength);
    if (typeof digest === 'string') problem ??= `${where(i)}: ${digest}`;
    else signatures.push(digest);
  }
  const skipped = otherVersions ? [...otherVersions].map(([v, n]) => `${n} ${v} signature${n > 1 ? 's' : ''} ignored`).join(', ') : undefined;
  if (signatures.length === 0) {
    return malformed(problem ?? `${header} has no v1 signature${skipped ? ` (${skipped}; only v1, HMAC-SHA256, is supported)` : ''}`, header);
  }
  return { ok: true, value: { signatureHeader: header, signatures, ...(skipped ? { skipped } : {}) } };
}

/** `<prefix><sig>`, several separated by commas or spaces (github: `sha256=<hex>`). */
function parseListedSignatures(
  header: string,
  value: string,
  prefix: string,
  encoding: 'hex' | 'base64',
  digestLength: number,
): Parsed<Pick<Delivery, 'signatureHeader' | 'signatures'>> {
  const entries = value.split(/[\s,]+/).filter((e) => e !== '');
  const signatures: Buffer[] = [];
  let problem: string | undefined;
  entries.forEach((entry, i) => {
    const where = entries.length > 1 ? `entry ${i + 1} of ${header}` : header;
    if (!entry.startsWith(prefix)) {
      problem ??= `${where} does not start with '${prefix}'`;
      return;
    }
    const digest = decodeSignature(entry.slice(prefix.length), encoding, digestLength);
    if (typeof digest === 'string') problem ??= `${where}: ${digest}`;
    else signatures.push(digest);
  });
  if (signatures.length === 0) return malformed(problem ?? `${header} is empty`, header);
  return { ok: true, value: { signatureHeader: header, signatures } };
}

/** `t=<unix>,v1=<hex>[,v1=<hex>…]`; other schemes in the header (`v0=`) are passed over. */
function parseStripeSignature(value: string, digestLength: number): Read {
  const header = STRIPE_HEADERS.signature;
  const signatures: Buffer[] = [];
  const times: string[] = [];
  let problem: string | undefined;
  let others = 0;
  for (const item of value.split(',')) {
    const part = item.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      problem ??= `${header} has an item that is not key=value`;
      continue;
    }
    const key = part.slice(0, eq);
    const val = part.slice(eq + 1);
    if (key === 't') times.push(val);
    else if (key === 'v1') {
      const digest = decodeSignature(val, 'hex', digestLength);
      if (typeof digest === 'string') problem ??= `${header} v1: ${digest}`;
      else signatures.push(digest);
    } else others++;
  }
  if (times.length === 0) return malformed(`${header} has no timestamp (t=<unix seconds>)`, header);
  if (times.length > 1) return malformed(`${header} has ${times.length} timestamps (t=); a sender writes one`, header);
  const t = times[0] as string;
  if (!UNIX_SECONDS.test(t)) return malformed(`${header} t= is not a Unix time in seconds (got ${quote(t)})`, header);
  if (signatures.length === 0) return malformed(problem ?? `${header} has no v1 signature${others ? ' (only v1, HMAC-SHA256, is supported)' : ''}`, header);
  return {
    ok: true,
    delivery: { signatureHeader: header, signatures, timestamp: { value: t, header, label: `${header} t=${t}` }, ...(others ? { skipped: `${others} other item${others > 1 ? 's' : ''} ignored` } : {}) },
  };
}

/** A digest as the sender wrote it, decoded, or what is wrong with it (its form, never its value). */
function decodeSignature(text: string, encoding: 'hex' | 'base64', digestLength: number): Buffer | string {
  if (encoding === 'hex') {
    if (!/^[0-9a-fA-F]*$/.test(text) || text.length !== digestLength * 2) {
      return `expected ${digestLength * 2} hex digits, got ${text.length} characters${/^[0-9a-fA-F]*$/.test(text) ? '' : ' that are not all hex'}`;
    }
    return Buffer.from(text, 'hex');
  }
  if (!isBase64(text)) return `expected base64 (${digestLength} bytes), got ${text.length === 0 ? 'nothing' : `${text.length} characters that are not base64`}`;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== digestLength) return `expected a ${digestLength}-byte digest in base64, got ${bytes.length} bytes`;
  return bytes;
}

/** Stripe's event id (`evt_…`), the `id` of the JSON body, used as the delivery id; absent if the body has none. */
function stripeEventId(body: Uint8Array): string | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const id = (parsed as Record<string, unknown>).id;
      if (typeof id === 'string' && isDeliveryId(id)) return id;
    }
  } catch {
    // Not JSON: a verified delivery without an id.
  }
  return undefined;
}

const UNIX_SECONDS = /^[0-9]{1,12}$/;

function isDeliveryId(id: string): boolean {
  return id.length > 0 && id.length <= WEBHOOK_MAX_ID_LENGTH && /^[\x21-\x7e]+$/.test(id);
}

type Parsed<T> = { ok: true; value: T } | RefusedWebhook;

function refuse(code: keyof typeof WebhookFailureCode, message: string, header?: string): RefusedWebhook {
  return { ok: false, code: WebhookFailureCode[code], message, ...(header ? { header } : {}) };
}

function malformed(message: string, header: string): RefusedWebhook {
  return refuse('HEADER_MALFORMED', message, header);
}

/** A short, printable rendering of what a sender put in a header, for a message. */
function quote(text: string): string {
  const shown = text.length > 32 ? `${text.slice(0, 32)}…` : text;
  return JSON.stringify(shown);
}

// A secret's key is checked and decoded once (a delivery verifies with the same secrets as the last).
// Only `standard` reads a secret other than as its bytes (webhookKey): two memos, by secret.
const standardKeys = new BoundedMemo<string, Buffer>(256);
const byteKeys = new BoundedMemo<string, Buffer>(256);

function keyOf(scheme: WebhookScheme, secret: string): Buffer {
  return (scheme.type === 'standard' ? standardKeys : byteKeys).get(secret, () => webhookKey(scheme, secret));
}

/**
 * Case-insensitive header lookup; a header given twice with different values is malformed, not
 * guessed at. Only the headers a scheme asks for are looked at (a request carries many more).
 */
class HeaderReader {
  constructor(private readonly headers: WebhookHeaders) {}

  /** Every value of `name` (lower case) in the record, under any case of its key. */
  private values(name: string): string[] {
    const out: string[] = [];
    for (const key of Object.keys(this.headers)) {
      if (key.length !== name.length || (key !== name && key.toLowerCase() !== name)) continue;
      const value = this.headers[key];
      if (typeof value === 'string') out.push(value);
      else if (value !== undefined) out.push(...value);
    }
    return out;
  }

  required(name: string): Parsed<string> {
    const values = this.values(name);
    let found: string | undefined;
    for (const v of values) {
      const t = v.trim();
      if (t === '' || t === found) continue;
      if (found === undefined) found = t;
      else {
        const distinct = new Set(values.map((x) => x.trim()).filter((x) => x !== '')).size;
        return malformed(`header ${name} is given ${distinct} times with different values; a sender sends it once`, name);
      }
    }
    if (found === undefined) return refuse('HEADER_MISSING', `missing header ${name}`, name);
    return { ok: true, value: found };
  }

  id(name: string): Parsed<string> {
    const value = this.required(name);
    if (!value.ok) return value;
    if (!isDeliveryId(value.value)) return malformed(`header ${name} must be 1 to ${WEBHOOK_MAX_ID_LENGTH} printable characters without spaces`, name);
    return value;
  }

  optionalId(name: string): Parsed<string | undefined> {
    if (!this.values(name).some((v) => v.trim() !== '')) return { ok: true, value: undefined };
    return this.id(name);
  }

  timestamp(name: string): Parsed<string> {
    const value = this.required(name);
    if (!value.ok) return value;
    if (!UNIX_SECONDS.test(value.value)) return malformed(`header ${name} is not a Unix time in seconds (got ${quote(value.value)})`, name);
    return value;
  }
}
