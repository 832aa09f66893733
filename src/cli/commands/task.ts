import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ExitCode, UserError, errorMessage, formatManifestProblem, type ManifestProblem } from '../../core/errors.js';
import { parseYaml } from '../../core/manifest/yaml-source.js';
import { commitmentHash, newSalt, signRecord } from '../../consensus/core/crypto.js';
import { voteCommitSignedFields, voteRevealSignedFields } from '../../consensus/core/signed.js';
import { TASK_STATUSES, type TaskStatus } from '../../consensus/core/types.js';
import { contractField, TaskContractError, type ContractProblem } from '../../consensus/driver/contract.js';
import type { Swarm } from '../../swarm.js';
import type { CliContext } from '../context.js';
import { table } from '../render.js';
import { taskSummaryJson } from '../../views/task.js';

const FINAL = new Set(['finalized', 'expired', 'failed']);

/**
 * `swarm task submit <contract.json|yaml> [--wait] | watch <id> | decision <id> | cost <id> | list |
 * vote <id> commit|reveal`: standalone consensus tasks (docs/consensus.md). `decision` exits 3 when
 * the task failed or expired; an unknown task, a bad contract, key or candidate exit 2.
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
      const { value, lineOf } = readContract(file);
      let sub: Awaited<ReturnType<Swarm['submitTask']>>;
      try {
        sub = await swarm.submitTask(value);
      } catch (e) {
        if (!(e instanceof TaskContractError)) throw e;
        // Each problem named with the file (and, in YAML, its line).
        for (const p of e.problems) ctx.err(`swarm: ${formatManifestProblem(toManifestProblem(file, p, lineOf))}`);
        ctx.exitCode = ExitCode.INVALID_INPUT;
        return;
      }
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
    .option('--json', 'one JSON event per line (candidate hashes in full)')
    .option('--full-hashes', 'print candidate hashes in full (by default cut to 12 characters)')
    .action(async (id: string, o: { json?: boolean; fullHashes?: boolean }) => {
      const swarm = await ctx.swarm();
      let runId: string | null = null;
      let after = 0;
      let hinted = false;
      let seen = false;
      for (;;) {
        const d = await swarm.taskDecision(id);
        runId ??= d.run_id;
        if (runId) {
          for (const e of await swarm.events(runId, after)) {
            after = e.seq;
            if ((e.data as { task_id?: unknown }).task_id !== id) continue;
            seen = true;
            if (!o.json && !o.fullHashes && !hinted && typeof e.data['candidate_hash'] === 'string') {
              hinted = true;
              ctx.out('(candidate hashes are cut to 12 characters: --full-hashes or --json prints them whole; task vote takes any unique prefix)');
            }
            ctx.out(o.json ? JSON.stringify(e) : `${new Date(e.at).toISOString()}  ${e.type}${brief(e.data, o.fullHashes ?? false)}`);
          }
        }
        if (FINAL.has(d.status)) {
          // No event of the task: its run failed (or was cancelled) before creating it; say why.
          if (!seen && d.reason) {
            if (o.json) ctx.err(`swarm: task ${id}: ${d.status} (${d.reason})`);
            else ctx.out(`task ${id}: ${d.status} (${d.reason})`);
          }
          ctx.exitCode = d.status === 'finalized' ? ExitCode.OK : ExitCode.VERIFICATION_FAILED;
          return;
        }
        await swarm.waitForChange(500);
      }
    });

  task
    .command('decision <id>')
    .description("a task's decision: the winning candidate, tally, quorum and proof; exit 3 when it failed or expired, 2 for an unknown task")
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      await printDecision(ctx, await ctx.swarm(), id, o.json ?? false);
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
    .option('--run <id>', 'tasks of one run (its short id, or any unique prefix or suffix of the id)')
    .option('--status <status>', TASK_STATUSES.join(', '))
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(async (o: { run?: string; status?: string; limit: string; json?: boolean }) => {
      if (o.status !== undefined && !(TASK_STATUSES as readonly string[]).includes(o.status)) {
        throw new UserError('INVALID_STATUS', `--status '${o.status}' is not a task status (one of ${TASK_STATUSES.join(', ')})`, { status: o.status });
      }
      const swarm = await ctx.swarm();
      // The short id, the full id or a unique prefix or suffix, as every command takes a run; an unknown run exits 2.
      const runId = o.run ? await swarm.resolveRunId(o.run) : undefined;
      const list = await swarm.listTasks({ ...(runId ? { run_id: runId } : {}), ...(o.status ? { status: o.status as TaskStatus } : {}), limit: Number(o.limit) || 50 });
      // The same summaries as GET /api/v1/tasks (ISO times, the reason with its code), newest first.
      if (o.json) return ctx.out(JSON.stringify(list.map(taskSummaryJson), null, 2));
      if (list.length === 0) return ctx.out('no consensus tasks');
      ctx.out(table(['TASK', 'TYPE', 'STATUS', 'STAGE', 'ROUND', 'CREATED'], list.map((t) => [t.task_id, t.task_type, t.status, t.stage, String(t.round), new Date(t.created_at).toISOString()])));
    });

  const vote = task.command('vote').description("an external voter's commit and reveal (signed with the voter's Ed25519 private key, PKCS#8 PEM)");
  // The verb comes first: `task vote commit <task>`. Anything else (`task vote sum-42 commit`) is refused with the right form.
  vote.on('command:*', (operands: string[]) => {
    const [first = '', second] = operands;
    const hint =
      second === 'commit' || second === 'reveal'
        ? `the verb comes before the task id: 'swarm task vote ${second} ${first} …' (the same options)`
        : "the forms are 'swarm task vote commit <task> --voter <id> --key <file> --candidate <hash>' and 'swarm task vote reveal <task> --voter <id> --key <file> --candidate <hash> --salt <salt>'";
    vote.error(`unknown command '${first}': ${hint}`, { code: 'commander.unknownCommand', exitCode: ExitCode.INVALID_INPUT });
  });
  vote
    .command('commit <task>')
    .description('commit to a candidate: prints the salt to keep for the reveal (or writes it to --salt-file)')
    .requiredOption('--voter <id>', "the voter's id in the task's contract")
    .requiredOption('--key <file>', "the voter's private key (PKCS#8 PEM)")
    .requiredOption('--candidate <hash>', 'the candidate hash voted on, or a unique prefix of it')
    .option('--reject', 'vote against the candidate (counts for nothing, but is recorded)')
    .option('--salt-file <file>', 'write the salt here instead of printing it')
    .action(async (taskId: string, o: { voter: string; key: string; candidate: string; reject?: boolean; saltFile?: string }) => {
      const key = readKey(o.key);
      const swarm = await ctx.swarm();
      const { round, candidate } = await voteTarget(swarm, taskId, o.candidate);
      const choice = o.reject ? 'reject' : 'approve';
      const salt = newSalt();
      const commitment = commitmentHash(candidate, choice, salt);
      const signature = signRecord(key, 'vote_commit', voteCommitSignedFields({ task_id: taskId, round, voter_id: o.voter, commitment }));
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
    .requiredOption('--candidate <hash>', 'the candidate hash committed to, or a unique prefix of it')
    .requiredOption('--salt <salt>', 'the salt the commit printed')
    .option('--reject', 'the vote committed was a reject')
    .action(async (taskId: string, o: { voter: string; key: string; candidate: string; salt: string; reject?: boolean }) => {
      const key = readKey(o.key);
      const swarm = await ctx.swarm();
      const { round, candidate } = await voteTarget(swarm, taskId, o.candidate);
      const choice = o.reject ? 'reject' : 'approve';
      const fields = { task_id: taskId, round, voter_id: o.voter, candidate_hash: candidate, vote: choice, salt: o.salt.trim() } as const;
      const signature = signRecord(key, 'vote_reveal', voteRevealSignedFields(fields));
      const r = await swarm.submitVote({ kind: 'reveal', ...fields, signature });
      ctx.out(`revealed in round ${r.round}`);
    });
}

/** A contract file's value, and (YAML) the line of any path in it. */
function readContract(file: string): { value: unknown; lineOf?: (path: ReadonlyArray<string | number>) => number | undefined } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError('FILE_NOT_FOUND', `cannot read ${file}: ${errorMessage(e)}`, { file });
  }
  // YAML syntax errors come back as one line naming the file and line (a ManifestError, exit 2).
  if (/\.ya?ml$/i.test(file)) {
    const src = parseYaml(text, file);
    return { value: src.value, lineOf: (p) => src.lineOf(p) };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    throw new UserError('TASK_CONTRACT_INVALID', `${file}: not valid JSON: ${errorMessage(e)}`, { file });
  }
}

