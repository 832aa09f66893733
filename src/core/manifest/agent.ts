// semver's functions one by one: its index loads all of its 48 modules (a cost on every `swarm` start).
import clean from 'semver/functions/clean.js';
import eq from 'semver/functions/eq.js';
import rsort from 'semver/functions/rsort.js';
import valid from 'semver/functions/valid.js';
import maxSatisfying from 'semver/ranges/max-satisfying.js';
import validRange from 'semver/ranges/valid.js';
import { FIELD_TYPES, toJsonSchema, type FieldSpec, type IoSchema } from '../io-schema.js';
import { findReferences } from '../template.js';
import { isReservedName, ProblemList, reservedProblem } from './problems.js';
import { builtinSchema, checkManifest } from './schema-check.js';
import { parseYaml } from './yaml-source.js';
import { GUARDRAILS_SCHEMA, parseGuardrails, type GuardrailsSpec } from './guardrails/index.js';
import { checkAgentRedaction } from './guardrails/redaction.js';
import { MEMORY_SCHEMA, parseMemorySpec, type DeclaredTools, type MemorySpec } from './memory.js';
import { parseSw4rmRuntime, SW4RM_RUNTIME_KEYS, SW4RM_RUNTIME_PROPERTIES, type Sw4rmRuntimeSpec } from './sw4rm-runtime.js';
import { HTTP_RUNTIME_KEYS, HTTP_RUNTIME_PROPERTIES, parseHttpRuntime, type HttpRuntimeSpec } from './http-runtime.js';
import { NET_CAPABILITY_PREFIX, parseNetCapability } from '../../sandbox/capabilities.js';

export const RUNTIME_TYPES = ['node', 'python', 'bash', 'process', 'builtin', 'llm', 'sw4rm', 'http'] as const;
export type RuntimeType = (typeof RUNTIME_TYPES)[number];

/** An agent's own `sandbox:` (process agents): `bwrap` asks for bubblewrap, `none` for none; absent, the deployment's default. */
export const AGENT_SANDBOXES = ['none', 'bwrap'] as const;
export type AgentSandbox = (typeof AGENT_SANDBOXES)[number];

/** The runtimes that run as child processes of the worker (and so in a sandbox). */
export const PROCESS_RUNTIMES: readonly RuntimeType[] = ['node', 'python', 'bash', 'process'];

export const DEFAULT_MEMORY_MB = 128;
export const DEFAULT_TIMEOUT_SECONDS = 300;

export interface AgentRuntime {
  type: RuntimeType;
  /** Script for node/python/bash, program for process, built-in name for builtin (empty for llm, sw4rm and http). */
  entry: string;
  /** For `process`: the interpreter or program; `entry` becomes its first argument. */
  command?: string[];
  memory_mb: number;
  timeout_seconds: number;
}

/** A validated agent.yaml. */
export interface AgentManifest {
  name: string;
  version: string;
  description?: string;
  author?: string;
  runtime: AgentRuntime;
  /** Free-form labels, and `net:<host>:<port>` network capabilities (src/sandbox/capabilities.ts). */
  capabilities: string[];
  /** Process agents: the sandbox asked for (absent: the deployment's `sandbox:`). */
  sandbox?: AgentSandbox;
  inputs: IoSchema;
  outputs: IoSchema;
  triggers: Array<Record<string, unknown>>;
  tags: string[];
  /** For `runtime.type: llm`: the model and the loop's definition. */
  llm?: LlmSpec;
  /** For `runtime.type: sw4rm`: the recipient, the router and what to wait for (sw4rm-runtime.ts). */
  sw4rm?: Sw4rmRuntimeSpec;
  /** For `runtime.type: http`: the remote executor and the task type sent to it (http-runtime.ts). */
  http?: HttpRuntimeSpec;
  /** Process agents: environment variables to set, values may reference `${secrets.*}` and `${config.*}`. */
  env?: Record<string, string>;
}

/** A name agent.yaml may declare under `env:`. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The roots an `env:` value may reference. */
export const ENV_REFERENCE_ROOTS = ['secrets', 'config'] as const;

