/**
 * Escalation: a model that goes round in circles is stopped, paused for a human, or warned.
 *
 * - `repeated_call`: the same tool with the same arguments (keys in any order) the count-th time in
 *   the session, counted from the conversation itself.
 * - `handoff_cycle`: a handoff back to an agent already visited, through the same handoff, the
 *   count-th time (A→B→A→B→A is the second return through B→A), counted from the answers' senders.
 * - `tool_failures`: count tool results in a row were errors.
 * - `unknown_tools`: the count-th call of a tool that does not exist, in the session.
 *
 * Actions: `stop` fails the step with ESCALATION_STOPPED (naming the rule), `ask` pauses the offending
 * call for a human's approval (as `needs_approval` does; a rejection fails the step), `warn` tells the
 * model a continuation warning before its next call. Counters that cannot be read off the conversation
 * live in the guard state (saved with each checkpoint), so a resumed loop carries on counting.
 *
 * @example
 *   const guard = escalationGuard(deps, ctx);   // undefined when no agent configures escalation
 */
import { handoffToolName, type Agent } from '../agents/agent.js';
import { LoopError } from '../agents/loop.js';
import type { Message, ToolCall } from '../agents/types.js';
import { ESCALATION_DEFAULT_COUNT, mergePolicy, type EscalationAction, type EscalationRule } from '../core/manifest/guardrails/policy.js';
import { audit, firstTime } from './audit.js';
import type { GuardState, GuardTurn, LoopGuard, ToolCallGate } from './guard.js';
import type { GuardDeps, StepGuardContext } from './index.js';

/** The step failed because an escalation rule with `action: stop` fired. Exit 4 (as every loop error). */
export const ESCALATION_STOPPED = 'ESCALATION_STOPPED';

interface Counters {
  /** Tool results in a row that were errors. */
  fails: number;
  /** Calls of unknown tools in the session. */
  unknown: number;
}

type Rules = Partial<Record<EscalationRule, { count: number; action: EscalationAction }>>;

/** The escalation guard of a step, or undefined when neither the deployment nor any agent sets `escalation`. */
export function escalationGuard(deps: GuardDeps, ctx: StepGuardContext): LoopGuard | undefined {
  const anyRule = deps.config.policy?.escalation !== undefined || [...ctx.agents.values()].some((m) => m.llm?.guardrails?.policy?.escalation !== undefined);
  if (!anyRule) return undefined;
  const cache = new Map<string, Rules>();
  const rulesOf = (agent: string): Rules => {
    let r = cache.get(agent);
    if (!r) {
      const spec = mergePolicy(deps.config.policy, ctx.agents.get(agent)?.llm?.guardrails?.policy).escalation ?? {};
      r = Object.fromEntries(Object.entries(spec).map(([rule, s]) => [rule, { count: s?.count ?? ESCALATION_DEFAULT_COUNT[rule as EscalationRule], action: s?.action ?? 'warn' }]));
      cache.set(agent, r);
    }
    return r;
  };

  /** Audit once per call and rule, and turn the action into the verdict. */
  const fire = async (t: GuardTurn & { call: ToolCall }, rule: EscalationRule, action: EscalationAction, why: string, canAsk = true): Promise<ToolCallGate | void> => {
    const first = firstTime(t.state, t.turn, `esc:${rule}:${t.call.id}`);
    if (first) await audit(deps, ctx, { guardrail: 'escalation', rule, action, tool: t.call.name, agent: t.agent.name, reason: why });
    if (action === 'stop') return { verdict: { action: 'stop', error: stopped(rule, why, t.agent.name, t.call.name) } };
    if (action === 'ask' && canAsk) return { verdict: { action: 'approve', reason: `escalation (${rule}): ${why}` } };
    if (first) t.tell(warning(rule, why));
  };

  return {
    beforeToolCall: async (t) => {
      const rules = rulesOf(t.agent.name);
      const c = counters(t.state);
      const tool = t.tool;
      const handoffTo = tool ? undefined : handoffTarget(t.agent, t.call.name);
      if (tool) {
        const r = rules.repeated_call;
        if (r) {
          const n = sameCalls(t.messages, t.call);
          if (n >= r.count) {
            const gate = await fire(t, 'repeated_call', r.action, `'${t.call.name}' was called with the same arguments ${n} times`);
            if (gate) return gate;
          }
        }
      } else if (handoffTo !== undefined) {
        const r = rules.handoff_cycle;
        if (r) {
          const n = returnsThrough(t.messages, t.agent.name, handoffTo);
          if (n >= r.count) {
            const gate = await fire(t, 'handoff_cycle', r.action, `the conversation went back from '${t.agent.name}' to '${handoffTo}' ${n} times (a handoff cycle)`);
            if (gate) return gate;
          }
        }
      } else {
        const r = rules.unknown_tools;
        if (r && c.unknown + 1 >= r.count) {
          const gate = await fire(t, 'unknown_tools', r.action, `${c.unknown + 1} calls of tools that do not exist (this one: '${t.call.name}')`);
          if (gate) return gate;
        }
      }
      const f = rules.tool_failures;
      if (f && f.action === 'ask' && c.fails >= f.count) {
        return fire(t, 'tool_failures', 'ask', `the last ${c.fails} tool results were errors`);
      }
    },

    onToolResult: async (t) => {
      // Replayed results count too, unless this turn's count already has them (a resume after a pause).
      if (!firstTime(t.state, t.turn, `esc:result:${t.call.id}`)) return;
      const c = counters(t.state);
      if (!t.tool && !t.result.handoff && t.result.is_error && handoffTarget(t.agent, t.call.name) === undefined) c.unknown++;
      if (t.result.handoff) return;
      c.fails = t.result.is_error ? c.fails + 1 : 0;
      const f = rulesOf(t.agent.name).tool_failures;
      if (f && f.action === 'warn' && c.fails === f.count) {
        const why = `the last ${c.fails} tool results were errors`;
        t.tell(warning('tool_failures', why));
        await audit(deps, ctx, { guardrail: 'escalation', rule: 'tool_failures', action: 'warn', tool: t.call.name, agent: t.agent.name, reason: why });
      }
    },

    beforeModelCall: async (t) => {
      const f = rulesOf(t.agent.name).tool_failures;
      const c = counters(t.state);
      if (f?.action !== 'stop' || c.fails < f.count) return;
      const why = `the last ${c.fails} tool results were errors`;
      await audit(deps, ctx, { guardrail: 'escalation', rule: 'tool_failures', action: 'stop', agent: t.agent.name, reason: why });
      throw stopped('tool_failures', why, t.agent.name);
    },
  };
}

