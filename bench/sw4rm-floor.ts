/**
 * The floor of the SW4RM benchmark: the router's wire contract (RouterService of the project's protos)
 * served from memory — SendMessage hands the envelope to the target's open StreamIncoming, AckDelivery
 * answers `recorded` — with no storage, no validation and no leases. A unary call, a server stream and
 * a unary call per message, on the same machine, over the same gRPC stack: what the router would cost
 * if storing and leasing were free. Run as its own process by bench/sw4rm.ts; prints `floor port N`.
 */
import * as grpc from '@grpc/grpc-js';
import { sw4rmProtos } from '../src/sw4rm/proto.js';

interface Item {
  msg: { message_id: string };
  seq: number;
}

const streams = new Map<string, grpc.ServerWritableStream<{ agent_id: string }, Item>>();
const waiting = new Map<string, Item[]>();
let seq = 0;

const server = new grpc.Server();
server.addService(sw4rmProtos().router.RouterService.service, {
  SendMessage(call: grpc.ServerUnaryCall<{ msg: { message_id: string } }, unknown>, cb: grpc.sendUnaryData<unknown>) {
    const to = String(call.metadata.get('x-sw4rm-target')[0] ?? '');
    const item = { msg: call.request.msg, seq: ++seq };
    const s = streams.get(to);
    if (s) s.write(item);
    else waiting.set(to, [...(waiting.get(to) ?? []), item]);
    cb(null, { accepted: true, reason: '' });
  },
  StreamIncoming(call: grpc.ServerWritableStream<{ agent_id: string }, Item>) {
    const id = call.request.agent_id;
    streams.set(id, call);
    for (const item of waiting.get(id) ?? []) call.write(item);
    waiting.delete(id);
    call.on('cancelled', () => streams.delete(id));
  },
  AckDelivery(_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) {
    cb(null, { recorded: true });
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`floor port ${port}`);
});
process.on('SIGTERM', () => {
  server.forceShutdown();
  process.exit(0);
});
