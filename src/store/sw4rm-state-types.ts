/**
 * SW4RM agent state in the store (migration 23): small JSON documents keyed by
 * (agent_id, kind, key), e.g. an agent's activity buffer (kind 'activity') or its worktree binding
 * (kind 'worktree'). Written whole: the core's persistent components batch their saves.
 *
 * @example
 *   await store.putSw4rmState('agent-1', 'worktree', { repo_id: 'r', worktree_id: 'w' });
 *   (await store.getSw4rmState('agent-1', 'worktree'))?.value;
 */
import { UserError } from '../core/errors.js';

export interface Sw4rmStateRow {
  agent_id: string;
  kind: string;
  /** '' when the kind holds one document per agent. */
  key: string;
  /** The JSON value as it was put. */
  value: unknown;
  updated_at: number;
}

/** The longest agent id, kind or key accepted (they are primary-key columns). */
export const SW4RM_STATE_ID_MAX_CHARS = 512;

/**
 * Check an address and serialise a value before anything is written; throws UserError
 * SW4RM_STATE_INVALID naming the argument.
 */
export function sw4rmStateWrite(agentId: string, kind: string, key: string, value: unknown): string {
  for (const [name, v] of [
    ['agent_id', agentId],
    ['kind', kind],
    ['key', key],
  ] as const) {
    const emptyOk = name === 'key';
    if (typeof v !== 'string' || (!emptyOk && v === '') || v.length > SW4RM_STATE_ID_MAX_CHARS || v.includes('\0')) {
      throw new UserError('SW4RM_STATE_INVALID', `SW4RM agent state: ${name} must be a ${emptyOk ? '' : 'non-empty '}string of at most ${SW4RM_STATE_ID_MAX_CHARS} characters without NUL`, { field: name });
    }
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new UserError('SW4RM_STATE_INVALID', `SW4RM agent state ${agentId}/${kind}: the value cannot be written as JSON: ${(e as Error).message}`, { field: 'value' }, { cause: e });
  }
  if (json === undefined) throw new UserError('SW4RM_STATE_INVALID', `SW4RM agent state ${agentId}/${kind}: the value (${typeof value}) has no JSON form`, { field: 'value' });
  return json;
}

export function toSw4rmStateRow(r: Record<string, unknown>): Sw4rmStateRow {
  return {
    agent_id: r.agent_id as string,
    kind: r.kind as string,
    key: r.key as string,
    value: JSON.parse(r.value as string) as unknown,
    updated_at: Number(r.updated_at),
  };
}
