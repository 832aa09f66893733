/**
 * Receiving a webhook delivery, whatever carries it (the HTTP server is one caller): find the
 * trigger by path, resolve its secrets, verify the signature over the raw body, and start the
 * workflow's run with the JSON body as trigger data, once per delivery id.
 *
 * A delivery id (standard: `webhook-id`; github: `X-GitHub-Delivery`; stripe: the event's `id`; hmac:
 * the `id_header` when configured; `auth: none`: an `Idempotency-Key` header) becomes the run's
 * idempotency key `webhook:<path>:<delivery id>`, unique in the store: a redelivery returns the run
 * the first delivery created, however many arrive at once and whatever restarts happen in between.
 *
 * Every refusal is a `UserError` with a stable code the HTTP layer turns into a status (see
 * `WEBHOOK_STATUS`); nothing is written unless the run is.
 *
 * @example
 *   const out = await deliverWebhook(deps, 'shop/orders', { headers: req.headers, body: rawBytes });
 *   out.created ? reply(202, out.runId) : reply(200, out.runId); // 200: a redelivery
 */
import { PolicyError, UserError } from '../core/errors.js';
import type { CreatedRunDetails } from '../engine/created-run.js';
import { findReferences } from '../core/template.js';
import { resolveWebhookScheme, type WebhookScheme } from './webhook-scheme.js';
import { verifyWebhook, WEBHOOK_MAX_ID_LENGTH, WebhookFailureCode, type WebhookHeaders } from './webhook-verify.js';
import { carrierFromHeaders, tracingEnabled, type TraceCarrier } from '../observability/tracing.js';

/** The part of a stored webhook trigger a delivery needs (a `TriggerRecord` has it). */
export interface WebhookTarget {
  id: string;
  workflow_name: string;
  workflow_version: string;
  enabled: boolean;
  config: Record<string, unknown>;
}

export interface WebhookDeliveryDeps {
  /** The trigger received at this path, if any. */
  findTrigger(path: string): Promise<WebhookTarget | undefined>;
  /** `${secrets.NAME}` for the workflow: its own stored secret, the global one, then SWARM_SECRET_NAME. */
  secret(name: string, workflow: string): Promise<string | undefined>;
  /** Start a run (once per idempotency key): the public API's `createRun`. */
  createRun(ref: string, input: unknown, options: { trigger_type: 'webhook'; idempotencyKey?: string; metadata?: Record<string, string>; trace?: TraceCarrier }): Promise<{ runId: string; created: boolean; details?: CreatedRunDetails }>;
  /** The run created under this idempotency key, if any. */
  runByKey(key: string): Promise<string | undefined>;
  /** The receiver's clock, for the signature's timestamp. */
  now(): Date;
}

export interface WebhookDelivery {
  headers: WebhookHeaders;
  /** The body exactly as received: the signature covers these bytes. */
  body: Uint8Array;
}

export interface DeliveredWebhook {
  runId: string;
  /** false: a redelivery, answered with the run the first delivery created. */
  created: boolean;
  workflow: string;
  deliveryId?: string;
  /** The idempotency key of the run, when the delivery had an id. */
  idempotencyKey?: string;
  /** The run as created (absent for a redelivery): the answer needs no read of the store. */
  details?: CreatedRunDetails;
}

/** The HTTP status of each refusal, by code (the one error handler reads it). */
export const WEBHOOK_STATUS: Readonly<Record<string, number>> = {
  [WebhookFailureCode.HEADER_MISSING]: 401,
  [WebhookFailureCode.HEADER_MALFORMED]: 401,
  [WebhookFailureCode.TIMESTAMP_OUT_OF_TOLERANCE]: 401,
  [WebhookFailureCode.SIGNATURE_MISMATCH]: 401,
  WEBHOOK_NOT_FOUND: 404,
  WEBHOOK_DISABLED: 409,
  // The receiver is not configured (its secret is not set or cannot be used): senders retry on 5xx,
  // and succeed once it is.
  WEBHOOK_SECRET_MISSING: 503,
  WEBHOOK_SECRET_INVALID: 503,
};

