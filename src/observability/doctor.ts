/**
 * `swarm doctor`: is this machine and this store fit to run Swarm? Twelve checks, each `ok`, `warn`
 * or `fail` with a one-line detail and a hint of what to do. Ids are stable (scripts and monitoring
 * match on them): node, store, migrations, disk, master-key, signing-keys, memory-limit, sandbox,
 * net-sandbox, clock, workers, stuck-runs.
 *
 * The doctor opens the store as every command does (an older schema is migrated), but never makes
 * a master key and never changes a run: what it finds wrong it reports, with the command that fixes it.
 *
 * @example
 *   const report = await runDoctor({ config: resolveConfig({ cwd: '.' }), nodeRange: '>=20.19' });
 *   for (const c of report.checks) console.log(c.id, c.status, c.detail);
 *   process.exitCode = report.ok ? 0 : 7;
 */
import { accessSync, constants, existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SwarmConfig } from '../config/config.js';
import { errorMessage, isSwarmError } from '../core/errors.js';
import { humanBytes } from '../core/limits.js';
import { workerIsDead } from '../engine/reaper.js';
import { memoryLimitMechanism } from '../executors/memory-limit.js';
import { probeBubblewrap } from '../sandbox/sandbox.js';
import { keyCheckValue, parseMasterKey } from '../secrets/master-key.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { KEY_CHECK_META_KEY } from '../store/rows.js';
import type { Store } from '../store/store.js';

/** The checks, in the order they run and print. */
export const DOCTOR_CHECKS = ['node', 'store', 'migrations', 'disk', 'master-key', 'signing-keys', 'memory-limit', 'sandbox', 'net-sandbox', 'clock', 'workers', 'stuck-runs'] as const;
export type DoctorCheckId = (typeof DOCTOR_CHECKS)[number];
export type DoctorStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  id: DoctorCheckId;
  status: DoctorStatus;
  /** What was found, in one line. */
  detail: string;
  /** What to do about it (empty when ok). */
  hint: string;
}

/** `swarm doctor --json`: every check, and `ok` when none failed. */
export interface DoctorReport {
  checks: DoctorCheck[];
  ok: boolean;
}

export interface DoctorOptions {
  /** The resolved configuration (resolved without SWARM_MASTER_KEY: the doctor checks that one itself). */
  config: SwarmConfig;
  /** SWARM_MASTER_KEY as given, if set (parsed here, so a bad one is a failed check, not an error). */
  masterKeyText?: string | undefined;
  /** The Node.js versions Swarm supports (package.json `engines.node`, e.g. `>=20.19`). */
  nodeRange: string;
  /** This Node.js version (default: the running one). */
  nodeVersion?: string;
  /** Open the store (default: the configured SQLite file or PostgreSQL database). */
  openStore?: () => Promise<Store>;
}

/** Free space below this fails the disk check: the store stops at a full disk. */
export const DISK_FAIL_BYTES = 100 * 1024 * 1024;
/** Free space below this (or below 5 %) is a warning. */
export const DISK_WARN_BYTES = 1024 * 1024 * 1024;
/** A database clock this far from this machine's is a warning, ten times as far a failure. */
export const CLOCK_WARN_MS = 1000;
/** How long past its end a step's lease may lie unclaimed before its run counts as stuck (at least). */
export const STUCK_LEASE_MIN_MS = 60_000;
/** Running runs examined for stuck ones (newest first). */
export const STUCK_SCAN_RUNS = 1000;

const ok = (id: DoctorCheckId, detail: string): DoctorCheck => ({ id, status: 'ok', detail, hint: '' });
const warn = (id: DoctorCheckId, detail: string, hint: string): DoctorCheck => ({ id, status: 'warn', detail, hint });
const fail = (id: DoctorCheckId, detail: string, hint: string): DoctorCheck => ({ id, status: 'fail', detail, hint });

