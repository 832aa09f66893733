/**
 * Vector memory in SQLite (migration 20): the `memories` rows, and one sqlite-vec `vec0` table per
 * embedding dimension (`memory_vectors_<n>`, made on first use) whose rowid is the memory's id and
 * whose partition key is the namespace, so a search reads only its namespace's vectors. sqlite-vec
 * ships inside its npm package and is loaded into the connection on first use.
 *
 * vec0 is an exact (brute-force, SIMD) index: recall is 1. A namespace past memory-ivf.ts's threshold
 * is searched through an IVF index instead (approximate; bench/memory.ts reports recall and latency).
 * Scores are cosine similarities whatever the vectors' lengths (they are stored normalised).
 *
 * @example
 *   loadVectorExtension(db, file);
 *   putMemory(db, stmt, write);           // inside the store's exclusive section
 */
import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { StoreError } from '../../core/errors.js';
import { ivfAfterInsert, ivfDelete, ivfSearch } from './memory-ivf.js';
import { memoryDimensions, type MemoryListQuery, type MemoryRecord, type MemorySearch, type MemoryWrite, type ScoredMemory } from '../memory-types.js';

type Stmt = (sql: string) => Database.Statement;
type Row = Record<string, unknown>;

const loaded = new WeakSet<Database.Database>();

/** Load sqlite-vec into this connection (once); a clear error when it cannot be loaded. */
export function loadVectorExtension(db: Database.Database, file: string): void {
  if (loaded.has(db)) return;
  try {
    const require = createRequire(import.meta.url);
    (require('sqlite-vec') as { load(db: Database.Database): void }).load(db);
  } catch (e) {
    throw new StoreError(
      'MEMORY_BACKEND_UNAVAILABLE',
      `vector memory needs the sqlite-vec extension, which could not be loaded into ${file}: ${(e as Error).message} (reinstall Swarm's dependencies: npm install sqlite-vec)`,
      { file },
      { cause: e },
    );
  }
  loaded.add(db);
}

const vecTable = (dims: number): string => `memory_vectors_${dims}`;

function ensureVecTable(db: Database.Database, dims: number): void {
  // Vectors are stored normalised, so L2 ranks as cosine does (|a−b|² = 2 − 2·cos) and is cheaper
  // per comparison than vec0's cosine metric (bench/memory.ts).
  db.exec(`CREATE VIRTUAL TABLE IF NOT EXISTS ${vecTable(dims)} USING vec0(namespace TEXT PARTITION KEY, embedding float[${dims}])`);
}

/** The unit vector of `v` (a zero vector stays zero: it is nobody's neighbour). */
export function normalised(v: ArrayLike<number>): Float32Array {
  const out = Float32Array.from(v);
  let n = 0;
  for (const x of out) n += x * x;
  n = Math.sqrt(n);
  if (n > 0) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / n;
  return out;
}

