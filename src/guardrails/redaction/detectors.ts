/**
 * Detectors of data classes in text: e-mail addresses, phone numbers, payment cards, IBANs,
 * national ids, API keys and tokens (plus user classes given as regular expressions). Pure: no I/O.
 *
 * Every detector is one alternative of a single combined regular expression, so a string is scanned
 * once whatever the number of classes; a candidate is then checked by its class's validator (Luhn for
 * cards, mod-97 and the country's length for IBANs, the valid ranges of a US SSN, …), which may also
 * shorten it (an IBAN followed by a word). A candidate that fails its check is left alone.
 *
 * What is recognised (docs/guardrails.md lists it too):
 * - `email`: local@domain.tld.
 * - `phone`: international numbers (`+` and 8–15 digits, E.164) and common national formats written
 *   with separators: North American `(555) 123-4567` / `555-123-4567`, and numbers with a leading 0
 *   in groups (`020 7946 0958`, `01 23 45 67 89`). Bare digit runs and dates are not phones.
 * - `card`: 13–19 digits, spaces or dashes allowed, a known issuer prefix (Visa, Mastercard, Amex,
 *   Discover, Diners, JCB, UnionPay, Maestro) and a valid Luhn check digit.
 * - `iban`: country code, check digits and the country's exact length, mod-97 valid (grouped by 4 or not;
 *   upper case). Something shaped like an IBAN that fails its check is not looked into further.
 * - `national_id`: US Social Security numbers written `123-45-6789` (area 000, 666 and 900–999, group
 *   00 and serial 0000 are not valid SSNs) and UK National Insurance numbers (`QQ 12 34 56 C`, with
 *   the prefixes HMRC never issues excluded).
 * - `api_key`: well-known prefixes (`sk-`, `sk-ant-`, `sk_live_`, `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`,
 *   `github_pat_`, `xoxb-`/`xoxp-`/…, `AKIA`/`ASIA`, `AIza`, `glpat-`, JWTs `eyJ….eyJ….…`).
 * - `token`: long random strings (the entropy rule): 32–512 characters of letters, digits and `_-+/=` mixing upper case, lower
 *   case and digits with at least 4.2 bits of entropy per character (hex digests, UUIDs and ULIDs
 *   have a single case and are not flagged).
 *
 * @example
 *   const d = new Detector();
 *   d.scan('card 4111 1111 1111 1111', (cls, start, end) => console.log(cls, start, end)); // card 5 24
 */

/** The built-in data classes (`secret`, Swarm's own secrets, is found by the secrets' redactor). */
export const BUILTIN_CLASSES = ['email', 'phone', 'card', 'iban', 'national_id', 'api_key', 'token'] as const;
export type BuiltinClass = (typeof BUILTIN_CLASSES)[number];

/** A user's class: a name and a regular expression (JavaScript syntax, matched case-sensitively). */
export interface CustomClass {
  name: string;
  pattern: string;
}

type Validator = (m: string) => number;
interface Alternative {
  cls: string;
  source: string;
  /** The length of the match that is really the class (0: not this class after all). */
  check?: Validator;
  /** On a failed check, skip the whole candidate (unbounded alternatives: rescanning inside is quadratic). */
  skipWhole?: boolean;
}

const ALTERNATIVES: readonly Alternative[] = [
  {
    cls: 'api_key',
    source:
      '(?<![A-Za-z0-9_-])(?:sk-[A-Za-z0-9_-]{20,}|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|xox[abposr]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,})(?![A-Za-z0-9_-])',
  },
  { cls: 'iban', source: '(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?', check: ibanLength, skipWhole: true },
  { cls: 'national_id', source: '(?<![A-Za-z0-9-])(?:[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})(?![A-Za-z0-9-])', check: ssnLength },
  { cls: 'national_id', source: '(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])', check: ninoLength },
  { cls: 'card', source: '(?<![A-Za-z0-9.,])[0-9](?:[ -]?[0-9]){12,18}(?![A-Za-z0-9]|[.,][0-9])', check: cardLength },
  {
    cls: 'phone',
    source:
      '(?<![A-Za-z0-9+.,/-])(?:\\+[0-9]{1,3}(?:[ .-]?\\(?[0-9]{1,4}\\)?){2,5}|\\(?[0-9]{3}\\)?[ .-][0-9]{3}[ .-][0-9]{4}|0[0-9]{1,4}(?:[ .-][0-9]{2,4}){2,4})(?![A-Za-z0-9]|[.,/-][0-9])',
    check: phoneLength,
  },
];

