import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ExitCode, UserError, errorMessage } from '../../core/errors.js';
import { commitmentHash, newSalt, signRecord } from '../../consensus/core/crypto.js';
import { voteCommitSignedFields, voteRevealSignedFields } from '../../consensus/core/signed.js';
import type { TaskStatus } from '../../consensus/core/types.js';
import type { Swarm } from '../../swarm.js';
import type { CliContext } from '../context.js';
import { table } from '../render.js';
import { taskSummaryJson } from '../../views/task.js';

const FINAL = new Set(['finalized', 'expired', 'failed']);

/**
 * `swarm task submit <contract.json|yaml> [--wait] | watch <id> | decision <id> | cost <id> | list |
 * vote <id> commit|reveal`: standalone consensus tasks (docs/consensus.md). `decision` exits 3 when
 * the task failed or expired, 4 when it cannot say.
 *
 * @example
 *   swarm task submit task.json --wait
 *   swarm task vote t-1 commit --voter ext-1 --key ext-1.pem --candidate 3f… --salt-file salt.txt
 */
export function registerTaskCommands(program: Command, ctx: CliContext): void {
  const task = program.command('task').description('consensus tasks: submit, watch, decision, cost, list, vote (commit-reveal by an external voter)');

  task
    .command('submit <contract>')
    .description('submit a task contract (JSON or YAML file); with --wait, run it to its decision (in this process when no worker is running)')
    .option('--wait', 'wait for the decision; exit 3 when the task fails or expires')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { wait?: boolean; json?: boolean }) => {
      const swarm = await ctx.swarm();
      const sub = await swarm.submitTask(readContract(file));
      if (!o.wait) {
        if (o.json) return ctx.out(JSON.stringify(sub, null, 2));
        return ctx.out(`task ${sub.task_id} submitted (run ${sub.run_id}${sub.created ? '' : ', submitted before'})`);
      }
      if (await swarm.hasLiveWorker()) await swarm.wait(sub.run_id);
      else await swarm.runToCompletion(sub.run_id);
      await printDecision(ctx, swarm, sub.task_id, o.json ?? false);
    });

  task
    .command('watch <id>')
    .description("follow a task's lifecycle events until it is finalized, expired or failed")
    .option('--json', 'one JSON event per line')
    .action(async (id: string, o: { json?: boolean }) => {
      const swarm = await ctx.swarm();
      let runId: string | null = null;
      let after = 0;
      for (;;) {
        const d = await swarm.taskDecision(id);
        runId ??= d.run_id;
        if (runId) {
          for (const e of await swarm.events(runId, after)) {
            after = e.seq;
            if ((e.data as { task_id?: unknown }).task_id !== id) continue;
            ctx.out(o.json ? JSON.stringify(e) : `${new Date(e.at).toISOString()}  ${e.type}${brief(e.data)}`);
          }
        }
        if (FINAL.has(d.status)) {
          ctx.exitCode = d.status === 'finalized' ? ExitCode.OK : ExitCode.VERIFICATION_FAILED;
          return;
        }
        await swarm.waitForChange(500);
      }
    });

  task
    .command('decision <id>')
    .description("a task's decision: the winning candidate, tally, quorum and proof; exit 3 when it failed or expired, 4 on errors")
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      try {
        await printDecision(ctx, await ctx.swarm(), id, o.json ?? false);
      } catch (e) {
        ctx.err(`error: ${errorMessage(e)}`);
        ctx.exitCode = ExitCode.EXECUTION_FAILED;
      }
    });

  task
    .command('cost <id>')
    .description("a task's cost by bucket (explore, verify, finalize) against its stage budgets")
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const c = await (await ctx.swarm()).taskCost(id);
      if (o.json) return ctx.out(JSON.stringify(c, null, 2));
      const usd = (n: number | undefined): string => (n === undefined ? '-' : `$${n.toFixed(4)}`);
      ctx.out(
        table(
          ['BUCKET', 'SPENT', 'BUDGET', 'EXHAUSTED'],
          (['explore', 'verify', 'finalize'] as const).map((b) => [b, usd(c[`${b}_usd`]), usd(c.budget[b]), c.exhausted.includes(b) ? 'yes' : '']),
        ),
      );
      ctx.out(`total ${usd(c.total_usd)}`);
    });

  task
    .command('list')
    .description('consensus tasks, newest first')
    .option('--run <id>', 'tasks of one run')
    .option('--status <status>', 'created, proposing, verifying, voting, committed, finalized, expired or failed')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { run?: string; status?: string; limit: string; json?: boolean }) => {
      const list = await (await ctx.swarm()).listTasks({ ...(o.run ? { run_id: o.run } : {}), ...(o.status ? { status: o.status as TaskStatus } : {}), limit: Number(o.limit) || 50 });
      // The same summaries as GET /api/v1/tasks (ISO times, the reason with its code), newest first.
      if (o.json) return ctx.out(JSON.stringify(list.map(taskSummaryJson), null, 2));
      if (list.length === 0) return ctx.out('no consensus tasks');
      ctx.out(table(['TASK', 'TYPE', 'STATUS', 'STAGE', 'ROUND', 'CREATED'], list.map((t) => [t.task_id, t.task_type, t.status, t.stage, String(t.round), new Date(t.created_at).toISOString()])));
    });

  const vote = task.command('vote').description("an external voter's commit and reveal (signed with the voter's Ed25519 private key, PKCS#8 PEM)");
  vote
    .command('commit <task>')
    .description('commit to a candidate: prints the salt to keep for the reveal (or writes it to --salt-file)')
    .requiredOption('--voter <id>', "the voter's id in the task's contract")
    .requiredOption('--key <file>', "the voter's private key (PKCS#8 PEM)")
    .requiredOption('--candidate <hash>', 'the candidate hash voted on')
    .option('--reject', 'vote against the candidate (counts for nothing, but is recorded)')
    .option('--salt-file <file>', 'write the salt here instead of printing it')
    .action(async (taskId: string, o: { voter: string; key: string; candidate: string; reject?: boolean; saltFile?: string }) => {
      const swarm = await ctx.swarm();
      const round = await currentRound(swarm, taskId);
      const choice = o.reject ? 'reject' : 'approve';
      const salt = newSalt();
      const commitment = commitmentHash(o.candidate, choice, salt);
      const signature = signRecord(readKey(o.key), 'vote_commit', voteCommitSignedFields({ task_id: taskId, round, voter_id: o.voter, commitment }));
      const r = await swarm.submitVote({ kind: 'commit', task_id: taskId, round, voter_id: o.voter, commitment, signature });
      if (o.saltFile) {
        writeFileSync(o.saltFile, `${salt}\n`, { mode: 0o600 });
        ctx.out(`committed in round ${r.round}; the salt is in ${o.saltFile}: reveal with --salt $(cat ${o.saltFile})`);
      } else ctx.out(`committed in round ${r.round}; keep this salt for the reveal:\n${salt}`);
    });
  vote
    .command('reveal <task>')
    .description('reveal a commitment: the same candidate, vote and salt')
    .requiredOption('--voter <id>', "the voter's id in the task's contract")
    .requiredOption('--key <file>', "the voter's private key (PKCS#8 PEM)")
    .requiredOption('--candidate <hash>', 'the candidate hash committed to')
    .requiredOption('--salt <salt>', 'the salt the commit printed')
    .option('--reject', 'the vote committed was a reject')
    .action(async (taskId: string, o: { voter: string; key: string; candidate: string; salt: string; reject?: boolean }) => {
      const swarm = await ctx.swarm();
      const round = await currentRound(swarm, taskId);
      const choice = o.reject ? 'reject' : 'approve';
      const fields = { task_id: taskId, round, voter_id: o.voter, candidate_hash: o.candidate, vote: choice, salt: o.salt.trim() } as const;
      const signature = signRecord(readKey(o.key), 'vote_reveal', voteRevealSignedFields(fields));
      const r = await swarm.submitVote({ kind: 'reveal', ...fields, signature });
      ctx.out(`revealed in round ${r.round}`);
    });
}

