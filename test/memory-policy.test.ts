/**
 * `memory:` in agent.yaml (defaults, refusals with file, field and line) and the retrieval policy
 * (score threshold, recency weighting, token budget), pure and in process; the fake embeddings.
 */
import { describe, expect, it } from 'vitest';
import { parseAgentManifest } from '../src/core/manifest/agent.js';
import { ManifestError } from '../src/core/errors.js';
import { TOOL_SPEC_SCHEMA } from '../src/agents/tools/spec.js';
import { estimateTokens, memoryNote, rankMemories } from '../src/memory/recall.js';
import { resolveNamespace } from '../src/memory/agent-memory.js';
import type { ScoredMemory } from '../src/store/memory-types.js';
import { fakeEmbedding } from '../src/testing/fake-embeddings.js';

const agent = (memory: string, provider = 'openai'): string => `name: a\nversion: 1.0.0\nruntime: { type: llm, provider: ${provider}, model: m }\nmemory:\n${memory}`;
const problems = (text: string): string => {
  try {
    parseAgentManifest(text, 'agents/a/agent.yaml');
  } catch (e) {
    if (e instanceof ManifestError) return e.message;
    throw e;
  }
  throw new Error('accepted');
};

describe('memory: in agent.yaml', () => {
  it('fills in defaults: nothing remembered, top 5, 500 tokens, the provider’s embedding model', () => {
    const m = parseAgentManifest(agent('  namespace: notes-${inputs.user}\n'), 'agent.yaml');
    expect(m.llm?.memory).toEqual({
      namespace: 'notes-${inputs.user}',
      remember: { conversation_summary: false, tool_results: false, explicit: false },
      retrieval: { top_k: 5, min_score: 0, max_tokens: 500 },
      embedding: { provider: 'openai', model: 'text-embedding-3-small' },
    });
    const full = parseAgentManifest(agent('  namespace: n\n  remember: { tool_results: [lookup], explicit: true }\n  retrieval: { top_k: 2, min_score: 0.3, recency_half_life: 7d, max_tokens: 50 }\n  embedding: { model: text-embedding-3-large }\n').replace('memory:', 'tools:\n  - module: tools.mjs\nmemory:'), 'agent.yaml');
    expect(full.llm?.memory?.retrieval).toEqual({ top_k: 2, min_score: 0.3, max_tokens: 50, recency_half_life_ms: 7 * 86_400_000 });
    expect(full.llm?.memory?.remember.tool_results).toEqual(['lookup']);
    expect(full.llm?.memory?.embedding).toEqual({ provider: 'openai', model: 'text-embedding-3-large' });
    // An anthropic agent may embed with another provider.
    expect(parseAgentManifest(agent('  namespace: n\n  embedding: { provider: openai, model: text-embedding-3-small }\n', 'anthropic'), 'agent.yaml').llm?.memory?.embedding.provider).toBe('openai');
  });

  it('refuses bad values with file, field and line', () => {
    expect(problems(agent('  namespace: n\n', 'anthropic'))).toMatch(/agents\/a\/agent\.yaml:4: memory\.embedding: provider 'anthropic' has no embedding model/);
    expect(problems(agent('  namespace: n\n  retrieval:\n    top_k: -1\n'))).toMatch(/agent\.yaml:7.*top_k/);
    expect(problems(agent('  namespace: n\n  retrieval:\n    recency_half_life: 3 weeks\n'))).toMatch(/agent\.yaml:7: memory\.retrieval\.recency_half_life: '3 weeks' is not a duration/);
    expect(problems(agent('  namespace: "a/${secrets.X}"\n'))).toMatch(/agent\.yaml:5.*namespace/);
    expect(problems(agent('  namespace: n\n  remember: { everything: true }\n'))).toMatch(/everything/);
    // true or a list of tools: both named, not only the first of the schema's choices.
    expect(problems(agent('  namespace: n\n  remember:\n    tool_results: yes_please\n'))).toMatch(/agent\.yaml:7: memory\.remember\.tool_results: must be true, false or a list$/m);
    expect(problems(agent('  namespace: n\n  embedding: { provider: ollama }\n'))).toMatch(/agent\.yaml:6: memory\.embedding\.provider: provider 'ollama' has no default embedding model/);
  });

  it('refuses a tool_results name the agent has no tool for, with file, field and line; names a module or MCP server may give are left to run time', () => {
    const withTools = (tools: string, names: string): string => `name: a\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: m }\ntools:\n${tools}memory:\n  namespace: n\n  remember:\n    tool_results: [${names}]\n`;
    const http = '  - builtin: calculator\n  - { name: lookup_order, description: Look up, http: { url: "https://shop.example.com/orders" } }\n';
    const parse = (text: string) => parseAgentManifest(text, 'agents/a/agent.yaml', { toolSpecSchema: TOOL_SPEC_SCHEMA });
    expect(parse(withTools(http, 'lookup_order, calculator')).llm?.memory?.remember.tool_results).toEqual(['lookup_order', 'calculator']);
    const refused = (tools: string, names: string): string => {
      try {
        parse(withTools(tools, names));
      } catch (e) {
        if (e instanceof ManifestError) return e.message;
        throw e;
      }
      throw new Error('accepted');
    };
    expect(refused(http, 'lookup_order, nonexistent_tool')).toMatch(/agents\/a\/agent\.yaml:10: memory\.remember\.tool_results\[1\]: 'nonexistent_tool' is not a tool of this agent \(its tools: calculator, lookup_order\)$/m);
    expect(refused(http, 'lookup_ordr')).toMatch(/tool_results\[0\]: 'lookup_ordr' is not a tool of this agent .*; did you mean 'lookup_order'\?/);
    // The built-in remember tool's text is a memory already.
    expect(refused(http, 'remember')).toMatch(/tool_results\[0\]: 'remember' is the built-in memory tool/);
    // An agent without tools, and one per problem.
    expect(problems(agent('  namespace: n\n  remember:\n    tool_results: [lookup, search]\n'))).toMatch(/agent\.yaml:7: memory\.remember\.tool_results\[0\]: 'lookup' is not a tool of this agent \(it has no tools\)\n.*tool_results\[1\]: 'search'/);
    // An MCP server's include: names its tools as they will be (prefixed by its name:)…
    const mcp = '  - { mcp: { command: node, args: [notes.mjs] }, name: notes, include: [add_note, list.notes] }\n';
    expect(parse(withTools(mcp, 'notes_add_note, notes_list_notes')).llm?.memory?.remember.tool_results).toHaveLength(2);
    expect(refused(mcp, 'add_note')).toMatch(/'add_note' is not a tool of this agent \(its tools: notes_add_note, notes_list_notes\)/);
    // …without include:, any `<name>_…` may be one of its tools; other names are still refused.
    const prefixed = '  - { mcp: { command: node, args: [notes.mjs] }, name: notes }\n';
    expect(parse(withTools(prefixed, 'notes_add_note')).llm?.memory?.remember.tool_results).toEqual(['notes_add_note']);
    expect(refused(prefixed, 'add_note')).toMatch(/'add_note' is not a tool of this agent \(its tools: notes_\*\)/);
    // A module's exports, or an MCP server with neither name nor include, are known only when they load.
    expect(parse(withTools('  - module: tools.mjs\n', 'anything')).llm?.memory?.remember.tool_results).toEqual(['anything']);
    expect(parse(withTools('  - mcp: { url: "https://mcp.example.com/mcp" }\n', 'anything')).llm?.memory?.remember.tool_results).toEqual(['anything']);
  });

  it('resolves per-user namespaces from the step inputs, and refuses a missing input', () => {
    expect(resolveNamespace('support-${inputs.user.id}', { user: { id: 42 } })).toBe('support-42');
    expect(() => resolveNamespace('support-${inputs.user}', {})).toThrow(/needs the input 'user'/);
    // An input the storage policy redacted would put every such user in one namespace.
    for (const redacted of ['[EMAIL]', 'x-[DROPPED:national_id]', '[secret:TOKEN]', '****1111']) {
      expect(() => resolveNamespace('support-${inputs.user}', { user: redacted })).toThrow(/the input 'user' is stored redacted/);
    }
    expect(resolveNamespace('support-${inputs.user}', { user: 'ada@example.com' })).toBe('support-ada@example.com');
  });
});

