/**
 * The logger of `swarm serve` and `swarm worker` (src/observability/logger.ts), in process: the JSON
 * format's fields, secret values redacted in every string (the escaped form included), trace ids
 * from the active OpenTelemetry span, errors with their stack; the text format's lines as they were.
 */
import { trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import pc from 'picocolors';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/config.js';
import { createLogger, type Logger } from '../src/observability/logger.js';
import { Redactor } from '../src/secrets/redactor.js';
import { removeProject, tempProject } from './helpers/project.js';

function jsonLogger(redactor = new Redactor({})): { log: Logger; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  let raw = '';
  const log = createLogger({ format: 'json', text: { out: () => undefined, err: () => undefined }, write: (s) => (raw += s), redact: (s) => redactor.text(s) });
  return { log, raw: () => raw, lines: () => raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const provider = new NodeTracerProvider();
provider.register();
afterAll(() => provider.shutdown());

describe('JSON logs', () => {
  it('one object a line: level, ISO time, msg and the run fields given (undefined ones left out)', () => {
    const { log, lines } = jsonLogger();
    log.info('run 0190 completed', { run_id: '0190', step_id: 's1', attempt: 2, workflow: 'echo-chain', status: 'completed', skipped: undefined });
    log.warn('careful');
    log.error('broken');
    const [a, b, c] = lines();
    expect(a).toMatchObject({ level: 'info', msg: 'run 0190 completed', run_id: '0190', step_id: 's1', attempt: 2, workflow: 'echo-chain', status: 'completed' });
    expect(a).not.toHaveProperty('skipped');
    expect(a).not.toHaveProperty('trace_id');
    expect(new Date(a?.time as string).toISOString()).toBe(a?.time);
    expect([b?.level, c?.level]).toEqual(['warn', 'error']);
  });

  it('replaces secret values in the message, every field and the error, also where JSON would escape them', () => {
    const secret = 'hunter2"\\x';
    const { log, raw, lines } = jsonLogger(new Redactor({ DB_PASSWORD: secret }));
    const err = new Error(`connect failed with ${secret}`);
    log.error(`unexpected error: ${err.stack ?? ''}`, { err, run_id: 'r', detail: { nested: [`pw=${secret}`] } });
    expect(raw()).not.toContain('hunter2');
    const [line] = lines();
    expect(line?.msg).toBe('unexpected error: Error: connect failed with [secret:DB_PASSWORD]');
    expect(line?.detail).toEqual({ nested: ['pw=[secret:DB_PASSWORD]'] });
    const e = line?.err as Record<string, string>;
    expect(e.type).toBe('Error');
    expect(e.message).toBe('connect failed with [secret:DB_PASSWORD]');
    expect(e.stack).toMatch(/^Error: connect failed with \[secret:DB_PASSWORD\]\n\s+at /);
  });

  it('carries trace_id and span_id of the span active where the line is logged, and a trace id given by the caller', () => {
    const { log, lines } = jsonLogger();
    const tracer = trace.getTracer('test');
    let ids: { traceId: string; spanId: string } | undefined;
    tracer.startActiveSpan('invoke_workflow echo-chain', (span) => {
      ids = span.spanContext();
      log.info('inside', { run_id: 'r' });
      span.end();
    });
    log.info('outside');
    log.info('known trace', { trace_id: 'a'.repeat(32) });
    const [inside, outside, known] = lines();
    expect(inside).toMatchObject({ trace_id: ids?.traceId, span_id: ids?.spanId, run_id: 'r' });
    expect(inside?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(outside).not.toHaveProperty('trace_id');
    expect(known?.trace_id).toBe('a'.repeat(32));
  });
});

describe('text logs', () => {
  it('print the lines as before: info as given, warnings yellow with "warning: ", errors red; the exact text when given; JSON-only lines not at all', () => {
    const out: string[] = [];
    const err: string[] = [];
    const log = createLogger({ format: 'text', text: { out: (l) => out.push(l), err: (l) => err.push(l) } });
    log.info('worker started', { worker_id: 'w1' });
    log.warn('not isolated');
    log.error('unexpected error: boom');
    log.info('run 0190 completed', { run_id: '0190' }, { text: 'run …0190 completed' });
    log.info('step s1 attempt 1 completed', { run_id: '0190' }, { text: null });
    log.info('swarm serve: listening on http://127.0.0.1:1', {}, { stdout: true });
    expect(err).toEqual(['worker started', pc.yellow('warning: not isolated'), pc.red('unexpected error: boom'), 'run …0190 completed']);
    expect(out).toEqual(['swarm serve: listening on http://127.0.0.1:1']);
  });
});

describe('the log format setting', () => {
  it('log_format in swarm.yaml, SWARM_LOG_FORMAT over it, text by default; a bad value names its line or variable', () => {
    const plain = tempProject('name: t\n');
    const json = tempProject('name: t\nlog_format: json\n');
    const bad = tempProject('name: t\nlog_format: xml\n');
    try {
      expect(resolveConfig({ cwd: plain, env: {} }).logFormat).toBe('text');
      expect(resolveConfig({ cwd: json, env: {} }).logFormat).toBe('json');
      expect(resolveConfig({ cwd: json, env: { SWARM_LOG_FORMAT: 'text' } }).logFormat).toBe('text');
      expect(() => resolveConfig({ cwd: bad, env: {} })).toThrow(/swarm\.yaml:2: log_format: must be one of "text", "json"/);
      expect(() => resolveConfig({ cwd: plain, env: { SWARM_LOG_FORMAT: 'yaml' } })).toThrow(/SWARM_LOG_FORMAT='yaml' must be one of text, json/);
    } finally {
      for (const d of [plain, json, bad]) removeProject(d);
    }
  });
});
