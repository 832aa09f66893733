/**
 * Applies a redaction policy (what is done with each data class) to text and JSON-like values, in
 * one combined pass per string (see detectors.ts). Pure: no I/O.
 *
 * Actions: `redact` replaces an occurrence by its class's placeholder (`[EMAIL]`, `[CARD]`, …);
 * `mask` keeps its last characters (`****1111`); `drop` refuses to keep the field at all: the whole
 * string becomes `[DROPPED:<class>]`; `allow` leaves it alone. Redacting twice changes nothing.
 *
 * @example
 *   const c = new ClassRedactor({ email: { action: 'redact' }, card: { action: 'mask', keep: 4 } });
 *   c.text('mail a@b.io, card 4111 1111 1111 1111'); // 'mail [EMAIL], card ****1111'
 */
import { Detector, type CustomClass } from './detectors.js';

export const REDACTION_ACTIONS = ['redact', 'mask', 'drop', 'allow'] as const;
export type RedactionAction = (typeof REDACTION_ACTIONS)[number];

/** What is done with one class. `keep`: characters a mask keeps (default 4). */
export interface ClassRule {
  action: RedactionAction;
  keep?: number;
}

/** Counts what was done (the `swarm_redactions_total` metric). */
export type RedactionCounter = (dataClass: string, action: RedactionAction, n: number) => void;

export const DEFAULT_MASK_KEEP = 4;

/** Strings of this length are remembered with their redaction (at most MEMO_ENTRIES, MEMO_TOTAL_CHARS in all). */
const MEMO_MIN_CHARS = 64;
const MEMO_MAX_CHARS = 65_536;
const MEMO_ENTRIES = 1024;
const MEMO_TOTAL_CHARS = 2_000_000;
/** Shorter strings found to hold nothing are remembered too (at most CLEAN_ENTRIES): keys and names recur in every JSON value. */
const CLEAN_ENTRIES = 4096;

/** `[EMAIL]`, `[NATIONAL_ID]`: the typed placeholder of a class. */
export function placeholder(cls: string): string {
  return `[${cls.toUpperCase()}]`;
}

/** `[DROPPED:card]`: what a dropped field becomes. */
export function droppedMarker(cls: string): string {
  return `[DROPPED:${cls}]`;
}

/**
 * Does `text` hold what redaction leaves: a class's placeholder (`[EMAIL]`), a dropped field
 * (`[DROPPED:card]`), a secret's marker (`[secret:NAME]`, src/secrets/redactor.ts) or a mask (`****1111`)?
 */
export function hasRedactionMarker(text: string): boolean {
  return /\[(?:[A-Z0-9_-]+|DROPPED:[^\]]*|secret:[^\]]*)\]|\*{4}/.test(text);
}

/** `****1111`: the last `keep` letters or digits of a value (separators left out). */
export function mask(value: string, keep = DEFAULT_MASK_KEEP): string {
  const plain = value.replace(/[^A-Za-z0-9]/g, '');
  // Never keep more than half: a short value masked to its whole self would be no mask.
  const n = Math.min(keep, Math.floor(plain.length / 2));
  return `****${n > 0 ? plain.slice(-n) : ''}`;
}

/** The outcome of one string: the text, or the class that makes the whole field dropped. */
export interface TextOutcome {
  text: string;
  dropped?: string;
}

export class ClassRedactor {
  private readonly detector: Detector;
  private readonly rules: ReadonlyMap<string, Required<ClassRule>>;

  /**
   * `rules`: per class (built-in or custom); classes not named (or `allow`ed) are not looked for.
   * `custom`: the user's classes (name and pattern).
   */
  constructor(rules: Readonly<Record<string, ClassRule>>, custom: readonly CustomClass[] = [], private readonly count?: RedactionCounter) {
    const active = new Map<string, Required<ClassRule>>();
    for (const [cls, r] of Object.entries(rules)) if (r.action !== 'allow') active.set(cls, { action: r.action, keep: r.keep ?? DEFAULT_MASK_KEEP });
    this.rules = active;
    this.detector = new Detector(custom.filter((c) => active.has(c.name)), new Set(active.keys()));
  }