export const LLM_PROVIDERS = ['openai', 'anthropic', 'openai-compatible'] as const;
export const DEFAULT_MAX_TURNS = 10;

/** An LLM agent as agent.yaml declares it. */
export interface LlmSpec {
  /** `openai`, `anthropic`, `openai-compatible`, or a provider named under `providers:` in swarm.yaml. */
  provider: string;
  model: string;
  base_url?: string;
  api?: 'chat' | 'responses';
  temperature?: number;
  max_output_tokens?: number;
  /** System instructions, with `${inputs.*}`, `${context.*}` and `${config.*}` references. */
  instructions?: string;
  /** Tool entries (checked against the tool-spec schema the agents layer passes in). */
  tools: Array<Record<string, unknown>>;
  /** Names of registered agents this one may hand off to. */
  handoffs: string[];
  output_schema?: Record<string, unknown>;
  max_turns: number;
  /** This agent's guardrails (over the deployment's `guardrails:` in swarm.yaml). */
  guardrails?: GuardrailsSpec;
  /** This agent's vector memory. */
  memory?: MemorySpec;
}

/** Options of `parseAgentManifest`: the schema of one `tools:` entry (from the agents layer). */
export interface AgentManifestOptions {
  toolSpecSchema?: Record<string, unknown>;
}

/** The inputs and outputs of an llm agent when agent.yaml does not declare them. */
export const LLM_DEFAULT_INPUTS = {
  type: 'object',
  properties: {
    message: { type: 'string', description: 'The user turn' },
    messages: { type: 'array', items: { type: 'object' }, description: 'The conversation so far (chat messages)' },
    context_variables: { type: 'object' },
  },
};
export const LLM_DEFAULT_OUTPUTS = {
  type: 'object',
  properties: { content: {}, agent: { type: 'string' }, usage: { type: 'object' }, session_id: { type: 'string' }, turns: { type: 'integer' } },
};

export const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

const fieldList = {
  type: 'array',
  items: {
    type: 'object',
    required: ['name', 'type'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]*$' },
      type: { enum: [...FIELD_TYPES] },
      required: { type: 'boolean' },
      description: { type: 'string' },
      default: {},
    },
  },
};
const ioSpec = { anyOf: [fieldList, { type: 'object' }] };

const agentSchema = builtinSchema({
  type: 'object',
  required: ['name', 'version', 'runtime'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN },
    version: { type: ['string', 'number'] },
    description: { type: 'string' },
    author: { type: 'string' },
    runtime: {
      type: 'object',
      required: ['type'],
      additionalProperties: false,
      properties: {
        type: { enum: [...RUNTIME_TYPES] },
        entry: { type: 'string', minLength: 1 },
        command: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
        memory_mb: { type: 'integer', minimum: 16, maximum: 1048576 },
        timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 604800 },
        provider: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
        model: { type: 'string', minLength: 1 },
        base_url: { type: 'string', pattern: '^https?://' },
        api: { enum: ['chat', 'responses'] },
        temperature: { type: 'number', minimum: 0, maximum: 2 },
        max_output_tokens: { type: 'integer', minimum: 1 },
        ...SW4RM_RUNTIME_PROPERTIES,
        ...HTTP_RUNTIME_PROPERTIES,
      },
    },
    instructions: { type: 'string' },
    tools: { type: 'array', items: { type: 'object' } },
    handoffs: { type: 'array', items: { type: 'string', pattern: NAME_PATTERN } },
    output_schema: { type: 'object' },
    max_turns: { type: 'integer', minimum: 1, maximum: 1000 },
    // Checked apart, only when present (AGENT_EXTRAS_SCHEMA): compiling them costs every registration.
    guardrails: { type: 'object' },
    memory: { type: 'object' },
    capabilities: { type: 'array', items: { type: 'string' } },
    sandbox: { enum: [...AGENT_SANDBOXES] },
    inputs: ioSpec,
    outputs: ioSpec,
    triggers: { type: 'array', items: { type: 'object' } },
    tags: { type: 'array', items: { type: 'string' } },
    env: { type: 'object', additionalProperties: { type: 'string' } },
  },
});

