/**
 * Answers remembered by key, at most `max` of them: when full, all are forgotten at once and the
 * memo fills again with what is asked now (cheaper than tracking use, and the hot keys come back at
 * once). For values that never change for a key: a rule's answer for a path, a secret's decoded key.
 *
 * @example
 *   const scopes = new BoundedMemo<string, Scope>(4096);
 *   const scope = scopes.get(path, () => scopeOf(path));
 */
export class BoundedMemo<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  /** The value remembered for `key`, or `make()`'s (remembered unless it throws). */
  get(key: K, make: () => V): V {
    let value = this.map.get(key);
    if (value === undefined && !this.map.has(key)) {
      value = make();
      if (this.map.size >= this.max) this.map.clear();
      this.map.set(key, value);
    }
    return value as V;
  }

  /** Forget everything (what the values were made from changed). */
  clear(): void {
    this.map.clear();
  }
}
