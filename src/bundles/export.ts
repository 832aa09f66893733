/**
 * Export a finished run as a bundle (docs/branching.md#bundles): read the run, its frozen plan, steps,
 * events and LLM transcripts through the store's existing reads, check the store's keyed event chain
 * first, build the deterministic bundle (build.ts) and sign its certificate with an Ed25519 signing
 * key (default name `runs`, created on first use). A run imported from a bundle exports as the bytes
 * it was imported from, signed by its original signer (`imported: true`).
 *
 * @example
 *   const out = await exportRun(swarm, runId, { keyName: 'runs' });
 *   await writeFileAtomic('run.tar', out.bytes);   // out.bundle_sha256, out.certificate_sha256
 */
import { randomBytes, sign as edSign } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ExecutionError, UserError, VerificationError } from '../core/errors.js';
import { successorsOf } from '../core/manifest/workflow.js';
import { TERMINAL_RUN } from '../core/states.js';
import type { RunEvent } from '../core/events.js';
import type { Swarm } from '../swarm.js';
import type { RunPlan, RunRecord, StepRecord } from '../store/types.js';
import type { ImportedBundleRecord } from '../store/share-types.js';
import { BUNDLE_PATHS, type Sha256Ref } from './layout.js';
import { buildBundle, snapshotStateDigest, type BuiltBundle, type BundleAgent, type BundleAttempt, type BundleOperation, type BundleStep, type RunSnapshot } from './build.js';
import { asSha256Ref, chainEvents, sha256Ref } from './model.js';
import { outputTarget } from '../core/output-path.js';
import { agentDigest, workflowDigest } from '../store/rows.js';
import { validateContract } from './schemas.js';
import { readBundle } from './read.js';

/** The signing key a certificate is signed with unless `--key` names another. */
export const DEFAULT_BUNDLE_KEY = 'runs';

export interface ExportOptions {
  /** The signing key's name (created if there is none). Default `runs`. */
  keyName?: string;
}

/** An exported bundle: its bytes and digests (BuiltBundle); `imported` when they are the bytes the run was imported from. */
export type ExportedBundle = BuiltBundle & { imported: boolean };

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const isoOf = (ms: number): string => new Date(ms).toISOString();

type StoredEvent = RunEvent & { data_json: string };

/**
 * Export a run: refuses an unfinished run (UserError RUN_NOT_FINISHED, exit 2) and a run whose keyed
 * event chain does not verify (VerificationError, exit 3). The result validates against the contract
 * schemas before it is returned.
 */
export async function exportRun(swarm: Swarm, idOrPrefix: string, options: ExportOptions = {}): Promise<ExportedBundle> {
  const runId = await swarm.resolveRunId(idOrPrefix);
  const imported = await swarm.store.getImportedBundle(runId);
  if (imported) return importedBundle(runId, imported);
  const run = await swarm.store.getRun(runId);
  if (!run) throw new UserError('RUN_NOT_FOUND', `no run ${runId}`);
  if (!TERMINAL_RUN.has(run.status)) {
    throw new UserError('RUN_NOT_FINISHED', `run ${runId} is ${run.status}: only a finished run (completed, failed or cancelled) can be exported`, { runId, status: run.status });
  }
  await verifyStoreChain(swarm, runId, 'not exported');
  const snapshot = await runSnapshot(swarm, run);
  const key = await swarm.signingKeys.getOrCreate(options.keyName ?? DEFAULT_BUNDLE_KEY);
  const built = await buildBundle(snapshot, (bytes) => ({ alg: 'ed25519', key_name: key.name, public_key: key.public_key, value: edSign(null, bytes, key.private_key).toString('base64') }));
  // What Swarm writes in the contract shapes must validate: a failure here is a bug, not bad input.
  const parsed = await readBundle(built.bytes);
  for (const [path, schema] of [['node.json', 'node'], ['result.json', 'result'], ['certificate.json', 'certificate']] as const) {
    const problem = await validateContract(schema, parsed.json(path));
    if (problem) throw new Error(`exported ${path} does not validate against the ${schema} schema: ${problem}`);
  }
  return { ...built, imported: false };
}

