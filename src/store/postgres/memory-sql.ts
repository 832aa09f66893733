/**
 * Vector memory in PostgreSQL (migration 20) with pgvector: the `memories` rows, and one table per
 * embedding dimension (`memory_vectors_<n>`: the memory's id, its namespace and a `vector(n)` with an
 * HNSW index on cosine distance), made on first use. pgvector is optional: without it the memory
 * operations fail with MEMORY_BACKEND_UNAVAILABLE, and everything else works.
 *
 * @example
 *   await ensureVectorExtension(q, location);
 *   const hits = await q(searchSql(384), [toVector(v), 'notes', 5]);
 */
import { StoreError } from '../../core/errors.js';
import { memoryDimensions, type MemoryRecord } from '../memory-types.js';

type Row = Record<string, unknown>;
export type MemoryQuery = (text: string, values?: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number }>;

/** pgvector installed in this database (created here when it is available but not yet created). */
export async function ensureVectorExtension(q: MemoryQuery, location: string): Promise<void> {
  const available = (await q(`SELECT installed_version FROM pg_available_extensions WHERE name = 'vector'`)).rows[0];
  if (!available) throw unavailable(location, 'the pgvector extension is not installed on the server');
  if (available.installed_version) return;
  try {
    await q('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (e) {
    throw unavailable(location, `CREATE EXTENSION vector failed (${(e as Error).message})`, e);
  }
}

function unavailable(location: string, why: string, cause?: unknown): StoreError {
  return new StoreError(
    'MEMORY_BACKEND_UNAVAILABLE',
    `vector memory on PostgreSQL needs pgvector: ${why} at ${location}. Install pgvector on the server (https://github.com/pgvector/pgvector, e.g. apt install postgresql-16-pgvector) and run CREATE EXTENSION vector; in the database as a superuser, or use the SQLite store (sqlite-vec ships with Swarm)`,
    { database: location },
    cause !== undefined ? { cause } : undefined,
  );
}

const vecTable = (dims: number): string => `memory_vectors_${dims}`;

/** The per-dimension table and its HNSW index (idempotent; DDL, so run it before the write's transaction). */
export function vectorTableSql(dims: number): string {
  const t = vecTable(dims);
  return `CREATE TABLE IF NOT EXISTS ${t} (id BIGINT PRIMARY KEY REFERENCES memories(id) ON DELETE CASCADE, namespace TEXT NOT NULL, embedding vector(${dims}) NOT NULL);
CREATE INDEX IF NOT EXISTS ${t}_hnsw ON ${t} USING hnsw (embedding vector_cosine_ops);
CREATE INDEX IF NOT EXISTS ${t}_namespace ON ${t} (namespace);`;
}

export async function vectorTableExists(q: MemoryQuery, dims: number): Promise<boolean> {
  return (await q('SELECT to_regclass($1) IS NOT NULL AS ok', [vecTable(dims)])).rows[0]?.ok === true;
}

/** pgvector's text form of a vector. */
export function toVector(v: ArrayLike<number>): string {
  memoryDimensions(v);
  return `[${Array.from(v).join(',')}]`;
}

export const INSERT_MEMORY_SQL = `INSERT INTO memories (namespace, text, metadata, source, run_id, step_id, session_id, dedup_key, created_at, dimensions)
VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (dedup_key) DO NOTHING RETURNING id`;

export const insertVectorSql = (dims: number): string => `INSERT INTO ${vecTable(dims)} (id, namespace, embedding) VALUES ($1, $2, $3::vector)`;

/** The k nearest of a namespace by cosine distance (`<=>`), best first; $1 vector, $2 namespace, $3 k. */
export const searchSql = (dims: number): string => `SELECT m.*, 1 - (v.embedding <=> $1::vector) AS score
FROM ${vecTable(dims)} v JOIN memories m ON m.id = v.id
WHERE v.namespace = $2 ORDER BY v.embedding <=> $1::vector LIMIT $3`;

export function listSql(byNamespace: boolean): string {
  return byNamespace
    ? 'SELECT * FROM memories WHERE namespace = $1 AND id < $2 ORDER BY id DESC LIMIT $3'
    : 'SELECT * FROM memories WHERE id < $1 ORDER BY id DESC LIMIT $2';
}

export function toMemory(r: Row): MemoryRecord {
  return {
    id: String(r.id),
    namespace: r.namespace as string,
    text: r.text as string,
    metadata: (typeof r.metadata === 'string' ? JSON.parse(r.metadata) : (r.metadata ?? {})) as Record<string, unknown>,
    source: r.source as MemoryRecord['source'],
    run_id: (r.run_id as string | null) ?? null,
    step_id: (r.step_id as string | null) ?? null,
    session_id: (r.session_id as string | null) ?? null,
    dedup_key: r.dedup_key as string,
    created_at: Number(r.created_at),
    dimensions: Number(r.dimensions),
  };
}
