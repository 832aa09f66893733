/**
 * Embeddings for vector memory: texts in, unit-length (or not: cosine does not mind) vectors out.
 * The provider embedder goes through the AI SDK (`embedMany`) with the provider layer's embedding
 * model, so keys, base URLs and the fake vendor server work as they do for chat models.
 *
 * @example
 *   const e = providerEmbedder('openai/text-embedding-3-small', createEmbeddingModel(spec, providers, env));
 *   const [v] = await e.embed(['the user prefers tea']);
 */
import type { EmbeddingModel } from '../agents/providers/ai-sdk-model.js';
import { lazyModule } from '../core/lazy-module.js';

/** The AI SDK, loaded at the first embedding. */
const aiSdk = lazyModule(() => import('ai'));

export interface Embedder {
  /** `provider/model`: recorded with each memory, so a later search can embed its query alike. */
  readonly id: string;
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** An embedder over an AI SDK embedding model (retries: the SDK's, two by default). */
export function providerEmbedder(id: string, model: EmbeddingModel): Embedder {
  return {
    id,
    async embed(texts, signal) {
      if (texts.length === 0) return [];
      const { embedMany } = await aiSdk();
      const { embeddings } = await embedMany({ model, values: [...texts], ...(signal ? { abortSignal: signal } : {}) });
      return embeddings.map((e) => Float32Array.from(e));
    },
  };
}
