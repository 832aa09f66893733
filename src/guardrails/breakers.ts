/**
 * Circuit breakers: per model (`model:<provider/model>`), tool (`tool:<name>`), MCP server
 * (`mcp:<server>`) and HTTP tool host (`http_host:<host>`). The state is shared by the workers of a
 * deployment through the store (`circuit_breakers`, migration 19); the state machine is circuit.ts.
 *
 * Cost: a closed breaker costs no write. Its row is read by primary key at most once per
 * `CACHE_MS` per process (a short in-process cache shared by every step of one Swarm instance), so
 * a busy worker pays almost nothing and another worker's discovery reaches it within `CACHE_MS`.
 * Only failures, probes and transitions write.
 *
 * On by default (5 failures in 60 s open a breaker for 30 s); `guardrails.breakers.enabled: false`
 * turns them off for a deployment or an agent.
 *
 * @example
 *   const guard = breakerGuard(deps, ctx);   // undefined when breakers are off for every agent
 */
import { StepError, errorMessage } from '../core/errors.js';
import { EventType } from '../core/events.js';
import { BREAKER_TARGETS, type BreakersSpec } from '../core/manifest/guardrails/breakers.js';
import { isModelCallError } from '../agents/providers/errors.js';
import type { Agent, Tool } from '../agents/agent.js';
import type { RecordedToolCall } from '../agents/loop.js';
import type { BreakerRow } from '../store/breaker-types.js';
import { claimProbe, cooldownOf, peek, recordOutcome, resolveBreaker, type CallOutcome, type ResolvedBreaker } from './circuit.js';
import type { LoopGuard, ModelCallGate, ModelCallOutcome, ToolCallGate } from './guard.js';
import type { GuardDeps, StepGuardContext } from './index.js';

/** How long a process serves a breaker's row from memory before reading it again. */
export const CACHE_MS = 250;

type TargetKind = keyof typeof BREAKER_TARGETS;

/** What one Swarm instance remembers of the breakers (shared by its steps). */
interface Shared {
  rows: Map<string, { row: BreakerRow | undefined; at: number }>;
  /** Closed-state successes not written yet (the failure rate's calls), by key. */
  successes: Map<string, number>;
}
const sharedOf = new WeakMap<GuardDeps, Shared>();

/** One breaker a call is checked against. */
interface Target {
  key: string;
  kind: string;
  name: string;
  settings: ResolvedBreaker;
}