  /** Is any class redacted, masked or dropped? */
  get active(): boolean {
    return !this.detector.empty;
  }

  /** The action for a class (`allow` when it is not looked for). */
  actionOf(cls: string): RedactionAction {
    return this.rules.get(cls)?.action ?? 'allow';
  }

  /** One string: occurrences replaced, or the class that drops the whole field. */
  apply(s: string): TextOutcome {
    if (s.length < 6 || this.detector.empty) return { text: s };
    let out = '';
    let at = 0;
    let dropped: string | undefined;
    this.detector.scan(s, (cls, start, end) => {
      if (dropped) return;
      const rule = this.rules.get(cls);
      if (!rule) return;
      this.count?.(cls, rule.action, 1);
      if (rule.action === 'drop') {
        dropped = cls;
        return;
      }
      out += s.slice(at, start) + (rule.action === 'mask' ? mask(s.slice(start, end), rule.keep) : placeholder(cls));
      at = end;
    });
    if (dropped) return { text: droppedMarker(dropped), dropped };
    return { text: at === 0 ? s : out + s.slice(at) };
  }

  /** The text with the policy applied (a dropped field is its whole `[DROPPED:<class>]` marker). */
  text(s: string): string {
    if (s.length < MEMO_MIN_CHARS) return this.short(s);
    if (s.length > MEMO_MAX_CHARS) return this.apply(s).text;
    // A conversation is written again at every checkpoint (its envelope): its messages are looked
    // up, not scanned again. Hashing a string costs a fraction of scanning it.
    const hit = this.memo.get(s);
    if (hit !== undefined) return hit;
    const out = this.apply(s).text;
    if (this.memo.size >= MEMO_ENTRIES || this.memoChars > MEMO_TOTAL_CHARS) {
      this.memo.clear();
      this.memoChars = 0;
    }
    this.memo.set(s, out);
    this.memoChars += s.length + (out === s ? 0 : out.length);
    return out;
  }

  private readonly memo = new Map<string, string>();
  private memoChars = 0;

  /**
   * A short string: the keys, names and words a JSON value repeats are looked up, not scanned again.
   * Only strings with nothing in them are remembered, so every occurrence redacted is still counted.
   */
  private short(s: string): string {
    if (s.length < 6 || this.clean.has(s)) return s;
    const out = this.apply(s).text;
    if (out === s) {
      if (this.clean.size >= CLEAN_ENTRIES) this.clean.clear();
      this.clean.add(s);
    }
    return out;
  }

  private readonly clean = new Set<string>();

  /** A JSON-like value with the policy applied to every string and key; the same object when nothing changed. */
  value<T>(v: T): T {
    if (this.detector.empty) return v;
    return walk(v, (s) => this.text(s)) as T;
  }
}

/** Copy-on-change: unchanged parts (and the whole value when nothing matched) are returned as they were. */
export function walk(v: unknown, text: (s: string) => string): unknown {
  if (typeof v === 'string') return text(v);
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = walk(v[i], text);
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return out ?? v;
  }
  if (v && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string;
      const x = o[k];
      const k2 = text(k);
      // Numbers, booleans and null hold nothing to redact.
      const x2 = typeof x === 'string' || (typeof x === 'object' && x !== null) ? walk(x, text) : x;
      if (k2 === k && x2 === x) continue;
      // The first change: copy what came before as it was, then the rest through the policy.
      const out: Record<string, unknown> = {};
      for (let j = 0; j < i; j++) define(out, keys[j] as string, o[keys[j] as string]);
      define(out, k2, x2);
      for (let j = i + 1; j < keys.length; j++) define(out, text(keys[j] as string), walk(o[keys[j] as string], text));
      return out;
    }
    return v;
  }
  return v;
}

// defineProperty, not assignment: a `__proto__` key stays a key instead of setting the prototype.
function define(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}
