/**
 * The built-in injection patterns: text in untrusted content (tool results, fetched pages, MCP
 * resources, memory) that tries to give the model instructions. Each has a stable rule id, which the
 * audit events and the sanitised marker name. Pure: no I/O.
 *
 * They are a tripwire, not the defence: the defence is the data-flow policy (sensitive tools are gated
 * once untrusted content is in the context, whether or not a pattern matched).
 *
 * @example
 *   findInjections('Please IGNORE all previous instructions.', compilePatterns(BUILTIN_PATTERNS))
 *   // → [{ rule: 'ignore-previous', start: 7, end: 40 }]
 */
import { BoundedMemo } from '../core/bounded-memo.js';
import type { UserPattern } from '../core/manifest/guardrails/policy.js';

export interface InjectionPattern {
  /** Stable rule id (events, markers, docs). */
  rule: string;
  regex: string;
  flags?: string;
  /** Lower-case words of which the text must contain one for the rule to be tried (cheap: most content matches none). */
  hints?: readonly string[];
  description: string;
}

/** One match: the rule and the span of the text it covers. */
export interface InjectionMatch {
  rule: string;
  start: number;
  end: number;
}

export const BUILTIN_PATTERNS: readonly InjectionPattern[] = [
  { rule: 'ignore-previous', hints: ['ignore', 'forget', 'override', 'skip'], regex: String.raw`\b(?:ignore|forget|override|skip)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|preceding)\s+(?:instructions?|prompts?|directions?|rules?|messages?)`, description: '"ignore (all) previous instructions" and its variants' },
  { rule: 'disregard-system', hints: ['system', 'developer'], regex: String.raw`\b(?:disregard|ignore|forget|bypass|reveal|print|show)\s+(?:the\s+|your\s+|all\s+)*(?:system|developer)\s+(?:prompt|message|instructions?)`, description: '"disregard the system prompt", "reveal your system prompt"' },
  { rule: 'new-instructions', hints: ['instruction'], regex: String.raw`\b(?:new|updated|real|actual)\s+instructions?\s*(?::|follow)`, description: '"new instructions:" planted in content' },
  { rule: 'you-are-now', hints: ['now'], regex: String.raw`\byou\s+are\s+now\s+(?:a|an|the|in|my|no\s+longer)\b`, description: '"you are now a …" role reassignment' },
  { rule: 'roleplay-jailbreak', hints: ['mode', 'anything', 'jailbr', 'pretend', 'act'], regex: String.raw`\b(?:DAN\s+mode|developer\s+mode\s+(?:enabled|on)|do\s+anything\s+now|jailbr(?:oken|eak)|pretend\s+(?:that\s+)?you\s+(?:are|have)\s+no\s+(?:rules|restrictions|limits)|act\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|evil))`, description: 'role-play jailbreak markers (DAN, developer mode, "pretend you have no rules")' },
  { rule: 'hidden-markup', hints: ['<', '['], regex: String.raw`<\|(?:im_start|start_header_id)\|>\s*(?:system|developer|user|assistant)?|<\|(?:im_end|system|endoftext|eot_id|end_header_id)\|>|\[/?INST\]|<<SYS>>|<\s*/?\s*(?:system|instructions?)\s*>`, description: 'chat-template markup hidden in content (<|im_start|>system, [INST], <system>)' },
  { rule: 'exfiltrate', hints: ['://', '@'], regex: String.raw`\b(?:exfiltrate|send|post|upload|forward|leak|email)\b[^.\n]{0,80}?\b(?:to|at|into)\s+(?:(?:https?|ftp)://[^\s"'<>]*|[^\s@]+@[^\s@]+\.\w+)`, description: '"send/exfiltrate … to http(s)://…" or to an address' },
  { rule: 'base64-instructions', hints: ['decode', 'base64', 'instruction'], regex: String.raw`\b(?:decode|base64|instructions?)\b[^\n]{0,40}?[A-Za-z0-9+/]{40,}={0,2}`, description: 'a base64 blob announced as something to decode or obey' },
  { rule: 'secret-request', hints: ['key', 'secret', 'password', 'credential', 'token'], regex: String.raw`\b(?:reveal|print|output|send|show)\s+(?:me\s+)?(?:your\s+|the\s+|all\s+)*(?:api[\s_-]?keys?|secrets?|passwords?|credentials|tokens?)\b`, description: 'asks the model to reveal keys, secrets or passwords' },
];

export interface CompiledPattern {
  rule: string;
  re: RegExp;
  hints?: readonly string[];
}

// Compiled lists by what they were compiled from: every step of an agent compiles the same ones.
// Sharing them is safe: a pattern's `lastIndex` is reset before each (synchronous) search.
const compiled = new BoundedMemo<string, CompiledPattern[]>(256);

/** Compile the built-in patterns (optionally) and the user's (validated at registration). */
export function compilePatterns(builtin: readonly InjectionPattern[] | false, user: readonly UserPattern[] = []): CompiledPattern[] {
  const from = builtin === false ? 'none' : builtin === BUILTIN_PATTERNS ? 'builtin' : JSON.stringify(builtin);
  const key = `${from} ${JSON.stringify(user.map((p) => [p.name, p.regex, p.flags ?? null]))}`;
  return compiled.get(key, () => {
    const list: CompiledPattern[] = [];
    for (const p of builtin || []) list.push({ rule: p.rule, re: new RegExp(p.regex, `${p.flags ?? 'i'}g`), ...(p.hints ? { hints: p.hints } : {}) });
    for (const p of user) list.push({ rule: p.name, re: new RegExp(p.regex, `${p.flags ?? 'i'}g`) });
    return list;
  });
}

/** Every match of every pattern in `text`, in text order (overlapping spans are merged by `sanitize`). */
export function findInjections(text: string, patterns: readonly CompiledPattern[]): InjectionMatch[] {
  const out: InjectionMatch[] = [];
  let lower: string | undefined;
  for (const p of patterns) {
    if (p.hints) {
      lower ??= text.toLowerCase();
      if (!p.hints.some((h) => (lower as string).includes(h))) continue;
    }
    p.re.lastIndex = 0;
    for (let m = p.re.exec(text); m; m = p.re.exec(text)) {
      // An empty match would loop forever: step past it.
      if (m[0].length === 0) {
        p.re.lastIndex++;
        continue;
      }
      out.push({ rule: p.rule, start: m.index, end: m.index + m[0].length });
    }
  }
  return out.sort((a, b) => a.start - b.start || b.end - a.end);
}

/** The marker that replaces a sanitised span. */
export function removedMarker(rule: string): string {
  return `[removed: instruction-like text (rule ${rule})]`;
}

/** Replace each matched span (overlaps merged, the first rule named) with its marker. */
export function sanitize(text: string, matches: readonly InjectionMatch[]): string {
  const sorted = [...matches].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (let i = 0; i < sorted.length; i++) {
    const m = sorted[i] as InjectionMatch;
    let end = m.end;
    while (i + 1 < sorted.length && (sorted[i + 1] as InjectionMatch).start < end) end = Math.max(end, (sorted[++i] as InjectionMatch).end);
    const start = Math.max(m.start, at);
    if (start > at) out += text.slice(at, start);
    out += removedMarker(m.rule);
    at = Math.max(at, end);
  }
  return out + text.slice(at);
}
