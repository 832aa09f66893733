import { existsSync } from 'node:fs';
import { parseProvidersConfig, PROVIDERS_CONFIG_SCHEMA, type ProvidersConfig } from '../agents/providers/config.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { builtinSchema, checkManifest } from '../core/manifest/schema-check.js';
import { parseYaml, type YamlSource } from '../core/manifest/yaml-source.js';
import { SANDBOX_MODES, type SandboxMode } from '../sandbox/sandbox.js';
import { readManifestFile } from '../manifest-file.js';
import { LIMITS_SCHEMA, NETWORK_SCHEMA, resolveLimits, resolveNetwork, type LimitName, type Limits, type NetworkConfig } from './limits.js';
import type { Durability } from '../store/store.js';
import { parseMasterKey } from '../secrets/master-key.js';
import { isLogFormat, LOG_FORMATS, type LogFormat } from '../observability/log-fields.js';
import { RETENTION_DEFAULTS, RETENTION_SCHEMA, resolveRetention, type RetentionConfig, type RetentionFile } from './retention-config.js';

export type { RetentionConfig } from './retention-config.js';
import { GUARDRAILS_SCHEMA, parseGuardrails, type GuardrailsSpec } from '../core/manifest/guardrails/index.js';
import { SW4RM_CONFIG_SCHEMA, sw4rmTunables } from '../sw4rm/tunables.js';
import type { Sw4rmServiceOptions } from '../sw4rm/service-types.js';
import { ProblemList } from '../core/manifest/problems.js';

export const CONFIG_FILE = 'swarm.yaml';

/** Every setting, with its default. Resolved once into a frozen `SwarmConfig`. */
export const DEFAULTS = {
  agents_dir: 'agents',
  workflows_dir: 'workflows',
  durability: 'full' as Durability,
  /** Steps one worker process runs at once. */
  worker_concurrency: 16,
  /** Steps of one run that may run at once (a workflow's `concurrency:` overrides it). */
  run_concurrency: 16,
  lease_ttl_ms: 30_000,
  /** Group-commit window: completions arriving within it share one transaction. */
  commit_window_ms: 0,
  poll_interval_ms: 200,
  /** Process agents' sandbox: bubblewrap where it works here, else none (see docs/isolation.md). */
  sandbox: 'auto' as SandboxMode,
  /** The largest request body the HTTP API (`swarm serve`) accepts: 1 MiB. */
  server_max_body_bytes: 1_048_576,
  /** How long custom events (`emitted_events`) are kept: 30 days (retention-config.ts has the rest of `retention:`). */
  retention_emitted_events: RETENTION_DEFAULTS.emitted_events,
  /** How `swarm serve` and `swarm worker` print their log: `text` (for a terminal) or `json` (one object a line). */
  log_format: 'text' as LogFormat,
} as const;

/** `server:` in swarm.yaml: settings of the HTTP API that `swarm serve` runs. */
export interface ServerConfig {
  /** The largest request body, in bytes (`server.max_body_bytes`); larger ones get 413 before they are read whole. */
  readonly maxBodyBytes: number;
}