/**
 * The check export and fork make before they read a run into a bundle or a fork: the run's keyed
 * event chain in the store (`swarm runs verify`: the chain, and every completed step's outputs and
 * inputs and the run's input against the digests its events recorded). Refuses with a
 * VerificationError (exit 3) naming the run and the first thing that does not match; `refused`
 * says what was not done (`not exported`, `not forked`).
 */
async function verifyStoreChain(swarm: Swarm, runId: string, refused: string): Promise<void> {
  const report = await swarm.verify(runId);
  if (!report.ok) {
    const first = report.problems[0];
    throw new VerificationError(`run ${runId}: the store's event chain does not verify (first at seq ${first?.seq ?? '-'}: ${first?.problem}); ${refused}`, { runId });
  }
}

/**
 * What a fork records of its parent when it is made (RUN_FORKED `parent_bundle_sha256` and
 * `parent_bundle_head`): the state digest of the parent's bundle at that moment, and the last line
 * of that bundle's events.jsonl (its `seq` and bundle-chain `hash`). A parent retried later has
 * another state digest, but its bundle's events.jsonl still starts with those lines: the fork's
 * bundle names the state it was forked from, and `swarm verify --parent` can check it against a
 * later bundle of the parent too (src/bundles/verify.ts).
 */
export interface ForkParentState {
  bundle_sha256: Sha256Ref;
  /** Null when the parent's bundle lines cannot be read (an imported run whose bundle row is missing). */
  head: { seq: number; hash: string } | null;
}

/**
 * The parent state a fork of `run` records (ForkParentState), after the check export makes
 * (`verifyStoreChain`): a parent whose stored rows do not match its chain is refused (exit 3), so a
 * fork never copies, nor names the digest of, data its parent's log does not vouch for. An imported
 * run's state is the bundle it was imported from.
 *
 * @example
 *   const p = await forkParentState(swarm, await swarm.store.getRun(parentId));  // { bundle_sha256, head: { seq: 9, hash } }
 */
export async function forkParentState(swarm: Swarm, run: RunRecord): Promise<ForkParentState> {
  await verifyStoreChain(swarm, run.id, 'not forked');
  const imported = await swarm.store.getImportedBundle(run.id);
  if (imported) {
    const lines = (await readBundle(imported.bundle)).text(BUNDLE_PATHS.events).split('\n').filter((l) => l);
    const last = lines.length ? (JSON.parse(lines[lines.length - 1] as string) as { seq: number; hash: string }) : undefined;
    return { bundle_sha256: asSha256Ref(imported.bundle_sha256), head: last ? { seq: last.seq, hash: last.hash } : null };
  }
  const head = await swarm.store.getEvents(run.id, 0, 2);
  if (head.some((e) => e.type === 'RUN_IMPORTED')) return { bundle_sha256: await bundleDigestOf(swarm, run.id), head: null };
  const snapshot = await runSnapshot(swarm, run);
  const chained = chainEvents(snapshot.events);
  const last = chained[chained.length - 1];
  return { bundle_sha256: await snapshotStateDigest(snapshot), head: last ? { seq: last.seq, hash: last.hash } : null };
}

/** The bundle an imported run came from (verified when it was imported), with its digests. */
async function importedBundle(runId: string, rec: ImportedBundleRecord): Promise<ExportedBundle> {
  const parsed = await readBundle(rec.bundle);
  const { signature } = parsed.json<{ signature: { key_name: string; public_key: string } }>(BUNDLE_PATHS.certificate);
  return {
    bytes: rec.bundle,
    bundle_sha256: asSha256Ref(rec.bundle_sha256),
    bundle_manifest_sha256: sha256Ref(parsed.text(BUNDLE_PATHS.manifest)),
    certificate_sha256: asSha256Ref(rec.certificate_sha256),
    file_sha256: sha256Ref(rec.bundle),
    run_id: runId,
    signer: { key_name: signature.key_name, public_key: signature.public_key },
    imported: true,
  };
}

/**
 * The state digest (`bundle_sha256`) of a run's bundle as the run is now, computed in memory. A fork
 * made now records it as its parent state (forkParentState); a fork made before Swarm recorded it
 * names this at export. An imported run's digest is the one its import recorded.
 *
 * @example
 *   const parentDigest = await bundleDigestOf(swarm, parentRunId);  // 'sha256:…'
 */
