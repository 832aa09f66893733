/**
 * The cost of a map step against the static fan-out it replaces, in the same process and store:
 * `start → 1,000 parallel noop steps → join` (the `fanout` workload's shape) against `start → a map
 * of 1,000 noop elements → join`, repetitions interleaved. Reports each shape's median makespan
 * (startRun → run finished) and the ratio map / static, and the time of the map step's own expansion
 * commit (1,000 element rows in one transaction).
 *
 *   npm run build && node dist/bench/map-fanout.js [--width 1000] [--reps 5] [--durability full|process]
 */
import { parseArgs } from 'node:util';
import type { Durability } from '../src/index.js';
import { fanOutSteps, freshDir, median, NOOP_AGENT_DIR, nowMs, openSwarm, writePackage, writeWorkflow } from './harness.js';

const { values } = parseArgs({ options: { width: { type: 'string', default: '1000' }, reps: { type: 'string', default: '5' }, durability: { type: 'string', default: 'full' } } });
const WIDTH = Number(values.width);
const REPS = Number(values.reps);
const DURABILITY = values.durability as Durability;

async function main(): Promise<void> {
  const dir = freshDir('map-fanout');
  const swarm = await openSwarm(dir, { durability: DURABILITY, pollMs: 20 });
  const makespans: Record<'static' | 'map', number[]> = { static: [], map: [] };
  const expansions: number[] = [];
  try {
    await swarm.registerAgent(NOOP_AGENT_DIR);
    await swarm.registerWorkflow(writeWorkflow(dir, 'static', 'noop@1.0.0', fanOutSteps(WIDTH), WIDTH));
    const mapYaml = `name: mapped
version: 1.0.0
concurrency: ${WIDTH}
steps:
  - id: start
    agent: noop@1.0.0
  - id: each
    agent: noop@1.0.0
    map: \${trigger.items}
    depends_on: [start]
  - id: join
    agent: noop@1.0.0
    depends_on: [each]
`;
    await swarm.registerWorkflow(writePackage(dir, 'workflows', 'mapped', 'workflow.yaml', mapYaml));
    const items = Array.from({ length: WIDTH }, (_, i) => i);
    const finished = new Map<string, () => void>();
    swarm.worker({ concurrency: 256, onFinished: (id) => finished.get(id)?.() });
    const once = async (wf: 'static' | 'mapped'): Promise<number> => {
      const t0 = nowMs();
      const id = await swarm.startRun(wf, wf === 'mapped' ? { items } : {});
      const done = new Promise<void>((resolve) => finished.set(id, resolve));
      const run = await swarm.getRun(id);
      if (run.run.status !== 'completed') await done;
      const ms = nowMs() - t0;
      const d = await swarm.getRun(id);
      if (d.run.status !== 'completed') throw new Error(`${wf}: run ${id} ${d.run.status}: ${d.run.error ?? ''}`);
      if (wf === 'mapped') {
        const events = await swarm.events(id);
        const parked = events.find((e) => e.type === 'STEP_WAITING' && e.step_id === 'each');
        const started = events.find((e) => e.type === 'STEP_STARTED' && e.step_id === 'each');
        if (parked && started) expansions.push(parked.at - started.at);
      }
      return ms;
    };
    // Warm-up (JIT, statement cache, file growth): not measured.
    await once('static');
    await once('mapped');
    for (let i = 0; i < REPS; i++) {
      makespans.static.push(await once('static'));
      makespans.map.push(await once('mapped'));
    }
  } finally {
    await swarm.close();
    dir.remove();
  }
  const s = median(makespans.static);
  const m = median(makespans.map);
  const result = {
    width: WIDTH,
    reps: REPS,
    durability: DURABILITY,
    static_fanout_median_ms: Math.round(s),
    map_fanout_median_ms: Math.round(m),
    ratio_map_over_static: Number((m / s).toFixed(2)),
    map_expansion_commit_median_ms: median(expansions),
    samples: makespans,
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(`${WIDTH} parallel steps: static fan-out ${Math.round(s)} ms, map ${Math.round(m)} ms (median of ${REPS}); map / static = ${result.ratio_map_over_static}`);
}

await main();