/** `guardrails:` and `memory:` at their place in agent.yaml. */
const AGENT_EXTRAS_SCHEMA = builtinSchema({ type: 'object', properties: { guardrails: GUARDRAILS_SCHEMA, memory: MEMORY_SCHEMA } });

/**
 * Parse and validate an agent.yaml. Errors name the file, the field and the line.
 *
 * @example
 *   const agent = parseAgentManifest(readFileSync('agents/echo/agent.yaml', 'utf8'), 'agents/echo/agent.yaml');
 */
export function parseAgentManifest(text: string, file: string, options: AgentManifestOptions = {}): AgentManifest {
  const src = parseYaml(text, file);
  const shape = new ProblemList(file);
  checkManifest(src, options.toolSpecSchema ? schemaWithTools(options.toolSpecSchema) : agentSchema, shape);
  const { guardrails: g, memory: mem } = (src.value ?? {}) as { guardrails?: unknown; memory?: unknown };
  if (g !== undefined || mem !== undefined) checkManifest({ ...src, value: { guardrails: g, memory: mem } }, AGENT_EXTRAS_SCHEMA, shape);
  shape.throwIfAny();
  const problems = new ProblemList(file);
  const raw = src.value as Record<string, unknown> & { runtime: Record<string, unknown> };
  const version = String(raw.version);
  if (!valid(version)) {
    problems.add('version', `'${version}' is not a semantic version (like 1.0.0)${typeof raw.version === 'number' ? '; write it in quotes' : ''}`, src.lineOf(['version']));
  }
  if (isReservedName(raw.name)) problems.add('name', reservedProblem(raw.name as string, 'an agent name'), src.lineOf(['name']));
  const type = raw.runtime.type as RuntimeType;
  const llm = type === 'llm' ? problems.guard(() => llmSpec(raw, file, src.lineOf.bind(src))) : undefined;
  const timeoutSeconds = (raw.runtime.timeout_seconds as number | undefined) ?? DEFAULT_TIMEOUT_SECONDS;
  const sw4rm = type === 'sw4rm' ? parseSw4rmRuntime(raw.runtime, timeoutSeconds, problems, src.lineOf.bind(src)) : undefined;
  if (type !== 'sw4rm') {
    for (const key of SW4RM_RUNTIME_KEYS) {
      if (raw.runtime[key] !== undefined) problems.add(`runtime.${key}`, `is only for runtime.type 'sw4rm' (this agent is '${type}')`, src.lineOf(['runtime', key]));
    }
  }
  const http = type === 'http' ? parseHttpRuntime(raw.runtime, raw.name as string, problems, src.lineOf.bind(src)) : undefined;
  if (type !== 'http') {
    for (const key of HTTP_RUNTIME_KEYS) {
      if (raw.runtime[key] !== undefined) problems.add(`runtime.${key}`, `is only for runtime.type 'http' (this agent is '${type}')`, src.lineOf(['runtime', key]));
    }
  }
  if (type !== 'llm') {
    for (const key of ['instructions', 'tools', 'handoffs', 'output_schema', 'max_turns', 'guardrails', 'memory'] as const) {
      if (raw[key] !== undefined) problems.add(key, `is only for runtime.type 'llm' (this agent is '${type}')`, src.lineOf([key]));
    }
    for (const key of ['provider', 'model', 'base_url', 'api', 'temperature', 'max_output_tokens'] as const) {
      if (raw.runtime[key] !== undefined) problems.add(`runtime.${key}`, `is only for runtime.type 'llm' (this agent is '${type}')`, src.lineOf(['runtime', key]));
    }
  }
  const entry = (raw.runtime.entry as string | undefined) ?? (type === 'llm' || type === 'sw4rm' || type === 'http' ? '' : undefined);
  if (entry === undefined) {
    const what = type === 'builtin' ? 'the built-in agent name (echo, noop, sleep, http-fetch)' : 'the script or program to run';
    problems.add('runtime.entry', `is required: ${what}`, src.lineOf(['runtime']));
  }
  const cmd = raw.runtime.command;
  if (cmd !== undefined && type !== 'process' && type !== 'sw4rm' && type !== 'http') {
    problems.add('runtime.command', `is only for runtime.type 'process' (this agent is '${type}')`, src.lineOf(['runtime', 'command']));
  }
  for (const key of ['inputs', 'outputs'] as const) checkFieldNames(raw[key], key, problems, src.lineOf.bind(src));
  const env = raw.env as Record<string, string> | undefined;
  if (env !== undefined) checkEnv(env, type, problems, src.lineOf.bind(src));
  checkSandboxAndCapabilities(raw, type, problems, src.lineOf.bind(src));
  problems.throwIfAny();
  return {
    name: raw.name as string,
    version: clean(version) ?? version,
    ...(raw.description !== undefined ? { description: raw.description as string } : {}),
    ...(raw.author !== undefined ? { author: raw.author as string } : {}),
    runtime: {
      type,
      entry: entry as string,
      ...(cmd !== undefined ? { command: typeof cmd === 'string' ? cmd.split(/\s+/).filter(Boolean) : (cmd as string[]) } : {}),
      memory_mb: (raw.runtime.memory_mb as number | undefined) ?? DEFAULT_MEMORY_MB,
      timeout_seconds: timeoutSeconds,
    },
    capabilities: (raw.capabilities as string[] | undefined) ?? [],
    ...(raw.sandbox !== undefined ? { sandbox: raw.sandbox as AgentSandbox } : {}),
    inputs: llm && raw.inputs === undefined ? LLM_DEFAULT_INPUTS : toJsonSchema(raw.inputs as FieldSpec[] | IoSchema | undefined),
    outputs: llm && raw.outputs === undefined ? LLM_DEFAULT_OUTPUTS : closeIfList(raw.outputs),
    triggers: (raw.triggers as Array<Record<string, unknown>> | undefined) ?? [{ type: 'manual' }],
    tags: (raw.tags as string[] | undefined) ?? [],
    ...(llm ? { llm } : {}),
    ...(sw4rm ? { sw4rm } : {}),
    ...(http ? { http } : {}),
    ...(env !== undefined ? { env: { ...env } } : {}),
  };
}

