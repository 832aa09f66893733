/**
 * `swarm runs import <bundle.tar>` (docs/branching.md, "Import"): make a run of this store from a
 * bundle made elsewhere, so it can be inspected and forked here.
 *
 * 1. The bundle is verified first (src/bundles/verify.ts, optionally against a pinned signer); one
 *    that does not verify is refused with exit 3 and nothing is written.
 * 2. The run keeps its id. A run of that id imported from the same bundle: a no-op naming it. Any
 *    other run of that id: exit 2 (RUN_ID_TAKEN).
 * 3. The workflow: the local version of the same name and version when there is one (a note when
 *    its content differs from the bundle's definition: both digests of canonical JSON, store/rows.ts
 *    workflowDigest, whatever digest the local row was registered with), else the bundle's snapshot,
 *    registered disabled (so its triggers do not fire here). The plan resolves agents against the
 *    local registry, as a fork re-runs steps with the local agents (AGENT_NOT_FOUND, exit 2, for a
 *    missing one; a note for each whose content differs from the bundle's: its manifest's digest,
 *    wherever either was registered from). A sub-workflow step's workflow (`name@range`, resolved
 *    when the step starts) must be registered here too: the bundle carries no definition of it, and
 *    a fork that runs the step starts it here (WORKFLOW_NOT_FOUND, exit 2; a note when it is
 *    registered but disabled). Nothing is written before these checks pass.
 * 4. One transaction: the run's rows, RUN_CREATED, RUN_IMPORTED {bundle_sha256, source_run_id,
 *    certificate_sha256, ratchet_step}, one STEP_COPIED per completed step (its output's digest, the bundle's
 *    completion event hash), the other steps set to their bundle status (each with its STEP_SKIPPED,
 *    STEP_FAILED or STEP_CANCELLED: the bundle's attempt and retry count), the llm steps' sessions from
 *    the bundle's transcripts (rows, transcript, tool ledger: shown here, and `--turn` forks resume
 *    from them), and the run's terminal event (RUN_COMPLETED / RUN_FAILED / RUN_CANCELLED with
 *    `imported: true` and the bundle's `started_at`, `completed_at`), chained under the local key.
 * 5. The bundle's bytes are kept (`imported_bundles`): exporting the run again gives the original
 *    file (`exportRun`), and a fork of it names the original digest as its parent state.
 *
 * @example
 *   const r = await swarm.importBundle(readFileSync('run.tar'));
 *   // r.run_id (the bundle's), r.created true (false: it was imported before), r.notes
 */
import { UserError, VerificationError } from '../core/errors.js';
import { digestJson, EventType } from '../core/events.js';
import { TERMINAL_RUN, type RunStatus, type StepStatus } from '../core/states.js';
import { parseRef, pickRecord } from '../core/manifest/agent.js';
import type { WorkflowManifest } from '../core/manifest/workflow.js';
import { Ledger } from '../engine/ledger.js';
import { agentsFor, buildRunPlan, loadPlan } from '../engine/plan.js';
import { serializedPlan } from '../engine/registry-cache.js';
import { TxScope } from '../engine/tx-scope.js';
import type { Redactor } from '../secrets/redactor.js';
import { sameAgentContent, workflowDigest, workflowRecord } from '../store/rows.js';
import type { ImportedBundleRecord } from '../store/share-types.js';
import type { JournalWrite } from '../store/fork-types.js';
import type { AgentMessageRecord, AgentSessionRecord, ToolCallRecord, WorkflowRecord } from '../store/types.js';
import { compacted } from '../agents/checkpoint-compaction.js';
import { CHECKPOINT_VERSION, type CheckpointEnvelope } from '../agents/loop.js';
import { BUNDLE_PATHS } from '../bundles/layout.js';
import type { Store } from '../store/store.js';
import type { BundleAgent, BundleRun, BundleStep, BundleWorkflow } from '../bundles/build.js';
import type { BundleEvent } from '../bundles/layout.js';
import { asSha256Ref } from '../bundles/model.js';
import { readBundle } from '../bundles/read.js';
import { verifyBundle, type VerifyBundleReport } from '../bundles/verify.js';

export interface ImportDeps {
  store: Store;
  chainKey: Buffer;
  maxEventBytes: number;
  config: Record<string, unknown>;
  defaultRunConcurrency: number;
  redactor?: Redactor;
}

