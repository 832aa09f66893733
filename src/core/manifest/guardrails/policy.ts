/**
 * `guardrails.policy` (swarm.yaml, agent.yaml): the injection policy (patterns on untrusted content),
 * what happens to `sensitive` tools once untrusted content is in the context, and escalation (loops,
 * handoff cycles, repeated failures, unknown tools). Pure parsing and validation; the behaviour is in
 * src/guardrails/injection.ts and src/guardrails/escalation.ts.
 *
 * ```yaml
 * guardrails:
 *   policy:
 *     injection:
 *       action: sanitize            # warn | sanitize | reject
 *       builtin_patterns: true
 *       patterns:
 *         - { name: wire-money, regex: "wire \\$?\\d+ to", flags: i }
 *     sensitive_tools: approve      # approve | refuse | allow
 *     escalation:
 *       repeated_call: { count: 3, action: stop }   # stop | ask | warn
 *       handoff_cycle: { count: 2, action: ask }
 *       tool_failures: { count: 3, action: warn }
 *       unknown_tools: { count: 3, action: stop }
 * ```
 */
import { BUILTIN_PATTERNS } from '../../../guardrails/patterns.js';
import { fieldName, type GuardrailSection } from './section.js';

export const INJECTION_ACTIONS = ['warn', 'sanitize', 'reject'] as const;
export const SENSITIVE_ACTIONS = ['approve', 'refuse', 'allow'] as const;
export const ESCALATION_ACTIONS = ['stop', 'ask', 'warn'] as const;
export const ESCALATION_RULES = ['repeated_call', 'handoff_cycle', 'tool_failures', 'unknown_tools'] as const;

export type InjectionAction = (typeof INJECTION_ACTIONS)[number];
export type SensitiveAction = (typeof SENSITIVE_ACTIONS)[number];
export type EscalationAction = (typeof ESCALATION_ACTIONS)[number];
export type EscalationRule = (typeof ESCALATION_RULES)[number];

/** A user pattern, compiled at registration (an invalid one never gets this far). */
export interface UserPattern {
  name: string;
  regex: string;
  flags?: string;
}

export interface InjectionSpec {
  action?: InjectionAction;
  builtin_patterns?: boolean;
  patterns?: UserPattern[];
}

export interface EscalationRuleSpec {
  count?: number;
  action?: EscalationAction;
}

/** `guardrails.policy` as validated (every key optional: an agent's keys win over the deployment's). */
export interface PolicySpec {
  injection?: InjectionSpec;
  sensitive_tools?: SensitiveAction;
  escalation?: Partial<Record<EscalationRule, EscalationRuleSpec>>;
}

/** The default threshold of each escalation rule (a rule applies only when configured). */
export const ESCALATION_DEFAULT_COUNT: Record<EscalationRule, number> = { repeated_call: 3, handoff_cycle: 2, tool_failures: 3, unknown_tools: 3 };

const RULE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { count: { type: 'integer' }, action: { type: 'string' } },
};

export const POLICY_SCHEMA: Record<string, unknown> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    injection: {
      type: 'object',
      additionalProperties: false,
      properties: {
        action: { type: 'string' },
        builtin_patterns: { type: 'boolean' },
        patterns: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'regex'],
            properties: { name: { type: 'string' }, regex: { type: 'string' }, flags: { type: 'string' } },
          },
        },
      },
    },
    sensitive_tools: { type: 'string' },
    escalation: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(ESCALATION_RULES.map((r) => [r, RULE_SCHEMA])),
    },
  },
};

