/**
 * Size limits (`limits:` in swarm.yaml) and the network policy (`network:`), with their defaults.
 * Resolved once into the frozen configuration; see docs/limits.md for where each one applies.
 *
 * @example
 *   # swarm.yaml
 *   limits: { run_input_bytes: 262144, step_output_bytes: 4194304 }
 *   network: { allow: ["127.0.0.1", "10.0.0.0/8", "localhost"] }
 */
import { ManifestError } from '../core/errors.js';
import { LIMIT_DEFAULTS, type LimitName, type Limits } from '../core/limits.js';
import type { YamlSource } from '../core/manifest/yaml-source.js';
import { EMPTY_ALLOW_LIST, parseAllowList, type AllowList } from '../net/address.js';

/** The resolved network policy: what agents' HTTP requests may reach besides public addresses. */
export interface NetworkConfig {
  readonly allow: AllowList;
}

/** The smallest and largest value a limit may be set to (1 KiB … 1 GiB). */
const LIMIT_MIN = 1024;
const LIMIT_MAX = 1024 * 1024 * 1024;

export const LIMITS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(Object.keys(LIMIT_DEFAULTS).map((k) => [k, { type: 'integer', minimum: LIMIT_MIN, maximum: LIMIT_MAX }])),
} as const;

export const NETWORK_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { allow: { type: 'array', items: { type: 'string', minLength: 1 } } },
} as const;

/** The limits of a swarm.yaml (already checked against `LIMITS_SCHEMA`), defaults filled in. */
export function resolveLimits(raw: Partial<Record<LimitName, number>> | undefined): Limits {
  return Object.freeze({ ...LIMIT_DEFAULTS, ...(raw ?? {}) });
}

/** The network policy of a swarm.yaml (already checked against `NETWORK_SCHEMA`); a bad entry names its line. */
export function resolveNetwork(raw: { allow?: string[] } | undefined, source: YamlSource | undefined, file: string): NetworkConfig {
  if (!raw?.allow) return Object.freeze({ allow: EMPTY_ALLOW_LIST });
  const allow = parseAllowList(raw.allow);
  if ('error' in allow) throw new ManifestError(file, `network.allow[${allow.index}]`, allow.error, source?.lineOf(['network', 'allow', allow.index]));
  return Object.freeze({ allow });
}

export { LIMIT_DEFAULTS, type LimitName, type Limits };
