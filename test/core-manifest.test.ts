import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManifestError } from '../src/core/errors.js';
import { parseAgentManifest, parseRef, pickVersion, type AgentManifest } from '../src/core/manifest/agent.js';
import { checkAgainstRegistry, parseWorkflowManifest, parseWorkflowSource, type AgentLookup } from '../src/core/manifest/workflow.js';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
const AGENT_FILE = 'agents/demo/agent.yaml';
const WF_FILE = 'workflows/demo/workflow.yaml';

/** Run `fn`, expect a ManifestError naming the file, field and line, and return it for more checks. */
function manifestError(fn: () => unknown, file: string, field: string | undefined, line: number): ManifestError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a ManifestError').toBeInstanceOf(ManifestError);
  const err = caught as ManifestError;
  expect(err.code).toBe('MANIFEST_INVALID');
  expect(err.exitCode).toBe(2);
  expect(err.context.file).toBe(file);
  expect(err.context.field).toBe(field);
  expect(err.context.line).toBe(line);
  expect(err.message.startsWith(`${file}:${line}: ${field ? `${field}: ` : ''}`), err.message).toBe(true);
  return err;
}

const agent = (text: string) => (): AgentManifest => parseAgentManifest(text, AGENT_FILE);
const workflow = (text: string) => () => parseWorkflowManifest(text, WF_FILE);

describe('parseAgentManifest: valid files', () => {
  it('parses the echo example with its declared inputs, closed outputs and runtime defaults', () => {
    const file = join(EXAMPLES, 'agents/echo/agent.yaml');
    const m = parseAgentManifest(readFileSync(file, 'utf8'), file);
    expect(m.name).toBe('echo');
    expect(m.version).toBe('1.0.0');
    expect(m.runtime).toEqual({ type: 'builtin', entry: 'echo', memory_mb: 128, timeout_seconds: 30 });
    expect(m.inputs).toEqual({ type: 'object', properties: { message: { description: 'What to echo' } }, required: ['message'] });
    expect(m.outputs).toEqual({ type: 'object', properties: { echoed: { description: 'The message, unchanged' } }, 'x-swarm-closed': true });
    expect(m.tags).toEqual(['example', 'builtin']);
    expect(m.triggers).toEqual([{ type: 'manual' }]);
  });

  it('parses the word-count example (node runtime, typed outputs)', () => {
    const file = join(EXAMPLES, 'agents/word-count/agent.yaml');
    const m = parseAgentManifest(readFileSync(file, 'utf8'), file);
    expect(m.runtime).toEqual({ type: 'node', entry: 'main.js', memory_mb: 128, timeout_seconds: 30 });
    expect(m.outputs.properties).toEqual({ words: { type: 'integer' }, lines: { type: 'integer' }, longest: { type: 'string' } });
    expect(m.inputs.required).toEqual(['text']);
  });

  it('fills defaults for a minimal manifest', () => {
    const m = parseAgentManifest('name: mini\nversion: 2.3.4\nruntime:\n  type: python\n  entry: main.py\n', AGENT_FILE);
    expect(m).toEqual({
      name: 'mini',
      version: '2.3.4',
      runtime: { type: 'python', entry: 'main.py', memory_mb: 128, timeout_seconds: 300 },
      capabilities: [],
      inputs: { type: 'object' },
      outputs: { type: 'object' },
      triggers: [{ type: 'manual' }],
      tags: [],
    });
  });

  it('splits a process command given as a string', () => {
    const m = parseAgentManifest('name: p\nversion: 1.0.0\nruntime:\n  type: process\n  entry: x.py\n  command: "python3  -u"\n', AGENT_FILE);
    expect(m.runtime.command).toEqual(['python3', '-u']);
  });
});

