/**
 * The Swarm loop: call the model, run the tools it asks for, hand off when a tool returns an agent,
 * repeat until the model answers without tool calls. Durable per turn: every model response and every
 * tool result goes to the journal before the loop moves on, and a resumed loop re-uses them, so a
 * finished tool call is never executed again (the journal is an exactly-once ledger keyed by the
 * model's tool-call id).
 */
import { ExecutionError, ResumeError } from '../core/errors.js';
import { handoffToolName, isAgent, isToolResult, type Agent, type ContextVariables, type Tool, type ToolContext } from './agent.js';
import { addUsage, ZERO_USAGE, type ChatModel, type JsonSchema, type Message, type ModelRequest, type ModelResponse, type StreamDelta, type ToolCall, type ToolSchema, type Usage } from './types.js';
import { validateAgainst } from '../core/io-schema.js';
import { byteLength, formatBytes, LIMIT_DEFAULTS, LimitExceededError } from '../core/limits.js';
import { validateToolArguments } from './tools/validate.js';
import { traceAgentLoop, traceChat, traceTool } from './loop-trace.js';
import { activeTraceContext, addSpanEvent, runInContext, type Context } from '../observability/tracing.js';
import { timedModelCall, timedToolCall, type EngineMetrics } from '../observability/engine-metrics.js';
import type { GuardState, GuardTurn, LoopGuard, ModelCallGate, ToolCallGate } from '../guardrails/guard.js';

/** The version of the checkpoint envelope this code writes; older versions are read by `upgradeEnvelope`. */
export const CHECKPOINT_VERSION = 1;

/** The loop's state at a turn boundary, as saved in the journal. */
export interface CheckpointEnvelope {
  version: number;
  session_id: string;
  created_at: number;
  payload: {
    /** The agent whose turn it is. */
    agent: string;
    /** Model calls made so far in this session. */
    turn: number;
    /** `turn` when this loop started (a continued chat carries its turns on): max_turns counts from here. */
    turn_base?: number;
    /** Versions of the agents the session uses (pinned, so a resumed session keeps them). */
    agent_versions?: Record<string, string>;
    /** The whole conversation: the input messages, then everything the loop added. */
    messages: Message[];
    /** How many of `messages` were the loop's input. */
    input_count: number;
    context_variables: ContextVariables;
    /** Tool calls of the last model response whose results are not all in `messages` yet. */
    pending_tool_calls: ToolCall[];
    usage: Usage;
    /** `running`: mid-loop; `waiting`: paused for approvals; `completed`: the model answered. */
    status: 'running' | 'waiting' | 'completed';
    /** Structured-output retries used in the current answer. */
    output_retries: number;
    /** Turns in a row whose tool calls were all malformed (unknown tool, arguments not matching). */
    invalid_tool_turns?: number;
    /** Handoffs made in this session so far. */
    handoffs?: number;
    /** The guardrails' own state (taint, counters): see src/guardrails/guard.ts. */
    guard?: GuardState;
    /** Guardrail warnings not yet told to the model (they become user messages before the next model call). */
    notes?: string[];
  };
}

/** A tool call's outcome, recorded once. */
export interface RecordedToolCall {
  /** The turn (model call) that asked for it: with `call_id`, the ledger's key. */
  turn: number;
  call_id: string;
  name: string;
  arguments: string;
  /** What the model is told. */
  output: string;
  is_error: boolean;
  /** The agent the tool handed off to. */
  handoff?: string;
  /** Context variables the tool set. */
  context_variables?: ContextVariables;
}

export type ApprovalDecision = { decision: 'approved' } | { decision: 'rejected'; reason: string };

/**
 * Where the loop keeps its state. The store implements it per session (SQLite and PostgreSQL);
 * `memoryJournal()` keeps it in memory (no durability).
 */
export interface LoopJournal {
  readonly sessionId: string;
  /** The last checkpoint of this session, if any. */
  load(): Promise<CheckpointEnvelope | undefined>;
  /** Save a checkpoint; `newMessages` join the session's transcript in the same commit. */
  checkpoint(envelope: CheckpointEnvelope, newMessages: readonly Message[]): Promise<void>;
  /** The recorded outcome of a tool call of a turn, if it finished before. */
  toolResult(turn: number, callId: string): Promise<RecordedToolCall | undefined>;
  /** Record a tool call's outcome (the first record of a call id wins). */
  recordTool(rec: RecordedToolCall): Promise<void>;
  /** A human's decision on a tool call that needs approval. */
  approval(callId: string): Promise<ApprovalDecision | undefined>;
}

