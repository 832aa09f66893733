/**
 * The JSON document of an approval request, shared by `swarm approvals --json` and
 * `GET /api/v1/approvals`: the tool call's arguments as JSON, times as ISO dates.
 *
 * @example
 *   approvalJson(rec) // { run_id, step_id, call_id, tool, arguments: {…}, status: 'pending', reason: null, requested_at: '2026-…', decided_at: null, decided_by: null }
 */
import type { ApprovalRecord } from '../store/types.js';

export function approvalJson(a: ApprovalRecord): Record<string, unknown> {
  return { ...a, arguments: safeJson(a.arguments), requested_at: new Date(a.requested_at).toISOString(), decided_at: a.decided_at ? new Date(a.decided_at).toISOString() : null };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
