import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { ExecutionError } from '../core/errors.js';
import type { AgentManifest, AgentSandbox } from '../core/manifest/agent.js';
import { BRIDGE_SOCKET_PATH, BRIDGE_SOURCE } from './net-bridge.js';

/**
 * The sandbox a deployment asks for (`sandbox:` in swarm.yaml, SWARM_SANDBOX): `auto` is bubblewrap
 * where it works on this machine, else none; `bwrap` is another name for `bubblewrap`.
 */
export const SANDBOX_MODES = ['auto', 'bubblewrap', 'bwrap', 'none'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];

export { AGENT_SANDBOXES, type AgentSandbox } from '../core/manifest/agent.js';

/** `bwrap` and `bubblewrap` are one driver. */
export function normalizeSandboxMode(mode: SandboxMode): 'auto' | 'bubblewrap' | 'none' {
  return mode === 'bwrap' ? 'bubblewrap' : mode;
}

/** What one agent process may see. Every path is absolute and appears at the same path inside. */
export interface SandboxSpec {
  /** The agent's package: visible read-only (and the working directory). */
  packageDir: string;
  /** The attempt's work directory (input.json, output.json): visible read-write. */
  workDir: string;
  /** More paths to show read-only (the interpreter's directory, an entry outside the package). */
  readOnly: readonly string[];
  /**
   * The way out, for an agent with net capabilities: the policy proxy's Unix socket (outside path),
   * bound into the sandbox, and the port the bridge listens on in the sandbox's loopback. Without
   * it a sandboxed agent has no network at all.
   */
  net?: { socketPath: string; port: number };
}

/**
 * A sandbox driver: turns the agent's command line into one that runs it isolated. Drivers only
 * rewrite the command; spawning, environment and killing stay with the process executor.
 */
export interface Sandbox {
  readonly name: 'none' | 'bubblewrap';
  /** Does the agent see only its package, its work directory and the system (not the project, not `.swarm/`)? */
  readonly isolated: boolean;
  /** Does the agent's whole process tree die with its main process (a PID namespace)? */
  readonly killsTree: boolean;
  wrap(cmd: string, args: readonly string[], spec: SandboxSpec): { cmd: string; args: string[] };
}

/** No isolation: the agent runs as the worker's user and sees what the worker sees. */
export const noneSandbox: Sandbox = {
  name: 'none',
  isolated: false,
  killsTree: false,
  wrap: (cmd, args) => ({ cmd, args: [...args] }),
};

/** System directories shown read-only, so that bash, python3, node and their libraries run. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];
const SYSTEM_PATH = /^\/(usr|bin|sbin|lib|lib32|lib64|libx32|etc)(\/|$)/;

/** The bubblewrap arguments that make the system visible: real directories bound, merged-/usr symlinks recreated. */
function systemArgs(): string[] {
  const args: string[] = [];
  for (const d of SYSTEM_DIRS) {
    let st;
    try {
      st = lstatSync(d);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(d), d);
    else if (st.isDirectory()) args.push('--ro-bind', d, d);
  }
  // /etc/resolv.conf may point into /run (systemd-resolved): keep name resolution working.
  try {
    const resolv = realpathSync('/etc/resolv.conf');
    if (!resolv.startsWith('/etc/') && !resolv.startsWith('/usr/')) args.push('--ro-bind-try', resolv, resolv);
  } catch {
    /* no resolv.conf */
  }
  return args;
}

/**
 * Bubblewrap (`bwrap`): a new mount, PID, IPC and UTS namespace per agent process. The agent sees
 * the system read-only, its package read-only, its work directory read-write, a private /tmp, a
 * minimal /dev and its own /proc; nothing else of the host (not the project, not `.swarm/`). All
 * capabilities are dropped. `--die-with-parent` and the PID namespace make the whole tree die when
 * the agent's main process exits or is killed, also children it detached with `setsid`. The network
 * is unshared: the sandbox has only its own loopback. With `spec.net`, the bridge (net-bridge.ts)
 * runs first inside the sandbox, listens on that loopback and forwards to the policy proxy's socket,
 * then starts the agent: the proxy is the only way out.
 */