describe('parseAgentManifest: errors name file, field and line', () => {
  it('malformed YAML (a nested mapping on one line) reports the line of the problem', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a: b\n'), AGENT_FILE, undefined, 5);
    expect(err.message).toContain('invalid YAML');
  });

  it('malformed YAML (a duplicate key) reports the line of the duplicate', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nname: y\nruntime:\n  type: node\n  entry: a\n'), AGENT_FILE, undefined, 3);
    expect(err.message).toContain('unique');
  });

  it('missing required top-level field', () => {
    manifestError(agent('name: x\nruntime:\n  type: node\n  entry: a\n'), AGENT_FILE, 'version', 1);
  });

  it('missing required nested field points at the object that lacks it (runtime:, line 3)', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  entry: a\n'), AGENT_FILE, 'runtime.type', 3);
    expect(err.message).toContain('is required');
  });

  it('missing runtime.entry', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: builtin\n'), AGENT_FILE, 'runtime.entry', 3);
    expect(err.message).toContain('built-in agent name');
  });

  it('unknown top-level field with a scalar value', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\ncolour: red\n'), AGENT_FILE, 'colour', 6);
    expect(err.message).toContain('unknown field');
  });

  it('unknown nested field', () => {
    manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\n  memroy: 3\n'), AGENT_FILE, 'runtime.memroy', 6);
  });

  it('unknown field whose value is a block mapping reports the line of the key, not of its first child', () => {
    manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\ncolour:\n  r: 1\n'), AGENT_FILE, 'colour', 6);
  });

  it('a value out of range and an unknown field are reported together, not one per attempt', () => {
    let err: unknown;
    try {
      agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\n  memory_mb: 10\ntimeout: soon\n')();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    const lines = (err as Error).message.split('\n');
    expect(lines.some((l) => l.includes(':6: runtime.memory_mb: must be >= 16'))).toBe(true);
    expect(lines.some((l) => l.includes(':7: timeout: unknown field'))).toBe(true);
    expect(lines).toHaveLength(2);
  });

  it('unknown field message lists the allowed fields', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\ncolour: red\n'), AGENT_FILE, 'colour', 6);
    expect(err.message).toContain('allowed:');
    expect(err.message).toContain('description');
    expect(err.message).toContain('capabilities');
  });

  it('bad enum (runtime.type)', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: ruby\n  entry: a\n'), AGENT_FILE, 'runtime.type', 4);
    expect(err.message).toContain('must be one of "node", "python", "bash", "process", "builtin"');
  });

  it('non-semver version', () => {
    const err = manifestError(agent('name: x\nversion: "1.0"\nruntime:\n  type: node\n  entry: a\n'), AGENT_FILE, 'version', 2);
    expect(err.message).toContain("'1.0' is not a semantic version");
  });

  it('invalid name pattern', () => {
    manifestError(agent('name: Bad Name\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\n'), AGENT_FILE, 'name', 1);
  });

  it('command on a non-process runtime', () => {
    const err = manifestError(agent('name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\n  command: [node]\n'), AGENT_FILE, 'runtime.command', 6);
    expect(err.message).toContain("only for runtime.type 'process'");
  });

  it('duplicate output field name', () => {
    const text = 'name: x\nversion: 1.0.0\nruntime:\n  type: node\n  entry: a\noutputs:\n  - name: a\n    type: string\n  - name: a\n    type: number\n';
    const err = manifestError(agent(text), AGENT_FILE, 'outputs[1].name', 9);
    expect(err.message).toContain("duplicate field 'a'");
  });

  it('a document that is not a mapping', () => {
    manifestError(agent(''), AGENT_FILE, undefined, 1);
  });
});

describe('agent refs and versions', () => {
  it('parseRef splits name and range', () => {
    expect(parseRef('echo@^1.2')).toEqual({ name: 'echo', range: '^1.2' });
    expect(parseRef('echo')).toEqual({ name: 'echo', range: 'latest' });
    expect(parseRef('echo@')).toEqual({ name: 'echo', range: 'latest' });
  });

  it('pickVersion picks the highest match', () => {
    const vs = ['1.0.0', '1.4.0', '2.0.0', '1.10.0'];
    expect(pickVersion(vs, 'latest')).toBe('2.0.0');
    expect(pickVersion(vs, '^1.0.0')).toBe('1.10.0');
    expect(pickVersion(vs, '1.4.0')).toBe('1.4.0');
    expect(pickVersion(vs, '^3')).toBeUndefined();
  });
});

// ---------------------------------------------------------------- workflows

const HEAD = 'name: demo\nversion: 1.0.0\n';

