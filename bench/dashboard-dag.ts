/**
 * A 1,000-step fan-out run in the dashboard, in a real headless Chromium against a real `swarm
 * serve`. `npm run bench:dashboard-dag` (= build + `node dist/bench/dashboard-dag.js`); see
 * bench/README.md.
 *
 *   node dist/bench/dashboard-dag.js [--quick] [--width 1000] [--repeat 5] [--dir <temp base>] [--keep] [--no-save]
 *
 * Three runs, made in process before the server starts (SQLite, `durability: full`):
 * - fanout: `start → 1,000 parallel noop steps → join` (1,002 nodes), finished;
 * - map: `start → a map of 1,000 noop elements → join` (3 nodes, 1,000 element rows), finished;
 * - live: `gate` (a wait step for the signal `go`) → 1,000 noop steps → `join`, started over HTTP.
 * Measured, each page load in a fresh browser context:
 * - load: navigation → the DAG drawn (the `start` node in the page, laid out), p50 and max;
 * - click: a node clicked → its step panel shown (for the map step: with all 1,000 element rows);
 * - repaint: the signal sent over the API → the `gate` node repainted `completed` by the live page;
 * - finish: the signal sent → the page shows the run `completed` (1,000 steps run meanwhile).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { benchOptions, COMMON_OPTIONS, intOption } from './args.js';
import { fanOutSteps, freshDir, median, NOOP_AGENT_DIR, openSwarm, REPO_ROOT, writePackage, startServe, writeWorkflow, type BenchDir } from './harness.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';

const USAGE = 'node dist/bench/dashboard-dag.js [--quick] [--width 1000] [--repeat 5] [--dir <temp base>] [--keep] [--no-save]';

/** The measured figures' goals on the 2-core machine (bench/README.md). */
const GOAL_LOAD_P50_MS = 2000;
const GOAL_CLICK_P50_MS = 300;
const GOAL_REPAINT_P50_MS = 1000;

interface Sample {
  load_ms: number;
  click_ms: number;
}

function chromiumPath(): string {
  const found = [process.env.SWARM_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => p && existsSync(p));
  if (!found) throw new Error('no Chromium found: install it (apt-get install -y chromium) or set SWARM_CHROMIUM');
  return found;
}

/** The three workflows; the two finished runs made in process. */
async function prepare(dir: BenchDir, width: number): Promise<{ fanout: string; map: string }> {
  const swarm = await openSwarm(dir, { durability: 'full', pollMs: 20 });
  try {
    await swarm.registerAgent(NOOP_AGENT_DIR);
    await swarm.registerWorkflow(writeWorkflow(dir, 'fanout', 'noop@1.0.0', fanOutSteps(width), width));
    const map = `name: mapped\nversion: 1.0.0\nconcurrency: ${width}\nsteps:\n  - id: start\n    agent: noop@1.0.0\n  - id: each\n    agent: noop@1.0.0\n    map: \${trigger.items}\n    depends_on: [start]\n  - id: join\n    agent: noop@1.0.0\n    depends_on: [each]\n`;
    await swarm.registerWorkflow(writePackage(dir, 'workflows', 'mapped', 'workflow.yaml', map));
    const mid = Array.from({ length: width }, (_, i) => `p${String(i).padStart(4, '0')}`);
    const live = [`name: live`, 'version: 1.0.0', `concurrency: ${width}`, 'steps:', '  - id: gate', '    kind: wait', '    signal: go', ...mid.flatMap((id) => [`  - id: ${id}`, '    agent: noop@1.0.0', '    depends_on: [gate]']), '  - id: join', '    agent: noop@1.0.0', `    depends_on: [${mid.join(', ')}]`];
    await swarm.registerWorkflow(writePackage(dir, 'workflows', 'live', 'workflow.yaml', `${live.join('\n')}\n`));
    const worker = swarm.worker({ concurrency: 64 });
    const fanout = await swarm.startRun('fanout', {});
    const mapped = await swarm.startRun('mapped', { items: Array.from({ length: width }, (_, i) => i) });
    for (const id of [fanout, mapped]) {
      const d = await swarm.wait(id);
      if (d.run.status !== 'completed') throw new Error(`run ${id} ${d.run.status}: ${d.run.error ?? ''}`);
    }
    await worker.stop(5000);
    return { fanout, map: mapped };
  } finally {
    await swarm.close();
  }
}


/** One load of a run's page: navigation → the DAG drawn; then a node click → its panel. */
async function loadOnce(browser: Browser, url: string, runId: string, click: string, ready: string): Promise<Sample> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await context.newPage();
    const t0 = performance.now();
    await page.goto(`${url}/runs/${runId}`, { waitUntil: 'commit' });
    await page.locator('.dag-node[data-step="start"]').waitFor({ timeout: 60_000 });
    const load_ms = performance.now() - t0;
    const node = page.locator(`.dag-node[data-step="${click}"]`);
    await node.waitFor();
    const t1 = performance.now();
    await node.click();
    await page.locator(ready).first().waitFor({ timeout: 60_000 });
    return { load_ms, click_ms: performance.now() - t1 };
  } finally {
    await context.close();
  }
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** A live run: the signal sent → the gate node repainted; → the page shows the run completed. */
async function liveOnce(browser: Browser, url: string): Promise<{ repaint_ms: number; finish_ms: number }> {
  const { run_id } = (await post(`${url}/api/v1/workflows/live/runs`, { input: {} })) as { run_id: string };
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page: Page = await context.newPage();
    await page.goto(`${url}/runs/${run_id}`);
    await page.locator('.dag-node[data-step="gate"][data-status="waiting"]').waitFor({ timeout: 60_000 });
    const t0 = performance.now();
    await post(`${url}/api/v1/runs/${run_id}/signals/go`, {});
    await page.locator('.dag-node[data-step="gate"][data-status="completed"]').waitFor({ timeout: 60_000 });
    const repaint_ms = performance.now() - t0;
    await page.locator('.page-head .badge[data-status="completed"]').waitFor({ timeout: 120_000 });
    return { repaint_ms, finish_ms: performance.now() - t0 };
  } finally {
    await context.close();
  }
}

