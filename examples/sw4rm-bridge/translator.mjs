// A SW4RM agent for the example: streams as 'translator', answers each message with a reply
// correlated to it (addressed to its producer), then ACKs it FULFILLED. Stop it with Ctrl-C.
import * as grpc from '@grpc/grpc-js';
import { buildAckEnvelope, buildEnvelope, sw4rmProtos } from 'swarm-runtime/sw4rm';

const ME = 'translator';
const router = process.argv[2] ?? '127.0.0.1:50051';
const WORDS = { hello: 'bonjour', world: 'monde', good: 'bon', night: 'nuit', friend: 'ami' };
const translate = (text) => text.split(/\s+/).map((w) => WORDS[w.toLowerCase()] ?? w).join(' ');

const client = new (sw4rmProtos().router.RouterService)(router, grpc.credentials.createInsecure());
const send = (msg, target) =>
  new Promise((resolve, reject) => {
    const meta = new grpc.Metadata();
    if (target) meta.set('x-sw4rm-target', target);
    client.SendMessage({ msg }, meta, (err, res) => (err ? reject(err) : resolve(res)));
  });

const stream = client.StreamIncoming({ agent_id: ME });
stream.on('data', async ({ msg, seq }) => {
  await new Promise((r) => client.AckDelivery({ agent_id: ME, seq, message_id: msg.message_id, outcome: 'DELIVERY_ACK_OUTCOME_DELIVERED' }, r));
  if (msg.message_type === 'ACKNOWLEDGEMENT') return;
  const { text } = JSON.parse(msg.payload.toString('utf8'));
  console.log(`${msg.producer_id}: ${text}`);
  const reply = buildEnvelope({ producer_id: ME, message_type: 'DATA', correlation_id: msg.correlation_id, payload: JSON.stringify({ french: translate(String(text)) }) });
  await send(reply, msg.producer_id);
  await send(buildAckEnvelope({ producer_id: ME, ack_for_message_id: msg.message_id, ack_stage: 'FULFILLED', correlation_id: msg.correlation_id }));
});
stream.on('error', (e) => {
  if (e.code !== grpc.status.CANCELLED) console.error(`stream: ${e.message}`);
  process.exitCode = 1;
});
process.on('SIGINT', () => {
  stream.cancel();
  client.close();
});
console.log(`translator listening on ${router}`);