/** Hook points before and after each model call and each tool call (budgets and guardrails plug in here). Throwing stops the loop. */
export interface LoopHooks {
  beforeModelCall?(e: { agent: Agent; turn: number; request: ModelRequest }): void | Promise<void>;
  afterModelCall?(e: { agent: Agent; turn: number; response: ModelResponse; usage: Usage; replayed: boolean }): void | Promise<void>;
  beforeToolCall?(e: { agent: Agent; turn: number; call: ToolCall; args: Record<string, unknown> }): void | Promise<void>;
  afterToolCall?(e: { agent: Agent; turn: number; call: ToolCall; result: RecordedToolCall; replayed: boolean }): void | Promise<void>;
}

/** What the loop reports as it goes (streamed text, tool calls, handoffs). */
export type LoopEvent =
  | { type: 'delta'; agent: string; text: string }
  | { type: 'message'; agent: string; message: Message }
  | { type: 'tool_call'; agent: string; call: ToolCall }
  | { type: 'tool_result'; agent: string; result: RecordedToolCall; replayed: boolean }
  | { type: 'handoff'; from: string; to: string }
  | { type: 'waiting'; agent: string; calls: ToolCall[] };

export interface RunOptions {
  contextVariables?: ContextVariables;
  /** Stop after this many model calls (default 10). */
  maxTurns?: number;
  /** false: return the first tool calls unexecuted (in the last assistant message). Default true. */
  executeTools?: boolean;
  /** Stream text (model deltas reach `onEvent`). */
  stream?: boolean;
  onEvent?: (e: LoopEvent) => void;
  /** Absolute deadline (ms since epoch): no model or tool call starts after it. */
  deadline?: number;
  signal?: AbortSignal;
  /** Where checkpoints go; default in memory. */
  journal?: LoopJournal;
  /** The model for agents that name one by string (`provider/model`), or have none. */
  resolveModel?: (ref: string | undefined, agent: Agent) => ChatModel;
  /** Agents named by string in `handoffs`, and the current agent on resume. */
  resolveAgent?: (name: string) => Agent | undefined;
  hooks?: LoopHooks;
  /** Budgets, circuit breakers, the injection policy, escalation and redaction (src/guardrails/). */
  guard?: LoopGuard;
  /** Model calls, tokens, cost and tool calls into the metrics (src/observability/engine-metrics.ts); default none. */
  metrics?: EngineMetrics;
  /** Cost of a model call (default 0). */
  costOf?: (model: ChatModel, usage: { input_tokens: number; output_tokens: number }) => number;
  /**
   * Structured output that does not parse or match is sent back this many times, then the loop fails;
   * so are turns whose tool calls are all malformed (default 2).
   */
  maxOutputRetries?: number;
  /** Ties `<session>/<call>` idempotency keys to something stable (default the session id). */
  idempotencyPrefix?: string;
  /** A rejected approval: `stop` the loop with APPROVAL_REJECTED (default, as a workflow step does), or `tell_model` it was rejected. */
  onRejected?: 'stop' | 'tell_model';
  /**
   * Continue a session whose earlier loops ended (a chat's next message): the usage and turns so far
   * carry on, and the first `persistedMessages` input messages are already in the transcript.
   */
  continueFrom?: { usage: Usage; turn: number; persistedMessages: number };
  /** Recorded in a new session's checkpoints (`agent_versions`): the versions of the agents it uses. */
  agentVersions?: Record<string, string>;
  /**
   * The largest message, in UTF-8 bytes (`limits.llm_message_bytes`, default 1 MiB): a larger input
   * message or model answer fails the loop; a larger tool result reaches the model as an error.
   */
  maxMessageBytes?: number;
  /**
   * With tracing on, the parent of the loop's `invoke_agent` span (a step attempt's span context).
   * Default: a trace of its own.
   */
  traceContext?: Context;
}

export interface RunResult {
  /** `completed`: the model answered; `waiting`: paused for approvals; `max_turns`; `tools_pending`: executeTools false. */
  status: 'completed' | 'waiting' | 'max_turns' | 'tools_pending';
  /** The messages the loop added (not the input). */
  messages: Message[];
  /** The agent that answered last. */
  agent: Agent;
  contextVariables: ContextVariables;
  /** The final text (null when the loop did not end with an answer). */
  content: string | null;
  /** The final answer parsed against the agent's output schema, when it has one. */
  output?: unknown;
  usage: Usage;
  turns: number;
  /** Tool calls waiting for a human's decision (status `waiting`). */
  waitingFor?: ToolCall[];
  /** Why a guardrail asked for a call's approval, by call id (calls paused by `needs_approval` have none). */
  approvalReasons?: Record<string, string>;
  sessionId: string;
}

/** The loop stopped: a deadline, a rejected approval, an answer that never matched its schema. Exit 4. */
export class LoopError extends ExecutionError {}

const CONTEXT_PARAM = 'context_variables';
/** The signal tools get when the loop has none. */
const NEVER_ABORTED = new AbortController().signal;

