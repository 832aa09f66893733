/**
 * `swarm knowledge search | track` as a user runs them: the real CLI in a child process, on a SQLite
 * file whose decisions were recorded (and embedded) through the Swarm's own knowledge store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knowledgeCliProject, type KnowledgeCliProject } from './helpers/knowledge-cli-project.js';
import { runCli } from './helpers/project.js';

let p: KnowledgeCliProject;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  p = await knowledgeCliProject();
  ({ dir, env } = p);
});

afterAll(() => p.close());

describe('swarm knowledge search and track', () => {
  it('searches decisions by text, across task types or in one', async () => {
    const r = await runCli(['knowledge', 'search', 'quarterly sales report for the board members', '--json'], dir, env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const decisions = JSON.parse(r.stdout) as Array<{ task_id: string; score: number; task_type: string; output: unknown }>;
    expect(decisions[0]).toMatchObject({ task_id: 'k1', task_type: 'summary', output: { summary: 'Sales rose.' } });
    expect(decisions[0]?.score).toBeGreaterThan(0.7);
    expect(decisions.map((d) => d.task_id)).toContain('m1');
    const one = await runCli(['knowledge', 'search', 'quarterly sales growth', '--task-type', 'math', '--limit', '1'], dir, env);
    expect(one.code).toBe(0);
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    expect(one.stdout).toMatch(/^1\.000 {2}2026-01-03 00:00:00 {2}math {2}m1 {2}/);
    const bad = await runCli(['knowledge', 'search', 'x', '--limit', 'lots'], dir, env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit must be a positive whole number, not 'lots'/);
  });

  it('says why a search finds nothing without an embedding model, and names the model when its provider fails', async () => {
    const { SWARM_KNOWLEDGE_EMBEDDING: _set, ...unset } = env;
    const none = await runCli(['knowledge', 'search', 'sales', '--task-type', 'nosuch'], dir, unset);
    expect(none.code).toBe(0);
    expect(none.stdout.trim()).toBe("no decisions of task type 'nosuch' near that text");
    expect(none.stderr).toContain('SWARM_KNOWLEDGE_EMBEDDING is not set');
    const quiet = await runCli(['knowledge', 'search', 'sales', '--task-type', 'nosuch'], dir, env);
    expect(quiet.stderr).toBe('');
    // The provider is not there: exit 4, the task type and where the model comes from named, no "unexpected error".
    const down = await runCli(['knowledge', 'search', 'sales', '--task-type', 'summary'], dir, { ...env, OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
    expect(down.code).toBe(4);
    expect(down.stderr).toContain("cannot search the decisions of task type 'summary': embedding the text failed");
    expect(down.stderr).toContain('SWARM_KNOWLEDGE_EMBEDDING');
    expect(down.stderr).not.toContain('unexpected error');
  }, 60_000);

  it('prints the track record', async () => {
    const r = await runCli(['knowledge', 'track', '--task-type', 'summary'], dir, env);
    expect(r.code).toBe(0);
    const out = r.stdout.trim().split('\n');
    expect(out[0]).toMatch(/^TASK TYPE\s+PROPOSER\s+PROPOSED\s+WON\s+WIN%\s+FAILED\s+INCONCLUSIVE$/);
    expect(out.slice(1).map((l) => l.split(/\s+/))).toEqual([
      ['summary', 'executor:a', '2', '2', '100%', '0', '0'],
      ['summary', 'executor:b', '1', '0', '0%', '1', '0'],
    ]);
    const json = await runCli(['knowledge', 'track', '--json'], dir, env);
    const trackRecord = JSON.parse(json.stdout) as Array<{ task_type: string; proposer_id: string; won: number }>;
    expect(trackRecord.map((t) => `${t.task_type}/${t.proposer_id}/${t.won}`)).toEqual(['math/agent:calc#1/1', 'summary/executor:a/2', 'summary/executor:b/0']);
  });
});