/** The resolved configuration: where things are and how the engine behaves. */
export interface SwarmConfig {
  readonly projectDir: string;
  /** The directory holding the store and work files (`<project>/.swarm` unless SWARM_HOME). */
  readonly home: string;
  /** The SQLite file (used when `databaseUrl` is not set). */
  readonly dbPath: string;
  /** A PostgreSQL URL: when set, the store is PostgreSQL (`store: {type: postgres}` or SWARM_DATABASE_URL). */
  readonly databaseUrl: string | undefined;
  /** PostgreSQL: the schema holding Swarm's tables (default `public`). */
  readonly databaseSchema: string | undefined;
  /** PostgreSQL: connections in each process's pool (default 10). */
  readonly databasePoolSize: number | undefined;
  readonly agentsDir: string;
  readonly workflowsDir: string;
  readonly durability: Durability;
  readonly workerConcurrency: number;
  readonly runConcurrency: number;
  readonly leaseMs: number;
  readonly commitWindowMs: number;
  readonly pollMs: number;
  /** Process agents' sandbox driver: `auto` (bubblewrap where it works, else none), `bubblewrap`, `none`. */
  readonly sandbox: SandboxMode;
  /** Memory cgroups per attempt where they can be made (SWARM_MEMORY_CGROUPS=off turns them off). */
  readonly memoryCgroups: boolean;
  /** Values for `${config.*}`. */
  readonly values: Readonly<Record<string, unknown>>;
  /** LLM providers (`providers:` in swarm.yaml): keys' variables, base URLs, retries, rate limits, prices. */
  readonly providers: ProvidersConfig;
  /** Secrets for `${secrets.*}` (from SWARM_SECRET_<NAME> variables). */
  readonly secrets: Readonly<Record<string, string>>;
  /**
   * The master key (32 bytes) from SWARM_MASTER_KEY, when set; otherwise the key is kept in
   * `masterKeyFile`, created on first use. Every machine sharing a PostgreSQL store must set the same.
   */
  readonly masterKey: Buffer | undefined;
  /** Where the master key is kept when SWARM_MASTER_KEY is not set: `<home>/master.key`. */
  readonly masterKeyFile: string;
  readonly faults: ReadonlySet<string>;
  /** Size limits in bytes (`limits:`; defaults in LIMIT_DEFAULTS, see docs/limits.md). */
  readonly limits: Limits;
  /** What agents' HTTP requests may reach besides public addresses (`network.allow`). */
  readonly network: NetworkConfig;
  /** The HTTP API's settings (`server:`). */
  readonly server: ServerConfig;
  /** What is pruned, and after how long (`retention:`): custom events by the schedule holder, finished runs by `swarm serve`'s retention policy. */
  readonly retention: RetentionConfig;
  /** The deployment's guardrails (`guardrails:`): defaults every agent's own `guardrails:` refines. */
  readonly guardrails: GuardrailsSpec;
  /** How `swarm serve` and `swarm worker` log (`log_format:` or SWARM_LOG_FORMAT; `--log-format` overrides). */
  readonly logFormat: LogFormat;
  /** `metrics:`: whether `swarm serve` keeps Prometheus metrics and serves GET /metrics (`enabled`, default true). */
  readonly metrics: { readonly enabled: boolean };
  /** `sw4rm:`: the SW4RM services' tunables (src/sw4rm/tunables.ts); unset ones keep the services' defaults. */
  readonly sw4rm: Readonly<Sw4rmServiceOptions>;
  /** The swarm.yaml that was read, if any. */
  readonly configFile: string | undefined;
}

const fileSchema = builtinSchema({
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    agents_dir: { type: 'string' },
    workflows_dir: { type: 'string' },
    store: {
      anyOf: [
        { enum: ['sqlite', 'postgres'] },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { enum: ['sqlite', 'postgres'] },
            path: { type: 'string' },
            url: { type: 'string' },
            schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
            pool_size: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        },
      ],
    },
    durability: { enum: ['full', 'process'] },
    concurrency: {
      type: 'object',
      additionalProperties: false,
      properties: { worker: { type: 'integer', minimum: 1, maximum: 10000 }, run: { type: 'integer', minimum: 1, maximum: 10000 } },
    },
    lease_ttl_ms: { type: 'integer', minimum: 500 },
    commit_window_ms: { type: 'number', minimum: 0, maximum: 10 },
    poll_interval_ms: { type: 'integer', minimum: 1, maximum: 60000 },
    sandbox: { enum: [...SANDBOX_MODES] },
    log_format: { enum: [...LOG_FORMATS] },
    config: { type: 'object' },
    providers: PROVIDERS_CONFIG_SCHEMA,
    limits: LIMITS_SCHEMA,
    network: NETWORK_SCHEMA,
    server: {
      type: 'object',
      additionalProperties: false,
      properties: { max_body_bytes: { type: 'integer', minimum: 1024, maximum: 1_073_741_824 } },
    },
    retention: RETENTION_SCHEMA,
    // Checked apart, only when present (GUARDRAILS_FILE_SCHEMA): compiling it costs every command.
    guardrails: { type: 'object' },
    metrics: { type: 'object', additionalProperties: false, properties: { enabled: { type: 'boolean' } } },
    sw4rm: SW4RM_CONFIG_SCHEMA,
  },
});

