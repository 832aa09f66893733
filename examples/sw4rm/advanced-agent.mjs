#!/usr/bin/env node
// The advanced agent: an agent whose state survives restarts, in one JSON file (--data-dir/agent.json,
// written atomically): its activity buffer (every message it received and sent, and the ACK stage each
// reached — a redelivery after a crash is ACKed again, never handled twice) and its worktree binding,
// under a policy (only the repos of --allow-repo, if given).
// DATA messages are answered; CONTROL messages drive it: {"action":"status"} (answered with a status
// message), {"action":"bind","repo_id":…,"worktree_id":…}, {"action":"unbind"}; other types go to its
// default handler.
//
//   node examples/sw4rm/advanced-agent.mjs --agent-id advanced-1 --data-dir ./advanced-data
//   node examples/sw4rm/test-client.mjs --target-agent advanced-1 --test all
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AgentReject, JSONFilePersistence, RegistryClient, RouterClient, runAgent, WorktreeState } from 'swarm-runtime/sw4rm';

const { values: o } = parseArgs({
  options: {
    'agent-id': { type: 'string', default: 'advanced-1' },
    'data-dir': { type: 'string', default: './advanced-agent-data' },
    'allow-repo': { type: 'string', multiple: true, default: [] },
    router: { type: 'string' },
    registry: { type: 'string' },
  },
});
const agentId = o['agent-id'];
const dataDir = resolve(o['data-dir']);
mkdirSync(dataDir, { recursive: true });
const persistence = new JSONFilePersistence(join(dataDir, 'agent.json'));

const worktree = await WorktreeState.open({
  persistence,
  policy: {
    beforeBind: (repoId) => o['allow-repo'].length === 0 || o['allow-repo'].includes(repoId) || `repo ${repoId} is not allowed (--allow-repo)`,
    afterBind: (b) => console.log(`${agentId}: bound to ${b.repo_id}/${b.worktree_id}`),
  },
});

const agent = await runAgent({
  agentId,
  name: 'Advanced agent',
  description: 'keeps an activity buffer and a worktree binding across restarts',
  capabilities: ['data', 'control', 'worktree'],
  router: new RouterClient({ address: o.router }),
  registry: new RegistryClient({ address: o.registry }),
  heartbeatMs: 5_000,
  persistence,
  handlers: {
    DATA: async (env, ctx) => {
      const body = env.content_type === 'application/json' ? JSON.parse(env.payload.toString('utf8')) : env.payload.toString('utf8');
      await ctx.reply({ processed: body, by: agentId });
      return 'processed';
    },
    CONTROL: async (env, ctx) => {
      let cmd;
      try {
        cmd = JSON.parse(env.payload.toString('utf8'));
      } catch {
        throw new AgentReject('VALIDATION_ERROR', 'a CONTROL payload must be JSON like {"action":"status"}');
      }
      if (cmd.action === 'status') {
        const received = agent.buffer.recent(1000).filter((r) => r.direction === 'in' && r.envelope.message_type !== 'ACKNOWLEDGEMENT');
        await ctx.reply({ received: received.length, worktree: worktree.status() });
        return 'status sent';
      }
      if (cmd.action === 'bind') {
        if (!cmd.repo_id || !cmd.worktree_id) throw new AgentReject('VALIDATION_ERROR', 'bind needs repo_id and worktree_id');
        const r = await worktree.bind(cmd.repo_id, cmd.worktree_id, { by: env.producer_id });
        if (!r.bound) throw new AgentReject('PERMISSION_DENIED', r.reason);
        return `bound to ${cmd.repo_id}/${cmd.worktree_id}`;
      }
      if (cmd.action === 'unbind') {
        await worktree.unbind();
        return 'unbound';
      }
      throw new AgentReject('VALIDATION_ERROR', `unknown action ${JSON.stringify(cmd.action)} (status, bind, unbind)`);
    },
    default: (env) => `no specific handler for ${env.message_type}; recorded`,
  },
  onMessage: (e) => console.log(`${agentId}: ${e.kind} ${e.envelope.message_type} ${e.envelope.message_id}${e.note ? ` — ${e.note}` : ''}`),
});
const before = agent.buffer.recent(1000).filter((r) => r.direction === 'in' && r.envelope.message_type !== 'ACKNOWLEDGEMENT');
const wt = worktree.current();
console.log(`${agentId}: ${before.length} message(s) received before, ${agent.buffer.size} in the activity buffer, worktree ${wt ? `${wt.repo_id}/${wt.worktree_id}` : 'unbound'}`);
console.log(`${agentId} ready (state in ${join(dataDir, 'agent.json')})`);
await agent.done;
await worktree.close();
console.log(`${agentId} stopped and deregistered; state kept in ${dataDir}`);
