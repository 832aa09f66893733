/**
 * The guardrails' port into the agent loop. The loop knows one `LoopGuard`; budgets, circuit
 * breakers, the injection policy, escalation and redaction each implement the parts they need, and
 * `composeGuards` runs them in order. Every method is optional and synchronous-or-async; a guard
 * that throws stops the call (and the loop) with its error.
 *
 * Where each gate sits in one turn:
 *
 *   beforeModelCall → (model call) → settle(ok | error)          budgets reserve and settle, breakers
 *                                                                 check and record, redaction hides
 *                                                                 what the model must not see
 *   onAnswer                                                      output checks on the model's text
 *   beforeToolCall  → verdict allow | refuse | approve | stop     sensitive tools after untrusted
 *                   → (tool call) → settle(result)                content, loops, breakers, budgets
 *   onToolResult    → the result the model sees (and the journal  injection patterns, taint marking
 *                     records), also for replayed results
 *   onHandoff                                                     handoff depth, handoff cycles
 *   onEnd (the loop returned or threw)                            budgets settle their lease
 *
 * A guard's own small state (counters, taint) lives in `GuardState`, which the loop saves with each
 * checkpoint, so it survives a crash and a resume; anything shared by a deployment (budget usage,
 * breaker state) lives in the store.
 *
 * @example
 *   const guard = composeGuards([budgetGuard(...), breakerGuard(...)]);
 *   await run(agent, messages, { guard });
 */
import type { Agent, Tool } from '../agents/agent.js';
import type { ChatModel, Message, ModelRequest, ModelResponse, ToolCall, Usage } from '../agents/types.js';
import type { RecordedToolCall } from '../agents/loop.js';

/** Per-session guard state, saved with the loop's checkpoints (keep it small and JSON). */
export type GuardState = Record<string, unknown>;

/** Where untrusted content entered the conversation (see `markUntrusted`). */
export interface UntrustedSource {
  /** `tool`, `mcp`, `http`, `memory`, `fetch`, … */
  kind: string;
  /** The tool or namespace it came from. */
  name: string;
  turn: number;
}

/** What the loop tells a guard about the conversation, at any gate. */
export interface GuardTurn {
  agent: Agent;
  /** Model calls made so far in the session (the turn being prepared is `turn + 1`). */
  turn: number;
  sessionId: string;
  /** The conversation so far (read only). */
  messages: readonly Message[];
  /** This session's guard state (mutable; saved with the next checkpoint). */
  state: GuardState;
  /** Tell the model something before its next call (a continuation warning): added as a user message. */
  tell(text: string): void;
}

export type ModelCallOutcome = { ok: true; response: ModelResponse; usage: Usage } | { ok: false; error: unknown };

/** What a guard decides before a model call. */
export interface ModelCallGate {
  /** Call this model instead (a breaker's fallback). */
  model?: ChatModel;
  /** Send this request instead (what the model may see: redacted, sanitised). */
  request?: ModelRequest;
  /** After the call (also when it threw): settle a reservation, record a breaker's outcome. */
  settle?: (outcome: ModelCallOutcome) => void | Promise<void>;
}

export type ToolVerdict =
  /** Run the tool. */
  | { action: 'allow' }
  /** Do not run it; the model is told `output` (an error result). */
  | { action: 'refuse'; output: string }
  /** Pause for a human's approval first (as `needs_approval` does); `reason` goes with the request. */
  | { action: 'approve'; reason: string }
  /** Stop the loop with this error. */
  | { action: 'stop'; error: Error };

export interface ToolCallGate {
  verdict?: ToolVerdict;
  /** After the tool ran (not for refused or replayed calls). */
  settle?: (result: RecordedToolCall) => void | Promise<void>;
  /** The call will not run now (a later guard refused or stopped it, or it waits for a human): give back what was held (a breaker's probe slot). */
  release?: () => void | Promise<void>;
}

export interface LoopGuard {
  beforeModelCall?: (t: GuardTurn & { model: ChatModel; request: ModelRequest }) => ModelCallGate | void | Promise<ModelCallGate | void>;
  /** The model answered (with or without tool calls); may throw to stop the loop. */
  onAnswer?: (t: GuardTurn & { message: Message }) => void | Promise<void>;
  /** `tool` is undefined for an unknown tool or a handoff (there `allow` and `settle` do not apply); `args` when the arguments parsed. */
  beforeToolCall?: (t: GuardTurn & { call: ToolCall; tool: Tool | undefined; args: Record<string, unknown> | undefined }) => ToolCallGate | void | Promise<ToolCallGate | void>;
  /** A tool's result before the model sees it and the journal records it; `replayed` results were recorded before (already transformed). */
  onToolResult?: (t: GuardTurn & { call: ToolCall; tool: Tool | undefined; result: RecordedToolCall; replayed: boolean }) => RecordedToolCall | void | Promise<RecordedToolCall | void>;
  /** The conversation passes to another agent; `depth` counts handoffs in this session so far, this one included. */
  onHandoff?: (t: GuardTurn & { from: string; to: string; depth: number }) => void | Promise<void>;
  /** The loop returned or threw (after its last checkpoint): give back what is held for the session (a budget's lease). */
  onEnd?: (t: { state: GuardState }) => void | Promise<void>;
}