/** The built-in patterns' rule ids (a user pattern may not take one). */
const BUILTIN_RULES: ReadonlySet<string> = new Set(BUILTIN_PATTERNS.map((p) => p.rule));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validate `guardrails.policy`; problems go to `s.problems` with file, field and line. */
export function parsePolicySpec(s: GuardrailSection): PolicySpec {
  const bad = (rel: Array<string | number>, problem: string): void => s.problems.add(fieldName([...s.path, ...rel]), problem, s.lineOf([...s.path, ...rel]) ?? s.lineOf(s.path));
  if (!isObject(s.value)) {
    bad([], 'must be a mapping (injection, sensitive_tools, escalation)');
    return {};
  }
  const raw = s.value;
  const out: PolicySpec = {};
  for (const key of Object.keys(raw)) {
    if (!['injection', 'sensitive_tools', 'escalation'].includes(key)) bad([key], 'is not a policy setting (injection, sensitive_tools, escalation)');
  }
  const oneOf = <T extends string>(rel: Array<string | number>, v: unknown, allowed: readonly T[]): T | undefined => {
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    bad(rel, `'${String(v)}' is not an action here (one of: ${allowed.join(', ')})`);
    return undefined;
  };

  if (raw.injection !== undefined) {
    const inj = raw.injection;
    if (!isObject(inj)) bad(['injection'], 'must be a mapping (action, builtin_patterns, patterns)');
    else {
      const spec: InjectionSpec = {};
      for (const key of Object.keys(inj)) if (!['action', 'builtin_patterns', 'patterns'].includes(key)) bad(['injection', key], 'is not an injection setting (action, builtin_patterns, patterns)');
      if (inj.action !== undefined) {
        const a = oneOf(['injection', 'action'], inj.action, INJECTION_ACTIONS);
        if (a) spec.action = a;
      }
      if (inj.builtin_patterns !== undefined) {
        if (typeof inj.builtin_patterns === 'boolean') spec.builtin_patterns = inj.builtin_patterns;
        else bad(['injection', 'builtin_patterns'], 'must be true or false');
      }
      if (inj.patterns !== undefined) {
        if (!Array.isArray(inj.patterns)) bad(['injection', 'patterns'], 'must be a list of { name, regex, flags? }');
        else {
          const names = new Set<string>();
          spec.patterns = [];
          inj.patterns.forEach((p, i) => {
            const at = ['injection', 'patterns', i];
            if (!isObject(p) || typeof p.name !== 'string' || typeof p.regex !== 'string' || (p.flags !== undefined && typeof p.flags !== 'string')) {
              bad(at, 'must be { name: <text>, regex: <text>, flags?: <text> }');
              return;
            }
            if (!/^[a-z0-9][a-z0-9_.-]*$/i.test(p.name)) bad([...at, 'name'], `'${p.name}' is not a rule name (letters, digits, '_', '.', '-')`);
            else if (names.has(p.name)) bad([...at, 'name'], `'${p.name}' is named twice`);
            // Events and markers name the rule: one id, one pattern.
            else if (BUILTIN_RULES.has(p.name.toLowerCase())) bad([...at, 'name'], `'${p.name}' is the id of a built-in pattern; give yours another name (builtin_patterns: false turns the built-ins off)`);
            names.add(p.name);
            const flags = p.flags ?? 'i';
            if (/[gy]/.test(flags)) {
              bad([...at, 'flags'], `'${flags}': flags g and y are not allowed (every match is found anyway)`);
              return;
            }
            let re: RegExp;
            try {
              re = new RegExp(p.regex, flags);
            } catch (e) {
              bad([...at, p.flags !== undefined && /flag/i.test((e as Error).message) ? 'flags' : 'regex'], `is not a valid regular expression: ${(e as Error).message}`);
              return;
            }
            // As for guardrails.redaction.custom: a pattern that matches the empty string would match everywhere.
            if (re.test('')) {
              bad([...at, 'regex'], 'is not a valid regular expression: it matches the empty string');
              return;
            }
            spec.patterns?.push({ name: p.name, regex: p.regex, ...(p.flags !== undefined ? { flags: p.flags } : {}) });
          });
        }
      }
      out.injection = spec;
    }
  }

  if (raw.sensitive_tools !== undefined) {
    const a = oneOf(['sensitive_tools'], raw.sensitive_tools, SENSITIVE_ACTIONS);
    if (a) out.sensitive_tools = a;
  }

  if (raw.escalation !== undefined) {
    const esc = raw.escalation;
    if (!isObject(esc)) bad(['escalation'], `must be a mapping of rules (${ESCALATION_RULES.join(', ')})`);
    else {
      const spec: NonNullable<PolicySpec['escalation']> = {};
      for (const [rule, value] of Object.entries(esc)) {
        if (!(ESCALATION_RULES as readonly string[]).includes(rule)) {
          bad(['escalation', rule], `is not an escalation rule (${ESCALATION_RULES.join(', ')})`);
          continue;
        }
        if (!isObject(value)) {
          bad(['escalation', rule], 'must be { count: <n>, action: stop | ask | warn }');
          continue;
        }
        const r: EscalationRuleSpec = {};
        for (const key of Object.keys(value)) if (key !== 'count' && key !== 'action') bad(['escalation', rule, key], 'is not a rule setting (count, action)');
        if (value.count !== undefined) {
          if (typeof value.count === 'number' && Number.isInteger(value.count) && value.count > 0) r.count = value.count;
          else bad(['escalation', rule, 'count'], `'${JSON.stringify(value.count)}' is not a positive whole number`);
        }
        if (value.action !== undefined) {
          const a = oneOf(['escalation', rule, 'action'], value.action, ESCALATION_ACTIONS);
          if (a) r.action = a;
        }
        spec[rule as EscalationRule] = r;
      }
      out.escalation = spec;
    }
  }
  return out;
}

/** An agent's policy over the deployment's: the agent wins per key (per injection setting, per escalation rule). */
export function mergePolicy(deployment: PolicySpec | undefined, agent: PolicySpec | undefined): PolicySpec {
  if (!agent) return deployment ?? {};
  if (!deployment) return agent;
  const injection = deployment.injection || agent.injection ? { ...deployment.injection, ...agent.injection } : undefined;
  const escalation = deployment.escalation || agent.escalation ? { ...deployment.escalation, ...agent.escalation } : undefined;
  const sensitive = agent.sensitive_tools ?? deployment.sensitive_tools;
  return { ...(injection ? { injection } : {}), ...(escalation ? { escalation } : {}), ...(sensitive ? { sensitive_tools: sensitive } : {}) };
}