/** Run an agent on messages to completion (or to a pause). Resumes from the journal's checkpoint when it has one. */
export async function run(start: Agent, messages: readonly Message[], options: RunOptions = {}): Promise<RunResult> {
  // A caller's active span is the parent when no context is given (a program with a context manager).
  return traceAgentLoop(start.name, options.journal?.sessionId, options.traceContext ?? activeTraceContext(), async (ctx) => {
    // Within the loop, traceContext is the loop's own span: its model and tool calls are children of it.
    if (ctx) options = { ...options, traceContext: ctx };
    const onEnd = options.guard?.onEnd;
    if (!onEnd) return runLoop(start, messages, options);
    const ended: { state?: GuardState; done?: boolean } = {};
    let r: RunResult;
    try {
      r = await runLoop(start, messages, options, ended);
    } catch (e) {
      // The loop's own error is the one to report; what the guard could not give back expires.
      if (ended.state && !ended.done) await Promise.resolve(onEnd({ state: ended.state })).catch(() => undefined);
      throw e;
    }
    if (ended.state && !ended.done) await onEnd({ state: ended.state });
    return r;
  });
}

async function runLoop(start: Agent, messages: readonly Message[], options: RunOptions, ended?: { state?: GuardState; done?: boolean }): Promise<RunResult> {
  const journal = options.journal ?? memoryJournal();
  const maxTurns = options.maxTurns ?? 10;
  const executeTools = options.executeTools ?? true;
  const emit = options.onEvent ?? (() => undefined);
  const maxOutputRetries = options.maxOutputRetries ?? 2;
  const maxMessageBytes = options.maxMessageBytes ?? LIMIT_DEFAULTS.llm_message_bytes;
  const agents = new Map<string, Agent>();
  const know = (a: Agent): Agent => {
    const had = agents.get(a.name);
    if (!had) agents.set(a.name, a);
    return had ?? a;
  };
  // Every agent reachable through handoffs is known by name (a resumed session may be with any of them).
  const reach = (a: Agent): void => {
    if (agents.has(a.name)) return;
    know(a);
    for (const h of a.handoffs ?? []) if (typeof h !== 'string') reach(h);
  };
  reach(start);
  const lookup = (name: string): Agent => {
    const a = agents.get(name) ?? options.resolveAgent?.(name);
    if (!a) throw new LoopError('AGENT_NOT_FOUND', `agent '${name}' is not known (not registered, or not reachable through handoffs)`, { agent: name });
    return know(a);
  };

  // ---- state: fresh, or from the journal ----
  const saved = await journal.load();
  let state: CheckpointEnvelope['payload'];
  if (saved) {
    state = upgradeEnvelope(saved).payload;
    // The agents of the conversation must still exist.
    for (const name of new Set([state.agent, ...state.messages.flatMap((m) => (m.role === 'assistant' && m.sender ? [m.sender] : []))])) {
      if (!agents.has(name) && !options.resolveAgent?.(name)) {
        throw new ResumeError('CHECKPOINT_AGENT_MISSING', `session ${journal.sessionId} cannot resume: its agent '${name}' no longer exists`, { session: journal.sessionId, agent: name });
      }
    }
  } else {
    messages.forEach((m, i) => {
      const size = messageBytes(m);
      if (size > maxMessageBytes) throw new LimitExceededError(`message ${i + 1} (${m.role}) of the conversation`, 'llm_message_bytes', maxMessageBytes, size);
    });
    const from = options.continueFrom;
    state = {
      agent: start.name,
      turn: from?.turn ?? 0,
      turn_base: from?.turn ?? 0,
      messages: [...messages],
      input_count: messages.length,
      context_variables: { ...(options.contextVariables ?? {}) },
      pending_tool_calls: [],
      usage: from ? { ...from.usage } : { ...ZERO_USAGE },
      status: 'running',
      output_retries: 0,
      ...(options.agentVersions ? { agent_versions: options.agentVersions } : {}),
    };
  }
  if (ended) ended.state = state.guard ??= {};
  let persistedCount = saved ? state.messages.length : Math.min(options.continueFrom?.persistedMessages ?? 0, state.messages.length);
  const save = async (): Promise<void> => {
    const env: CheckpointEnvelope = { version: CHECKPOINT_VERSION, session_id: journal.sessionId, created_at: Date.now(), payload: state };
    await journal.checkpoint(env, state.messages.slice(persistedCount));
    persistedCount = state.messages.length;
  };
  // The last checkpoint before a return, with the guards' onEnd beside it: on SQLite both join one group commit.
  const saveLast = async (): Promise<void> => {
    const onEnd = options.guard?.onEnd;
    if (!ended?.state || !onEnd) return save();
    ended.done = true;
    await Promise.all([save(), onEnd({ state: ended.state })]);
  };
  const result = (status: RunResult['status'], extra: Partial<RunResult> = {}): RunResult => {
    const last = state.messages.at(-1);
    const content = status === 'completed' && last?.role === 'assistant' ? last.content : null;
    return {
      status,
      messages: state.messages.slice(state.input_count),
      agent: lookup(state.agent),
      contextVariables: state.context_variables,
      content,
      usage: state.usage,
      turns: state.turn - (state.turn_base ?? 0),
      sessionId: journal.sessionId,
      ...extra,
    };
  };
  const guard = options.guard;
  const turnOf = (agent: Agent): GuardTurn => ({
    agent,
    turn: state.turn,
    sessionId: journal.sessionId,
    messages: state.messages,
    state: (state.guard ??= {}),
    tell: (text) => void (state.notes ??= []).push(text),
  });
  const checkDeadline = (what: string): void => {
    options.signal?.throwIfAborted();
    if (options.deadline !== undefined && Date.now() >= options.deadline) throw new LoopError('DEADLINE_EXCEEDED', `the agent loop passed its deadline before ${what}`, { turn: state.turn });
  };

  if (state.status === 'completed') {
    const a = lookup(state.agent);
    const parsed = a.outputSchema ? parseOutput(state.messages.at(-1), a.outputSchema) : undefined;
    return result('completed', parsed?.ok ? { output: parsed.value } : {});
  }

  for (;;) {
    const current = lookup(state.agent);
    const tools = toolsOf(current, lookup);

    // ---- tool calls of the last response (pending after a crash or an approval pause) ----
    if (state.pending_tool_calls.length > 0) {
      if (!executeTools) return result('tools_pending');
      const calls = state.pending_tool_calls;
      const reasons = new Map<string, string>();
      const outcomes = await Promise.all(calls.map((call) => runTool(call, current, tools, state, journal, options, emit, checkDeadline, know, guard ? turnOf(current) : undefined, reasons)));
      const waiting = calls.filter((_, i) => outcomes[i] === 'waiting');
      if (waiting.length > 0) {
        if (state.status !== 'waiting') {
          state.status = 'waiting';
          await saveLast();
        }
        emit({ type: 'waiting', agent: current.name, calls: waiting });
        return result('waiting', { waitingFor: waiting, ...(reasons.size ? { approvalReasons: Object.fromEntries(reasons) } : {}) });
      }
      // A model that keeps calling tools wrongly is told each time, a bounded number of times.
      const results = outcomes as RecordedToolCall[];
      state.invalid_tool_turns = results.every(isInvalidCall) ? (state.invalid_tool_turns ?? 0) + 1 : 0;
      if (state.invalid_tool_turns > maxOutputRetries) {
        throw new LoopError('TOOL_CALLS_INVALID', `agent '${current.name}' made only malformed tool calls ${state.invalid_tool_turns} turns in a row: ${results.map((r) => r.output).join(' | ')}`, { agent: current.name });
      }
      // Every call has a result: apply them in call order (results keep call order; the last handoff wins).
      let handoff: string | undefined;
      for (const r of outcomes as RecordedToolCall[]) {
        state.messages.push({ role: 'tool', tool_call_id: r.call_id, name: r.name, content: r.output });
        if (r.context_variables) state.context_variables = { ...state.context_variables, ...r.context_variables };
        if (r.handoff) handoff = r.handoff;
      }
      state.pending_tool_calls = [];
      state.status = 'running';
      if (handoff && handoff !== current.name) {
        lookup(handoff);
        state.handoffs = (state.handoffs ?? 0) + 1;
        await guard?.onHandoff?.({ ...turnOf(current), from: current.name, to: handoff, depth: state.handoffs });
        emit({ type: 'handoff', from: current.name, to: handoff });
        addSpanEvent(options.traceContext, 'swarm.handoff', () => ({ 'swarm.handoff.from': current.name, 'swarm.handoff.to': handoff }));
        state.agent = handoff;
      }
      continue;
    }

    if (state.turn - (state.turn_base ?? 0) >= maxTurns) {
      await saveLast();
      return result('max_turns');
    }

    // ---- one model call ----
    checkDeadline('a model call');
    const agentNow = lookup(state.agent);
    // Guardrail warnings reach the model as a user turn before its next call.
    if (state.notes?.length) {
      for (const text of state.notes) state.messages.push({ role: 'user', content: text });
      state.notes = [];
    }
    let model = resolveModelOf(agentNow, options);
    let request: ModelRequest = {
      model: model.id,
      system: typeof agentNow.instructions === 'function' ? agentNow.instructions(state.context_variables) : (agentNow.instructions ?? 'You are a helpful agent.'),
      // A copy: a model (or a test) that keeps the request must not see later turns appear in it.
      messages: state.messages.slice(),
      tools: tools.schemas,
      ...(agentNow.outputSchema ? { outputSchema: agentNow.outputSchema } : {}),
      ...(agentNow.parallelToolCalls !== undefined ? { parallelToolCalls: agentNow.parallelToolCalls } : {}),
      ...(agentNow.temperature !== undefined ? { temperature: agentNow.temperature } : {}),
      ...(agentNow.maxOutputTokens !== undefined ? { maxOutputTokens: agentNow.maxOutputTokens } : {}),
    };
    await options.hooks?.beforeModelCall?.({ agent: agentNow, turn: state.turn, request });
    let gate: ModelCallGate | void = undefined;
    if (guard?.beforeModelCall) {
      gate = await guard.beforeModelCall({ ...turnOf(agentNow), model, request });
      if (gate?.model) model = gate.model;
      if (gate?.request) request = gate.request;
    }
    const called = model;
    const sent = request;
    let response: ModelResponse;
    try {
      response = await traceChat(called, sent, agentNow.name, journal.sessionId, options.traceContext, (chatCtx) =>
        timedModelCall(
          options.metrics,
          called.id,
          // The chat span made active for the provider's client (a program's HTTP instrumentation nests under it).
          runInContext(chatCtx, () =>
            called.generate(sent, {
              ...(options.signal ? { signal: options.signal } : {}),
              ...(options.stream ? { onDelta: (d: StreamDelta) => d.type === 'text' && emit({ type: 'delta', agent: agentNow.name, text: d.text }) } : {}),
            }),
          ),
        ),
      );
    } catch (e) {
      await gate?.settle?.({ ok: false, error: e });
      throw e;
    }
    const usage: Usage = { ...response.usage, cost_usd: options.costOf?.(called, response.usage) ?? 0 };
    await gate?.settle?.({ ok: true, response, usage });
    options.metrics?.modelUsage(called.id, usage);
    state.usage = addUsage(state.usage, usage);
    state.turn++;
    await options.hooks?.afterModelCall?.({ agent: agentNow, turn: state.turn, response, usage, replayed: false });

    const assistant: Message = {
      role: 'assistant',
      content: response.content,
      sender: agentNow.name,
      usage,
      ...(response.toolCalls.length ? { tool_calls: response.toolCalls.map((c, i) => ({ ...c, id: c.id || `call_${state.turn}_${i}` })) } : {}),
    };
    const answerBytes = messageBytes(assistant);
    if (answerBytes > maxMessageBytes) throw new LimitExceededError(`the answer of agent '${agentNow.name}' (turn ${state.turn})`, 'llm_message_bytes', maxMessageBytes, answerBytes);
    state.messages.push(assistant);
    emit({ type: 'message', agent: agentNow.name, message: assistant });
    await guard?.onAnswer?.({ ...turnOf(agentNow), message: assistant });

    if (assistant.tool_calls?.length) {
      for (const call of assistant.tool_calls) emit({ type: 'tool_call', agent: agentNow.name, call });
      state.pending_tool_calls = assistant.tool_calls;
      state.output_retries = 0;
      await save(); // the model's response is durable before any tool runs
      if (!executeTools) return result('tools_pending');
      continue;
    }

    // ---- an answer ----
    if (agentNow.outputSchema) {
      const parsed = parseOutput(assistant, agentNow.outputSchema);
      if (!parsed.ok) {
        if (state.output_retries >= maxOutputRetries) {
          await save();
          throw new LoopError('OUTPUT_SCHEMA_MISMATCH', `agent '${agentNow.name}': the answer does not match its output schema after ${maxOutputRetries} retries: ${parsed.message}`, { agent: agentNow.name });
        }
        state.output_retries++;
        state.messages.push({ role: 'user', content: `Your answer is not valid: ${parsed.message}. Reply again with only a JSON value matching the required schema.` });
        await save();
        continue;
      }
      state.status = 'completed';
      await saveLast();
      return result('completed', { output: parsed.value });
    }
    state.status = 'completed';
    await saveLast();
    return result('completed');
  }
}