/** Run guards in order; the first to throw or to refuse wins. */
export function composeGuards(guards: ReadonlyArray<LoopGuard | undefined>): LoopGuard | undefined {
  const list = guards.filter((g): g is LoopGuard => g !== undefined);
  if (list.length === 0) return undefined;
  if (list.length === 1) return list[0];
  const models = list.filter((g) => g.beforeModelCall);
  const answers = list.filter((g) => g.onAnswer);
  const tools = list.filter((g) => g.beforeToolCall);
  const results = list.filter((g) => g.onToolResult);
  const handoffs = list.filter((g) => g.onHandoff);
  const ends = list.filter((g) => g.onEnd);
  const out: LoopGuard = {};
  if (models.length) {
    out.beforeModelCall = async (t) => {
      let model = t.model;
      let request = t.request;
      const settles: Array<NonNullable<ModelCallGate['settle']>> = [];
      try {
        for (const g of models) {
          // A copy of the turn only once an earlier guard changed the model or the request.
          // Awaited only when a promise: a synchronous guard (the model view) costs no turn of the microtask queue.
          const answer = g.beforeModelCall?.(model === t.model && request === t.request ? t : { ...t, model, request });
          const gate = answer instanceof Promise ? await answer : answer;
          if (!gate) continue;
          if (gate.model) model = gate.model;
          if (gate.request) request = gate.request;
          if (gate.settle) settles.push(gate.settle);
        }
      } catch (e) {
        // A later guard refused: earlier reservations are released.
        for (const s of settles) await s({ ok: false, error: e });
        throw e;
      }
      return {
        ...(model !== t.model ? { model } : {}),
        ...(request !== t.request ? { request } : {}),
        ...(settles.length ? { settle: settles.length === 1 ? settles[0] : async (o: ModelCallOutcome) => { for (const s of settles) { const done = s(o); if (done instanceof Promise) await done; } } } : {}),
      };
    };
  }
  if (answers.length) out.onAnswer = async (t) => { for (const g of answers) await g.onAnswer?.(t); };
  if (tools.length) {
    out.beforeToolCall = async (t) => {
      // Made only when a guard holds something (most calls: one settle, no release).
      let settles: Array<NonNullable<ToolCallGate['settle']>> | undefined;
      let releases: Array<NonNullable<ToolCallGate['release']>> | undefined;
      const held = (): ToolCallGate => ({ ...(settles ? { settle: settles.length === 1 ? settles[0] : all(settles) } : {}), ...(releases ? { release: releaseAll(releases) } : {}) });
      for (const g of tools) {
        const answer = g.beforeToolCall?.(t);
        const gate = answer instanceof Promise ? await answer : answer;
        if (!gate) continue;
        if (gate.settle) (settles ??= []).push(gate.settle);
        if (gate.release) (releases ??= []).push(gate.release);
        if (gate.verdict && gate.verdict.action !== 'allow') {
          // An approved call runs after all: the earlier guards (a breaker's probe, a budget) must hear how it went.
          if (gate.verdict.action === 'approve') return { verdict: gate.verdict, ...held() };
          // Refused or stopped: the call is not made, so what the earlier guards held is given back.
          if (releases) await releaseAll(releases)();
          return { verdict: gate.verdict };
        }
      }
      return settles || releases ? held() : undefined;
    };
  }
  if (results.length) {
    out.onToolResult = async (t) => {
      let result = t.result;
      for (const g of results) result = (await g.onToolResult?.(result === t.result ? t : { ...t, result })) ?? result;
      return result;
    };
  }
  if (handoffs.length) out.onHandoff = async (t) => { for (const g of handoffs) await g.onHandoff?.(t); };
  if (ends.length) out.onEnd = async (t) => { for (const g of ends) await g.onEnd?.(t); };
  return out;
}

function releaseAll(releases: ReadonlyArray<NonNullable<ToolCallGate['release']>>): NonNullable<ToolCallGate['release']> {
  return async () => {
    for (const r of releases) await r();
  };
}

function all(settles: ReadonlyArray<NonNullable<ToolCallGate['settle']>>): NonNullable<ToolCallGate['settle']> {
  return async (r) => {
    for (const s of settles) {
      const done = s(r);
      if (done instanceof Promise) await done;
    }
  };
}

/** Record that untrusted content entered the conversation (tool results, fetched pages, MCP resources, memory). */
export function markUntrusted(state: GuardState, source: UntrustedSource): void {
  const list = (state.untrusted as UntrustedSource[] | undefined) ?? [];
  if (!list.some((s) => s.kind === source.kind && s.name === source.name)) state.untrusted = [...list, source];
}

/** The untrusted sources in the conversation so far (empty: everything in the context is trusted). */
export function untrustedSources(state: GuardState): readonly UntrustedSource[] {
  return (state.untrusted as UntrustedSource[] | undefined) ?? [];
}
