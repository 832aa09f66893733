/**
 * Build a bundle's bytes from a run's snapshot (plain data the exporter read from a store): the
 * state entries, manifest.json, node.json, then result.json and the signed certificate.json. Pure
 * apart from the signer: the same snapshot and key give the same bytes (Ed25519 is deterministic).
 *
 * @example
 *   const built = await buildBundle(snapshot, (bytes) => ({ key_name: 'runs', public_key, value: sign(null, bytes, pem).toString('base64') }));
 *   built.bundle_sha256  // 'sha256:…' (the state's digest)
 */
import { BUNDLE_FORMAT, BUNDLE_PATHS, type BundleEvent, type BundleManifest, type BundleManifestFile, type CertificateSignature, type Sha256Ref } from './layout.js';
import {
  artifactHash,
  CERTIFICATE_MODE,
  CERTIFICATE_TYPE,
  certificateSignedBytes,
  chainEvents,
  entryJson,
  entryJsonl,
  GENESIS_STATE_ID,
  NODE_SCHEMA_VERSION,
  requestHash,
  RESPONSE_LOCATOR,
  responseHash,
  sha256Ref,
  STATE_ENGINE,
  stateDigest,
  workflowRef,
} from './model.js';
import { sortEntries, writeTar, type TarEntry } from './tar.js';

/** How the run came to be: `result.json#/operation`. */
export type BundleOperation = 'run' | 'fork' | 'import';

/** run.json: the run itself. Times are ISO strings from the run, never the exporter's clock. */
export interface BundleRun {
  id: string;
  workflow: { id: string; name: string; version: string; digest: Sha256Ref };
  status: string;
  trigger_type: string;
  /** The run's input (its trigger data, as stored: redacted). */
  input: unknown;
  /** The outputs of its final steps (no step depends on them), by step id: what a parent step of a sub-workflow gets. */
  output: Record<string, unknown>;
  error: string | null;
  error_step: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  steps_total: number;
  metadata: Record<string, string> | null;
  /** The run and step this run is the sub-workflow of, or null. */
  sub_workflow_of: { run_id: string; step_id: string | null } | null;
  /** A fork: its parent, the parent's bundle digest, where it forked, and its depth in the fork tree. */
  fork: { parent_run_id: string; parent_bundle_sha256: Sha256Ref; at_step: string | null; turn: number | null; depth: number } | null;
}

/**
 * workflow.json: the definition the run ran (its frozen plan's workflow) and its digest, as the
 * registry computes it (`sha256:` + sha256 of the definition's canonical JSON: store/rows.ts workflowDigest).
 */
export interface BundleWorkflow {
  id: string;
  name: string;
  version: string;
  digest: Sha256Ref;
  definition: unknown;
}

/** agents.json entries: the agent packages the run's steps used. */
export interface BundleAgent {
  id: string;
  name: string;
  version: string;
  digest: Sha256Ref;
  /** The steps that ran it. */
  steps: string[];
}

/** One attempt of a step, from its events. */
export interface BundleAttempt {
  attempt: number;
  started_at: string;
  /** `completed`, `failed`, `retry_scheduled`, `released`, `waiting`, `cancelled`, `copied` (a fork's step from its parent), or `running` if no event ended it. */
  outcome: string;
  ended_at: string | null;
  error: { code: string | null; message: string } | null;
}

/** steps/<id>.json. */
export interface BundleStep {
  step_id: string;
  index: number;
  map_index: number | null;
  agent: { name: string; version: string };
  status: string;
  inputs: unknown;
  outputs: unknown;
  error: string | null;
  attempt: number;
  retry_count: number;
  attempts: BundleAttempt[];
  queued_at: string;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
}

