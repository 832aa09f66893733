/**
 * An IVF index over vector memory in SQLite (as pgvector's ivfflat): once a namespace holds
 * `ivfTuning.threshold` vectors of one dimension count, k-means centres (about √N of them) are
 * trained on its vectors and each vector is filed under its nearest centre's cell; a search probes
 * the `nprobe` cells nearest to the query, picks candidates by int8 codes and re-ranks them exactly.
 * Below the threshold search stays exact (the vec0 table of memory-sql.ts, which keeps every vector).
 *
 * Tables, made on first use (no migration): `memory_ivf_state` (per dimension count and namespace:
 * the vector count, the count at the last training, the centres as one blob, a version) and
 * `memory_ivf_<dims>` (namespace, cell, id, int8 codes), WITHOUT ROWID so a cell's vectors sit
 * together on disk. Policy: new writes are filed under their nearest centre; the namespace is
 * retrained when it has grown `growth`× since its last training. Every write and delete runs in the
 * store's exclusive transaction, so concurrent writers (other connections, other processes) see one
 * consistent state; readers re-read the centres when the version changes.
 *
 * @example
 *   ivfAfterInsert(db, stmt, dims, namespace, id, unitVector); // inside putMemory's transaction
 *   const hits = ivfSearch(stmt, dims, namespace, unitVector, 10); // null: search exactly
 */
import type Database from 'better-sqlite3';
import { nearestCentre, nearestCentres, trainKmeans, type Centres } from '../kmeans.js';

type Stmt = (sql: string) => Database.Statement;

/**
 * The index's knobs. `threshold`: vectors in a namespace before it gets an index; `nprobe`: cells a
 * search reads; `growth`: retrain when the namespace has grown this many times since the last
 * training; `sampleMultiple`: training sample size per centre; `rerank`: candidates per result that
 * the int8 pass hands to the exact re-rank. Tests lower the threshold.
 */
export const ivfTuning = { threshold: 5_000, nprobe: 10, growth: 4, sampleMultiple: 32, rerank: 10 };

/**
 * int8 codes of a unit vector for the first pass. A unit vector of d dimensions has components of
 * about 1/√d, so sqlite-vec's 'unit' scale (±1 → ±127) leaves them a handful of levels; this scale
 * spends the range on ±6/√d (larger components clip, which only the exact re-rank sees).
 */
export function int8Codes(v: Float32Array): Buffer {
  const scale = 127 / Math.min(1, 6 / Math.sqrt(v.length));
  const out = Buffer.alloc(v.length);
  for (let i = 0; i < v.length; i++) out.writeInt8(Math.max(-127, Math.min(127, Math.round((v[i] as number) * scale))), i);
  return out;
}

const ivfTable = (dims: number): string => `memory_ivf_${dims}`;
// No per-connection memo of "created": a rolled-back transaction would undo the CREATE behind it.
function ensureTables(db: Database.Database, dims: number): void {
  db.exec(`CREATE TABLE IF NOT EXISTS memory_ivf_state (dims INTEGER NOT NULL, namespace TEXT NOT NULL, n INTEGER NOT NULL, trained_n INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0, centres BLOB, PRIMARY KEY (dims, namespace))`);
  db.exec(`CREATE TABLE IF NOT EXISTS ${ivfTable(dims)} (namespace TEXT NOT NULL, cell INTEGER NOT NULL, id INTEGER NOT NULL, codes BLOB NOT NULL, PRIMARY KEY (namespace, cell, id)) WITHOUT ROWID`);
  db.exec(`CREATE INDEX IF NOT EXISTS ${ivfTable(dims)}_id ON ${ivfTable(dims)} (id)`);
  // The float vectors again, one row each by id (1.5 KB fits a table page; vec0 reads a whole chunk per rowid).
  db.exec(`CREATE TABLE IF NOT EXISTS ${ivfTable(dims)}_vectors (id INTEGER PRIMARY KEY, embedding BLOB NOT NULL)`);
}

