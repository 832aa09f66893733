/**
 * The offline verifier (`swarm verify`): a pure function of a bundle's bytes (and optionally its
 * parent's). It needs no store, no swarm.yaml, no network. It checks, in this order, and stops at the
 * first thing that does not match:
 *
 *  1. the tar: complete, entries unique and in the bundle's order, canonical headers, canonical bytes;
 *  2. every JSON entry is canonical JSON (jsonl: every line);
 *  3. manifest.json: lists exactly the state entries, each with its size and sha256;
 *  4. node.json, result.json, certificate.json validate against the contract schemas;
 *  5. events.jsonl: seq 1..n, each prev_hash the previous hash, each hash recomputed;
 *  6. the state agrees with itself: run.json against the events, steps, workflow and trigger;
 *     node.json against run.json and the entries it hashes;
 *  7. result.json: every field recomputed from the state (incl. bundle_sha256, the state tar's digest);
 *  8. certificate.json: every bound hash and field recomputed, then the Ed25519 signature, then the
 *     pinned key (`publicKey`);
 *  9. with `parent`: the parent bundle verifies and is the one the certificate names: its state
 *     digest is the certificate's `parent_state.bundle_sha256` (the parent's state when the fork was
 *     made), or, for a parent that went on after the fork (a retry), its events.jsonl holds the
 *     line the fork recorded as the parent's last (RUN_FORKED `parent_bundle_head`): the log the
 *     fork was made from is a prefix of the parent's (`parent.match`: `state` or `events-prefix`).
 *
 * A report names the first mismatch as `<entry path>: <field> …` (exit 3); bytes that are no bundle
 * at all give exit 2. Decryption (an encrypted bundle) happens before: pass the plaintext bytes.
 *
 * @example
 *   const report = await verifyBundle(await readFile('run.tar'), { publicKey: 'q1w2…=' });
 *   report.ok ? report.bundle_sha256 : report.problem?.message  // 'steps/b.json: sha256 does not match manifest.json'
 */
import { createPublicKey, verify as edVerify } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { resultJson, unsignedCertificate, type AttestationInputs, type BundleOperation, type BundleRun, type BundleWorkflow } from './build.js';
import { ATTESTATION_PATHS, BUNDLE_PATHS, type BundleEvent, type CertificateSignature, type Sha256Ref } from './layout.js';
import { artifactHash, BUNDLE_GENESIS_HASH, bundleEventHash, certificateSignedBytes, ed25519SpkiDer, entryJson, isAttestation, sha256Ref, STATE_ENGINE, stateDigest } from './model.js';
import { KEY_NAME_PATTERN } from '../identity/key-name.js';
import { NotABundleError, readBundle, type ParsedBundle } from './read.js';
import { CANONICAL_HEADER, compareBundlePaths, writeTar, type ReadTarEntry } from './tar.js';
import { validateContract } from './schemas.js';

/** The first thing that did not match: the entry, the field (or line), and the whole sentence. */
export interface BundleProblem {
  /** The tar entry (`steps/b.json`, `events.jsonl`), `tar` for the archive itself, `parent` for the parent bundle. */
  path: string;
  /** The field or line within it (`sha256`, `line 7: prev_hash`, `parent_state.bundle_sha256`), or null. */
  field: string | null;
  /** `<path>: <what>`, e.g. `events.jsonl line 7: prev_hash does not match`. */
  message: string;
}

export interface VerifyBundleOptions {
  /** The expected signer: base64 of the raw 32-byte Ed25519 public key. Absent: the certificate's own key is used (unpinned). */
  publicKey?: string;
  /** The parent bundle's (plaintext) bytes: check the parent link. */
  parent?: Buffer;
  /** The parent's expected signer, when another key signed it (a fork made on another installation). Default: `publicKey`. */
  parentPublicKey?: string;
}

