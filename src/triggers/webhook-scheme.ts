/**
 * Webhook signature schemes: what a workflow's `trigger.scheme` may say, checked when the trigger is
 * registered, resolved once into a frozen `WebhookScheme`, and the one place that knows which bytes
 * each scheme signs and with which key. Pure: no I/O, only node:crypto.
 *
 * @example
 *   # workflow.yaml
 *   trigger: { type: webhook, path: orders, secret: ${secrets.ORDERS_HOOK}, scheme: standard }
 *   trigger:
 *     type: webhook
 *     path: deploys
 *     secret: ${secrets.DEPLOY_HOOK}
 *     scheme: { type: hmac, header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512=" }
 *
 *   const scheme = resolveWebhookScheme(trigger.scheme); // throws a UserError naming every problem
 */
import { createHmac } from 'node:crypto';
import { UserError } from '../core/errors.js';
import { closest } from '../core/suggest.js';

/** The schemes Swarm verifies. `hmac` is the configurable one for senders that follow none of the others. */
export const WEBHOOK_SCHEME_TYPES = ['standard', 'github', 'stripe', 'hmac'] as const;
export type WebhookSchemeType = (typeof WEBHOOK_SCHEME_TYPES)[number];

/** Digests the `hmac` scheme may use. sha1 only for old senders that offer nothing better. */
export const WEBHOOK_HMAC_ALGORITHMS = ['sha256', 'sha512', 'sha1'] as const;
export type WebhookHmacAlgorithm = (typeof WEBHOOK_HMAC_ALGORITHMS)[number];

export const WEBHOOK_SIGNATURE_ENCODINGS = ['hex', 'base64'] as const;
export type WebhookSignatureEncoding = (typeof WEBHOOK_SIGNATURE_ENCODINGS)[number];

/**
 * How far a delivery's timestamp may be from the receiver's clock, either way, before it is refused
 * as a replay (or a sender with a broken clock). Five minutes is what Standard Webhooks and Stripe use.
 */
export const WEBHOOK_TOLERANCE_S = 300;

/** The largest tolerance that may be configured: beyond a day a captured delivery stays replayable too long. */
export const WEBHOOK_MAX_TOLERANCE_S = 86_400;

/** `whsec_` marks a Standard Webhooks secret: the rest is the key, base64-encoded. */
export const STANDARD_SECRET_PREFIX = 'whsec_';

/** The headers a scheme reads (lower-case, as Node delivers them). */
export const STANDARD_HEADERS = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' } as const;
export const GITHUB_HEADERS = { signature: 'x-hub-signature-256', id: 'x-github-delivery' } as const;
export const STRIPE_HEADERS = { signature: 'stripe-signature' } as const;

/**
 * `trigger.scheme` as written in workflow.yaml: a scheme's name, or an object with `type` and the
 * scheme's options. Keys are snake_case like the rest of the manifest.
 */
export type WebhookSchemeSpec =
  | 'standard'
  | 'github'
  | 'stripe'
  | { type: 'standard' | 'stripe'; tolerance_seconds?: number }
  | { type: 'github' }
  | HmacSchemeSpec;

/** Options of the `hmac` scheme. */
export interface HmacSchemeSpec {
  type: 'hmac';
  /** The header carrying the signature, e.g. `X-Signature`. Required. */
  header: string;
  /** Default sha256. */
  algorithm?: WebhookHmacAlgorithm;
  /** How the digest is written in the header. Default hex. */
  encoding?: WebhookSignatureEncoding;
  /** Text before each signature, e.g. `sha256=`. Default none. */
  prefix?: string;
  /** A header with the delivery time in Unix seconds; when set it is required and signed (`${timestamp}.${body}`). */
  timestamp_header?: string;
  /** A header with the sender's delivery id; when set it is required. Not covered by the signature. */
  id_header?: string;
  /** Seconds the timestamp may be off, either way (default 300). Only with `timestamp_header`. */
  tolerance_seconds?: number;
}