/** The breakers of one step attempt; undefined when they are off for the step's agents. */
export function breakerGuard(deps: GuardDeps, ctx: StepGuardContext): LoopGuard | undefined {
  const dep = deps.config.breakers;
  const specOf = (agent: string): BreakersSpec | undefined => ctx.agents.get(agent)?.llm?.guardrails?.breakers;
  if (dep?.enabled === false && !hasEnabledTarget(dep) && ![...ctx.agents.keys()].some((a) => specOf(a)?.enabled === true || hasEnabledTarget(specOf(a)))) return undefined;
  let shared = sharedOf.get(deps);
  if (!shared) sharedOf.set(deps, (shared = { rows: new Map(), successes: new Map() }));
  const cache = shared;

  // A target's settings do not change while the step runs: resolved once per target and agent.
  const targets = new Map<string, Target>();
  const target = (kind: TargetKind, name: string, agent: string): Target => {
    const id = `${kind}\u0000${name}\u0000${agent}`;
    let t = targets.get(id);
    if (!t) {
      const own = specOf(agent);
      t = {
        key: `${BREAKER_TARGETS[kind]}:${name}`,
        kind: BREAKER_TARGETS[kind],
        name,
        settings: resolveBreaker(dep, dep?.[kind]?.[name], own, own?.[kind]?.[name]),
      };
      targets.set(id, t);
    }
    return t;
  };

  const remember = (key: string, row: BreakerRow | undefined): void => {
    cache.rows.set(key, { row, at: deps.now() });
  };

  const transitioned = async (t: Target, before: BreakerRow, after: BreakerRow, why: string): Promise<void> => {
    if (before.state === after.state) return;
    deps.metrics().circuitTransition(t.kind, t.name, after.state);
    const cooldown = cooldownOf(after, t.settings);
    await deps.recordEvents(ctx.runId, ctx.stepId, [
      {
        type: EventType.CIRCUIT_CHANGED,
        data: {
          breaker: t.key,
          kind: t.kind,
          name: t.name,
          from: before.state,
          to: after.state,
          reason: why,
          ...(after.state === 'open' ? { cooldown_ms: cooldown, retry_at: (after.opened_at ?? deps.now()) + cooldown } : {}),
        },
      },
    ]);
  };

  /**
   * The answer from this process's cache, without a turn of the event loop: a call that goes through
   * a breaker whose row was read less than CACHE_MS ago and lets it through (the usual case). Undefined
   * when the store must be asked (`admit`).
   */
  const admitCached = (t: Target): true | undefined => {
    const now = deps.now();
    const hit = cache.rows.get(t.key);
    return hit && now - hit.at < CACHE_MS && peek(hit.row, t.settings, now) === 'allow' ? true : undefined;
  };

  /** May a call go through? `probe`: it holds a half-open probe slot and must settle it. */
  const admit = async (t: Target): Promise<{ ok: boolean; probe: boolean; row: BreakerRow | undefined }> => {
    const now = deps.now();
    const hit = cache.rows.get(t.key);
    let row: BreakerRow | undefined;
    if (hit && now - hit.at < CACHE_MS) row = hit.row;
    else remember(t.key, (row = await deps.store.getBreaker(t.key)));
    const first = peek(row, t.settings, now);
    if (first !== 'claim') return { ok: first === 'allow', probe: false, row };
    let admitted = false;
    const { before, after } = await deps.store.updateBreaker(t.key, t.kind, (r) => {
      const c = claimProbe(r, t.settings, now);
      admitted = c.admitted;
      return c.row ?? r;
    });
    remember(t.key, after);
    await transitioned(t, before, after, 'cool-down over: probing');
    return { ok: admitted, probe: admitted && after.state === 'half_open', row: after };
  };

  // Synchronous for a success or a neutral outcome outside a probe (counted in memory); a failure or a probe's outcome is written.
  const record = (t: Target, outcome: CallOutcome, probe: boolean, why: string): Promise<void> | undefined => {
    if (!probe && outcome !== 'failure') {
      if (outcome === 'success' && t.settings.failure_rate) cache.successes.set(t.key, (cache.successes.get(t.key) ?? 0) + 1);
      return undefined;
    }
    return write(t, outcome, probe, why);
  };
  const write = async (t: Target, outcome: CallOutcome, probe: boolean, why: string): Promise<void> => {
    const pending = cache.successes.get(t.key) ?? 0;
    cache.successes.delete(t.key);
    const now = deps.now();
    const { before, after } = await deps.store.updateBreaker(t.key, t.kind, (r) => recordOutcome(r, t.settings, outcome, probe, pending, now));
    remember(t.key, after);
    await transitioned(t, before, after, why);
  };

  const refuse = (t: Target, row: BreakerRow | undefined, what: string): StepError => {
    deps.metrics().circuitRejected(t.kind, t.name);
    const retryAt = row?.opened_at !== null && row?.opened_at !== undefined ? row.opened_at + cooldownOf(row, t.settings) : undefined;
    const wait = retryAt !== undefined ? Math.max(0, retryAt - deps.now()) : undefined;
    return new StepError(
      'CIRCUIT_OPEN',
      `${what}: the circuit breaker '${t.key}' is ${row?.state === 'half_open' ? 'half-open (its probes are taken)' : 'open'}${wait !== undefined ? `; it lets a probe through in ${wait} ms` : ''}`,
      true,
      { breaker: t.key, state: row?.state ?? 'open', ...(retryAt !== undefined ? { retry_at: retryAt } : {}) },
    );
  };

  const modelGate = async (turn: Parameters<NonNullable<LoopGuard['beforeModelCall']>>[0], primary: Target): Promise<ModelCallGate | void> => {
      const a = await admit(primary);
      if (a.ok) return { settle: (o) => record(primary, modelOutcome(o), a.probe, describeOutcome(o)) };
      const fallbackRef = primary.settings.fallback;
      if (!fallbackRef) throw refuse(primary, a.row, `model ${turn.model.id} of agent '${turn.agent.name}'`);
      deps.metrics().circuitRejected(primary.kind, primary.name);
      const fb = target('models', fallbackRef, turn.agent.name);
      const b = fb.settings.enabled ? await admit(fb) : { ok: true, probe: false, row: undefined };
      if (!b.ok) throw refuse(fb, b.row, `model ${turn.model.id} of agent '${turn.agent.name}' (open) and its fallback ${fallbackRef}`);
      const model = await deps.modelFor(fallbackRef, turn.agent.name);
      return {
        model,
        request: { ...turn.request, model: model.id },
        ...(fb.settings.enabled ? { settle: (o: ModelCallOutcome) => record(fb, modelOutcome(o), b.probe, describeOutcome(o)) } : {}),
      };
  };

  const toolGate = async (turn: Parameters<NonNullable<LoopGuard['beforeToolCall']>>[0] & { tool: Tool }, targets: readonly Target[]): Promise<ToolCallGate> => {
      const admitted: Array<{ t: Target; probe: boolean }> = [];
      for (const t of targets) {
        const a = await admit(t);
        if (!a.ok) {
          // Probe slots taken for the other breakers of this call are given back.
          for (const p of admitted) if (p.probe) await record(p.t, 'neutral', true, 'call not made');
          return { verdict: { action: 'stop', error: refuse(t, a.row, `tool '${turn.tool.name}' of agent '${turn.agent.name}'`) } };
        }
        admitted.push({ t, probe: a.probe });
      }
      return {
        settle: async (r: RecordedToolCall) => {
          const o = toolOutcome(r);
          for (const p of admitted) await record(p.t, o, p.probe, o === 'failure' ? r.output.slice(0, 200) : o);
        },
        release: async () => {
          for (const p of admitted) if (p.probe) await record(p.t, 'neutral', true, 'call not made');
        },
      };
  };

  // Calls let through from the cache get their answer at once (no promise, no store); the rest ask the store.
  return {
    beforeModelCall: (turn) => {
      const primary = target('models', turn.model.id, turn.agent.name);
      if (!primary.settings.enabled) return undefined;
      if (admitCached(primary)) return { settle: (o) => record(primary, modelOutcome(o), false, describeOutcome(o)) };
      return modelGate(turn, primary);
    },
    beforeToolCall: (turn) => {
      const tool = turn.tool;
      if (!tool) return undefined;
      const targets = toolTargets(tool, turn.agent, target).filter((t) => t.settings.enabled);
      if (targets.length === 0) return undefined;
      if (targets.every((t) => admitCached(t))) {
        return {
          settle: (r: RecordedToolCall) => {
            const o = toolOutcome(r);
            // A success is counted in memory; a failure is written, breaker by breaker.
            if (o !== 'failure') {
              for (const t of targets) void record(t, o, false, o);
              return undefined;
            }
            return (async () => {
              for (const t of targets) await record(t, o, false, r.output.slice(0, 200));
            })();
          },
        };
      }
      return toolGate({ ...turn, tool }, targets);
    },
  };
}

