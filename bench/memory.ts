/**
 * Vector memory search at scale (issue 16's goal: p50 ≤ 5 ms at 100,000 stored vectors of 384
 * dimensions on sqlite-vec). One namespace of N clustered unit vectors (topics: 1,000 centres plus
 * noise, as sentence embeddings cluster) is written through memory-sql.ts's putMemory into a Swarm
 * SQLite file (one transaction), then Q queries (near a stored vector, as a recall is) go through
 * `Store.searchMemories` (k = 10: the KNN in vec0 and the rows' fetch). In the same run:
 *
 * - brute force: an exact scan in JavaScript over the same Float32Arrays (the ratio column);
 * - recall@10 of each method against that exact top 10;
 * - the IVF index (src/store/sqlite/memory-ivf.ts) at several nprobe, and the store searched exactly;
 * - the option sqlite-vec offers when exact is too slow: binary quantization (a `bit[384]` vec0
 *   column, Hamming KNN of 10·k candidates) re-ranked exactly (`vec_distance_l2` on the unit vectors).
 *
 *   npm run bench:memory                 (= build + node dist/bench/memory.js)
 *   node dist/bench/memory.js [--quick] [--vectors N] [--queries Q] [--dir <temp base>] [--keep] [--no-save]
 *
 * Results go to bench/results/memory-<timestamp>.json and memory-latest.json.
 */
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchOptions, intOption } from './args.js';
import { percentile, REPO_ROOT } from './harness.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { loadVectorExtension, putMemory } from '../src/store/sqlite/memory-sql.js';
import { ivfTuning } from '../src/store/sqlite/memory-ivf.js';
import { seededRandom } from '../src/store/kmeans.js';

const DIMS = 384;
const K = 10;
const GOAL_P50_MS = 5;

function unit(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) / n;
  return v;
}

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** N unit vectors around `topics` centres (noise 0.6 of a centre's norm: neighbours are close, not identical). */
function dataset(n: number, topics: number, seed: number): Float32Array[] {
  const r = seededRandom(seed);
  const centres = Array.from({ length: topics }, () => unit(Float32Array.from({ length: DIMS }, () => gaussian(r))));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(r() * topics)] as Float32Array;
    return unit(Float32Array.from(c, (x) => x + (0.6 / Math.sqrt(DIMS)) * gaussian(r) * 1.7));
  });
}