/** A scheme checked and resolved: header names lower-case, defaults filled in, frozen. */
export type WebhookScheme =
  | { readonly type: 'standard'; readonly toleranceSeconds: number }
  | { readonly type: 'github' }
  | { readonly type: 'stripe'; readonly toleranceSeconds: number }
  | ResolvedHmacScheme;

export interface ResolvedHmacScheme {
  readonly type: 'hmac';
  readonly header: string;
  readonly algorithm: WebhookHmacAlgorithm;
  readonly encoding: WebhookSignatureEncoding;
  readonly prefix: string;
  readonly timestampHeader: string | undefined;
  readonly idHeader: string | undefined;
  readonly toleranceSeconds: number;
}

/** One thing wrong with a scheme spec: the field (`scheme.algorithm`) and what is wrong with it. */
export interface WebhookSchemeProblem {
  field: string;
  problem: string;
}

export type WebhookSchemeParse = { ok: true; scheme: WebhookScheme } | { ok: false; problems: WebhookSchemeProblem[] };

const KEYS: Record<WebhookSchemeType, readonly string[]> = {
  standard: ['type', 'tolerance_seconds'],
  github: ['type'],
  stripe: ['type', 'tolerance_seconds'],
  hmac: ['type', 'header', 'algorithm', 'encoding', 'prefix', 'timestamp_header', 'id_header', 'tolerance_seconds'],
};

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Check a `trigger.scheme` value and resolve it, collecting every problem (each names its field and
 * says what would be right) so a bad trigger is refused at registration, not at the first delivery.
 * `field` is where the value sits, for the messages (default `scheme`).
 *
 * @example
 *   parseWebhookScheme({ type: 'hmac', header: 'X-Sig', algorithm: 'md5' })
 *   // { ok: false, problems: [{ field: 'scheme.algorithm', problem: "must be one of sha256, sha512, sha1 (got 'md5')" }] }
 */
export function parseWebhookScheme(raw: unknown, field = 'scheme'): WebhookSchemeParse {
  const problems: WebhookSchemeProblem[] = [];
  const fail = (at: string, problem: string): WebhookSchemeParse => ({ ok: false, problems: [...problems, { field: at, problem }] });
  const names = WEBHOOK_SCHEME_TYPES.join(', ');

  if (typeof raw === 'string') {
    if (raw === 'hmac') return fail(field, "hmac needs options: write it as { type: hmac, header: <signature header>, … }");
    if (!isSchemeType(raw)) return fail(field, `must be one of ${names}${didYouMean(raw, WEBHOOK_SCHEME_TYPES)} (got '${raw}')`);
    raw = { type: raw };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail(field, `must be a scheme name (${names}) or an object with a type (got ${describe(raw)})`);
  }
  const spec = raw as Record<string, unknown>;
  const type = spec.type;
  if (type === undefined) return fail(`${field}.type`, `is required: one of ${names}`);
  if (typeof type !== 'string' || !isSchemeType(type)) {
    return fail(`${field}.type`, `must be one of ${names}${typeof type === 'string' ? didYouMean(type, WEBHOOK_SCHEME_TYPES) : ''} (got ${describe(type)})`);
  }
  for (const key of Object.keys(spec)) {
    if (!KEYS[type].includes(key)) {
      const hint = didYouMean(key, KEYS[type]);
      problems.push({ field: `${field}.${key}`, problem: `is not an option of the ${type} scheme${hint || `; its options are ${KEYS[type].join(', ')}`}` });
    }
  }

  const tolerance = readTolerance(spec.tolerance_seconds, `${field}.tolerance_seconds`, problems);
  let scheme: WebhookScheme;
  if (type === 'standard' || type === 'stripe') scheme = { type, toleranceSeconds: tolerance };
  else if (type === 'github') scheme = { type };
  else {
    const header = readHeaderName(spec.header, `${field}.header`, true, problems);
    const timestampHeader = readHeaderName(spec.timestamp_header, `${field}.timestamp_header`, false, problems);
    const idHeader = readHeaderName(spec.id_header, `${field}.id_header`, false, problems);
    const algorithm = readChoice(spec.algorithm, `${field}.algorithm`, WEBHOOK_HMAC_ALGORITHMS, 'sha256', problems);
    const encoding = readChoice(spec.encoding, `${field}.encoding`, WEBHOOK_SIGNATURE_ENCODINGS, 'hex', problems);
    let prefix = '';
    if (spec.prefix !== undefined) {
      if (typeof spec.prefix !== 'string') problems.push({ field: `${field}.prefix`, problem: `must be a string such as 'sha256=' (got ${describe(spec.prefix)})` });
      else if (/[\s,]/.test(spec.prefix)) problems.push({ field: `${field}.prefix`, problem: 'must not contain spaces or commas (they separate several signatures in one header)' });
      else prefix = spec.prefix;
    }
    if (spec.tolerance_seconds !== undefined && spec.timestamp_header === undefined) {
      problems.push({ field: `${field}.tolerance_seconds`, problem: 'has no effect without timestamp_header; set timestamp_header or remove it' });
    }
    const distinct = [header, timestampHeader, idHeader].filter((h): h is string => h !== undefined);
    if (new Set(distinct).size !== distinct.length) {
      problems.push({ field, problem: 'header, timestamp_header and id_header must be different headers' });
    }
    scheme = { type, header: header ?? '', algorithm, encoding, prefix, timestampHeader, idHeader, toleranceSeconds: tolerance };
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, scheme: Object.freeze(scheme) };
}

