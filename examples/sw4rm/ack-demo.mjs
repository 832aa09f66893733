#!/usr/bin/env node
// The ACK demo: one command starts an ACK agent in its own process, sends it a DATA message and
// prints the message's ACK lifecycle as it arrives — RECEIVED from the router (stored in the target's
// queue), then FULFILLED from the agent (handled) — then stops the agent, which deregisters.
//
//   swarm sw4rm serve &
//   node examples/sw4rm/ack-demo.mjs
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildEnvelope, parseAck, RegistryClient, RouterClient, runAgent } from 'swarm-runtime/sw4rm';

const { values: o } = parseArgs({ options: { agent: { type: 'boolean' }, 'agent-id': { type: 'string', default: `ack-agent-${process.pid}` }, router: { type: 'string' }, registry: { type: 'string' } } });
const clients = () => ({ router: new RouterClient({ address: o.router }), registry: new RegistryClient({ address: o.registry }) });

if (o.agent) {
  // The ACK agent: handles DATA messages; the runtime answers each with a FULFILLED ACK.
  const agent = await runAgent({
    agentId: o['agent-id'],
    name: 'ACK agent',
    capabilities: ['ack-demo'],
    ...clients(),
    handlers: { DATA: (env) => `processed ${env.payload.length} bytes` },
  });
  console.log('ready');
  await agent.done;
} else {
  const agentId = o['agent-id'];
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--agent', '--agent-id', agentId, ...(o.router ? ['--router', o.router] : []), ...(o.registry ? ['--registry', o.registry] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => (String(d).includes('ready') ? resolve() : undefined));
    child.once('exit', (code) => reject(new Error(`the ACK agent exited (${code}) before it was ready`)));
  });
  console.log(`ACK agent ${agentId} is running (pid ${child.pid})`);

  const me = `ack-demo-sender-${process.pid}`;
  const { router, registry } = clients();
  const abort = new AbortController();
  try {
    // The sender registers and streams too: ACKs are messages, delivered to the producer.
    await registry.register({ agent_id: me, name: 'ACK demo sender' });
    const env = buildEnvelope({ producer_id: me, message_type: 'DATA', content_type: 'application/json', payload: JSON.stringify({ hello: 'world' }) });
    const started = performance.now();
    const stages = [];
    const inbox = (async () => {
      for await (const { msg, seq } of router.streamIncoming(me, { signal: abort.signal })) {
        await router.ackDelivery(me, seq, msg.message_id);
        if (msg.message_type !== 'ACKNOWLEDGEMENT') continue;
        const ack = parseAck(msg);
        if (ack.ack_for_message_id !== env.message_id) continue;
        stages.push(ack.ack_stage);
        console.log(`  ${ack.ack_stage.padEnd(9)} from ${msg.producer_id} after ${(performance.now() - started).toFixed(1)} ms${ack.note ? `: ${ack.note}` : ''}`);
        if (ack.ack_stage === 'FULFILLED' || ack.ack_stage === 'FAILED' || ack.ack_stage === 'REJECTED') return;
      }
    })();
    console.log(`sending DATA message ${env.message_id} to ${agentId}`);
    await router.sendMessage(env, { to: agentId });
    const timeout = setTimeout(() => abort.abort(), 15_000);
    await inbox;
    clearTimeout(timeout);
    if (stages.at(-1) !== 'FULFILLED') throw new Error(`no FULFILLED ACK within 15 s (got: ${stages.join(', ') || 'nothing'})`);
    console.log(`ACK lifecycle: ${stages.join(' → ')}`);
  } finally {
    abort.abort();
    await registry.deregister(me, 'demo done').catch(() => undefined);
    router.close();
    registry.close();
    child.kill('SIGTERM');
    await exited;
  }
  console.log('ACK agent stopped; demo complete');
}
