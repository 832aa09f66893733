/**
 * `swarm sw4rm agents --json` and `swarm sw4rm dlq list --json` print what `runs list`, `schedules
 * list`, `task list`, `tokens list` and `secrets list` print with `--json`: a bare JSON array of rows,
 * `[]` when there are none. The store is a real SQLite file, seeded through the store's own
 * calls (a registered agent, a message that died of its TTL, a finished run); the commands are real
 * `swarm` processes. Build first (`npm run build`): the CLI runs from dist/.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { Swarm } from '../src/swarm.js';
import { sw4rmProtos } from '../src/sw4rm/proto.js';
import { envelopeBytes } from '../src/sw4rm/router/wire.js';
import type { Envelope } from '../src/sw4rm/core/envelope.js';
import { cleanupSandboxes, examplesStore, makeSandbox } from './helpers/cli.js';
import { env } from './helpers/sw4rm-raw.js';

afterAll(() => cleanupSandboxes());

type Rows = Array<Record<string, unknown>>;

/** The envelope as the router stores it: field 1 of the encoded SendMessageRequest. */
function stored(e: Envelope): Buffer {
  const send = sw4rmProtos().router.RouterService.service.SendMessage as grpc.MethodDefinition<unknown, unknown>;
  return envelopeBytes(send.requestSerialize({ msg: e }));
}

const LISTS = [
  ['runs', 'list', '--json'],
  ['schedules', 'list', '--json'],
  ['sw4rm', 'agents', '--json'],
  ['sw4rm', 'dlq', 'list', '--json'],
];

describe('the --json of swarm sw4rm agents and swarm sw4rm dlq list', () => {
  it('is a JSON array of rows, as runs list and schedules list print', async () => {
    const s = makeSandbox();
    s.copyStore(await examplesStore());
    const payload = JSON.stringify({ task: 'x' });
    const m = env('boss', { payload });
    const swarm = await Swarm.open({ cwd: s.root, env: { ...s.env, SWARM_SANDBOX: 'none' } });
    try {
      expect((await swarm.runToCompletion(await swarm.startRun('echo-chain', { message: 'hi' }))).run.status).toBe('completed');
      const now = Date.now();
      await swarm.store.sw4rmPutAgent({ agent_id: 'late', name: 'Late agent', descriptor: JSON.stringify({ agent_id: 'late', name: 'Late agent' }), communication_class: 'STANDARD' }, now);
      const [sent] = await swarm.store.sw4rmSend(
        [{ message_id: m.message_id, producer_id: 'boss', message_type: m.message_type, idempotency_token: null, target: 'late', ack_for: null, envelope: stored(m), created_at: now - 2000, expires_at: now - 1000, dedup_until: now + 60_000, receipt: null, direct: () => false }],
        now + 30_000,
      );
      expect(sent?.status).toBe('stored');
      // Its TTL has passed: the sweep makes it a dead letter, as a running router would.
      expect((await swarm.store.sw4rmSweep(now, 3, 0)).dead).toBe(1);
    } finally {
      await swarm.close();
    }

    // Independent commands at once: each CLI start costs seconds on a loaded machine.
    const [runs, schedules, agents, dead] = await Promise.all(LISTS.map((args) => s.json<Rows>(args)));
    for (const [i, out] of [runs, schedules, agents, dead].entries()) expect(Array.isArray(out), `swarm ${LISTS[i]!.join(' ')} prints an array`).toBe(true);
    expect(runs).toHaveLength(1);
    expect(schedules!.length).toBeGreaterThan(0);
    expect(agents!.map((a) => [a.agent_id, a.name, a.status, a.implicit, a.communication_class])).toEqual([['late', 'Late agent', 'available', false, 'STANDARD']]);
    expect(dead!.map((d) => [d.message_id, d.dead_reason, d.recipient, d.producer_id, d.payload, d.payload_encoding])).toEqual([[m.message_id, 'TTL_EXPIRED', 'late', 'boss', payload, 'utf8']]);
    expect(typeof dead![0]!.seq).toBe('number');
  });

  it('is [] when there is nothing to list, as for runs list and schedules list', async () => {
    const s = makeSandbox();
    // The first command makes the store; the others then read it side by side.
    const first = await s.json<unknown>(LISTS[0]!);
    const rest = await Promise.all(LISTS.slice(1).map((args) => s.json<unknown>(args)));
    expect([first, ...rest]).toEqual([[], [], [], []]);
  });
});