describe('parseWorkflowManifest: valid files', () => {
  it('parses echo-chain: step2 implicitly depends on step1 through ${steps.step1.outputs.echoed}', () => {
    const file = join(EXAMPLES, 'workflows/echo-chain/workflow.yaml');
    const wf = parseWorkflowManifest(readFileSync(file, 'utf8'), file);
    expect(wf.steps.map((s) => s.id)).toEqual(['step1', 'step2']);
    const step2 = wf.steps[1]!;
    expect(step2.deps).toEqual(['step1']);
    expect(step2.data_deps).toEqual(['step1']);
    expect(wf.steps[0]!.deps).toEqual([]);
    expect(wf.variables).toEqual({ greeting: 'Step 2 received' });
    expect(wf.on_success).toHaveLength(1);
    expect(step2.retry).toEqual({ max_attempts: 1, backoff_ms: 1000, max_backoff_ms: 60_000 });
    expect(step2.on_error).toBe('fail');
  });

  it('parses fan-out with dependencies from inputs, conditions and depends_on', () => {
    const file = join(EXAMPLES, 'workflows/fan-out/workflow.yaml');
    const wf = parseWorkflowManifest(readFileSync(file, 'utf8'), file);
    const byId = new Map(wf.steps.map((s) => [s.id, s]));
    expect(byId.get('long-text')!.deps).toEqual(['count']);
    expect(byId.get('long-text')!.data_deps).toEqual(['count']);
    expect(byId.get('long-text')!.condition).toBe('steps.count.outputs.words > 5');
    expect(byId.get('join')!.deps).toEqual(['count', 'long-text', 'shout']);
    expect(byId.get('join')!.data_deps).toEqual(['count', 'shout']);
    expect(wf.steps.map((s) => s.id)).toEqual(['split', 'count', 'shout', 'long-text', 'join']);
  });

  it('orders steps topologically whatever their declaration order; condition references are dependencies but not data dependencies', () => {
    const text = `${HEAD}steps:
  - id: c
    agent: noop
    inputs:
      m: "\${steps.b.outputs.x}"
  - id: b
    agent: noop
    condition: "\${steps.a.outputs.ok} == true"
  - id: a
    agent: noop
  - id: d
    agent: noop
    depends_on: c
`;
    const wf = parseWorkflowManifest(text, WF_FILE);
    expect(wf.steps.map((s) => s.id)).toEqual(['a', 'b', 'c', 'd']);
    const byId = new Map(wf.steps.map((s) => [s.id, s]));
    expect(byId.get('c')!.deps).toEqual(['b']);
    expect(byId.get('c')!.data_deps).toEqual(['b']);
    expect(byId.get('b')!.deps).toEqual(['a']);
    expect(byId.get('b')!.data_deps).toEqual([]);
    expect(byId.get('d')!.deps).toEqual(['c']);
  });

  it('independent steps keep declaration order; retry max_backoff_ms is raised to backoff_ms', () => {
    const text = `${HEAD}steps:
  - id: z
    agent: noop
    retry: { max_attempts: 3, backoff_ms: 5000, max_backoff_ms: 10 }
  - id: y
    agent: noop
  - id: x
    agent: noop
`;
    const wf = parseWorkflowManifest(text, WF_FILE);
    expect(wf.steps.map((s) => s.id)).toEqual(['z', 'y', 'x']);
    expect(wf.steps[0]!.retry).toEqual({ max_attempts: 3, backoff_ms: 5000, max_backoff_ms: 5000 });
  });
});

