/**
 * Defining LLM agents and tools in TypeScript. Swarm semantics (after OpenAI's Swarm): a tool may
 * return an agent (a handoff) or a `ToolResult` carrying updated context variables; `handoffs`
 * become `transfer_to_<agent>` tools; a tool that declares `context_variables` in its parameters
 * receives them, and the model never sees that parameter.
 */
import type { ChatModel, JsonSchema } from './types.js';
import type { Context } from '../observability/tracing.js';

export type ContextVariables = Record<string, unknown>;

/** What a tool's `execute` receives besides its arguments. */
export interface ToolContext {
  /** The context variables as they are when the tool is called (a copy: return a ToolResult to change them). */
  contextVariables: ContextVariables;
  /** The model's id for this call: also the key of the exactly-once tool ledger. */
  callId: string;
  /** The agent whose turn it is. */
  agent: string;
  /** Stable across crashes and retries of the same call: `<session id>/<call id>`. Pass it to side effects. */
  idempotencyKey: string;
  /** Aborted when the step is cancelled, times out or loses its lease. */
  signal: AbortSignal;
  /**
   * With tracing on, the context of this call's `execute_tool` span: the parent of spans the tool
   * starts (`tracer.startSpan(name, {}, ctx.traceContext)`), and what its outgoing requests name
   * (`withTraceHeaders(headers, ctx.traceContext)`).
   */
  traceContext?: Context;
}

/** Brands that survive a second copy of this module (a package's tools.ts importing its own swarm-runtime). */
const AGENT_BRAND = Symbol.for('swarm.agent');
const RESULT_BRAND = Symbol.for('swarm.tool-result');

/** What a tool returns. Anything else (string, number, object) is the tool's output to the model. */
export class ToolResult {
  readonly [RESULT_BRAND] = true;
  constructor(
    readonly value: unknown,
    readonly options: { agent?: Agent; contextVariables?: ContextVariables } = {},
  ) {}
}

/** Is this a ToolResult (from any copy of Swarm)? */
export function isToolResult(v: unknown): v is ToolResult {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[RESULT_BRAND] === true;
}

/** Where a tool comes from: its `tools:` entry's kind, the MCP server's name, the HTTP tool's host. */
export interface ToolOrigin {
  kind: 'builtin' | 'module' | 'http' | 'mcp' | 'memory' | 'sw4rm';
  /** MCP: the entry's `name`, or its command or URL. */
  server?: string;
  /** HTTP tools and remote MCP servers: the URL's host (`host:port`). */
  host?: string;
  /** SW4RM tools: the recipient's agent id on the router. */
  agent?: string;
}

export interface Tool {
  name: string;
  description: string;
  /** JSON Schema of the arguments (an object schema). A `context_variables` property is filled by Swarm and hidden from the model. */
  parameters: JsonSchema;
  /** Pause the run for a human's `swarm approve` before this tool runs. */
  needsApproval?: boolean;
  /**
   * Its results are trusted content (the injection policy does not mark the conversation untrusted
   * after them). Default: false, except for the built-ins that fetch nothing (calculator, current_time).
   */
  trusted?: boolean;
  /** Sending, paying, deleting, writing outside the run: once untrusted content is in the context, the policy gates it. */
  sensitive?: boolean;
  /** What the tool is and what it talks to (set when loaded from agent.yaml): breakers and policies key on it. */
  origin?: ToolOrigin;
  /** Run the tool. Return a value, an `Agent` (handoff) or a `ToolResult`. Throwing becomes an error message to the model. */
  execute(args: Record<string, unknown>, ctx: ToolContext): unknown;
}

/** Define a tool (identity with type checking). */
export function tool(def: Tool): Tool {
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(def.name)) throw new TypeError(`tool name '${def.name}' must be 1-64 letters, digits, _ or -`);
  return def;
}

export interface Agent {
  /** The agent's name (a handoff tool is `transfer_to_<name>`). */
  readonly name: string;
  /** The model: `provider/model` (e.g. `openai/gpt-4o-mini`), or a ChatModel object. Defaults to the loop's default model. */
  readonly model?: string | ChatModel;
  /** System instructions: text, or a function of the context variables. */
  readonly instructions?: string | ((contextVariables: ContextVariables) => string);
  readonly tools?: readonly Tool[];
  /** Agents this one may hand off to (objects, or names resolved through the loop's `resolveAgent`). */
  readonly handoffs?: ReadonlyArray<Agent | string>;
  /** When set, the final answer must be JSON matching this schema; the step's `content` is the parsed object. */
  readonly outputSchema?: JsonSchema;
  readonly parallelToolCalls?: boolean;
  readonly temperature?: number;
  readonly maxOutputTokens?: number;
}

/** Define an agent. A tool that returns it hands the conversation over to it. */
export function agent(def: Agent): Agent {
  if (!def.name || !/^[a-zA-Z0-9_.-]{1,64}$/.test(def.name)) throw new TypeError(`agent name '${def.name}' must be 1-64 letters, digits, _, . or -`);
  const a = { ...def };
  Object.defineProperty(a, AGENT_BRAND, { value: true });
  return Object.freeze(a);
}

/** Was this made by `agent()` (in any copy of Swarm)? A tool returning a plain object with a `name` is not a handoff. */
export function isAgent(v: unknown): v is Agent {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[AGENT_BRAND] === true;
}

/** The name of the tool that hands off to `agentName`. */
export function handoffToolName(agentName: string): string {
  return `transfer_to_${agentName.replace(/[^a-zA-Z0-9_-]/g, '_')}`.slice(0, 64);
}