function stopped(rule: EscalationRule, why: string, agent: string, tool?: string): LoopError {
  return new LoopError(ESCALATION_STOPPED, `escalation rule ${rule} stopped agent '${agent}': ${why} (guardrails.policy.escalation.${rule}.action: stop)`, { rule, agent, ...(tool ? { tool } : {}) });
}

function warning(rule: EscalationRule, why: string): string {
  return `Warning from the runtime (${rule}): ${why}. You seem to be going round in circles: change your approach, or answer with what you have.`;
}

function counters(state: GuardState): Counters {
  return ((state.escalation as Counters | undefined) ?? (state.escalation = { fails: 0, unknown: 0 }));
}

/** The agent a handoff tool of `agent` hands to, if `name` is one. */
function handoffTarget(agent: Agent, name: string): string | undefined {
  for (const h of agent.handoffs ?? []) {
    const target = typeof h === 'string' ? h : h.name;
    if (handoffToolName(target) === name) return target;
  }
  return undefined;
}

/** Calls of the same tool with the same arguments in the conversation (this one included). */
function sameCalls(messages: readonly Message[], call: ToolCall): number {
  const key = canonicalArgs(call.arguments);
  let n = 0;
  for (const m of messages) {
    if (m.role !== 'assistant' || !m.tool_calls) continue;
    for (const c of m.tool_calls) if (c.name === call.name && (c.arguments === call.arguments || canonicalArgs(c.arguments) === key)) n++;
  }
  return n;
}

function canonicalArgs(text: string): string {
  try {
    return JSON.stringify(sortKeys(JSON.parse(text)));
  } catch {
    return text;
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * How many times the handoff `from → to` returns to an agent already visited, this one included
 * (0 when `to` is new). The agents' path is read off the answers' senders.
 */
function returnsThrough(messages: readonly Message[], from: string, to: string): number {
  const visited = new Set<string>();
  let prev: string | undefined;
  let n = 0;
  for (const m of messages) {
    if (m.role !== 'assistant' || !m.sender || m.sender === prev) continue;
    if (prev !== undefined && prev === from && m.sender === to && visited.has(to)) n++;
    visited.add(m.sender);
    prev = m.sender;
  }
  visited.add(from);
  return visited.has(to) ? n + 1 : 0;
}
