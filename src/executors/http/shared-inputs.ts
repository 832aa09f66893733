/**
 * `shared_inputs` (source 002): the run-level business context shared by every agent of a run (a
 * requirement text, parameters, URLs, file references, ids, flags), merged into each agent's task
 * inputs before they are sent to an executor's `/execute`:
 *
 *   - an object: its keys are copied into the inputs, then the step's own inputs over them;
 *   - anything else (a string, an array, a number, a boolean): it goes in as `inputs.shared_inputs`;
 *   - then `prompt` and `agent_id` are injected from the agent: agent-level values overwrite any
 *     `prompt` or `agent_id` the shared inputs (or the step's inputs) carry (the seed's collision rule).
 *
 * Values are references only: URLs are not fetched and paths are not read by Swarm; the executor
 * receives the inputs as they are. Keep them small (MAX_SHARED_INPUTS_BYTES).
 *
 * @example
 *   mergeSharedInputs({ customer: 'acme', prompt: 'ignored' }, { text: 'hi' }, { agent_id: 'summarize', prompt: 'Summarize.' });
 *   // { customer: 'acme', text: 'hi', prompt: 'Summarize.', agent_id: 'summarize' }
 *   mergeSharedInputs('review the contract', { text: 'hi' }, { agent_id: 'a' });
 *   // { shared_inputs: 'review the contract', text: 'hi', agent_id: 'a' }
 */
import { UserError } from '../../core/errors.js';
import { MAX_EVENT_PAYLOAD_BYTES } from '../../consensus/core/limits.js';

/** The largest `shared_inputs` a run may carry, as JSON bytes: the event payload cap (they travel with every step's task). */
export const MAX_SHARED_INPUTS_BYTES = MAX_EVENT_PAYLOAD_BYTES;

/** What the agent contributes: its id and, when it has one, its prompt. Undefined values are not injected. */
export interface AgentInjection {
  agent_id: string;
  prompt?: string | undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The inputs an agent's task receives: `shared` merged under the step's inputs, then `prompt` and
 * `agent_id` from the agent. `shared` undefined or null: nothing shared.
 */
export function mergeSharedInputs(shared: unknown, stepInputs: Readonly<Record<string, unknown>>, agent: AgentInjection): Record<string, unknown> {
  const base: Record<string, unknown> = shared === undefined || shared === null ? {} : isPlainObject(shared) ? { ...shared } : { shared_inputs: shared };
  const out: Record<string, unknown> = { ...base, ...stepInputs };
  if (agent.prompt !== undefined) out.prompt = agent.prompt;
  out.agent_id = agent.agent_id;
  return out;
}

/**
 * Check a run's `shared_inputs` and return its JSON text: any JSON value of at most
 * MAX_SHARED_INPUTS_BYTES. Throws UserError SHARED_INPUTS_INVALID / SHARED_INPUTS_TOO_LARGE.
 *
 * @example
 *   sharedInputsJson({ ticket: 'T-1' });  // '{"ticket":"T-1"}'
 */
export function sharedInputsJson(value: unknown, maxBytes = MAX_SHARED_INPUTS_BYTES): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new UserError('SHARED_INPUTS_INVALID', `shared_inputs cannot be written as JSON: ${(e as Error).message}`, { field: 'shared_inputs' });
  }
  if (json === undefined) throw new UserError('SHARED_INPUTS_INVALID', `shared_inputs must be a JSON value (an object is recommended), not ${typeof value}`, { field: 'shared_inputs' });
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) {
    throw new UserError(
      'SHARED_INPUTS_TOO_LARGE',
      `shared_inputs is ${bytes} bytes of JSON, more than the ${maxBytes} allowed; pass references (URLs, ids, paths) instead of large content`,
      { field: 'shared_inputs', bytes, limit: maxBytes },
    );
  }
  return json;
}

/**
 * A `--shared-inputs` argument: inline JSON, or `@file` naming a JSON file (read by the caller's
 * `readFile`). Throws UserError SHARED_INPUTS_INVALID naming what is wrong.
 *
 * @example
 *   parseSharedInputsArg('{"ticket":"T-1"}', readFileSync);  // { ticket: 'T-1' }
 */
export function parseSharedInputsArg(arg: string, readFile: (path: string) => string): unknown {
  const fromFile = arg.startsWith('@');
  let text: string;
  if (fromFile) {
    try {
      text = readFile(arg.slice(1));
    } catch (e) {
      throw new UserError('SHARED_INPUTS_INVALID', `--shared-inputs: cannot read ${arg.slice(1)}: ${(e as Error).message}`, { field: 'shared_inputs', file: arg.slice(1) });
    }
  } else text = arg;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UserError('SHARED_INPUTS_INVALID', `--shared-inputs${fromFile ? ` (${arg.slice(1)})` : ''} is not valid JSON: ${(e as Error).message}; pass JSON, or @file for a JSON file`, { field: 'shared_inputs' });
  }
}
