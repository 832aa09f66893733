/**
 * The layout of a run bundle (docs/branching.md): what `swarm runs export` writes, `swarm verify`
 * checks offline and `swarm runs import` reads. A bundle is a deterministic POSIX tar: entries
 * sorted by path (the two attestation entries last), mtime 0, uid/gid 0, owner names empty, mode
 * 0644, and every JSON entry in canonical JSON (src/core/canonical-json.ts) followed by one newline.
 *
 * Two parts:
 * - the **state**: every entry except `result.json` and `certificate.json`. `manifest.json` lists
 *   every other state entry with its size and digest. The state's digest (`bundle_sha256`) is the
 *   SHA-256 of the state tar: the deterministic tar of the state entries alone.
 * - the **attestation**: `result.json` (which names the state's digest) and `certificate.json`
 *   (signed; binds request, parent state, result and new state).
 *
 * No digest covers itself: nothing in the state names `bundle_sha256` or `bundle_manifest_sha256`.
 */

/** `format` of manifest.json. A reader refuses any other. */
export const BUNDLE_FORMAT = 'swarm-run-bundle/1';

/** Every digest in a bundle is written `sha256:<64 hex>` (the contracts' pattern). */
export type Sha256Ref = `sha256:${string}`;

export const BUNDLE_PATHS = {
  /** The state's table of contents (BundleManifest). */
  manifest: 'manifest.json',
  /** agent_swarm node v1 (../shared/contracts/agent_swarm/node.schema.json): this run as a node of the fork tree. */
  node: 'node.json',
  /** The run: id, workflow, status, input, output, error, times, parent link (BundleRun). */
  run: 'run.json',
  /** The workflow definition this run ran, with its digest (BundleWorkflow). */
  workflow: 'workflow.json',
  /** The agent packages the run's steps used: name, version, digest (BundleAgent[]). */
  agents: 'agents.json',
  /** What started the run: trigger kind and data. */
  trigger: 'trigger.json',
  /** The event chain, one canonical JSON object a line (BundleEvent). */
  events: 'events.jsonl',
  /** `steps/<step id>.json`: one step's resolved input, output, status, attempts, error (BundleStep). */
  stepsDir: 'steps/',
  /** `transcripts/<step id>.jsonl`: an llm step's turns (model responses and tool results), in order. */
  transcriptsDir: 'transcripts/',
  /** agent_swarm result v1: outside the state (it names the state's digest). */
  result: 'result.json',
  /** agent_swarm certificate v1, signed: outside the state, the last entry. */
  certificate: 'certificate.json',
} as const;

/** The attestation entries, in the order they follow the state entries. */
export const ATTESTATION_PATHS = [BUNDLE_PATHS.result, BUNDLE_PATHS.certificate] as const;

export interface BundleManifestFile {
  path: string;
  size: number;
  sha256: Sha256Ref;
}

/** manifest.json. `files` is sorted by path and lists every state entry but manifest.json itself. */
export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  run_id: string;
  files: BundleManifestFile[];
}

/**
 * One line of events.jsonl. `hash` = sha256 of `prev_hash` + "\n" + canonical JSON of the event
 * without `hash` (the first event's `prev_hash` is 64 zeros): a chain anyone can check offline. The
 * store's own chain is keyed (HMAC under the master key) and is verified before export; it is not
 * carried in the bundle.
 */
export interface BundleEvent {
  seq: number;
  type: string;
  step_id: string | null;
  at: string;
  data: unknown;
  prev_hash: string;
  hash: string;
}

/** The certificate's signature (added field; the schema allows it): Ed25519 over the canonical JSON of the certificate without `signature`. */
export interface CertificateSignature {
  alg: 'ed25519';
  /** The signing key's name in the exporting store (`swarm keys list`). */
  key_name: string;
  /** Base64 of the raw 32-byte public key, as `swarm keys export-public` prints it. */
  public_key: string;
  /** Base64 signature. */
  value: string;
}
