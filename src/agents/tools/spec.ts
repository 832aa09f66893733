/**
 * The `tools:` entries of an LLM agent package (agent.yaml): what each form means and the JSON Schema
 * that checks one entry. The agent.yaml schema embeds `TOOL_SPEC_SCHEMA`, so a wrong entry is
 * reported with its file and line.
 *
 * @example
 *   tools:
 *     - builtin: calculator
 *     - module: tools.ts              # every exported tool; or pick one with `export: search`
 *     - name: create_ticket           # an HTTP endpoint as a tool
 *       description: Open a support ticket
 *       http: { url: https://tickets.example.com/api/tickets, method: POST }
 *       parameters: { type: object, properties: { title: { type: string } }, required: [title] }
 *       needs_approval: true
 *     - mcp: { command: node, args: [notes-server.mjs], env: { NOTES_FILE: notes.json } }
 *       name: notes                   # the server's tools become notes_add_note, notes_list_notes
 *       include: [add_note, list_notes]
 *     - sw4rm: { agent: translator }  # an agent registered with the SW4RM router (docs/sw4rm.md)
 *       description: Translate text into French
 */
import type { JsonSchema } from '../types.js';
import { SW4RM_AGENT_ID_PATTERN, SW4RM_ROUTER_PATTERN } from '../../core/manifest/sw4rm-runtime.js';
import type { Sw4rmToolEntry } from '../../sw4rm/bridge/tool.js';

export const BUILTIN_TOOL_NAMES = ['http_fetch', 'current_time', 'calculator'] as const;
export type BuiltinToolName = (typeof BUILTIN_TOOL_NAMES)[number];

export const HTTP_TOOL_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpToolMethod = (typeof HTTP_TOOL_METHODS)[number];

/** Header and environment values: YAML numbers and booleans are accepted and sent as text. */
export type ScalarMap = Record<string, string | number | boolean>;

interface SpecBase {
  /** Pause the run for a human's approval before each call of the resulting tool(s). */
  needs_approval?: boolean;
  /** The tool's results are trusted content (default false: tool results are untrusted, see docs/guardrails.md). */
  trusted?: boolean;
  /** The tool acts outside the run (sends, pays, deletes): gated by the injection policy once untrusted content is in the context. */
  sensitive?: boolean;
}

/** `{ builtin: calculator }`: a tool that ships with Swarm. */
export interface BuiltinToolSpec extends SpecBase {
  builtin: BuiltinToolName;
}

/** `{ module: tools.js, export?: name }`: tools exported by a JS/TS module of the package. */
export interface ModuleToolSpec extends SpecBase {
  /** Path inside the package: .js, .mjs, .cjs, .ts, .mts or .cts. */
  module: string;
  /** One export to take; without it, every exported tool is taken. */
  export?: string;
}

/** An HTTP endpoint called with the model's arguments. */
export interface HttpToolSpec extends SpecBase {
  http: {
    /** `{name}` placeholders in the URL are filled from the arguments of the same name. */
    url: string;
    /** Default POST. POST, PUT and PATCH send the arguments as a JSON body, GET and DELETE as a query string. */
    method?: HttpToolMethod;
    headers?: ScalarMap;
    /** Default 30. */
    timeout_seconds?: number;
    /** The response is cut after this many bytes (default 100000). */
    max_bytes?: number;
  };
  name: string;
  description: string;
  /** JSON Schema of the arguments (an object schema); default: no arguments. */
  parameters?: JsonSchema;
}

/** An MCP server started as a child process speaking MCP on its standard input and output. */
export interface McpStdioServer {
  /** The program; `node` means the Node.js running Swarm. */
  command: string;
  args?: string[];
  /** Added to the worker's environment (minus SWARM_SECRET_* variables). */
  env?: ScalarMap;
  /** Working directory inside the package (default: the package directory). */
  cwd?: string;
  /** Limit for each tool call (default 60). */
  timeout_seconds?: number;
}

/** An MCP server reached over streamable HTTP. */
export interface McpHttpServer {
  url: string;
  headers?: ScalarMap;
  /** Limit for each tool call (default 60). */
  timeout_seconds?: number;
}

/** `{ mcp: {...} }`: the tools of an MCP server. */
export interface McpToolSpec extends SpecBase {
  mcp: McpStdioServer | McpHttpServer;
  /** A prefix for the server's tool names (`<name>_<tool>`), and the server's name in messages. */
  name?: string;
  /** Only these of the server's tools (by the server's names). */
  include?: string[];
}

/** `{ sw4rm: { agent, router?, wait?, timeout_seconds?, message_type? }, name?, description, parameters? }`. */
export interface Sw4rmToolSpec extends SpecBase, Sw4rmToolEntry {}

/** One entry of an LLM agent's `tools:` list. */
export type ToolSpec = BuiltinToolSpec | ModuleToolSpec | HttpToolSpec | McpToolSpec | Sw4rmToolSpec;

export const TOOL_NAME_PATTERN = '^[a-zA-Z0-9_-]{1,64}$';

const needsApproval = { type: 'boolean', description: 'Pause the run for a human approval before each call.' };
const trusted = { type: 'boolean', description: 'Its results are trusted content (default false).' };
const sensitive = { type: 'boolean', description: 'It acts outside the run (sends, pays, deletes): gated once untrusted content is in the context.' };
const scalarMap = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } };
const timeoutSeconds = { type: 'number', exclusiveMinimum: 0, maximum: 86400 };
const httpUrl = { type: 'string', pattern: '^https?://' };