export interface VerifyBundleReport {
  ok: boolean;
  /** 0 verified, 3 a mismatch (`problem`), 2 not a bundle (`problem`). */
  exit_code: 0 | 2 | 3;
  problem?: BundleProblem;
  run_id?: string;
  /** sha256 of the whole file. */
  file_sha256: Sha256Ref;
  bundle_sha256?: Sha256Ref;
  bundle_manifest_sha256?: Sha256Ref;
  certificate_sha256?: Sha256Ref;
  signer?: { key_name: string; public_key: string; pinned: boolean };
  /**
   * The parent state the certificate names; `checked` when a parent bundle was given and matched, and
   * `match` how: `state` (the parent bundle is that state) or `events-prefix` (a later state of the
   * parent, whose log starts with the log the fork was made from).
   */
  parent?: { state_id: string; bundle_sha256: string; ratchet_step: number; checked: boolean; match?: 'state' | 'events-prefix' };
  /** The checks that passed, in order. */
  checks: string[];
  /** Things that verify but deserve a word (an unpinned signer, a fork whose parent was not given). */
  notes: string[];
}

/** A mismatch: thrown inside the verifier, reported as the first problem. */
class Mismatch extends Error {
  constructor(readonly problem: BundleProblem) {
    super(problem.message);
  }
}

function fail(path: string, field: string | null, what: string): never {
  throw new Mismatch({ path, field, message: `${path}${field && field.startsWith('line ') ? ` ${field.split(':')[0]}` : ''}: ${what}` });
}

/** Verify a bundle's bytes offline. Never throws for bad input: the report says what is wrong. */
export async function verifyBundle(bytes: Buffer, options: VerifyBundleOptions = {}): Promise<VerifyBundleReport> {
  const report: VerifyBundleReport = { ok: false, exit_code: 3, file_sha256: sha256Ref(bytes), checks: [], notes: [] };
  let bundle: ParsedBundle;
  try {
    bundle = await readBundle(bytes);
  } catch (e) {
    if (!(e instanceof NotABundleError)) throw e;
    return { ...report, exit_code: e.damaged ? 3 : 2, problem: { path: 'tar', field: null, message: e.message } };
  }
  report.run_id = typeof bundle.manifest.run_id === 'string' ? bundle.manifest.run_id : undefined;
  try {
    await checkAll(bytes, bundle, options, report);
    report.ok = true;
    report.exit_code = 0;
  } catch (e) {
    if (e instanceof Mismatch) report.problem = e.problem;
    else if (e instanceof NotABundleError) report.problem = { path: 'tar', field: null, message: e.message };
    // Canonical JSON of the wrong shape (a line that is `null`, a list for an object): still a mismatch, never a crash.
    else report.problem = { path: 'bundle', field: null, message: `bundle: an entry does not have the shape of its kind (${e instanceof Error ? e.message : String(e)})` };
  }
  return report;
}

