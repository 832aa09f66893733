/** Consensus crash safety on PostgreSQL (SIGKILL at a named point, then another worker): see helpers/consensus-crash.ts. */
import { afterAll, describe, it } from 'vitest';
import { crashThenResume } from './helpers/consensus-crash.js';
import { stopPgTestServer } from './helpers/pg.js';

afterAll(() => stopPgTestServer());

describe('consensus crash safety (postgres)', () => {
  it('SIGKILL between the vote commits and their reveals: another worker reveals the sealed votes and finalizes once', async () => {
    await crashThenResume('postgres', 'consensus-after-vote-commit');
  }, 120_000);

  it('SIGKILL between DECISION_COMMITTED and DECISION_FINALIZED: another worker finalizes once', async () => {
    await crashThenResume('postgres', 'consensus-after-decision-commit');
  }, 120_000);
});
