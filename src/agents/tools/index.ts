/**
 * The `tools:` list of an LLM agent package, turned into `Tool` objects: built-ins, tools exported by
 * the package's JS/TS modules, HTTP endpoints, MCP servers and agents on a SW4RM router.
 *
 * @example
 *   const set = await loadTools(manifest.tools, { packageDir, signal, log });
 *   try {
 *     await run(agent({ name: 'helper', tools: set.tools }), messages);
 *   } finally {
 *     await set.close();
 *   }
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ajvDraft7 } from '../../core/ajv-lazy.js';
import { errorMessage } from '../../core/errors.js';
import type { Tool, ToolOrigin } from '../agent.js';
import type { NetworkGuard } from '../../net/guard.js';
import { BUILTIN_TOOLS, httpFetchTool } from './builtins.js';
import { ToolLoadError } from './errors.js';
import { httpTool } from './http.js';
import { mcpTools } from './mcp.js';
import { moduleTools } from './module.js';
import { describeSpec, TOOL_SPEC_SCHEMA, type ToolSpec } from './spec.js';

export { BUILTIN_TOOLS, calculate, zonedTime } from './builtins.js';
export { ToolCallError, ToolLoadError } from './errors.js';
export { isTool } from './module.js';
export {
  BUILTIN_TOOL_NAMES,
  HTTP_TOOL_METHODS,
  TOOL_SPEC_SCHEMA,
  type BuiltinToolName,
  type BuiltinToolSpec,
  type HttpToolMethod,
  type HttpToolSpec,
  type McpHttpServer,
  type McpStdioServer,
  type McpToolSpec,
  type ModuleToolSpec,
  type ScalarMap,
  type Sw4rmToolSpec,
  type ToolSpec,
} from './spec.js';
export { validateToolArguments, type ArgumentsCheck } from './validate.js';

/** The tools of an agent, and what must be shut down when the agent is done with them. */
export interface ToolSet {
  tools: Tool[];
  /** Close MCP sessions and stop their server processes. Safe to call more than once. */
  close(): Promise<void>;
}

export interface LoadToolsOptions {
  /** The agent package's directory: module paths and MCP working directories resolve inside it. */
  packageDir: string;
  /** Aborts loading (MCP servers started so far are stopped). */
  signal?: AbortSignal;
  /** Progress and the standard error of MCP servers, one line at a time. */
  log?: (m: string) => void;
  /** The network policy of HTTP tools and the `http_fetch` built-in (default: public addresses only). */
  network?: NetworkGuard;
}

// Compiled on first use: a process that reads no tool spec does not load ajv.
let specValidator: ValidateFunction | undefined;

/** Check one entry with the same schema agent.yaml uses (for callers that build the list in code). */
function validateSpec(spec: unknown, index: number): asserts spec is ToolSpec {
  const checkSpec = (specValidator ??= new (ajvDraft7())({ allErrors: false, strict: false, allowUnionTypes: true, verbose: true }).compile(TOOL_SPEC_SCHEMA));
  if (checkSpec(spec)) return;
  const errors = (checkSpec.errors ?? []).filter((e) => e.keyword !== 'if');
  const e = errors.reduce<ErrorObject | undefined>((best, x) => (!best || x.instancePath.length > best.instancePath.length ? x : best), undefined);
  const field = `tools[${index}]${(e?.instancePath ?? '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.')}`;
  let problem = e?.message ?? 'is not valid';
  if (e?.keyword === 'required') problem = `'${String((e.params as { missingProperty: unknown }).missingProperty)}' is required`;
  if (e?.keyword === 'additionalProperties') {
    const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
    problem = `unknown field '${String((e.params as { additionalProperty: unknown }).additionalProperty)}' (allowed: ${allowed.join(', ')})`;
  }
  if (e?.keyword === 'enum') problem = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  throw new ToolLoadError('TOOL_SPEC_INVALID', `${field}: ${problem}`, false, { field });
}

/** Copy a tool with `needsApproval` set as the entry says (module and built-in tools are shared objects). */
function withApproval(t: Tool, needsApproval: boolean | undefined): Tool {
  const copy: Tool = {
    name: t.name,
    description: t.description,
    parameters: t.parameters,
    execute: (args, ctx) => t.execute(args, ctx),
  };
  const flag = needsApproval ?? t.needsApproval;
  if (flag !== undefined) copy.needsApproval = flag;
  return copy;
}

interface Loaded {
  tools: Tool[];
  close?: () => Promise<void>;
}

