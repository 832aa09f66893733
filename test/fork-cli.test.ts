/**
 * `swarm runs fork` on SQLite through the built command line: the refusals (exit 2), a fork that
 * reruns the step and what follows once, `runs verify`, and the lineage in `runs show` (text, --json).
 */
import { describe, it } from 'vitest';
import { cliCase, CLI_CASE } from './helpers/fork-cli-cases.js';

describe('swarm runs fork on SQLite', () => {
  it(CLI_CASE, () => cliCase(async () => ({})), 120000);
});
