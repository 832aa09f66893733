/**
 * `swarm knowledge` on PostgreSQL (SWARM_DATABASE_URL): export and the track record as on SQLite;
 * without pgvector on the server, decisions carry no vectors and search finds nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, knowledgeCliProject, type KnowledgeCliProject } from './helpers/knowledge-cli-project.js';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { runCli } from './helpers/project.js';

let p: KnowledgeCliProject;
let url: string;

beforeAll(async () => {
  const server = await pgTestServer();
  url = await server.createDatabase();
  p = await knowledgeCliProject(url);
});

afterAll(async () => {
  await p.close();
  await (await pgTestServer()).dropDatabase(url);
  await stopPgTestServer();
});

describe('swarm knowledge on PostgreSQL', () => {
  it('exports, prints the track record, and finds nothing to search without pgvector', async () => {
    const exp = await runCli(['knowledge', 'export', '--task-type', 'summary', '--out', 'out/s.jsonl'], p.dir, p.env);
    expect(exp.stderr).toBe('');
    expect(exp.code).toBe(0);
    expect(jsonLines(readFileSync(join(p.dir, 'out', 's.jsonl'), 'utf8')).map((l) => [l.task_id, l.proposers.length])).toEqual([
      ['k2', 1],
      ['k1', 2],
    ]);
    const track = await runCli(['knowledge', 'track', '--json'], p.dir, p.env);
    const trackRecord = JSON.parse(track.stdout) as Array<{ task_type: string; proposer_id: string; proposed: number; failed: number }>;
    expect(trackRecord.map((t) => `${t.task_type}/${t.proposer_id}/${t.proposed}/${t.failed}`)).toEqual(['math/agent:calc#1/1/0', 'summary/executor:a/2/0', 'summary/executor:b/1/1']);
    const search = await runCli(['knowledge', 'search', 'quarterly sales'], p.dir, p.env);
    expect(search.code).toBe(0);
    expect(search.stdout.trim()).toBe('no decisions near that text');
  });
});
