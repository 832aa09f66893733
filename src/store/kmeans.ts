/**
 * Spherical k-means for the IVF index of vector memory (src/store/sqlite/memory-ivf.ts): pure, no
 * I/O, seeded so the same data trains the same cells. Vectors are unit vectors, so the nearest
 * centre is the one with the largest dot product, and each centre is re-normalised after its mean.
 *
 * @example
 *   const centres = trainKmeans(sample, 64, { seed: 1 });
 *   const cell = nearestCentre(centres, v);
 */

/** Dot product of two vectors of the same length. */
export function dot(a: Float32Array, b: Float32Array, bOffset = 0): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = a.length;
  let i = 0;
  // Four accumulators: V8 keeps them in registers and the loop does a quarter of the branches.
  for (; i + 3 < n; i += 4) {
    s0 += (a[i] as number) * (b[bOffset + i] as number);
    s1 += (a[i + 1] as number) * (b[bOffset + i + 1] as number);
    s2 += (a[i + 2] as number) * (b[bOffset + i + 2] as number);
    s3 += (a[i + 3] as number) * (b[bOffset + i + 3] as number);
  }
  for (; i < n; i++) s0 += (a[i] as number) * (b[bOffset + i] as number);
  return s0 + s1 + s2 + s3;
}

/** Centres packed row by row: `data[c * dims + j]`. */
export interface Centres {
  readonly k: number;
  readonly dims: number;
  readonly data: Float32Array;
}

/** The index of the centre nearest to `v` (largest dot product). */
export function nearestCentre(c: Centres, v: Float32Array): number {
  let best = 0;
  let bestS = -Infinity;
  for (let i = 0; i < c.k; i++) {
    const s = dot(v, c.data, i * c.dims);
    if (s > bestS) {
      bestS = s;
      best = i;
    }
  }
  return best;
}

/** The `n` centres nearest to `v`, nearest first. */
export function nearestCentres(c: Centres, v: Float32Array, n: number): number[] {
  const scored = Array.from({ length: c.k }, (_, i) => ({ i, s: dot(v, c.data, i * c.dims) }));
  scored.sort((a, b) => b.s - a.s);
  return scored.slice(0, Math.max(1, n)).map((x) => x.i);
}

/**
 * A seeded generator (mulberry32) of numbers in [0, 1): the same sequence for the same seed.
 *
 * @example
 *   const r = seededRandom(1); r(); // 0.6270739405881613
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Train `k` centres on unit vectors (Lloyd's iterations from seeded k-means++ starts). An empty
 * cell takes a random sample vector again, so every centre stays on the data.
 */
export function trainKmeans(vectors: readonly Float32Array[], k: number, opts: { seed?: number; iterations?: number } = {}): Centres {
  if (vectors.length === 0) throw new Error('k-means needs at least one vector');
  const dims = (vectors[0] as Float32Array).length;
  const kk = Math.max(1, Math.min(k, vectors.length));
  const r = seededRandom(opts.seed ?? 1);
  const data = new Float32Array(kk * dims);
  // k-means++ seeding: each next centre is drawn with probability ∝ its squared distance to the
  // nearest centre so far, so clusters are not missed by two seeds landing in one of them.
  const d2 = new Float64Array(vectors.length).fill(Infinity);
  data.set(vectors[Math.floor(r() * vectors.length)] as Float32Array, 0);
  for (let ci = 1; ci <= kk; ci++) {
    let total = 0;
    for (let i = 0; i < vectors.length; i++) {
      // Unit vectors: |a − b|² = 2 − 2·a·b.
      const d = Math.max(0, 2 - 2 * dot(vectors[i] as Float32Array, data, (ci - 1) * dims));
      if (d < (d2[i] as number)) d2[i] = d;
      total += d2[i] as number;
    }
    if (ci === kk) break;
    let pick = r() * total;
    let chosen = vectors.length - 1;
    for (let i = 0; i < vectors.length; i++) {
      pick -= d2[i] as number;
      if (pick <= 0) {
        chosen = i;
        break;
      }
    }
    data.set(vectors[chosen] as Float32Array, ci * dims);
  }
  const c: Centres = { k: kk, dims, data };
  const assign = new Int32Array(vectors.length);
  const sums = new Float64Array(kk * dims);
  const counts = new Int32Array(kk);
  for (let it = 0; it < (opts.iterations ?? 8); it++) {
    let moved = 0;
    for (let i = 0; i < vectors.length; i++) {
      const a = nearestCentre(c, vectors[i] as Float32Array);
      if (a !== assign[i] || it === 0) moved++;
      assign[i] = a;
    }
    if (it > 0 && moved === 0) break;
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < vectors.length; i++) {
      const a = assign[i] as number;
      const v = vectors[i] as Float32Array;
      counts[a] = (counts[a] as number) + 1;
      for (let j = 0; j < dims; j++) sums[a * dims + j] = (sums[a * dims + j] as number) + (v[j] as number);
    }
    for (let ci = 0; ci < kk; ci++) {
      if (counts[ci] === 0) {
        data.set(vectors[Math.floor(r() * vectors.length)] as Float32Array, ci * dims);
        continue;
      }
      let n = 0;
      for (let j = 0; j < dims; j++) n += (sums[ci * dims + j] as number) ** 2;
      n = Math.sqrt(n) || 1;
      for (let j = 0; j < dims; j++) data[ci * dims + j] = (sums[ci * dims + j] as number) / n;
    }
  }
  return c;
}