function hasVecTable(stmt: Stmt, dims: number): boolean {
  return stmt(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(vecTable(dims)) !== undefined;
}

/** Write a memory unless its dedup key is there; returns its id and whether it is new. Run inside a transaction. */
export function putMemory(db: Database.Database, stmt: Stmt, m: MemoryWrite): { id: string; created: boolean } {
  const dims = memoryDimensions(m.embedding);
  const had = stmt('SELECT id FROM memories WHERE dedup_key = ?').pluck().get(m.dedup_key) as number | bigint | undefined;
  if (had !== undefined) return { id: String(had), created: false };
  ensureVecTable(db, dims);
  const id = stmt(
    `INSERT INTO memories (namespace, text, metadata, source, run_id, step_id, session_id, dedup_key, created_at, dimensions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
  )
    .pluck()
    .get(m.namespace, m.text, JSON.stringify(m.metadata ?? {}), m.source, m.run_id, m.step_id, m.session_id, m.dedup_key, m.created_at, dims) as number;
  const unit = normalised(m.embedding);
  stmt(`INSERT INTO ${vecTable(dims)} (rowid, namespace, embedding) VALUES (?, ?, ?)`).run(BigInt(id), m.namespace, unit);
  ivfAfterInsert(db, stmt, dims, m.namespace, id, unit);
  return { id: String(id), created: true };
}

/** The k nearest memories of a namespace (cosine), best first. */
export function searchMemories(stmt: Stmt, q: MemorySearch): ScoredMemory[] {
  const dims = memoryDimensions(q.vector);
  if (q.k <= 0 || !hasVecTable(stmt, dims)) return [];
  const unit = normalised(q.vector);
  // A large namespace goes through its IVF index (memory-ivf.ts); a small one is searched exactly.
  const hits =
    ivfSearch(stmt, dims, q.namespace, unit, q.k) ??
    (stmt(`SELECT rowid AS id, distance FROM ${vecTable(dims)} WHERE embedding MATCH ? AND k = ? AND namespace = ?`).all(unit, q.k, q.namespace) as Array<{ id: number; distance: number }>);
  if (hits.length === 0) return [];
  const rows = stmt(`SELECT * FROM memories WHERE id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(hits.map((h) => h.id))) as Row[];
  const byId = new Map(rows.map((r) => [Number(r.id), toMemory(r)]));
  const out: ScoredMemory[] = [];
  for (const h of hits) {
    const m = byId.get(Number(h.id));
    // Unit vectors: cosine similarity from the L2 distance.
    if (m) out.push({ ...m, score: 1 - (h.distance * h.distance) / 2 });
  }
  return out;
}

export function listMemories(stmt: Stmt, q: MemoryListQuery): MemoryRecord[] {
  const limit = Math.max(1, Math.min(q.limit ?? 100, 10_000));
  const before = q.before !== undefined ? Number(q.before) : Number.MAX_SAFE_INTEGER;
  const rows = (
    q.namespace !== undefined
      ? stmt('SELECT * FROM memories WHERE namespace = ? AND id < ? ORDER BY id DESC LIMIT ?').all(q.namespace, before, limit)
      : stmt('SELECT * FROM memories WHERE id < ? ORDER BY id DESC LIMIT ?').all(before, limit)
  ) as Row[];
  return rows.map(toMemory);
}

/** Delete one memory (`id`) or a whole namespace, rows and vectors together; returns how many. Run inside a transaction. */
export function deleteMemories(stmt: Stmt, q: { namespace: string; id?: string }): number {
  const rows = (
    q.id !== undefined
      ? stmt('SELECT id, dimensions FROM memories WHERE namespace = ? AND id = ?').all(q.namespace, Number(q.id))
      : stmt('SELECT id, dimensions FROM memories WHERE namespace = ?').all(q.namespace)
  ) as Array<{ id: number; dimensions: number }>;
  const byDims = new Map<number, number[]>();
  for (const r of rows) byDims.set(r.dimensions, [...(byDims.get(r.dimensions) ?? []), r.id]);
  for (const [dims, ids] of byDims) {
    if (hasVecTable(stmt, dims)) stmt(`DELETE FROM ${vecTable(dims)} WHERE rowid IN (SELECT value FROM json_each(?))`).run(JSON.stringify(ids));
    ivfDelete(stmt, dims, q.namespace, q.id === undefined ? 'all' : ids);
  }
  const ids = JSON.stringify(rows.map((r) => r.id));
  return stmt('DELETE FROM memories WHERE id IN (SELECT value FROM json_each(?))').run(ids).changes;
}

function toMemory(r: Row): MemoryRecord {
  return {
    id: String(r.id),
    namespace: r.namespace as string,
    text: r.text as string,
    metadata: JSON.parse((r.metadata as string | null) ?? '{}') as Record<string, unknown>,
    source: r.source as MemoryRecord['source'],
    run_id: (r.run_id as string | null) ?? null,
    step_id: (r.step_id as string | null) ?? null,
    session_id: (r.session_id as string | null) ?? null,
    dedup_key: r.dedup_key as string,
    created_at: Number(r.created_at),
    dimensions: Number(r.dimensions),
  };
}
