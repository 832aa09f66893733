/**
 * `swarm knowledge export` as a user runs it: the real CLI in a child process, on a SQLite file
 * whose decisions were recorded through the Swarm's own knowledge store.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidateHash } from '../src/consensus/core/crypto.js';
import { jsonLines as lines, knowledgeCliProject, REPORT, type KnowledgeCliProject } from './helpers/knowledge-cli-project.js';
import { runCli } from './helpers/project.js';

let p: KnowledgeCliProject;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  p = await knowledgeCliProject();
  ({ dir, env } = p);
});

afterAll(() => p.close());

describe('swarm knowledge export', () => {
  it('writes a task type’s decisions to a JSONL file, newest first', async () => {
    const r = await runCli(['knowledge', 'export', '--task-type', 'summary', '--out', 'out/summary.jsonl'], dir, env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('exported 2 decisions to out/summary.jsonl');
    const got = lines(readFileSync(join(dir, 'out', 'summary.jsonl'), 'utf8'));
    expect(got.map((l) => l.task_id)).toEqual(['k2', 'k1']);
    expect(got[1]).toMatchObject({
      kind: 'swarm.knowledge.decision',
      task_type: 'summary',
      inputs: { prompt: REPORT },
      text: REPORT,
      candidate_hash: candidateHash({ summary: 'Sales rose.' }),
      output: { summary: 'Sales rose.' },
      cost: { total_usd: 0.033 },
      decided_at: '2026-01-01T00:00:00.000Z',
      run_id: 'run-k1',
    });
    expect(got[1]?.evidence.length).toBe(2);
    expect(got[1]?.proposers).toEqual([
      { proposer_id: 'executor:a', candidate_hash: candidateHash({ summary: 'Sales rose.' }), round: 1, won: true, verification: 'passed', cost_usd: 0.01 },
      { proposer_id: 'executor:b', candidate_hash: candidateHash({ summary: 'x' }), round: 1, won: false, verification: 'failed', cost_usd: 0.01 },
    ]);
    // No temp file left beside it.
    expect(readdirSync(join(dir, 'out'))).toEqual(['summary.jsonl']);
  });

  it('prints one task’s decision to standard output; the seed’s --task_type spelling works too', async () => {
    const r = await runCli(['knowledge', 'export', '--task-id', 'm1'], dir, env);
    expect(r.code).toBe(0);
    expect(lines(r.stdout).map((l) => [l.task_id, l.output])).toEqual([['m1', { n: 4 }]]);
    const seed = await runCli(['knowledge', 'export', '--task_type', 'math'], dir, env);
    expect(seed.code).toBe(0);
    expect(lines(seed.stdout).map((l) => l.task_id)).toEqual(['m1']);
  });

  it('refuses bad input with exit 2 and writes nothing', async () => {
    const both = await runCli(['knowledge', 'export', '--task-type', 'summary', '--task-id', 'k1', '--out', 'out/both.jsonl'], dir, env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/either --task-type or --task-id, not both/);
    const neither = await runCli(['knowledge', 'export', '--out', 'out/neither.jsonl'], dir, env);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/give --task-type <type> .* or --task-id <id>/);
    const noDir = await runCli(['knowledge', 'export', '--task-type', 'summary', '--out', 'missing/dir/x.jsonl'], dir, env);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/cannot write --out missing\/dir\/x\.jsonl: its directory does not exist/);
    // An unknown task id: exit 2, and an existing file is left as it was.
    writeFileSync(join(dir, 'out', 'keep.jsonl'), 'previous\n');
    const unknown = await runCli(['knowledge', 'export', '--task-id', 'nope', '--out', 'out/keep.jsonl'], dir, env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no decision of task 'nope'/);
    expect(readFileSync(join(dir, 'out', 'keep.jsonl'), 'utf8')).toBe('previous\n');
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['keep.jsonl', 'summary.jsonl']);
    expect(existsSync(join(dir, 'out', 'both.jsonl')) || existsSync(join(dir, 'out', 'neither.jsonl'))).toBe(false);
  });
});
