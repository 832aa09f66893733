/**
 * `guardrails.redaction` (swarm.yaml, agent.yaml): data classes and what is done with each
 * (`redact`, `mask`, `drop`, `allow`), for what Swarm STORES and shows (swarm.yaml only: one policy
 * for the deployment) and, separately, for what the MODEL sees (`model:`, in swarm.yaml as the
 * default and in agent.yaml per agent). Pure parsing and validation; the behaviour is in
 * src/guardrails/redaction/.
 *
 * ```yaml
 * guardrails:
 *   redaction:
 *     email: redact                       # [EMAIL]
 *     card: { action: mask, keep: 4 }     # ****1111
 *     national_id: drop                   # the whole field becomes [DROPPED:national_id]
 *     mask_keep: 4                        # the default `keep` of masks
 *     custom:
 *       employee_id: { pattern: 'EMP-[0-9]{6}', action: redact }
 *     model:                              # what the model sees (default: everything)
 *       phone: redact
 * ```
 */
import { BUILTIN_CLASSES } from '../../../guardrails/redaction/detectors.js';
import { DEFAULT_MASK_KEEP, REDACTION_ACTIONS, type ClassRule, type RedactionAction } from '../../../guardrails/redaction/classifier.js';
import { shownValue } from '../problems.js';
import { fieldName, type GuardrailSection } from './section.js';

/** Classes with a built-in detector, and `secret` (Swarm's secrets' values). */
export const DATA_CLASSES = [...BUILTIN_CLASSES, 'secret'] as const;

const RULE_SCHEMA = {
  anyOf: [{ type: 'string' }, { type: 'object', additionalProperties: false, properties: { action: { type: 'string' }, keep: {} } }],
};
const CLASS_RULES = Object.fromEntries(DATA_CLASSES.map((c) => [c, RULE_SCHEMA]));

export const REDACTION_SCHEMA: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...CLASS_RULES,
    mask_keep: {},
    custom: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: false, properties: { pattern: {}, action: { type: 'string' }, keep: {} } },
    },
    model: { type: 'object', additionalProperties: RULE_SCHEMA },
  },
};

/** `guardrails.redaction` as validated. */
export interface RedactionSpec {
  /** What is stored (and shown), per class named; classes not named keep their default (docs/guardrails.md). */
  storage: Readonly<Record<string, ClassRule>>;
  /** What the model sees, per class named (default: everything allowed). */
  model: Readonly<Record<string, ClassRule>>;
  /** User classes: name and regular expression. */
  custom: ReadonlyArray<{ name: string; pattern: string }>;
}

const CLASS_NAME = /^[a-z][a-z0-9_]{0,39}$/;
const MAX_KEEP = 16;

/** Validate `guardrails.redaction` (its JSON Schema has passed); problems go to `s.problems` with file, field and line. */
export function parseRedactionSpec(s: GuardrailSection): RedactionSpec {
  const raw = (s.value ?? {}) as Record<string, unknown>;
  const at = (...p: Array<string | number>): { field: string; line: number | undefined } => ({ field: fieldName([...s.path, ...p]), line: s.lineOf([...s.path, ...p]) });
  const problem = (msg: string, ...p: Array<string | number>): void => {
    const { field, line } = at(...p);
    s.problems.add(field, msg, line);
  };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problem('must be a mapping of data classes to actions');
    return { storage: {}, model: {}, custom: [] };
  }

  let defaultKeep = DEFAULT_MASK_KEEP;
  if (raw.mask_keep !== undefined) {
    if (isKeep(raw.mask_keep)) defaultKeep = raw.mask_keep;
    else problem(`must be a whole number of characters from 0 to ${MAX_KEEP}, not ${shownValue(raw.mask_keep)}`, 'mask_keep');
  }

  const custom: Array<{ name: string; pattern: string }> = [];
  const storage: Record<string, ClassRule> = {};
  const customRaw = raw.custom;
  if (customRaw !== undefined) {
    if (!customRaw || typeof customRaw !== 'object' || Array.isArray(customRaw)) problem('must be a mapping of class names to { pattern, action }', 'custom');
    else
      for (const [name, def] of Object.entries(customRaw as Record<string, unknown>)) {
        if (!CLASS_NAME.test(name)) {
          problem(`'${name}' is not a valid class name (lower case letters, digits and '_', starting with a letter)`, 'custom', name);
          continue;
        }
        if ((DATA_CLASSES as readonly string[]).includes(name)) {
          problem(`'${name}' is a built-in class: set its action with '${name}: <action>' instead`, 'custom', name);
          continue;
        }
        const d = (def ?? {}) as Record<string, unknown>;
        if (typeof d.pattern !== 'string' || d.pattern === '') {
          problem('needs a pattern (a regular expression)', 'custom', name, 'pattern');
          continue;
        }
        const bad = regexProblem(d.pattern);
        if (bad) {
          problem(`is not a valid regular expression: ${bad}`, 'custom', name, 'pattern');
          continue;
        }
        custom.push({ name, pattern: d.pattern });
        const rule = parseRule({ action: d.action ?? 'redact', ...(d.keep !== undefined ? { keep: d.keep } : {}) }, defaultKeep, (msg, ...p) => problem(msg, 'custom', name, ...p), true);
        if (rule) storage[name] = rule;
      }
  }
  const known = new Set<string>([...DATA_CLASSES, ...custom.map((c) => c.name)]);

  for (const cls of DATA_CLASSES) {
    if (raw[cls] === undefined) continue;
    const rule = parseRule(raw[cls], defaultKeep, (msg, ...p) => problem(msg, cls, ...p));
    if (!rule) continue;
    if (cls === 'secret' && (rule.action === 'allow' || rule.action === 'mask')) {
      problem(`secrets' values are never stored: 'secret' takes redact (the [secret:NAME] marker) or drop, not ${rule.action}`, cls);
      continue;
    }
    storage[cls] = rule;
  }

  const model: Record<string, ClassRule> = {};
  if (raw.model !== undefined) {
    if (!raw.model || typeof raw.model !== 'object' || Array.isArray(raw.model)) problem('must be a mapping of data classes to actions (what the model sees)', 'model');
    else
      for (const [cls, v] of Object.entries(raw.model as Record<string, unknown>)) {
        if (!known.has(cls)) {
          problem(`unknown data class '${cls}' (one of ${[...known].join(', ')}; a class of your own goes under custom: with a pattern)`, 'model', cls);
          continue;
        }
        const rule = parseRule(v, defaultKeep, (msg, ...p) => problem(msg, 'model', cls, ...p));
        if (rule) model[cls] = rule;
      }
  }
  return { storage, model, custom };
}