export function bubblewrapSandbox(bwrap: string): Sandbox {
  const base = systemArgs();
  return {
    name: 'bubblewrap',
    isolated: true,
    killsTree: true,
    wrap(cmd, args, spec) {
      const ro: string[] = [];
      const readOnly = [...spec.readOnly];
      let command = [cmd, ...args];
      const net: string[] = [];
      if (spec.net) {
        // The bridge is node's: its interpreter must be visible (system directories already are).
        const nodeDir = dirname(process.execPath);
        if (!SYSTEM_PATH.test(nodeDir) && !readOnly.includes(nodeDir)) readOnly.push(nodeDir);
        net.push('--bind', spec.net.socketPath, BRIDGE_SOCKET_PATH);
        command = [process.execPath, '-e', BRIDGE_SOURCE, '--', BRIDGE_SOCKET_PATH, String(spec.net.port), ...command];
      }
      for (const p of [...readOnly, spec.packageDir]) ro.push('--ro-bind', p, p);
      return {
        cmd: bwrap,
        args: [
          '--die-with-parent',
          '--new-session',
          '--unshare-pid',
          '--unshare-ipc',
          '--unshare-uts',
          '--unshare-net',
          '--unshare-cgroup-try',
          '--cap-drop',
          'ALL',
          ...base,
          '--dev',
          '/dev',
          '--proc',
          '/proc',
          // Later mounts go on top of earlier ones: the private /tmp first, then the package and
          // the work directory (a project under /tmp stays visible only where it is bound).
          '--tmpfs',
          '/tmp',
          ...ro,
          '--bind',
          spec.workDir,
          spec.workDir,
          ...net,
          '--chdir',
          spec.packageDir,
          '--',
          ...command,
        ],
      };
    },
  };
}

/** Where a program is on the PATH, or undefined. */
export function which(program: string, path = process.env.PATH ?? ''): string | undefined {
  if (isAbsolute(program)) return existsSync(program) ? program : undefined;
  for (const d of path.split(delimiter)) {
    if (d && existsSync(join(d, program))) return join(d, program);
  }
  return undefined;
}

export type BubblewrapProbe = { ok: true; path: string } | { ok: false; reason: string };

let probed: BubblewrapProbe | undefined;

/**
 * Does bubblewrap work here? Checked once per process by running `true` in a sandbox like the ones
 * agents get (namespaces can be forbidden by the kernel, a container or a seccomp profile even when
 * the binary is installed).
 */
export function probeBubblewrap(): BubblewrapProbe {
  if (probed) return probed;
  const path = which('bwrap');
  if (!path) return (probed = { ok: false, reason: "'bwrap' is not installed (Debian/Ubuntu: apt-get install bubblewrap)" });
  const truePath = which('true') ?? '/bin/true';
  const here = dirname(truePath);
  const { cmd, args } = bubblewrapSandbox(path).wrap(truePath, [], { packageDir: here, workDir: '/tmp', readOnly: [] });
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  if (r.status === 0) return (probed = { ok: true, path });
  const why = r.error ? r.error.message : r.stderr.toString('utf8').trim().split('\n').pop() || `exit code ${String(r.status)}`;
  return (probed = { ok: false, reason: `bwrap cannot create a sandbox here: ${why}` });
}

/** The sandbox in force for a mode, and why bubblewrap is not (for `auto` falling back to none). */
export interface SandboxChoice {
  sandbox: Sandbox;
  /** When `none` is in force: why (asked for, or bubblewrap unavailable). */
  reason?: string;
}

/**
 * Choose the driver for `mode`. `bubblewrap` where it does not work is an error (exit 4): a
 * deployment that asked for isolation must not silently run without it.
 */
