/**
 * Acknowledged messages per second through the SW4RM router, with durable storage and consumer ACKs.
 * `npm run bench:sw4rm` (= build + `node dist/bench/sw4rm.js`); see bench/README.md, "SW4RM".
 *
 *   node dist/bench/sw4rm.js [--quick] [--messages N] [--producers 1,16] [--targets floor,sqlite,postgres]
 *                            [--windows 0,2] [--repeat N] [--profile DIR] [--no-save]
 *
 * Each target is a server process: `swarm sw4rm serve` on SQLite (`durability: full`, per commit
 * window) or on PostgreSQL (an embedded server, fsync on), and the floor — the same RouterService
 * served from memory (bench/sw4rm-floor.ts). This process is the load: P producers, each sending
 * DATA envelopes one after another (SendMessage, target in metadata), and one consumer that streams
 * them (StreamIncoming) and acknowledges each (AckDelivery) as it arrives. A measurement is N
 * messages after an unmeasured warm-up; msgs/s = N ÷ (first send → last AckDelivery answered);
 * latency = send call → the item read off the consumer's stream. Medians of the repetitions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { buildEnvelope } from '../src/sw4rm/core/envelope.js';
import { RegistryClient } from '../src/sw4rm/client/registry-client.js';
import { RouterClient } from '../src/sw4rm/client/router-client.js';
import { benchOptions, COMMON_OPTIONS, countsOption, intOption, namesOption } from './args.js';
import { freshDir, median, nowMs, percentile, REPO_ROOT, type BenchDir } from './harness.js';
import { startBenchServer, type BenchServer } from './pg-server.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';

const USAGE = `usage: node dist/bench/sw4rm.js [options]
  --quick              smoke: 1,000 messages, 1 repetition
  --messages <n>       messages per measurement (default 5,000)
  --producers <list>   producer counts (default 1,16)
  --targets <list>     of floor, sqlite, postgres (default: all)
  --windows <list>     SQLite commit windows in ms (default 0,2)
  --repeat <n>         repetitions (default 3; --quick 1); medians are reported
  --profile <dir>      write a V8 CPU profile of every server process to <dir>
  --dir <path>         temp directories here
  --keep               keep the temp directories
  --no-save            do not write bench/results/sw4rm-*.json`;

const TARGETS = ['floor', 'sqlite', 'postgres'] as const;
type TargetKind = (typeof TARGETS)[number];
const GOAL_MSGS_PER_S = 5_000;
const GOAL_P50_MS = 2;

interface Target {
  kind: TargetKind;
  windowMs?: number;
  label: string;
}

interface Server {
  pid: number;
  router: string;
  registry: string | undefined;
  stop(): Promise<void>;
}

interface Measurement {
  target: string;
  producers: number;
  messages: number;
  wall_ms: number;
  msgs_per_s: number;
  p50_ms: number;
  p99_ms: number;
  redelivered: number;
  client_cpu_pct: number;
  /** CPU time of the server process per acknowledged message (user + system). */
  server_cpu_ms_per_msg: number;
}

/**
 * CPU time (user + system, ms) a process has used so far, from /proc (Linux; NaN elsewhere). On a
 * loaded machine wall-clock throughput says more about the neighbours than about the router; CPU per
 * message does not.
 */
function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}
const CLOCK_TICKS = 100;

