/**
 * Vector memory at run time: writes (idempotent by dedup key), recall for a conversation, the
 * built-in `remember` tool, and search/list/delete for the CLI and the API. One per Swarm instance;
 * the store holds the memories (sqlite-vec or pgvector), the embedder turns text into vectors.
 *
 * @example
 *   const memory = new AgentMemory({ store, embedderFor, metrics: () => NO_METRICS, now: Date.now });
 *   await memory.search('support-42', 'tea or coffee?', { k: 3 });
 */
import { createHash } from 'node:crypto';
import { StepError, UserError, isSwarmError } from '../core/errors.js';
import type { AgentManifest } from '../core/manifest/agent.js';
import type { MemorySpec } from '../core/manifest/memory.js';
import type { EngineMetrics } from '../observability/engine-metrics.js';
import type { MemoryRecord, MemoryWrite, ScoredMemory } from '../store/memory-types.js';
import type { Store } from '../store/store.js';
import type { Tool } from '../agents/agent.js';
import { ToolCallError } from '../agents/tools/errors.js';
import { hasRedactionMarker } from '../guardrails/redaction/classifier.js';
import type { Embedder } from './embedder.js';
import { memoryNote, rankMemories, type RankedMemory } from './recall.js';

/** The longest text one memory keeps (a longer tool result or answer is cut, with a mark). */
export const MEMORY_TEXT_MAX_CHARS = 4000;

export interface AgentMemoryOptions {
  store: Store;
  /** The embedder of `provider/model` (the agent, when known, lends its base URL to its own provider). */
  embedderFor: (embedding: { provider: string; model: string }, agent?: AgentManifest) => Embedder | Promise<Embedder>;
  metrics: () => EngineMetrics;
  now: () => number;
  /**
   * The storage policy (secrets, data classes): a memory is embedded from the text that is stored,
   * so its vector holds nothing the text does not (a vector of the raw text would let anyone who
   * reads the file test whether an e-mail or a card was remembered).
   */
  redact?: (text: string) => string;
}

/** Where a write comes from, for its row. */
export interface MemoryOrigin {
  run_id: string | null;
  step_id: string | null;
  session_id: string | null;
}

export class AgentMemory {
  constructor(private readonly o: AgentMemoryOptions) {}

  /** The embedder of an agent's memory. */
  embedderOf(spec: MemorySpec, agent?: AgentManifest): Promise<Embedder> {
    return Promise.resolve(this.o.embedderFor(spec.embedding, agent));
  }

  /** Write memories; one whose dedup key is stored already changes nothing. Returns how many were new. */
  async write(embedder: Embedder, items: ReadonlyArray<Omit<MemoryWrite, 'embedding' | 'created_at'>>, signal?: AbortSignal): Promise<number> {
    return this.timed('write', async () => {
      const texts = items.map((i) => clip(this.o.redact ? this.o.redact(i.text) : i.text));
      const vectors = await embedder.embed(texts, signal);
      let created = 0;
      for (const [n, item] of items.entries()) {
        const r = await this.o.store.putMemory({
          ...item,
          text: texts[n] as string,
          metadata: { ...item.metadata, embedding_model: embedder.id },
          created_at: this.o.now(),
          embedding: vectors[n] as Float32Array,
        });
        if (r.created) created++;
      }
      return created;
    });
  }

  /** The memories to show for `query` under the agent's retrieval policy, and the note that shows them (undefined: none). */
  async recall(spec: MemorySpec, namespace: string, query: string, embedder: Embedder, signal?: AbortSignal): Promise<{ hits: RankedMemory[]; note: string | undefined }> {
    if (spec.retrieval.top_k === 0 || query.trim() === '') return { hits: [], note: undefined };
    const hits = await this.timed('search', async () => {
      const [vector] = await embedder.embed([query], signal);
      // Recency may promote a less similar hit: fetch more than top_k to rank from.
      const k = spec.retrieval.recency_half_life_ms ? spec.retrieval.top_k * 4 : spec.retrieval.top_k;
      return this.o.store.searchMemories({ namespace, vector: vector as Float32Array, k });
    });
    const picked = rankMemories(hits, spec.retrieval, this.o.now());
    return { hits: picked, note: picked.length ? memoryNote(namespace, picked) : undefined };
  }

  /**
   * Search a namespace for a text (CLI, API). `model` (`provider/model`) embeds the query; default:
   * the model that embedded the namespace's newest memory.
   */
  async search(namespace: string, text: string, o: { k?: number; model?: string } = {}): Promise<ScoredMemory[]> {
    if (!text.trim()) throw new UserError('ARGUMENT_INVALID', 'a memory search needs a text to look for; it is empty', { field: 'text' });
    const model = o.model ?? (await this.o.store.listMemories({ namespace, limit: 1 }))[0]?.metadata.embedding_model;
    if (typeof model !== 'string') return [];
    const slash = model.indexOf('/');
    if (slash <= 0) throw new UserError('MEMORY_MODEL_INVALID', `'${model}' is not an embedding model reference; write provider/model, e.g. openai/text-embedding-3-small`, { model });
    const embedder = await this.o.embedderFor({ provider: model.slice(0, slash), model: model.slice(slash + 1) });
    return this.timed('search', async () => {
      const [vector] = await embedder.embed([text]);
      return this.o.store.searchMemories({ namespace, vector: vector as Float32Array, k: o.k ?? 5 });
    });
  }