// ---- tools ----

interface AgentTools {
  byName: Map<string, { tool?: Tool; handoff?: Agent }>;
  schemas: ToolSchema[];
}

const toolCache = new WeakMap<Agent, AgentTools>();

function toolsOf(a: Agent, lookup: (name: string) => Agent): AgentTools {
  const hit = toolCache.get(a);
  if (hit) return hit;
  const byName = new Map<string, { tool?: Tool; handoff?: Agent }>();
  const schemas: ToolSchema[] = [];
  for (const t of a.tools ?? []) {
    byName.set(t.name, { tool: t });
    schemas.push({ name: t.name, description: t.description, parameters: hideContextParam(t.parameters) });
  }
  for (const h of a.handoffs ?? []) {
    const target = typeof h === 'string' ? lookup(h) : h;
    const name = handoffToolName(target.name);
    byName.set(name, { handoff: target });
    schemas.push({ name, description: `Hand the conversation over to the agent '${target.name}'.`, parameters: { type: 'object', properties: {}, additionalProperties: false } });
  }
  const out = { byName, schemas };
  toolCache.set(a, out);
  return out;
}

/** The schema the model sees: without the `context_variables` parameter Swarm fills in. */
function hideContextParam(schema: JsonSchema): JsonSchema {
  const props = schema.properties as Record<string, unknown> | undefined;
  if (!props || !(CONTEXT_PARAM in props)) return schema;
  const { [CONTEXT_PARAM]: _hidden, ...rest } = props;
  const required = Array.isArray(schema.required) ? (schema.required as string[]).filter((r) => r !== CONTEXT_PARAM) : undefined;
  return { ...schema, properties: rest, ...(required ? { required } : {}) };
}