export async function bundleDigestOf(swarm: Swarm, runId: string): Promise<Sha256Ref> {
  const run = await swarm.store.getRun(runId);
  if (!run) throw new UserError('RUN_NOT_FOUND', `no run ${runId}`);
  const head = await swarm.store.getEvents(runId, 0, 2);
  const imported = head.find((e) => e.type === 'RUN_IMPORTED');
  const stored = (imported?.data as { bundle_sha256?: unknown } | undefined)?.bundle_sha256;
  if (typeof stored === 'string') return asSha256Ref(stored);
  return snapshotStateDigest(await runSnapshot(swarm, run));
}

/**
 * Write a file atomically: a temporary file beside it, then rename (a reader never sees half a
 * bundle). A symbolic link is followed (the file it names is replaced, not the link); a device or a
 * named pipe (`/dev/stdout`, a FIFO) is written into as it is (see `outputTarget`).
 */
export async function writeFileAtomic(file: string, bytes: Buffer): Promise<void> {
  const { path, direct } = outputTarget(file);
  if (direct) {
    try {
      await writeFile(path, bytes);
    } catch (e) {
      throw new ExecutionError('FILE_WRITE_FAILED', `cannot write ${file}: ${WRITE_PROBLEMS[(e as NodeJS.ErrnoException).code ?? ''] ?? (e as Error).message}`, { file }, { cause: e });
    }
    return;
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, bytes, { flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new ExecutionError('FILE_WRITE_FAILED', `cannot write ${file}: ${WRITE_PROBLEMS[(e as NodeJS.ErrnoException).code ?? ''] ?? (e as Error).message}; nothing was written`, { file: path }, { cause: e });
  }
}

/** Why a bundle file could not be written, in words (by errno code). */
const WRITE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of its directory is not a directory',
  EISDIR: 'it is a directory (give a file name)',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  ELOOP: 'it is a loop of symbolic links',
};

/** Everything a bundle of the run holds, read from the store. */
export async function runSnapshot(swarm: Swarm, run: RunRecord): Promise<RunSnapshot> {
  const store = swarm.store;
  const [planJson, steps, stored] = await Promise.all([store.getPlanJson(run.id), store.getSteps(run.id), store.getEvents(run.id)]);
  if (!planJson) throw new UserError('RUN_PLAN_MISSING', `run ${run.id} has no recorded plan; it cannot be exported`);
  const plan = JSON.parse(planJson) as RunPlan;
  const wfDigest = workflowDigestOf(plan);
  const agents = agentsOf(plan);
  const events = stored.map((e) => ({ seq: e.seq, type: e.type, step_id: e.step_id, at: isoOf(e.at), data: JSON.parse(e.data_json) as unknown }));
  const sorted = [...steps].sort((a, b) => a.step_index - b.step_index || (a.map_index ?? -1) - (b.map_index ?? -1) || (a.step_id < b.step_id ? -1 : 1));
  const lineage = await lineageOf(swarm, stored);
  const operation: BundleOperation = lineage.fork ? 'fork' : stored.some((e) => e.type === 'RUN_IMPORTED') ? 'import' : 'run';
  return {
    run: {
      id: run.id,
      workflow: { id: run.workflow_id, name: run.workflow_name, version: run.workflow_version, digest: wfDigest },
      status: run.status,
      trigger_type: run.trigger_type,
      input: run.trigger_data ?? null,
      output: runOutput(plan, sorted),
      error: run.error ?? null,
      error_step: run.error_step ?? null,
      created_at: isoOf(run.created_at),
      started_at: iso(run.started_at),
      finished_at: iso(run.completed_at),
      steps_total: run.steps_total,
      metadata: run.metadata ?? null,
      sub_workflow_of: run.parent_step_id && run.parent_run_id ? { run_id: run.parent_run_id, step_id: run.parent_step_id } : null,
      fork: lineage.fork,
    },
    workflow: { id: run.workflow_id, name: run.workflow_name, version: run.workflow_version, digest: wfDigest, definition: plan.workflow },
    agents: agents.map((a) => ({ ...a, steps: Object.entries(plan.step_agents).filter(([, id]) => id === a.id).map(([s]) => s).sort() })),
    trigger: { type: run.trigger_type, data: run.trigger_data ?? null },
    events,
    steps: sorted.map((s) => bundleStep(s, stored)),
    transcripts: await transcriptsOf(swarm, run.id),
    operation,
    runner_class: `swarm-local/${store.kind}`,
    net_cap: stored.some((e) => e.type === 'NET_CONNECTION'),
  };
}

