/**
 * Sign a delivery the way a sender of each scheme does: for tests, for the curl example in
 * docs/webhooks.md, and for load generators. It shares `signedLead` and `webhookDigest` with the verifier, so the tests
 * also check both against published or independently computed signatures.
 *
 * @example
 *   const body = Buffer.from('{"order":42}');
 *   const headers = signWebhook(resolveWebhookScheme('standard'), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', body);
 *   await fetch('http://127.0.0.1:8080/hooks/orders', { method: 'POST', headers, body });
 */
import { randomUUID } from 'node:crypto';
import { GITHUB_HEADERS, signedLead, STANDARD_HEADERS, STRIPE_HEADERS, webhookDigest, webhookKey, type WebhookScheme } from './webhook-scheme.js';

export interface SignWebhookOptions {
  /** The delivery id (standard, github, hmac with `id_header`). Default a fresh random one. */
  id?: string;
  /** When the delivery is sent (standard, stripe, hmac with `timestamp_header`). Default now. */
  timestamp?: Date;
}

/**
 * The headers a sender adds to deliver `body` (lower-case names). With several secrets the delivery
 * carries one signature per secret, as senders do during a rotation. Throws a `UserError` for a
 * secret `checkWebhookSecrets` refuses.
 */
export function signWebhook(scheme: WebhookScheme, secrets: string | readonly string[], body: Uint8Array | string, options: SignWebhookOptions = {}): Record<string, string> {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const timestamp = String(Math.floor((options.timestamp ?? new Date()).getTime() / 1000));
  const id = options.id ?? (scheme.type === 'standard' ? `msg_${randomUUID().replaceAll('-', '')}` : randomUUID());
  const lead = signedLead(scheme, { id, timestamp });
  const digests = list.map((secret) => webhookDigest(scheme, webhookKey(scheme, secret), lead, bytes));

  switch (scheme.type) {
    case 'standard':
      return {
        [STANDARD_HEADERS.id]: id,
        [STANDARD_HEADERS.timestamp]: timestamp,
        [STANDARD_HEADERS.signature]: digests.map((d) => `v1,${d.toString('base64')}`).join(' '),
      };
    case 'github':
      return {
        [GITHUB_HEADERS.signature]: digests.map((d) => `sha256=${d.toString('hex')}`).join(', '),
        [GITHUB_HEADERS.id]: id,
      };
    case 'stripe':
      return { [STRIPE_HEADERS.signature]: [`t=${timestamp}`, ...digests.map((d) => `v1=${d.toString('hex')}`)].join(',') };
    case 'hmac':
      return {
        [scheme.header]: digests.map((d) => `${scheme.prefix}${d.toString(scheme.encoding)}`).join(', '),
        ...(scheme.timestampHeader ? { [scheme.timestampHeader]: timestamp } : {}),
        ...(scheme.idHeader ? { [scheme.idHeader]: id } : {}),
      };
  }
}