/** Run one tool call, or re-use its recorded result. Returns 'waiting' when it needs a decision not yet made. */
async function runTool(
  call: ToolCall,
  current: Agent,
  tools: AgentTools,
  state: CheckpointEnvelope['payload'],
  journal: LoopJournal,
  options: RunOptions,
  emit: (e: LoopEvent) => void,
  checkDeadline: (what: string) => void,
  know: (a: Agent) => Agent,
  turn: GuardTurn | undefined,
  reasons: Map<string, string>,
): Promise<RecordedToolCall | 'waiting'> {
  const guard = options.guard;
  const recorded = await journal.toolResult(state.turn, call.id);
  if (recorded) {
    // Replayed: recorded after the guards transformed it; they see it again (taint, counters), and may not change it.
    if (guard?.onToolResult && turn) await guard.onToolResult({ ...turn, call, tool: tools.byName.get(call.name)?.tool, result: recorded, replayed: true });
    emit({ type: 'tool_result', agent: current.name, result: recorded, replayed: true });
    await options.hooks?.afterToolCall?.({ agent: current, turn: state.turn, call, result: recorded, replayed: true });
    return recorded;
  }
  const base = { turn: state.turn, call_id: call.id, name: call.name, arguments: call.arguments };
  const fail = (output: string): RecordedToolCall => ({ ...base, output, is_error: true });
  const entry = tools.byName.get(call.name);
  let rec: RecordedToolCall;
  let toolGate: ToolCallGate | void = undefined;
  if (guard?.beforeToolCall && turn && (!entry || entry.handoff)) {
    // Unknown tools and handoffs: the guards count them (escalation) and may stop, refuse or ask a human.
    toolGate = await guard.beforeToolCall({ ...turn, call, tool: undefined, args: undefined });
    if (toolGate?.verdict?.action === 'stop') throw toolGate.verdict.error;
  }
  if (toolGate?.verdict?.action === 'approve') {
    // An escalation asks a human before an unknown tool's error or a handoff goes on.
    reasons.set(call.id, toolGate.verdict.reason);
    const decided = await decideApproval(call, call.name, journal, options, emit, current, fail);
    if (decided !== undefined) return decided;
  }
  if (toolGate?.verdict?.action === 'refuse') {
    rec = fail(toolGate.verdict.output);
  } else if (!entry) {
    const known = [...tools.byName.keys()];
    rec = fail(`${UNKNOWN_TOOL}'${call.name}'. Available tools: ${known.length ? known.join(', ') : '(none)'}.`);
  } else if (entry.handoff) {
    know(entry.handoff);
    rec = { ...base, output: JSON.stringify({ assistant: entry.handoff.name }), is_error: false, handoff: entry.handoff.name };
  } else {
    const t = entry.tool as Tool;
    const parsed = parseArguments(call.arguments, t);
    if (parsed.ok && guard?.beforeToolCall && turn) toolGate = await guard.beforeToolCall({ ...turn, call, tool: t, args: parsed.value });
    const verdict = toolGate?.verdict;
    if (verdict?.action === 'stop') throw verdict.error;
    if (!parsed.ok) {
      rec = fail(`${INVALID_ARGUMENTS}'${t.name}': ${parsed.message}`);
    } else if (verdict?.action === 'refuse') {
      rec = fail(verdict.output);
    } else {
      if (t.needsApproval || verdict?.action === 'approve') {
        if (verdict?.action === 'approve') reasons.set(call.id, verdict.reason);
        const decided = await decideApproval(call, t.name, journal, options, emit, current, fail);
        if (decided !== undefined) {
          // Not run now: a breaker's probe slot is not held while a human decides.
          await toolGate?.release?.();
          return decided;
        }
      }
      if (call.arguments_redacted) {
        // Made with the placeholders it would e-mail `[EMAIL]`, charge `****1111`: it is not made at all.
        throw new LoopError(
          'TOOL_ARGUMENTS_REDACTED',
          `tool call '${t.name}' (${call.id}) was not made: its arguments were stored redacted (${call.arguments}) while it waited, and the values the model gave are not kept; allow their data class for storage (guardrails.redaction) to make such calls after an approval or a restart`,
          { tool: t.name, call_id: call.id },
        );
      }
      checkDeadline(`tool '${t.name}'`);
      const args = parsed.value;
      if (CONTEXT_PARAM in ((t.parameters.properties as Record<string, unknown> | undefined) ?? {})) args[CONTEXT_PARAM] = { ...state.context_variables };
      await options.hooks?.beforeToolCall?.({ agent: current, turn: state.turn, call, args });
      rec = await traceTool(call, current.name, journal.sessionId, options.traceContext, (toolCtx) => timedToolCall(options.metrics, t.name, executeTool(t, args, call, current, state, journal, options, know, toolCtx)));
      await toolGate?.settle?.(rec);
    }
  }
  if (guard?.onToolResult && turn) rec = (await guard.onToolResult({ ...turn, call, tool: entry?.tool, result: rec, replayed: false })) ?? rec;
  const max = options.maxMessageBytes ?? LIMIT_DEFAULTS.llm_message_bytes;
  const size = byteLength(rec.output);
  if (size > max) {
    // Told to the model, which can ask for less (a narrower query, a smaller page).
    rec = { ...rec, output: `Error: the result of tool '${call.name}' is ${formatBytes(size)} bytes; limits.llm_message_bytes is ${formatBytes(max)}. Ask for less.`, is_error: true };
  }
  await journal.recordTool(rec);
  emit({ type: 'tool_result', agent: current.name, result: rec, replayed: false });
  await options.hooks?.afterToolCall?.({ agent: current, turn: state.turn, call, result: rec, replayed: false });
  return rec;
}