/** Everything a bundle holds, read from a store (export.ts) or from another bundle. */
export interface RunSnapshot {
  run: BundleRun;
  workflow: BundleWorkflow;
  agents: BundleAgent[];
  trigger: { type: string; data: unknown };
  /** The run's events in order, without the bundle chain's hashes (chained here). */
  events: Array<Omit<BundleEvent, 'hash' | 'prev_hash'>>;
  steps: BundleStep[];
  /** An llm step's transcript lines, by step id. */
  transcripts: Record<string, unknown[]>;
  operation: BundleOperation;
  /** `swarm-local/<sqlite|postgres>`. */
  runner_class: string;
  /** Whether any step reached the network through net_cap (node.json `network.route_mode`). */
  net_cap: boolean;
}

/** Signs the certificate's bytes (canonical JSON without `signature`). */
export type CertificateSigner = (bytes: Buffer) => CertificateSignature | Promise<CertificateSignature>;

/** A built bundle: its bytes and the digests it names. */
export interface BuiltBundle {
  bytes: Buffer;
  /** The state's digest (what a fork's certificate names as its parent state). */
  bundle_sha256: Sha256Ref;
  bundle_manifest_sha256: Sha256Ref;
  certificate_sha256: Sha256Ref;
  /** sha256 of the whole tar file. */
  file_sha256: Sha256Ref;
  run_id: string;
  signer: { key_name: string; public_key: string };
}

/** The state entries of a snapshot (everything but result.json and certificate.json), in order. */
export function stateEntries(s: RunSnapshot): TarEntry[] {
  const files: TarEntry[] = [
    { path: BUNDLE_PATHS.run, data: entryJson(s.run) },
    { path: BUNDLE_PATHS.workflow, data: entryJson(s.workflow) },
    { path: BUNDLE_PATHS.agents, data: entryJson(s.agents) },
    { path: BUNDLE_PATHS.trigger, data: entryJson(s.trigger) },
    { path: BUNDLE_PATHS.events, data: entryJsonl(chainEvents(s.events)) },
  ];
  for (const step of s.steps) files.push({ path: `${BUNDLE_PATHS.stepsDir}${step.step_id}.json`, data: entryJson(step) });
  for (const [stepId, lines] of Object.entries(s.transcripts)) files.push({ path: `${BUNDLE_PATHS.transcriptsDir}${stepId}.jsonl`, data: entryJsonl(lines) });
  const listed = sortEntries(files).map((f): BundleManifestFile => ({ path: f.path, size: f.data.length, sha256: sha256Ref(f.data) }));
  const events = files.find((f) => f.path === BUNDLE_PATHS.events) as TarEntry;
  const depth = s.run.fork?.depth ?? 0;
  const node = {
    schema_version: NODE_SCHEMA_VERSION,
    node_id: s.run.id,
    parent_node_id: s.run.fork?.parent_run_id ?? null,
    created_at: s.run.created_at,
    workspace: { mode: 'snapshot', artifact_hash: artifactHash(listed), artifact_ref: BUNDLE_PATHS.stepsDir },
    state_db: { snapshot_hash: sha256Ref(events.data), snapshot_ref: BUNDLE_PATHS.events, ratchet_step: depth, state_id: s.run.id, engine: STATE_ENGINE },
    runtime: { checkpoint_supported: true, restore_compat: { substrate: s.runner_class } },
    network: { route_mode: s.net_cap ? 'client_exit' : 'direct', token: { token_ref: s.net_cap ? 'net_cap' : 'none', ratchet_step: depth } },
    tags: [`workflow:${s.run.workflow.name}`, `status:${s.run.status}`, `operation:${s.operation}`],
  };
  const nodeEntry = { path: BUNDLE_PATHS.node, data: entryJson(node) };
  files.push(nodeEntry);
  listed.push({ path: nodeEntry.path, size: nodeEntry.data.length, sha256: sha256Ref(nodeEntry.data) });
  const manifest: BundleManifest = { format: BUNDLE_FORMAT, run_id: s.run.id, files: sortEntries(listed) };
  files.push({ path: BUNDLE_PATHS.manifest, data: entryJson(manifest) });
  return sortEntries(files);
}

