/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, `undefined` members left out (as
 * `JSON.stringify` does). The one encoding hashed and signed wherever two parties must agree on the
 * bytes of a value (consensus candidates and votes, SW4RM idempotency tokens).
 *
 * @example
 *   canonicalJson({ b: 2, a: [1, { d: 1, c: 2 }] })  // '{"a":[1,{"c":2,"d":1}],"b":2}'
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  const s = JSON.stringify(v);
  if (s === undefined) throw new TypeError(`canonicalJson: ${typeof v} values have no JSON form`);
  return s;
}