/**
 * agent.yaml may only say what its model sees (and add classes for it): the storage policy is the
 * deployment's. Call after parseRedactionSpec on an agent's section.
 */
export function checkAgentRedaction(s: GuardrailSection): void {
  const raw = s.value;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return;
  for (const key of Object.keys(raw)) {
    if (key === 'model' || key === 'custom' || key === 'mask_keep') continue;
    s.problems.add(fieldName([...s.path, key]), "what is stored is the deployment's policy: set it in swarm.yaml (guardrails.redaction); an agent sets only what its model sees (model:)", s.lineOf([...s.path, key]));
  }
  const custom = (raw as Record<string, unknown>).custom;
  if (custom && typeof custom === 'object')
    for (const [name, def] of Object.entries(custom as Record<string, unknown>)) {
      if (def && typeof def === 'object' && ('action' in def || 'keep' in def)) {
        s.problems.add(fieldName([...s.path, 'custom', name, 'action']), "an agent's own class is for its model view only: set its action under model:", s.lineOf([...s.path, 'custom', name]));
      }
    }
}

function parseRule(v: unknown, defaultKeep: number, problem: (msg: string, ...p: string[]) => void, inCustom = false): ClassRule | undefined {
  const obj = typeof v === 'string' ? { action: v } : v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  if (!obj) {
    problem(`must be an action (${REDACTION_ACTIONS.join(', ')}) or { action, keep }`);
    return undefined;
  }
  const actionPath = typeof v === 'string' && !inCustom ? [] : ['action'];
  if (typeof obj.action !== 'string' || !(REDACTION_ACTIONS as readonly string[]).includes(obj.action)) {
    problem(`unknown action ${JSON.stringify(obj.action)} (one of ${REDACTION_ACTIONS.join(', ')})`, ...actionPath);
    return undefined;
  }
  const action = obj.action as RedactionAction;
  if (obj.keep !== undefined) {
    if (!isKeep(obj.keep)) {
      problem(`must be a whole number of characters from 0 to ${MAX_KEEP}, not ${JSON.stringify(obj.keep)}`, 'keep');
      return undefined;
    }
    if (action !== 'mask') {
      problem(`only a mask keeps characters (the action is ${action})`, 'keep');
      return undefined;
    }
  }
  return action === 'mask' ? { action, keep: (obj.keep) ?? defaultKeep } : { action };
}

function isKeep(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_KEEP;
}

function regexProblem(pattern: string): string | undefined {
  try {
    const re = new RegExp(pattern);
    // A pattern that matches the empty string would match everywhere.
    if (re.test('')) return 'it matches the empty string';
    // Patterns are combined into one: a numbered back-reference would point at another class's group.
    if (/\\[1-9]/.test(pattern)) return 'back-references (\\1) are not supported: use a named group (\\k<name>)';
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^Invalid regular expression: /, '');
  }
}