export interface ImportOptions {
  /** The expected signer (base64 Ed25519 public key): refuse a bundle signed by another key. */
  publicKey?: string;
}

export interface ImportResult {
  run_id: string;
  /** false: the bundle was imported before (nothing written). */
  created: boolean;
  workflow: string;
  status: string;
  bundle_sha256: string;
  certificate_sha256: string;
  copied: string[];
  /** The workflow snapshot was registered (disabled) because this store did not know it. */
  registered_workflow: boolean;
  /** What deserves a word: digests that differ from the bundle's, an unpinned signer. */
  notes: string[];
  verify: Pick<VerifyBundleReport, 'checks' | 'signer' | 'parent'>;
}

const ms = (iso: string | null | undefined): number | null => (iso ? Date.parse(iso) : null);
const TERMINAL_STEP = new Set<StepStatus>(['completed', 'failed', 'skipped', 'cancelled']);

/** Import plain bundle bytes (decrypt first: src/bundles/encrypt.ts). See the module comment. */
export async function importBundle(deps: ImportDeps, bytes: Buffer, options: ImportOptions = {}): Promise<ImportResult> {
  const report = await verifyBundle(bytes, options.publicKey ? { publicKey: options.publicKey } : {});
  if (!report.ok) {
    const why = report.problem?.message ?? 'it does not verify';
    if (report.exit_code === 2) throw new UserError('BUNDLE_INVALID', `not imported: ${why}`);
    throw new VerificationError(`not imported: the bundle does not verify: ${why}`, { file: report.problem?.path });
  }
  const parsed = await readBundle(bytes);
  const run = parsed.json<BundleRun>('run.json');
  const workflow = parsed.json<BundleWorkflow>('workflow.json');
  const agents = parsed.json<BundleAgent[]>('agents.json');
  const steps = parsed.manifest.files.filter((f) => f.path.startsWith('steps/')).map((f) => parsed.json<BundleStep>(f.path));
  const events = parsed
    .text('events.jsonl')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as BundleEvent);
  const ratchet = parsed.json<{ state_db: { ratchet_step: number } }>('node.json').state_db.ratchet_step;
  const journals = parsed.manifest.files
    .filter((f) => f.path.startsWith(BUNDLE_PATHS.transcriptsDir))
    .flatMap((f) => journalsOf(run.id, f.path.slice(BUNDLE_PATHS.transcriptsDir.length, -'.jsonl'.length), parsed.text(f.path), ms(run.started_at) ?? 0));
  const bundleSha = report.bundle_sha256 as string;
  const certSha = report.certificate_sha256 as string;
  const verify = { checks: report.checks, signer: report.signer, parent: report.parent };
  const notes = [...report.notes];
  const { store } = deps;

  const existing = await store.getRun(run.id);
  if (existing) return already(deps, bytes, run, existing.status, bundleSha, certSha, verify);
  if (!TERMINAL_RUN.has(run.status as RunStatus)) throw new UserError('RUN_NOT_FINISHED', `the bundle's run ${run.id} is ${run.status}: only a finished run can be imported`, { runId: run.id });

  // The workflow: the local one of that name and version, else the bundle's snapshot (registered disabled).
  const local = (await store.listWorkflows(workflow.name)).find((w) => w.version === workflow.version);
  let wf: WorkflowRecord;
  let registered = false;
  // The plan freezes the bundle's definition with the local agents (a fork re-runs steps with them).
  const manifest = workflow.definition as WorkflowManifest;
  if (local) {
    wf = local;
    // By content: the digest of the local manifest and of the bundle's definition, computed the same
    // way (canonical JSON), so neither a local row registered before digests were canonical nor a
    // bundle exported then makes a false "differs"; both shown as `sha256:<hex>`, as bundles spell them.
    const [here, there] = [asSha256Ref(workflowDigest(local.manifest)), asSha256Ref(workflowDigest(manifest))];
    if (here !== there) notes.push(`workflow ${workflow.name}@${workflow.version} here differs from the bundle's (digest ${here.slice(0, 19)}… here, ${there.slice(0, 19)}… in the bundle); the import uses the bundle's definition in its plan`);
  } else {
    wf = { ...workflowRecord(manifest, `bundle:${run.id}`), enabled: false };
    registered = true;
  }
  const versionsOf = await agentsFor(manifest, (n) => store.listAgents(n));
  const plan = buildRunPlan({ ...wf, manifest }, versionsOf, deps.config);
  for (const a of agents) {
    const here = (await store.listAgents(a.name)).find((r) => r.version === a.version);
    // By content (the manifest's digest, rows.ts agentDigest), not by where either was registered
    // from: a row registered before digests left the directory out compares by its manifest too,
    // and a bundle exported then (its digest covers the exporter's directory) matches a package of
    // the same manifest at the same path here.
    if (here && !sameAgentContent(here, a.digest)) notes.push(`agent ${a.name}@${a.version} here differs from the bundle's (a fork re-runs its steps with the local one)`);
  }
  notes.push(...(await subWorkflowNotes(store, wf, manifest)));
  if (registered) await store.putWorkflow(wf, false);

  const completedHash = new Map<string, string>();
  for (const e of events) if (e.type === EventType.STEP_COMPLETED && e.step_id) completedHash.set(e.step_id, e.hash);
  const byId = new Map(steps.filter((s) => s.map_index === null).map((s) => [s.step_id, s]));
  const loaded = loadPlan(serializedPlan(plan).plan_json);
  const copied: string[] = [];
  const ledger = new Ledger({
    random: Math.random,
    // The imported run keeps the bundle's id.
    newRunId: () => run.id,
    secrets: () => undefined,
    config: deps.config,
    defaultRunConcurrency: deps.defaultRunConcurrency,
    eventPayloadBytes: deps.maxEventBytes,
    chainKey: deps.chainKey,
    ...(deps.redactor ? { redactor: deps.redactor } : {}),
  });

  await store.transaction(async (tx) => {
    // The run's times are the bundle's: created, started and finished where it ran (not "created"
    // at the import, after it finished).
    const createdAt = ms(run.created_at);
    const { id } = await ledger.createRunOnce(tx, wf, plan, { trigger_type: 'import', trigger_data: run.input ?? {}, metadata: run.metadata, ...(createdAt !== null && Number.isFinite(createdAt) ? { created_at: createdAt } : {}) });
    const scope = new TxScope(tx, deps.maxEventBytes, deps.chainKey);
    const state = await scope.run(id);
    // ratchet_step: the run's depth in its fork tree where it was made, so a fork made here counts on from it.
    scope.emit(state, EventType.RUN_IMPORTED, null, { bundle_sha256: bundleSha, source_run_id: run.id, certificate_sha256: certSha, ratchet_step: ratchet });
    // In plan order, so a step's dependencies are settled before it.
    for (const s of plan.workflow.steps) {
      const b = byId.get(s.id);
      if (!b) continue;
      if (b.status === 'completed') {
        const outputsJson = JSON.stringify(b.outputs ?? {});
        const ok = await tx.updateStep({ run_id: id, step_id: s.id }, ['pending', 'ready'], {
          status: 'completed',
          pending_deps: 0,
          attempt: b.attempt,
          retry_count: b.retry_count,
          available_at: null,
          outputs_json: outputsJson,
          inputs_json: b.inputs === undefined ? null : JSON.stringify(b.inputs),
          error: null,
          started_at: ms(b.started_at),
          completed_at: ms(b.completed_at),
          duration_ms: b.duration_ms,
        });
        if (!ok) throw new Error(`import ${id}: step '${s.id}' was not pending or ready`);
        state.steps_remaining--;
        const succ = loaded.successors.get(s.id) ?? [];
        if (succ.length) await tx.releaseDeps(id, succ, tx.now);
        scope.emit(state, EventType.STEP_COPIED, s.id, { from_run_id: run.id, attempt: b.attempt, output_sha256: digestJson(outputsJson), parent_event_hash: completedHash.get(s.id) ?? null, replaced: false, from_bundle: bundleSha });
        copied.push(s.id);
      } else {
        // Not completed there: it keeps the bundle's final status (a run that is over has no step left to run).
        const status: StepStatus = TERMINAL_STEP.has(b.status as StepStatus) ? (b.status as StepStatus) : 'cancelled';
        await tx.updateStep({ run_id: id, step_id: s.id }, ['pending', 'ready'], { status, available_at: null, error: b.error, attempt: b.attempt, retry_count: b.retry_count, started_at: ms(b.started_at), completed_at: ms(b.completed_at), duration_ms: b.duration_ms });
        state.steps_remaining--;
        // Its end in the log, as a local run records it (what `swarm log replay` folds into the row written above).
        const ended = status === 'skipped' ? { type: EventType.STEP_SKIPPED, data: { reason: b.error, retry_count: b.retry_count } } : status === 'failed' ? { type: EventType.STEP_FAILED, data: { error: b.error, failures: b.retry_count } } : { type: EventType.STEP_CANCELLED, data: { retry_count: b.retry_count } };
        scope.emit(state, ended.type, s.id, { attempt: b.attempt, ...ended.data, from_bundle: bundleSha });
      }
    }
    // The llm steps' sessions, as the bundle's transcripts recorded them: shown here, and a fork at a turn resumes from them.
    for (const j of journals) await tx.fork().writeJournal(j);
    state.status = run.status as RunStatus;
    state.started_at = ms(run.started_at);
    state.completed_at = ms(run.finished_at) ?? tx.now;
    state.error = run.error;
    state.error_step = run.error_step;
    const terminal = run.status === 'completed' ? EventType.RUN_COMPLETED : run.status === 'failed' ? EventType.RUN_FAILED : EventType.RUN_CANCELLED;
    // The times the rows keep (the bundle's, not the import's), so the log says them too.
    scope.emit(state, terminal, null, { imported: true, started_at: state.started_at, completed_at: state.completed_at, ...(run.error ? { error: run.error, step: run.error_step } : {}) });
    await scope.flush();
  });
  await store.insertImportedBundle({ run_id: run.id, bundle_sha256: bundleSha, certificate_sha256: certSha, source_run_id: run.id, bundle: bytes, imported_at: Date.now() });
  return { run_id: run.id, created: true, workflow: `${wf.name}@${wf.version}`, status: run.status, bundle_sha256: bundleSha, certificate_sha256: certSha, copied, registered_workflow: registered, notes, verify };
}

