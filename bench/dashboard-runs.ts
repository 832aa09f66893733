/**
 * The dashboard's runs list at scale. `npm run bench:dashboard` (= build + `node dist/bench/dashboard-runs.js`);
 * see bench/README.md.
 *
 *   node dist/bench/dashboard-runs.js [--quick] [--runs 100000] [--loads 15] [--dir <temp base>] [--keep] [--reuse <dir>] [--no-save]
 *
 * A SQLite store (`durability: process` while filling it) gets 100,000 runs through the public API
 * (`Swarm.createRun`, 64 callers at a time) of the examples echo-chain, order-wait and fan-out, four trigger kinds,
 * metadata `{region, customer}` on each, 2% of them cancelled. Then a real `swarm serve --no-worker`
 * on it, and:
 * - api: `GET /api/v1/runs` first page (50) unfiltered, by workflow, and by status + metadata, p50/p99
 *   over 30 requests each (after 3 unmeasured);
 * - page: the runs page in Chromium (Debian's, via playwright-core), from the navigation's start to
 *   the first row of the table in the DOM (the page's own clock), over `--loads` navigations (the
 *   first, with a cold cache, reported apart);
 * - plans: SQLite's EXPLAIN QUERY PLAN of the three list queries.
 * Target: the page's first page p50 ≤ 300 ms.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { chromium } from 'playwright-core';
import { benchOptions, COMMON_OPTIONS, intOption } from './args.js';
import { freshDir, median, openSwarm, percentile, REPO_ROOT, startServe } from './harness.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';

const USAGE = 'usage: node dist/bench/dashboard-runs.js [--quick] [--runs N] [--loads N] [--dir <temp base>] [--keep] [--reuse <project dir>] [--no-save]';
const TARGET_PAGE_P50_MS = 300;
const EXAMPLES = join(REPO_ROOT, 'examples');
const WORKFLOWS = ['echo-chain', 'order-wait', 'fan-out'] as const;
const TRIGGERS = ['api', 'api', 'schedule', 'webhook', 'manual'] as const;
const REGIONS = ['eu', 'us', 'ap'] as const;

/** The inputs each example workflow needs. */
function inputOf(workflow: (typeof WORKFLOWS)[number], i: number): Record<string, unknown> {
  if (workflow === 'order-wait') return { order_id: i };
  if (workflow === 'fan-out') return { text: `batch ${i}` };
  return { message: `run ${i}` };
}

async function fill(dir: ReturnType<typeof freshDir>, runs: number): Promise<{ seconds: number; cancelled: number }> {
  const swarm = await openSwarm(dir, { durability: 'process' });
  try {
    for (const a of ['echo', 'shout', 'word-count']) await swarm.registerAgent(join(EXAMPLES, 'agents', a));
    for (const w of WORKFLOWS) await swarm.registerWorkflow(join(EXAMPLES, 'workflows', w));
    const t0 = performance.now();
    let next = 0;
    const toCancel: string[] = [];
    const caller = async (): Promise<void> => {
      for (let i = next++; i < runs; i = next++) {
        const workflow = WORKFLOWS[i % WORKFLOWS.length]!;
        const trigger_type = TRIGGERS[i % TRIGGERS.length]!;
        const { runId } = await swarm.createRun(workflow, inputOf(workflow, i), {
          trigger_type,
          metadata: { region: REGIONS[i % REGIONS.length]!, customer: `c${i % 997}` },
        });
        if (i % 50 === 7) toCancel.push(runId);
        if (i % 10_000 === 0 && i > 0) process.stdout.write(`  ${i.toLocaleString()} runs…\n`);
      }
    };
    await Promise.all(Array.from({ length: 64 }, caller));
    for (const id of toCancel) await swarm.cancel(id, 'bench');
    return { seconds: (performance.now() - t0) / 1000, cancelled: toCancel.length };
  } finally {
    await swarm.close();
  }
}


interface Timing {
  p50_ms: number;
  p99_ms: number;
  n: number;
}

function timing(ms: number[]): Timing {
  return { p50_ms: median(ms), p99_ms: percentile(ms, 99), n: ms.length };
}

