/**
 * Replaces every known secret value with a marker (`[secret:NAME]`) before text is stored: step
 * inputs, outputs, errors, logs, events, LLM transcripts.
 *
 * It knows every configured secret (`SWARM_SECRET_*`) and every stored secret a step of this process
 * has loaded (`learn`), not only those the step resolved: a value can
 * reach a step's output by other ways (an LLM tool's header, a handler message), and one combined
 * pattern costs the same whatever the number of secrets. With no secrets configured it does nothing
 * and costs nothing.
 *
 * Only exact occurrences are found (and their JSON-escaped form): a value an agent encodes, splits or
 * transforms is not recognised.
 *
 * @example
 *   const r = new Redactor({ API_KEY: 's3cr3t-value' });
 *   r.text('token=s3cr3t-value'); // 'token=[secret:API_KEY]'
 */
export class Redactor {
  private pattern: RegExp | undefined;
  private readonly markers = new Map<string, string>();
  /** The longest secret form, in UTF-8 bytes: how far before a cut a secret may start. */
  longestBytes = 0;

  constructor(secrets: Readonly<Record<string, string>>) {
    this.add(secrets);
  }

  /**
   * Learn more secret values (those loaded from the encrypted store when a step first needs them).
   * Values already known are ignored, so learning the same again costs nothing. A value, once
   * learned, stays redacted for the life of the process, even after its secret is deleted.
   */
  learn(secrets: Readonly<Record<string, string>>): void {
    const before = this.markers.size;
    for (const [name, value] of Object.entries(secrets)) if (value !== '' && !this.markers.has(value)) this.markers.set(value, `[secret:${name}]`);
    if (this.markers.size !== before) this.add(secrets);
  }

  private add(secrets: Readonly<Record<string, string>>): void {
    for (const [name, value] of Object.entries(secrets)) {
      if (value === '') continue;
      const marker = `[secret:${name}]`;
      for (const form of [value, JSON.stringify(value).slice(1, -1)]) if (!this.markers.has(form)) this.markers.set(form, marker);
    }
    // Longest first, so a value that contains another is replaced whole.
    const forms = [...this.markers.keys()].sort((a, b) => b.length - a.length);
    this.pattern = forms.length ? new RegExp(forms.map(escapeRegExp).join('|'), 'g') : undefined;
    this.longestBytes = forms.reduce((n, f) => Math.max(n, Buffer.byteLength(f)), 0);
  }

  /** Are there any secrets to redact? */
  get active(): boolean {
    return this.pattern !== undefined;
  }

  /** The text with every secret value replaced by its marker. */
  text(s: string): string {
    if (!this.pattern || s === '') return s;
    return s.replace(this.pattern, (m) => this.markers.get(m) ?? '[secret]');
  }

  /** A copy of a JSON-like value with secrets replaced in every string (and every key). */
  value<T>(v: T): T {
    if (!this.pattern) return v;
    return this.walk(v) as T;
  }

  private walk(v: unknown): unknown {
    if (typeof v === 'string') return this.text(v);
    if (Array.isArray(v)) return v.map((x) => this.walk(x));
    if (v && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
      // defineProperty, not assignment: a `__proto__` key stays a key instead of setting the prototype.
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) Object.defineProperty(out, this.text(k), { value: this.walk(x), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return v;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A redactor that knows no secrets. */
export const NO_REDACTION = new Redactor({});
