/**
 * Errors of model calls. Configuration problems (a missing API key, an unknown provider) are
 * `UserError`s raised when a model is created, before any call; failures of a call are
 * `ModelCallError`s, raised after the provider's retry policy gave up.
 */
import { StepError, UserError } from '../../core/errors.js';

/** A model call failed: the vendor answered with an error status, could not be reached, or sent something unusable. */
export class ModelCallError extends StepError {
  /** The HTTP status the vendor answered with (undefined for connection errors and invalid responses). */
  readonly status: number | undefined;
  /** `provider/model`. */
  readonly model: string;
  /** Attempts made (1 + retries). */
  readonly attempts: number;

  constructor(
    message: string,
    options: { model: string; status?: number; retryable: boolean; attempts?: number; code?: string; cause?: unknown },
  ) {
    super(options.code ?? 'MODEL_CALL_FAILED', message, options.retryable, { model: options.model, status: options.status, attempts: options.attempts ?? 1 }, { cause: options.cause });
    this.status = options.status;
    this.model = options.model;
    this.attempts = options.attempts ?? 1;
  }
}

export function isModelCallError(e: unknown): e is ModelCallError {
  return e instanceof ModelCallError;
}

/** The provider needs an API key and the variable that should hold it is unset or empty. */
export function apiKeyMissing(provider: string, model: string, variable: string, configured: boolean): UserError {
  const how = configured
    ? `set the environment variable ${variable} (named by providers.${provider}.api_key_env in swarm.yaml)`
    : `set the environment variable ${variable}`;
  return new UserError('PROVIDER_API_KEY_MISSING', `${provider}/${model}: no API key: ${how}`, { provider, model, variable });
}