/**
 * The sub-workflows the plan's steps name (`workflow: name@range`), checked against the local
 * registry as a missing agent is (buildRunPlan): such a step's workflow is resolved when the step
 * starts (src/engine/nesting.ts), and the bundle carries no definition of it, so a fork that runs
 * the step would fail there. One that is not registered refuses the import (WORKFLOW_NOT_FOUND,
 * exit 2, naming the step and the workflow); one registered but disabled (a bundle of its own run
 * imported here) gets a note. Returns the notes.
 */
async function subWorkflowNotes(store: Store, wf: Pick<WorkflowRecord, 'name' | 'version'>, manifest: WorkflowManifest): Promise<string[]> {
  const notes: string[] = [];
  for (const s of manifest.steps) {
    if (s.workflow === undefined) continue;
    const { name, range } = parseRef(s.workflow);
    const versions = await store.listWorkflows(name);
    const sub = pickRecord(versions, range);
    if (!sub) {
      throw new UserError(
        'WORKFLOW_NOT_FOUND',
        `not imported: workflow ${wf.name}@${wf.version}, step '${s.id}': sub-workflow '${s.workflow}' is not registered here${versions.length ? ` (registered: ${versions.map((v) => v.version).join(', ')})` : ''}; register it, then import again`,
        { stepId: s.id, workflow: s.workflow },
      );
    }
    if (!sub.enabled) notes.push(`sub-workflow ${sub.id} of step '${s.id}' is disabled here: a fork that runs that step fails until 'swarm workflow enable ${sub.name}'`);
  }
  return notes;
}