/**
 * `parseWebhookScheme`, throwing a `UserError` (`WEBHOOK_SCHEME_INVALID`) whose message has one line
 * per problem, each `field: problem`. `where` (a file name) is put in front of each line.
 */
export function resolveWebhookScheme(raw: unknown, options: { field?: string; where?: string } = {}): WebhookScheme {
  const parsed = parseWebhookScheme(raw, options.field);
  if (parsed.ok) return parsed.scheme;
  const lead = options.where ? `${options.where}: ` : '';
  const first = parsed.problems[0];
  throw new UserError('WEBHOOK_SCHEME_INVALID', parsed.problems.map((p) => `${lead}${p.field}: ${p.problem}`).join('\n'), {
    ...(options.where ? { file: options.where } : {}),
    ...(first ? { field: first.field } : {}),
    ...(parsed.problems.length > 1 ? { problems: parsed.problems } : {}),
  });
}

/**
 * Check the secrets a trigger will verify with (several during a rotation), so a secret that can never
 * match is refused at registration. Problems name the secret by position, never by value.
 */
export function checkWebhookSecrets(scheme: WebhookScheme, secrets: readonly string[], field = 'secret'): WebhookSchemeProblem[] {
  if (secrets.length === 0) return [{ field, problem: 'at least one secret is required' }];
  const problems: WebhookSchemeProblem[] = [];
  secrets.forEach((secret, i) => {
    const at = secrets.length > 1 ? `${field}[${i}]` : field;
    const problem = secretProblem(scheme, secret);
    if (problem) problems.push({ field: at, problem });
  });
  return problems;
}

/**
 * The HMAC key a secret stands for. For `standard`, `whsec_<base64>` is the base64-decoded key (the
 * form Standard Webhooks senders hand out); any other string is used as its UTF-8 bytes, for senders
 * that hand out a plain shared secret. Every other scheme uses the secret's UTF-8 bytes as given:
 * Stripe's secrets also start with `whsec_`, yet Stripe keys the HMAC with the whole string.
 * Throws a `UserError` (`WEBHOOK_SECRET_INVALID`) for a secret `checkWebhookSecrets` refuses.
 */
export function webhookKey(scheme: WebhookScheme, secret: string): Buffer {
  const problem = secretProblem(scheme, secret);
  if (problem) throw new UserError('WEBHOOK_SECRET_INVALID', `webhook secret ${problem}`);
  if (scheme.type === 'standard' && secret.startsWith(STANDARD_SECRET_PREFIX)) return Buffer.from(secret.slice(STANDARD_SECRET_PREFIX.length), 'base64');
  return Buffer.from(secret, 'utf8');
}

/** The digest a scheme signs with. */
export function webhookAlgorithm(scheme: WebhookScheme): WebhookHmacAlgorithm {
  return scheme.type === 'hmac' ? scheme.algorithm : 'sha256';
}