/** The exact top k by cosine (the vectors are unit: the dot product). */
function bruteForce(data: readonly Float32Array[], q: Float32Array, k: number): number[] {
  const best: Array<{ i: number; s: number }> = [];
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as Float32Array;
    let s = 0;
    for (let j = 0; j < DIMS; j++) s += (v[j] as number) * (q[j] as number);
    if (best.length < k || s > (best[best.length - 1] as { s: number }).s) {
      best.push({ i, s });
      best.sort((a, b) => b.s - a.s);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
}

function recall(found: readonly number[], exact: readonly number[]): number {
  const want = new Set(exact);
  return found.filter((x) => want.has(x)).length / exact.length;
}

/** CPU milliseconds of this process since `from` (user + system): what a query cost, whatever else the machine runs. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

interface Timed<T> {
  ms: number[];
  cpu: number[];
  out: T[];
}

async function timeEach<T>(queries: readonly Float32Array[], fn: (q: Float32Array) => T | Promise<T>): Promise<Timed<T>> {
  const r: Timed<T> = { ms: [], cpu: [], out: [] };
  for (const q of queries) {
    const c = process.cpuUsage();
    const t = performance.now();
    r.out.push(await fn(q));
    r.ms.push(performance.now() - t);
    r.cpu.push(cpuMs(c));
  }
  return r;
}

async function main(): Promise<void> {
  const usage = 'usage: node dist/bench/memory.js [--quick] [--vectors N] [--queries Q] [--dir <temp base>] [--keep] [--no-save]';
  const v = benchOptions(process.argv.slice(2), { quick: { type: 'boolean' }, vectors: { type: 'string' }, queries: { type: 'string' }, dir: { type: 'string' }, keep: { type: 'boolean' }, 'no-save': { type: 'boolean' } }, usage);
  const quick = v.quick ?? false;
  const n = intOption(v.vectors, '--vectors', 100) ?? (quick ? 10_000 : 100_000);
  const nq = intOption(v.queries, '--queries', 10) ?? (quick ? 50 : 200);
  const started = new Date();
  const loadBefore = loadavg();
  const base = mkdtempSync(join(v.dir ?? tmpdir(), 'swarm-bench-memory-'));
  const path = join(base, 'swarm.db');
  try {
    console.log(`memory: ${n.toLocaleString('en')} vectors × ${DIMS} dims, ${nq} queries, k = ${K}`);
    const data = dataset(n, 1000, 1);
    const r = seededRandom(2);
    const queries = Array.from({ length: nq }, () => {
      const near = data[Math.floor(r() * n)] as Float32Array;
      return unit(Float32Array.from(near, (x) => x + (0.3 / Math.sqrt(DIMS)) * gaussian(r)));
    });

    // ---- load: the schema by the store, the rows by memory-sql in one transaction ----
    openSqliteStore({ path, durability: 'process' }).close().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const db = new Database(path);
    loadVectorExtension(db, path);
    const stmts = new Map<string, Database.Statement>();
    const stmt = (sql: string): Database.Statement => stmts.get(sql) ?? (stmts.set(sql, db.prepare(sql)).get(sql) as Database.Statement);
    let t = performance.now();
    db.transaction(() => {
      data.forEach((e, i) => putMemory(db, stmt, { namespace: 'bench', text: `memory ${i}`, metadata: {}, source: 'explicit', run_id: null, step_id: null, session_id: null, dedup_key: `k${i}`, created_at: i, embedding: e }));
    })();
    const loadS = (performance.now() - t) / 1000;
    // The quantized copy for the option below (same rowids).
    t = performance.now();
    db.exec(`CREATE VIRTUAL TABLE bench_bq USING vec0(embedding bit[${DIMS}])`);
    db.exec(`INSERT INTO bench_bq (rowid, embedding) SELECT rowid, vec_quantize_binary(embedding) FROM memory_vectors_${DIMS}`);
    const bqLoadS = (performance.now() - t) / 1000;
    const ivfState = db.prepare(`SELECT trained_n, length(centres) / 4 / ${DIMS} AS cells FROM memory_ivf_state WHERE namespace = 'bench'`).get() as { trained_n: number; cells: number } | undefined;
    const cells = ivfState?.cells ?? 0;
    const trainings = ivfState ? `last at ${ivfState.trained_n.toLocaleString('en')} vectors, ${cells} cells` : 'none';
    db.close();

    // ---- search through the store: the IVF index at a few nprobe, then exact (vec0) ----
    const store = openSqliteStore({ path, durability: 'process' });
    const idOf = (id: string): number => Number(id) - 1;
    const search = async (q: Float32Array): Promise<number[]> => (await store.searchMemories({ namespace: 'bench', vector: q, k: K })).map((h) => idOf(h.id));
    const defaults = { ...ivfTuning };
    const ivf: Array<{ nprobe: number; t: Timed<number[]> }> = [];
    for (const nprobe of [...new Set([4, 8, defaults.nprobe, 16, 32])].sort((a, b) => a - b)) {
      ivfTuning.nprobe = nprobe;
      await search(queries[0] as Float32Array); // warm-up: load the extension, prepare, read the centres
      ivf.push({ nprobe, t: await timeEach(queries, search) });
    }
    ivfTuning.nprobe = defaults.nprobe;
    ivfTuning.threshold = Number.MAX_SAFE_INTEGER; // the same store, searched exactly
    await search(queries[0] as Float32Array);
    const viaStore = await timeEach(queries, search);
    ivfTuning.threshold = defaults.threshold;
    await store.close();

    // ---- brute force in JavaScript: the exact answer, and the ratio ----
    const brute = await timeEach(queries, (q) => bruteForce(data, q, K));

    // ---- binary quantization + exact re-rank (sqlite-vec) ----
    const raw = new Database(path, { readonly: true });
    loadVectorExtension(raw, path);
    const candidates = raw.prepare(`SELECT rowid FROM bench_bq WHERE embedding MATCH vec_quantize_binary(?) AND k = ?`).pluck();
    const rerank = raw.prepare(`SELECT rowid, vec_distance_l2(embedding, ?) AS d FROM memory_vectors_${DIMS} WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY d LIMIT ?`);
    const bqQuery = (q: Float32Array): number[] => {
      const ids = candidates.all(q, K * 10) as number[];
      return (rerank.all(q, JSON.stringify(ids), K) as Array<{ rowid: number }>).map((x) => x.rowid - 1);
    };
    bqQuery(queries[0] as Float32Array);
    const bq = await timeEach(queries, bqQuery);
    raw.close();

    const recallOf = (out: readonly number[][]): number => out.reduce((s, o, i) => s + recall(o, brute.out[i] as number[]), 0) / out.length;
    const p = (ms: number[], q: number): number => percentile(ms, q);
    const row = (method: string, t: Timed<number[]>, recallAt10: number): Record<string, unknown> & { p50_ms: number; p95_ms: number; cpu_p50_ms: number; recall_at_10: number; method: string } => ({
      method,
      p50_ms: p(t.ms, 50),
      p95_ms: p(t.ms, 95),
      cpu_p50_ms: p(t.cpu, 50),
      recall_at_10: recallAt10,
    });
    const rows = [
      ...ivf.map((x) => row(`store.searchMemories (IVF, nprobe ${x.nprobe}${x.nprobe === defaults.nprobe ? ', default' : ''})`, x.t, recallOf(x.t.out))),
      row('store.searchMemories (vec0 float32, exact)', viaStore, recallOf(viaStore.out)),
      row('vec0 bit[384] + exact re-rank of 100', bq, recallOf(bq.out)),
      row('brute force (JavaScript, exact)', brute, 1),
    ].map((x) => ({ ...x, vs_brute_force: p(brute.ms, 50) / x.p50_ms, vs_brute_force_cpu: p(brute.cpu, 50) / x.cpu_p50_ms, goal_p50_ms: GOAL_P50_MS, meets_goal: x.p50_ms <= GOAL_P50_MS }));
    console.log(
      `\n${table(
        ['method', 'p50 ms', 'p95 ms', 'CPU p50 ms', '× brute force (p50)', '× brute force (CPU)', 'recall@10', `p50 ≤ ${GOAL_P50_MS} ms`],
        rows.map((x) => [x.method, x.p50_ms.toFixed(2), x.p95_ms.toFixed(2), x.cpu_p50_ms.toFixed(2), x.vs_brute_force.toFixed(2), x.vs_brute_force_cpu.toFixed(2), x.recall_at_10.toFixed(3), x.meets_goal ? 'yes' : 'NO']),
      )}`,
    );
    const load = loadavg()[0] ?? 0;
    if (load > cpus().length) console.log(`\nwarning: load average ${load.toFixed(1)} on ${cpus().length} CPUs: wall-clock latencies include waiting for a CPU; the CPU column is what a query cost`);
    console.log(`\nload: ${loadS.toFixed(1)} s (${Math.round(n / loadS).toLocaleString('en')} memories/s, one transaction, IVF trainings included: ${trainings}), quantized copy ${bqLoadS.toFixed(1)} s`);
    if (!(v['no-save'] ?? false)) {
      const dir = join(REPO_ROOT, 'bench', 'results');
      mkdirSync(dir, { recursive: true });
      const doc = { started_at: started.toISOString(), options: { vectors: n, queries: nq, dims: DIMS, k: K }, ivf: { ...defaults, trainings, cells }, git: gitState(), host: hostInfo(loadBefore), load_s: loadS, rows };
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      const file = join(dir, `memory-${started.toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(file, text);
      writeFileSync(join(dir, 'memory-latest.json'), text);
      console.log(`wrote ${file} and bench/results/memory-latest.json`);
    }
  } finally {
    if (!(v.keep ?? false)) rmSync(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
