/**
 * The vocabulary of log lines, without the logger: the engine, the server and the configuration
 * name formats and fields from here and stay free of pino (loaded only by the commands that log).
 *
 * @example
 *   const log: LogSink = (line, fields) => console.error(line, fields?.run_id ?? '');
 *   log('step result refused', { run_id: '0190…', step_id: 'fetch', attempt: 2 });
 */

/** The formats `--log-format`, `SWARM_LOG_FORMAT` and `log_format:` in swarm.yaml accept. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Is `value` a log format (`text` or `json`)? */
export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

/**
 * What a line is about. The named fields are the ones a log pipeline groups by; anything else is
 * kept as given (bounded, plain values: a status, a count, a worker id).
 */
export interface LogFields {
  run_id?: string;
  step_id?: string;
  attempt?: number;
  workflow?: string;
  /** The run's trace, when the caller knows it (a line logged inside a span gets the span's own). */
  trace_id?: string;
  span_id?: string;
  /** An unexpected error: logged with its stack in JSON (`err`). */
  err?: unknown;
  [field: string]: unknown;
}

/** Where the engine and the server send their lines: the text, and what it is about. */
export type LogSink = (line: string, fields?: LogFields) => void;