/** The run id exists: the same bundle again is a no-op (finishing an import cut short before its row); anything else is RUN_ID_TAKEN. */
async function already(deps: ImportDeps, bytes: Buffer, run: BundleRun, status: string, bundleSha: string, certSha: string, verify: ImportResult['verify']): Promise<ImportResult> {
  const rec = await deps.store.getImportedBundle(run.id);
  const same = (r: ImportedBundleRecord | undefined): boolean => r?.bundle_sha256 === bundleSha && r.certificate_sha256 === certSha;
  if (!rec) {
    // A crash between the run's transaction and the bundle's row: the run's RUN_IMPORTED says which bundle.
    const head = await deps.store.getEvents(run.id, 0, 2);
    const d = head.find((e) => e.type === EventType.RUN_IMPORTED)?.data as { bundle_sha256?: string; certificate_sha256?: string } | undefined;
    if (d?.bundle_sha256 !== bundleSha || d.certificate_sha256 !== certSha) throw taken(run.id);
    await deps.store.insertImportedBundle({ run_id: run.id, bundle_sha256: bundleSha, certificate_sha256: certSha, source_run_id: run.id, bundle: bytes, imported_at: Date.now() });
    return { run_id: run.id, created: false, workflow: `${run.workflow.name}@${run.workflow.version}`, status, bundle_sha256: bundleSha, certificate_sha256: certSha, copied: [], registered_workflow: false, notes: ['the import was cut short before; its bundle is recorded now'], verify };
  }
  if (!same(rec)) throw taken(run.id);
  return { run_id: run.id, created: false, workflow: `${run.workflow.name}@${run.workflow.version}`, status, bundle_sha256: bundleSha, certificate_sha256: certSha, copied: [], registered_workflow: false, notes: [`already imported: run ${run.id}`], verify };
}