/**
 * `sandbox:` is for process agents; `net:` capabilities must parse (host name or IP literal, port
 * 1–65535), belong to a process agent, and cannot go with `sandbox: none`: they are enforced only by
 * the policy proxy of a bwrap sandbox, and a capability that cannot be enforced is not granted.
 */
function checkSandboxAndCapabilities(raw: Record<string, unknown>, type: RuntimeType, problems: ProblemList, lineOf: (p: Array<string | number>) => number | undefined): void {
  const processAgent = PROCESS_RUNTIMES.includes(type);
  if (raw.sandbox !== undefined && !processAgent) problems.add('sandbox', `is only for process agents (node, python, bash, process); this agent is '${type}'`, lineOf(['sandbox']));
  const caps = (raw.capabilities as string[] | undefined) ?? [];
  caps.forEach((c, i) => {
    if (!c.toLowerCase().startsWith(NET_CAPABILITY_PREFIX)) return;
    const field = `capabilities[${i}]`;
    const parsed = c.startsWith(NET_CAPABILITY_PREFIX) ? parseNetCapability(c) : { error: `'${c}': write the prefix in lower case (net:)` };
    if ('error' in parsed) problems.add(field, parsed.error, lineOf(['capabilities', i]));
    else if (!processAgent) problems.add(field, `network capabilities are for process agents (node, python, bash, process), which run sandboxed; this agent is '${type}'`, lineOf(['capabilities', i]));
    else if (raw.sandbox === 'none') problems.add(field, `'${c}' is enforced only inside the bwrap sandbox: remove 'sandbox: none' (or the net: capability)`, lineOf(['sandbox']));
  });
}