interface ConfigFile {
  agents_dir?: string;
  workflows_dir?: string;
  store?: 'sqlite' | 'postgres' | { type: 'sqlite' | 'postgres'; path?: string; url?: string; schema?: string; pool_size?: number };
  durability?: Durability;
  concurrency?: { worker?: number; run?: number };
  lease_ttl_ms?: number;
  commit_window_ms?: number;
  poll_interval_ms?: number;
  sandbox?: SandboxMode;
  log_format?: LogFormat;
  config?: Record<string, unknown>;
  providers?: unknown;
  limits?: Partial<Record<LimitName, number>>;
  network?: { allow?: string[] };
  server?: { max_body_bytes?: number };
  retention?: RetentionFile;
  guardrails?: Record<string, unknown>;
  metrics?: { enabled?: boolean };
  sw4rm?: Record<string, unknown>;
}

export interface ResolveConfigOptions {
  /** Where to start looking for swarm.yaml (walking up). */
  cwd: string;
  /** Environment variables (entry points pass `process.env`; libraries pass what they choose). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Explicit overrides, applied last. */
  overrides?: Partial<Pick<SwarmConfig, 'home' | 'durability' | 'workerConcurrency' | 'runConcurrency' | 'leaseMs' | 'commitWindowMs' | 'pollMs' | 'sandbox' | 'memoryCgroups'>> & { limits?: Partial<Limits> };
}

/** Find the project: the nearest directory at or above `cwd` with a swarm.yaml, else `cwd`. */
export function findProjectDir(cwd: string): { dir: string; file: string | undefined } {
  let dir = resolve(cwd);
  for (;;) {
    const file = join(dir, CONFIG_FILE);
    if (existsSync(file)) return { dir, file };
    const up = dirname(dir);
    if (up === dir) return { dir: resolve(cwd), file: undefined };
    dir = up;
  }
}

/**
 * Resolve configuration in three steps: swarm.yaml (validated, with line numbers in errors), then
 * environment overrides, then explicit overrides. Validated before anything is opened or written.
 *
 * Environment: SWARM_HOME, SWARM_DB, SWARM_DATABASE_URL, SWARM_DB_SCHEMA, SWARM_DB_POOL_SIZE, SWARM_DURABILITY, SWARM_CONCURRENCY, SWARM_RUN_CONCURRENCY,
 * SWARM_LEASE_TTL_MS, SWARM_COMMIT_WINDOW_MS, SWARM_POLL_INTERVAL_MS, SWARM_SANDBOX, SWARM_MEMORY_CGROUPS, SWARM_LOG_FORMAT, SWARM_SECRET_<NAME>, SWARM_MASTER_KEY, SWARM_FAULT.
 */