/** Run every check; never throws for what it finds (an unexpected error in one check fails that check). */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const { config } = options;
  const checks: DoctorCheck[] = [checkNode(options.nodeVersion ?? process.versions.node, options.nodeRange)];
  const opened = await openForDoctor(config, options.openStore);
  checks.push(opened.store, opened.migrations);
  checks.push(checkDisk(config));
  const store = opened.handle;
  try {
    const found: { key?: Buffer } = {};
    checks.push(await guarded('master-key', () => checkMasterKey(config, options.masterKeyText, store, found)));
    checks.push(await guarded('signing-keys', () => checkSigningKeys(store, found.key)));
    checks.push(checkMemoryLimit(config));
    checks.push(checkSandbox(config));
    checks.push(await guarded('net-sandbox', () => checkNetSandbox(config)));
    const notChecked = (id: DoctorCheckId): DoctorCheck => warn(id, 'not checked: the store could not be opened', 'fix the store check first');
    if (store) {
      checks.push(await guarded('clock', () => checkClock(store)));
      const workers = await guarded('workers', () => checkWorkers(store, config));
      checks.push(workers, await guarded('stuck-runs', () => checkStuckRuns(store, config)));
    } else {
      checks.push(notChecked('clock'), notChecked('workers'), notChecked('stuck-runs'));
    }
  } finally {
    await store?.close().catch(() => undefined);
  }
  return { checks, ok: checks.every((c) => c.status !== 'fail') };
}

async function guarded(id: DoctorCheckId, check: () => Promise<DoctorCheck>): Promise<DoctorCheck> {
  try {
    return await check();
  } catch (e) {
    return fail(id, `the check failed: ${errorMessage(e)}`, 'see the message; run the check again once the store answers');
  }
}

/** `20.19.0` against `>=20.19`: only the `>=` form package.json uses is understood. */
export function checkNode(version: string, range: string): DoctorCheck {
  const want = /^\s*>=\s*v?(\d+(?:\.\d+){0,2})\s*$/.exec(range)?.[1];
  if (!want) return warn('node', `Node.js ${version}; the supported range '${range}' is not one the doctor reads`, 'check package.json engines.node by hand');
  const parts = (s: string): number[] => s.replace(/^v/, '').split('.').map((x) => Number.parseInt(x, 10) || 0);
  const [have, need] = [parts(version), parts(want)];
  const cmp = [0, 1, 2].map((i) => (have[i] ?? 0) - (need[i] ?? 0)).find((d) => d !== 0) ?? 0;
  if (cmp < 0) return fail('node', `Node.js ${version} is older than Swarm needs (${range})`, `install Node.js ${want} or newer (https://nodejs.org, or nvm install 20)`);
  return ok('node', `Node.js ${version} (needs ${range})`);
}

interface Opened {
  store: DoctorCheck;
  migrations: DoctorCheck;
  handle: Store | undefined;
}

/** Open the store and read its schema version: reachable (store) and current (migrations). */
async function openForDoctor(config: SwarmConfig, openStore?: () => Promise<Store>): Promise<Opened> {
  const where = config.databaseUrl ? 'the PostgreSQL store' : `the store ${config.dbPath}`;
  const fileHint = 'check the file and its directory: they must be this user’s to read and write';
  if (!openStore && !config.databaseUrl) {
    const fault = sqliteFileFault(config.dbPath);
    if (fault === 'missing') {
      const hint = "it is made on first use: 'swarm init', or register an agent";
      return { store: warn('store', `no store at ${config.dbPath} yet`, hint), migrations: warn('migrations', 'not checked: no store yet', hint), handle: undefined };
    }
    // SQLite opens a file it may not write read-only, without a word: the first write would fail.
    if (fault) return { store: fail('store', `cannot use ${where}: ${fault}`, fileHint), migrations: warn('migrations', 'not checked: the store could not be opened', 'fix the store check first'), handle: undefined };
  }
  let store: Store;
  try {
    store = openStore ? await openStore() : await openConfiguredStore(config);
  } catch (e) {
    const code = isSwarmError(e) ? e.code : '';
    // The store answered, but its schema is not this build's: reachable, and not migratable here.
    if (code === 'STORE_SCHEMA_NEWER' || code === 'STORE_SCHEMA_MISMATCH') {
      return {
        store: ok('store', `${where} is reachable`),
        migrations: fail('migrations', errorMessage(e).split(': a newer')[0] ?? errorMessage(e), 'open it with the Swarm build that migrated it (upgrade this one), or point SWARM_HOME / SWARM_DATABASE_URL at another store'),
        handle: undefined,
      };
    }
    const hint = config.databaseUrl
      ? 'check that PostgreSQL is up and the URL, user and password in SWARM_DATABASE_URL (or store.url) are right'
      : code === 'STORE_NOT_SWARM'
        ? 'point SWARM_HOME (or store.path) at a Swarm store, or move this file away'
        : fileHint;
    const message = errorMessage(e);
    return { store: fail('store', /^cannot open /.test(message) ? message : `cannot open ${where}: ${message}`, hint), migrations: warn('migrations', 'not checked: the store could not be opened', 'fix the store check first'), handle: undefined };
  }
  try {
    const version = await store.schemaVersion();
    const migrations =
      version === store.supportedSchemaVersion
        ? ok('migrations', `schema version ${version} (current)`)
        : fail('migrations', `schema version ${version}, this Swarm's is ${store.supportedSchemaVersion}`, 'open the store with this Swarm once more (it migrates on open), or with the build that migrated it');
    return { store: ok('store', `the store ${store.location} is reachable (${store.kind})`), migrations, handle: store };
  } catch (e) {
    await store.close().catch(() => undefined);
    return { store: fail('store', `${where} opened but does not answer: ${errorMessage(e)}`, 'check the database server and its logs'), migrations: warn('migrations', 'not checked: the store could not be read', 'fix the store check first'), handle: undefined };
  }
}

