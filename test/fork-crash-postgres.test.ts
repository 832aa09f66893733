/**
 * A fork killed with SIGKILL mid-step on PostgreSQL, then resumed (the same case as fork-crash.test.ts).
 */
import { afterAll, describe, it } from 'vitest';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { crashCase, CRASH_CASE } from './helpers/fork-cli-cases.js';

afterAll(async () => {
  await stopPgTestServer();
});

describe('a fork killed mid-step on PostgreSQL', () => {
  it(CRASH_CASE, () => crashCase(async () => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() })), 120000);
});