describe('parseWorkflowManifest: errors name file, field and line', () => {
  it('malformed YAML reports the line', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop: x\n`), WF_FILE, undefined, 5);
    expect(err.message).toContain('invalid YAML');
  });

  // Each file: its lines, the 1-based line to fix, and what the message says about it.
  const malformed: Array<[string, string[], number, RegExp]> = [
    ['an unclosed { (flow mapping)', ['steps:', '  - id: a', '    agent: echo', '    inputs: { message: hi', '  - id: b', '    agent: echo'], 6, /invalid YAML: the \{ in column 13 opens a flow mapping that is never closed with \}$/],
    ['an unclosed [ (flow sequence)', ['tags: [a, b', 'steps:', '  - id: a', '    agent: echo'], 3, /invalid YAML: the \[ in column 7 opens a flow sequence that is never closed with \]$/],
    ['an unclosed [ inside a flow mapping', ['steps:', '  - id: a', '    agent: echo', '    inputs: { message: hi, list: [1, 2', '  - id: b', '    agent: echo'], 6, /the \[ in column 34 opens a flow sequence/],
    ['an unclosed { at the end of the file', ['steps:', '  - id: a', '    agent: echo', '    inputs: {'], 6, /the \{ in column 13 opens a flow mapping/],
    ['a } on a line indented too little', ['steps:', '  - id: a', '    agent: echo', '    inputs: {', '      message: hi', '}'], 8, /invalid YAML: Flow map in block collection must be sufficiently indented and end with a \}$/],
    ['bad indentation', ['steps:', '  - id: a', '    agent: echo', '   inputs: {}'], 6, /invalid YAML: /],
    ['a tab as indentation', ['steps:', '  - id: a', '\tagent: echo'], 5, /invalid YAML: Tabs are not allowed as indentation/],
  ];
  it.each(malformed)('malformed YAML, %s: the line named is the one to fix', (_what, lines, line, message) => {
    const err = manifestError(workflow(`${HEAD}${lines.join('\n')}\n`), WF_FILE, undefined, line);
    expect(err.message).toMatch(message);
  });

  it('missing required field in a step (agent)', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: b\n    inputs: {}\n`), WF_FILE, 'steps[1].agent', 6);
    expect(err.message).toContain('is required');
  });

  it('unknown field in a step', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop\n    dependson: [b]\n`), WF_FILE, 'steps[0].dependson', 6);
    expect(err.message).toContain('unknown field');
  });

  it('bad enum (on_error)', () => {
    manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop\n    on_error: ignore\n`), WF_FILE, 'steps[0].on_error', 6);
  });

  it('non-semver version', () => {
    manifestError(workflow('name: demo\nversion: one\nsteps:\n  - id: a\n    agent: noop\n'), WF_FILE, 'version', 2);
  });

  it('duplicate step id', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: a\n    agent: noop\n`), WF_FILE, 'steps[1].id', 6);
    expect(err.message).toContain("duplicate step id 'a' (first used by steps[0])");
  });

  it('unknown depends_on, with a did-you-mean suggestion', () => {
    const text = `${HEAD}steps:\n  - id: fetch\n    agent: noop\n  - id: b\n    agent: noop\n    depends_on:\n      - fetch\n      - fetc\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[1].depends_on', 10);
    expect(err.message).toContain("unknown step 'fetc' (did you mean 'fetch'?)");
  });

  it('unknown depends_on with no similar step has no suggestion', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: fetch\n    agent: noop\n    depends_on: zzz\n`), WF_FILE, 'steps[0].depends_on', 6);
    expect(err.message).toContain("unknown step 'zzz'");
    expect(err.message).not.toContain('did you mean');
  });

  it('a step depending on itself', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop\n    depends_on: a\n`), WF_FILE, 'steps[0].depends_on', 6);
    expect(err.message).toContain("step 'a' cannot depend on itself");
  });

  it('a step referencing its own outputs', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop\n    inputs: { m: "\${steps.a.outputs.x}" }\n`), WF_FILE, 'steps[0]', 4);
    expect(err.message).toContain("step 'a' references its own outputs");
  });

  it('a dependency cycle names the steps in order and the line of the first', () => {
    const text = `${HEAD}steps:
  - id: start
    agent: noop
  - id: a
    agent: noop
    depends_on: c
  - id: b
    agent: noop
    inputs: { m: "\${steps.a.outputs.x}" }
  - id: c
    agent: noop
    depends_on: [b, start]
`;
    const err = manifestError(workflow(text), WF_FILE, 'steps', 6);
    expect(err.message).toContain('dependency cycle: a → b → c → a');
  });

  it('bad condition syntax', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: b\n    agent: noop\n    condition: "steps.a.outputs.x >"\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[1].condition', 8);
    expect(err.message).toContain("invalid condition 'steps.a.outputs.x >'");
  });

  it('a condition using a function call', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: b\n    agent: noop\n    condition: "steps.a.outputs.x.startsWith('y')"\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[1].condition', 8);
    expect(err.message).toContain('call expressions are not allowed');
  });

  it('a condition with an unknown name', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n    condition: "status == 'ok'"\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[0].condition', 6);
    expect(err.message).toContain("unknown name 'status'");
  });

  it('a condition referencing an unknown step', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: b\n    agent: noop\n    condition: "steps.A.outputs.ok"\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[1].condition', 8);
    expect(err.message).toContain("reference to unknown step 'A'");
    expect(err.message).toContain("did you mean 'a'?");
  });

  it('an input referencing an unknown step (flow mapping on one line)', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: b\n    agent: noop\n    inputs: { m: "\${steps.nope.outputs.x}" }\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[1].inputs.m', 8);
    expect(err.message).toContain("reference to unknown step 'nope' in '${steps.nope.outputs.x}'");
  });

  it('an input referencing an unknown step reports the line of that input, not of an innocent sibling', () => {
    const text = `${HEAD}steps:
  - id: a
    agent: noop
  - id: b
    agent: noop
    inputs:
      first: 1
      second: "\${steps.nope.outputs.x}"
`;
    manifestError(workflow(text), WF_FILE, 'steps[1].inputs.second', 10);
  });

  it('an input referencing an undeclared variable', () => {
    const text = `${HEAD}variables:\n  greeting: hi\nsteps:\n  - id: a\n    agent: noop\n    inputs: { m: "\${variables.greting}" }\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[0].inputs.m', 8);
    expect(err.message).toContain("variable 'greting' is not declared");
  });

  it('an input with an unknown reference root', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n    inputs: { m: "\${env.HOME}" }\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[0].inputs.m', 6);
    expect(err.message).toContain("unknown reference root 'env'");
  });

  it('a reference to a field a step does not have', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n  - id: b\n    agent: noop\n    inputs: { m: "\${steps.a.output.x}" }\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[1].inputs.m', 8);
    expect(err.message).toContain("'steps.a.output' is not a step field");
  });

  it('error.* in step inputs (outside handlers)', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n    inputs: { m: "\${error.message}" }\n`;
    const err = manifestError(workflow(text), WF_FILE, 'steps[0].inputs.m', 6);
    expect(err.message).toContain("'error' is only available in on_error handlers");
  });

  it('error.* in a condition', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\n    condition: "error.message != null"\n`;
    manifestError(workflow(text), WF_FILE, 'steps[0].condition', 6);
  });

  it('error.* is accepted in on_error handlers', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\non_error:\n  - notify:\n      message: "failed: \${error.message}"\n`;
    expect(parseWorkflowManifest(text, WF_FILE).on_error).toEqual([{ notify: { message: 'failed: ${error.message}' } }]);
  });

  it('error.* in an on_success handler is rejected (there is no error when a run succeeds)', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\non_success:\n  - notify:\n      message: "oops: \${error.message}"\n`;
    manifestError(workflow(text), WF_FILE, 'on_success[0]', 7);
  });

  it('a handler referencing an unknown step', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\non_success:\n  - notify:\n      message: "\${steps.b.outputs.x}"\n`;
    const err = manifestError(workflow(text), WF_FILE, 'on_success[0]', 7);
    expect(err.message).toContain("unknown step 'b'");
  });

  it('a handler starting its own workflow', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: noop\non_error:\n  - workflow:\n      name: demo\n`;
    manifestError(workflow(text), WF_FILE, 'on_error[0].workflow.name', 7);
  });

  it('an invalid agent version range', () => {
    const err = manifestError(workflow(`${HEAD}steps:\n  - id: a\n    agent: noop@not-a-range\n`), WF_FILE, 'steps[0].agent', 5);
    expect(err.message).toContain('has an invalid version');
  });
});

