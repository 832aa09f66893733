/**
 * What a `swarm` command costs to start. `npm run bench:cli` (= build + `node dist/bench/cli-startup.js`);
 * see bench/README.md.
 *
 *   node dist/bench/cli-startup.js [--quick] [--calls N] [--no-save]
 *
 * Each command is started as a user starts it (`node bin/swarm.js …`, a fresh process each time) in a
 * project with one registered agent, one workflow and a few finished runs, `calls` times in each of
 * two modes taken in turn: `fast start` (the default: V8's optimising compiler off for the first
 * second, src/cli/fast-start.ts) and `optimising` (SWARM_NODE_OPT=1, the baseline: Node's default).
 * Reported: the median wall time and the median CPU time of the process (user + system, all its
 * threads: the optimising compiler runs on background threads), and their ratios to the baseline.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { benchOptions, intOption } from './args.js';
import { freshDir, median, REPO_ROOT } from './harness.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';

const USAGE = `usage: node dist/bench/cli-startup.js [options]
  --quick       smoke: 5 calls of each command in each mode
  --calls <n>   calls of each command in each mode (default 30)
  --no-save     do not write bench/results/cli-startup-*.json`;

/** The commands measured: the version alone, then commands that open the store. */
const COMMANDS = [['--version'], ['runs', 'list'], ['workflow', 'list'], ['runs', 'show', 'LAST']] as const;
const MODES = [
  { name: 'fast start', env: {} },
  { name: 'optimising', env: { SWARM_NODE_OPT: '1' } },
] as const;

// Prints the process's own CPU time as it exits (stderr is a pipe: written synchronously).
const CPU_HOOK = `data:text/javascript,${encodeURIComponent("process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write('\\nCPU_US ' + (u.user + u.system) + '\\n'); });")}`;
const BIN = join(REPO_ROOT, 'bin', 'swarm.js');

interface Call {
  wallMs: number;
  cpuMs: number;
}

function call(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Call {
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', CPU_HOOK, BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  const wallMs = performance.now() - started;
  if (r.status !== 0) throw new Error(`swarm ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const cpu = /CPU_US (\d+)/.exec(r.stderr);
  if (!cpu) throw new Error(`swarm ${args.join(' ')}: no CPU time reported`);
  return { wallMs, cpuMs: Number(cpu[1]) / 1000 };
}

function main(): void {
  const v = benchOptions(process.argv.slice(2), { quick: { type: 'boolean' }, calls: { type: 'string' }, 'no-save': { type: 'boolean' } }, USAGE);
  const calls = intOption(v.calls, '--calls', 1) ?? (v.quick ? 5 : 30);
  const loadBefore = loadavg();
  const dir = freshDir('cli-startup');
  try {
    const cwd = dir.root;
    const env: NodeJS.ProcessEnv = { ...process.env, SWARM_HOME: dir.home, NO_COLOR: '1' };
    delete env.SWARM_NODE_OPT;
    // The project: `swarm demo` registers the example agents and workflows and runs one.
    const demo = spawnSync(process.execPath, [BIN, 'demo'], { cwd, env, encoding: 'utf8', timeout: 120_000 });
    if (demo.status !== 0) throw new Error(`swarm demo exited ${demo.status}: ${demo.stderr}`);
    const runs = JSON.parse(spawnSync(process.execPath, [BIN, 'runs', 'list', '--json'], { cwd, env, encoding: 'utf8' }).stdout) as Array<{ id: string }>;
    if (runs.length === 0) throw new Error('swarm demo left no run');
    // Each command with its calls in each mode.
    const measured = COMMANDS.map((c) => ({
      label: `swarm ${c.map((a) => (a === 'LAST' ? '<run>' : a)).join(' ')}`,
      args: c.map((a) => (a === 'LAST' ? runs[0]!.id : a)),
      calls: new Map<string, Call[]>(MODES.map((m) => [m.name, []])),
    }));
    // Warm-up: the file system's caches.
    for (const c of measured) call(c.args, cwd, env);
    for (let i = 0; i < calls; i++) {
      for (const c of measured) {
        // Alternate which mode goes first.
        for (const m of i % 2 === 0 ? MODES : [...MODES].reverse()) c.calls.get(m.name)!.push(call(c.args, cwd, { ...env, ...m.env }));
      }
    }
    const rows: string[][] = [];
    const out: Array<Record<string, unknown>> = [];
    for (const c of measured) {
      const of = (mode: string): { wall: number; cpu: number } => {
        const list = c.calls.get(mode)!;
        return { wall: median(list.map((x) => x.wallMs)), cpu: median(list.map((x) => x.cpuMs)) };
      };
      const fast = of('fast start');
      const base = of('optimising');
      rows.push([c.label, base.wall.toFixed(0), fast.wall.toFixed(0), `${(fast.wall / base.wall).toFixed(2)}×`, base.cpu.toFixed(0), fast.cpu.toFixed(0), `${(fast.cpu / base.cpu).toFixed(2)}×`]);
      out.push({ command: c.label, optimising_wall_ms: base.wall, fast_wall_ms: fast.wall, optimising_cpu_ms: base.cpu, fast_cpu_ms: fast.cpu, wall_ratio: fast.wall / base.wall, cpu_ratio: fast.cpu / base.cpu });
    }
    console.log(table(['command', 'optimising wall ms', 'fast start wall ms', 'ratio', 'optimising CPU ms', 'fast start CPU ms', 'ratio'], rows, 1));
    console.log(`\nmedians of ${calls} calls of each command in each mode, taken in turn`);
    if (!(v['no-save'] ?? false)) {
      const result = { bench: 'cli-startup', calls, commands: out, host: hostInfo(loadBefore), git: gitState() };
      const dirOut = join(REPO_ROOT, 'bench', 'results');
      mkdirSync(dirOut, { recursive: true });
      const file = join(dirOut, `cli-startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(file, JSON.stringify(result, null, 2));
      writeFileSync(join(dirOut, 'cli-startup-latest.json'), JSON.stringify(result, null, 2));
      console.log(`wrote ${file}`);
    }
  } finally {
    dir.remove();
  }
}

try {
  main();
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
}