export function resolveConfig(options: ResolveConfigOptions): SwarmConfig {
  const env = options.env ?? {};
  const { dir: projectDir, file } = findProjectDir(options.cwd);
  let raw: ConfigFile = {};
  let source: YamlSource | undefined;
  if (file) {
    const src = parseYaml(readManifestFile(file), file);
    if (src.value !== null && src.value !== undefined) {
      checkManifest(src, fileSchema);
      const guardrails = (src.value as { guardrails?: unknown }).guardrails;
      if (guardrails !== undefined) checkManifest({ ...src, value: { guardrails } }, GUARDRAILS_FILE_SCHEMA);
      raw = src.value;
      source = src;
    }
  }
  const rel = (p: string): string => (isAbsolute(p) ? p : join(projectDir, p));
  const home = options.overrides?.home ?? (env.SWARM_HOME ? resolve(env.SWARM_HOME) : join(projectDir, '.swarm'));
  const storePath = typeof raw.store === 'object' && raw.store.type === 'sqlite' && raw.store.path ? rel(raw.store.path) : join(home, 'swarm.db');
  const wantsPostgres = raw.store === 'postgres' || (typeof raw.store === 'object' && raw.store.type === 'postgres');
  if (typeof raw.store === 'object') {
    const misplaced = raw.store.type === 'sqlite' ? ['url', 'schema', 'pool_size'].find((k) => k in (raw.store as object)) : 'path' in raw.store ? 'path' : undefined;
    if (misplaced) throw new UserError('CONFIG_INVALID', `${file ?? CONFIG_FILE}: store.${misplaced} does not apply to a ${raw.store.type} store`, { file, field: `store.${misplaced}` });
  }
  const pgStore = typeof raw.store === 'object' && raw.store.type === 'postgres' ? raw.store : undefined;
  const databaseUrl = env.SWARM_DATABASE_URL || (typeof raw.store === 'object' && raw.store.type === 'postgres' ? raw.store.url : undefined) || undefined;
  if (wantsPostgres && !databaseUrl) {
    throw new UserError('CONFIG_INVALID', `${file ?? CONFIG_FILE}: store is postgres but no URL is given: set store.url or SWARM_DATABASE_URL`, { file });
  }

  const num = (name: string, min: number, max: number): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new UserError('CONFIG_INVALID', `environment variable ${name}='${v}' must be a number from ${min} to ${max}`, { variable: name });
    return n;
  };
  const durabilityEnv = env.SWARM_DURABILITY;
  if (durabilityEnv !== undefined && durabilityEnv !== 'full' && durabilityEnv !== 'process') {
    throw new UserError('CONFIG_INVALID', `environment variable SWARM_DURABILITY='${durabilityEnv}' must be 'full' or 'process'`, { variable: 'SWARM_DURABILITY' });
  }
  const schemaEnv = env.SWARM_DB_SCHEMA;
  if (schemaEnv && !/^[a-z_][a-z0-9_]{0,62}$/.test(schemaEnv)) {
    throw new UserError('CONFIG_INVALID', `environment variable SWARM_DB_SCHEMA='${schemaEnv}' must be lower-case letters, digits and _ (at most 63)`, { variable: 'SWARM_DB_SCHEMA' });
  }
  const sandboxEnv = env.SWARM_SANDBOX || undefined;
  if (sandboxEnv !== undefined && !(SANDBOX_MODES as readonly string[]).includes(sandboxEnv)) {
    throw new UserError('CONFIG_INVALID', `environment variable SWARM_SANDBOX='${sandboxEnv}' must be one of ${SANDBOX_MODES.join(', ')}`, { variable: 'SWARM_SANDBOX' });
  }
  const cgroupsEnv = env.SWARM_MEMORY_CGROUPS || undefined;
  if (cgroupsEnv !== undefined && !['on', 'off'].includes(cgroupsEnv)) {
    throw new UserError('CONFIG_INVALID', `environment variable SWARM_MEMORY_CGROUPS='${cgroupsEnv}' must be 'on' or 'off'`, { variable: 'SWARM_MEMORY_CGROUPS' });
  }
  const logFormatEnv = env.SWARM_LOG_FORMAT || undefined;
  if (logFormatEnv !== undefined && !isLogFormat(logFormatEnv)) {
    throw new UserError('CONFIG_INVALID', `environment variable SWARM_LOG_FORMAT='${logFormatEnv}' must be one of ${LOG_FORMATS.join(', ')}`, { variable: 'SWARM_LOG_FORMAT' });
  }
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('SWARM_SECRET_') && v !== undefined) secrets[k.slice('SWARM_SECRET_'.length)] = v;
  const masterKey = env.SWARM_MASTER_KEY ? parseMasterKey(env.SWARM_MASTER_KEY, 'environment variable SWARM_MASTER_KEY') : undefined;
  const o = options.overrides ?? {};
  return Object.freeze({
    projectDir,
    home,
    dbPath: env.SWARM_DB ? resolve(env.SWARM_DB) : storePath,
    databaseUrl,
    databaseSchema: schemaEnv || pgStore?.schema,
    databasePoolSize: num('SWARM_DB_POOL_SIZE', 1, 1000) ?? pgStore?.pool_size,
    agentsDir: rel(raw.agents_dir ?? DEFAULTS.agents_dir),
    workflowsDir: rel(raw.workflows_dir ?? DEFAULTS.workflows_dir),
    durability: o.durability ?? (durabilityEnv) ?? raw.durability ?? DEFAULTS.durability,
    workerConcurrency: o.workerConcurrency ?? num('SWARM_CONCURRENCY', 1, 10000) ?? raw.concurrency?.worker ?? DEFAULTS.worker_concurrency,
    runConcurrency: o.runConcurrency ?? num('SWARM_RUN_CONCURRENCY', 1, 10000) ?? raw.concurrency?.run ?? DEFAULTS.run_concurrency,
    leaseMs: o.leaseMs ?? num('SWARM_LEASE_TTL_MS', 500, 86_400_000) ?? raw.lease_ttl_ms ?? DEFAULTS.lease_ttl_ms,
    commitWindowMs: o.commitWindowMs ?? num('SWARM_COMMIT_WINDOW_MS', 0, 10) ?? raw.commit_window_ms ?? DEFAULTS.commit_window_ms,
    pollMs: o.pollMs ?? num('SWARM_POLL_INTERVAL_MS', 1, 60000) ?? raw.poll_interval_ms ?? DEFAULTS.poll_interval_ms,
    sandbox: o.sandbox ?? (sandboxEnv as SandboxMode | undefined) ?? raw.sandbox ?? DEFAULTS.sandbox,
    memoryCgroups: o.memoryCgroups ?? (cgroupsEnv === undefined ? true : cgroupsEnv === 'on'),
    values: Object.freeze({ ...(raw.config ?? {}) }),
    providers: parseProvidersConfig(raw.providers, file ?? CONFIG_FILE),
    secrets: Object.freeze(secrets),
    masterKey,
    masterKeyFile: join(home, 'master.key'),
    faults: new Set((env.SWARM_FAULT ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
    logFormat: logFormatEnv ?? raw.log_format ?? DEFAULTS.log_format,
    configFile: file,
    limits: resolveLimits({ ...raw.limits, ...o.limits }),
    network: resolveNetwork(raw.network, source, file ?? CONFIG_FILE),
    server: Object.freeze({ maxBodyBytes: raw.server?.max_body_bytes ?? DEFAULTS.server_max_body_bytes }),
    retention: Object.freeze(resolveRetention(raw.retention, file ?? CONFIG_FILE, projectDir, (key) => source?.lineOf(['retention', key]))),
    guardrails: resolveGuardrails(raw.guardrails, file ?? CONFIG_FILE, source),
    metrics: Object.freeze({ enabled: raw.metrics?.enabled ?? true }),
    sw4rm: Object.freeze(
      sw4rmTunables(raw.sw4rm ?? {}, (key) => {
        const line = source?.lineOf(['sw4rm', key]);
        return `${file ?? CONFIG_FILE}${line !== undefined ? `:${line}` : ''}: sw4rm.${key}`;
      }),
    ),
  });
}


/** `guardrails:` alone, at its place in swarm.yaml (so problems name `guardrails.…` and its lines). */
const GUARDRAILS_FILE_SCHEMA = builtinSchema({ type: 'object', properties: { guardrails: GUARDRAILS_SCHEMA } });

/** `guardrails:` of swarm.yaml, every problem reported at once with file, field and line. */
function resolveGuardrails(value: unknown, file: string, source: YamlSource | undefined): GuardrailsSpec {
  if (value === undefined) return Object.freeze({});
  const problems = new ProblemList(file);
  const spec = parseGuardrails({ value, file, path: ['guardrails'], lineOf: (p) => source?.lineOf(p), problems });
  problems.throwIfAny();
  return Object.freeze(spec);
}
