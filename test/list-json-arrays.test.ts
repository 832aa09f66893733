/**
 * `swarm executors list`, `memory list`, `memory search`, `knowledge search` and `knowledge track`
 * with `--json` print what `runs list --json` and the other list commands print: a bare JSON array
 * of rows, `[]` when there are none (not an object wrapping the list). The store is a real SQLite
 * file, seeded through the store's and the knowledge store's own calls (two executors, three
 * memories, three decisions embedded by the fake vendor server); the commands are real `swarm`
 * processes. Build first (`npm run build`): the CLI runs from dist/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knowledgeForSwarm } from '../src/consensus/knowledge/swarm.js';
import { Swarm } from '../src/swarm.js';
import { fakeEmbedding } from '../src/testing/fake-embeddings.js';
import { startFakeLlmServer, type FakeLlmServer } from '../src/testing/fake-llm-server.js';
import { cleanupSandboxes, makeSandbox, type Sandbox } from './helpers/cli.js';
import { finalized } from './helpers/knowledge-fixtures.js';

type Rows = Array<Record<string, unknown>>;

let fake: FakeLlmServer;
/** The model the memories and decisions are embedded with, and where the CLI finds it. */
let providers: Record<string, string>;

beforeAll(async () => {
  fake = await startFakeLlmServer();
  providers = { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl, SWARM_KNOWLEDGE_EMBEDDING: 'openai/text-embedding-3-small' };
});

afterAll(async () => {
  await fake.close();
  cleanupSandboxes();
});

const LISTS = [
  ['executors', 'list', '--json'],
  ['memory', 'list', 'ada', '--json'],
  ['memory', 'search', 'ada', 'which tea does ada prefer', '--k', '1', '--json'],
  ['knowledge', 'search', 'quarterly sales report for the board members', '--limit', '2', '--json'],
  ['knowledge', 'track', '--json'],
];

const sandbox = (): Sandbox => makeSandbox({ env: providers });

describe('the --json of swarm executors list, memory list and search, knowledge search and track', () => {
  it('is a JSON array of rows, as runs list prints', async () => {
    const s = sandbox();
    const swarm = await Swarm.open({ cwd: s.root, env: { ...s.env, SWARM_SANDBOX: 'none' }, providerEnv: providers });
    try {
      await swarm.store.putExecutor({ name: 'rt', base_url: 'http://127.0.0.1:8787', token_secret: 'RT_TOKEN', public_key: null });
      await swarm.store.putExecutor({ name: 'down', base_url: 'http://127.0.0.1:1', token_secret: null, public_key: null });
      const t0 = Date.UTC(2026, 0, 1);
      for (const [i, [ns, text]] of ([['ada', 'Ada prefers green tea'], ['ada', 'Ada lives in Lyon'], ['bob', 'Bob prefers coffee']] as const).entries()) {
        await swarm.store.putMemory({ namespace: ns, text, metadata: { embedding_model: 'openai/text-embedding-3-small' }, source: 'explicit', run_id: null, step_id: null, session_id: null, dedup_key: `m${i}`, created_at: t0 + i * 1000, embedding: fakeEmbedding(text) });
      }
      const k = knowledgeForSwarm(swarm, providers);
      const recorded = [
        await k.record(finalized({ task_id: 'k1', task_type: 'summary', inputs: { prompt: 'Summarise the quarterly sales report for the board' } }, [{ proposer: 'executor:a', output: { summary: 'Sales rose.' } }, { proposer: 'executor:b', output: { summary: 'x' }, verdicts: ['failed'] }], 0, t0)),
        await k.record(finalized({ task_id: 'k2', task_type: 'summary', inputs: { prompt: 'Translate a short poem into French' } }, [{ proposer: 'executor:a', output: { summary: 'Poème.' } }], 0, t0 + 1000)),
        await k.record(finalized({ task_id: 'm1', task_type: 'math', inputs: { q: 'quarterly sales growth' } }, [{ proposer: 'agent:calc#1', output: { n: 4 } }], 0, t0 + 2000)),
      ];
      expect(recorded.map((r) => r.indexed)).toEqual([true, true, true]);
    } finally {
      await swarm.close();
    }

    // Independent commands at once: each CLI start costs seconds on a loaded machine.
    const [executors, memories, hits, decisions, track] = await Promise.all(LISTS.map((args) => s.json<Rows>(args)));
    for (const [i, out] of [executors, memories, hits, decisions, track].entries()) expect(Array.isArray(out), `swarm ${LISTS[i]!.join(' ')} prints an array`).toBe(true);
    expect(executors!.map((e) => [e.name, e.base_url, e.token_secret, e.public_key])).toEqual([
      ['down', 'http://127.0.0.1:1', null, null],
      ['rt', 'http://127.0.0.1:8787', 'RT_TOKEN', null],
    ]);
    // (The decisions are memories too, in namespaces knowledge:<task type>: the list is of one namespace.)
    expect(memories!.map((m) => [m.namespace, m.text, m.source, m.created_at])).toEqual([
      ['ada', 'Ada lives in Lyon', 'explicit', '2026-01-01T00:00:01.000Z'],
      ['ada', 'Ada prefers green tea', 'explicit', '2026-01-01T00:00:00.000Z'],
    ]);
    expect(hits!.map((m) => [m.namespace, m.text])).toEqual([['ada', 'Ada prefers green tea']]);
    expect(hits![0]!.score).toBeGreaterThan(0.2);
    expect(decisions!.map((d) => [d.task_id, d.task_type, d.output])).toEqual([
      ['k1', 'summary', { summary: 'Sales rose.' }],
      ['m1', 'math', { n: 4 }],
    ]);
    expect(decisions![0]!.score).toBeGreaterThan(0.7);
    expect(track!.map((t) => [t.task_type, t.proposer_id, t.proposed, t.won, t.failed, t.inconclusive])).toEqual([
      ['math', 'agent:calc#1', 1, 1, 0, 0],
      ['summary', 'executor:a', 2, 2, 0, 0],
      ['summary', 'executor:b', 1, 0, 1, 0],
    ]);
    expect(track![0]!.updated_at).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('is [] when there is nothing to list, as for runs list', async () => {
    const s = sandbox();
    // The first command makes the store; the others then read it side by side.
    const first = await s.json<unknown>(['runs', 'list', '--json']);
    const rest = await Promise.all(LISTS.map((args) => s.json<unknown>(args)));
    expect([first, ...rest]).toEqual([[], [], [], [], [], []]);
  });
});