/** The header an `auth: none` webhook takes its delivery id from (signed schemes use their own). */
export const UNSIGNED_ID_HEADER = 'idempotency-key';

/** The idempotency key of a delivery's run. */
export function webhookRunKey(path: string, deliveryId: string): string {
  return `webhook:${path}:${deliveryId}`;
}

/** Receive one delivery at `path` (what follows `/webhooks/`). */
export async function deliverWebhook(deps: WebhookDeliveryDeps, path: string, delivery: WebhookDelivery): Promise<DeliveredWebhook> {
  const trigger = await deps.findTrigger(path);
  if (!trigger) throw new UserError('WEBHOOK_NOT_FOUND', `no webhook at /webhooks/${path}; GET /webhooks lists the paths`, { path });
  const config = trigger.config;
  const where = `the webhook at /webhooks/${path} (workflow ${trigger.workflow_name})`;

  let deliveryId: string | undefined;
  if (config.auth === 'none') {
    deliveryId = unsignedId(delivery.headers);
  } else {
    const scheme = schemeOf(config);
    const secrets = await resolveSecrets(deps, trigger, where);
    let verified;
    try {
      verified = verifyWebhook(scheme, secrets, delivery.headers, delivery.body, deps.now());
    } catch (e) {
      if (e instanceof UserError && e.code === 'WEBHOOK_SECRET_INVALID') throw new UserError('WEBHOOK_SECRET_INVALID', `the secret of ${where} cannot be used: ${e.message}`, { path });
      throw e;
    }
    if (!verified.ok) throw new UserError(verified.code, `delivery refused: ${verified.message}`, { path, ...(verified.header ? { header: verified.header } : {}) });
    deliveryId = verified.deliveryId;
  }
  const idempotencyKey = deliveryId === undefined ? undefined : webhookRunKey(path, deliveryId);
  const done = (runId: string, created: boolean, details?: CreatedRunDetails): DeliveredWebhook => ({
    runId,
    created,
    ...(details ? { details } : {}),
    workflow: trigger.workflow_name,
    ...(deliveryId !== undefined ? { deliveryId } : {}),
    ...(idempotencyKey ? { idempotencyKey } : {}),
  });

  // A redelivery of a delivery that started a run gets that run, even once the workflow is disabled.
  const disabled = async (): Promise<DeliveredWebhook> => {
    const existing = idempotencyKey ? await deps.runByKey(idempotencyKey) : undefined;
    if (existing) return done(existing, false);
    throw new UserError('WEBHOOK_DISABLED', `workflow ${trigger.workflow_name} is disabled: ${where} starts no runs until it is enabled`, {
      path,
      workflow: trigger.workflow_name,
      hint: `POST /api/v1/workflows/${encodeURIComponent(trigger.workflow_name)}/enable enables it`,
    });
  };
  if (!trigger.enabled) return disabled();

  const input = parseBody(delivery.body);
  try {
    const { runId, created, details } = await deps.createRun(`${trigger.workflow_name}@${trigger.workflow_version}`, input, {
      trigger_type: 'webhook',
      ...(idempotencyKey ? { idempotencyKey } : {}),
      metadata: { webhook: path, ...(deliveryId !== undefined ? { delivery_id: deliveryId } : {}) },
      // The sender's trace context (traceparent): the run joins its trace. Not read with tracing off.
      ...(tracingEnabled() ? deliveryTrace(delivery.headers) : {}),
    });
    return done(runId, created, details);
  } catch (e) {
    // Disabled between the trigger's read and the run's transaction.
    if (e instanceof PolicyError && e.code === 'WORKFLOW_DISABLED') return disabled();
    throw e;
  }
}

// A trigger's configuration is read once per registration (the registry cache hands the same object
// to every delivery): its scheme and its secrets' names are worked out once per configuration.
const schemes = new WeakMap<object, WebhookScheme>();
const secretNames = new WeakMap<object, string[]>();