function readContract(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError('FILE_NOT_FOUND', `cannot read ${file}: ${errorMessage(e)}`, { file });
  }
  try {
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new UserError('TASK_CONTRACT_INVALID', `${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${errorMessage(e)}`, { file });
  }
}

function readKey(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError('KEY_NOT_FOUND', `cannot read the key file ${file}: ${errorMessage(e)}`, { file });
  }
}

async function currentRound(swarm: Swarm, taskId: string): Promise<number> {
  const t = await swarm.getTask(taskId);
  if (!t) throw new UserError('TASK_NOT_FOUND', `no consensus task '${taskId}' yet (it appears once its run has started)`, { taskId });
  return t.task.round;
}

async function printDecision(ctx: CliContext, swarm: Swarm, id: string, json: boolean): Promise<void> {
  const d = await swarm.taskDecision(id);
  if (json) ctx.out(JSON.stringify(d, null, 2));
  else if (d.decision) {
    ctx.out(`task ${d.task_id}: ${d.status} in round ${d.decision.round}`);
    ctx.out(`candidate ${d.decision.candidate_hash}  (tally ${JSON.stringify(d.decision.tally)}, quorum ${d.decision.quorum})`);
    ctx.out(`answer    ${JSON.stringify(d.decision.output)}`);
    ctx.out(`proof     candidate event #${d.decision.proof.candidate_event.seq}, reveals ${d.decision.proof.reveal_events.map((r) => `#${r.seq}`).join(', ')} of run ${d.run_id}`);
  } else ctx.out(`task ${d.task_id}: ${d.status}${d.reason ? ` (${d.reason_code ?? ''} ${d.reason})` : ''}`);
  ctx.exitCode = d.status === 'failed' || d.status === 'expired' ? ExitCode.VERIFICATION_FAILED : ExitCode.OK;
}

function brief(data: Record<string, unknown>): string {
  const keys = ['stage', 'round', 'proposer_id', 'verifier_id', 'voter_id', 'candidate_hash', 'status', 'vote', 'reason'];
  const parts = keys.filter((k) => data[k] !== undefined).map((k) => `${k}=${typeof data[k] === 'string' && k === 'candidate_hash' ? (data[k]).slice(0, 12) : String(data[k] as string | number)}`);
  return parts.length ? `  ${parts.join(' ')}` : '';
}
