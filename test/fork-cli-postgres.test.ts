/**
 * `swarm runs fork` on PostgreSQL through the built command line (the same case as fork-cli.test.ts).
 */
import { afterAll, describe, it } from 'vitest';
import { pgTestServer, stopPgTestServer } from './helpers/pg.js';
import { cliCase, CLI_CASE } from './helpers/fork-cli-cases.js';

afterAll(async () => {
  await stopPgTestServer();
});

describe('swarm runs fork on PostgreSQL', () => {
  it(CLI_CASE, () => cliCase(async () => ({ SWARM_DATABASE_URL: await (await pgTestServer()).createDatabase() })), 120000);
});