const hit = (id: number, score: number, text: string, ageDays = 0): ScoredMemory => ({
  id: String(id), namespace: 'n', text, metadata: {}, source: 'explicit', run_id: null, step_id: null, session_id: null, dedup_key: String(id), created_at: 100 * 86_400_000 - ageDays * 86_400_000, dimensions: 3, score,
});
const NOW = 100 * 86_400_000;

describe('retrieval policy', () => {
  it('drops hits under min_score, keeps top_k best first', () => {
    const r = rankMemories([hit(1, 0.9, 'a'), hit(2, 0.1, 'b'), hit(3, 0.5, 'c'), hit(4, 0.4, 'd')], { top_k: 2, min_score: 0.2, max_tokens: 1000 }, NOW);
    expect(r.map((h) => h.id)).toEqual(['1', '3']);
  });

  it('weights by recency: a fresh, slightly less similar memory beats an old one', () => {
    const policy = { top_k: 1, min_score: 0, max_tokens: 1000, recency_half_life_ms: 7 * 86_400_000 };
    const r = rankMemories([hit(1, 0.9, 'old', 28), hit(2, 0.7, 'new', 0)], policy, NOW);
    expect(r.map((h) => h.id)).toEqual(['2']);
    expect(r[0]?.weighted).toBeCloseTo(0.7);
  });

  it('fills the token budget, skipping a hit too large for what is left', () => {
    const big = 'x'.repeat(400);
    const r = rankMemories([hit(1, 0.9, 'small fact'), hit(2, 0.8, big), hit(3, 0.7, 'another small fact')], { top_k: 5, min_score: 0, max_tokens: 60 }, NOW);
    expect(r.map((h) => h.id)).toEqual(['1', '3']);
    expect(estimateTokens(memoryNote('n', r))).toBeLessThanOrEqual(60);
  });
});

describe('fake embeddings', () => {
  it('are deterministic unit vectors; texts sharing words are nearer', () => {
    const cos = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * (b[i] as number), 0);
    const a = fakeEmbedding('Ada prefers green tea');
    expect(a).toHaveLength(384);
    expect(cos(a, a)).toBeCloseTo(1, 5);
    expect(Array.from(fakeEmbedding('Ada prefers green tea'))).toEqual(Array.from(a));
    expect(cos(a, fakeEmbedding('which tea does Ada prefer'))).toBeGreaterThan(cos(a, fakeEmbedding('the invoice is overdue')));
  });
});