function hasTable(stmt: Stmt, name: string): boolean {
  return stmt(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
}

const asFloats = (b: Buffer): Float32Array => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const asBlob = (v: Float32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

interface State {
  n: number;
  trained_n: number;
  version: number;
  trained: number;
}

/** File a new vector (`v`, a unit vector) in its namespace's index, training it when due. Run inside putMemory's transaction. */
export function ivfAfterInsert(db: Database.Database, stmt: Stmt, dims: number, namespace: string, id: number, v: Float32Array): void {
  ensureTables(db, dims);
  // The centres blob (hundreds of KB) is read only when this version is not cached.
  let s = stmt('SELECT n, trained_n, version, centres IS NOT NULL AS trained FROM memory_ivf_state WHERE dims = ? AND namespace = ?').get(dims, namespace) as State | undefined;
  if (s === undefined) {
    // First write since this index existed: count what the namespace holds already (this one included).
    const n = stmt('SELECT count(*) FROM memories WHERE namespace = ? AND dimensions = ?').pluck().get(namespace, dims) as number;
    stmt('INSERT INTO memory_ivf_state (dims, namespace, n) VALUES (?, ?, ?)').run(dims, namespace, n);
    s = { n, trained_n: 0, version: 0, trained: 0 };
  } else {
    s.n += 1;
    stmt('UPDATE memory_ivf_state SET n = ? WHERE dims = ? AND namespace = ?').run(s.n, dims, namespace);
  }
  const due = s.n >= ivfTuning.threshold && (!s.trained || s.n >= s.trained_n * ivfTuning.growth);
  if (due) {
    train(stmt, dims, namespace, s.version);
    return;
  }
  if (s.trained) {
    const c = centresOf(stmt, dims, namespace, s.version);
    stmt(`INSERT OR REPLACE INTO ${ivfTable(dims)} (namespace, cell, id, codes) VALUES (?, ?, ?, ?)`).run(namespace, nearestCentre(c, v), id, int8Codes(v));
    stmt(`INSERT OR REPLACE INTO ${ivfTable(dims)}_vectors (id, embedding) VALUES (?, ?)`).run(id, asBlob(v));
  }
}

/** Train the namespace's centres on (a sample of) its vectors and refile every vector. */
function train(stmt: Stmt, dims: number, namespace: string, version: number): void {
  const rows = stmt(`SELECT rowid AS id, embedding FROM memory_vectors_${dims} WHERE namespace = ?`).all(namespace) as Array<{ id: number; embedding: Buffer }>;
  const vectors = rows.map((r) => asFloats(r.embedding));
  const nlist = Math.max(1, Math.round(Math.sqrt(vectors.length)));
  // An evenly spaced sample: training cost stays proportional to nlist², not N·nlist.
  const want = Math.min(vectors.length, nlist * ivfTuning.sampleMultiple);
  const step = vectors.length / want;
  const sample = Array.from({ length: want }, (_, i) => vectors[Math.floor(i * step)] as Float32Array);
  const c = trainKmeans(sample, nlist, { seed: version + 1, iterations: 8 });
  stmt(`DELETE FROM ${ivfTable(dims)}_vectors WHERE id IN (SELECT id FROM ${ivfTable(dims)} WHERE namespace = ?)`).run(namespace);
  stmt(`DELETE FROM ${ivfTable(dims)} WHERE namespace = ?`).run(namespace);
  const ins = stmt(`INSERT INTO ${ivfTable(dims)} (namespace, cell, id, codes) VALUES (?, ?, ?, ?)`);
  const insVector = stmt(`INSERT OR REPLACE INTO ${ivfTable(dims)}_vectors (id, embedding) VALUES (?, ?)`);
  for (let i = 0; i < rows.length; i++) {
    const v = vectors[i] as Float32Array;
    const { id, embedding } = rows[i] as { id: number; embedding: Buffer };
    ins.run(namespace, nearestCentre(c, v), id, int8Codes(v));
    insVector.run(id, embedding);
  }
  // The version is the clock's (µs-scaled, with a random tail): a retrain elsewhere, or another file's
  // namespace of the same name, never reuses a cached version.
  const next = Math.max(version + 1, Date.now() * 1000 + Math.floor(Math.random() * 1000));
  stmt('UPDATE memory_ivf_state SET trained_n = ?, n = ?, version = ?, centres = ? WHERE dims = ? AND namespace = ?').run(vectors.length, vectors.length, next, asBlob(c.data), dims, namespace);
  cache.set(`${dims}/${namespace}/${next}`, c);
}

const cache = new Map<string, Centres>();

function centresOf(stmt: Stmt, dims: number, namespace: string, version: number): Centres {
  const key = `${dims}/${namespace}/${version}`;
  let c = cache.get(key);
  if (c === undefined) {
    const data = asFloats(stmt('SELECT centres FROM memory_ivf_state WHERE dims = ? AND namespace = ?').pluck().get(dims, namespace) as Buffer);
    c = { k: data.length / dims, dims, data };
    if (cache.size > 256) cache.clear();
    cache.set(key, c);
  }
  return c;
}

/** The k nearest ids of a namespace through its index (L2 on unit vectors), or null when it has none and search must be exact. */
export function ivfSearch(stmt: Stmt, dims: number, namespace: string, q: Float32Array, k: number): Array<{ id: number; distance: number }> | null {
  if (!hasTable(stmt, 'memory_ivf_state')) return null;
  const s = stmt('SELECT n, version FROM memory_ivf_state WHERE dims = ? AND namespace = ? AND centres IS NOT NULL').get(dims, namespace) as { n: number; version: number } | undefined;
  if (s === undefined || s.n < ivfTuning.threshold) return null;
  const c = centresOf(stmt, dims, namespace, s.version);
  const cells = nearestCentres(c, q, ivfTuning.nprobe);
  // Two passes: int8 codes of the probed cells (384 bytes a row, on the index's own pages) pick
  // rerank·k candidates; their float vectors (by id) rank them exactly.
  const candidates = stmt(`SELECT id FROM ${ivfTable(dims)} WHERE namespace = ? AND cell IN (SELECT value FROM json_each(?)) ORDER BY vec_distance_l2(vec_int8(codes), vec_int8(?)) LIMIT ?`)
    .pluck()
    .all(namespace, JSON.stringify(cells), int8Codes(q), Math.max(k * ivfTuning.rerank, 50)) as number[];
  if (candidates.length === 0) return [];
  return stmt(`SELECT id, vec_distance_l2(embedding, ?) AS distance FROM ${ivfTable(dims)}_vectors WHERE id IN (SELECT value FROM json_each(?)) ORDER BY distance LIMIT ?`).all(
    asBlob(q),
    JSON.stringify(candidates),
    k,
  ) as Array<{ id: number; distance: number }>;
}

/** Drop deleted vectors from the index (by id, or the whole namespace). Run inside deleteMemories' transaction. */
export function ivfDelete(stmt: Stmt, dims: number, namespace: string, ids: readonly number[] | 'all'): void {
  if (!hasTable(stmt, 'memory_ivf_state')) return;
  if (ids === 'all') {
    stmt('DELETE FROM memory_ivf_state WHERE dims = ? AND namespace = ?').run(dims, namespace);
    if (hasTable(stmt, ivfTable(dims))) {
      stmt(`DELETE FROM ${ivfTable(dims)}_vectors WHERE id IN (SELECT id FROM ${ivfTable(dims)} WHERE namespace = ?)`).run(namespace);
      stmt(`DELETE FROM ${ivfTable(dims)} WHERE namespace = ?`).run(namespace);
    }
    return;
  }
  if (hasTable(stmt, ivfTable(dims))) {
    stmt(`DELETE FROM ${ivfTable(dims)} WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(ids));
    stmt(`DELETE FROM ${ivfTable(dims)}_vectors WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(ids));
  }
  stmt('UPDATE memory_ivf_state SET n = max(0, n - ?) WHERE dims = ? AND namespace = ?').run(ids.length, dims, namespace);
}