/**
 * Why this user cannot use the SQLite store at `path` (its file, its directory, its WAL and shared
 * memory files must all be readable and writable); the word 'missing' when there is no file yet
 * (nor, maybe, its directory); undefined when nothing is wrong.
 */
export function sqliteFileFault(path: string): string | undefined {
  try {
    statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    return `${code ?? errorMessage(e)} while looking for the file`;
  }
  const dir = dirname(path);
  // The WAL and shared-memory files only when they exist (SQLite makes them in the directory).
  for (const p of [path, dir, ...[`${path}-wal`, `${path}-shm`].filter((f) => existsSync(f))]) {
    try {
      accessSync(p, constants.R_OK | constants.W_OK);
    } catch (e) {
      return `${p === dir ? 'its directory ' : ''}${p} cannot be read and written by this user (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)})`;
    }
  }
  return undefined;
}

async function openConfiguredStore(config: SwarmConfig): Promise<Store> {
  if (!config.databaseUrl) return openSqliteStore({ path: config.dbPath, durability: config.durability });
  const { openPostgresStore } = await import('../store/postgres/postgres-store.js');
  return openPostgresStore({
    url: config.databaseUrl,
    durability: config.durability,
    ...(config.databaseSchema ? { schema: config.databaseSchema } : {}),
    // One connection is all the doctor needs.
    poolSize: 1,
  });
}