  list(namespace: string | undefined, o: { limit?: number; before?: string } = {}): Promise<MemoryRecord[]> {
    return this.o.store.listMemories({ ...(namespace !== undefined ? { namespace } : {}), ...o });
  }

  delete(namespace: string, id?: string): Promise<number> {
    return this.timed('delete', () => this.o.store.deleteMemories({ namespace, ...(id !== undefined ? { id } : {}) }));
  }

  /**
   * The built-in `remember` tool of an agent whose memory has `remember.explicit` (origin kind
   * `memory`). Its write's dedup key is the call's idempotency key and the text's digest, so a re-run call writes once.
   * An empty or blank text is not stored: the model gets an error result saying so.
   */
  rememberTool(manifest: AgentManifest, scope: { inputs: Record<string, unknown>; run?: Record<string, unknown> }): Tool | undefined {
    const spec = manifest.llm?.memory;
    if (!spec?.remember.explicit) return undefined;
    const namespace = resolveNamespace(spec.namespace, scope.inputs);
    const run = scope.run ?? {};
    return {
      name: 'remember',
      description: 'Store a fact in long-term memory, to be recalled in later conversations. Use for durable facts and preferences, not for the conversation itself.',
      parameters: { type: 'object', properties: { text: { type: 'string', description: 'The fact to remember, self-contained.' } }, required: ['text'], additionalProperties: false },
      trusted: true,
      origin: { kind: 'memory' },
      execute: async (args, ctx) => {
        const text = typeof args.text === 'string' ? args.text : '';
        // An error result, not a failed step: the model is told and can call again with the fact.
        if (text.trim() === '') throw new ToolCallError('TOOL_ARGUMENTS_INVALID', 'nothing was remembered: the text is empty; call remember with the fact itself, e.g. {"text": "Ada prefers green tea"}');
        const embedder = await this.embedderOf(spec, manifest);
        const created = await this.write(
          embedder,
          [
            {
              namespace,
              text,
              metadata: { agent: manifest.name },
              source: 'explicit',
              run_id: typeof run.id === 'string' ? run.id : null,
              step_id: typeof run.step === 'string' ? run.step : null,
              session_id: ctx.idempotencyKey.slice(0, ctx.idempotencyKey.lastIndexOf('/')) || null,
              // The call id alone is not enough: some providers number calls per reply, so a later turn may reuse one.
              dedup_key: `${ctx.idempotencyKey}/remember/${createHash('sha256').update(text).digest('hex').slice(0, 16)}`,
            },
          ],
          ctx.signal,
        );
        return created ? 'Remembered.' : 'Already remembered.';
      },
    };
  }

  private async timed<T>(op: 'write' | 'search' | 'delete', fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const v = await fn();
      this.o.metrics().memoryOperation(op, 'ok', (performance.now() - started) / 1000);
      return v;
    } catch (e) {
      this.o.metrics().memoryOperation(op, 'error', (performance.now() - started) / 1000);
      if (isSwarmError(e)) throw e;
      // The embedding provider failed: the step may try again later.
      throw new StepError('MEMORY_OPERATION_FAILED', `memory ${op} failed: ${(e as Error)?.message ?? String(e)}`, true, {}, { cause: e });
    }
  }
}

/**
 * `${inputs.user}` in a namespace, from the step's inputs; a missing or empty value is an error, and
 * so is a value the storage policy redacted (the step's inputs are stored redacted, so every user's
 * `[EMAIL]` would be one namespace: one user's memories recalled for another).
 */
export function resolveNamespace(template: string, inputs: Readonly<Record<string, unknown>>): string {
  return template.replace(/\$\{inputs\.([A-Za-z0-9_.]+)\}/g, (_, path: string) => {
    let v: unknown = inputs;
    for (const p of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
    if ((typeof v !== 'string' && typeof v !== 'number') || v === '') {
      throw new StepError('MEMORY_NAMESPACE_INVALID', `memory.namespace '${template}' needs the input '${path}' (a string or number), which this step has not got`, false, { namespace: template });
    }
    const value = String(v);
    if (hasRedactionMarker(value)) {
      throw new StepError(
        'MEMORY_NAMESPACE_INVALID',
        `memory.namespace '${template}': the input '${path}' is stored redacted ('${value}'), so it cannot tell one namespace from another; key the namespace by an input the storage policy keeps (guardrails.redaction), such as a customer id`,
        false,
        { namespace: template, input: path },
      );
    }
    return value;
  });
}

const CUT_MARK = '… [cut]';

/** At most MEMORY_TEXT_MAX_CHARS, the mark included. */
function clip(text: string): string {
  return text.length > MEMORY_TEXT_MAX_CHARS ? `${text.slice(0, MEMORY_TEXT_MAX_CHARS - CUT_MARK.length)}${CUT_MARK}` : text;
}