/** The run's output: its final steps' outputs by step id (what a sub-workflow's parent step receives). */
function runOutput(plan: RunPlan, steps: readonly StepRecord[]): Record<string, unknown> {
  const successors = successorsOf(plan.workflow.steps);
  const out: Record<string, unknown> = {};
  for (const s of steps) if (s.map_index === undefined && s.status === 'completed' && (successors.get(s.step_id) ?? []).length === 0) out[s.step_id] = s.outputs ?? null;
  return out;
}

/**
 * The digest of the workflow definition the run's plan froze, as the registry computes it
 * (store/rows.ts, workflowDigest: sha256 of its canonical JSON): the content the run ran, which is
 * what `workflow.json` carries, whatever the registry holds under that version now (a row registered
 * before digests were canonical, replaced since with --force, or deleted). A fork runs its parent's
 * plan, so its certificate's `workflow_ref` names its parent's digest, on any machine.
 */
function workflowDigestOf(plan: RunPlan): Sha256Ref {
  return asSha256Ref(workflowDigest(plan.workflow));
}

/**
 * The agents the run's plan froze, each with the digest of its manifest as the registry computes it
 * (store/rows.ts, agentDigest): the content the run ran, whichever directory or machine it was
 * registered from, and whatever the registry holds under that version now (a row registered before
 * digests left the directory out, or replaced since with --force).
 */
function agentsOf(plan: RunPlan): Array<Omit<BundleAgent, 'steps'>> {
  return Object.entries(plan.agents)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([id, a]) => ({ id, name: a.manifest.name, version: a.manifest.version, digest: asSha256Ref(agentDigest(a.manifest)) }));
}

/**
 * A fork's parent link, from its RUN_FORKED event (the fork's log records it), and its depth in the
 * tree. The parent's state digest is the one the fork recorded when it was made; only a fork made
 * before forks recorded it (`parent_bundle_sha256: null`) gets the parent's digest as it is now.
 */
async function lineageOf(swarm: Swarm, events: readonly StoredEvent[]): Promise<{ fork: RunSnapshot['run']['fork'] }> {
  const forked = events.slice(0, 3).find((e) => e.type === 'RUN_FORKED');
  if (!forked) return { fork: null };
  const d = JSON.parse(forked.data_json) as { parent_run_id?: string; at_step?: string; turn?: number | null; parent_bundle_sha256?: string };
  if (!d.parent_run_id) return { fork: null };
  const parentDigest = typeof d.parent_bundle_sha256 === 'string' && d.parent_bundle_sha256 ? asSha256Ref(d.parent_bundle_sha256) : await bundleDigestOf(swarm, d.parent_run_id);
  return { fork: { parent_run_id: d.parent_run_id, parent_bundle_sha256: parentDigest, at_step: d.at_step ?? null, turn: typeof d.turn === 'number' ? d.turn : null, depth: (await forkDepth(swarm, d.parent_run_id)) + 1 } };
}

/** How many forks lie between a run and the root of its fork tree (an imported run keeps its bundle's depth). */
async function forkDepth(swarm: Swarm, runId: string): Promise<number> {
  let depth = 0;
  let id: string | undefined = runId;
  for (let hops = 0; id && hops < 10_000; hops++) {
    const head: StoredEvent[] = await swarm.store.getEvents(id, 0, 3);
    const forked = head.find((e) => e.type === 'RUN_FORKED');
    if (forked) {
      depth++;
      id = (JSON.parse(forked.data_json) as { parent_run_id?: string }).parent_run_id;
      continue;
    }
    const imported = head.find((e) => e.type === 'RUN_IMPORTED');
    const r = (imported ? (JSON.parse(imported.data_json) as { ratchet_step?: unknown }).ratchet_step : undefined);
    return depth + (typeof r === 'number' ? r : 0);
  }
  return depth;
}