function hasEnabledTarget(spec: BreakersSpec | undefined): boolean {
  if (!spec) return false;
  return (Object.keys(BREAKER_TARGETS) as TargetKind[]).some((k) => Object.values(spec[k] ?? {}).some((t) => t.enabled === true));
}

/** A tool's breakers: its own, and its MCP server's or HTTP host's (by `tool.origin`). */
function toolTargets(tool: Tool, agent: Agent, target: (kind: TargetKind, name: string, agent: string) => Target): Target[] {
  const out = [target('tools', tool.name, agent.name)];
  const o = tool.origin;
  if (o?.kind === 'mcp' && o.server) out.push(target('mcp', o.server, agent.name));
  else if (o?.kind === 'http' && o.host) out.push(target('http_hosts', o.host, agent.name));
  return out;
}

/**
 * A model call's outcome for its breaker: unavailability (5xx, 408, 429 after retries, a timeout,
 * no connection, an unusable answer) is a failure; an error the caller caused (400, 401, 404: a bad
 * request or key) or an abort counts nothing.
 */
export function modelOutcome(o: ModelCallOutcome): CallOutcome {
  if (o.ok) return 'success';
  const e = o.error;
  if (!isModelCallError(e)) return 'neutral';
  const s = e.status;
  if (s === undefined) return 'failure';
  return s >= 500 || s === 408 || s === 429 ? 'failure' : 'neutral';
}

/** A tool call's outcome: an execution error fails it, except an HTTP 4xx (not 408 or 429): the arguments' fault, not the host's. */
export function toolOutcome(r: RecordedToolCall): CallOutcome {
  if (!r.is_error) return 'success';
  const http = /failed: HTTP (\d{3})\b/.exec(r.output);
  if (http) {
    const s = Number(http[1]);
    return s >= 500 || s === 408 || s === 429 ? 'failure' : 'neutral';
  }
  return 'failure';
}

function describeOutcome(o: ModelCallOutcome): string {
  return o.ok ? 'call succeeded' : errorMessage(o.error).slice(0, 200);
}
