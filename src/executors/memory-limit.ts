import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Enforce an agent's `memory_mb` with the operating system. Preferred: a memory cgroup per step
 * attempt (cgroup v1 or v2), created under the worker's own cgroup; the child joins it before it
 * execs the agent, so not one allocation escapes. The kernel kills the group when it exceeds the
 * limit, and the cgroup's counters tell us it was an out-of-memory kill. Where no cgroup can be
 * created (no permission, no controller), fall back to RLIMIT_AS via `prlimit` (node agents get
 * `--max-old-space-size`, as an address-space limit breaks V8).
 */
export interface MemoryCage {
  readonly mechanism: 'cgroup-v1' | 'cgroup-v2';
  /** The command to spawn so that the process joins the cage before running `cmd`. */
  wrap(cmd: string, args: string[]): { cmd: string; args: string[] };
  /** Did the kernel kill something in the cage for exceeding the limit? */
  oomKilled(): boolean;
  /** Send `signal` to every process in the cage (however it detached itself: `setsid`, double fork). */
  signalAll(signal: NodeJS.Signals, except?: number): number;
  /** Kill whatever is left in the cage, then remove it. */
  release(): Promise<void>;
}

interface CgroupBase {
  version: 1 | 2;
  dir: string;
}

let detected: CgroupBase | null | undefined;
let counter = 0;

