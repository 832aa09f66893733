import { ExecutionError, StepError, type ErrorContext } from '../../core/errors.js';

/**
 * A `tools:` entry cannot be turned into tools: a missing module, an export that is not a tool, a path
 * outside the package, a name used twice, an MCP server that does not start. Raised while the step
 * starts, so it fails the step; `retryable` is true only for what may work next time (an MCP server
 * that did not answer).
 */
export class ToolLoadError extends StepError {
  constructor(code: string, message: string, retryable = false, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, retryable, context, options);
  }
}

/**
 * A tool call failed (an HTTP status outside 2xx, an MCP tool reporting an error, an invalid time
 * zone). The agent loop turns it into an error message to the model; it does not fail the step.
 */
export class ToolCallError extends ExecutionError {}
