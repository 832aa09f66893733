import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from '../../src/engine/reaper.js';

/** The host pids of a run's agent processes (sandboxed or not): they carry SWARM_RUN_ID in their environment. */
export function agentPids(runId: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`SWARM_RUN_ID=${runId}`) && pidAlive(pid);
      } catch {
        return false;
      }
    });
}

/** Attempt cgroups of a worker process (this one by default) still present under its memory cgroup. */
export function leftoverCgroups(workerPid = process.pid): string[] {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('memory'));
  const roots = line ? [join('/sys/fs/cgroup/memory', line.split(':')[2] ?? '')] : [];
  const v2 = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  if (v2) for (const r of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) roots.push(join(r, v2.slice(3)));
  const mine = new RegExp(`^swarm-\\d+-${workerPid}-\\d+$`);
  return roots.flatMap((r) => {
    try {
      return readdirSync(r).filter((n) => mine.test(n));
    } catch {
      return [];
    }
  });
}
