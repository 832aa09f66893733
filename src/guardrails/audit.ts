/**
 * The audit path the injection policy, the content policy, sensitive tools and escalation share: a
 * `GUARDRAIL_TRIGGERED` event in the run's log plus `swarm_guardrail_events_total`, recorded once per
 * decision even when a resumed loop sees the same tool call again.
 *
 * @example
 *   if (firstTime(t.state, t.turn, `inj:${call.id}`)) await audit(deps, ctx, { guardrail: 'injection', rule, action: 'sanitize', tool: call.name });
 */
import { EventType } from '../core/events.js';
import type { GuardState } from './guard.js';
import type { GuardDeps, StepGuardContext } from './index.js';

export interface GuardrailTrigger {
  guardrail: 'injection' | 'sensitive_tool' | 'content_policy' | 'escalation';
  /** The rule that fired (a pattern id, `untrusted-context`, `repeated_call`, …). */
  rule: string;
  action: string;
  tool?: string;
  /** Where the untrusted content came from (`tool:fetch_page`, `mcp:docs`). */
  source?: string;
  agent?: string;
  reason?: string;
}

/** Record a trigger: the event (its own transaction) and the metric. */
export async function audit(deps: Pick<GuardDeps, 'recordEvents' | 'metrics'>, ctx: Pick<StepGuardContext, 'runId' | 'stepId'>, t: GuardrailTrigger): Promise<void> {
  deps.metrics().guardrailEvent(t.guardrail, t.action);
  const data = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
  await deps.recordEvents(ctx.runId, ctx.stepId, [{ type: EventType.GUARDRAIL_TRIGGERED, data }]);
}

/**
 * True the first time `key` is seen in this turn. The keys live in the guard state (saved with the
 * checkpoint), so a tool call replayed or re-gated after a resume is not audited twice; a new turn
 * starts a new set, which keeps the state small.
 */
export function firstTime(state: GuardState, turn: number, key: string): boolean {
  let seen = state.seen as { turn: number; keys: string[] } | undefined;
  if (!seen || seen.turn !== turn) seen = state.seen = { turn, keys: [] };
  if (seen.keys.includes(key)) return false;
  seen.keys.push(key);
  return true;
}