/** One line of `transcripts/<step>.jsonl` (src/bundles/export.ts, transcriptsOf). */
type TranscriptLine =
  | { kind: 'session'; session_id: string; agent: string; current_agent: string; status: AgentSessionRecord['status']; turns: number; input_tokens: number; output_tokens: number; cost_usd: number; input_count?: number | null; agent_versions?: Record<string, string> | null; created_at?: string }
  | ({ kind: 'message'; session_id: string; at: string } & Omit<AgentMessageRecord, 'session_id' | 'at'>)
  | ({ kind: 'tool_call'; session_id: string; at: string } & Omit<ToolCallRecord, 'session_id' | 'at'>);

/**
 * The sessions of one step's transcript as this store writes them: the row, the transcript, the tool
 * ledger, and a compacted checkpoint envelope (its conversation is the transcript). A bundle made
 * before session lines carried `input_count` counts the messages before the first model response.
 */
function journalsOf(runId: string, stepId: string, text: string, runStart: number): JournalWrite[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as TranscriptLine);
  const out: JournalWrite[] = [];
  for (const head of lines) {
    if (head.kind !== 'session') continue;
    const messages: AgentMessageRecord[] = [];
    const calls: ToolCallRecord[] = [];
    for (const l of lines) {
      if (l.session_id !== head.session_id || l.kind === 'session') continue;
      const { kind: _kind, at, ...rest } = l;
      if (l.kind === 'message') messages.push({ ...(rest as Omit<AgentMessageRecord, 'at'>), at: Date.parse(at) });
      else calls.push({ ...(rest as Omit<ToolCallRecord, 'at'>), at: Date.parse(at) });
    }
    const firstAnswer = messages.findIndex((m) => m.role === 'assistant');
    const inputCount = head.input_count ?? (firstAnswer < 0 ? messages.length : firstAnswer);
    const created = ms(head.created_at) ?? messages[0]?.at ?? runStart;
    const updated = Math.max(created, ...messages.map((m) => m.at), ...calls.map((c) => c.at));
    let contextVariables: Record<string, unknown> = {};
    for (const c of [...calls].sort((a, b) => a.turn - b.turn || a.at - b.at)) if (c.context_variables) contextVariables = { ...contextVariables, ...(JSON.parse(c.context_variables) as Record<string, unknown>) };
    const envelope: CheckpointEnvelope = {
      version: CHECKPOINT_VERSION,
      session_id: head.session_id,
      created_at: created,
      payload: {
        agent: head.current_agent,
        turn: head.turns,
        turn_base: 0,
        ...(head.agent_versions ? { agent_versions: head.agent_versions } : {}),
        messages: [],
        input_count: inputCount,
        context_variables: contextVariables,
        pending_tool_calls: [],
        usage: { input_tokens: head.input_tokens, output_tokens: head.output_tokens, cost_usd: head.cost_usd },
        status: head.status === 'completed' ? 'completed' : 'running',
        output_retries: 0,
      },
    };
    out.push({
      session: { id: head.session_id, run_id: runId, step_id: stepId, agent: head.agent, current_agent: head.current_agent, status: head.status, turns: head.turns, input_tokens: head.input_tokens, output_tokens: head.output_tokens, cost_usd: head.cost_usd, created_at: created, updated_at: updated },
      envelope: JSON.stringify(compacted(envelope, messages.length)),
      envelope_version: CHECKPOINT_VERSION,
      messages,
      tool_calls: calls,
    });
  }
  return out;
}

function taken(runId: string): UserError {
  return new UserError('RUN_ID_TAKEN', `a different run with id ${runId} exists in this store (not this bundle's import); nothing imported`, { runId });
}
