/**
 * What the guardrails cost per LLM turn. `npm run bench:guardrails` (= build + `node dist/bench/guardrails.js`);
 * see bench/README.md.
 *
 *   node dist/bench/guardrails.js [--quick] [--conversations N] [--turns N] [--repeat N] [--durability process|full] [--no-save]
 *
 * Two projects in one process, the same agent and the same scripted conversation: `off` has no
 * `guardrails:`; `on` has all of them (a run budget, circuit breakers, the injection policy with its
 * built-in patterns over every tool result, and redaction of every data class, stored and shown to
 * the model). Each conversation is one run of a one-step workflow whose `llm` step makes `turns`
 * tool calls (a module tool returning text, so every result is untrusted and scanned) and answers.
 * The two alternate conversation by conversation, so load on the machine falls on both alike; the
 * per-turn cost is the run's wall time ÷ turns, medians over the conversations; the overhead is the
 * difference of the medians (the goal: ≤ 0.1 ms per turn). The process's CPU time per turn is
 * reported beside it: on a loaded machine wall time inflates, CPU time much less.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Swarm } from '../src/swarm.js';
import { ScriptedModel } from '../src/testing/scripted-model.js';
import type { ModelRequest } from '../src/agents/types.js';
import { benchOptions, COMMON_OPTIONS, intOption, namesOption } from './args.js';
import { freshDir, median, REPO_ROOT } from './harness.js';
import { table } from './report.js';
import { gitState, hostInfo } from './runner.js';

const USAGE = `usage: node dist/bench/guardrails.js [options]
  --quick              smoke: 40 conversations, 1 repetition
  --conversations <n>  conversations per side per repetition (default 200)
  --turns <n>          tool-calling turns per conversation (default 10), then one final answer
  --durability <d>     process (default) or full
  --only <sections>    turn on only these of budget, breakers, policy, redaction (default: all)
  --repeat <n>         repetitions (default 3; --quick 1); medians over all conversations
  --no-save            do not write bench/results/guardrails-*.json`;

/** The guardrails of the `on` side, by section: every one of them, with limits the conversation never reaches. */
const SECTIONS = {
  budget: `  budget:
    tokens_in: 100000000
    tokens_out: 100000000
    cost_usd: 1000000
    model_calls: 1000000
    tool_calls: 1000000
    wall_clock: 1h
    handoff_depth: 10
`,
  breakers: `  breakers:
    failures: 5
    window: 60s
    cooldown: 30s
`,
  policy: `  policy:
    injection:
      action: sanitize
`,
  redaction: `  redaction:
    email: redact
    phone: redact
    card: mask
    iban: redact
    national_id: redact
    api_key: redact
    model:
      email: redact
      card: redact
`,
} as const;
type Section = keyof typeof SECTIONS;

/** The `off` side: every guardrail off, also those on by default (breakers; the redaction of API keys and cards). */
const GUARDRAILS_OFF = `guardrails:
  breakers: { enabled: false }
  redaction: { api_key: allow, card: allow }
`;

function onConfig(sections: readonly Section[]): string {
  const all = Object.keys(SECTIONS) as Section[];
  // A section left out is off, as on the `off` side.
  const off = { breakers: '  breakers: { enabled: false }\n', redaction: '  redaction: { api_key: allow, card: allow }\n' } as Partial<Record<Section, string>>;
  return `guardrails:\n${all.map((k) => (sections.includes(k) ? SECTIONS[k] : (off[k] ?? ''))).join('')}`;
}

const TOOLS_JS = `export const lookup = {
  name: 'lookup',
  description: 'Look an order up',
  parameters: { type: 'object', properties: { order: { type: 'number' } }, required: ['order'] },
  execute: ({ order }) => 'Order ' + order + ': shipped on Monday to the customer at the usual address; tracking number ZX' + (1000 + order) + '. Nothing else to report.',
};
`;

interface Side {
  name: 'off' | 'on';
  swarm: Swarm;
  perTurnMs: number[];
  /** CPU time of the process per turn (µs), measured around each conversation: what load on the machine does not inflate. */
  cpuPerTurnUs: number[];
}

async function openSide(name: Side['name'], base: string, durability: string, turns: number, sections: readonly Section[]): Promise<Side> {
  const dir = join(base, name);
  mkdirSync(join(dir, 'agents', 'clerk'), { recursive: true });
  mkdirSync(join(dir, 'workflows', 'ask'), { recursive: true });
  writeFileSync(join(dir, 'swarm.yaml'), `durability: ${durability}\n${name === 'on' ? onConfig(sections) : GUARDRAILS_OFF}`);
  writeFileSync(join(dir, 'agents', 'clerk', 'agent.yaml'), 'name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: openai, model: gpt-4o-mini, max_output_tokens: 256 }\ninstructions: You look orders up.\nmax_turns: 100\ntools:\n  - module: tools.mjs\n');
  writeFileSync(join(dir, 'agents', 'clerk', 'tools.mjs'), TOOLS_JS);
  writeFileSync(join(dir, 'workflows', 'ask', 'workflow.yaml'), 'name: ask\nversion: 1.0.0\nsteps:\n  - { id: answer, agent: clerk, inputs: { message: "${trigger.q}" } }\n');
  // The same script for every conversation: `turns` lookups, then the answer.
  const script = (_req: ModelRequest, i: number) =>
    i < turns ? { toolCalls: [{ id: `call_${i}`, name: 'lookup', arguments: { order: i } }], usage: { input_tokens: 200 + 40 * i, output_tokens: 20 } } : { content: 'All orders shipped.', usage: { input_tokens: 200 + 40 * i, output_tokens: 8 } };
  const swarm = await Swarm.open({
    cwd: dir,
    env: { SWARM_HOME: join(dir, '.swarm') },
    providerEnv: { OPENAI_API_KEY: 'sk-bench' },
    // A fresh scripted model per step (its call index restarts with each conversation).
    models: () => new ScriptedModel(script, { id: 'openai/gpt-4o-mini', record: false }),
  });
  await swarm.registerAgent(join(dir, 'agents', 'clerk'));
  await swarm.registerWorkflow(join(dir, 'workflows', 'ask'));
  return { name, swarm, perTurnMs: [], cpuPerTurnUs: [] };
}

