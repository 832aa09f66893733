/**
 * Two builds' `swarm serve` side by side, for comparing a change on a busy machine. `npm run
 * bench:http-ab -- --base <checkout>` (= build + `node dist/bench/http-ab.js`); see bench/README.md.
 *
 *   node dist/bench/http-ab.js --base <dir> [--kinds http,webhook] [--rounds 10] [--chunk 3000] [--warmup 2000] [--connections 32] [--no-save]
 *
 * `--base` is another checkout of Swarm, built (`node scripts/build.mjs` there, its node_modules
 * installed or linked). Each build serves a fresh project of its own (registered by its own CLI) on
 * SQLite `durability: full`, both servers pinned to CPU 0 and the load generator to CPU 1. After a
 * warm-up of each, the load alternates between the two in chunks (`--chunk` requests, the order
 * swapped every round), so that whatever else the machine does falls on both alike; the medians of
 * the chunks' runs/s and server CPU per run are reported, and this build's ÷ the base's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { benchOptions, COMMON_OPTIONS, intOption, namesOption } from './args.js';
import { freshDir, median, REPO_ROOT } from './harness.js';
import { pinTo, postRequests, prepareWith, serveFor, stopServe, timedLoad, webhookRequests } from './http-project.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';

const KINDS = ['http', 'webhook'] as const;
type Kind = (typeof KINDS)[number];
const REQUESTS = { http: postRequests, webhook: webhookRequests };

const USAGE = 'node dist/bench/http-ab.js --base <dir> [--kinds http,webhook] [--rounds 10] [--chunk 3000] [--warmup 2000] [--connections 32] [--dir <temp base>] [--keep] [--no-save]';

interface Side {
  name: 'base' | 'this';
  root: string;
  url: string;
  pid: number;
  chunks: Record<Kind, Array<{ runs_per_s: number; cpu_us: number }>>;
}

async function main(): Promise<void> {
  const v = benchOptions(
    process.argv.slice(2),
    { ...COMMON_OPTIONS, base: { type: 'string' }, kinds: { type: 'string' }, rounds: { type: 'string' }, chunk: { type: 'string' }, warmup: { type: 'string' }, connections: { type: 'string' } },
    USAGE,
  );
  if (!v.base) throw new Error(`--base <dir> is required (another checkout of Swarm, built)\nusage: ${USAGE}`);
  const quick = v.quick === true;
  const kinds = [...namesOption(v.kinds ?? KINDS.join(','), '--kinds', KINDS)];
  const rounds = intOption(v.rounds, '--rounds', 1, 1000) ?? (quick ? 2 : 10);
  const chunk = intOption(v.chunk, '--chunk', 100) ?? (quick ? 1000 : 3000);
  const warmup = intOption(v.warmup, '--warmup', 0) ?? (quick ? 500 : 2000);
  const connections = intOption(v.connections, '--connections', 1, 1024) ?? 32;
  const base = v.dir ? resolve(v.dir) : undefined;
  const loadBefore = loadavg();
  if (loadBefore[0]! > cpus().length * 0.75) console.error(`warning: load average ${loadBefore[0]!.toFixed(2)} on ${cpus().length} CPUs; the two builds share it alike`);

  const sides: Side[] = [];
  const stops: Array<() => Promise<void>> = [];
  try {
    for (const [name, root] of [['base', resolve(v.base)], ['this', REPO_ROOT]] as const) {
      const dir = freshDir(`http-ab-${name}`, base, v.keep === true);
      stops.push(async () => dir.remove());
      prepareWith(root, dir);
      const { url, child } = await serveFor(dir, { root });
      stops.push(() => stopServe(child));
      pinTo(child.pid!, 0);
      sides.push({ name, root, url, pid: child.pid!, chunks: { http: [], webhook: [] } });
    }
    pinTo(process.pid, 1);
    for (const side of sides) for (const kind of kinds) await timedLoad(REQUESTS[kind](side.url), { connections, amount: warmup, warmup: 0, serverPid: side.pid });
    for (let round = 0; round < rounds; round++) {
      for (const kind of kinds) {
        for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
          const r = await timedLoad(REQUESTS[kind](side.url), { connections, amount: chunk, warmup: 0, serverPid: side.pid });
          if (r.failed > 0) throw new Error(`${side.name} (${side.root}): ${r.failed} of ${chunk} ${kind} requests failed`);
          side.chunks[kind].push({ runs_per_s: r.runs_per_s, cpu_us: r.cpu_us });
        }
      }
      process.stderr.write(`  round ${round + 1}/${rounds}\n`);
    }
  } finally {
    for (const stop of stops.reverse()) await stop();
  }

  const med = (side: Side, kind: Kind, k: 'runs_per_s' | 'cpu_us'): number => median(side.chunks[kind].map((c) => c[k]));
  const [b, t] = sides as [Side, Side];
  const rows = kinds.map((kind) => [
    kind,
    Math.round(med(b, kind, 'runs_per_s')).toString(),
    Math.round(med(t, kind, 'runs_per_s')).toString(),
    `${(med(t, kind, 'runs_per_s') / med(b, kind, 'runs_per_s')).toFixed(3)}×`,
    Math.round(med(b, kind, 'cpu_us')).toString(),
    Math.round(med(t, kind, 'cpu_us')).toString(),
    `${(med(t, kind, 'cpu_us') / med(b, kind, 'cpu_us')).toFixed(3)}×`,
  ]);
  console.log(`\nbase: ${b.root}\nthis: ${t.root}\n${rounds} rounds of ${chunk} requests per build and kind, ${connections} connections, after ${warmup} warm-up requests each\n`);
  console.log(table(['kind', 'base runs/s', 'this runs/s', 'this ÷ base', 'base CPU µs/run', 'this CPU µs/run', 'this ÷ base'], rows));

  if (v['no-save'] !== true) {
    const outDir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const doc = { bench: 'http-ab', when: new Date().toISOString(), git: gitState(), host: hostInfo(loadBefore), options: { base: b.root, kinds, rounds, chunk, warmup, connections }, chunks: Object.fromEntries(sides.map((s) => [s.name, s.chunks])) };
    const stamp = doc.when.replace(/[:.]/g, '-');
    writeFileSync(join(outDir, `http-ab-${stamp}.json`), `${JSON.stringify(doc, null, 2)}\n`);
    writeFileSync(join(outDir, 'http-ab-latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
  }
}

await main();