async function checkAll(bytes: Buffer, b: ParsedBundle, options: VerifyBundleOptions, report: VerifyBundleReport): Promise<void> {
  checkTar(b);
  await checkCanonicalBytes(bytes, b.entries);
  report.checks.push('tar');
  const required = [BUNDLE_PATHS.manifest, BUNDLE_PATHS.node, BUNDLE_PATHS.run, BUNDLE_PATHS.workflow, BUNDLE_PATHS.agents, BUNDLE_PATHS.trigger, BUNDLE_PATHS.events, ...ATTESTATION_PATHS];
  for (const p of required) if (!b.get(p)) fail(p, null, 'missing from the bundle');
  for (const e of b.entries) checkCanonicalJson(e);
  report.checks.push('canonical-json');
  checkManifest(b);
  report.checks.push('manifest');
  for (const [path, schema] of [[BUNDLE_PATHS.node, 'node'], [BUNDLE_PATHS.result, 'result'], [BUNDLE_PATHS.certificate, 'certificate']] as const) {
    const problem = await validateContract(schema, b.json(path));
    if (problem) fail(path, problem.split(':')[0] ?? null, `does not validate against the ${schema} schema (${problem})`);
  }
  report.checks.push('schemas');
  const events = checkEvents(b);
  report.checks.push('events-chain');
  const state = checkState(b, events);
  report.checks.push('state');
  const stateEntries = b.entries.filter((e) => !isAttestation(e.path));
  const bundleSha = await stateDigest(stateEntries);
  const manifestSha = sha256Ref((b.get(BUNDLE_PATHS.manifest) as ReadTarEntry).data);
  report.bundle_sha256 = bundleSha;
  report.bundle_manifest_sha256 = manifestSha;
  const result = resultJson(state, bundleSha, state.artifact);
  compareFields(BUNDLE_PATHS.result, b.json(BUNDLE_PATHS.result), result);
  exactEntry(b, BUNDLE_PATHS.result, result);
  report.checks.push('result');
  const certificate = b.json<Record<string, unknown> & { signature?: CertificateSignature; parent_state: { state_id: string; bundle_sha256: string; ratchet_step: number } }>(BUNDLE_PATHS.certificate);
  const unsigned = unsignedCertificate(state, bundleSha, manifestSha);
  compareFields(BUNDLE_PATHS.certificate, certificate, unsigned);
  report.certificate_sha256 = sha256Ref((b.get(BUNDLE_PATHS.certificate) as ReadTarEntry).data);
  report.checks.push('certificate');
  const sig = checkSignature(certificate);
  // Nothing beside what was recomputed and the signature: a field added anywhere (the signature does
  // not cover its own object) is a mismatch, so a bundle that verifies has exactly one encoding.
  exactEntry(b, BUNDLE_PATHS.certificate, { ...unsigned, signature: { alg: sig.alg, key_name: sig.key_name, public_key: sig.public_key, value: sig.value } });
  report.checks.push('signature');
  const pinned = options.publicKey !== undefined;
  if (pinned && normalizeKey(options.publicKey as string) !== sig.public_key) fail(BUNDLE_PATHS.certificate, 'signature.public_key', `signed by ${sig.public_key} (key ${sig.key_name}), not the pinned public key ${options.publicKey as string}`);
  report.signer = { key_name: sig.key_name, public_key: sig.public_key, pinned };
  if (pinned) report.checks.push('pinned-key');
  else report.notes.push(`the signer is unpinned: the certificate's own key ${sig.public_key} (${sig.key_name}) was used; pass --public-key to pin it`);
  const ps = certificate.parent_state;
  report.parent = { state_id: ps.state_id, bundle_sha256: ps.bundle_sha256, ratchet_step: ps.ratchet_step, checked: false };
  if (options.parent) {
    report.parent.match = await checkParent(options.parent, certificate.parent_state, state.forkPoint, options, report);
    report.parent.checked = true;
    report.checks.push('parent');
  } else if (state.run.fork) report.notes.push(`a fork of run ${state.run.fork.parent_run_id}: the parent link was not checked (pass --parent <parent bundle>)`);
}

/** Entries unique, in order, headers canonical, the tar complete. */
function checkTar(b: ParsedBundle): void {
  const seen = new Set<string>();
  let prev: string | undefined;
  for (const e of b.entries) {
    if (seen.has(e.path)) fail('tar', 'entries', `entry ${e.path} appears more than once`);
    seen.add(e.path);
    if (prev !== undefined && compareBundlePaths(prev, e.path) >= 0) fail('tar', 'order', `entry ${e.path} is out of order (it follows ${prev}; entries are sorted by path, result.json and certificate.json last)`);
    prev = e.path;
    for (const [field, want] of Object.entries(CANONICAL_HEADER)) {
      const got = e.header[field as keyof ReadTarEntry['header']];
      if (got !== want) fail(e.path, `tar header ${field}`, `tar header ${field} is ${field === 'mode' ? `0${Number(got).toString(8)}` : JSON.stringify(got)}, expected ${field === 'mode' ? `0${want.toString(8)}` : JSON.stringify(want)}`);
    }
  }
  if (b.tarError) fail('tar', 'end', `the archive is cut short or corrupt after entry ${prev ?? '-'} (${b.tarError})`);
}