/** `env:`: names a shell accepts, not the process contract's own SWARM_*; references only to secrets and config. */
function checkEnv(env: Record<string, string>, type: RuntimeType, problems: ProblemList, lineOf: (p: Array<string | number>) => number | undefined): void {
  if (type === 'llm' || type === 'builtin' || type === 'sw4rm' || type === 'http') {
    problems.add('env', `is only for process agents (node, python, bash, process); this agent is '${type}'`, lineOf(['env']));
    return;
  }
  for (const [name, value] of Object.entries(env)) {
    const at = lineOf(['env', name]);
    const field = `env.${name}`;
    if (!ENV_NAME_PATTERN.test(name)) {
      problems.add(field, `'${name}' is not a valid variable name (letters, digits and _, not starting with a digit)`, at);
      continue;
    }
    if (name.startsWith('SWARM_')) problems.add(field, 'names starting with SWARM_ belong to the process contract; choose another name', at);
    if (name === 'HOME') problems.add(field, "HOME is the attempt's work directory (SWARM_WORK_DIR); choose another name", at);
    if (value.includes('\0')) problems.add(field, 'must not contain a NUL character', at);
    let refs;
    try {
      refs = findReferences(value);
    } catch (e) {
      problems.add(field, (e as Error).message, at);
      continue;
    }
    for (const r of refs) {
      const root = String(r.path[0]);
      if (!(ENV_REFERENCE_ROOTS as readonly string[]).includes(root)) {
        problems.add(field, `'\${${r.text}}' cannot be used here: env values may reference only ${ENV_REFERENCE_ROOTS.map((x) => `\${${x}.…}`).join(' and ')}`, at);
      } else if (root === 'secrets' && (r.path.length !== 2 || typeof r.path[1] !== 'string')) {
        problems.add(field, `'\${${r.text}}' must name one secret, like \${secrets.API_KEY}`, at);
      }
    }
  }
}

const withTools = new WeakMap<object, Record<string, unknown>>();

/**
 * agent.yaml's schema with `tools:` checked against `toolSpecSchema`: one object per tool schema,
 * registered as built-in (the library's, made when it loads, is precompiled by the build).
 */
export function schemaWithTools(toolSpecSchema: Record<string, unknown>): Record<string, unknown> {
  let schema = withTools.get(toolSpecSchema);
  if (!schema) {
    schema = builtinSchema({ ...agentSchema, properties: { ...agentSchema.properties, tools: { type: 'array', items: toolSpecSchema } } });
    withTools.set(toolSpecSchema, schema);
  }
  return schema;
}

/**
 * A tool name the providers accept: letters, digits, _ and -, at most 64 characters; `prefix_name`
 * with a prefix (an MCP server's `name:`).
 */
export function modelToolName(prefix: string | undefined, name: string): string {
  const safe = name.replace(/[^a-zA-Z0-9_-]/g, '_');
  return (prefix ? `${prefix}_${safe}` : safe).slice(0, 64);
}

/** The tool name a `sw4rm:` tool entry gets when it names none: the agent id, made a valid tool name. */
export function sw4rmToolName(agentId: string): string {
  return modelToolName(undefined, agentId);
}

/** A tool entry's name when the manifest alone gives it (built-in, http, sw4rm); module and MCP tools are named by what they load. */
function staticToolName(entry: unknown): string | undefined {
  if (entry === null || typeof entry !== 'object') return undefined;
  const e = entry as { name?: unknown; builtin?: unknown; http?: unknown; sw4rm?: { agent?: unknown } };
  if (typeof e.builtin === 'string') return e.builtin;
  if (e.http !== undefined) return typeof e.name === 'string' ? e.name : undefined;
  if (e.sw4rm !== undefined) return typeof e.name === 'string' ? e.name : typeof e.sw4rm?.agent === 'string' ? sw4rmToolName(e.sw4rm.agent) : undefined;
  return undefined;
}

/**
 * The tool names `tools:` gives without loading anything (for `memory.remember.tool_results`): the
 * static names, an MCP server's `include:` as its tools will be named (`<name>_<tool>`), and what is
 * left open until the tools load (a module's exports; an MCP server's tools without `include:`).
 */
