/**
 * `memory:` in agent.yaml: the agent's vector memory (namespace, what to remember, retrieval policy,
 * embedding model). Pure parsing and validation; the behaviour is in src/memory/.
 *
 * ```yaml
 * memory:
 *   namespace: support-${inputs.user_id}   # per-user memory
 *   remember:
 *     conversation_summary: true           # the final answer, at completion
 *     tool_results: [lookup_order]         # or true (every tool), false (none)
 *     explicit: true                       # adds the built-in `remember` tool
 *   retrieval: { top_k: 5, min_score: 0.3, recency_half_life: 30d, max_tokens: 400 }
 *   embedding: { provider: openai, model: text-embedding-3-small }
 * ```
 */
import { parseDuration } from '../../triggers/schedule.js';
import { closest } from '../suggest.js';
import type { GuardrailSection } from './guardrails/section.js';
import { fieldName } from './guardrails/section.js';

/** Where a memory came from. */
export const MEMORY_SOURCES = ['conversation_summary', 'tool_result', 'explicit'] as const;
export type MemorySource = (typeof MEMORY_SOURCES)[number];

/** The embedding model of each built-in provider type; `anthropic` has none. */
export const DEFAULT_EMBEDDING_MODELS: Readonly<Record<string, string | undefined>> = {
  openai: 'text-embedding-3-small',
  anthropic: undefined,
  'openai-compatible': undefined,
};

export const MEMORY_DEFAULTS = { top_k: 5, min_score: 0, max_tokens: 500 } as const;

/** Letters, digits, `_ . : -`, and `${inputs.*}` references (no `/`: a namespace is one URL path segment of the API). */
const NAME = '^[A-Za-z0-9_.:-]*(\\$\\{inputs\\.[A-Za-z0-9_.]+\\}[A-Za-z0-9_.:-]*)*$';

export const MEMORY_SCHEMA: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  required: ['namespace'],
  properties: {
    namespace: { type: 'string', minLength: 1, maxLength: 200, pattern: NAME },
    remember: {
      type: 'object',
      additionalProperties: false,
      properties: {
        conversation_summary: { type: 'boolean' },
        tool_results: { anyOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
        explicit: { type: 'boolean' },
      },
    },
    retrieval: {
      type: 'object',
      additionalProperties: false,
      properties: {
        top_k: { type: 'integer', minimum: 0, maximum: 100 },
        min_score: { type: 'number', minimum: -1, maximum: 1 },
        recency_half_life: { type: 'string' },
        max_tokens: { type: 'integer', minimum: 1, maximum: 100000 },
      },
    },
    embedding: {
      type: 'object',
      additionalProperties: false,
      properties: { provider: { type: 'string', minLength: 1 }, model: { type: 'string', minLength: 1 } },
    },
  },
};

/** `memory:` as validated, with defaults filled in. */
export interface MemorySpec {
  /** May contain `${inputs.*}` (resolved per step). */
  namespace: string;
  remember: { conversation_summary: boolean; tool_results: boolean | string[]; explicit: boolean };
  retrieval: { top_k: number; min_score: number; recency_half_life_ms?: number; max_tokens: number };
  /** Undefined `model`: the provider's default embedding model. */
  embedding: { provider: string; model: string };
}

/** What the parser needs to know about the agent (its chat provider is the default embedding provider). */
export interface MemoryAgentContext {
  provider: string;
  /** The agent's `runtime.base_url` (an openai-compatible provider's embeddings live there too). */
  base_url?: string;
  /** The names its `tools:` give (`remember.tool_results` must name one of them); undefined: not checked. */
  tools?: DeclaredTools;
}

/**
 * The tool names an agent.yaml gives without loading anything: built-in and HTTP tools, SW4RM tools,
 * an MCP server's `include:` (with its `name:` prefix); and what only loading tells.
 */
export interface DeclaredTools {
  names: readonly string[];
  /** MCP servers with a `name:` and no `include:`: any of their tools is `<prefix>_<its name>`. */
  prefixes: readonly string[];
  /** A module's exports, or an MCP server with neither `name:` nor `include:`: any name may be one. */
  open: boolean;
}

/**
 * Validate `memory:` (its JSON Schema has passed); problems go to `s.problems` with file, field and line.
 *
 * @example
 *   parseMemorySpec({ value: { namespace: 'notes' }, file, path: ['memory'], lineOf, problems }, { provider: 'openai' });
 */