function schemeOf(config: Record<string, unknown>): WebhookScheme {
  let scheme = schemes.get(config);
  if (!scheme) {
    scheme = resolveWebhookScheme(config.scheme ?? 'standard');
    schemes.set(config, scheme);
  }
  return scheme;
}

/** The values of the trigger's secrets (several during a rotation); the ones not set are left out. */
async function resolveSecrets(deps: WebhookDeliveryDeps, trigger: WebhookTarget, where: string): Promise<string[]> {
  let names = secretNames.get(trigger.config);
  if (!names) {
    const refs = Array.isArray(trigger.config.secret) ? (trigger.config.secret as unknown[]) : [trigger.config.secret];
    names = refs.map((ref) => {
      const path = typeof ref === 'string' ? findReferences(ref)[0]?.path : undefined;
      // Registration accepts only whole ${secrets.NAME} references.
      if (!path || path[0] !== 'secrets' || typeof path[1] !== 'string') throw new UserError('WEBHOOK_SECRET_INVALID', `${where} has a secret that is not a \${secrets.NAME} reference; register the workflow again`);
      return path[1];
    });
    secretNames.set(trigger.config, names);
  }
  const values: string[] = [];
  for (const name of names) {
    // A stored secret that cannot be decrypted is the server's configuration too, not the sender's.
    const value = await deps.secret(name, trigger.workflow_name).catch((e: unknown) => {
      if (e instanceof UserError) throw new UserError('WEBHOOK_SECRET_INVALID', `the secret ${name} of ${where} cannot be used: ${e.message}`, { workflow: trigger.workflow_name });
      throw e;
    });
    if (value !== undefined) values.push(value);
  }
  if (values.length === 0) {
    const list = names.join(' or ');
    throw new UserError(
      'WEBHOOK_SECRET_MISSING',
      `${where} cannot verify deliveries: its secret ${list} is not set; set it with 'swarm secrets set ${names[0] ?? 'NAME'} --workflow ${trigger.workflow_name}' (or PUT /api/v1/secrets/${names[0] ?? 'NAME'}, or SWARM_SECRET_${names[0] ?? 'NAME'} in the server's environment)`,
      { workflow: trigger.workflow_name },
    );
  }
  return values;
}

/** `{ trace }` from a delivery's `traceparent` and `tracestate` headers, when it has one. */
function deliveryTrace(headers: WebhookHeaders): { trace?: TraceCarrier } {
  const trace = carrierFromHeaders((name) => headerValue(headers, name) || undefined);
  return trace ? { trace } : {};
}

/** A header's value by its lower-case name, under any case of its key; a repeated header (an array) has none here. */
function headerValue(headers: WebhookHeaders, name: string): string | undefined {
  const entry = Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return typeof entry === 'string' ? entry : undefined;
}

/** An `auth: none` delivery's id: its Idempotency-Key header, if any (checked like a signed id). */
function unsignedId(headers: WebhookHeaders): string | undefined {
  const value = headerValue(headers, UNSIGNED_ID_HEADER)?.trim();
  if (value === undefined || value === '') return undefined;
  if (value.length > WEBHOOK_MAX_ID_LENGTH || !/^[\x21-\x7e]+$/.test(value)) {
    throw new UserError('ARGUMENT_INVALID', `header Idempotency-Key must be 1 to ${WEBHOOK_MAX_ID_LENGTH} printable characters without spaces`, { header: UNSIGNED_ID_HEADER });
  }
  return value;
}

/** The trigger data: the body as JSON (an empty body is `{}`); not JSON → 400 JSON_INVALID. */
function parseBody(body: Uint8Array): unknown {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    // Node's message quotes part of the body (which may hold anything): only the position is told.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new UserError('JSON_INVALID', `the delivery's body is not valid JSON${at ? ` (at byte ${at})` : ''}`);
  }
}
