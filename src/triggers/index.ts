/**
 * Triggers: what starts a run from outside. For now the verification core of webhook triggers; the
 * HTTP server that receives deliveries sits on top and imports only from here.
 */
export {
  checkWebhookSecrets,
  parseWebhookScheme,
  resolveWebhookScheme,
  STANDARD_SECRET_PREFIX,
  WEBHOOK_HMAC_ALGORITHMS,
  WEBHOOK_MAX_TOLERANCE_S,
  WEBHOOK_SCHEME_TYPES,
  WEBHOOK_SIGNATURE_ENCODINGS,
  WEBHOOK_TOLERANCE_S,
  type HmacSchemeSpec,
  type ResolvedHmacScheme,
  type WebhookHmacAlgorithm,
  type WebhookScheme,
  type WebhookSchemeParse,
  type WebhookSchemeProblem,
  type WebhookSchemeSpec,
  type WebhookSchemeType,
  type WebhookSignatureEncoding,
} from './webhook-scheme.js';
export {
  verifyWebhook,
  WEBHOOK_MAX_ID_LENGTH,
  WebhookFailureCode,
  type RefusedWebhook,
  type VerifiedWebhook,
  type VerifyWebhookOptions,
  type WebhookHeaders,
  type WebhookVerification,
} from './webhook-verify.js';
export { signWebhook, type SignWebhookOptions } from './webhook-sign.js';
