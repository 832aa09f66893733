/**
 * The pure parts of a bundle that the exporter and the offline verifier must compute the same way:
 * canonical entries, the bundle's own event chain, the state digest, the request and response hashes,
 * the certificate's signed bytes. Nothing here reads a store or the clock.
 *
 * @example
 *   sha256Ref('')  // 'sha256:e3b0c442…b855'
 *   entryJson({ b: 1, a: 2 }).toString()  // '{"a":2,"b":1}\n'
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { ATTESTATION_PATHS, BUNDLE_PATHS, type BundleEvent, type CertificateSignature, type Sha256Ref } from './layout.js';
import { sortEntries, writeTar, type TarEntry } from './tar.js';

/** The first event's `prev_hash` in events.jsonl. */
export const BUNDLE_GENESIS_HASH = '0'.repeat(64);
/** `parent_state.state_id` of a run that is no fork. */
export const GENESIS_STATE_ID = 'genesis';
/** `certificate.type`, `mode` and the result locator: the contract's constants and Swarm's choice. */
export const CERTIFICATE_TYPE = 'loom-agent-run-v1';
export const CERTIFICATE_MODE = 'prompt-run';
export const RESPONSE_LOCATOR = 'run.json#/output';
export const NODE_SCHEMA_VERSION = 'agent_swarm-node-v1';
export const STATE_ENGINE = { kind: 'sqlite-serialized', schema_version: 'loom-state-v1' } as const;

/** `sha256:<hex>` of bytes or text. */
export function sha256Ref(data: string | Buffer): Sha256Ref {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hash of nothing: a root run's `parent_state.bundle_sha256`. */
export const EMPTY_SHA256: Sha256Ref = sha256Ref('');

/** A JSON entry's bytes: canonical JSON and one newline. */
export function entryJson(v: unknown): Buffer {
  return Buffer.from(`${canonicalJson(v)}\n`);
}

/** A JSON-lines entry's bytes: one canonical JSON value a line. */
export function entryJsonl(values: readonly unknown[]): Buffer {
  return Buffer.from(values.map((v) => `${canonicalJson(v)}\n`).join(''));
}

/** `hash` of an events.jsonl line: sha256 of `prev_hash` + "\n" + the canonical event without `hash` (layout.ts). */
export function bundleEventHash(e: Omit<BundleEvent, 'hash'>): string {
  const { seq, type, step_id, at, data, prev_hash } = e;
  return createHash('sha256').update(`${prev_hash}\n${canonicalJson({ seq, type, step_id, at, data, prev_hash })}`).digest('hex');
}

/** Chain events (seq, type, step, time, data) into events.jsonl lines. */
export function chainEvents(events: ReadonlyArray<Omit<BundleEvent, 'hash' | 'prev_hash'>>): BundleEvent[] {
  let prev = BUNDLE_GENESIS_HASH;
  return events.map((e) => {
    const line = { seq: e.seq, type: e.type, step_id: e.step_id, at: e.at, data: e.data, prev_hash: prev };
    const hash = bundleEventHash(line);
    prev = hash;
    return { ...line, hash };
  });
}

/** Is this path an attestation entry (result.json, certificate.json)? */
export function isAttestation(path: string): boolean {
  return (ATTESTATION_PATHS as readonly string[]).includes(path);
}

/** The state's digest (`bundle_sha256`): sha256 of the canonical tar of the state entries alone. */
export async function stateDigest(entries: readonly TarEntry[]): Promise<Sha256Ref> {
  return sha256Ref(await writeTar(sortEntries(entries.filter((e) => !isAttestation(e.path)))));
}

/** `request_hash`: sha256 of canonical `{workflow_digest, input}`. */
export function requestHash(workflowDigest: string, input: unknown): Sha256Ref {
  return sha256Ref(canonicalJson({ workflow_digest: workflowDigest, input: input ?? null }));
}

/** `result.response_sha256`: sha256 of the canonical run output. */
export function responseHash(output: unknown): Sha256Ref {
  return sha256Ref(canonicalJson(output ?? null));
}

/** `runtime.workflow_ref`: `<name>@<version>#sha256:<digest>`. */
export function workflowRef(name: string, version: string, digest: string): string {
  return `${name}@${version}#${digest.startsWith('sha256:') ? digest : `sha256:${digest}`}`;
}

/** A digest in the bundle's `sha256:<hex>` form (a bare hex digest gets the prefix). */
export function asSha256Ref(digest: string): Sha256Ref {
  return (digest.startsWith('sha256:') ? digest : `sha256:${digest}`) as Sha256Ref;
}

/** The bytes a certificate's signature covers: canonical JSON of the certificate without `signature`. */
export function certificateSignedBytes(certificate: Record<string, unknown>): Buffer {
  const { signature: _omit, ...rest } = certificate;
  return Buffer.from(canonicalJson(rest));
}

/**
 * `node.json#/workspace/artifact_hash` and `result.json#/artifact_hash`: the run's work product, the
 * step entries (path and digest of each `steps/…` entry, in order), hashed as canonical JSON.
 */
export function artifactHash(files: ReadonlyArray<{ path: string; sha256: string }>): Sha256Ref {
  return sha256Ref(canonicalJson(files.filter((f) => f.path.startsWith(BUNDLE_PATHS.stepsDir)).map((f) => ({ path: f.path, sha256: f.sha256 }))));
}

/** The raw 32-byte Ed25519 public key (base64) as an SPKI DER, for node:crypto. */
export function ed25519SpkiDer(publicKeyBase64: string): Buffer {
  return Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(publicKeyBase64, 'base64')]);
}

/** The signed certificate: the unsigned one and its signature block. */
export type SignedCertificate = Record<string, unknown> & { signature: CertificateSignature };