// ---------------------------------------------------------------- registry checks

const echo1 = parseAgentManifest('name: echo\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: echo\noutputs:\n  - name: echoed\n    type: any\n', 'echo');
const echo2 = { ...echo1, version: '2.0.0' };
const openAgent = parseAgentManifest('name: open\nversion: 1.0.0\nruntime:\n  type: builtin\n  entry: noop\noutputs:\n  type: object\n', 'open');

const registry: Record<string, AgentManifest[]> = { echo: [echo1, echo2], open: [openAgent] };
const lookup: AgentLookup = (name, range) => {
  const all = registry[name] ?? [];
  const v = pickVersion(
    all.map((a) => a.version),
    range,
  );
  const manifest = all.find((a) => a.version === v);
  return { versions: all.map((a) => a.version), ...(manifest ? { manifest } : {}) };
};

function checkText(text: string): ReturnType<typeof checkAgainstRegistry> {
  const { manifest, lineOf } = parseWorkflowSource(text, WF_FILE);
  return checkAgainstRegistry(manifest, WF_FILE, lookup, lineOf);
}

describe('checkAgainstRegistry', () => {
  it('resolves each step to the newest version matching its range', () => {
    const resolved = checkText(`${HEAD}steps:\n  - id: a\n    agent: echo@^1.0.0\n  - id: b\n    agent: echo\n  - id: c\n    agent: open@1.0.0\n`);
    expect(resolved.get('a')!.version).toBe('1.0.0');
    expect(resolved.get('b')!.version).toBe('2.0.0');
    expect(resolved.get('c')!.name).toBe('open');
  });

  it('unknown agent', () => {
    const err = manifestError(() => checkText(`${HEAD}steps:\n  - id: a\n    agent: echo\n  - id: b\n    agent: ecoh@1.0.0\n`), WF_FILE, 'steps[1].agent', 7);
    expect(err.message).toContain("step 'b': agent 'ecoh@1.0.0' not found; no agent named 'ecoh' is registered");
  });

  it('a version range with no match lists the registered versions', () => {
    const err = manifestError(() => checkText(`${HEAD}steps:\n  - id: a\n    agent: echo@^3.0.0\n`), WF_FILE, 'steps[0].agent', 5);
    expect(err.message).toContain('registered versions: 1.0.0, 2.0.0');
  });

  it('a reference to an output the upstream agent does not declare', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: echo@1.0.0\n  - id: b\n    agent: echo\n    inputs: { m: "\${steps.a.outputs.echo}" }\n`;
    const err = manifestError(() => checkText(text), WF_FILE, 'steps[1].inputs.m', 8);
    expect(err.message).toContain("'${steps.a.outputs.echo}': agent echo@1.0.0 has no output 'echo' (outputs: echoed)");
  });

  it('a declared output passes; an agent whose outputs are an open schema accepts any name', () => {
    const text = `${HEAD}steps:
  - id: a
    agent: echo@1.0.0
  - id: o
    agent: open
  - id: b
    agent: echo
    inputs: { m: "\${steps.a.outputs.echoed}", n: "\${steps.o.outputs.anything}" }
`;
    expect([...checkText(text).keys()].sort()).toEqual(['a', 'b', 'o']);
  });

  it('a condition referencing an output the upstream agent does not declare is caught too', () => {
    const text = `${HEAD}steps:\n  - id: a\n    agent: echo@1.0.0\n  - id: b\n    agent: echo\n    condition: "\${steps.a.outputs.echo} == 'x'"\n`;
    const err = manifestError(() => checkText(text), WF_FILE, 'steps[1].condition', 8);
    expect(err.message).toContain("no output 'echo'");
  });
});

describe('every problem of a manifest at once', () => {
  const problemsOf = (fn: () => unknown): Array<{ line?: number | undefined; field?: string | undefined }> => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(ManifestError);
      return (e as ManifestError).problems.map((p) => ({ line: p.line, field: p.field }));
    }
    throw new Error('expected a ManifestError');
  };

  it('schema problems: each unknown field, bad value and missing field, in file order', () => {
    const text = 'name: x\nversion: 1.0.0\nruntime:\n  type: builtin\n  memory_mb: lots\ncolour: red\ninputs:\n  - {name: a}\n';
    expect(problemsOf(() => parseAgentManifest(text, 'a.yaml'))).toEqual([
      { line: 5, field: 'runtime.memory_mb' },
      { line: 6, field: 'colour' },
      { line: 8, field: 'inputs[0].type' },
    ]);
  });

  it('an anyOf with several wrong branches gives one problem, the most specific', () => {
    const text = 'name: x\nversion: 1.0.0\nruntime: {type: builtin, entry: echo}\ninputs:\n  - {name: a, type: text}\n';
    expect(problemsOf(() => parseAgentManifest(text, 'a.yaml'))).toEqual([{ line: 5, field: 'inputs[0].type' }]);
  });

  it('checks after the schema: every step, every handler; a cycle only once the rest is right', () => {
    const text = [
      'name: w',
      'version: 1.0.0',
      'steps:',
      '  - {id: a, agent: echo, inputs: {m: "${steps.zz.outputs.x}"}}',
      '  - {id: b, agent: echo, depends_on: [nope]}',
      '  - {id: prototype, agent: echo}',
      'on_error:',
      '  - notify: {message: "${variables.none}"}',
      '',
    ].join('\n');
    expect(problemsOf(() => parseWorkflowManifest(text, 'w.yaml'))).toEqual([
      { line: 4, field: 'steps[0].inputs.m' },
      { line: 5, field: 'steps[1].depends_on' },
      { line: 6, field: 'steps[2].id' },
      { line: 8, field: 'on_error[0]' },
    ]);
  });
});