/** One combined pass over text for the built-in classes and the user's. */
export class Detector {
  private readonly re: RegExp;
  private readonly alts: Alternative[];

  /** `only`: the classes to look for (default all); a class not looked for costs nothing. */
  constructor(custom: readonly CustomClass[] = [], only?: ReadonlySet<string>) {
    const all = [...custom.map((c) => ({ cls: c.name, source: c.pattern })), ...ALTERNATIVES];
    this.alts = all.filter((a) => !only || only.has(a.cls));
    this.re = new RegExp(this.alts.length ? this.alts.map((a) => `(${a.source})`).join('|') : '(?!)', 'g');
    this.emails = !only || only.has('email');
    this.tokens = !only || only.has('token');
    // User patterns may have their own groups: find each alternative's group number.
    this.groups = [];
    let g = 1;
    for (const a of this.alts) {
      this.groups.push(g);
      g += 1 + new RegExp(`${a.source}|`).exec('')!.length - 1;
    }
  }

  private readonly groups: number[];
  private readonly emails: boolean;
  private readonly tokens: boolean;

  /** Does this detector look for anything? */
  get empty(): boolean {
    return this.alts.length === 0 && !this.emails && !this.tokens;
  }

  /** Call `found(class, start, end)` for every occurrence, left to right, without overlaps. */
  scan(text: string, found: (cls: string, start: number, end: number) => void): void {
    // E-mails and long tokens start with letters, anywhere: as regular-expression alternatives they
    // are tried at every position (most of the cost). They are found by a character scan instead,
    // from each '@' and over each run of token characters, and merged with the expression's matches.
    const extra: Hit[] = [];
    if (this.emails && text.includes('@')) findEmails(text, extra);
    if (this.tokens && text.length >= 32) findTokens(text, extra);
    if (extra.length === 0) {
      this.scanRe(text, found);
      return;
    }
    const hits: Hit[] = [];
    this.scanRe(text, (cls, start, end) => hits.push({ cls, start, end }));
    hits.push(...extra);
    // Earliest first; at the same start the expression's classes (api keys, …) come first (stable sort).
    hits.sort((a, b) => a.start - b.start);
    let at = 0;
    for (const h of hits) {
      if (h.start < at) continue;
      found(h.cls, h.start, h.end);
      at = h.end;
    }
  }

  private scanRe(text: string, found: (cls: string, start: number, end: number) => void): void {
    if (this.alts.length === 0) return;
    const re = this.re;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const i = this.groups.findIndex((g) => m![g] !== undefined);
      const alt = this.alts[i]!;
      const s = m[0];
      if (s.length === 0) {
        re.lastIndex = m.index + 1;
        continue;
      }
      const len = alt.check ? alt.check(s) : s.length;
      if (len > 0) {
        found(alt.cls, m.index, m.index + len);
        re.lastIndex = m.index + len;
      } else re.lastIndex = alt.skipWhole ? m.index + s.length : m.index + 1;
    }
  }
}

interface Hit {
  cls: string;
  start: number;
  end: number;
}

const isLocal = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isDomain = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 45;
const DOMAIN = /^[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}$/;

/** local@domain.tld around each '@'. */
function findEmails(text: string, out: Hit[]): void {
  let last = 0;
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let l = at;
    while (l > last && at - l < 64 && isLocal(text.charCodeAt(l - 1))) l--;
    if (l === at || (l > 0 && isLocal(text.charCodeAt(l - 1)))) continue;
    let r = at + 1;
    while (r < text.length && isDomain(text.charCodeAt(r))) r++;
    // A sentence's full stop (or a dash) after the address is not part of it.
    while (r > at + 1 && (text[r - 1] === '.' || text[r - 1] === '-')) r--;
    if (!DOMAIN.test(text.slice(at + 1, r))) continue;
    out.push({ cls: 'email', start: l, end: r });
    last = r;
  }
}

/** Token characters (letters, digits, `_-+/=`), by char code. */
const TOKEN_CHAR = (() => {
  const t = new Uint8Array(128);
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=') t[c.charCodeAt(0)] = 1;
  return t;
})();

/** Runs of 32–512 token characters that look random (see entropyLength). */
function findTokens(text: string, out: Hit[]): void {
  const n = text.length;
  let start = -1;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 0;
    if (c < 128 && TOKEN_CHAR[c] === 1) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      const len = i - start;
      if (len >= 32 && len <= 512 && entropyLength(text.slice(start, i)) > 0) out.push({ cls: 'token', start, end: i });
      start = -1;
    }
  }
}

