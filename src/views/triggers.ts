/**
 * Documents for triggers, shared by the CLI's `--json` and the HTTP API: webhooks (never a secret,
 * nor a secret's name) and event triggers.
 *
 * @example
 *   webhookJson(trigger) // { path: 'shop/orders', url: '/webhooks/shop/orders', workflow: 'orders', auth: 'signature', scheme: 'standard', … }
 */
import type { TriggerRecord } from '../store/types.js';

export interface WebhookJson {
  path: string | null;
  url: string;
  workflow: string;
  version: string;
  enabled: boolean;
  auth: 'signature' | 'none';
  scheme: string | null;
  /** Where the delivery id (the dedup key) comes from; null: deliveries are not deduplicated. */
  delivery_id: string | null;
}

export function webhookJson(t: TriggerRecord): WebhookJson {
  const scheme = t.config.scheme ?? 'standard';
  const options = typeof scheme === 'object' && scheme !== null ? (scheme as Record<string, unknown>) : {};
  const type = typeof scheme === 'string' ? scheme : typeof options.type === 'string' ? options.type : 'standard';
  const auth = t.config.auth === 'none' ? 'none' : 'signature';
  const idHeader = typeof options.id_header === 'string' ? options.id_header : undefined;
  const FROM: Record<string, string> = { standard: 'webhook-id header', github: 'X-GitHub-Delivery header', stripe: "the event's id" };
  const deliveryId = auth === 'none' ? 'Idempotency-Key header' : (FROM[type] ?? (idHeader ? `${idHeader} header` : null));
  return {
    path: t.webhook_path,
    url: `/webhooks/${t.webhook_path ?? ''}`,
    workflow: t.workflow_name,
    version: t.workflow_version,
    enabled: t.enabled,
    auth,
    scheme: auth === 'none' ? null : type,
    delivery_id: deliveryId,
  };
}

export interface EventTriggerJson {
  workflow: string;
  version: string;
  on: string | null;
  /** Only events of this workflow; null: any. */
  source: string | null;
  filter: string | null;
  enabled: boolean;
}

export function eventTriggerJson(t: TriggerRecord): EventTriggerJson {
  return {
    workflow: t.workflow_name,
    version: t.workflow_version,
    on: t.event_type,
    source: t.event_source,
    filter: typeof t.config.filter === 'string' ? t.config.filter : null,
    enabled: t.enabled,
  };
}