/** The bytes are exactly the canonical tar of the entries read (padding, end blocks, header encoding). */
async function checkCanonicalBytes(bytes: Buffer, entries: readonly ReadTarEntry[]): Promise<void> {
  const canonical = await writeTar(entries);
  if (canonical.equals(bytes)) return;
  let i = 0;
  const n = Math.min(canonical.length, bytes.length);
  while (i < n && canonical[i] === bytes[i]) i++;
  // Which entry the first differing byte belongs to: 512-byte header, then the data padded to 512.
  let offset = 0;
  let where = 'the end-of-archive blocks';
  for (const e of entries) {
    const end = offset + 512 + Math.ceil(e.data.length / 512) * 512;
    if (i < end) {
      where = `entry ${e.path}`;
      break;
    }
    offset = end;
  }
  fail('tar', 'bytes', `not the canonical encoding: the first difference is at byte ${i}, in ${where}${bytes.length !== canonical.length ? ` (${bytes.length} bytes, canonical ${canonical.length})` : ''}`);
}

function checkCanonicalJson(e: ReadTarEntry): void {
  const text = e.data.toString('utf8');
  // Decoding replaces bytes that are not UTF-8 (U+FFFD): such an entry would compare equal to another.
  if (!Buffer.from(text, 'utf8').equals(e.data)) fail(e.path, null, 'is not valid UTF-8');
  if (e.path.endsWith('.jsonl')) {
    if (text.length > 0 && !text.endsWith('\n')) fail(e.path, 'end', 'does not end with a newline');
    const lines = text.split('\n').slice(0, -1);
    lines.forEach((line, i) => {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        fail(e.path, `line ${i + 1}`, 'is not JSON');
      }
      if (canonicalJson(v) !== line) fail(e.path, `line ${i + 1}`, 'is not canonical JSON');
    });
  } else if (e.path.endsWith('.json')) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      fail(e.path, null, 'is not JSON');
    }
    if (`${canonicalJson(v)}\n` !== text) fail(e.path, null, 'is not canonical JSON (sorted keys, no spaces, one final newline)');
  } else fail(e.path, null, 'is not an entry a bundle holds (only .json and .jsonl entries)');
}

function checkManifest(b: ParsedBundle): void {
  const m = b.manifest;
  const M = BUNDLE_PATHS.manifest;
  if (typeof m.run_id !== 'string' || !m.run_id) fail(M, 'run_id', 'run_id is missing');
  if (!Array.isArray(m.files)) fail(M, 'files', 'files is not a list');
  let prev: string | undefined;
  const listed = new Set<string>();
  for (const f of m.files) {
    if (typeof f?.path !== 'string') fail(M, 'files', 'an entry of files has no path');
    if (prev !== undefined && !(prev < f.path)) fail(M, 'files', `files are not sorted by path, or list ${f.path} twice`);
    prev = f.path;
    listed.add(f.path);
    const e = b.get(f.path);
    if (!e || isAttestation(f.path) || f.path === M) fail(M, 'files', `lists ${f.path}, which is not a state entry of the bundle`);
    if (e.data.length !== f.size) fail(f.path, 'size', `size ${e.data.length} does not match manifest.json (${String(f.size)})`);
    if (sha256Ref(e.data) !== f.sha256) fail(f.path, 'sha256', 'sha256 does not match manifest.json');
  }
  for (const e of b.entries) if (!isAttestation(e.path) && e.path !== M && !listed.has(e.path)) fail(e.path, null, 'is not listed in manifest.json');
}