function detect(): CgroupBase | null {
  if (detected !== undefined) return detected;
  detected = null;
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch {
    return detected;
  }
  const candidates: CgroupBase[] = [];
  for (const line of lines) {
    const [, controllers, path] = line.split(':');
    if (controllers?.split(',').includes('memory') && path !== undefined) candidates.push({ version: 1, dir: join('/sys/fs/cgroup/memory', path) });
  }
  for (const line of lines) {
    if (line.startsWith('0::')) {
      const path = line.slice(3);
      for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
        if (existsSync(join(root, 'cgroup.controllers'))) candidates.push({ version: 2, dir: join(root, path) });
      }
    }
  }
  for (const c of candidates) {
    const probe = join(c.dir, `swarm-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      const ok = existsSync(join(probe, c.version === 1 ? 'memory.limit_in_bytes' : 'memory.max'));
      rmdirSync(probe);
      if (ok) {
        detected = c;
        break;
      }
    } catch {
      try {
        rmdirSync(probe);
      } catch {
        /* not created */
      }
    }
  }
  return detected;
}

/** Which mechanism enforces memory limits on this machine. */
export function memoryLimitMechanism(options: { cgroups?: boolean } = {}): 'cgroup-v1' | 'cgroup-v2' | 'rlimit' | 'none' {
  const base = options.cgroups === false ? null : detect();
  if (base) return base.version === 1 ? 'cgroup-v1' : 'cgroup-v2';
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'prlimit'))) ? 'rlimit' : 'none';
}

/** A fresh memory cgroup limited to `limitMb`, or undefined when cgroups cannot (or must not) be used here. */
export function createMemoryCage(limitMb: number, options: { cgroups?: boolean } = {}): MemoryCage | undefined {
  if (options.cgroups === false) return undefined;
  const base = detect();
  if (!base) return undefined;
  const dir = join(base.dir, `swarm-${pidNamespace()}-${process.pid}-${++counter}`);
  const bytes = String(limitMb * 1024 * 1024);
  try {
    mkdirSync(dir);
    if (base.version === 1) {
      writeFileSync(join(dir, 'memory.limit_in_bytes'), bytes);
      if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), bytes);
      if (existsSync(join(dir, 'memory.swappiness'))) writeFileSync(join(dir, 'memory.swappiness'), '0');
    } else {
      writeFileSync(join(dir, 'memory.max'), bytes);
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    }
  } catch {
    try {
      rmdirSync(dir);
    } catch {
      /* ignore */
    }
    return undefined;
  }
  const read = (f: string): string => {
    try {
      return readFileSync(join(dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    mechanism: base.version === 1 ? 'cgroup-v1' : 'cgroup-v2',
    wrap(cmd, args) {
      // The shell writes its own pid into the cgroup, then becomes the agent: no allocation escapes.
      // ($0 names the shell in its own error messages, so it is the agent's command, not the cgroup path.)
      // The shell would export its PWD: the agent's environment stays exactly the allow-list.
      return { cmd: '/bin/sh', args: ['-c', 'echo $$ > "$1" && shift && unset PWD OLDPWD && exec "$@"', cmd, join(dir, 'cgroup.procs'), cmd, ...args] };
    },
    oomKilled() {
      if (base.version === 2) return /oom_kill\s+[1-9]/.test(read('memory.events'));
      const ctl = read('memory.oom_control');
      if (/oom_kill\s+\d/.test(ctl)) return /oom_kill\s+[1-9]/.test(ctl);
      return Number(read('memory.failcnt').trim() || '0') > 0;
    },
    signalAll(signal, except) {
      return signalCgroup(dir, signal, except);
    },
    async release() {
      await removeCgroup(dir, base.version);
    },
  };
}

/** Signal every pid listed in a cgroup's `cgroup.procs`; returns how many were signalled. */
function signalCgroup(dir: string, signal: NodeJS.Signals, except?: number): number {
  let n = 0;
  let text = '';
  try {
    text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return 0;
  }
  for (const line of text.split('\n')) {
    const pid = Number(line);
    if (!pid || pid === except) continue;
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      /* already gone */
    }
  }
  return n;
}

/**
 * Kill every process of a cgroup (cgroup.kill on v2 where the kernel has it, else each pid of
 * cgroup.procs, again until none is left: a fork may race the first pass), then remove it.
 */
async function removeCgroup(dir: string, version: 1 | 2, tries = 100): Promise<boolean> {
  if (version === 2 && existsSync(join(dir, 'cgroup.kill'))) {
    try {
      writeFileSync(join(dir, 'cgroup.kill'), '1');
    } catch {
      /* fall back to signalling each pid */
    }
  }
  for (let i = 0; i < tries; i++) {
    signalCgroup(dir, 'SIGKILL');
    try {
      rmdirSync(dir);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      if (i + 1 < tries) await sleep(10); // the kernel is still tearing the group down
    }
  }
  return false;
}

/**
 * `swarm-<pid namespace>-<worker pid>-<n>`: the cgroup of one step attempt of one worker process.
 * The namespace makes a pid mean something: a worker in another container sharing the hierarchy
 * is never taken for dead.
 */
const CAGE_NAME = /^swarm-(\d+)-(\d+)-\d+$/;

let pidns: string | undefined;
function pidNamespace(): string {
  if (pidns === undefined) {
    try {
      pidns = String(statSync('/proc/self/ns/pid').ino);
    } catch {
      pidns = '0';
    }
  }
  return pidns;
}

/**
 * Remove the attempt cgroups that workers left behind when they died (SIGKILL, a crash): those of
 * `pids` and those of any worker pid no longer alive. Processes still inside are killed first.
 * Returns how many cgroups were removed.
 */
export async function removeDeadWorkerCgroups(isAlive: (pid: number) => boolean, pids: readonly number[] = []): Promise<number> {
  const base = detect();
  if (!base) return 0;
  let names: string[];
  try {
    names = readdirSync(base.dir);
  } catch {
    return 0;
  }
  const dead = new Set(pids);
  let removed = 0;
  for (const name of names) {
    const m = CAGE_NAME.exec(name);
    if (!m || m[1] !== pidNamespace()) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || (!dead.has(pid) && isAlive(pid))) continue;
    // A few tries (at most 0.2 s): the processes of a worker killed a moment ago may still be exiting;
    // the worker's loop, which renews leases, must not wait on the kernel for long.
    if (await removeCgroup(join(base.dir, name), base.version, 20)) removed++;
  }
  return removed;
}
