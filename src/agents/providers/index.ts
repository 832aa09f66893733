/**
 * Models behind the `ChatModel` port, through the AI SDK: OpenAI (chat completions, or the
 * responses API), Anthropic (messages) and any OpenAI-compatible server (Ollama, vLLM, llama.cpp,
 * LM Studio). Each provider gets our retry policy, rate limits and prices from swarm.yaml.
 *
 * @example
 *   const model = createModel(parseModelRef('openai/gpt-4o-mini'), parseProvidersConfig(raw.providers), process.env);
 *   const res = await model.generate({ model: 'gpt-4o-mini', system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }], tools: [] });
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { UserError } from '../../core/errors.js';
import { closest } from '../../core/suggest.js';
import { ProviderModel, type EmbeddingModel, type ProviderModelOptions, type ResolvedProvider } from './ai-sdk-model.js';
import { defaultProviderConfig, EMPTY_PROVIDERS_CONFIG, PROVIDER_TYPES, type ProviderConfig, type ProvidersConfig, type ProviderType } from './config.js';
import { apiKeyMissing } from './errors.js';
import { RateLimiter } from './rate-limit.js';

export { ProviderModel, estimateTokens, isStrictSchema, toModelMessages, type ProviderModelOptions } from './ai-sdk-model.js';
export {
  EMPTY_PROVIDERS_CONFIG,
  PROVIDER_DEFAULTS,
  PROVIDER_TYPES,
  PROVIDERS_CONFIG_SCHEMA,
  parseProvidersConfig,
  type ModelPrice,
  type ProviderConfig,
  type ProvidersConfig,
  type ProviderType,
} from './config.js';
export { ModelCallError, isModelCallError } from './errors.js';
export { BUILTIN_PRICES, costOf, priceOf } from './prices.js';
export { RateLimiter, TokenBucket } from './rate-limit.js';
export { classifyFailure, isRetryableStatus, retryAfterMs, retryDelayMs, type RetryInfo } from './retry.js';

/** Which model: `provider` is `openai`, `anthropic`, `openai-compatible` or a name from `providers:` in swarm.yaml. */
export interface ModelSpec {
  provider: ProviderType | (string & {});
  /** The model id at the provider (`gpt-4o-mini`, `claude-sonnet-4-5`, `llama3.2`). */
  model: string;
  /** Overrides the provider's base URL (required for `openai-compatible` unless swarm.yaml gives one). */
  baseUrl?: string;
  /** openai: chat completions (default) or the responses API. */
  api?: 'chat' | 'responses';
}

export type CreateModelOptions = ProviderModelOptions;

export const DEFAULT_BASE_URLS = { openai: 'https://api.openai.com/v1', anthropic: 'https://api.anthropic.com/v1' } as const;

/** `openai/gpt-4o-mini` → `{provider: 'openai', model: 'gpt-4o-mini'}`; the model part may hold more slashes. */
export function parseModelRef(ref: string): ModelSpec {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) {
    throw new UserError('MODEL_ID_INVALID', `model '${ref}' must be written provider/model, e.g. openai/gpt-4o-mini or anthropic/claude-sonnet-4-5`, { model: ref });
  }
  return { provider: ref.slice(0, slash), model: ref.slice(slash + 1) };
}

/** Rate limiters are per provider and shared by every model created with the same configuration object. */
const limiters = new WeakMap<ProvidersConfig, Map<string, RateLimiter | undefined>>();

function limiterFor(config: ProvidersConfig, settings: ProviderConfig): RateLimiter | undefined {
  let byName = limiters.get(config);
  if (!byName) {
    byName = new Map<string, RateLimiter | undefined>();
    limiters.set(config, byName);
  }
  if (!byName.has(settings.name)) {
    byName.set(settings.name, settings.requestsPerMinute || settings.tokensPerMinute ? new RateLimiter(settings) : undefined);
  }
  return byName.get(settings.name);
}

/**
 * A model behind the `ChatModel` port. Throws `UserError`s at once (before any call) for an unknown
 * provider (`PROVIDER_UNKNOWN`), a missing API key (`PROVIDER_API_KEY_MISSING`, naming the variable)
 * or a missing base URL (`PROVIDER_BASE_URL_MISSING`). Calls fail with `ModelCallError`.
 *
 * Environment: OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL (the base URL
 * includes the version: `https://api.anthropic.com/v1`), or the variable a provider's `api_key_env` names.
 */
export function createModel(
  spec: ModelSpec,
  config: ProvidersConfig = EMPTY_PROVIDERS_CONFIG,
  env: Readonly<Record<string, string | undefined>> = {},
  options: CreateModelOptions = {},
): ProviderModel {
  if (!spec.model) throw new UserError('MODEL_ID_INVALID', `${spec.provider}/: the model id is empty`, { provider: spec.provider });
  const settings = providerSettings(spec, config);
  const provider = resolveProvider(spec, settings, env);
  return new ProviderModel(provider, spec.model, config, limiterFor(config, settings), options);
}