const builtinSchema = {
  type: 'object',
  required: ['builtin'],
  additionalProperties: false,
  properties: { builtin: { enum: [...BUILTIN_TOOL_NAMES] }, needs_approval: needsApproval, trusted, sensitive },
};

const moduleSchema = {
  type: 'object',
  required: ['module'],
  additionalProperties: false,
  properties: {
    module: { type: 'string', minLength: 1 },
    export: { type: 'string', minLength: 1 },
    needs_approval: needsApproval,
    trusted,
    sensitive,
  },
};

const httpSchema = {
  type: 'object',
  required: ['http', 'name', 'description'],
  additionalProperties: false,
  properties: {
    http: {
      type: 'object',
      required: ['url'],
      additionalProperties: false,
      properties: {
        url: httpUrl,
        method: { enum: [...HTTP_TOOL_METHODS] },
        headers: scalarMap,
        timeout_seconds: timeoutSeconds,
        max_bytes: { type: 'integer', minimum: 1 },
      },
    },
    name: { type: 'string', pattern: TOOL_NAME_PATTERN },
    description: { type: 'string' },
    parameters: { type: 'object', required: ['type'], properties: { type: { enum: ['object'] } } },
    needs_approval: needsApproval,
    trusted,
    sensitive,
  },
};

const mcpSchema = {
  type: 'object',
  required: ['mcp'],
  additionalProperties: false,
  properties: {
    mcp: {
      type: 'object',
      if: { required: ['url'] },
      then: {
        additionalProperties: false,
        properties: { url: httpUrl, headers: scalarMap, timeout_seconds: timeoutSeconds },
      },
      else: {
        required: ['command'],
        additionalProperties: false,
        properties: {
          command: { type: 'string', minLength: 1 },
          args: { type: 'array', items: { type: 'string' } },
          env: scalarMap,
          cwd: { type: 'string', minLength: 1 },
          timeout_seconds: timeoutSeconds,
        },
      },
    },
    name: { type: 'string', pattern: '^[a-zA-Z0-9_-]{1,32}$' },
    include: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true },
    needs_approval: needsApproval,
    trusted,
    sensitive,
  },
};

const sw4rmSchema = {
  type: 'object',
  required: ['sw4rm', 'description'],
  additionalProperties: false,
  properties: {
    sw4rm: {
      type: 'object',
      required: ['agent'],
      additionalProperties: false,
      properties: {
        agent: { type: 'string', pattern: SW4RM_AGENT_ID_PATTERN },
        router: { type: 'string', pattern: SW4RM_ROUTER_PATTERN },
        wait: { enum: ['reply', 'fulfilled'] },
        timeout_seconds: timeoutSeconds,
        message_type: { enum: ['TOOL_CALL', 'DATA'] },
      },
    },
    name: { type: 'string', pattern: TOOL_NAME_PATTERN },
    description: { type: 'string' },
    parameters: { type: 'object', required: ['type'], properties: { type: { enum: ['object'] } } },
    needs_approval: needsApproval,
    trusted,
    sensitive,
  },
};

/** An entry names none of the forms: the error lists the keys that choose one. */
const noKindSchema = {
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  properties: { builtin: {}, module: {}, http: {}, mcp: {}, sw4rm: {} },
};

/**
 * JSON Schema of one `tools:` entry. The form is chosen by its key (`builtin`, `module`, `http`,
 * `mcp` or `sw4rm`), so a mistake is reported against that form's fields rather than as "matches no alternative".
 */
export const TOOL_SPEC_SCHEMA: JsonSchema = {
  type: 'object',
  if: { required: ['builtin'] },
  then: builtinSchema,
  else: {
    if: { required: ['module'] },
    then: moduleSchema,
    else: {
      if: { required: ['http'] },
      then: httpSchema,
      else: { if: { required: ['mcp'] }, then: mcpSchema, else: { if: { required: ['sw4rm'] }, then: sw4rmSchema, else: noKindSchema } },
    },
  },
};

export function isMcpHttp(server: McpStdioServer | McpHttpServer): server is McpHttpServer {
  return typeof (server as McpHttpServer).url === 'string';
}

/** How an entry is named in messages: `tools[2] (MCP server 'notes')`. */
export function describeSpec(spec: ToolSpec, index: number): string {
  const at = `tools[${index}]`;
  if ('builtin' in spec) return `${at} (built-in '${spec.builtin}')`;
  if ('module' in spec) return `${at} (module '${spec.module}'${spec.export ? `, export '${spec.export}'` : ''})`;
  if ('http' in spec) return `${at} (HTTP tool '${spec.name}')`;
  if ('sw4rm' in spec) return `${at} (SW4RM agent '${spec.sw4rm.agent}')`;
  return `${at} (MCP server '${mcpLabel(spec)}')`;
}

/** The MCP server's name in messages: the entry's `name`, else the program or the URL's host. */
export function mcpLabel(spec: McpToolSpec): string {
  if (spec.name) return spec.name;
  const s = spec.mcp;
  if (isMcpHttp(s)) {
    try {
      return new URL(s.url).host;
    } catch {
      return s.url;
    }
  }
  return [s.command, ...(s.args ?? [])].join(' ');
}

/** Stringify the values of a YAML scalar map. */
export function scalarMapToStrings(m: ScalarMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m ?? {})) out[k] = String(v);
  return out;
}
