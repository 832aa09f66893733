import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS, resolveConfig } from '../src/config/config.js';
import { removeProject, tempProject } from './helpers/project.js';

function withProject(yaml: string, fn: (dir: string) => void): void {
  const dir = tempProject(yaml);
  try {
    fn(dir);
  } finally {
    removeProject(dir);
  }
}

describe('configuration', () => {
  it('finds swarm.yaml up the tree and resolves paths against its directory', () => {
    withProject('agents_dir: my-agents\nconfig: { greeting: Hi }\n', (dir) => {
      const sub = join(dir, 'deep', 'er');
      mkdirSync(sub, { recursive: true });
      const c = resolveConfig({ cwd: sub, env: {} });
      expect(c.projectDir).toBe(dir);
      expect(c.agentsDir).toBe(join(dir, 'my-agents'));
      expect(c.workflowsDir).toBe(join(dir, 'workflows'));
      expect(c.dbPath).toBe(join(dir, '.swarm', 'swarm.db'));
      expect(c.databaseUrl).toBeUndefined();
      expect(c.values).toEqual({ greeting: 'Hi' });
      expect(c.durability).toBe(DEFAULTS.durability);
      expect(Object.isFrozen(c)).toBe(true);
    });
  });

  it('environment overrides the file; explicit overrides win over both', () => {
    withProject('durability: process\nlease_ttl_ms: 60000\nconcurrency: { worker: 4 }\n', (dir) => {
      const env = { SWARM_HOME: join(dir, 'h'), SWARM_DURABILITY: 'full', SWARM_LEASE_TTL_MS: '1500', SWARM_SECRET_TOKEN: 't0k' };
      const c = resolveConfig({ cwd: dir, env, overrides: { workerConcurrency: 9 } });
      expect(c.home).toBe(join(dir, 'h'));
      expect(c.dbPath).toBe(join(dir, 'h', 'swarm.db'));
      expect(c.durability).toBe('full');
      expect(c.leaseMs).toBe(1500);
      expect(c.workerConcurrency).toBe(9);
      expect(c.secrets).toEqual({ TOKEN: 't0k' });
    });
  });

  it('selects PostgreSQL from swarm.yaml or SWARM_DATABASE_URL, and refuses postgres without a URL', () => {
    withProject('store: { type: postgres, url: "postgres://u:p@db:5432/swarm" }\n', (dir) => {
      expect(resolveConfig({ cwd: dir, env: {} }).databaseUrl).toBe('postgres://u:p@db:5432/swarm');
      expect(resolveConfig({ cwd: dir, env: { SWARM_DATABASE_URL: 'postgres://other/x' } }).databaseUrl).toBe('postgres://other/x');
    });
    withProject('name: x\n', (dir) => {
      expect(resolveConfig({ cwd: dir, env: { SWARM_DATABASE_URL: 'postgres://h/db' } }).databaseUrl).toBe('postgres://h/db');
    });
    withProject('store: { type: postgres, url: "postgres://h/db", schema: team_a, pool_size: 4 }\n', (dir) => {
      const c = resolveConfig({ cwd: dir, env: {} });
      expect([c.databaseSchema, c.databasePoolSize]).toEqual(['team_a', 4]);
      const e = resolveConfig({ cwd: dir, env: { SWARM_DB_SCHEMA: 'team_b', SWARM_DB_POOL_SIZE: '20' } });
      expect([e.databaseSchema, e.databasePoolSize]).toEqual(['team_b', 20]);
      expect(() => resolveConfig({ cwd: dir, env: { SWARM_DB_SCHEMA: 'Team-B' } })).toThrow(/SWARM_DB_SCHEMA='Team-B' must be lower-case letters, digits and _/);
      expect(() => resolveConfig({ cwd: dir, env: { SWARM_DB_POOL_SIZE: '0' } })).toThrow(/SWARM_DB_POOL_SIZE='0' must be a number from 1 to 1000/);
    });
    withProject('store: { type: postgres, url: "postgres://h/db", schema: "Bad-Name" }\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm\.yaml:1.*schema/s);
    });
    withProject('store: { type: sqlite, url: "postgres://h/db" }\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm\.yaml: store\.url does not apply to a sqlite store/);
    });
    withProject('store: postgres\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/store is postgres but no URL is given: set store.url or SWARM_DATABASE_URL/);
    });
  });

  it('bad values are errors naming the file, line or variable, before anything is opened', () => {
    withProject('name: x\ndurability: fast\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:2: durability: must be one of "full", "process"/);
    });
    withProject('name: x\ncommit_window_ms: 50\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:2: commit_window_ms: must be <= 10/);
    });
    withProject('name: x\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: { SWARM_CONCURRENCY: 'lots' } })).toThrow(/SWARM_CONCURRENCY='lots' must be a number from 1 to 10000/);
      expect(() => resolveConfig({ cwd: dir, env: { SWARM_DURABILITY: 'maybe' } })).toThrow(/SWARM_DURABILITY='maybe' must be 'full' or 'process'/);
      writeFileSync(join(dir, 'swarm.yaml'), 'name: [unclosed\n');
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:\d+: invalid YAML/);
    });
  });

  it('retention.emitted_events: 30 days by default, a duration in s, m, h or d of at least a minute', () => {
    withProject('name: x\n', (dir) => {
      expect(resolveConfig({ cwd: dir, env: {} }).retention).toEqual({ emittedEventsMs: 30 * 86_400_000, runs: {}, intervalMs: 3_600_000, archive: undefined, batch: 500 });
    });
    withProject('name: x\nretention:\n  emitted_events: 36h\n', (dir) => {
      expect(resolveConfig({ cwd: dir, env: {} }).retention.emittedEventsMs).toBe(36 * 3_600_000);
    });
    withProject('name: x\nretention:\n  emitted_events: forever\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:3: retention.emitted_events: must match pattern/);
    });
    withProject('name: x\nretention:\n  emitted_events: 30s\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow("swarm.yaml:3: retention.emitted_events: '30s' is under a minute; write at least 1m (default 30d)");
    });
  });

  it('retention of finished runs: ages per status, interval, archive and batch; bad values name the file and key', () => {
    withProject('name: x\nretention:\n  completed: 30d\n  failed: 90d\n  interval: 10m\n  archive: old/runs.jsonl\n  batch: 200\n', (dir) => {
      expect(resolveConfig({ cwd: dir, env: {} }).retention).toEqual({
        emittedEventsMs: 30 * 86_400_000,
        runs: { completed: 30 * 86_400_000, failed: 90 * 86_400_000 },
        intervalMs: 600_000,
        archive: join(dir, 'old/runs.jsonl'),
        batch: 200,
      });
    });
    withProject('name: x\nretention:\n  cancelled: 1w\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:3: retention.cancelled: must match pattern/);
    });
    withProject('name: x\nretention:\n  completed: 30d\n  batch: 0\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:4: retention.batch: must be >= 1/);
    });
    withProject('name: x\nretention:\n  completed: 10s\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow("swarm.yaml:3: retention.completed: '10s' is under a minute; write at least 1m");
    });
    withProject('name: x\nretention:\n  interval: 1h\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow('swarm.yaml:3: retention.interval applies to runs, but no run age is set');
    });
    withProject('name: x\nretention:\n  completed: 30d\n  keep: forever\n', (dir) => {
      expect(() => resolveConfig({ cwd: dir, env: {} })).toThrow(/swarm.yaml:4: retention.keep/);
    });
  });
});
