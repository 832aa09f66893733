#!/usr/bin/env node
// A test client: registers as its own agent, sends test messages to a target agent and waits for
// what comes back — the router's RECEIVED ACK, the agent's FULFILLED (or REJECTED/FAILED) ACK, and a
// reply when the agent sends one. Exits 0 when every test passed, 1 otherwise.
//
//   node examples/sw4rm/test-client.mjs --target-agent echo-1
//   node examples/sw4rm/test-client.mjs --target-agent advanced-1 --test all
//
// Tests: data (a DATA message; expects FULFILLED), control (a CONTROL {"action":"status"}; expects
// FULFILLED), bind (a CONTROL binding the worktree demo-repo/main; expects FULFILLED), unknown (a
// TOOL_CALL; expects REJECTED, or FULFILLED by a default handler), all.
import { parseArgs } from 'node:util';
import { buildEnvelope, parseAck, RegistryClient, RouterClient } from 'swarm-runtime/sw4rm';

const { values: o } = parseArgs({
  options: {
    'target-agent': { type: 'string', default: 'echo-1' },
    test: { type: 'string', default: 'data' },
    router: { type: 'string' },
    registry: { type: 'string' },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});
const target = o['target-agent'];
const timeoutMs = Number(o['timeout-ms']);
const me = `test-client-${process.pid}`;
const router = new RouterClient({ address: o.router });
const registry = new RegistryClient({ address: o.registry });
const abort = new AbortController();

await registry.register({ agent_id: me, name: 'Test client', capabilities: ['test'] });
// Everything addressed to this client: ACKs and replies, matched to the test that waits for them.
const waiters = new Map(); // message_id -> { acks: [], replies: [], wake }
const inbox = (async () => {
  for await (const { msg, seq } of router.streamIncoming(me, { signal: abort.signal })) {
    await router.ackDelivery(me, seq, msg.message_id);
    if (msg.message_type === 'ACKNOWLEDGEMENT') {
      const ack = parseAck(msg);
      const w = waiters.get(ack.ack_for_message_id);
      if (w) { w.acks.push(ack); w.wake(); }
    } else {
      // A reply carries the correlation_id of the message it answers.
      for (const w of waiters.values()) if (w.correlation === msg.correlation_id) { w.replies.push(msg); w.wake(); }
    }
  }
})();

const TERMINAL = new Set(['FULFILLED', 'REJECTED', 'FAILED', 'TIMED_OUT']);
async function exchange(name, input, expect) {
  const env = buildEnvelope({ producer_id: me, ...input });
  const w = { correlation: env.correlation_id, acks: [], replies: [], wake: () => {} };
  waiters.set(env.message_id, w);
  const started = Date.now();
  await router.sendMessage(env, { to: target });
  const deadline = started + timeoutMs;
  while (!w.acks.some((a) => TERMINAL.has(a.ack_stage)) || (expect.reply && w.replies.length === 0)) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await new Promise((r) => { w.wake = r; setTimeout(r, left); });
  }
  const stages = w.acks.map((a) => a.ack_stage);
  const final = w.acks.find((a) => TERMINAL.has(a.ack_stage));
  const ok = final !== undefined && expect.stages.includes(final.ack_stage) && (!expect.reply || w.replies.length > 0);
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}: ACKs ${stages.join(' → ') || 'none'}${final?.note ? ` (${final.note})` : ''}${expect.reply ? `, reply ${w.replies.length ? JSON.stringify(w.replies[0].payload.toString()) : 'none'}` : ''} in ${Date.now() - started} ms`);
  return ok;
}

const tests = {
  data: () => exchange('data', { message_type: 'DATA', content_type: 'application/json', payload: JSON.stringify({ hello: target, at: new Date().toISOString() }) }, { stages: ['FULFILLED'], reply: target.startsWith('echo') }),
  control: () => exchange('control', { message_type: 'CONTROL', content_type: 'application/json', payload: JSON.stringify({ action: 'status' }) }, { stages: ['FULFILLED'] }),
  bind: () => exchange('bind', { message_type: 'CONTROL', content_type: 'application/json', payload: JSON.stringify({ action: 'bind', repo_id: 'demo-repo', worktree_id: 'main' }) }, { stages: ['FULFILLED'] }),
  unknown: () => exchange('unknown', { message_type: 'TOOL_CALL', content_type: 'application/json', payload: '{}' }, { stages: ['REJECTED', 'FULFILLED'] }),
};
const names = o.test === 'all' ? Object.keys(tests) : o.test.split(',');
let failed = 0;
try {
  for (const n of names) {
    if (!tests[n]) throw new Error(`--test: unknown test '${n}' (have: ${Object.keys(tests).join(', ')}, all)`);
    if (!(await tests[n]())) failed++;
  }
} finally {
  abort.abort();
  await inbox.catch(() => undefined);
  await registry.deregister(me, 'done').catch(() => undefined);
  router.close();
  registry.close();
}
console.log(failed === 0 ? `all ${names.length} test(s) passed` : `${failed} of ${names.length} test(s) failed`);
process.exit(failed === 0 ? 0 : 1);