function waitForLine(child: ChildProcess, re: RegExp, what: string): Promise<RegExpMatchArray> {
  let out = '';
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = re.exec(out);
      if (m) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it listened: ${err.trim().slice(-2000)}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startServer(t: Target, pg: BenchServer | undefined, base: string | undefined, keep: boolean, profile: string | undefined): Promise<Server> {
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=sw4rm-${t.label}-${Date.now()}.cpuprofile`] : [];
  if (t.kind === 'floor') {
    const child = spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, 'dist', 'bench', 'sw4rm-floor.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const m = await waitForLine(child, /floor port (\d+)/, 'the floor server');
    return { pid: child.pid!, router: `127.0.0.1:${m[1]}`, registry: undefined, stop: () => stopChild(child) };
  }
  const dir: BenchDir = freshDir(`sw4rm-${t.label}`, base, keep);
  writeFileSync(join(dir.root, 'swarm.yaml'), `name: bench\ndurability: full\n${t.windowMs !== undefined ? `commit_window_ms: ${t.windowMs}\n` : ''}`);
  const db = t.kind === 'postgres' ? await pg!.createDatabase('router') : undefined;
  const env = { ...process.env, SWARM_HOME: dir.home, NO_COLOR: '1', ...(db ? { SWARM_DATABASE_URL: db } : {}) };
  const child = spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, 'bin', 'swarm.js'), 'sw4rm', 'serve', '--router', '0', '--registry', '0', '--scheduler', '0'], { cwd: dir.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const m = await waitForLine(child, /router [\d.]+:(\d+), registry [\d.]+:(\d+)/, 'swarm sw4rm serve');
  return {
    pid: child.pid!,
    router: `127.0.0.1:${m[1]}`,
    registry: `127.0.0.1:${m[2]}`,
    stop: async () => {
      await stopChild(child);
      if (db) await pg!.dropDatabase(db);
      dir.remove();
    },
  };
}

/** Send `messages` from `producers` closed-loop producers to one consumer that ACKs each delivery. */
async function measure(server: Server, label: string, producers: number, messages: number): Promise<Omit<Measurement, 'target'>> {
  const consumer = `bench-consumer-${randomUUID().slice(0, 8)}`;
  const registry = server.registry ? new RegistryClient({ address: server.registry }) : undefined;
  await registry?.register({ agent_id: consumer, name: 'bench consumer' });
  const inbound = new RouterClient({ address: server.router });
  const senders = Array.from({ length: producers }, () => new RouterClient({ address: server.router }));
  const abort = new AbortController();
  const sentAt = new Map<string, number>();
  const seen = new Set<string>();
  const latencies: number[] = [];
  let redelivered = 0;
  let acked = 0;
  let wanted = 0;
  let allAcked: (() => void) | undefined;
  let failed: ((e: unknown) => void) | undefined;
  const consume = (async () => {
    for await (const { msg, seq } of inbound.streamIncoming(consumer, { signal: abort.signal })) {
      const t = nowMs();
      if (seen.has(msg.message_id)) redelivered += 1;
      else {
        seen.add(msg.message_id);
        const s = sentAt.get(msg.message_id);
        if (s !== undefined) latencies.push(t - s);
      }
      inbound.ackDelivery(consumer, seq, msg.message_id).then(
        () => {
          acked += 1;
          if (acked >= wanted) allAcked?.();
        },
        (e: unknown) => failed?.(e),
      );
    }
  })();
  const payload = Buffer.from(JSON.stringify({ bench: label, filler: 'x'.repeat(64) }));
  const round = async (n: number): Promise<number> => {
    acked = 0;
    wanted = n;
    latencies.length = 0;
    const done = new Promise<void>((resolve, reject) => {
      allAcked = resolve;
      failed = reject;
    });
    const started = nowMs();
    await Promise.all(
      senders.map(async (router, p) => {
        const count = Math.floor(n / producers) + (p < n % producers ? 1 : 0);
        for (let i = 0; i < count; i++) {
          const env = buildEnvelope({ producer_id: `bench-producer-${p}`, message_type: 'DATA', payload, correlation_id: consumer, sequence_number: i + 1 });
          sentAt.set(env.message_id, nowMs());
          await router.sendMessage(env, { to: consumer });
        }
      }),
    );
    await done;
    return nowMs() - started;
  };
  try {
    await round(Math.min(500, messages)); // warm-up: JIT, connections, the consumer's stream open
    const cpu0 = process.cpuUsage();
    const server0 = processCpuMs(server.pid);
    const wall = await round(messages);
    const cpu = process.cpuUsage(cpu0);
    const serverMs = processCpuMs(server.pid) - server0;
    return {
      producers,
      messages,
      wall_ms: wall,
      msgs_per_s: (messages * 1000) / wall,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      redelivered,
      client_cpu_pct: ((cpu.user + cpu.system) / 1000 / wall) * 100,
      server_cpu_ms_per_msg: serverMs / messages,
    };
  } finally {
    abort.abort();
    await consume.catch(() => undefined);
    await registry?.deregister(consumer, 'bench done').catch(() => undefined);
    for (const c of [inbound, ...senders]) c.close();
    registry?.close();
  }
}

async function main(): Promise<void> {
  const v = benchOptions(process.argv.slice(2), { ...COMMON_OPTIONS, messages: { type: 'string' }, producers: { type: 'string' }, targets: { type: 'string' }, windows: { type: 'string' }, profile: { type: 'string' } }, USAGE);
  const quick = v.quick ?? false;
  const messages = intOption(v.messages, '--messages', 10) ?? (quick ? 1_000 : 5_000);
  const repeat = intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 3);
  const producerCounts = v.producers ? countsOption(v.producers, '--producers') : [1, 16];
  const kinds = v.targets ? namesOption(v.targets, '--targets', TARGETS) : new Set<TargetKind>(TARGETS);
  const windows = v.windows ? v.windows.split(',').map((w) => intOption(w.trim(), '--windows', 0, 10) as number) : [0, 2];
  if (v.profile) mkdirSync(v.profile, { recursive: true });
  const targets: Target[] = [];
  if (kinds.has('floor')) targets.push({ kind: 'floor', label: 'floor' });
  if (kinds.has('sqlite')) for (const w of windows) targets.push({ kind: 'sqlite', windowMs: w, label: `sqlite-full-w${w}` });
  if (kinds.has('postgres')) targets.push({ kind: 'postgres', label: 'postgres' });
  const loadBefore = loadavg();
  const pg = kinds.has('postgres') ? await startBenchServer({ base: v.dir, stats: false, log: (l) => console.log(l) }) : undefined;
  const reps = new Map<string, Measurement[]>();
  try {
    for (let rep = 0; rep < repeat; rep++) {
      for (const t of targets) {
        // A fresh server (and store) per target and repetition; both producer counts on it.
        const server = await startServer(t, pg, v.dir, v.keep ?? false, v.profile);
        try {
          for (const p of producerCounts) {
            const m = { target: t.label, ...(await measure(server, t.label, p, messages)) };
            const key = `${t.label}/${p}`;
            reps.set(key, [...(reps.get(key) ?? []), m]);
            console.log(`  rep ${rep + 1}/${repeat} ${key}: ${Math.round(m.msgs_per_s)} msgs/s, p50 ${m.p50_ms.toFixed(2)} ms, p99 ${m.p99_ms.toFixed(2)} ms`);
          }
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    await pg?.stop();
  }
  const medians = [...reps.entries()].map(([key, ms]) => ({
    key,
    target: ms[0]!.target,
    producers: ms[0]!.producers,
    msgs_per_s: median(ms.map((m) => m.msgs_per_s)),
    p50_ms: median(ms.map((m) => m.p50_ms)),
    p99_ms: median(ms.map((m) => m.p99_ms)),
    redelivered: Math.max(...ms.map((m) => m.redelivered)),
    client_cpu_pct: median(ms.map((m) => m.client_cpu_pct)),
    server_cpu_ms_per_msg: median(ms.map((m) => m.server_cpu_ms_per_msg)),
  }));
  const floorOf = (p: number): number | undefined => medians.find((m) => m.target === 'floor' && m.producers === p)?.msgs_per_s;
  const rows = medians.map((m) => {
    const f = floorOf(m.producers);
    return [m.target, String(m.producers), Math.round(m.msgs_per_s).toLocaleString('en-US'), m.p50_ms.toFixed(2), m.p99_ms.toFixed(2), f && m.target !== 'floor' ? `${(m.msgs_per_s / f).toFixed(2)}×` : '-', m.server_cpu_ms_per_msg.toFixed(3), Math.round(1000 / m.server_cpu_ms_per_msg).toLocaleString('en-US'), `${m.client_cpu_pct.toFixed(0)}%`];
  });
  const load = loadavg()[0]!;
  console.log(`\n${messages.toLocaleString('en-US')} messages per measurement, ${repeat} repetition(s), medians; load average ${load.toFixed(1)} on ${cpus().length} cores`);
  if (load > cpus().length) console.log('warning: the machine is busier than its cores: msgs/s and latencies measure the neighbours too; compare ÷floor and CPU per message');
  console.log('');
  console.log(table(['target', 'producers', 'acked msgs/s', 'p50 ms', 'p99 ms', '÷floor', 'server CPU ms/msg', 'msgs/s per server core', 'load CPU'], rows));
  const sqlite = medians.filter((m) => m.target.startsWith('sqlite'));
  const best = sqlite.reduce<(typeof medians)[number] | undefined>((a, m) => (!a || m.msgs_per_s > a.msgs_per_s ? m : a), undefined);
  const p50One = sqlite.filter((m) => m.producers === 1).reduce((a, m) => Math.min(a, m.p50_ms), Number.POSITIVE_INFINITY);
  const goals = {
    throughput: best ? { goal: GOAL_MSGS_PER_S, best: best.msgs_per_s, at: best.key, met: best.msgs_per_s >= GOAL_MSGS_PER_S } : null,
    p50: Number.isFinite(p50One) ? { goal_ms: GOAL_P50_MS, best_one_producer_ms: p50One, met: p50One <= GOAL_P50_MS } : null,
  };
  if (goals.throughput) console.log(`\ntarget ≥ ${GOAL_MSGS_PER_S.toLocaleString('en-US')} acked msgs/s on SQLite: best ${Math.round(goals.throughput.best).toLocaleString('en-US')} (${goals.throughput.at}) — ${goals.throughput.met ? 'met' : 'missed'}`);
  if (goals.p50) console.log(`target p50 ≤ ${GOAL_P50_MS} ms on SQLite (1 producer): ${goals.p50.best_one_producer_ms.toFixed(2)} ms — ${goals.p50.met ? 'met' : 'missed'}`);
  const result = { bench: 'sw4rm', messages, repeat, producers: producerCounts, windows, medians, repetitions: Object.fromEntries(reps), goals, postgres: pg ? { kind: pg.kind } : null, host: hostInfo(loadBefore), git: gitState() };
  if (!(v['no-save'] ?? false)) {
    const out = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `sw4rm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    writeFileSync(join(out, 'sw4rm-latest.json'), JSON.stringify(result, null, 2));
    console.log(`wrote ${file}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