/** A call that needs a human's decision: 'waiting' without one, the rejection's result or error, undefined when approved. */
async function decideApproval(
  call: ToolCall,
  name: string,
  journal: LoopJournal,
  options: RunOptions,
  emit: (e: LoopEvent) => void,
  current: Agent,
  fail: (output: string) => RecordedToolCall,
): Promise<RecordedToolCall | 'waiting' | undefined> {
  const decision = await journal.approval(call.id);
  if (!decision) {
    addSpanEvent(options.traceContext, 'swarm.approval.requested', () => ({ 'swarm.approval.tool': name, 'swarm.approval.call_id': call.id }));
    return 'waiting';
  }
  addSpanEvent(options.traceContext, 'swarm.approval.decided', () => ({ 'swarm.approval.tool': name, 'swarm.approval.call_id': call.id, 'swarm.approval.decision': decision.decision }));
  if (decision.decision === 'rejected' && options.onRejected === 'tell_model') {
    const r = fail(`Error: the user rejected this call of '${name}': ${decision.reason}`);
    await journal.recordTool(r);
    emit({ type: 'tool_result', agent: current.name, result: r, replayed: false });
    return r;
  }
  if (decision.decision === 'rejected') {
    throw new LoopError('APPROVAL_REJECTED', `tool call '${name}' (${call.id}) was rejected: ${decision.reason}`, { tool: name, call_id: call.id, reason: decision.reason });
  }
  return undefined;
}

