/**
 * Vector memory for llm agents (`memory:` in agent.yaml): see docs/memory.md.
 *
 * @example
 *   import { AgentMemory, memoryGuard, providerEmbedder } from './memory/index.js';
 */
export { AgentMemory, resolveNamespace, MEMORY_TEXT_MAX_CHARS, type AgentMemoryOptions } from './agent-memory.js';
export { providerEmbedder, type Embedder } from './embedder.js';
export { memoryGuard, summary } from './memory-guard.js';
export { estimateTokens, memoryNote, rankMemories, type RankedMemory } from './recall.js';
