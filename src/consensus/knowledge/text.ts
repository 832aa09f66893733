/**
 * The keys a task is found by in the knowledge store: the canonical hash of its inputs (EXACT), the
 * text embedded for similarity (SIMILAR), and the vector memory namespace of its task type.
 *
 * @example
 *   inputsHash({ b: 1, a: 2 }) === inputsHash({ a: 2, b: 1 })   // true
 *   taskText({ prompt: 'Summarise the report' })                 // 'Summarise the report'
 *   knowledgeNamespace('summary')                                // 'knowledge:summary'
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../core/canonical-json.js';
import { MEMORY_TEXT_MAX_CHARS } from '../../memory/agent-memory.js';

/** sha256 hex of canonicalJson(inputs): equal for equal inputs whatever their key order. */
export function inputsHash(inputs: unknown): string {
  return createHash('sha256').update(canonicalJson(inputs)).digest('hex');
}

/**
 * The text a task is compared by: `inputs.prompt` when it is a non-empty string; otherwise every
 * string value of the inputs (depth first, keys in canonical order), one a line; otherwise the
 * canonical JSON of the inputs. Cut to the memory layer's text limit.
 */
export function taskText(inputs: Record<string, unknown>): string {
  const prompt = inputs.prompt;
  let text: string;
  if (typeof prompt === 'string' && prompt.trim() !== '') text = prompt;
  else {
    const strings: string[] = [];
    collectStrings(inputs, strings);
    text = strings.length ? strings.join('\n') : canonicalJson(inputs);
  }
  return text.length > MEMORY_TEXT_MAX_CHARS ? text.slice(0, MEMORY_TEXT_MAX_CHARS) : text;
}

function collectStrings(v: unknown, out: string[]): void {
  if (typeof v === 'string') {
    if (v.trim() !== '') out.push(v);
  } else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v).sort()) collectStrings((v as Record<string, unknown>)[k], out);
  }
}

/** Prefix of the vector memory namespaces the knowledge store writes (one per task type). */
export const KNOWLEDGE_NAMESPACE_PREFIX = 'knowledge:';

/**
 * The memory namespace of a task type: `knowledge:<task type>` when the type is made of the
 * characters a memory namespace allows (it is a URL path segment of the memory API), otherwise
 * `knowledge:~` and a digest of the type.
 */
export function knowledgeNamespace(taskType: string): string {
  return /^[A-Za-z0-9_.:-]{1,180}$/.test(taskType)
    ? `${KNOWLEDGE_NAMESPACE_PREFIX}${taskType}`
    : `${KNOWLEDGE_NAMESPACE_PREFIX}~${createHash('sha256').update(taskType).digest('hex').slice(0, 32)}`;
}

/** The memory dedup key of a decision: one memory per decided task, however often it is recorded. */
export function knowledgeDedupKey(taskId: string): string {
  return `knowledge/${taskId}`;
}