function declaredTools(tools: unknown[]): DeclaredTools {
  const names: string[] = [];
  const prefixes: string[] = [];
  let open = false;
  for (const t of tools) {
    const name = staticToolName(t);
    if (name !== undefined) names.push(name);
    else if (t !== null && typeof t === 'object' && 'mcp' in t) {
      const m = t as { name?: unknown; include?: unknown };
      const prefix = typeof m.name === 'string' ? m.name : undefined;
      // As src/agents/tools/mcp.ts names them.
      if (Array.isArray(m.include)) for (const n of m.include) names.push(modelToolName(prefix, String(n)));
      else if (prefix !== undefined) prefixes.push(prefix);
      else open = true;
    } else open = true;
  }
  return { names, prefixes, open };
}

/** Two entries whose names the manifest gives and that collide: refused here, with the line, rather than when the agent first runs. */
function checkStaticToolNames(tools: unknown[], problems: ProblemList, lineOf: (p: Array<string | number>) => number | undefined): void {
  const first = new Map<string, number>();
  tools.forEach((t, i) => {
    const name = staticToolName(t);
    if (name === undefined) return;
    const at = first.get(name);
    if (at === undefined) first.set(name, i);
    else problems.add(`tools[${i}]`, `its tool name '${name}' is also the name of tools[${at}]; every tool of an agent needs its own name (give one of them a 'name:')`, lineOf(['tools', i]));
  });
}

function llmSpec(raw: Record<string, unknown> & { runtime: Record<string, unknown> }, file: string, lineOf: (p: Array<string | number>) => number | undefined): LlmSpec {
  const rt = raw.runtime;
  const problems = new ProblemList(file);
  for (const key of ['provider', 'model'] as const) {
    if (rt[key] === undefined) {
      const what = key === 'provider' ? `one of ${LLM_PROVIDERS.join(', ')} (or a provider named in swarm.yaml)` : 'the model id, e.g. gpt-4o-mini';
      problems.add(`runtime.${key}`, `is required for runtime.type 'llm': ${what}`, lineOf(['runtime']));
    }
  }
  for (const key of ['entry', 'command', 'memory_mb'] as const) {
    if (rt[key] !== undefined) problems.add(`runtime.${key}`, "does not apply to runtime.type 'llm' (the loop runs inside the worker)", lineOf(['runtime', key]));
  }
  if (rt.provider === 'openai-compatible' && rt.base_url === undefined) {
    problems.add('runtime.base_url', "is required for provider 'openai-compatible' (the server's chat-completions URL, e.g. http://localhost:11434/v1)", lineOf(['runtime', 'provider']));
  }
  if (rt.api !== undefined && rt.provider !== 'openai') problems.add('runtime.api', "is only for provider 'openai' (chat or responses)", lineOf(['runtime', 'api']));
  checkStaticToolNames((raw.tools as unknown[] | undefined) ?? [], problems, lineOf);
  const handoffs = (raw.handoffs as string[] | undefined) ?? [];
  if (handoffs.includes(raw.name as string)) problems.add('handoffs', `names the agent itself ('${String(raw.name)}')`, lineOf(['handoffs']));
  handoffs.forEach((h, i) => {
    if (isReservedName(h)) problems.add(`handoffs[${i}]`, reservedProblem(h, 'an agent name'), lineOf(['handoffs', i]));
  });
  const guardrails = raw.guardrails !== undefined ? parseGuardrails({ value: raw.guardrails, file, path: ['guardrails'], lineOf, problems }) : undefined;
  if (guardrails?.redaction) checkAgentRedaction({ value: (raw.guardrails as Record<string, unknown>).redaction, file, path: ['guardrails', 'redaction'], lineOf, problems });
  const memory = raw.memory !== undefined ? parseMemorySpec({ value: raw.memory, file, path: ['memory'], lineOf, problems }, { provider: rt.provider as string, ...(rt.base_url !== undefined ? { base_url: rt.base_url as string } : {}), tools: declaredTools((raw.tools as unknown[] | undefined) ?? []) }) : undefined;
  problems.throwIfAny();
  return {
    provider: rt.provider as string,
    model: rt.model as string,
    ...(rt.base_url !== undefined ? { base_url: rt.base_url as string } : {}),
    ...(rt.api !== undefined ? { api: rt.api as 'chat' | 'responses' } : {}),
    ...(rt.temperature !== undefined ? { temperature: rt.temperature as number } : {}),
    ...(rt.max_output_tokens !== undefined ? { max_output_tokens: rt.max_output_tokens as number } : {}),
    ...(raw.instructions !== undefined ? { instructions: raw.instructions as string } : {}),
    tools: (raw.tools as Array<Record<string, unknown>> | undefined) ?? [],
    handoffs,
    ...(raw.output_schema !== undefined ? { output_schema: raw.output_schema as Record<string, unknown> } : {}),
    max_turns: (raw.max_turns as number | undefined) ?? DEFAULT_MAX_TURNS,
    ...(guardrails ? { guardrails } : {}),
    ...(memory ? { memory } : {}),
  };
}