export function parseMemorySpec(s: GuardrailSection, agent: MemoryAgentContext): MemorySpec {
  const raw = (s.value ?? {}) as Record<string, unknown>;
  const at = (...p: Array<string | number>): { field: string; line: number | undefined } => {
    // The line of the deepest key that is there.
    let line: number | undefined;
    for (let i = p.length; i >= 0 && line === undefined; i--) line = s.lineOf([...s.path, ...p.slice(0, i)]);
    return { field: fieldName([...s.path, ...p]), line };
  };
  const problem = (p: Array<string | number>, text: string): void => {
    const { field, line } = at(...p);
    s.problems.add(field, text, line);
  };
  const remember = (raw.remember ?? {}) as Record<string, unknown>;
  const retrieval = (raw.retrieval ?? {}) as Record<string, unknown>;
  const embedding = (raw.embedding ?? {}) as Record<string, unknown>;

  let halfLife: number | undefined;
  if (typeof retrieval.recency_half_life === 'string') {
    halfLife = parseDuration(retrieval.recency_half_life);
    if (halfLife === undefined || halfLife <= 0) problem(['retrieval', 'recency_half_life'], `'${retrieval.recency_half_life}' is not a duration; write a whole number and a unit, such as 12h, 7d or 30d`);
  }
  const namespace = typeof raw.namespace === 'string' ? raw.namespace : '';
  if (namespace.includes('${') && !/\$\{inputs\.[A-Za-z0-9_.]+\}/.test(namespace)) problem(['namespace'], `'${namespace}' may only reference \${inputs.*}`);

  const provider = typeof embedding.provider === 'string' ? embedding.provider : agent.provider;
  let model = typeof embedding.model === 'string' ? embedding.model : undefined;
  if (model === undefined) {
    model = DEFAULT_EMBEDDING_MODELS[provider];
    if (model === undefined) {
      const why = provider === 'anthropic' ? `provider 'anthropic' has no embedding model` : `provider '${provider}' has no default embedding model`;
      problem(
        embedding.provider !== undefined ? ['embedding', 'provider'] : ['embedding'],
        `${why}; name one, e.g. embedding: { provider: openai, model: text-embedding-3-small }${provider === agent.provider && provider !== 'anthropic' ? ` or embedding: { model: <its embedding model> }` : ''}`,
      );
    }
  }
  if (provider === 'anthropic' && embedding.model !== undefined) problem(['embedding', 'provider'], `provider 'anthropic' has no embedding models; use an openai or openai-compatible provider`);

  const toolResults = remember.tool_results;
  if (Array.isArray(toolResults) && agent.tools) checkToolResults(toolResults as string[], agent.tools, (i, text) => problem(['remember', 'tool_results', i], text));
  return {
    namespace,
    remember: {
      conversation_summary: remember.conversation_summary === true,
      tool_results: Array.isArray(toolResults) ? (toolResults as string[]) : toolResults === true,
      explicit: remember.explicit === true,
    },
    retrieval: {
      top_k: (retrieval.top_k as number | undefined) ?? MEMORY_DEFAULTS.top_k,
      min_score: (retrieval.min_score as number | undefined) ?? MEMORY_DEFAULTS.min_score,
      max_tokens: (retrieval.max_tokens as number | undefined) ?? MEMORY_DEFAULTS.max_tokens,
      ...(halfLife !== undefined ? { recency_half_life_ms: halfLife } : {}),
    },
    embedding: { provider, model: model ?? '' },
  };
}

/** The built-in tool that `remember.explicit` adds: what it stores is a memory already. */
export const REMEMBER_TOOL = 'remember';

/**
 * `remember.tool_results` names tools the agent has: a name its `tools:` cannot give is refused (one
 * that may come from a module or an MCP server is checked when the tools load, src/memory/memory-guard.ts).
 */
function checkToolResults(names: readonly string[], tools: DeclaredTools, problem: (index: number, text: string) => void): void {
  names.forEach((name, i) => {
    if (tools.names.includes(name) || tools.open || tools.prefixes.some((p) => name.startsWith(`${p}_`))) return;
    if (name === REMEMBER_TOOL) return problem(i, `'${name}' is the built-in memory tool (remember.explicit): what it stores is remembered already; name the agent's own tools here`);
    const near = closest(name, tools.names);
    const have = tools.names.length ? `its tools: ${tools.names.join(', ')}${tools.prefixes.length ? ', ' : ''}` : tools.prefixes.length ? 'its tools: ' : 'it has no tools';
    const prefixed = tools.prefixes.map((p) => `${p}_*`).join(', ');
    problem(i, `'${name}' is not a tool of this agent (${have}${prefixed})${near ? `; did you mean '${near}'?` : ''}`);
  });
}
