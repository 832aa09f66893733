/**
 * Token prices and the cost of a call. A small built-in table covers common OpenAI and Anthropic
 * models (list prices, US dollars per million tokens, without batch or cache discounts); `prices:`
 * in a provider's section of swarm.yaml adds models or overrides these.
 */
import { PROVIDER_TYPES, type ModelPrice, type ProviderType, type ProvidersConfig } from './config.js';

/** Built-in list prices (USD per 1M tokens) by provider type and model id. */
export const BUILTIN_PRICES: Readonly<Record<'openai' | 'anthropic', Readonly<Record<string, ModelPrice>>>> = Object.freeze({
  openai: Object.freeze({
    'gpt-4o': { input: 2.5, output: 10 },
    'gpt-4o-mini': { input: 0.15, output: 0.6 },
    'gpt-4.1': { input: 2, output: 8 },
    'gpt-4.1-mini': { input: 0.4, output: 1.6 },
    'gpt-4.1-nano': { input: 0.1, output: 0.4 },
    'gpt-5': { input: 1.25, output: 10 },
    'gpt-5-mini': { input: 0.25, output: 2 },
    'gpt-5-nano': { input: 0.05, output: 0.4 },
    o1: { input: 15, output: 60 },
    o3: { input: 2, output: 8 },
    'o3-mini': { input: 1.1, output: 4.4 },
    'o4-mini': { input: 1.1, output: 4.4 },
    'gpt-4-turbo': { input: 10, output: 30 },
    'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  }),
  anthropic: Object.freeze({
    'claude-opus-4-1': { input: 15, output: 75 },
    'claude-opus-4-0': { input: 15, output: 75 },
    'claude-opus-4': { input: 15, output: 75 },
    'claude-opus-4-5': { input: 5, output: 25 },
    'claude-sonnet-4-5': { input: 3, output: 15 },
    'claude-sonnet-4-0': { input: 3, output: 15 },
    'claude-sonnet-4': { input: 3, output: 15 },
    'claude-3-7-sonnet': { input: 3, output: 15 },
    'claude-3-5-sonnet': { input: 3, output: 15 },
    'claude-haiku-4-5': { input: 1, output: 5 },
    'claude-3-5-haiku': { input: 0.8, output: 4 },
    'claude-3-haiku': { input: 0.25, output: 1.25 },
  }),
});

/** `gpt-4o-2024-08-06` → `gpt-4o`, `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, `…-latest` → `…`. */
function undated(model: string): string {
  return model.replace(/-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$/, '');
}

function lookup(table: Readonly<Record<string, ModelPrice>> | undefined, model: string): ModelPrice | undefined {
  if (!table) return undefined;
  return Object.hasOwn(table, model) ? table[model] : Object.hasOwn(table, undated(model)) ? table[undated(model)] : undefined;
}

/**
 * The price of a model, undefined when unknown. `modelId` is `provider/model` (the provider's `prices`
 * in swarm.yaml first, then the built-in table of its type) or a bare model id (any provider's
 * `prices`, then the built-in tables). A prefix that names no provider is part of a bare id
 * (`qwen/qwen3-8b`).
 */
export function priceOf(modelId: string, config: ProvidersConfig = {}): ModelPrice | undefined {
  const slash = modelId.indexOf('/');
  const prefix = slash > 0 ? modelId.slice(0, slash) : undefined;
  if (prefix !== undefined && (Object.hasOwn(config, prefix) || (PROVIDER_TYPES as readonly string[]).includes(prefix))) {
    const model = modelId.slice(slash + 1);
    const settings = Object.hasOwn(config, prefix) ? config[prefix] : undefined;
    const configured = lookup(settings?.prices, model);
    if (configured) return configured;
    const type = settings?.type ?? (prefix as ProviderType);
    return type === 'openai' || type === 'anthropic' ? lookup(BUILTIN_PRICES[type], model) : undefined;
  }
  for (const settings of Object.values(config)) {
    const configured = lookup(settings.prices, modelId);
    if (configured) return configured;
  }
  return lookup(BUILTIN_PRICES.openai, modelId) ?? lookup(BUILTIN_PRICES.anthropic, modelId);
}

/** US dollars for a call's tokens (0 when the model's price is unknown). `modelId` as for `priceOf`. */
export function costOf(modelId: string, usage: { input_tokens: number; output_tokens: number }, config: ProvidersConfig = {}): number {
  const price = priceOf(modelId, config);
  if (!price) return 0;
  return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000;
}
