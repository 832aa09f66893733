import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { removeProject, runCli, tempProject } from './helpers/project.js';
import { MIGRATIONS } from '../src/store/sqlite/migrations.js';

describe('opening a new store', () => {
  it('several processes creating the same new store at once all succeed, and migrate it once', async () => {
    const dir = tempProject();
    try {
      for (let round = 0; round < 3; round++) {
        const home = join(dir, `home-${round}`);
        const results = await Promise.all(Array.from({ length: 5 }, () => runCli(['agent', 'list', '--json'], dir, { SWARM_HOME: home })));
        for (const r of results) {
          expect(r.stderr).toBe('');
          expect(r.code).toBe(0);
          expect(JSON.parse(r.stdout)).toEqual([]);
        }
        const db = new Database(join(home, 'swarm.db'), { readonly: true });
        try {
          expect(db.prepare('SELECT version FROM schema_migrations').pluck().all()).toEqual(MIGRATIONS.map((m) => m.version));
        } finally {
          db.close();
        }
      }
    } finally {
      removeProject(dir);
    }
  });
});