async function executeTool(
  t: Tool,
  args: Record<string, unknown>,
  call: ToolCall,
  current: Agent,
  state: CheckpointEnvelope['payload'],
  journal: LoopJournal,
  options: RunOptions,
  know: (a: Agent) => Agent,
  traceContext: Context | undefined,
): Promise<RecordedToolCall> {
  const base = { turn: state.turn, call_id: call.id, name: call.name, arguments: call.arguments };
  try {
    const toolCtx: ToolContext = {
      contextVariables: { ...state.context_variables },
      callId: call.id,
      agent: current.name,
      idempotencyKey: `${options.idempotencyPrefix ?? journal.sessionId}/${call.id}`,
      signal: options.signal ?? NEVER_ABORTED,
      ...(traceContext ? { traceContext } : {}),
    };
    // The call's span made active for the tool (a program's context manager carries it into a tool module's own spans).
    const value = await runInContext(traceContext, () => t.execute(args, toolCtx));
    if (isAgent(value)) know(value);
    if (isToolResult(value) && value.options.agent) know(value.options.agent);
    if (isAgent(value)) return { ...base, output: JSON.stringify({ assistant: value.name }), is_error: false, handoff: value.name };
    if (isToolResult(value)) {
      return {
        ...base,
        output: stringify(value.value),
        is_error: false,
        ...(value.options.agent ? { handoff: value.options.agent.name } : {}),
        ...(value.options.contextVariables ? { context_variables: value.options.contextVariables } : {}),
      };
    }
    return { ...base, output: stringify(value), is_error: false };
  } catch (e) {
    if (options.signal?.aborted) throw e;
    return { ...base, output: `Error: tool '${t.name}' failed: ${(e as Error)?.message ?? String(e)}`, is_error: true };
  }
}

/** A message's size as the model receives it: its text and its tool calls' arguments. */
function messageBytes(m: Message): number {
  let size = byteLength(m.content ?? '');
  if (m.role === 'assistant') for (const c of m.tool_calls ?? []) size += byteLength(c.arguments) + byteLength(c.name);
  return size;
}

const UNKNOWN_TOOL = 'Error: unknown tool ';
const INVALID_ARGUMENTS = 'Error: invalid arguments for tool ';