/** A contract problem as a manifest problem of its file: `task.yaml:12: voting.quorum: …`. */
function toManifestProblem(file: string, p: ContractProblem, lineOf?: (path: ReadonlyArray<string | number>) => number | undefined): ManifestProblem {
  const field = contractField(p.path);
  const line = lineOf?.(p.path);
  return { file, ...(field ? { field } : {}), problem: p.message, ...(line !== undefined ? { line } : {}) };
}

/** An external voter's private key: a PKCS#8 PEM Ed25519 key, or exit 2 naming the file. */
function readKey(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError('KEY_NOT_FOUND', `cannot read the key file ${file}: ${errorMessage(e)}`, { file });
  }
  const expected = 'an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)';
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    throw new UserError('KEY_INVALID', `the key file ${file} is not ${expected}`, { file });
  }
  if (type !== 'ed25519') throw new UserError('KEY_INVALID', `the key file ${file} holds a ${type ?? 'non-asymmetric'} key; expected ${expected}`, { file });
  return pem;
}

/**
 * The task's current round and the full hash of the candidate voted on: `given` may be a hash or a
 * unique prefix of one of the task's candidates (as `task watch` shows them). Anything else is
 * refused here (exit 2, listing the candidates) rather than spending the voter's commit on it.
 */
async function voteTarget(swarm: Swarm, taskId: string, given: string): Promise<{ round: number; candidate: string }> {
  const t = await swarm.getTask(taskId);
  // Not created: submitted and waiting for its run, or its run failed first, or unknown (exit 2 either way).
  if (!t) throw await swarm.taskNotFound(taskId);
  const hashes = [...new Set(t.candidates.map((c) => c.candidate_hash))];
  const wanted = given.trim().toLowerCase();
  const matches = wanted ? hashes.filter((h) => h.startsWith(wanted)) : [];
  if (matches.length === 1) return { round: t.task.round, candidate: matches[0] as string };
  const listed = (hs: readonly string[]): string => (hs.length ? hs.join(', ') : 'none yet');
  if (matches.length > 1) throw new UserError('CANDIDATE_AMBIGUOUS', `--candidate '${given}' matches ${matches.length} candidates of task ${taskId}: ${listed(matches)}; give more of the hash`, { taskId });
  throw new UserError('CANDIDATE_UNKNOWN', `--candidate '${given}' is not a candidate of task ${taskId} (its candidates: ${listed(hashes)})`, { taskId });
}

