import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import pc from 'picocolors';
import type { ApprovalDecision, LoopEvent } from '../../agents/loop.js';
import type { ToolCall } from '../../agents/types.js';
import { UserError } from '../../core/errors.js';
import { approvalJson } from '../../views/approval.js';
import { shortRunId } from '../../swarm.js';
import { parsePositiveInt, parseSince, type CliContext } from '../context.js';
import { clip, colorStatus, formatTime, table, usd } from '../render.js';

/** `swarm approve | reject | approvals`, `swarm sessions list | show`, `swarm chat`. */
export function registerLlmCommands(program: Command, ctx: CliContext): void {
  program
    .command('approve <run> [step]')
    .description('approve what a waiting run (or one of its steps) waits for; the run continues in any worker')
    .option('--reason <text>', 'why (recorded)')
    .option('--by <name>', 'who decided (recorded; default $USER)')
    .action(async (run: string, step: string | undefined, o: { reason?: string; by?: string }) => {
      const swarm = await ctx.swarm();
      const by = o.by ?? ctx.env.USER;
      const resumed = await swarm.approve(run, step, { ...(o.reason ? { reason: o.reason } : {}), ...(by ? { by } : {}) });
      const id = await swarm.resolveRunId(run);
      ctx.err(`approved: step${resumed.length > 1 ? 's' : ''} ${resumed.join(', ')} of run ${id} will continue`);
      // A SW4RM HITL invocation's run (workflow sw4rm-hitl, src/sw4rm/scheduler/hitl.ts) is finished
      // by the SW4RM server that asked for it, which reads the decision: no worker is needed.
      if ((await swarm.getRun(id)).run.workflow_name === 'sw4rm-hitl') ctx.err(pc.dim('the SW4RM server that asked for this decision reads it and finishes the run'));
      else if (!(await swarm.hasLiveWorker())) ctx.err(pc.dim(`no worker is running: start one with 'swarm worker', or 'swarm runs resume ${run}' to continue here`));
    });

  program
    .command('reject <run> [step]')
    .description('reject what a waiting run (or step) waits for: the step fails with the reason')
    .requiredOption('--reason <text>', 'why (recorded, and in the step error)')
    .option('--by <name>', 'who decided (recorded; default $USER)')
    .action(async (run: string, step: string | undefined, o: { reason: string; by?: string }) => {
      const swarm = await ctx.swarm();
      const resumed = await swarm.reject(run, step, o.reason, o.by ?? ctx.env.USER);
      ctx.err(`rejected: step${resumed.length > 1 ? 's' : ''} ${resumed.join(', ')} of run ${await swarm.resolveRunId(run)} will fail with APPROVAL_REJECTED`);
    });

  program
    .command('approvals')
    .description('list approval requests (pending ones unless --all)')
    .option('--run <id>', 'of this run')
    .option('--all', 'decided ones too')
    .option('--json', 'print JSON')
    .action(async (o: { run?: string; all?: boolean; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const list = await swarm.listApprovals({ ...(o.run ? { runId: o.run } : {}), status: o.all ? 'all' : 'pending' });
      if (o.json) return ctx.out(JSON.stringify(list.map(approvalJson), null, 2));
      if (list.length === 0) return ctx.err(o.all ? 'no approval requests' : 'nothing waits for approval');
      ctx.out(table(['RUN', 'STEP', 'WHAT', 'ARGUMENTS', 'STATUS', 'REQUESTED'], list.map((a) => [shortRunId(a.run_id), a.step_id, a.tool, clip(a.arguments, 60), a.status, formatTime(a.requested_at)])));
    });

  const sessions = program.command('sessions').description('conversations of llm agents: messages, tool calls, usage');
  sessions
    .command('list')
    .description('list agent sessions, newest first')
    .option('--run <id>', 'sessions of this run')
    .option('--trace <id>', 'sessions with this trace id')
    .option('-s, --status <status>', 'running, waiting, completed or failed')
    .option('--since <when>', 'active since a date or a duration ago (30m, 2h, 7d)')
    .option('--until <when>', 'created before a date or a duration ago')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (o: { run?: string; trace?: string; status?: string; since?: string; until?: string; limit: string; json?: boolean }) => {
      if (o.status && !['running', 'waiting', 'completed', 'failed'].includes(o.status)) throw new UserError('ARGUMENT_INVALID', `--status '${o.status}' is not one of running, waiting, completed, failed`);
      const swarm = await ctx.swarm();
      const list = await swarm.listSessions({
        ...(o.run ? { run_id: o.run } : {}),
        ...(o.trace ? { trace_id: o.trace } : {}),
        ...(o.status ? { status: o.status } : {}),
        ...(o.since ? { since: parseSince(o.since) } : {}),
        ...(o.until ? { until: parseSince(o.until) } : {}),
        limit: parsePositiveInt(o.limit, '--limit'),
      });
      if (o.json) return ctx.out(JSON.stringify(list, null, 2));
      if (list.length === 0) return ctx.err('no sessions');
      ctx.out(
        table(
          ['SESSION', 'AGENT', 'LAST AGENT', 'STATUS', 'TURNS', 'TOKENS IN/OUT', 'COST', 'UPDATED'],
          list.map((s) => [s.id, s.agent, s.current_agent, colorStatus(s.status), s.turns, `${s.input_tokens}/${s.output_tokens}`, usd(s.cost_usd), formatTime(s.updated_at)]),
        ),
      );
    });
  sessions
    .command('show <id>')
    .description('show a session: its messages, tool calls and usage (`<run>/<step>` for a workflow step)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      const { session, messages, toolCalls } = await swarm.getSession(id);
      if (o.json) {
        const { envelope: _envelope, ...rest } = session;
        return ctx.out(JSON.stringify({ session: rest, messages, tool_calls: toolCalls.map((t) => ({ ...t, context_variables: t.context_variables ? (JSON.parse(t.context_variables) as unknown) : null })) }, null, 2));
      }
      ctx.out(`${pc.bold(`session ${session.id}`)}  ${session.agent} → ${session.current_agent}  ${colorStatus(session.status)}`);
      ctx.out(`${session.turns} turn(s), ${session.input_tokens} tokens in, ${session.output_tokens} out, ${usd(session.cost_usd)}; updated ${formatTime(session.updated_at)}`);
      ctx.out('');
      for (const m of messages) {
        const who = m.role === 'assistant' ? pc.cyan(m.agent ?? 'assistant') : m.role === 'tool' ? pc.dim(`tool ${m.name ?? ''}`) : pc.bold(m.role);
        if (m.content) ctx.out(`${who}: ${m.content}`);
        for (const c of m.tool_calls ? (JSON.parse(m.tool_calls) as ToolCall[]) : []) ctx.out(`${who}: ${pc.cyan('→')} ${c.name}(${clip(c.arguments, 200)}) ${pc.dim(c.id)}`);
      }
    });

  program
    .command('chat <agent>')
    .description('chat with an llm agent in the terminal (streams tokens, shows tool calls and handoffs)')
    .option('--session <id>', 'continue a conversation')
    .option('-m, --message <text>', 'send one message, print the answer and exit')
    .option('--context <json>', 'context variables (JSON object) for a new session')
    .action(async (ref: string, o: { session?: string; message?: string; context?: string }) => {
      if (o.message !== undefined && !o.message.trim()) throw new UserError('ARGUMENT_INVALID', '--message is empty: give the text to send (or leave -m out to chat interactively)', { field: '--message' });
      let contextVariables: Record<string, unknown> | undefined;
      if (o.context !== undefined) {
        try {
          contextVariables = JSON.parse(o.context) as Record<string, unknown>;
        } catch (e) {
          throw new UserError('ARGUMENT_INVALID', `--context is not JSON: ${(e as Error).message}`);
        }
        if (!contextVariables || typeof contextVariables !== 'object' || Array.isArray(contextVariables)) throw new UserError('ARGUMENT_INVALID', '--context must be a JSON object');
      }
      const swarm = await ctx.swarm();
      // What a guardrail records (a run's log would hold it): a budget warning, a detection, a refused call.
      const onGuardEvent = (e: { type: string; data: Record<string, unknown> }): void => {
        const message = typeof e.data.message === 'string' ? e.data.message : Object.entries(e.data).map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
        ctx.err(pc.yellow(`  ! ${e.type}: ${message}`));
      };
      const { chat, close } = await swarm.openChat(ref, { ...(o.session ? { sessionId: o.session } : {}), ...(contextVariables ? { contextVariables } : {}), onGuardEvent });
      const interactive = o.message === undefined;
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: Boolean(process.stdin.isTTY) });
      // Lines are buffered (piped input arrives all at once, while a turn is still running).
      const lines = rl[Symbol.asyncIterator]();
      const ask = async (prompt: string): Promise<string | undefined> => {
        process.stderr.write(prompt);
        const next = await lines.next();
        return next.done ? undefined : next.value;
      };
      let speaking: string | undefined;
      const endLine = (): void => {
        if (speaking !== undefined) process.stdout.write('\n');
        speaking = undefined;
      };
      const onEvent = (e: LoopEvent): void => {
        if (e.type === 'delta') {
          if (speaking !== e.agent) {
            endLine();
            process.stdout.write(`${pc.cyan(e.agent)}: `);
            speaking = e.agent;
          }
          process.stdout.write(e.text);
        } else if (e.type === 'message') {
          endLine();
        } else if (e.type === 'tool_call') {
          endLine();
          ctx.err(pc.dim(`  → ${e.call.name}(${clip(e.call.arguments, 120)})`));
        } else if (e.type === 'tool_result') {
          ctx.err(pc.dim(`  ${e.result.is_error ? '✗' : '←'} ${e.result.name}: ${clip(e.result.output, 120)}`));
        } else if (e.type === 'handoff') {
          endLine();
          ctx.err(pc.magenta(`  ⇢ ${e.from} hands off to ${e.to}`));
        }
      };
      const approve = async (calls: ToolCall[]): Promise<Map<string, ApprovalDecision>> => {
        const out = new Map<string, ApprovalDecision>();
        for (const c of calls) {
          if (!interactive && !process.stdin.isTTY) {
            out.set(c.id, { decision: 'rejected', reason: 'no one to approve it (non-interactive chat)' });
            continue;
          }
          const answer = ((await ask(pc.yellow(`approve ${c.name}(${clip(c.arguments, 200)})? [y/N] `))) ?? '').trim().toLowerCase();
          out.set(c.id, answer === 'y' || answer === 'yes' ? { decision: 'approved' } : { decision: 'rejected', reason: 'the user said no' });
        }
        return out;
      };
      try {
        if (!interactive) {
          const r = await chat.send(o.message ?? '', { onEvent, stream: true, approve });
          endLine();
          if (r.status !== 'completed') ctx.err(pc.yellow(`the agent stopped: ${r.status}`));
          ctx.err(pc.dim(`session ${chat.id}`));
          return;
        }
        ctx.err(pc.dim(`chatting with ${ref} (session ${chat.id}); an empty line or Ctrl-D ends`));
        for (;;) {
          const line = await ask(pc.bold('you: '));
          if (line === undefined || !line.trim()) break; // Ctrl-D, end of input, or an empty line
          const r = await chat.send(line, { onEvent, stream: true, approve });
          endLine();
          if (r.status === 'max_turns') ctx.err(pc.yellow('the agent did not answer within its max_turns'));
        }
        ctx.err(pc.dim(`continue with: swarm chat ${ref} --session ${chat.id}`));
      } finally {
        rl.close();
        await close();
      }
    });
}