/** The nearest directory that exists at or above `path`. */
function existingDir(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Free space where the store (SQLite) or the work directories (both stores) are written. */
export function checkDisk(config: SwarmConfig, statfs: (dir: string) => { bavail: number; blocks: number; bsize: number } = statfsSync): DoctorCheck {
  const dir = existingDir(config.databaseUrl ? config.home : dirname(config.dbPath));
  const s = statfs(dir);
  const free = s.bavail * s.bsize;
  const share = s.blocks > 0 ? s.bavail / s.blocks : 1;
  const text = `${humanBytes(free)} free (${(share * 100).toFixed(0)} %) on the file system of ${dir}`;
  const hint = 'free space there (old runs: swarm gc), or move SWARM_HOME to a larger disk';
  if (free < DISK_FAIL_BYTES) return fail('disk', text, hint);
  if (free < DISK_WARN_BYTES || share < 0.05) return warn('disk', text, hint);
  return ok('disk', text);
}


/**
 * The master key: SWARM_MASTER_KEY or the key file (readable, mode 0600, well formed), and the key
 * the store was set up with. With no key at all, a store without secrets is only warned about (a
 * key is made on first use); one holding secrets cannot decrypt them: a failure.
 */
async function checkMasterKey(config: SwarmConfig, envText: string | undefined, store: Store | undefined, found: { key?: Buffer } = {}): Promise<DoctorCheck> {
  let key: Buffer;
  let source: string;
  if (envText) {
    source = 'SWARM_MASTER_KEY';
    try {
      key = parseMasterKey(envText, 'environment variable SWARM_MASTER_KEY');
    } catch (e) {
      return fail('master-key', errorMessage(e), "set SWARM_MASTER_KEY to the store's key: 64 hex digits ('openssl rand -hex 32' makes a new one)");
    }
  } else {
    const file = config.masterKeyFile;
    source = file;
    if (!existsSync(file)) {
      const secrets = store ? (await store.listSecrets()).length : undefined;
      if (secrets) return fail('master-key', `no SWARM_MASTER_KEY and no key file ${file}, but the store holds ${secrets} secret(s) sealed with a key`, 'set SWARM_MASTER_KEY (or restore the key file) to the key the store was set up with');
      const held = secrets === undefined ? 'whether the store holds secrets is not known: it could not be opened' : 'the store holds no secrets';
      return warn('master-key', `no SWARM_MASTER_KEY and no key file ${file} yet (${held})`, 'a key file is made on first use; on several machines set the same SWARM_MASTER_KEY everywhere');
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      return fail('master-key', `cannot read the key file ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`, 'it must be readable by the user Swarm runs as (chown, chmod 600)');
    }
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) return fail('master-key', `the key file ${file} may be read by others (mode ${mode.toString(8).padStart(4, '0')})`, `chmod 600 ${file}`);
    try {
      key = parseMasterKey(text, file);
    } catch (e) {
      return fail('master-key', errorMessage(e), `restore the key file ${file} from a backup, or set SWARM_MASTER_KEY`);
    }
  }
  if (store) {
    // The check value the first process recorded (written now if none is, as any command would).
    const recorded = await store.initMeta(KEY_CHECK_META_KEY, keyCheckValue(key));
    if (recorded !== keyCheckValue(key)) return fail('master-key', `the key from ${source} is not the one the store was set up with`, 'set SWARM_MASTER_KEY to the same key on every machine that uses this store (docs/integrity-and-secrets.md)');
  }
  found.key = key;
  return ok('master-key', `from ${source}${source === 'SWARM_MASTER_KEY' ? '' : ' (mode 0600)'}${store ? ', matches the store' : ''}`);
}

/** memory_mb enforcement: a memory cgroup per attempt, else prlimit's address-space limit. */
function checkMemoryLimit(config: SwarmConfig): DoctorCheck {
  const m = memoryLimitMechanism({ cgroups: config.memoryCgroups });
  if (m === 'cgroup-v2' || m === 'cgroup-v1') return ok('memory-limit', `memory_mb is enforced by a memory cgroup (${m === 'cgroup-v2' ? 'v2' : 'v1'}) per attempt`);
  const why = config.memoryCgroups ? 'no memory cgroup can be made here' : 'SWARM_MEMORY_CGROUPS=off';
  const hint = config.memoryCgroups ? 'delegate a cgroup v2 subtree to this user (systemd: Delegate=yes), or run workers in a container with a writable cgroup' : 'unset SWARM_MEMORY_CGROUPS where cgroups can be made';
  if (m === 'rlimit') return warn('memory-limit', `${why}: memory_mb is only an address-space limit (prlimit) per process`, hint);
  return fail('memory-limit', `${why}, and prlimit is not installed: memory_mb is not enforced at all`, `install prlimit (Debian/Ubuntu: apt-get install util-linux), or ${hint}`);
}

/** Process agents' sandbox: bubblewrap installed and able to make a sandbox here. */
function checkSandbox(config: SwarmConfig): DoctorCheck {
  if (config.sandbox === 'none') return warn('sandbox', 'sandbox: none is configured: process agents are not isolated', 'set sandbox: auto in swarm.yaml (or SWARM_SANDBOX=auto) and install bubblewrap');
  const probe = probeBubblewrap();
  if (probe.ok) return ok('sandbox', `bubblewrap works (${probe.path}): user, mount, PID and network namespaces`);
  const hint = 'install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)';
  if (config.sandbox === 'bubblewrap' || config.sandbox === 'bwrap') return fail('sandbox', `sandbox: bubblewrap is configured but ${probe.reason}: workers refuse to start`, hint);
  return warn('sandbox', `${probe.reason}: process agents run unisolated (sandbox auto)`, hint);
}

/**
 * net_cap end to end (src/sandbox/net-probe.ts): a sandbox without network, the bridge inside it,
 * the policy proxy outside; an allowed destination answers, another is refused, a raw socket fails.
 */