// ---- validators: the length of the real match, 0 when it is not one ----

/** Luhn's check over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes (IIN ranges) and the lengths they issue. */
function cardIssuer(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19; // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16; // Mastercard
  if (p2 === 34 || p2 === 37) return n === 15; // Amex
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19; // Discover
  if (p2 === 36 || p2 === 38 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19; // Diners
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19; // JCB
  if (p2 === 62) return n >= 16 && n <= 19; // UnionPay
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 13 && n <= 19; // Maestro
  return false;
}

function cardLength(m: string): number {
  // The candidate may run on into the next number ("4111 1111 1111 1111 123"): try it whole, then
  // cut at each separator, longest first.
  for (let end = m.length; end > 0; end = Math.max(m.lastIndexOf(' ', end - 1), m.lastIndexOf('-', end - 1))) {
    const c = m.slice(0, end);
    // One kind of separator, or none: "4111-1111 1111" is two numbers more likely than one card.
    if (c.includes(' ') && c.includes('-')) continue;
    const d = c.replace(/[ -]/g, '');
    if (d.length < 13) break;
    if (d.length <= 19 && cardIssuer(d) && luhnValid(d)) return end;
  }
  return 0;
}

/** IBAN lengths by country (SWIFT's registry). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28, CZ: 24,
  DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28,
  HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
  RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29, VA: 22,
  VG: 24, XK: 20,
};

/** The mod-97 check of a compact IBAN (ISO 13616). */
export function ibanValid(iban: string): boolean {
  if (IBAN_LENGTHS[iban.slice(0, 2)] !== iban.length) return false;
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const c = ch.charCodeAt(0);
    const v = c >= 65 ? c - 55 : c - 48;
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

function ibanLength(m: string): number {
  const want = IBAN_LENGTHS[m.slice(0, 2)];
  if (want === undefined) return 0;
  // The candidate may run into the next word: keep exactly the country's length of characters.
  let seen = 0;
  let end = 0;
  let compact = '';
  for (; end < m.length && seen < want; end++) {
    if (m[end] === ' ') continue;
    compact += m[end];
    seen++;
  }
  if (seen < want || !ibanValid(compact)) return 0;
  // Not cut in the middle of a word.
  if (end < m.length && m[end] !== ' ') return 0;
  return end;
}

/** A US SSN: area 000, 666 and 900–999, group 00 and serial 0000 are never issued. */
export function ssnValid(ssn: string): boolean {
  const d = ssn.replace(/[ -]/g, '');
  if (!/^[0-9]{9}$/.test(d)) return false;
  const area = Number(d.slice(0, 3));
  return area !== 0 && area !== 666 && area < 900 && d.slice(3, 5) !== '00' && d.slice(5) !== '0000';
}

function ssnLength(m: string): number {
  return ssnValid(m) ? m.length : 0;
}

/** Prefixes of UK National Insurance numbers that are never issued. */
const NINO_BAD_PREFIXES = new Set(['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ']);

function ninoLength(m: string): number {
  return NINO_BAD_PREFIXES.has(m.slice(0, 2)) ? 0 : m.length;
}

const DATE_LIKE = /^[0-9]{1,4}[-./ ][0-9]{1,2}[-./ ][0-9]{1,4}$/;

function phoneLength(m: string): number {
  if (DATE_LIKE.test(m)) return 0;
  let digits = 0;
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
  }
  const min = m[0] === '+' ? 8 : 9;
  if (digits < min || digits > 15) return 0;
  // Unbalanced parentheses: a list of numbers, not a phone.
  if (m.split('(').length !== m.split(')').length) return 0;
  return m.length;
}

/** Shannon entropy of a string, in bits per character. */
export function entropyBits(s: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Minimum entropy of a long token to be taken for a random key (random base62 of 32 characters: ~4.6). */
export const TOKEN_MIN_ENTROPY_BITS = 4.2;

function entropyLength(m: string): number {
  if (!/[A-Z]/.test(m) || !/[a-z]/.test(m) || !/[0-9]/.test(m)) return 0;
  // Paths and words joined by separators are not random.
  if (/[/_-][a-z]{4,}[/_-]/i.test(m)) return 0;
  return entropyBits(m) >= TOKEN_MIN_ENTROPY_BITS ? m.length : 0;
}
