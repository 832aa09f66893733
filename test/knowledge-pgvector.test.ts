/**
 * SIMILAR lookups on PostgreSQL with pgvector: PGlite with its pgvector extension over the wire
 * protocol (the embedded test server has no pgvector), through the real PostgreSQL store: the
 * threshold, the blacklist falling through to a similar decision, and search.
 */
import { describe, it } from 'vitest';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { startPgliteVector } from './helpers/pglite-vector.js';
import { blacklistContract, similarContract } from './helpers/knowledge-contract.js';

describe('knowledge store: postgres with pgvector (PGlite)', () => {
  it('finds SIMILAR decisions above the threshold, falls through the blacklist to them, and searches', async () => {
    const pg = await startPgliteVector();
    try {
      const store = await openPostgresStore({ url: pg.url, durability: 'process', poolSize: 1 });
      try {
        await similarContract(store);
        await blacklistContract(store, { vectors: true, taskType: 'report' });
      } finally {
        await store.close();
      }
    } finally {
      await pg.close();
    }
  }, 120_000);
});
