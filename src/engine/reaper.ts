import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { removeDeadWorkerCgroups } from '../executors/memory-limit.js';
import type { Store } from '../store/store.js';
import type { WorkerRecord } from '../store/types.js';

/** Is a process with this pid alive on this machine? A zombie (exited, not yet reaped) is not. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

let identity: string | undefined;

/**
 * Where a pid means something: the hostname, the boot (a reboot reuses pids) and the PID namespace
 * (containers sharing a hostname and a database file each have their own pids).
 */
export function hostIdentity(): string {
  if (identity !== undefined) return identity;
  let boot = '';
  let pidns = '';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  try {
    pidns = String(statSync('/proc/self/ns/pid').ino);
  } catch {
    /* not Linux */
  }
  identity = `${hostname()}/${boot}/${pidns}`;
  return identity;
}

/**
 * Is this worker known to be dead? Only a worker on this very host (same boot, same PID namespace)
 * whose process is gone: anywhere else we cannot tell, and its leases simply expire.
 */
export function workerIsDead(w: WorkerRecord): boolean {
  return w.stopped_at === null && w.host_id === hostIdentity() && w.pid !== process.pid && !pidAlive(w.pid);
}

/** Is `pid` (still) the agent process of this step? Its environment names the step's idempotency key. */
function isAgentOf(pid: number, runId: string, stepId: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'latin1');
    return `\0${env}`.includes(`\0SWARM_IDEMPOTENCY_KEY=${runId}/${stepId}\0`);
  } catch {
    return false;
  }
}

let swept = false;

/**
 * Find workers on this machine whose process is gone (killed, crashed) and release their leases at
 * once, instead of waiting for the leases to expire. The agent process groups they left running are
 * killed first, so an orphan cannot keep working on a step that is about to run again; a recorded
 * pid is killed only if that process still carries the step's idempotency key (pids get reused).
 * The attempt cgroups of dead workers are removed too (with whatever still runs in them).
 */
export async function reapDeadWorkers(store: Store, selfId: string): Promise<{ workers: number; leases: number; killed: number; cgroups: number }> {
  const deadWorkers = (await store.listWorkers()).filter((w) => w.id !== selfId && workerIsDead(w));
  const dead = deadWorkers.map((w) => w.id);
  // Cgroups of dead workers go too: on the first reaping of this process also those of workers that
  // died unrecorded (or were reaped by another process), later whenever a dead worker is found.
  const sweep = dead.length > 0 || !swept;
  swept = true;
  const cgroups = sweep ? await removeDeadWorkerCgroups(pidAlive, deadWorkers.map((w) => w.pid)).catch(() => 0) : 0;
  if (dead.length === 0) return { workers: 0, leases: 0, killed: 0, cgroups };
  let killed = 0;
  for (const p of await store.pidsOf(dead)) {
    if (!isAgentOf(p.pid, p.run_id, p.step_id)) continue;
    try {
      process.kill(-p.pid, 'SIGKILL');
      killed++;
    } catch {
      /* already gone */
    }
  }
  const leases = await store.expireLeasesOf(dead);
  return { workers: dead.length, leases, killed, cgroups };
}