async function apiTimes(url: string, query: string, n: number): Promise<Timing & { rows: number }> {
  let rows = 0;
  const ms: number[] = [];
  for (let i = -3; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/api/v1/runs?${query}`);
    const body = (await res.json()) as { runs: unknown[] };
    if (!res.ok) throw new Error(`GET /api/v1/runs?${query}: ${res.status} ${JSON.stringify(body)}`);
    if (i >= 0) ms.push(performance.now() - t0);
    rows = body.runs.length;
  }
  return { ...timing(ms), rows };
}

function chromiumPath(): string {
  const found = [process.env.SWARM_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => p && existsSync(p));
  if (!found) throw new Error('no Chromium found: install it (apt-get install -y chromium) or set SWARM_CHROMIUM');
  return found;
}

async function pageTimes(url: string, path: string, loads: number): Promise<{ cold_ms: number } & Timing> {
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    // The page's own clock: from the navigation's start (performance.timeOrigin) to the DOM change
    // that adds the table's first row. A locator's wait would add its polling interval (up to 500 ms).
    await page.addInitScript({
      content: `new MutationObserver((_, observer) => {
        if (document.querySelector('tr[data-run]')) { window.__firstRow = performance.now(); observer.disconnect(); }
      }).observe(document, { childList: true, subtree: true });`,
    });
    const ms: number[] = [];
    for (let i = 0; i < loads + 1; i++) {
      await page.goto(`${url}${path}`);
      const at = await page.waitForFunction(() => (globalThis as { __firstRow?: number }).__firstRow, undefined, { timeout: 30_000, polling: 10 });
      ms.push((await at.jsonValue()) as number);
      await page.goto('about:blank');
    }
    const [cold, ...warm] = ms as [number, ...number[]];
    return { cold_ms: cold, ...timing(warm) };
  } finally {
    await browser.close();
  }
}

/** SQLite's plan of the list query with these conditions (the store's SQL shape, newest first). */
function plans(dbPath: string): Record<string, string> {
  const db = new Database(dbPath, { readonly: true });
  try {
    const q = (where: string, args: unknown[]): string =>
      (db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM workflow_runs ${where} ORDER BY created_at DESC, id DESC LIMIT 50`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    const meta = "EXISTS (SELECT 1 FROM json_each(workflow_runs.metadata) m WHERE m.key = ? AND m.value = ? AND m.type = 'text')";
    return {
      first_page: q('', []),
      workflow: q('WHERE workflow_name = ?', ['order-wait']),
      status_metadata: q(`WHERE status IN (?, ?) AND ${meta}`, ['cancelled', 'failed', 'region', 'eu']),
    };
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const v = benchOptions(process.argv.slice(2), { ...COMMON_OPTIONS, runs: { type: 'string' }, loads: { type: 'string' }, reuse: { type: 'string' } }, USAGE);
  const runs = intOption(v.runs, '--runs', 100) ?? (v.quick ? 5_000 : 100_000);
  const loads = intOption(v.loads, '--loads', 10) ?? 15;
  const loadBefore = loadavg();
  // --reuse <dir>: the project a run with --keep left (its store filled), to measure again without filling.
  const dir = v.reuse ? { root: v.reuse, home: join(v.reuse, 'home'), remove: () => undefined } : freshDir('dashboard', v.dir, v.keep === true);
  let server: ChildProcess | undefined;
  try {
    let filled: { seconds: number; cancelled: number } | null = null;
    if (v.reuse) console.log(`measuring the store in ${v.reuse} again (not filled)`);
    else {
      console.log(`filling a store with ${runs.toLocaleString()} runs…`);
      filled = await fill(dir, runs);
      console.log(`  ${runs.toLocaleString()} runs in ${filled.seconds.toFixed(1)} s (${Math.round(runs / filled.seconds).toLocaleString()}/s), ${filled.cancelled.toLocaleString()} cancelled; the project: ${dir.root}`);
    }
    const { url, child } = await startServe(dir, { args: ['--no-worker'] });
    server = child;
    const api = {
      first_page: await apiTimes(url, 'limit=50', 30),
      workflow: await apiTimes(url, 'workflow=order-wait&limit=50', 30),
      status_metadata: await apiTimes(url, 'status=cancelled,failed&metadata.region=eu&limit=50', 30),
    };
    const page = {
      first_page: await pageTimes(url, '/runs', loads),
      filtered: await pageTimes(url, '/runs?status=cancelled,failed&metadata.region=eu', loads),
    };
    const plan = plans(join(dir.home, 'swarm.db'));
    const f = (n: number): string => n.toFixed(1);
    console.log(
      `\n${table(
        ['measurement', 'p50 ms', 'p99 ms', 'n', 'rows'],
        [
          ['API first page', f(api.first_page.p50_ms), f(api.first_page.p99_ms), String(api.first_page.n), String(api.first_page.rows)],
          ['API workflow=', f(api.workflow.p50_ms), f(api.workflow.p99_ms), String(api.workflow.n), String(api.workflow.rows)],
          ['API status=a,b + metadata', f(api.status_metadata.p50_ms), f(api.status_metadata.p99_ms), String(api.status_metadata.n), String(api.status_metadata.rows)],
          ['page first page (warm)', f(page.first_page.p50_ms), f(page.first_page.p99_ms), String(page.first_page.n), `cold ${f(page.first_page.cold_ms)}`],
          ['page filtered (warm)', f(page.filtered.p50_ms), f(page.filtered.p99_ms), String(page.filtered.n), `cold ${f(page.filtered.cold_ms)}`],
        ],
      )}`,
    );
    const met = page.first_page.p50_ms <= TARGET_PAGE_P50_MS;
    console.log(`\n${table(['target', 'goal', 'measured', ''], [['runs page first page p50', `≤ ${TARGET_PAGE_P50_MS} ms`, `${f(page.first_page.p50_ms)} ms`, met ? 'met' : 'MISSED']])}`);
    console.log('\nSQLite plans:');
    for (const [k, p] of Object.entries(plan)) console.log(`  ${k}: ${p}`);
    if (v['no-save'] !== true) {
      const outDir = join(REPO_ROOT, 'bench', 'results');
      mkdirSync(outDir, { recursive: true });
      const doc = { bench: 'dashboard-runs', when: new Date().toISOString(), git: gitState(), host: hostInfo(loadBefore), options: { runs, loads, reused: v.reuse !== undefined }, fill: filled, api, page, plans: plan, target: { page_first_p50_ms: TARGET_PAGE_P50_MS, met } };
      const stamp = doc.when.replace(/[:.]/g, '-');
      writeFileSync(join(outDir, `dashboard-runs-${stamp}.json`), `${JSON.stringify(doc, null, 2)}\n`);
      writeFileSync(join(outDir, 'dashboard-runs-latest.json'), `${JSON.stringify(doc, null, 2)}\n`);
    }
  } finally {
    if (server && server.exitCode === null) {
      const s = server;
      await new Promise<void>((done) => {
        s.once('exit', () => done());
        s.kill('SIGTERM');
      });
    }
    dir.remove();
  }
}

await main();