function checkEvents(b: ParsedBundle): BundleEvent[] {
  const P = BUNDLE_PATHS.events;
  const lines = b.text(P).split('\n').slice(0, -1);
  let prev = BUNDLE_GENESIS_HASH;
  return lines.map((line, i) => {
    const n = i + 1;
    const e = JSON.parse(line) as BundleEvent;
    if (e.seq !== n) fail(P, `line ${n}: seq`, `seq is ${JSON.stringify(e.seq)}, expected ${n}`);
    if (e.prev_hash !== prev) fail(P, `line ${n}: prev_hash`, 'prev_hash does not match the previous line\'s hash');
    if (typeof e.type !== 'string' || typeof e.at !== 'string' || (e.step_id !== null && typeof e.step_id !== 'string')) fail(P, `line ${n}: fields`, 'is not an event (type, at, step_id)');
    if (bundleEventHash(e) !== e.hash) fail(P, `line ${n}: hash`, 'hash does not match the event (seq, type, step_id, at, data, prev_hash)');
    prev = e.hash;
    return e;
  });
}

const RUN_END: Record<string, string> = { RUN_COMPLETED: 'completed', RUN_FAILED: 'failed', RUN_CANCELLED: 'cancelled' };

/** The parent's last events.jsonl line when the fork was made (RUN_FORKED `parent_bundle_head`). */
interface ForkPoint {
  seq: number;
  hash: string;
}

/** The state's entries agree with each other; returns what result.json and the certificate are computed from. */
function checkState(b: ParsedBundle, events: BundleEvent[]): AttestationInputs & { artifact: Sha256Ref; forkPoint: ForkPoint | null } {
  const R = BUNDLE_PATHS.run;
  const run = b.json<BundleRun>(R);
  const workflow = b.json<BundleWorkflow>(BUNDLE_PATHS.workflow);
  const trigger = b.json<{ type: string; data: unknown }>(BUNDLE_PATHS.trigger);
  const node = b.json<NodeJson>(BUNDLE_PATHS.node);
  if (run.id !== b.manifest.run_id) fail(R, 'id', 'id does not match manifest.json run_id');
  const last = [...events].reverse().find((e) => RUN_END[e.type] || e.type === 'RUN_RETRIED');
  const ended = last ? RUN_END[last.type] : undefined;
  if (ended !== run.status) fail(R, 'status', `status ${JSON.stringify(run.status)} does not match the events (last run event: ${last?.type ?? 'none'})`);
  if (canonicalJson(workflow.digest) !== canonicalJson(run.workflow?.digest)) fail(R, 'workflow.digest', 'workflow.digest does not match workflow.json');
  for (const f of ['id', 'name', 'version'] as const) if (workflow[f] !== run.workflow?.[f]) fail(BUNDLE_PATHS.workflow, f, `${f} does not match run.json workflow.${f}`);
  if (canonicalJson(trigger.data) !== canonicalJson(run.input ?? null)) fail(BUNDLE_PATHS.trigger, 'data', 'data does not match run.json input');
  if (trigger.type !== run.trigger_type) fail(BUNDLE_PATHS.trigger, 'type', 'type does not match run.json trigger_type');
  for (const e of b.entries) {
    if (!e.path.startsWith(BUNDLE_PATHS.stepsDir)) continue;
    const step = JSON.parse(e.data.toString('utf8')) as { step_id?: unknown };
    if (`${BUNDLE_PATHS.stepsDir}${String(step.step_id)}.json` !== e.path) fail(e.path, 'step_id', 'step_id does not match the entry name');
  }
  for (const [stepId, out] of Object.entries(run.output ?? {})) {
    const step = b.get(`${BUNDLE_PATHS.stepsDir}${stepId}.json`);
    const recorded = step ? (JSON.parse(step.data.toString('utf8')) as { outputs?: unknown; status?: unknown }) : undefined;
    if (!recorded || recorded.status !== 'completed' || canonicalJson(recorded.outputs ?? null) !== canonicalJson(out)) fail(R, `output.${stepId}`, `output.${stepId} does not match steps/${stepId}.json`);
  }
  const operation: BundleOperation = run.fork ? 'fork' : events.slice(0, 3).some((e) => e.type === 'RUN_IMPORTED') ? 'import' : 'run';
  const depth = run.fork?.depth ?? 0;
  const forkedEvent = events.slice(0, 3).find((e) => e.type === 'RUN_FORKED');
  if (run.fork && (!forkedEvent || (forkedEvent.data as { parent_run_id?: unknown }).parent_run_id !== run.fork.parent_run_id)) fail(R, 'fork.parent_run_id', 'fork.parent_run_id does not match the RUN_FORKED event');
  if (!run.fork && forkedEvent) fail(R, 'fork', 'fork is null but the events record RUN_FORKED');
  const forkPoint = run.fork && forkedEvent ? forkPointOf(forkedEvent, run.fork.parent_bundle_sha256) : null;
  const N = BUNDLE_PATHS.node;
  const files = b.manifest.files;
  const expectNode: Array<[string, unknown, unknown]> = [
    ['node_id', node.node_id, run.id],
    ['parent_node_id', node.parent_node_id, run.fork?.parent_run_id ?? null],
    ['created_at', node.created_at, run.created_at],
    ['workspace.artifact_hash', node.workspace.artifact_hash, artifactHash(files)],
    ['workspace.artifact_ref', node.workspace.artifact_ref, BUNDLE_PATHS.stepsDir],
    ['state_db.snapshot_hash', node.state_db.snapshot_hash, sha256Ref((b.get(BUNDLE_PATHS.events) as ReadTarEntry).data)],
    ['state_db.snapshot_ref', node.state_db.snapshot_ref, BUNDLE_PATHS.events],
    ['state_db.ratchet_step', node.state_db.ratchet_step, depth],
    ['state_db.state_id', node.state_db.state_id, run.id],
    ['state_db.engine', node.state_db.engine, STATE_ENGINE],
    ['network.token.ratchet_step', node.network.token.ratchet_step, depth],
  ];
  for (const [field, got, want] of expectNode) if (canonicalJson(got) !== canonicalJson(want)) fail(N, field, `${field} does not match the state (expected ${canonicalJson(want)})`);
  return { run, workflow, trigger, operation, runner_class: node.runtime.restore_compat.substrate, artifact: node.workspace.artifact_hash as Sha256Ref, forkPoint };
}