async function conversation(side: Side, n: number, turns: number, measured: boolean): Promise<void> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const id = await side.swarm.startRun('ask', { q: `Where are my orders? (conversation ${n}, write to ada@example.com)` });
  const { run } = await side.swarm.runToCompletion(id);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  if (run.status !== 'completed') throw new Error(`${side.name}: run ${id} ended ${run.status}: ${run.error ?? ''}`);
  if (measured) {
    side.perTurnMs.push(ms / turns);
    side.cpuPerTurnUs.push((used.user + used.system) / turns);
  }
}

async function main(): Promise<void> {
  const v = benchOptions(process.argv.slice(2), { ...COMMON_OPTIONS, conversations: { type: 'string' }, turns: { type: 'string' }, durability: { type: 'string' }, only: { type: 'string' } }, USAGE);
  const sections = v.only === undefined ? (Object.keys(SECTIONS) as Section[]) : (namesOption(v.only, '--only', Object.keys(SECTIONS) as Section[]) as ReadonlySet<Section>);
  const on = [...sections];
  const quick = v.quick ?? false;
  const conversations = intOption(v.conversations, '--conversations', 1) ?? (quick ? 40 : 200);
  const turns = intOption(v.turns, '--turns', 1) ?? 10;
  const repeat = intOption(v.repeat, '--repeat', 1) ?? (quick ? 1 : 3);
  const durability = v.durability ?? 'process';
  if (durability !== 'process' && durability !== 'full') throw new Error('--durability must be process or full');
  const loadBefore = loadavg();
  const dir = freshDir('guardrails', v.dir, v.keep ?? false);
  const sides = [await openSide('off', dir.root, durability, turns, on), await openSide('on', dir.root, durability, turns, on)];
  try {
    // Warm-up: JIT, caches, the provider SDK's first load.
    for (let n = 0; n < Math.max(5, conversations / 10); n++) for (const s of sides) await conversation(s, n, turns, false);
    for (let rep = 0; rep < repeat; rep++) {
      for (let n = 0; n < conversations; n++) {
        // Alternate which side goes first, so neither always runs right after the other's commit.
        const order = n % 2 === 0 ? sides : [...sides].reverse();
        for (const s of order) await conversation(s, n, turns, true);
      }
    }
  } finally {
    for (const s of sides) await s.swarm.close();
    dir.remove();
  }
  const [off, onSide] = sides as [Side, Side];
  const offMs = median(off.perTurnMs);
  const onMs = median(onSide.perTurnMs);
  const overheadMs = onMs - offMs;
  const offCpuUs = median(off.cpuPerTurnUs);
  const onCpuUs = median(onSide.cpuPerTurnUs);
  const result = {
    bench: 'guardrails',
    durability,
    sections: on,
    conversations: conversations * repeat,
    turns,
    off_ms_per_turn: offMs,
    on_ms_per_turn: onMs,
    overhead_ms_per_turn: overheadMs,
    ratio: onMs / offMs,
    off_cpu_us_per_turn: offCpuUs,
    on_cpu_us_per_turn: onCpuUs,
    overhead_cpu_us_per_turn: onCpuUs - offCpuUs,
    goal_ms_per_turn: 0.1,
    host: hostInfo(loadBefore),
    git: gitState(),
  };
  console.log(
    table(
      ['side', 'conversations', 'turns', 'median ms/turn', 'vs off', 'CPU µs/turn'],
      [
        ['off (no guardrails)', String(off.perTurnMs.length), String(turns), offMs.toFixed(3), '1.00×', offCpuUs.toFixed(0)],
        [`on (${on.join(', ')})`, String(onSide.perTurnMs.length), String(turns), onMs.toFixed(3), `${(onMs / offMs).toFixed(2)}×`, onCpuUs.toFixed(0)],
      ],
      1,
    ),
  );
  console.log(`\noverhead: ${(overheadMs * 1000).toFixed(0)} µs per turn (goal ≤ 100 µs) — ${overheadMs <= 0.1 ? 'met' : 'missed'}; CPU: ${(onCpuUs - offCpuUs).toFixed(0)} µs per turn`);
  if (!(v['no-save'] ?? false)) {
    const out = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `guardrails-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    writeFileSync(join(out, 'guardrails-latest.json'), JSON.stringify(result, null, 2));
    console.log(`wrote ${file}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