async function checkNetSandbox(config: SwarmConfig): Promise<DoctorCheck> {
  const hint = "agents with 'sandbox: bwrap' or net: capabilities fail with SANDBOX_UNAVAILABLE here: install bubblewrap and allow unprivileged user and network namespaces";
  if (!probeBubblewrap().ok) {
    return warn('net-sandbox', `not checked: bubblewrap does not work here${config.sandbox === 'none' ? ' (sandbox: none is configured)' : ''}`, hint);
  }
  const { probeNetCap } = await import('../sandbox/net-probe.js');
  const r = await probeNetCap();
  if (r.ok) return ok('net-sandbox', `sandboxed agents have no network; net: capabilities pass through the policy proxy and bridge, others are refused (probe ${r.ms} ms)`);
  return fail('net-sandbox', `net_cap does not work here: ${r.reason}`, "agents with net: capabilities cannot reach anything: check that node runs inside the sandbox ('swarm doctor --json' shows the detail)");
}

/** Signing keys (run certificates): the master key opens each, the `runs` key first; none yet is a warning. */
async function checkSigningKeys(store: Store | undefined, master: Buffer | undefined): Promise<DoctorCheck> {
  if (!store) return warn('signing-keys', 'not checked: the store could not be opened', 'fix the store check first');
  const all = await store.listSigningKeys();
  if (all.length === 0) return warn('signing-keys', "no signing keys yet: run certificates cannot be signed until one exists (the 'runs' key is made on first export)", "create it now: 'swarm keys create runs'");
  if (!master) return warn('signing-keys', `${all.length} key(s), not opened: no usable master key`, 'fix the master-key check first');
  const { SigningKeys } = await import('../identity/keys.js');
  const { secretsKek } = await import('../secrets/vault.js');
  const keys = new SigningKeys(store, () => secretsKek(master));
  const sorted = [...all].sort((a, b) => (a.name === 'runs' ? -1 : b.name === 'runs' ? 1 : a.name < b.name ? -1 : 1));
  const broken: string[] = [];
  let age = 0;
  for (const k of sorted) {
    try {
      // An age key (it decrypts bundles) is opened as one; every other key is an Ed25519 signing key.
      if (k.key_type === 'age') {
        age++;
        await keys.ageIdentity(k.name);
      } else {
        await keys.require(k.name);
      }
    } catch (e) {
      broken.push(`${k.name} (${errorMessage(e)})`);
    }
  }
  const signing = all.length - age;
  const counted = `${signing} signing key(s)${age ? ` and ${age} age key(s)` : ''}`;
  if (broken.length) return fail('signing-keys', `${broken.length} of ${all.length} key(s) cannot be opened with the master key: ${broken.join('; ')}`, "a key sealed under another master key, or an altered row: restore the store's master key, or delete and re-create the key");
  const runs = sorted.some((k) => k.name === 'runs' && k.key_type !== 'age') ? "'runs' among them" : "no 'runs' key yet (made on first export)";
  return ok('signing-keys', `all ${counted} open with the master key; ${runs}`);
}

/** PostgreSQL: the database's clock against this machine's, corrected for the round trip. */
async function checkClock(store: Store): Promise<DoctorCheck> {
  if (store.kind === 'sqlite') return ok('clock', 'not applicable: a SQLite store keeps time by this machine’s clock');
  const before = Date.now();
  const db = await store.now();
  const after = Date.now();
  const skew = Math.round(db - (before + after) / 2);
  const text = `the database clock is ${Math.abs(skew)} ms ${skew >= 0 ? 'ahead of' : 'behind'} this machine’s (round trip ${after - before} ms)`;
  const hint = 'synchronise the clocks (chrony or systemd-timesyncd) on this machine and the database server';
  if (Math.abs(skew) >= CLOCK_WARN_MS * 10) return fail('clock', text, hint);
  if (Math.abs(skew) >= CLOCK_WARN_MS) return warn('clock', text, hint);
  return ok('clock', text);
}