/** What a scheme signs before the raw body: `${id}.${timestamp}.` (standard), `${timestamp}.` (stripe, hmac with a timestamp header), or nothing. */
export function signedLead(scheme: WebhookScheme, parts: { id?: string; timestamp?: string }): string {
  if (scheme.type === 'standard') return `${parts.id ?? ''}.${parts.timestamp ?? ''}.`;
  if (scheme.type === 'stripe' || (scheme.type === 'hmac' && scheme.timestampHeader)) return `${parts.timestamp ?? ''}.`;
  return '';
}

/** HMAC of what a scheme signs with one key: the `signedLead`, then the raw body (fed in turn, not copied together). */
export function webhookDigest(scheme: WebhookScheme, key: Buffer, lead: string, body: Uint8Array): Buffer {
  const hmac = createHmac(webhookAlgorithm(scheme), key);
  if (lead !== '') hmac.update(lead, 'utf8');
  return hmac.update(body).digest();
}

function secretProblem(scheme: WebhookScheme, secret: string): string | undefined {
  if (typeof secret !== 'string' || secret.length === 0) return 'is empty';
  if (scheme.type === 'standard' && secret.startsWith(STANDARD_SECRET_PREFIX)) {
    const b64 = secret.slice(STANDARD_SECRET_PREFIX.length);
    if (!isBase64(b64) || Buffer.from(b64, 'base64').length === 0) {
      return `starts with ${STANDARD_SECRET_PREFIX} but the rest is not base64; copy the whole secret the sender shows`;
    }
  }
  return undefined;
}

/** Strict base64 (standard alphabet, padding optional): Buffer.from would skip any junk silently. */
export function isBase64(text: string): boolean {
  return text.length > 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.replace(/=+$/, '').length % 4 !== 1;
}

function isSchemeType(name: string): name is WebhookSchemeType {
  return (WEBHOOK_SCHEME_TYPES as readonly string[]).includes(name);
}

function readTolerance(raw: unknown, field: string, problems: WebhookSchemeProblem[]): number {
  if (raw === undefined) return WEBHOOK_TOLERANCE_S;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > WEBHOOK_MAX_TOLERANCE_S) {
    problems.push({ field, problem: `must be a whole number of seconds from 1 to ${WEBHOOK_MAX_TOLERANCE_S} (got ${describe(raw)}); the default is ${WEBHOOK_TOLERANCE_S}` });
    return WEBHOOK_TOLERANCE_S;
  }
  return raw;
}

function readHeaderName(raw: unknown, field: string, required: boolean, problems: WebhookSchemeProblem[]): string | undefined {
  if (raw === undefined) {
    if (required) problems.push({ field, problem: 'is required: the name of the header that carries the signature, e.g. X-Signature' });
    return undefined;
  }
  if (typeof raw !== 'string' || !HEADER_NAME.test(raw)) {
    problems.push({ field, problem: `must be an HTTP header name such as X-Signature (got ${describe(raw)})` });
    return undefined;
  }
  return raw.toLowerCase();
}

function readChoice<T extends string>(raw: unknown, field: string, choices: readonly T[], fallback: T, problems: WebhookSchemeProblem[]): T {
  if (raw === undefined) return fallback;
  if (typeof raw === 'string' && (choices as readonly string[]).includes(raw)) return raw as T;
  const hint = typeof raw === 'string' ? didYouMean(raw, choices) : '';
  problems.push({ field, problem: `must be one of ${choices.join(', ')}${hint} (got ${describe(raw)})` });
  return fallback;
}

function didYouMean(name: string, candidates: readonly string[]): string {
  const lower = name.toLowerCase();
  // closest() catches typos; a prefix catches abbreviations (`algo`, `timestamp`).
  const c = closest(lower, candidates) ?? (lower.length >= 3 ? candidates.find((k) => k.startsWith(lower)) : undefined);
  return c ? `; did you mean '${c}'?` : '';
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined) return String(value);
  return `a ${typeof value}`;
}
