/**
 * Summarise V8 .cpuprofile files: top functions by self time, and self time per source file.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/run.js --only linear --durability full --repeat 1
 *   node dist/bench/profile-summary.js /tmp/prof/*.cpuprofile [--top 30]
 *
 * (--cpu-prof is passed on to the per-measurement child processes, so each writes its own profile.)
 * V8 samples on wall-clock ticks, so time blocked inside a synchronous better-sqlite3 call (a COMMIT's
 * fsync included) is charged to that native function (`run`, `get`, `all`, `exec`); `(idle)` is the
 * event loop waiting (timers, I/O).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface Row {
  name: string;
  ms: number;
}

function shortUrl(url: string): string {
  if (!url) return '';
  const i = url.indexOf('/dist/');
  if (i >= 0) return url.slice(i + '/dist/'.length);
  const j = url.indexOf('/node_modules/');
  if (j >= 0) return url.slice(j + 1);
  return url.replace(/^file:\/\//, '');
}

const INSPECTOR = 'inspector (the profiler starting/stopping; not counted in the total)';

/** Coarse buckets for "where does the time go": SQLite calls vs engine JavaScript vs Node internals. */
const CATEGORIES: Array<[string, (f: CallFrame, url: string) => boolean]> = [
  ['SQLite: BEGIN/COMMIT (db.exec; the fsync at full)', (f) => f.functionName === 'exec' && !f.url],
  ['SQLite: statements (run/get/all, native)', (f) => !f.url && ['run', 'get', 'all', 'iterate'].includes(f.functionName)],
  ['better-sqlite3 JS wrappers', (_f, u) => u.includes('better-sqlite3')],
  ['garbage collector', (f) => f.functionName === '(garbage collector)'],
  ['idle (event loop waiting)', (f) => f.functionName === '(idle)'],
  ['crypto (sha256 of events/outputs, randomBytes)', (f, u) => u.includes('internal/crypto') || u === 'node:crypto' || (!f.url && ['Hash', 'digest', 'update', 'randomFillSync', 'RandomBytesJob'].includes(f.functionName))],
  ['AbortController / AbortSignal.any / EventTarget', (_f, u) => u.includes('abort_controller') || u.includes('event_target') || u.includes('per_context/primordials')],
  ['timers (setTimeout/clearTimeout)', (f, u) => u.includes('timers') || f.functionName === 'getLibuvNow' || f.functionName === 'toggleTimerRef'],
  ['engine: src/engine/ledger', (_f, u) => u.includes('src/engine/ledger')],
  ['engine: src/engine/worker', (_f, u) => u.includes('src/engine/worker')],
  ['engine: src/engine/step-runner', (_f, u) => u.includes('src/engine/step-runner')],
  ['engine: src/engine/plan (plan parse/cache)', (_f, u) => u.includes('src/engine/plan')],
  ['store JS: src/store/sqlite', (_f, u) => u.includes('src/store/')],
  ['startRun & registry: src/swarm, semver, manifests', (_f, u) => u.includes('src/swarm') || u.includes('semver') || u.includes('src/core/manifest')],
  ['ajv validation / templates / conditions', (f, u) => u.includes('ajv') || u.includes('src/core/') || /^validate\d+$/.test(f.functionName)],
  ['benchmark harness', (_f, u) => u.includes('bench/')],
  [INSPECTOR, (f, u) => f.functionName === 'dispatch' || u.includes('inspector')],
  ['(program) / native other', (f) => f.functionName === '(program)' || !f.url],
];

function category(f: CallFrame): string {
  const url = shortUrl(f.url);
  for (const [name, test] of CATEGORIES) if (test(f, url)) return name;
  return 'other JS (node internals, promises)';
}

export function summarise(profile: Profile, top: number): { totalMs: number; functions: Row[]; files: Row[]; stacks: Row[]; categories: Row[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const stack = new Map<string, number>();
  const cat = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    const c = category(f);
    cat.set(c, (cat.get(c) ?? 0) + ms);
    const where = shortUrl(f.url);
    const name = `${f.functionName || '(anonymous)'}${where ? ` ${where}:${f.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const fileKey = where || f.functionName;
    file.set(fileKey, (file.get(fileKey) ?? 0) + ms);
    // Native better-sqlite3 calls: attribute to the nearest JS caller so the statement site is visible.
    if (!f.url && f.functionName && !f.functionName.startsWith('(')) {
      let p = parent.get(id);
      const chain: string[] = [];
      while (p !== undefined && chain.length < 3) {
        const pf = byId.get(p)?.callFrame;
        if (pf?.url) chain.push(`${pf.functionName || '(anonymous)'} ${shortUrl(pf.url)}:${pf.lineNumber + 1}`);
        p = parent.get(p);
      }
      const k = `${f.functionName} ← ${chain.join(' ← ')}`;
      stack.set(k, (stack.get(k) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>): Row[] =>
    [...m.entries()]
      .map(([name, ms]) => ({ name, ms }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top);
  // The profiler's own start/stop (Profiler.* dispatch) lands in the profile but not in the measured work.
  const own = cat.get(INSPECTOR) ?? 0;
  return { totalMs: (profile.endTime - profile.startTime) / 1000 - own, functions: sorted(fn), files: sorted(file), stacks: sorted(stack), categories: sorted(cat) };
}

function main(argv: readonly string[]): void {
  let top = 25;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--top') top = Number(argv[++i]);
    else files.push(argv[i] as string);
  }
  if (files.length === 0) {
    console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile>... [--top N]');
    process.exitCode = 2;
    return;
  }
  for (const f of files) {
    const s = summarise(JSON.parse(readFileSync(f, 'utf8')) as Profile, top);
    const pct = (ms: number): string => `${((100 * ms) / s.totalMs).toFixed(1).padStart(5)}%`;
    console.log(`\n== ${basename(f)}: ${s.totalMs.toFixed(0)} ms profiled (percentages of that)`);
    console.log('-- self time by category');
    for (const r of s.categories) console.log(`${r.ms.toFixed(1).padStart(9)} ms ${pct(r.ms)}  ${r.name}`);
    console.log('-- self time by function');
    for (const r of s.functions) console.log(`${r.ms.toFixed(1).padStart(9)} ms ${pct(r.ms)}  ${r.name}`);
    console.log('-- self time by file');
    for (const r of s.files) console.log(`${r.ms.toFixed(1).padStart(9)} ms ${pct(r.ms)}  ${r.name}`);
    console.log('-- native (SQLite, crypto, …) self time by JS call site');
    for (const r of s.stacks) console.log(`${r.ms.toFixed(1).padStart(9)} ms ${pct(r.ms)}  ${r.name}`);
  }
}

main(process.argv.slice(2));
