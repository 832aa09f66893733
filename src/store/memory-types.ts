/**
 * Vector memory rows (migration 20): what `Store.putMemory`, `searchMemories`, `listMemories` and
 * `deleteMemories` take and give. The vectors themselves live in a per-dimension index next to the
 * `memories` table (sqlite-vec `vec0` in SQLite, a pgvector column in PostgreSQL).
 */
import { StoreError } from '../core/errors.js';
import type { MemorySource } from '../core/manifest/memory.js';

export type { MemorySource } from '../core/manifest/memory.js';

export interface MemoryRecord {
  /** A decimal string (an integer key in both stores). */
  id: string;
  namespace: string;
  text: string;
  metadata: Record<string, unknown>;
  source: MemorySource;
  run_id: string | null;
  step_id: string | null;
  session_id: string | null;
  /** Unique in the store: a second write with the same key is a no-op (a replayed step). */
  dedup_key: string;
  created_at: number;
  dimensions: number;
}

/** A memory to write: the row without its id, and its embedding. */
export type MemoryWrite = Omit<MemoryRecord, 'id' | 'dimensions'> & { embedding: ArrayLike<number> };

/** A search hit: `score` is the cosine similarity (1: same direction). */
export type ScoredMemory = MemoryRecord & { score: number };

export interface MemorySearch {
  namespace: string;
  vector: ArrayLike<number>;
  k: number;
}

export interface MemoryListQuery {
  /** Undefined: every namespace. */
  namespace?: string;
  limit?: number;
  /** Newest first: rows with an id below this one (a page's last id). */
  before?: string;
}

/** The largest vector the stores accept (sqlite-vec and pgvector's HNSW both stop near here). */
export const MAX_MEMORY_DIMENSIONS = 2000;

/** A vector's dimension count, refused when the index cannot hold it. */
export function memoryDimensions(v: ArrayLike<number>): number {
  const n = v.length;
  if (!Number.isInteger(n) || n < 1 || n > MAX_MEMORY_DIMENSIONS) {
    throw new StoreError('MEMORY_VECTOR_INVALID', `a memory's embedding has ${n} dimensions; between 1 and ${MAX_MEMORY_DIMENSIONS} are supported`, { dimensions: n });
  }
  for (let i = 0; i < n; i++) if (!Number.isFinite(v[i])) throw new StoreError('MEMORY_VECTOR_INVALID', `a memory's embedding has a non-finite value at ${i}`, { index: i });
  return n;
}
