import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Store } from '../store/store.js';

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

/**
 * Find workers on this machine whose process is gone (killed, crashed) and release their leases at
 * once, instead of waiting for the leases to expire. The agent process groups they left running are
 * killed first, so an orphan cannot keep working on a step that is about to run again. Workers on
 * other machines are never judged this way: their leases simply expire.
 */
export async function reapDeadWorkers(store: Store, selfId: string): Promise<{ workers: number; leases: number; killed: number }> {
  const host = hostname();
  const dead = (await store.listWorkers())
    .filter((w) => w.stopped_at === null && w.id !== selfId && w.hostname === host && w.pid !== process.pid && !pidAlive(w.pid))
    .map((w) => w.id);
  if (dead.length === 0) return { workers: 0, leases: 0, killed: 0 };
  let killed = 0;
  for (const pgid of await store.pidsOf(dead)) {
    try {
      process.kill(-pgid, 'SIGKILL');
      killed++;
    } catch {
      /* already gone */
    }
  }
  const leases = await store.expireLeasesOf(dead);
  return { workers: dead.length, leases, killed };
}
