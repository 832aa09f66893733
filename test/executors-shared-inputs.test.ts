/**
 * shared_inputs (source 002's semantics) and the `runtime: {type: http}` manifest: the merge rules
 * (object, non-object, collisions with prompt and agent_id), the size cap, the --shared-inputs
 * argument, and line-numbered problems for bad http runtime fields.
 */
import { describe, expect, it } from 'vitest';
import { mergeSharedInputs, MAX_SHARED_INPUTS_BYTES, parseSharedInputsArg, sharedInputsJson } from '../src/executors/http/shared-inputs.js';
import { parseAgentManifest } from '../src/core/manifest/agent.js';
import { ManifestError } from '../src/core/errors.js';

describe('mergeSharedInputs', () => {
  it('an object: its keys, then the step inputs over them, then prompt and agent_id injected', () => {
    expect(mergeSharedInputs({ customer: 'acme', text: 'shared', region: 'eu' }, { text: 'step' }, { agent_id: 'summarize', prompt: 'Summarize.' })).toEqual({
      customer: 'acme',
      region: 'eu',
      text: 'step',
      prompt: 'Summarize.',
      agent_id: 'summarize',
    });
  });

  it('collisions: agent-level prompt and agent_id overwrite those in shared_inputs (and in the step inputs)', () => {
    const out = mergeSharedInputs({ prompt: 'from shared', agent_id: 'spoofed', x: 1 }, { agent_id: 'also spoofed' }, { agent_id: 'a1', prompt: 'from agent' });
    expect(out).toEqual({ x: 1, prompt: 'from agent', agent_id: 'a1' });
  });

  it('an agent without a prompt leaves a shared prompt as it is; agent_id is always the agent', () => {
    expect(mergeSharedInputs({ prompt: 'shared prompt' }, {}, { agent_id: 'a1' })).toEqual({ prompt: 'shared prompt', agent_id: 'a1' });
  });

  it.each([
    ['a string', 'review the contract'],
    ['an array', ['https://example.com/a', 'https://example.com/b']],
    ['a number', 42],
    ['a boolean', false],
  ])('%s is wrapped as inputs.shared_inputs', (_what, value) => {
    expect(mergeSharedInputs(value, { text: 'hi' }, { agent_id: 'a', prompt: 'p' })).toEqual({ shared_inputs: value, text: 'hi', prompt: 'p', agent_id: 'a' });
  });

  it('none (undefined or null): only the step inputs and the injected fields', () => {
    expect(mergeSharedInputs(undefined, { text: 'hi' }, { agent_id: 'a' })).toEqual({ text: 'hi', agent_id: 'a' });
    expect(mergeSharedInputs(null, {}, { agent_id: 'a' })).toEqual({ agent_id: 'a' });
  });

  it('does not change its arguments', () => {
    const shared = { a: 1 };
    const step = { b: 2 };
    mergeSharedInputs(shared, step, { agent_id: 'x', prompt: 'p' });
    expect(shared).toEqual({ a: 1 });
    expect(step).toEqual({ b: 2 });
  });
});

describe('shared_inputs size and the --shared-inputs argument', () => {
  it('any JSON value up to the cap; above it a clear error naming the sizes', () => {
    expect(sharedInputsJson({ ticket: 'T-1' })).toBe('{"ticket":"T-1"}');
    expect(sharedInputsJson('text')).toBe('"text"');
    expect(() => sharedInputsJson({ blob: 'x'.repeat(MAX_SHARED_INPUTS_BYTES) })).toThrow(/shared_inputs is \d+ bytes of JSON, more than the 65536 allowed/);
    expect(() => sharedInputsJson(undefined)).toThrow(/must be a JSON value/);
  });

  it('inline JSON or @file; bad JSON and unreadable files are named', () => {
    expect(parseSharedInputsArg('{"a":1}', () => '')).toEqual({ a: 1 });
    expect(parseSharedInputsArg('@in.json', (f) => (f === 'in.json' ? '["x"]' : ''))).toEqual(['x']);
    expect(() => parseSharedInputsArg('{nope', () => '')).toThrow(/--shared-inputs is not valid JSON/);
    expect(() =>
      parseSharedInputsArg('@missing.json', () => {
        throw new Error('ENOENT');
      }),
    ).toThrow(/cannot read missing.json/);
  });
});

describe('runtime: {type: http} in agent.yaml', () => {
  const parse = (yaml: string): ReturnType<typeof parseAgentManifest> => parseAgentManifest(yaml, 'agents/r/agent.yaml');

  it('parses executor, task_type (default: the agent name) and prompt', () => {
    const a = parse('name: remote\nversion: 1.0.0\nruntime:\n  type: http\n  executor: rt\n  prompt: Summarize.\n  timeout_seconds: 20\n');
    expect(a.runtime).toMatchObject({ type: 'http', entry: '', timeout_seconds: 20 });
    expect(a.http).toEqual({ executor: 'rt', task_type: 'remote', prompt: 'Summarize.' });
    expect(parse('name: remote\nversion: 1.0.0\nruntime: { type: http, executor: rt, task_type: summarize }\n').http?.task_type).toBe('summarize');
  });

  const problems = (yaml: string): string => {
    try {
      parse(yaml);
    } catch (e) {
      expect(e).toBeInstanceOf(ManifestError);
      return (e as Error).message;
    }
    throw new Error('expected a ManifestError');
  };

  it('a missing executor, fields that do not apply, a bad executor name: each with its line', () => {
    expect(problems('name: remote\nversion: 1.0.0\nruntime:\n  type: http\n')).toMatch(/agents\/r\/agent.yaml:3.*runtime.executor.*is required for runtime.type 'http'/s);
    const m = problems('name: remote\nversion: 1.0.0\nruntime:\n  type: http\n  executor: rt\n  entry: main.py\n  memory_mb: 64\nenv:\n  A: b\n');
    expect(m).toMatch(/:6.*runtime.entry.*does not apply to runtime.type 'http'/);
    expect(m).toMatch(/:7.*runtime.memory_mb/);
    expect(m).toMatch(/:8.*env.*only for process agents/);
    expect(problems('name: remote\nversion: 1.0.0\nruntime:\n  type: http\n  executor: "bad name!"\n')).toMatch(/:5.*runtime.executor/);
  });

  it('http fields on another runtime type are refused with their line', () => {
    expect(problems('name: p\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: echo\n  executor: rt\n')).toMatch(/:6.*runtime.executor.*is only for runtime.type 'http' \(this agent is 'builtin'\)/);
  });
});