/** A call the loop refused before running anything (the model's mistake, not the tool's). */
function isInvalidCall(r: RecordedToolCall): boolean {
  return r.is_error && (r.output.startsWith(UNKNOWN_TOOL) || r.output.startsWith(INVALID_ARGUMENTS));
}

function stringify(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  try {
    return JSON.stringify(v) ?? '';
  } catch (e) {
    return `(a result that cannot be shown as JSON: ${(e as Error).message})`;
  }
}

/** Parse the model's argument text and check it against the tool's schema (defaults filled in). */
export function parseArguments(text: string, t: Tool): { ok: true; value: Record<string, unknown> } | { ok: false; message: string } {
  return validateToolArguments(t, text);
}

function parseOutput(m: Message | undefined, schema: JsonSchema): { ok: true; value: unknown } | { ok: false; message: string } {
  const text = m?.role === 'assistant' ? (m.content ?? '') : '';
  let value: unknown;
  try {
    value = JSON.parse(stripFences(text));
  } catch (e) {
    return { ok: false, message: `the answer is not JSON (${(e as Error).message})` };
  }
  const problems = validateAgainst(schema, value);
  return problems.length ? { ok: false, message: problems.join('; ') } : { ok: true, value };
}

function stripFences(text: string): string {
  const m = /^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$/.exec(text);
  return m ? (m[1] as string) : text;
}

function resolveModelOf(a: Agent, options: RunOptions): ChatModel {
  if (a.model && typeof a.model === 'object') return a.model;
  if (!options.resolveModel) throw new LoopError('MODEL_NOT_CONFIGURED', `agent '${a.name}' names no model object and the loop has no model resolver`, { agent: a.name });
  return options.resolveModel(a.model, a);
}

// ---- checkpoints ----

/** Read an envelope of any known version as the current one, or fail with a structured error. */
export function upgradeEnvelope(env: unknown): CheckpointEnvelope {
  const e = env as Partial<CheckpointEnvelope> | null;
  if (!e || typeof e !== 'object' || typeof e.version !== 'number' || !e.payload || typeof e.payload !== 'object') {
    throw new ResumeError('CHECKPOINT_INVALID', 'the checkpoint is not a Swarm checkpoint envelope (no version or payload)');
  }
  if (e.version > CHECKPOINT_VERSION) {
    throw new ResumeError('CHECKPOINT_VERSION_UNSUPPORTED', `the checkpoint has version ${e.version}; this Swarm reads versions up to ${CHECKPOINT_VERSION}: upgrade Swarm`, { version: e.version, supported: CHECKPOINT_VERSION });
  }
  if (e.version < 1) throw new ResumeError('CHECKPOINT_VERSION_UNSUPPORTED', `the checkpoint has version ${e.version}, which never existed`, { version: e.version });
  const p = e.payload as Partial<CheckpointEnvelope['payload']>;
  for (const k of ['agent', 'turn', 'messages', 'context_variables', 'pending_tool_calls', 'usage', 'status'] as const) {
    if (!(k in p)) throw new ResumeError('CHECKPOINT_INVALID', `the checkpoint (version ${e.version}) lacks payload.${k}`, { field: k });
  }
  return { ...(e as CheckpointEnvelope), payload: { input_count: 0, output_retries: 0, ...p } as CheckpointEnvelope['payload'] };
}

/** A journal in memory: the loop without durability (tests, `run()` without a store). */
export function memoryJournal(sessionId = `mem-${Math.random().toString(36).slice(2, 10)}`): LoopJournal & {
  envelope: CheckpointEnvelope | undefined;
  transcript: Message[];
  tools: Map<string, RecordedToolCall>;
  approvals: Map<string, ApprovalDecision>;
} {
  // The envelope is kept as JSON text (a snapshot), parsed only when read.
  let saved: string | undefined;
  const j = {
    sessionId,
    get envelope(): CheckpointEnvelope | undefined {
      return saved === undefined ? undefined : (JSON.parse(saved) as CheckpointEnvelope);
    },
    set envelope(env: CheckpointEnvelope | undefined) {
      saved = env === undefined ? undefined : JSON.stringify(env);
    },
    transcript: [] as Message[],
    tools: new Map<string, RecordedToolCall>(),
    approvals: new Map<string, ApprovalDecision>(),
    load: () => Promise.resolve(j.envelope),
    checkpoint: (env: CheckpointEnvelope, msgs: readonly Message[]) => {
      saved = JSON.stringify(env);
      j.transcript.push(...msgs);
      return Promise.resolve();
    },
    toolResult: (turn: number, id: string) => Promise.resolve(j.tools.get(`${turn}:${id}`)),
    recordTool: (rec: RecordedToolCall) => {
      const key = `${rec.turn}:${rec.call_id}`;
      if (!j.tools.has(key)) j.tools.set(key, rec);
      return Promise.resolve();
    },
    approval: (id: string) => Promise.resolve(j.approvals.get(id)),
  };
  return j;
}
