/**
 * The JSON document of a stored secret (never its value), shared by `swarm secrets list --json` and
 * `GET /api/v1/secrets` (and a PUT's answer): times as ISO 8601, as tokens and schedules give them.
 *
 * @example
 *   secretJson(info) // { name: 'API_KEY', scope: 'global', workflow: null, key_id: '…', created_at: '2026-…', updated_at: '2026-…' }
 */
import type { SecretInfo } from '../swarm.js';

export function secretJson(s: SecretInfo): Record<string, unknown> {
  return { ...s, created_at: new Date(s.created_at).toISOString(), updated_at: new Date(s.updated_at).toISOString() };
}