async function printDecision(ctx: CliContext, swarm: Swarm, id: string, json: boolean): Promise<void> {
  const d = await swarm.taskDecision(id);
  if (json) ctx.out(JSON.stringify(d, null, 2));
  else if (d.decision) {
    ctx.out(`task ${d.task_id}: ${d.status} in round ${d.decision.round}`);
    ctx.out(`candidate ${d.decision.candidate_hash}  (tally ${JSON.stringify(d.decision.tally)}, quorum ${d.decision.quorum})`);
    ctx.out(`answer    ${JSON.stringify(d.decision.output)}`);
    ctx.out(`proof     candidate event #${d.decision.proof.candidate_event.seq}, reveals ${d.decision.proof.reveal_events.map((r) => `#${r.seq}`).join(', ')} of run ${d.run_id}`);
  } else ctx.out(`task ${d.task_id}: ${d.status}${d.reason ? ` (${d.reason_code !== null ? `${d.reason_code} ` : ''}${d.reason})` : ''}`);
  ctx.exitCode = d.status === 'failed' || d.status === 'expired' ? ExitCode.VERIFICATION_FAILED : ExitCode.OK;
}

function brief(data: Record<string, unknown>, fullHashes: boolean): string {
  const keys = ['stage', 'round', 'proposer_id', 'verifier_id', 'voter_id', 'member_id', 'candidate_hash', 'status', 'vote', 'reason'];
  const parts = keys.filter((k) => data[k] !== undefined).map((k) => `${k}=${typeof data[k] === 'string' && k === 'candidate_hash' && !fullHashes ? (data[k]).slice(0, 12) : String(data[k] as string | number)}`);
  return parts.length ? `  ${parts.join(' ')}` : '';
}
