/**
 * The cost of the sandbox per process step: a trivial bash agent and a trivial node agent, each run
 * as one-step runs one after another, with `sandbox: none` and `sandbox: bubblewrap` interleaved in
 * the same process. Reports the median and p90 of each step's duration (the engine's own
 * `duration_ms`: spawn to exit and output read, cgroup set-up and removal included).
 *
 *   npm run build && node dist/bench/sandbox-overhead.js [--steps 20] [--cgroups on|off]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Swarm } from '../src/index.js';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '20' }, cgroups: { type: 'string', default: 'on' } } });
const STEPS = Number(values.steps);
const CGROUPS = values.cgroups !== 'off';

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'swarm-bench-sandbox-'));
  writeFileSync(join(dir, 'swarm.yaml'), 'name: bench\n');
  const agent = (name: string, runtime: string, file: string, text: string): void => {
    mkdirSync(join(dir, 'agents', name), { recursive: true });
    writeFileSync(join(dir, 'agents', name, 'agent.yaml'), `name: ${name}\nversion: 1.0.0\nruntime: { type: ${runtime}, entry: ${file} }\n`);
    writeFileSync(join(dir, 'agents', name, file), text);
  };
  agent('b', 'bash', 'run.sh', `echo '{}' > "$2"\n`);
  agent('n', 'node', 'main.js', `require('fs').writeFileSync(process.argv[3], '{}');\n`);
  writeFileSync(join(dir, 'agents', 'n', 'package.json'), '{"type":"commonjs"}');
  for (const a of ['b', 'n']) {
    mkdirSync(join(dir, 'workflows', `wf-${a}`), { recursive: true });
    writeFileSync(join(dir, 'workflows', `wf-${a}`, 'workflow.yaml'), `name: wf-${a}\nversion: 1.0.0\nsteps:\n  - id: s\n    agent: ${a}@1.0.0\n`);
  }
  return dir;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))] ?? NaN;

async function main(): Promise<void> {
  const dir = project();
  const swarms = {
    none: await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm-none') }, overrides: { sandbox: 'none', memoryCgroups: CGROUPS } }),
    bubblewrap: await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm-bwrap') }, overrides: { sandbox: 'bubblewrap', memoryCgroups: CGROUPS } }),
  };
  const samples: Record<string, number[]> = {};
  try {
    for (const s of Object.values(swarms)) {
      await s.registerAgents();
      await s.registerWorkflows();
    }
    // One warm-up run of each (JIT, the bubblewrap probe, file system caches): not measured.
    for (const s of Object.values(swarms)) for (const wf of ['wf-b', 'wf-n']) await s.runToCompletion(await s.startRun(wf));
    for (let i = 0; i < STEPS; i++) {
      for (const [driver, s] of Object.entries(swarms)) {
        for (const wf of ['wf-b', 'wf-n']) {
          const r = await s.runToCompletion(await s.startRun(wf));
          if (r.run.status !== 'completed') throw new Error(`${driver} ${wf}: ${r.run.status} ${r.run.error ?? ''}`);
          (samples[`${wf === 'wf-b' ? 'bash' : 'node'} ${driver}`] ??= []).push(r.steps[0]?.duration_ms ?? NaN);
        }
      }
    }
  } finally {
    for (const s of Object.values(swarms)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = Object.entries(samples).map(([k, xs]) => ({ agent: k, steps: xs.length, median_ms: median(xs), p90_ms: p90(xs) }));
  console.log(JSON.stringify({ memory_cgroups: CGROUPS, rows }, null, 2));
  for (const lang of ['bash', 'node']) {
    const none = median(samples[`${lang} none`] ?? []);
    const bw = median(samples[`${lang} bubblewrap`] ?? []);
    console.log(`${lang}: none ${none} ms, bubblewrap ${bw} ms, overhead ${bw - none} ms per step (median of ${STEPS})`);
  }
}

await main();
