/**
 * A fork killed with SIGKILL mid-step on SQLite, then `runs resume`: the copied steps never run in the
 * fork, the interrupted step and what follows finish, the chain verifies.
 */
import { describe, it } from 'vitest';
import { crashCase, CRASH_CASE } from './helpers/fork-cli-cases.js';

describe('a fork killed mid-step on SQLite', () => {
  it(CRASH_CASE, () => crashCase(async () => ({})), 120000);
});
