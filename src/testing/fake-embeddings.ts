/**
 * Deterministic offline embeddings: a hashed bag of words (lower-cased words and their stems, each
 * hashed to a few signed coordinates) normalised to a unit vector. Texts that share words are near
 * in cosine distance; the same text always gives the same vector. The fake vendor server answers
 * `POST /v1/embeddings` with these, so memory works in tests and demos with no network.
 *
 * @example
 *   const v = fakeEmbedding('the user prefers tea'); // Float32Array(384), |v| = 1
 */

/** The default dimension count (as small sentence-embedding models have). */
export const FAKE_EMBEDDING_DIMENSIONS = 384;

const STOP = new Set(['a', 'an', 'the', 'of', 'to', 'and', 'or', 'is', 'are', 'in', 'on', 'for', 'with', 'it', 'be', 'as', 'at', 'by', 'this', 'that', 'what', 'which', 'do', 'does', 'i', 'you', 'my', 'me']);

function hash(text: string, seed: number): number {
  // FNV-1a, 32 bits.
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The words a text is made of, for the bag (stop words out, a crude stem for plurals and -ing). */
export function fakeEmbeddingTerms(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    if (STOP.has(raw)) continue;
    out.push(raw.length > 4 ? raw.replace(/(ing|es|s)$/, '') : raw);
  }
  return out;
}

/** The unit vector of a text (an empty text gets a fixed unit vector, never zeros). */
export function fakeEmbedding(text: string, dimensions = FAKE_EMBEDDING_DIMENSIONS): Float32Array {
  const v = new Float32Array(dimensions);
  const terms = fakeEmbeddingTerms(text);
  for (const t of terms.length ? terms : ['\u0000empty']) {
    for (let k = 0; k < 3; k++) {
      const h = hash(t, k);
      const i = h % dimensions;
      v[i] = (v[i] as number) + (h & 0x80000000 ? -1 : 1);
    }
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += (v[i] as number) ** 2;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dimensions; i++) v[i] = (v[i] as number) / norm;
  return v;
}
