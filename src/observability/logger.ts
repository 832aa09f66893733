/**
 * The one logger of `swarm serve` and `swarm worker`: every line they print goes through it, in one
 * of two formats.
 *
 * - `text` (the default): the lines as they have always been, for a terminal (colours included).
 * - `json`: one JSON object per line on standard output (pino), for a log pipeline: `level`, `time`
 *   (ISO 8601), `msg`, and on a line about a run or a step `run_id`, `step_id`, `attempt`,
 *   `workflow`; `trace_id` and `span_id` when an OpenTelemetry span is active where the line is
 *   logged (or when the caller knows the run's trace); `err` (type, message, stack) for an
 *   unexpected error.
 *
 * Secret values never reach a line: every string (the message, each field, an error's message and
 * stack) goes through the redactor first, before it is serialized, so a value JSON would escape is
 * still recognised.
 *
 * @example
 *   const log = createLogger({ format: 'json', write: (s) => process.stdout.write(s), text: { out: console.log, err: console.error } });
 *   log.info('run 0190… completed', { run_id: '0190…', workflow: 'echo-chain' }, { text: 'run 0190… completed' });
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { createRequire } from 'node:module';
import type { Logger as PinoLogger } from 'pino';
import pc from 'picocolors';
import type { LogFields, LogFormat } from './log-fields.js';

export { LOG_FORMATS, isLogFormat, type LogFields, type LogFormat, type LogSink } from './log-fields.js';

/** How a line shows in the text format. */
export interface TextOptions {
  /** The exact text line (with its colours); `null`: the line is for JSON only. Default: by level. */
  text?: string | null;
  /** Standard output instead of standard error (the text format's `listening on` line). */
  stdout?: boolean;
}

/** A log line's writer: `(message, fields?, text options?)`. */
export type LogMethod = (msg: string, fields?: LogFields, options?: TextOptions) => void;

export interface Logger {
  readonly format: LogFormat;
  info: LogMethod;
  /** Text format: `warning: <msg>` in yellow. */
  warn: LogMethod;
  /** Text format: the message in red. */
  error: LogMethod;
}

export interface LoggerOptions {
  format: LogFormat;
  /** The text format's outputs (lines without their newline). */
  text: { out: (line: string) => void; err: (line: string) => void };
  /** The JSON format's output (whole lines, newline included). Default: standard output. */
  write?: (chunk: string) => void;
  /** Replaces secret values in a string; read at every line (the redactor learns secrets as the store opens). */
  redact?: (s: string) => string;
}

/**
 * Make a logger for `format`. The text format writes through `text.out` / `text.err` as the
 * commands always did; the JSON format writes one object per line through `write`.
 */
export function createLogger(options: LoggerOptions): Logger {
  if (options.format === 'text') return textLogger(options.text);
  const redact = options.redact ?? ((s: string) => s);
  const write = options.write ?? ((s: string) => void process.stdout.write(s));
  // Loaded only for JSON: every other command starts without it.
  const { pino, stdTimeFunctions } = createRequire(import.meta.url)('pino') as typeof import('pino');
  // Synchronous, through our own writer: a line is out before the next statement (and before an exit).
  const base: PinoLogger = pino(
    {
      base: { pid: process.pid },
      timestamp: stdTimeFunctions.isoTime,
      // `level: "info"` rather than pino's number: what people grep for and pipelines map.
      formatters: { level: (label) => ({ level: label }) },
      // `err` arrives serialized and redacted already (errorFields); pino's own serializer would retype it.
      serializers: { err: (e: unknown) => e },
    },
    { write },
  );
  const line =
    (level: 'info' | 'warn' | 'error'): LogMethod =>
    (msg, fields) => {
      const obj = jsonFields(fields, redact);
      // A multi-line message (a stack in the text form) keeps its first line; the stack is in `err`.
      const text = redact(obj.err ? (msg.split('\n')[0] ?? msg) : msg);
      base[level](obj, text);
    };
  return { format: 'json', info: line('info'), warn: line('warn'), error: line('error') };
}

function textLogger(out: LoggerOptions['text']): Logger {
  const line =
    (style: (msg: string) => string): LogMethod =>
    (msg, _fields, options = {}) => {
      const text = options.text === undefined ? style(msg) : options.text;
      if (text === null) return;
      (options.stdout ? out.out : out.err)(text);
    };
  return { format: 'text', info: line((m) => m), warn: line((m) => pc.yellow(`warning: ${m}`)), error: line((m) => pc.red(m)) };
}

/** The fields of a JSON line: redacted, undefined ones dropped, trace ids from the active span. */
function jsonFields(fields: LogFields | undefined, redact: (s: string) => string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v === undefined) continue;
    out[k] = k === 'err' ? errorFields(v, redact) : redactValue(v, redact);
  }
  if (out.trace_id === undefined) {
    const sc = trace.getActiveSpan()?.spanContext();
    if (sc && isSpanContextValid(sc)) {
      out.trace_id = sc.traceId;
      out.span_id = sc.spanId;
    }
  }
  return out;
}

/** `err`: type, message, code and stack, redacted (a message may quote a secret the agent printed). */
function errorFields(e: unknown, redact: (s: string) => string): Record<string, unknown> {
  if (!(e instanceof Error)) return { message: redact(String(e)) };
  const code = (e as { code?: unknown }).code;
  return {
    type: e.name,
    message: redact(e.message),
    ...(typeof code === 'string' ? { code } : {}),
    ...(e.stack ? { stack: redact(e.stack) } : {}),
  };
}

function redactValue(v: unknown, redact: (s: string) => string): unknown {
  if (typeof v === 'string') return redact(v);
  if (Array.isArray(v)) return v.map((x) => redactValue(x, redact));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = redactValue(x, redact);
    return out;
  }
  return v;
}
