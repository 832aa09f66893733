/**
 * The `providers:` section of swarm.yaml: API keys (by variable name), base URLs, retries, rate
 * limits and prices of each model provider.
 *
 * @example
 *   providers:
 *     openai: { max_retries: 4, requests_per_minute: 500, tokens_per_minute: 200000 }
 *     anthropic: { api_key_env: MY_ANTHROPIC_KEY, prices: { claude-sonnet-4-5: { input: 3, output: 15 } } }
 *     ollama: { type: openai-compatible, base_url: "http://localhost:11434/v1" }
 *
 * A model is then named `<provider>/<model>`: `openai/gpt-4o-mini`, `ollama/llama3.2`.
 */
import { builtinSchema, checkManifest } from '../../core/manifest/schema-check.js';
import { UserError } from '../../core/errors.js';

/** The wire protocols a provider may speak. */
export const PROVIDER_TYPES = ['openai', 'anthropic', 'openai-compatible'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/** US dollars per million tokens. */
export interface ModelPrice {
  readonly input: number;
  readonly output: number;
}

/** One provider's settings, with defaults filled in. */
export interface ProviderConfig {
  readonly name: string;
  readonly type: ProviderType;
  /** The variable holding the API key (default OPENAI_API_KEY / ANTHROPIC_API_KEY; none for openai-compatible). */
  readonly apiKeyEnv: string | undefined;
  /** The API's base URL (OPENAI_BASE_URL / ANTHROPIC_BASE_URL override it for `openai` / `anthropic`). */
  readonly baseUrl: string | undefined;
  /** openai: chat completions (default) or the responses API. */
  readonly api: 'chat' | 'responses' | undefined;
  /** Retries after a 429, a 5xx or a connection error (default 4). */
  readonly maxRetries: number;
  /** The first retry's delay; it doubles with each retry, with jitter (default 1000). */
  readonly backoffMs: number;
  /** The longest wait between two attempts, also the cap on a Retry-After header (default 60000). */
  readonly maxBackoffMs: number;
  readonly requestsPerMinute: number | undefined;
  readonly tokensPerMinute: number | undefined;
  /** Prices by model id, over the built-in table. */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  /** Extra HTTP headers sent with every request. */
  readonly headers: Readonly<Record<string, string>>;
}

/** Configured providers by name (the part of a model id before the `/`). */
export type ProvidersConfig = Readonly<Record<string, ProviderConfig>>;

export const PROVIDER_DEFAULTS = {
  max_retries: 4,
  backoff_ms: 1000,
  max_backoff_ms: 60_000,
} as const;

const priceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['input', 'output'],
  properties: { input: { type: 'number', minimum: 0 }, output: { type: 'number', minimum: 0 } },
};

const providerProperties = {
  type: { enum: [...PROVIDER_TYPES] },
  api_key_env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  base_url: { type: 'string', pattern: '^https?://' },
  api: { enum: ['chat', 'responses'] },
  max_retries: { type: 'integer', minimum: 0, maximum: 20 },
  backoff_ms: { type: 'integer', minimum: 0, maximum: 600_000 },
  max_backoff_ms: { type: 'integer', minimum: 0, maximum: 3_600_000 },
  requests_per_minute: { type: 'number', exclusiveMinimum: 0 },
  tokens_per_minute: { type: 'number', exclusiveMinimum: 0 },
  prices: { type: 'object', additionalProperties: priceSchema },
  headers: { type: 'object', additionalProperties: { type: 'string' } },
};

const providerSchema = (required: string[]): Record<string, unknown> => ({
  type: 'object',
  additionalProperties: false,
  required,
  properties: providerProperties,
  // An openai-compatible server has no default address.
  if: { required: ['type'], properties: { type: { const: 'openai-compatible' } } },
  then: { required: ['base_url'] },
});

/**
 * JSON Schema of the `providers:` section. `openai` and `anthropic` may omit `type`; any other name
 * (a local server, a second account) must give it.
 */
export const PROVIDERS_CONFIG_SCHEMA: Readonly<Record<string, unknown>> = Object.freeze({
  type: 'object',
  propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  properties: { openai: providerSchema([]), anthropic: providerSchema([]), 'openai-compatible': providerSchema([]) },
  additionalProperties: providerSchema(['type']),
});

interface RawProvider {
  type?: ProviderType;
  api_key_env?: string;
  base_url?: string;
  api?: 'chat' | 'responses';
  max_retries?: number;
  backoff_ms?: number;
  max_backoff_ms?: number;
  requests_per_minute?: number;
  tokens_per_minute?: number;
  prices?: Record<string, ModelPrice>;
  headers?: Record<string, string>;
}

/** No `providers:` section: every provider with its defaults. */
export const EMPTY_PROVIDERS_CONFIG: ProvidersConfig = Object.freeze({});

/**
 * Validate and normalise a `providers:` section (the parsed YAML value; undefined or null for none).
 * Errors are `ManifestError`s naming `file` and the field (`providers.ollama.base_url: is required`).
 */
export function parseProvidersConfig(raw: unknown, file = 'swarm.yaml'): ProvidersConfig {
  if (raw === undefined || raw === null) return EMPTY_PROVIDERS_CONFIG;
  checkManifest({ file, value: { providers: raw }, lineOf: () => undefined }, WRAPPED_SCHEMA);
  const out: Record<string, ProviderConfig> = {};
  for (const [name, p] of Object.entries(raw as Record<string, RawProvider>)) {
    const type = p.type ?? ((PROVIDER_TYPES as readonly string[]).includes(name) ? (name as ProviderType) : undefined);
    if (!type) throw new UserError('CONFIG_INVALID', `${file}: providers.${name}.type: is required`, { file, field: `providers.${name}.type` });
    if (p.api !== undefined && type !== 'openai') {
      throw new UserError('CONFIG_INVALID', `${file}: providers.${name}.api: applies to openai providers only`, { file, field: `providers.${name}.api` });
    }
    const maxRetries = p.max_retries ?? PROVIDER_DEFAULTS.max_retries;
    const backoffMs = p.backoff_ms ?? PROVIDER_DEFAULTS.backoff_ms;
    out[name] = Object.freeze({
      name,
      type,
      apiKeyEnv: p.api_key_env,
      baseUrl: p.base_url,
      api: p.api,
      maxRetries,
      backoffMs,
      maxBackoffMs: p.max_backoff_ms ?? Math.max(backoffMs, PROVIDER_DEFAULTS.max_backoff_ms),
      requestsPerMinute: p.requests_per_minute,
      tokensPerMinute: p.tokens_per_minute,
      prices: Object.freeze({ ...(p.prices ?? {}) }),
      headers: Object.freeze({ ...(p.headers ?? {}) }),
    });
  }
  return Object.freeze(out);
}

const WRAPPED_SCHEMA = builtinSchema({ type: 'object', properties: { providers: PROVIDERS_CONFIG_SCHEMA } });

/** The settings of a provider that swarm.yaml does not mention. */
export function defaultProviderConfig(name: string, type: ProviderType): ProviderConfig {
  return {
    name,
    type,
    apiKeyEnv: undefined,
    baseUrl: undefined,
    api: undefined,
    maxRetries: PROVIDER_DEFAULTS.max_retries,
    backoffMs: PROVIDER_DEFAULTS.backoff_ms,
    maxBackoffMs: PROVIDER_DEFAULTS.max_backoff_ms,
    requestsPerMinute: undefined,
    tokensPerMinute: undefined,
    prices: {},
    headers: {},
  };
}
