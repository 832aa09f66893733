/**
 * The knowledge store (src/consensus/knowledge/) on SQLite (sqlite-vec for SIMILAR) and on
 * PostgreSQL. The embedded PostgreSQL server has no pgvector: there SIMILAR lookups are skipped
 * (and say so) while EXACT, the blacklist, records, the track record and export hold;
 * knowledge-pgvector.test.ts runs SIMILAR on PostgreSQL with pgvector.
 */
import { afterAll, afterEach, beforeEach, describe, it } from 'vitest';
import type { Store } from '../src/store/store.js';
import { makePostgresBackend, makeSqliteBackend, type MakeStore, type StoreBackend } from './helpers/store-fixtures.js';
import { stopPgTestServer } from './helpers/pg.js';
import { blacklistContract, exactContract, exportContract, similarContract, trackContract } from './helpers/knowledge-contract.js';

function suite(name: string, make: MakeStore, vectors: boolean): void {
  describe(`knowledge store: ${name}`, () => {
    let backend: StoreBackend;
    let store: Store;
    beforeEach(async () => {
      backend = await make();
      store = await backend.open();
    });
    afterEach(async () => {
      await store.close();
      await backend.cleanup();
    });

    it('finds EXACT decisions by task type and canonical inputs hash, and logs lookups', () => exactContract(store));
    it('skips blacklisted decisions, lists them, and falls through to the next', () => blacklistContract(store, { vectors }));
    it('records idempotently and keeps the track record', () => trackContract(store));
    it('exports by task type and by task id', () => exportContract(store));
    if (vectors) it('finds SIMILAR decisions above the threshold through the vector memory, and searches', () => similarContract(store));
  });
}

suite('sqlite', makeSqliteBackend, true);
suite('postgres', makePostgresBackend, false);
afterAll(stopPgTestServer);
