#!/usr/bin/env node
// The advanced agent: an agent whose state survives restarts. In --data-dir it keeps
//   processed.json   the messages it has handled (the runtime's dedup: a redelivery after a crash
//                    is acknowledged again, never handled twice);
//   state.json       its activity buffer (the last messages it handled and what came of them) and its
//                    worktree binding, written atomically after every message.
// DATA messages are recorded and answered; CONTROL messages drive it: {"action":"status"},
// {"action":"bind","repo_id":…,"worktree_id":…} (only repos in --allow-repo, if given), {"action":"unbind"};
// anything else goes to its default handler.
//
//   node examples/sw4rm/advanced-agent.mjs --agent-id advanced-1 --data-dir ./advanced-data
//   node examples/sw4rm/test-client.mjs --target-agent advanced-1 --test all
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AgentReject, RegistryClient, RouterClient, runAgent } from 'swarm-runtime/sw4rm';

const { values: o } = parseArgs({
  options: {
    'agent-id': { type: 'string', default: 'advanced-1' },
    'data-dir': { type: 'string', default: './advanced-agent-data' },
    'allow-repo': { type: 'string', multiple: true, default: [] },
    'max-activity': { type: 'string', default: '100' },
    router: { type: 'string' },
    registry: { type: 'string' },
  },
});
const agentId = o['agent-id'];
const dataDir = resolve(o['data-dir']);
const stateFile = join(dataDir, 'state.json');
const maxActivity = Number(o['max-activity']);
mkdirSync(dataDir, { recursive: true });

// The activity buffer and the worktree binding, as they were when the agent last stopped.
const state = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) : { activity: [], worktree: null, handled: 0 };
console.log(`${agentId}: ${state.handled} message(s) handled before, ${state.activity.length} in the activity buffer, worktree ${state.worktree ? `${state.worktree.repo_id}/${state.worktree.worktree_id}` : 'unbound'}`);

function save() {
  // Atomic: a crash mid-write leaves the previous state.json, never half of one.
  const tmp = `${stateFile}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, JSON.stringify(state, null, 2));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, stateFile);
}

function record(env, outcome) {
  state.handled += 1;
  state.activity.push({ message_id: env.message_id, producer_id: env.producer_id, type: env.message_type, outcome, at: new Date().toISOString() });
  state.activity = state.activity.slice(-maxActivity);
  save();
}

const policy = {
  // The beforeBind hook: which repos this agent may work in.
  beforeBind: (repoId) => o['allow-repo'].length === 0 || o['allow-repo'].includes(repoId),
  afterBind: (binding) => console.log(`${agentId}: bound to ${binding.repo_id}/${binding.worktree_id}`),
};

const agent = await runAgent({
  agentId,
  name: 'Advanced agent',
  description: 'keeps an activity buffer and a worktree binding across restarts',
  capabilities: ['data', 'control', 'worktree'],
  router: new RouterClient({ address: o.router }),
  registry: new RegistryClient({ address: o.registry }),
  heartbeatMs: 5_000,
  persistence: { file: join(dataDir, 'processed.json') },
  handlers: {
    DATA: async (env, ctx) => {
      const body = env.content_type === 'application/json' ? JSON.parse(env.payload.toString('utf8')) : env.payload.toString('utf8');
      await ctx.reply({ processed: body, by: agentId, handled: state.handled + 1 });
      record(env, 'processed');
      return `processed (${state.handled} so far)`;
    },
    CONTROL: (env) => {
      let cmd;
      try {
        cmd = JSON.parse(env.payload.toString('utf8'));
      } catch {
        throw new AgentReject('VALIDATION_ERROR', 'a CONTROL payload must be JSON like {"action":"status"}');
      }
      if (cmd.action === 'status') {
        record(env, 'status');
        return { handled: state.handled, worktree: state.worktree, recent: state.activity.slice(-5).map((a) => a.message_id) };
      }
      if (cmd.action === 'bind') {
        if (!cmd.repo_id || !cmd.worktree_id) throw new AgentReject('VALIDATION_ERROR', 'bind needs repo_id and worktree_id');
        if (!policy.beforeBind(cmd.repo_id, cmd.worktree_id, state.worktree)) throw new AgentReject('PERMISSION_DENIED', `repo ${cmd.repo_id} is not allowed (--allow-repo)`);
        state.worktree = { repo_id: cmd.repo_id, worktree_id: cmd.worktree_id, bound_at: new Date().toISOString() };
        record(env, 'bound');
        policy.afterBind(state.worktree);
        return `bound to ${cmd.repo_id}/${cmd.worktree_id}`;
      }
      if (cmd.action === 'unbind') {
        state.worktree = null;
        record(env, 'unbound');
        return 'unbound';
      }
      throw new AgentReject('VALIDATION_ERROR', `unknown action ${JSON.stringify(cmd.action)} (status, bind, unbind)`);
    },
    default: (env) => {
      record(env, 'default');
      return `no specific handler for ${env.message_type}; recorded`;
    },
  },
  onMessage: (e) => console.log(`${agentId}: ${e.kind} ${e.envelope.message_type} ${e.envelope.message_id}${e.note ? ` — ${e.note}` : ''}`),
});
console.log(`${agentId} ready (data in ${dataDir})`);
await agent.done;
console.log(`${agentId} stopped and deregistered; state kept in ${dataDir}`);
