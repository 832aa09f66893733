/**
 * A project whose SQLite store holds three decisions recorded through the Swarm's own knowledge
 * store (embedded by the fake vendor server's OpenAI embeddings, SWARM_KNOWLEDGE_EMBEDDING naming
 * the model), for the CLI tests of `swarm knowledge`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { knowledgeForSwarm } from '../../src/consensus/knowledge/swarm.js';
import type { KnowledgeExportLine } from '../../src/consensus/knowledge/index.js';
import { startFakeLlmServer } from '../../src/testing/fake-llm-server.js';
import { finalized } from './knowledge-fixtures.js';
import { Swarm } from '../../src/swarm.js';
import { removeProject, tempProject } from './project.js';

export const REPORT = 'Summarise the quarterly sales report for the board';

export interface KnowledgeCliProject {
  dir: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** `databaseUrl`: a PostgreSQL database instead of the project's SQLite file (no pgvector there: decisions are not embedded). */
export async function knowledgeCliProject(databaseUrl?: string): Promise<KnowledgeCliProject> {
  const fake = await startFakeLlmServer();
  const dir = tempProject();
  const env: Record<string, string> = { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.openaiBaseUrl, SWARM_KNOWLEDGE_EMBEDDING: 'openai/text-embedding-3-small', ...(databaseUrl ? { SWARM_DATABASE_URL: databaseUrl } : {}) };
  const swarm = await Swarm.open({ cwd: dir, env: { SWARM_HOME: join(dir, '.swarm'), ...env }, providerEnv: env });
  try {
    const k = knowledgeForSwarm(swarm, env);
    const recorded = [
      await k.record(finalized({ task_id: 'k1', task_type: 'summary', inputs: { prompt: REPORT } }, [{ proposer: 'executor:a', output: { summary: 'Sales rose.' } }, { proposer: 'executor:b', output: { summary: 'x' }, verdicts: ['failed'] }], 0, Date.UTC(2026, 0, 1))),
      await k.record(finalized({ task_id: 'k2', task_type: 'summary', inputs: { prompt: 'Translate a short poem into French' } }, [{ proposer: 'executor:a', output: { summary: 'Poème.' } }], 0, Date.UTC(2026, 0, 2))),
      await k.record(finalized({ task_id: 'm1', task_type: 'math', inputs: { q: 'quarterly sales growth' } }, [{ proposer: 'agent:calc#1', output: { n: 4 } }], 0, Date.UTC(2026, 0, 3))),
    ];
    expect(recorded.map((r) => r.indexed)).toEqual(databaseUrl ? [false, false, false] : [true, true, true]);
  } finally {
    await swarm.close();
  }
  mkdirSync(join(dir, 'out'));
  return {
    dir,
    env,
    close: async () => {
      await fake.close();
      removeProject(dir);
    },
  };
}

/** JSONL text → its objects. */
export const jsonLines = (s: string): KnowledgeExportLine[] =>
  s
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as KnowledgeExportLine);