/**
 * What a fork's RUN_FORKED recorded of its parent when it was made: the parent's state digest (which
 * run.json, and so the certificate, must name) and the last line of the parent bundle's events.jsonl.
 * Forks made before Swarm recorded them have neither (`parent_bundle_sha256: null`): nothing to check.
 */
function forkPointOf(forked: BundleEvent, parentDigest: unknown): ForkPoint | null {
  const d = (forked.data ?? {}) as { parent_bundle_sha256?: unknown; parent_bundle_head?: unknown };
  const line = `line ${forked.seq}`;
  if (d.parent_bundle_sha256 !== undefined && d.parent_bundle_sha256 !== null && d.parent_bundle_sha256 !== parentDigest) {
    fail(BUNDLE_PATHS.run, 'fork.parent_bundle_sha256', `fork.parent_bundle_sha256 does not match the parent state the RUN_FORKED event recorded (${canonicalJson(d.parent_bundle_sha256)})`);
  }
  const head = d.parent_bundle_head;
  if (head === undefined || head === null) return null;
  const h = head as { seq?: unknown; hash?: unknown };
  if (typeof head !== 'object' || Array.isArray(head) || !Number.isInteger(h.seq) || (h.seq as number) < 1 || typeof h.hash !== 'string' || !/^[0-9a-f]{64}$/.test(h.hash)) {
    fail(BUNDLE_PATHS.events, `${line}: parent_bundle_head`, 'RUN_FORKED parent_bundle_head is not {seq, hash} (a line number and a sha256 in hex)');
  }
  return { seq: h.seq as number, hash: h.hash };
}

