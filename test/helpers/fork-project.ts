/**
 * A project for the fork tests of the command line: a node agent that logs each execution (run,
 * step, attempt) to a file and, on its first attempt of the step named in `slow_step`, sleeps; a
 * workflow s1 → s2 → s3 → s4 with a side branch t (after s1).
 */
import { existsSync, readFileSync } from 'node:fs';
import { pgTestServer } from './pg.js';
import { tempProject, writeAgent, writeWorkflow } from './project.js';

export const FORK_BACKENDS = [
  { name: 'SQLite', env: async (): Promise<Record<string, string>> => ({}) },
  { name: 'PostgreSQL', env: async (): Promise<Record<string, string>> => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() }) },
];

export function forkProject(): string {
  const dir = tempProject('name: fork-cli\nsandbox: none\n');
  writeAgent(
    dir,
    'effect',
    `name: effect
version: 1.0.0
runtime: { type: node, entry: main.js, timeout_seconds: 60 }
inputs:
  - { name: log, type: string, required: true }
  - { name: slow_step, type: string, default: "" }
outputs:
  - { name: step, type: string }
  - { name: r, type: number }
`,
    {
      'main.js': `const fs = require('fs');
const [i, o] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(i, 'utf8'));
const step = process.env.SWARM_STEP_ID, attempt = process.env.SWARM_ATTEMPT;
fs.appendFileSync(input.log, process.env.SWARM_RUN_ID + ' ' + step + ' ' + attempt + '\\n');
const ms = attempt === '1' && input.slow_step === step ? 50000 : 10;
setTimeout(() => fs.writeFileSync(o, JSON.stringify({ step, r: Math.random() })), ms);
`,
    },
  );
  const step = (id: string, deps: string[]): string =>
    `  - id: ${id}\n    agent: effect@1.0.0\n    inputs:\n      log: "\${trigger.log}"\n      slow_step: "\${trigger.slow_step}"\n${deps.length ? `    depends_on: [${deps.join(', ')}]\n` : ''}`;
  writeWorkflow(
    dir,
    'chain',
    `name: chain\nversion: 1.0.0\ninputs:\n  - { name: log, type: string, required: true }\n  - { name: slow_step, type: string, default: "" }\nsteps:\n${step('s1', [])}${step('s2', ['s1'])}${step('s3', ['s2'])}${step('s4', ['s3'])}${step('t', ['s1'])}`,
  );
  return dir;
}

/** Executions logged, as `step` lists per run id. */
export function executions(log: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!existsSync(log)) return out;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const [run, step] = line.split(' ');
    if (run && step) out.set(run, [...(out.get(run) ?? []), step]);
  }
  return out;
}