/** Live workers: heartbeated within a lease period (and, on this machine, their process still there). */
async function liveWorkers(store: Store, config: SwarmConfig): Promise<{ live: Array<{ id: string; scope: string | null; concurrency: number }>; silent: number }> {
  const now = await store.now();
  const window = Math.max(3000, config.leaseMs);
  const all = await store.listWorkers();
  const live = all.filter((w) => now - w.heartbeat_at <= window && !workerIsDead(w));
  return { live, silent: all.length - live.length };
}

async function checkWorkers(store: Store, config: SwarmConfig): Promise<DoctorCheck> {
  const { live, silent } = await liveWorkers(store, config);
  const general = live.filter((w) => w.scope === null);
  const counts = await store.runCounts();
  const pending = (counts.queued ?? 0) + (counts.running ?? 0);
  const silentText = silent ? `; ${silent} not stopped but silent (dead: their leases are released by the next worker)` : '';
  if (general.length > 0) return ok('workers', `${general.length} live worker(s), ${general.reduce((n, w) => n + w.concurrency, 0)} step(s) of capacity${silentText}`);
  const hint = "start one: 'swarm worker' (or 'swarm serve', which runs one)";
  if (pending > 0) return fail('workers', `no live worker, and ${pending} run(s) are queued or running: nothing executes them${silentText}`, hint);
  return warn('workers', `no live worker (nothing is queued or running)${silentText}`, hint);
}

/**
 * Runs that nobody will finish: running, with no live worker holding a lease on one of their steps
 * (nor running them alone), and either a step lease expired long ago (unclaimed since) or no live
 * worker at all to take them over. Waiting runs (approvals, sleeps, events) are fine.
 */
async function checkStuckRuns(store: Store, config: SwarmConfig): Promise<DoctorCheck> {
  const now = await store.now();
  const { live } = await liveWorkers(store, config);
  const liveIds = new Set(live.map((w) => w.id));
  const scoped = new Set(live.map((w) => w.scope).filter((s): s is string => s !== null));
  const anyGeneral = live.some((w) => w.scope === null);
  const stuckAfterMs = Math.max(STUCK_LEASE_MIN_MS, 2 * config.leaseMs);
  const stuck: Array<{ id: string; why: string }> = [];
  let examined = 0;
  let after: { created_at: number; id: string } | undefined;
  while (examined < STUCK_SCAN_RUNS) {
    const runs = await store.listRuns({ status: 'running', limit: Math.min(200, STUCK_SCAN_RUNS - examined), ...(after ? { after } : {}) });
    if (runs.length === 0) break;
    for (const run of runs) {
      if (scoped.has(run.id)) continue;
      const leased = (await store.getSteps(run.id)).filter((s) => s.status === 'running');
      if (leased.some((s) => s.lease_owner !== null && liveIds.has(s.lease_owner) && (s.lease_until ?? 0) >= now)) continue;
      const expired = leased.find((s) => s.lease_until !== null && now - s.lease_until > stuckAfterMs);
      if (expired) stuck.push({ id: run.id, why: `step ${expired.step_id}'s lease ended ${Math.round((now - (expired.lease_until ?? now)) / 1000)}s ago, unclaimed since` });
      else if (!anyGeneral) stuck.push({ id: run.id, why: leased[0] ? `step ${leased[0].step_id} is held by worker ${leased[0].lease_owner ?? '?'}, which is not live, and no live worker can take it over` : 'no live worker runs its next steps' });
    }
    examined += runs.length;
    const last = runs[runs.length - 1];
    after = last ? { created_at: last.created_at, id: last.id } : undefined;
  }
  const scope = examined >= STUCK_SCAN_RUNS ? ` (the newest ${STUCK_SCAN_RUNS} running runs examined)` : '';
  if (stuck.length === 0) return ok('stuck-runs', `none of ${examined} running run(s) is stuck${scope}`);
  const first = stuck[0] as { id: string; why: string };
  return fail(
    'stuck-runs',
    `${stuck.length} run(s) stuck${scope}: ${first.id} (${first.why})${stuck.length > 1 ? `; also ${stuck.slice(1, 4).map((s) => s.id).join(', ')}${stuck.length > 4 ? ', …' : ''}` : ''}`,
    anyGeneral ? `a worker should have reclaimed them: check the workers' logs; 'swarm runs resume ${first.id}' continues one here` : `start a worker ('swarm worker'), or continue them here: 'swarm runs resume'`,
  );
}