/** The built-ins whose results are trusted by default: they fetch nothing. */
const TRUSTED_BUILTINS: ReadonlySet<string> = new Set(['calculator', 'current_time']);

async function loadOne(spec: ToolSpec, index: number, options: LoadToolsOptions): Promise<Loaded> {
  const loaded = await loadKind(spec, index, options);
  const origin = originOf(spec);
  for (const t of loaded.tools) {
    t.origin = origin;
    const trusted = spec.trusted ?? t.trusted ?? ('builtin' in spec && TRUSTED_BUILTINS.has(spec.builtin));
    if (trusted) t.trusted = true;
    else delete t.trusted;
    const sensitive = spec.sensitive ?? t.sensitive;
    if (sensitive) t.sensitive = true;
    else delete t.sensitive;
  }
  return loaded;
}

function originOf(spec: ToolSpec): ToolOrigin {
  if ('builtin' in spec) return { kind: 'builtin' };
  if ('module' in spec) return { kind: 'module' };
  if ('http' in spec) return { kind: 'http', host: hostOf(spec.http.url) };
  if ('sw4rm' in spec) return { kind: 'sw4rm', agent: spec.sw4rm.agent };
  const m = spec.mcp as { url?: string; command?: string };
  return { kind: 'mcp', server: spec.name ?? m.command ?? m.url ?? 'mcp', ...(m.url ? { host: hostOf(m.url) } : {}) };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

async function loadKind(spec: ToolSpec, index: number, options: LoadToolsOptions): Promise<Loaded> {
  if ('builtin' in spec) {
    const t = spec.builtin === 'http_fetch' && options.network ? httpFetchTool(options.network) : BUILTIN_TOOLS[spec.builtin];
    if (!t) throw new ToolLoadError('TOOL_BUILTIN_UNKNOWN', `tools[${index}]: no built-in tool '${String(spec.builtin)}' (have: ${Object.keys(BUILTIN_TOOLS).join(', ')})`);
    return { tools: [withApproval(t, spec.needs_approval)] };
  }
  if ('module' in spec) return { tools: (await moduleTools(spec, index, options.packageDir)).map((t) => withApproval(t, spec.needs_approval)) };
  if ('http' in spec) return { tools: [httpTool(spec, index, options.network)] };
  // The gRPC client loads only for agents that talk to a SW4RM router.
  if ('sw4rm' in spec) return { tools: [(await import('../../sw4rm/bridge/tool.js')).sw4rmTool(spec)] };
  return mcpTools(spec, index, options);
}

/**
 * Turn an agent's `tools:` entries into tools. Entries load concurrently (MCP servers start in
 * parallel); the tools keep the entries' order. Any failure stops every MCP server already started
 * and throws a `ToolLoadError` naming the entry (`tools[2] (module 'tools.ts'): …`); so does a tool
 * name used twice. Call `close()` on the result when the agent is done.
 */
export async function loadTools(specs: readonly ToolSpec[], options: LoadToolsOptions): Promise<ToolSet> {
  specs.forEach((s, i) => validateSpec(s, i));
  options.signal?.throwIfAborted();
  const settled = await Promise.allSettled(specs.map((s, i) => loadOne(s, i, options)));
  const closers = settled.flatMap((r) => (r.status === 'fulfilled' && r.value.close ? [r.value.close] : []));
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= Promise.allSettled(closers.map((c) => c())).then((rs) => {
      for (const r of rs) if (r.status === 'rejected') options.log?.(`closing tools: ${errorMessage(r.reason)}`);
    }));
  try {
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    options.signal?.throwIfAborted();
    const tools: Tool[] = [];
    const owner = new Map<string, number>();
    settled.forEach((r, i) => {
      for (const t of (r as PromiseFulfilledResult<Loaded>).value.tools) {
        const first = owner.get(t.name);
        if (first !== undefined) {
          const where = first === i ? `twice by ${describeSpec(specs[i] as ToolSpec, i)}` : `by ${describeSpec(specs[first] as ToolSpec, first)} and by ${describeSpec(specs[i] as ToolSpec, i)}`;
          throw new ToolLoadError('TOOL_NAME_COLLISION', `tool name '${t.name}' is defined ${where}; every tool of an agent needs its own name${'mcp' in (specs[i] as ToolSpec) ? " (an MCP entry's 'name' prefixes its tools)" : ''}`, false, { tool: t.name });
        }
        owner.set(t.name, i);
        tools.push(t);
      }
    });
    return { tools, close };
  } catch (e) {
    await close();
    throw e;
  }
}
