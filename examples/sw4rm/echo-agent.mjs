#!/usr/bin/env node
// The echo agent: registers, answers every DATA message with the same payload (to its producer, in
// the same conversation), and ACKs it FULFILLED. SIGTERM / Ctrl-C deregisters it.
//
//   swarm sw4rm serve &                         # router :50051, registry :50052
//   node examples/sw4rm/echo-agent.mjs --agent-id echo-1
//
// Addresses: --router / --registry, else SW4RM_ROUTER_ADDR / SW4RM_REGISTRY_ADDR, else localhost:50051 / :50052.
import { parseArgs } from 'node:util';
import { RegistryClient, RouterClient, runAgent } from 'swarm-runtime/sw4rm';

const { values: o } = parseArgs({ options: { 'agent-id': { type: 'string', default: 'echo-1' }, router: { type: 'string' }, registry: { type: 'string' } } });
const agentId = o['agent-id'];

const agent = await runAgent({
  agentId,
  name: 'Echo',
  capabilities: ['echo'],
  router: new RouterClient({ address: o.router }),
  registry: new RegistryClient({ address: o.registry }),
  handlers: {
    DATA: async (env, ctx) => {
      await ctx.reply(env.payload, { content_type: env.content_type });
      console.log(`echoed ${env.message_id} from ${env.producer_id} (${env.payload.length} bytes)`);
      return 'echoed';
    },
  },
});
console.log(`${agentId} ready: echoing DATA messages (router ${agent.router.address}, registry ${agent.registry.address})`);
await agent.done;
console.log(`${agentId} stopped and deregistered`);
