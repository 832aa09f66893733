import semver from 'semver';
import { ManifestError } from '../errors.js';
import { FIELD_TYPES, toJsonSchema, type FieldSpec, type IoSchema } from '../io-schema.js';
import { checkManifest } from './schema-check.js';
import { parseYaml } from './yaml-source.js';

export const RUNTIME_TYPES = ['node', 'python', 'bash', 'process', 'builtin'] as const;
export type RuntimeType = (typeof RUNTIME_TYPES)[number];

export const DEFAULT_MEMORY_MB = 128;
export const DEFAULT_TIMEOUT_SECONDS = 300;

export interface AgentRuntime {
  type: RuntimeType;
  /** Script for node/python/bash, program for process, built-in name for builtin. */
  entry: string;
  /** For `process`: the interpreter or program; `entry` becomes its first argument. */
  command?: string[];
  memory_mb: number;
  timeout_seconds: number;
}

/** A validated agent.yaml. */
export interface AgentManifest {
  name: string;
  version: string;
  description?: string;
  author?: string;
  runtime: AgentRuntime;
  capabilities: string[];
  inputs: IoSchema;
  outputs: IoSchema;
  triggers: Array<Record<string, unknown>>;
  tags: string[];
}

export const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

const fieldList = {
  type: 'array',
  items: {
    type: 'object',
    required: ['name', 'type'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]*$' },
      type: { enum: [...FIELD_TYPES] },
      required: { type: 'boolean' },
      description: { type: 'string' },
      default: {},
    },
  },
};
const ioSpec = { anyOf: [fieldList, { type: 'object' }] };

const agentSchema = {
  type: 'object',
  required: ['name', 'version', 'runtime'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN },
    version: { type: ['string', 'number'] },
    description: { type: 'string' },
    author: { type: 'string' },
    runtime: {
      type: 'object',
      required: ['type'],
      additionalProperties: false,
      properties: {
        type: { enum: [...RUNTIME_TYPES] },
        entry: { type: 'string', minLength: 1 },
        command: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
        memory_mb: { type: 'integer', minimum: 16, maximum: 1048576 },
        timeout_seconds: { type: 'number', exclusiveMinimum: 0, maximum: 604800 },
      },
    },
    capabilities: { type: 'array', items: { type: 'string' } },
    inputs: ioSpec,
    outputs: ioSpec,
    triggers: { type: 'array', items: { type: 'object' } },
    tags: { type: 'array', items: { type: 'string' } },
  },
};

/**
 * Parse and validate an agent.yaml. Errors name the file, the field and the line.
 *
 * @example
 *   const agent = parseAgentManifest(readFileSync('agents/echo/agent.yaml', 'utf8'), 'agents/echo/agent.yaml');
 */
export function parseAgentManifest(text: string, file: string): AgentManifest {
  const src = parseYaml(text, file);
  checkManifest(src, agentSchema);
  const raw = src.value as Record<string, unknown> & { runtime: Record<string, unknown> };
  const version = String(raw.version);
  if (!semver.valid(version)) {
    throw new ManifestError(file, 'version', `'${version}' is not a semantic version (like 1.0.0)${typeof raw.version === 'number' ? '; write it in quotes' : ''}`, src.lineOf(['version']));
  }
  const type = raw.runtime.type as RuntimeType;
  const entry = raw.runtime.entry as string | undefined;
  if (!entry) {
    const what = type === 'builtin' ? 'the built-in agent name (echo, noop, sleep, http-fetch)' : 'the script or program to run';
    throw new ManifestError(file, 'runtime.entry', `is required: ${what}`, src.lineOf(['runtime']));
  }
  const cmd = raw.runtime.command;
  if (cmd !== undefined && type !== 'process') {
    throw new ManifestError(file, 'runtime.command', `is only for runtime.type 'process' (this agent is '${type}')`, src.lineOf(['runtime', 'command']));
  }
  for (const key of ['inputs', 'outputs'] as const) checkFieldNames(raw[key], key, file, src.lineOf.bind(src));
  return {
    name: raw.name as string,
    version: semver.clean(version) ?? version,
    ...(raw.description !== undefined ? { description: raw.description as string } : {}),
    ...(raw.author !== undefined ? { author: raw.author as string } : {}),
    runtime: {
      type,
      entry,
      ...(cmd !== undefined ? { command: typeof cmd === 'string' ? cmd.split(/\s+/).filter(Boolean) : (cmd as string[]) } : {}),
      memory_mb: (raw.runtime.memory_mb as number | undefined) ?? DEFAULT_MEMORY_MB,
      timeout_seconds: (raw.runtime.timeout_seconds as number | undefined) ?? DEFAULT_TIMEOUT_SECONDS,
    },
    capabilities: (raw.capabilities as string[] | undefined) ?? [],
    inputs: toJsonSchema(raw.inputs as FieldSpec[] | IoSchema | undefined),
    outputs: closeIfList(raw.outputs),
    triggers: (raw.triggers as Array<Record<string, unknown>> | undefined) ?? [{ type: 'manual' }],
    tags: (raw.tags as string[] | undefined) ?? [],
  };
}

/** Outputs declared as a list are the complete set: references to other names are caught at register time. */
function closeIfList(spec: unknown): IoSchema {
  const schema = toJsonSchema(spec as FieldSpec[] | IoSchema | undefined);
  return Array.isArray(spec) ? { ...schema, 'x-swarm-closed': true } : schema;
}

function checkFieldNames(spec: unknown, key: string, file: string, lineOf: (p: Array<string | number>) => number | undefined): void {
  if (!Array.isArray(spec)) return;
  const seen = new Set<string>();
  spec.forEach((f: FieldSpec, i) => {
    if (seen.has(f.name)) throw new ManifestError(file, `${key}[${i}].name`, `duplicate field '${f.name}'`, lineOf([key, i, 'name']));
    seen.add(f.name);
  });
}

/** `name@version`: the key users type and the registry's unique key (agents and workflows alike). */
export function agentRef(a: { name: string; version: string }): string {
  return `${a.name}@${a.version}`;
}

/** Split `name@range` (range may be a version, a semver range, `latest`, or absent). */
export function parseRef(ref: string): { name: string; range: string } {
  const at = ref.lastIndexOf('@');
  if (at <= 0) return { name: ref, range: 'latest' };
  return { name: ref.slice(0, at), range: ref.slice(at + 1) || 'latest' };
}

/** Pick the highest version satisfying `range` (`latest` = highest). */
export function pickVersion(versions: string[], range: string): string | undefined {
  if (range === 'latest' || range === '*') return semver.rsort([...versions])[0];
  if (semver.valid(range)) return versions.find((v) => semver.eq(v, range));
  return semver.maxSatisfying(versions, range) ?? undefined;
}

/** The newest record whose version satisfies `range`, among records of one name. */
export function pickRecord<T extends { version: string }>(records: readonly T[], range: string): T | undefined {
  const v = pickVersion(
    records.map((r) => r.version),
    range,
  );
  return v === undefined ? undefined : records.find((r) => r.version === v);
}

export function isValidRange(range: string): boolean {
  return range === 'latest' || semver.validRange(range) !== null;
}
