/**
 * Size limits: their defaults (in bytes), and the error raised when a value is larger than its
 * limit. Pure. The configured values come from `limits:` in swarm.yaml (see config/limits.ts and
 * docs/limits.md).
 */
import { UserError } from './errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Every limit with its default, in bytes (the units are in the names). */
export const LIMIT_DEFAULTS = {
  /** The trigger data of a run (`swarm run <wf> <input>`, `startRun`). */
  run_input_bytes: 1 * MiB,
  /** A step's resolved inputs. */
  step_input_bytes: 1 * MiB,
  /** A step's outputs. */
  step_output_bytes: 1 * MiB,
  /** The data of one event in a run's log (error messages, handler messages, reasons). */
  event_payload_bytes: 256 * KiB,
  /** The standard output, and the standard error, kept of one process-agent attempt (the end is kept). */
  log_capture_bytes: 64 * KiB,
  /** One message of an LLM conversation (a user or tool message, or the model's answer). */
  llm_message_bytes: 1 * MiB,
  /** An agent.yaml, workflow.yaml or swarm.yaml file. */
  manifest_bytes: 1 * MiB,
} as const;

export type LimitName = keyof typeof LIMIT_DEFAULTS;

/** The resolved limits, in bytes. */
export type Limits = { readonly [K in LimitName]: number };

/** `1,048,576`: sizes in messages, grouped so they can be read at a glance. */
export function formatBytes(n: number): string {
  return n.toLocaleString('en-US');
}

/** 1536 → "1.5 KiB": sizes in reports (`swarm gc`, `swarm doctor`), where the order of magnitude matters. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * A value is larger than its limit. Raised before anything is written; names the limit, its value
 * and the actual size. Exit 2 (the input is what is wrong).
 *
 * @example
 *   throw new LimitExceededError('run input', 'run_input_bytes', 1048576, 52428800);
 *   // run input is 52,428,800 bytes; limits.run_input_bytes is 1,048,576
 */
export class LimitExceededError extends UserError {
  constructor(what: string, limit: LimitName, max: number, size: number, hint?: string) {
    super('LIMIT_EXCEEDED', `${what} is ${formatBytes(size)} bytes; limits.${limit} is ${formatBytes(max)}${hint ? ` (${hint})` : ''}`, { limit, max, size });
  }
}

/** The size of a string as stored (UTF-8 bytes). */
export function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * An error message as it is stored: in the step row and in two events (STEP_FAILED, RUN_FAILED), so
 * at most a quarter of the event payload limit; the start is kept, which says what went wrong.
 */
export function capMessage(message: string, eventPayloadBytes: number): string {
  const max = Math.floor(eventPayloadBytes / 4);
  const size = byteLength(message);
  if (size <= max) return message;
  const cut = Buffer.from(message, 'utf8').subarray(0, max).toString('utf8').replace(/\uFFFD$/, '');
  return `${cut}… [${formatBytes(size - byteLength(cut))} more bytes cut; limits.event_payload_bytes is ${formatBytes(eventPayloadBytes)}]`;
}
