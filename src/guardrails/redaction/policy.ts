/**
 * The storage policy of a deployment (`guardrails.redaction` in swarm.yaml) over its defaults, and
 * the model view of an agent (swarm.yaml's `model:` under the agent's own). Pure.
 *
 * Default storage policy, when swarm.yaml says nothing: Swarm's secrets' values `redact` (their
 * `[secret:NAME]` marker, always: never `allow`), `api_key` `redact`, `card` `mask` (last 4), every
 * other class `allow` (`token`, the entropy rule, too: digests and signatures look random).
 * Default model view: everything `allow` (the model sees what the conversation holds in memory).
 *
 * @example
 *   const p = storagePolicy(config.guardrails.redaction);
 *   new Redactor(secrets, { classes: new ClassRedactor(p.rules, p.custom), secretAction: p.secret });
 */
import type { RedactionSpec } from '../../core/manifest/guardrails/redaction.js';
import type { ClassRule } from './classifier.js';
import type { CustomClass } from './detectors.js';

export const DEFAULT_STORAGE_RULES: Readonly<Record<string, ClassRule>> = Object.freeze({
  api_key: { action: 'redact' },
  card: { action: 'mask', keep: 4 },
});

export interface ResolvedPolicy {
  /** Per data class (except `secret`). */
  rules: Record<string, ClassRule>;
  custom: CustomClass[];
  /** What becomes of a secret's value. */
  secret: 'redact' | 'drop';
}

/** What Swarm stores and shows, for the whole deployment. */
export function storagePolicy(spec: RedactionSpec | undefined): ResolvedPolicy {
  const { secret, ...rest } = { ...DEFAULT_STORAGE_RULES, ...(spec?.storage ?? {}) };
  return { rules: rest, custom: [...(spec?.custom ?? [])], secret: secret?.action === 'drop' ? 'drop' : 'redact' };
}

/** What one agent's model sees: the deployment's `model:` under the agent's (custom classes of both). */
export function modelPolicy(deployment: RedactionSpec | undefined, agent: RedactionSpec | undefined): { rules: Record<string, ClassRule>; custom: CustomClass[]; secret: ClassRule['action'] } {
  const { secret, ...rest } = { ...(deployment?.model ?? {}), ...(agent?.model ?? {}) };
  const custom = new Map<string, CustomClass>();
  for (const c of [...(deployment?.custom ?? []), ...(agent?.custom ?? [])]) custom.set(c.name, c);
  return { rules: rest, custom: [...custom.values()], secret: secret?.action ?? 'allow' };
}