/** A step's entry, with its attempts read from its events. */
function bundleStep(s: StepRecord, events: readonly StoredEvent[]): BundleStep {
  return {
    step_id: s.step_id,
    index: s.step_index,
    map_index: s.map_index ?? null,
    agent: { name: s.agent_name, version: s.agent_version },
    status: s.status,
    inputs: s.inputs ?? null,
    outputs: s.outputs ?? null,
    error: s.error ?? null,
    attempt: s.attempt,
    retry_count: s.retry_count,
    attempts: attemptsOf(s.step_id, events),
    queued_at: isoOf(s.queued_at),
    started_at: iso(s.started_at),
    completed_at: iso(s.completed_at),
    duration_ms: s.duration_ms ?? null,
  };
}

const ENDS: Record<string, string> = {
  STEP_COMPLETED: 'completed',
  STEP_FAILED: 'failed',
  STEP_RETRY_SCHEDULED: 'retry_scheduled',
  STEP_RELEASED: 'released',
  STEP_WAITING: 'waiting',
  STEP_CANCELLED: 'cancelled',
};

function attemptsOf(stepId: string, events: readonly StoredEvent[]): BundleAttempt[] {
  const out: BundleAttempt[] = [];
  let open: BundleAttempt | undefined;
  for (const e of events) {
    if (e.step_id !== stepId) continue;
    const d = e.data as { attempt?: unknown; code?: unknown; error?: unknown };
    if (e.type === 'STEP_STARTED') {
      open = { attempt: typeof d.attempt === 'number' ? d.attempt : out.length + 1, started_at: isoOf(e.at), outcome: 'running', ended_at: null, error: null };
      out.push(open);
    } else if (e.type === 'STEP_COPIED') {
      // A fork's step taken from its parent: one attempt, the parent's, ended when it was copied.
      out.push({ attempt: typeof d.attempt === 'number' ? d.attempt : out.length + 1, started_at: isoOf(e.at), outcome: 'copied', ended_at: isoOf(e.at), error: null });
      open = undefined;
    } else if (open && ENDS[e.type]) {
      open.outcome = ENDS[e.type] as string;
      open.ended_at = isoOf(e.at);
      if (typeof d.error === 'string') open.error = { code: typeof d.code === 'string' ? d.code : null, message: d.error };
      if (e.type !== 'STEP_WAITING') open = undefined;
    }
  }
  return out;
}

/** The llm steps' sessions: one line per session, then its messages and recorded tool calls, in order. */
async function transcriptsOf(swarm: Swarm, runId: string): Promise<Record<string, unknown[]>> {
  const sessions = (await swarm.store.listAgentSessions({ run_id: runId, limit: 100_000 })).filter((s) => s.step_id);
  const byCode = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  sessions.sort((a, b) => byCode(a.step_id as string, b.step_id as string) || a.created_at - b.created_at || byCode(a.id, b.id));
  const out: Record<string, unknown[]> = {};
  for (const s of sessions) {
    const lines = (out[s.step_id as string] ??= []);
    // From the checkpoint: where the loop's own messages start, and the agent versions it pinned (an import resumes from them).
    const env = (await swarm.store.getAgentSession(s.id))?.envelope;
    const p = env ? (JSON.parse(env) as { payload?: { input_count?: number; agent_versions?: Record<string, string> } }).payload : undefined;
    lines.push({
      kind: 'session', session_id: s.id, agent: s.agent, current_agent: s.current_agent, status: s.status, turns: s.turns, input_tokens: s.input_tokens, output_tokens: s.output_tokens, cost_usd: s.cost_usd,
      input_count: p?.input_count ?? null, agent_versions: p?.agent_versions ?? null, created_at: isoOf(s.created_at),
    });
    for (const m of await swarm.store.getAgentMessages(s.id)) {
      lines.push({ kind: 'message', session_id: s.id, seq: m.seq, role: m.role, agent: m.agent, content: m.content, tool_calls: m.tool_calls, tool_call_id: m.tool_call_id, name: m.name, usage: m.usage, at: isoOf(m.at) });
    }
    const calls = [...(await swarm.store.listToolCalls(s.id))].sort((a, b) => a.turn - b.turn || (a.call_id < b.call_id ? -1 : a.call_id > b.call_id ? 1 : 0));
    for (const c of calls) {
      lines.push({ kind: 'tool_call', session_id: s.id, turn: c.turn, call_id: c.call_id, name: c.name, arguments: c.arguments, output: c.output, is_error: c.is_error, handoff: c.handoff, context_variables: c.context_variables, at: isoOf(c.at) });
    }
  }
  return out;
}