export function chooseSandbox(configured: SandboxMode): SandboxChoice {
  const mode = normalizeSandboxMode(configured);
  if (mode === 'none') return { sandbox: noneSandbox, reason: 'configured' };
  const probe = probeBubblewrap();
  if (probe.ok) return { sandbox: bubblewrapSandbox(probe.path) };
  if (mode === 'bubblewrap') {
    throw new ExecutionError('SANDBOX_UNAVAILABLE', `sandbox '${configured}' is configured but ${probe.reason}; install it, or set sandbox: none (agents are then not isolated)`, { sandbox: mode });
  }
  return { sandbox: noneSandbox, reason: probe.reason };
}

/**
 * The driver one agent runs in. The deployment's `bubblewrap` is a floor (an agent's `sandbox: none`
 * does not lower it); an agent's `sandbox: bwrap`, or any `net:` capability, asks for bubblewrap
 * whatever the default (a capability that cannot be enforced is not granted); `sandbox: none`
 * under `auto` or `none` runs unsandboxed; otherwise the deployment's choice. Throws
 * SANDBOX_UNAVAILABLE (exit 4) naming the agent when bubblewrap is needed and does not work here.
 *
 * @example
 *   const sandbox = sandboxForAgent('auto', chooseSandbox('auto'), { name: 'fetch', sandbox: 'bwrap', net: true });
 */
export function sandboxForAgent(deployment: SandboxMode, choice: SandboxChoice, agent: { name: string; sandbox?: AgentSandbox; net: boolean }, probeDriver: () => BubblewrapProbe = probeBubblewrap): Sandbox {
  const mode = normalizeSandboxMode(deployment);
  if (mode === 'bubblewrap') return choice.sandbox;
  if (agent.sandbox === 'bwrap' || agent.net) {
    if (choice.sandbox.isolated) return choice.sandbox;
    const probe = probeDriver();
    if (probe.ok) return bubblewrapSandbox(probe.path);
    const why = agent.sandbox === 'bwrap' ? "asks for 'sandbox: bwrap'" : 'declares net: capabilities (enforced only inside the bwrap sandbox)';
    throw new ExecutionError('SANDBOX_UNAVAILABLE', `agent '${agent.name}' ${why}, but ${probe.reason}; run 'swarm doctor'`, { agent: agent.name, sandbox: 'bwrap' });
  }
  if (agent.sandbox === 'none') return noneSandbox;
  return choice.sandbox;
}

/**
 * What registering an agent should warn about its sandbox here: `sandbox: none` under a deployment
 * that requires bubblewrap (it runs sandboxed anyway), and bwrap or net: capabilities asked for
 * where bubblewrap does not work (its steps fail with SANDBOX_UNAVAILABLE until it does).
 *
 * @example
 *   sandboxWarnings(manifest, config.sandbox);  // [] when nothing to say
 */
export function sandboxWarnings(m: Pick<AgentManifest, 'name' | 'sandbox' | 'capabilities'>, deployment: SandboxMode): string[] {
  const mode = normalizeSandboxMode(deployment);
  const net = m.capabilities.some((c) => c.startsWith('net:'));
  if (m.sandbox === 'none' && mode === 'bubblewrap') return [`agent '${m.name}' asks for 'sandbox: none', but this deployment requires bubblewrap (sandbox: ${deployment} in swarm.yaml): it runs sandboxed`];
  if (mode !== 'bubblewrap' && (m.sandbox === 'bwrap' || net)) {
    const probe = probeBubblewrap();
    if (!probe.ok) return [`agent '${m.name}' ${net ? 'declares net: capabilities, enforced only in the bwrap sandbox' : "asks for 'sandbox: bwrap'"}, but ${probe.reason}: its steps fail with SANDBOX_UNAVAILABLE here ('swarm doctor' checks the sandbox)`];
  }
  return [];
}
