/**
 * The knowledge store of a Swarm instance: its store, and its vector memory's embedders (the same
 * provider layer, keys and base URLs as agents' memory). `SWARM_KNOWLEDGE_EMBEDDING`
 * (`provider/model`) names the model that embeds decisions for SIMILAR lookups; without it, a task
 * type's decisions are embedded with the model of its newest embedded decision, if any, and lookups
 * are EXACT only until one is.
 *
 * @example
 *   const knowledge = knowledgeForSwarm(swarm, process.env);
 */
import { UserError } from '../../core/errors.js';
import type { MemorySpec } from '../../core/manifest/memory.js';
import type { AgentMemory } from '../../memory/agent-memory.js';
import type { Redactor } from '../../secrets/redactor.js';
import type { Store } from '../../store/store.js';
import { createKnowledge, type Knowledge } from './index.js';

/** `provider/model` → its parts; UserError KNOWLEDGE_EMBEDDING_INVALID otherwise. */
export function parseEmbeddingRef(ref: string, from = 'SWARM_KNOWLEDGE_EMBEDDING'): { provider: string; model: string } {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) {
    throw new UserError('KNOWLEDGE_EMBEDDING_INVALID', `${from} must be provider/model (e.g. openai/text-embedding-3-small), not '${ref}'`, { field: from });
  }
  return { provider: ref.slice(0, slash), model: ref.slice(slash + 1) };
}

export function knowledgeForSwarm(swarm: { store: Store; memory: AgentMemory; redactor?: Redactor }, env: NodeJS.ProcessEnv = {}): Knowledge {
  const redactor = swarm.redactor;
  const configured = env.SWARM_KNOWLEDGE_EMBEDDING?.trim() || undefined;
  return createKnowledge({
    store: swarm.store,
    // Only `embedding` of a memory spec is read by embedderOf.
    embedderFor: (model) => swarm.memory.embedderOf({ embedding: parseEmbeddingRef(model, 'the embedding model') } as MemorySpec),
    ...(configured ? { embedding: configured } : {}),
    // Secret values (and the storage policy's data classes) never reach the knowledge tables.
    ...(redactor ? { redact: <T>(v: T): T => redactor.value(v) } : {}),
  });
}