const ms = (n: number): string => `${Math.round(n).toLocaleString('en-US')} ms`;
const max = (xs: readonly number[]): number => Math.max(...xs);

async function main(): Promise<void> {
  const v = benchOptions(process.argv.slice(2), { ...COMMON_OPTIONS, width: { type: 'string' } }, USAGE);
  const width = intOption(v.width, '--width', 2, 5000) ?? 1000;
  const repeat = intOption(v.repeat, '--repeat', 1, 50) ?? (v.quick ? 3 : 5);
  const loadBefore = loadavg();
  const dir = freshDir('dashboard-dag', v.dir, v.keep === true);
  let serve: ChildProcess | undefined;
  let browser: Browser | undefined;
  try {
    console.log(`preparing: ${width.toLocaleString('en-US')}-step fan-out, a map of ${width.toLocaleString('en-US')}, a live run of ${width.toLocaleString('en-US')} (${dir.root})`);
    const runs = await prepare(dir, width);
    const s = await startServe(dir, { env: { SWARM_DURABILITY: 'full' } });
    serve = s.child;
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    // One load of each to warm the server's and the browser's caches (not counted).
    await loadOnce(browser, s.url, runs.fanout, 'start', '[data-panel-step="start"]');
    const fanout: Sample[] = [];
    const map: Sample[] = [];
    const live: Array<{ repaint_ms: number; finish_ms: number }> = [];
    for (let i = 0; i < repeat; i++) {
      fanout.push(await loadOnce(browser, s.url, runs.fanout, 'start', '[data-panel-step="start"]'));
      map.push(await loadOnce(browser, s.url, runs.map, 'each', `[data-panel-step="each"] tr[data-element="each[${width - 1}]"]`));
      if (i < Math.min(repeat, 3)) live.push(await liveOnce(browser, s.url));
    }
    const row = (name: string, xs: readonly number[]): string[] => [name, ms(median(xs)), ms(max(xs)), String(xs.length)];
    const rows = [
      row(`fan-out (${width + 2} nodes): load → DAG drawn`, fanout.map((x) => x.load_ms)),
      row('fan-out: node click → step panel', fanout.map((x) => x.click_ms)),
      row(`map of ${width}: load → DAG drawn`, map.map((x) => x.load_ms)),
      row(`map: node click → panel with ${width} elements`, map.map((x) => x.click_ms)),
      row('live: signal → node repainted', live.map((x) => x.repaint_ms)),
      row(`live: signal → run completed on the page (${width} steps)`, live.map((x) => x.finish_ms)),
    ];
    console.log(`\n${table(['measurement', 'p50', 'max', 'n'], rows)}`);
    const targets = [
      ['fan-out load p50', `≤ ${ms(GOAL_LOAD_P50_MS)}`, ms(median(fanout.map((x) => x.load_ms))), median(fanout.map((x) => x.load_ms)) <= GOAL_LOAD_P50_MS ? 'met' : 'MISSED'],
      ['node click → panel p50', `≤ ${ms(GOAL_CLICK_P50_MS)}`, ms(median(fanout.map((x) => x.click_ms))), median(fanout.map((x) => x.click_ms)) <= GOAL_CLICK_P50_MS ? 'met' : 'MISSED'],
      ['live repaint p50', `≤ ${ms(GOAL_REPAINT_P50_MS)}`, ms(median(live.map((x) => x.repaint_ms))), median(live.map((x) => x.repaint_ms)) <= GOAL_REPAINT_P50_MS ? 'met' : 'MISSED'],
    ];
    console.log(`\n${table(['target', 'goal', 'measured (p50)', ''], targets)}`);
    if (v['no-save'] !== true) {
      const outDir = join(REPO_ROOT, 'bench', 'results');
      mkdirSync(outDir, { recursive: true });
      const p50 = (xs: readonly number[]): number => Math.round(median(xs));
      const doc = {
        bench: 'dashboard-dag',
        when: new Date().toISOString(),
        git: gitState(),
        host: hostInfo(loadBefore),
        options: { width, repeat },
        p50_ms: {
          fanout_load: p50(fanout.map((x) => x.load_ms)),
          fanout_click: p50(fanout.map((x) => x.click_ms)),
          map_load: p50(map.map((x) => x.load_ms)),
          map_click: p50(map.map((x) => x.click_ms)),
          live_repaint: p50(live.map((x) => x.repaint_ms)),
          live_finish: p50(live.map((x) => x.finish_ms)),
        },
        samples: { fanout, map, live },
      };
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      writeFileSync(join(outDir, `dashboard-dag-${doc.when.replace(/[:.]/g, '-')}.json`), text);
      writeFileSync(join(outDir, 'dashboard-dag-latest.json'), text);
      console.log(`\nsaved bench/results/dashboard-dag-latest.json`);
    }
  } finally {
    await browser?.close();
    if (serve && serve.exitCode === null) {
      const done = new Promise<void>((ok) => serve?.once('exit', () => ok()));
      serve.kill('SIGTERM');
      await done;
    }
    dir.remove();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