interface NodeJson {
  node_id: string;
  parent_node_id: string | null;
  created_at: string;
  workspace: { artifact_hash: string; artifact_ref: string };
  state_db: { snapshot_hash: string; snapshot_ref: string; ratchet_step: number; state_id: string; engine: unknown };
  runtime: { restore_compat: { substrate: string } };
  network: { token: { ratchet_step: number } };
}

/** Every field of `expected` (recursively) equals the entry's; names the first that does not. */
function compareFields(path: string, actual: unknown, expected: Record<string, unknown>, prefix = ''): void {
  const got = (actual ?? {}) as Record<string, unknown>;
  for (const [k, want] of Object.entries(expected)) {
    const field = `${prefix}${k}`;
    if (want !== null && typeof want === 'object' && !Array.isArray(want)) compareFields(path, got[k], want as Record<string, unknown>, `${field}.`);
    else if (canonicalJson(got[k] ?? null) !== canonicalJson(want)) fail(path, field, `${field} does not match the state (expected ${canonicalJson(want)}, found ${canonicalJson(got[k] ?? null)})`);
  }
}

/**
 * The entry's bytes are exactly the canonical encoding of `expected`: after `compareFields` (every
 * expected field matches), what can still differ is a field the state does not give, named here.
 */
function exactEntry(b: ParsedBundle, path: string, expected: Record<string, unknown>): void {
  const entry = b.get(path) as ReadTarEntry;
  if (entry.data.equals(entryJson(expected))) return;
  const extra = extraField(b.json(path), expected);
  fail(path, extra ?? null, extra ? `${extra} is not a field of a Swarm bundle's ${path}` : `is not the canonical encoding of what the state gives`);
}

/** The first field of `actual` (dotted path) that `expected` does not have, recursively. */
function extraField(actual: unknown, expected: unknown, prefix = ''): string | undefined {
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual) || expected === null || typeof expected !== 'object' || Array.isArray(expected)) return undefined;
  const want = expected as Record<string, unknown>;
  for (const [k, v] of Object.entries(actual as Record<string, unknown>)) {
    if (!(k in want)) return `${prefix}${k}`;
    const inner = extraField(v, want[k], `${prefix}${k}.`);
    if (inner) return inner;
  }
  return undefined;
}

/** Strict base64 of exactly `bytes` bytes: the one encoding Buffer would write (it ignores junk and unused bits when reading). */
function isCanonicalBase64(text: unknown, bytes: number): text is string {
  if (typeof text !== 'string') return false;
  const raw = Buffer.from(text, 'base64');
  return raw.length === bytes && raw.toString('base64') === text;
}

