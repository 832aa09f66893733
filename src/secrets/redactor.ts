import { droppedMarker, walk, type ClassRedactor, type RedactionCounter } from '../guardrails/redaction/classifier.js';

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
 * It also applies the deployment's data-classification policy (`guardrails.redaction`, see
 * src/guardrails/redaction/): e-mail addresses, cards, API keys… are redacted, masked or dropped on
 * the same way into the store, the logs and the traces, after the secrets' values.
 *
 * @example
 *   const r = new Redactor({ API_KEY: 's3cr3t-value' });
 *   r.text('token=s3cr3t-value'); // 'token=[secret:API_KEY]'
 */
export interface RedactorOptions {
  /** The data classes' storage policy (none: secrets only). */
  classes?: ClassRedactor;
  /** What becomes of a string holding a secret's value: its marker in place (default), or the whole string dropped. */
  secretAction?: 'redact' | 'drop';
  /** Counts redactions (metrics). */
  count?: RedactionCounter;
}

/** The longest string `json` remembers as clean, and how many it remembers. */
const CLEAN_MAX_CHARS = 128;
const CLEAN_ENTRIES = 4096;

/** What the longest class occurrence may span, in bytes (a long token): how far before a cut one may start. */
const CLASS_SPAN_BYTES = 600;

export class Redactor {
  private pattern: RegExp | undefined;
  private readonly classes: ClassRedactor | undefined;
  private readonly secretDrop: boolean;
  private readonly count: RedactionCounter | undefined;
  private readonly markers = new Map<string, string>();
  /** The longest secret form, in UTF-8 bytes: how far before a cut a secret may start. */
  longestBytes = 0;
  /** Bumped whenever the secrets known change: a result remembered from an older generation may hold a value now redacted. */
  generation = 0;

  constructor(secrets: Readonly<Record<string, string>>, options: RedactorOptions = {}) {
    this.classes = options.classes?.active ? options.classes : undefined;
    this.secretDrop = options.secretAction === 'drop';
    this.count = options.count;
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
    this.generation++;
    this.clean.clear();
    this.longestBytes = forms.reduce((n, f) => Math.max(n, Buffer.byteLength(f)), this.classes ? CLASS_SPAN_BYTES : 0);
  }

  /** Is there anything to redact (secrets known, or data classes to redact)? */
  get active(): boolean {
    return this.pattern !== undefined || this.classes !== undefined;
  }

  /** The text with every secret value replaced by its marker and the data classes' policy applied. */
  text(s: string): string {
    if (s === '') return s;
    let out = s;
    if (this.pattern) {
      let n = 0;
      out = s.replace(this.pattern, (m) => {
        n++;
        return this.markers.get(m) ?? '[secret]';
      });
      if (n > 0) {
        this.count?.('secret', this.secretDrop ? 'drop' : 'redact', n);
        if (this.secretDrop) return droppedMarker('secret');
      }
    }
    return this.classes ? this.classes.text(out) : out;
  }

  /**
   * The value with secrets replaced in every string (and every key): copied where something changed,
   * the same object where nothing did (as with no secrets known at all).
   */
  value<T>(v: T): T {
    if (!this.active) return v;
    return walk(v, (s) => this.text(s)) as T;
  }

  /**
   * Text that may hold JSON (a transcript's tool calls, a tool's arguments): the policy is applied to
   * the strings inside it, so a dropped field drops that string only and the JSON stays JSON. Text
   * that is not JSON is redacted as text.
   */
  json(s: string): string {
    if (!this.active || s === '') return s;
    // The keys, names and ids a JSON value repeats (a checkpoint's at every turn) are looked up, not
    // redacted again; only strings found to hold nothing are remembered, so each redaction is counted.
    if (s.length > CLEAN_MAX_CHARS) return this.jsonOf(s);
    if (this.clean.has(s)) return s;
    const out = this.jsonOf(s);
    if (out === s) {
      if (this.clean.size >= CLEAN_ENTRIES) this.clean.clear();
      this.clean.add(s);
    }
    return out;
  }

  /** Short strings `json` found clean (with the secrets known then: learning one starts the set over). */
  private readonly clean = new Set<string>();

  private jsonOf(s: string): string {
    if (!this.classes && !this.secretDrop) return this.text(s);
    // Only an object or an array is walked; anything else (plain text: most messages) is redacted as
    // text, as it would be after failing to parse, without the cost of a parse error.
    if (!startsLikeJsonObject(s)) return this.text(s);
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch {
      return this.text(s);
    }
    if (typeof v !== 'object' || v === null) return this.text(s);
    // Escaped forms of secrets are caught on the raw text first; the strings inside are then walked.
    const pre = this.secretDrop ? s : this.secretsOnly(s);
    if (pre !== s) v = JSON.parse(pre);
    // A string that is JSON itself (a tool call's arguments in a transcript's tool calls) is redacted
    // as JSON too, so a dropped field inside it leaves it valid JSON.
    const out = walk(v, (x) => this.json(x));
    return out === v ? pre : JSON.stringify(out);
  }

  /** Secrets' values only replaced by their markers (JSON-safe; no data classes, no drop). */
  secretsOnly(s: string): string {
    return this.pattern ? s.replace(this.pattern, (m) => this.markers.get(m) ?? '[secret]') : s;
  }

}

/** Does the text start (after JSON whitespace) with `{` or `[`? Only then can it parse to an object or an array. */
function startsLikeJsonObject(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) return true;
    // JSON whitespace: space, tab, line feed, carriage return.
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return false;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A redactor that knows no secrets. */
export const NO_REDACTION = new Redactor({});
