import type { MemoryRecord } from '../store/memory-types.js';

/** A memory as the API and `swarm memory … --json` show it (dates as ISO text, scores to 4 places). */
export interface MemoryJson {
  id: string;
  namespace: string;
  text: string;
  source: MemoryRecord['source'];
  metadata: Record<string, unknown>;
  run_id: string | null;
  step_id: string | null;
  session_id: string | null;
  created_at: string;
  dimensions: number;
  score?: number;
}

/**
 * @example
 *   memoryJson(await store.listMemories({ namespace: 'n', limit: 1 })[0]);
 */
export function memoryJson(m: MemoryRecord & { score?: number }): MemoryJson {
  return {
    id: m.id,
    namespace: m.namespace,
    text: m.text,
    source: m.source,
    metadata: m.metadata,
    run_id: m.run_id,
    step_id: m.step_id,
    session_id: m.session_id,
    created_at: new Date(m.created_at).toISOString(),
    dimensions: m.dimensions,
    ...(m.score !== undefined ? { score: Math.round(m.score * 10_000) / 10_000 } : {}),
  };
}