/**
 * A provider's embedding model (for vector memory), built as chat models are (settings, keys, base
 * URL); EMBEDDING_MODEL_UNAVAILABLE for a provider without embeddings (Anthropic).
 *
 * @example
 *   const model = createEmbeddingModel({ provider: 'openai', model: 'text-embedding-3-small' }, config, process.env);
 *   const { embeddings } = await embedMany({ model, values: ['a', 'b'] });
 */
export function createEmbeddingModel(spec: ModelSpec, config: ProvidersConfig = EMPTY_PROVIDERS_CONFIG, env: Readonly<Record<string, string | undefined>> = {}): EmbeddingModel {
  const provider = resolveProvider(spec, providerSettings(spec, config), env);
  if (!provider.embeddingModel) {
    throw new UserError('EMBEDDING_MODEL_UNAVAILABLE', `provider '${spec.provider}' has no embedding models; set memory.embedding to an openai or openai-compatible provider`, { provider: spec.provider });
  }
  return provider.embeddingModel(spec.model);
}

function providerSettings(spec: ModelSpec, config: ProvidersConfig): ProviderConfig {
  if (Object.hasOwn(config, spec.provider)) return config[spec.provider] as ProviderConfig;
  if ((PROVIDER_TYPES as readonly string[]).includes(spec.provider)) return defaultProviderConfig(spec.provider, spec.provider as ProviderType);
  const known = [...new Set([...PROVIDER_TYPES, ...Object.keys(config)])];
  const guess = closest(spec.provider, known);
  throw new UserError(
    'PROVIDER_UNKNOWN',
    `unknown model provider '${spec.provider}' (in '${spec.provider}/${spec.model}')${guess ? `: did you mean '${guess}'?` : ''} Known providers: ${known.join(', ')} (add others under providers: in swarm.yaml)`,
    { provider: spec.provider, known },
  );
}

function resolveProvider(spec: ModelSpec, settings: ProviderConfig, env: Readonly<Record<string, string | undefined>>): ResolvedProvider {
  const { name, type } = settings;
  const headers = Object.keys(settings.headers).length > 0 ? { ...settings.headers } : undefined;
  const key = (fallbackVar: string | undefined): string | undefined => {
    const variable = settings.apiKeyEnv ?? fallbackVar;
    if (variable === undefined) return undefined;
    const value = env[variable];
    if (!value) throw apiKeyMissing(name, spec.model, variable, settings.apiKeyEnv !== undefined);
    return value;
  };
  if (spec.api !== undefined && type !== 'openai') {
    throw new UserError('PROVIDER_OPTION_INVALID', `${name}/${spec.model}: api '${spec.api}' applies to openai providers only`, { provider: name });
  }
  switch (type) {
    case 'openai': {
      const apiKey = key('OPENAI_API_KEY');
      const baseURL = spec.baseUrl || (name === 'openai' ? env.OPENAI_BASE_URL : undefined) || settings.baseUrl || DEFAULT_BASE_URLS.openai;
      const openai = createOpenAI({ apiKey, baseURL, headers });
      const api = spec.api ?? settings.api ?? 'chat';
      return { settings, type, optionsKey: 'openai', languageModel: (id) => (api === 'responses' ? openai.responses(id) : openai.chat(id)), embeddingModel: (id) => openai.embedding(id) };
    }
    case 'anthropic': {
      const apiKey = key('ANTHROPIC_API_KEY');
      const baseURL = spec.baseUrl || (name === 'anthropic' ? env.ANTHROPIC_BASE_URL : undefined) || settings.baseUrl || DEFAULT_BASE_URLS.anthropic;
      const anthropic = createAnthropic({ apiKey, baseURL, headers });
      return { settings, type, optionsKey: 'anthropic', languageModel: (id) => anthropic.messages(id) };
    }
    case 'openai-compatible': {
      const baseURL = spec.baseUrl || settings.baseUrl;
      if (!baseURL) {
        throw new UserError(
          'PROVIDER_BASE_URL_MISSING',
          `${name}/${spec.model}: an openai-compatible provider needs a base URL (e.g. http://localhost:11434/v1): set providers.${name}.base_url in swarm.yaml`,
          { provider: name },
        );
      }
      const compatible = createOpenAICompatible({ name: 'openaiCompatible', baseURL, apiKey: key(undefined), headers, includeUsage: true, supportsStructuredOutputs: true });
      return { settings, type, optionsKey: 'openaiCompatible', languageModel: (id) => compatible.chatModel(id), embeddingModel: (id) => compatible.textEmbeddingModel(id) };
    }
  }
}