/** Outputs declared as a list are the complete set: references to other names are caught at register time. */
function closeIfList(spec: unknown): IoSchema {
  const schema = toJsonSchema(spec as FieldSpec[] | IoSchema | undefined);
  return Array.isArray(spec) ? { ...schema, 'x-swarm-closed': true } : schema;
}

function checkFieldNames(spec: unknown, key: string, problems: ProblemList, lineOf: (p: Array<string | number>) => number | undefined): void {
  if (Array.isArray(spec)) {
    const seen = new Set<string>();
    spec.forEach((f: FieldSpec, i) => {
      if (isReservedName(f.name)) problems.add(`${key}[${i}].name`, reservedProblem(f.name, 'a field name'), lineOf([key, i, 'name']));
      else if (seen.has(f.name)) problems.add(`${key}[${i}].name`, `duplicate field '${f.name}'`, lineOf([key, i, 'name']));
      seen.add(f.name);
    });
  } else if (spec && typeof spec === 'object') {
    // A JSON Schema: its property names become the keys of the inputs or outputs object.
    for (const name of reservedKeysIn(spec)) problems.add(key, reservedProblem(name, 'a field name'), lineOf([key]));
  }
}

/** Reserved names used as property names anywhere in a JSON Schema (`properties`, `required`). */
function reservedKeysIn(schema: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(schema)) for (const s of schema) reservedKeysIn(s, found);
  else if (schema && typeof schema === 'object') {
    const o = schema as Record<string, unknown>;
    if (o.properties && typeof o.properties === 'object') for (const k of Object.keys(o.properties)) if (isReservedName(k)) found.add(k);
    if (Array.isArray(o.required)) for (const k of o.required) if (isReservedName(k)) found.add(k as string);
    for (const v of Object.values(o)) if (v && typeof v === 'object') reservedKeysIn(v, found);
  }
  return found;
}

/** `name@version`: the key users type and the registry's unique key (agents and workflows alike). */
export function agentRef(a: { name: string; version: string }): string {
  return `${a.name}@${a.version}`;
}

/** Split `name@range` (range may be a version, a semver range, `latest`, or absent). */
export function parseRef(ref: string): { name: string; range: string } {
  const at = ref.lastIndexOf('@');
  if (at <= 0) return { name: ref, range: 'latest' };
  return { name: ref.slice(0, at), range: ref.slice(at + 1) || 'latest' };
}

/** Pick the highest version satisfying `range` (`latest` = highest). */
export function pickVersion(versions: string[], range: string): string | undefined {
  if (range === 'latest' || range === '*') return rsort([...versions])[0];
  if (valid(range)) return versions.find((v) => eq(v, range));
  return maxSatisfying(versions, range) ?? undefined;
}

/** The newest record whose version satisfies `range`, among records of one name. */
export function pickRecord<T extends { version: string }>(records: readonly T[], range: string): T | undefined {
  const v = pickVersion(
    records.map((r) => r.version),
    range,
  );
  return v === undefined ? undefined : records.find((r) => r.version === v);
}

export function isValidRange(range: string): boolean {
  return range === 'latest' || validRange(range) !== null;
}
