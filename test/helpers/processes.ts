import { readdirSync, readFileSync } from 'node:fs';
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