/** What the attestation entries are computed from (the verifier rebuilds it from the state). */
export type AttestationInputs = Pick<RunSnapshot, 'run' | 'workflow' | 'trigger' | 'operation' | 'runner_class'>;

/** result.json of a run given its state's digest. */
export function resultJson(s: AttestationInputs, bundleSha256: Sha256Ref, artifact: Sha256Ref): Record<string, unknown> {
  return {
    run_id: s.run.id,
    status: s.run.status,
    operation: s.operation,
    node_id: s.run.id,
    parent_node_id: s.run.fork?.parent_run_id ?? null,
    state_id: s.run.id,
    restore_mode: s.operation === 'fork' ? 'checkpoint' : 'cold_start',
    bundle_ref: BUNDLE_PATHS.manifest,
    bundle_sha256: bundleSha256,
    certificate_ref: BUNDLE_PATHS.certificate,
    artifact_hash: artifact,
  };
}

/** certificate.json without its signature. */
export function unsignedCertificate(s: AttestationInputs, bundleSha256: Sha256Ref, manifestSha256: Sha256Ref): Record<string, unknown> {
  const finishedAt = s.run.finished_at ?? s.run.created_at;
  return {
    type: CERTIFICATE_TYPE,
    job_id: s.run.id,
    mode: CERTIFICATE_MODE,
    request_hash: requestHash(s.workflow.digest, s.trigger.data),
    parent_state: {
      state_id: s.run.fork?.parent_run_id ?? GENESIS_STATE_ID,
      bundle_sha256: s.run.fork?.parent_bundle_sha256 ?? sha256Ref(''),
      ratchet_step: s.run.fork?.depth ?? 0,
    },
    result: {
      response_sha256: responseHash(s.run.output),
      response_locator: RESPONSE_LOCATOR,
      new_state: { state_id: s.run.id, bundle_sha256: bundleSha256, bundle_manifest_sha256: manifestSha256 },
    },
    runtime: {
      workflow_ref: workflowRef(s.workflow.name, s.workflow.version, s.workflow.digest),
      runner_class: s.runner_class,
      started_at: s.run.started_at ?? s.run.created_at,
      finished_at: finishedAt,
    },
    timestamp: finishedAt,
  };
}

/** The state's digest of a snapshot, without building the attestation (a fork's parent digest). */
export async function snapshotStateDigest(s: RunSnapshot): Promise<Sha256Ref> {
  return stateDigest(stateEntries(s));
}

/** Build the whole bundle: state, result.json, signed certificate.json. */
export async function buildBundle(s: RunSnapshot, sign: CertificateSigner): Promise<BuiltBundle> {
  const state = stateEntries(s);
  const bundleSha = await stateDigest(state);
  const manifest = state.find((e) => e.path === BUNDLE_PATHS.manifest) as TarEntry;
  const manifestSha = sha256Ref(manifest.data);
  const node = JSON.parse(String((state.find((e) => e.path === BUNDLE_PATHS.node) as TarEntry).data)) as { workspace: { artifact_hash: Sha256Ref } };
  const result = resultJson(s, bundleSha, node.workspace.artifact_hash);
  const unsigned = unsignedCertificate(s, bundleSha, manifestSha);
  const signature = await sign(certificateSignedBytes(unsigned));
  const certificate = entryJson({ ...unsigned, signature });
  const bytes = await writeTar(sortEntries([...state, { path: BUNDLE_PATHS.result, data: entryJson(result) }, { path: BUNDLE_PATHS.certificate, data: certificate }]));
  return {
    bytes,
    bundle_sha256: bundleSha,
    bundle_manifest_sha256: manifestSha,
    certificate_sha256: sha256Ref(certificate),
    file_sha256: sha256Ref(bytes),
    run_id: s.run.id,
    signer: { key_name: signature.key_name, public_key: signature.public_key },
  };
}