function checkSignature(certificate: Record<string, unknown> & { signature?: CertificateSignature }): CertificateSignature {
  const C = BUNDLE_PATHS.certificate;
  const sig = certificate.signature;
  if (!sig || typeof sig !== 'object') fail(C, 'signature', 'has no signature');
  if (sig.alg !== 'ed25519') fail(C, 'signature.alg', `signature.alg is ${JSON.stringify(sig.alg)}, expected "ed25519"`);
  if (typeof sig.key_name !== 'string' || !sig.key_name) fail(C, 'signature.key_name', 'signature.key_name is missing');
  if (!KEY_NAME_PATTERN.test(sig.key_name)) fail(C, 'signature.key_name', 'signature.key_name is not a key name (1 to 200 printable characters without spaces)');
  if (!isCanonicalBase64(sig.public_key, 32)) fail(C, 'signature.public_key', 'signature.public_key is not base64 of a 32-byte Ed25519 key');
  if (sig.value === undefined) fail(C, 'signature.value', 'signature.value is missing');
  if (!isCanonicalBase64(sig.value, 64)) fail(C, 'signature.value', 'signature.value is not base64 of a 64-byte Ed25519 signature');
  let ok = false;
  try {
    const key = createPublicKey({ key: ed25519SpkiDer(sig.public_key), format: 'der', type: 'spki' });
    ok = edVerify(null, certificateSignedBytes(certificate), key, Buffer.from(sig.value, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) fail(C, 'signature', 'signature does not verify');
  return sig;
}

/** A public key as given (base64 of 32 bytes, or an SPKI PEM/DER in base64) as base64 of the raw 32 bytes. */
export function normalizeKey(key: string): string {
  const text = key.trim();
  if (text.includes('BEGIN PUBLIC KEY')) {
    const der = createPublicKey(text).export({ format: 'der', type: 'spki' });
    return der.subarray(der.length - 32).toString('base64');
  }
  const raw = Buffer.from(text, 'base64');
  return raw.length === 44 ? raw.subarray(12).toString('base64') : raw.toString('base64');
}

/**
 * The parent link: the parent bundle verifies, is the run the certificate names, at depth - 1, and
 * is the state the fork was made from (`state`), or a later state of it whose events.jsonl still holds
 * the parent's last line at the fork point (`events-prefix`, with a note): a parent retried after the
 * fork is still proved to be the one the fork came from, though its state then is not reproduced.
 */
async function checkParent(parentBytes: Buffer, ps: { state_id: string; bundle_sha256: string; ratchet_step: number }, forkPoint: ForkPoint | null, options: VerifyBundleOptions, report: VerifyBundleReport): Promise<'state' | 'events-prefix'> {
  // The parent is checked whole: pinned to its own key when one is given, else to the fork's, else unpinned.
  const parentKey = options.parentPublicKey ?? options.publicKey;
  const parent = await verifyBundle(parentBytes, parentKey ? { publicKey: parentKey } : {});
  if (!parent.ok) fail('parent', parent.problem?.path ?? null, `the parent bundle does not verify: ${parent.problem?.message ?? 'unknown problem'}`);
  const C = BUNDLE_PATHS.certificate;
  if (ps.state_id !== parent.run_id) fail(C, 'parent_state.state_id', `parent_state.state_id ${ps.state_id} is not the parent bundle's run ${parent.run_id ?? '-'}`);
  const parsed = await readBundle(parentBytes);
  let match: 'state' | 'events-prefix' = 'state';
  if (ps.bundle_sha256 !== parent.bundle_sha256) {
    const differs = `parent_state.bundle_sha256 does not match the parent bundle's state digest ${parent.bundle_sha256 ?? '-'}`;
    if (!forkPoint) fail(C, 'parent_state.bundle_sha256', `${differs} (this fork does not record the parent's log at the fork point: only the parent's bundle of the state it was forked from matches)`);
    const lines = parsed.text(BUNDLE_PATHS.events).split('\n').slice(0, -1);
    const line = lines[forkPoint.seq - 1];
    const hash = line === undefined ? undefined : (JSON.parse(line) as { hash?: unknown }).hash;
    if (hash !== forkPoint.hash) {
      const where = line === undefined ? `has ${lines.length} line(s), not the fork point's line ${forkPoint.seq}` : `line ${forkPoint.seq} is not the fork point's (hash ${forkPoint.hash})`;
      fail(C, 'parent_state.bundle_sha256', `${differs}, and its events.jsonl ${where}: it is neither the parent's state when the fork was made nor a later one`);
    }
    match = 'events-prefix';
    report.notes.push(
      `the parent went on after the fork: its bundle's state ${parent.bundle_sha256 ?? '-'} is not the state the fork was made from (${ps.bundle_sha256}), but its events.jsonl lines 1-${forkPoint.seq} are the log the fork was made from (${lines.length} line(s) now); to check that state itself, keep the parent's bundle exported before it changed`,
    );
  }
  const parentNode = parsed.json<NodeJson>(BUNDLE_PATHS.node);
  if (ps.ratchet_step !== parentNode.state_db.ratchet_step + 1) fail(C, 'parent_state.ratchet_step', `parent_state.ratchet_step ${ps.ratchet_step} is not the parent's depth + 1 (${parentNode.state_db.ratchet_step + 1})`);
  return match;
}
