/**
 * `runtime: {type: sw4rm, …}` in agent.yaml: a step that sends its inputs as a SW4RM message to an
 * agent registered with the router and waits for that agent's FULFILLED ACK, or for its reply
 * (docs/sw4rm.md#from-workflows-and-llm-agents). Pure validation: no I/O.
 *
 * @example
 *   runtime:
 *     type: sw4rm
 *     to: translator            # the recipient's agent id
 *     router: 127.0.0.1:50051   # default
 *     wait: reply               # or fulfilled (default)
 *     timeout: 30s              # how long to wait for the ACK or reply (default 30s)
 */
import { parseDuration } from './guardrails/budget.js';
import type { ProblemList } from './problems.js';

export const SW4RM_WAIT_MODES = ['fulfilled', 'reply'] as const;
export type Sw4rmWaitMode = (typeof SW4RM_WAIT_MODES)[number];

/** The message types a step (or a tool) may send; replies and ACKs are the recipient's. */
export const SW4RM_SEND_TYPES = ['DATA', 'TOOL_CALL', 'CONTROL', 'NOTIFICATION'] as const;
export type Sw4rmSendType = (typeof SW4RM_SEND_TYPES)[number];

export const SW4RM_DEFAULT_ROUTER = '127.0.0.1:50051';
export const SW4RM_DEFAULT_WAIT_MS = 30_000;

/** An agent id as the router knows it: printable, no spaces. */
export const SW4RM_AGENT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$';

/** The router's own producer id: no agent registers under it, so no step can send to it. */
export const SW4RM_ROUTER_ID = 'sw4rm-router';
/** `host:port` or `[ipv6]:port`. */
export const SW4RM_ROUTER_PATTERN = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}$';

/** A validated `runtime:` of a sw4rm agent. */
export interface Sw4rmRuntimeSpec {
  to: string;
  router: string;
  wait: Sw4rmWaitMode;
  /** How long to wait for the ACK (or reply) before failing with SW4RM_ACK_TIMEOUT (retryable). */
  wait_ms: number;
  message_type: Sw4rmSendType;
}

/** The `runtime:` fields only sw4rm agents have (the agent.yaml schema checks their shape). */
export const SW4RM_RUNTIME_PROPERTIES = {
  to: { type: 'string', pattern: SW4RM_AGENT_ID_PATTERN },
  router: { type: 'string', pattern: SW4RM_ROUTER_PATTERN },
  wait: { enum: [...SW4RM_WAIT_MODES] },
  timeout: { type: ['string', 'number'] },
  message_type: { enum: [...SW4RM_SEND_TYPES] },
} as const;

export const SW4RM_RUNTIME_KEYS = Object.keys(SW4RM_RUNTIME_PROPERTIES) as Array<keyof typeof SW4RM_RUNTIME_PROPERTIES>;

type LineOf = (p: Array<string | number>) => number | undefined;

/**
 * The sw4rm fields of `runtime:`, checked beyond their shape; problems go to `problems` with the
 * field and line. `timeoutSeconds` is the step's own bound (`runtime.timeout_seconds`).
 */
export function parseSw4rmRuntime(rt: Record<string, unknown>, timeoutSeconds: number, problems: ProblemList, lineOf: LineOf): Sw4rmRuntimeSpec | undefined {
  const before = problems.size;
  if (rt.to === undefined) problems.add('runtime.to', "is required for runtime.type 'sw4rm': the agent id of the recipient, as registered with the router", lineOf(['runtime']));
  else if (rt.to === SW4RM_ROUTER_ID) problems.add('runtime.to', `'${SW4RM_ROUTER_ID}' is the router's own producer id, not an agent: name the recipient agent`, lineOf(['runtime', 'to']));
  for (const key of ['entry', 'command', 'memory_mb'] as const) {
    if (rt[key] !== undefined) problems.add(`runtime.${key}`, "does not apply to runtime.type 'sw4rm' (the step sends a message; nothing runs here)", lineOf(['runtime', key]));
  }
  let waitMs = SW4RM_DEFAULT_WAIT_MS;
  if (rt.timeout !== undefined) {
    const seconds = parseDuration(rt.timeout);
    if (seconds === undefined || seconds <= 0) {
      problems.add('runtime.timeout', `${JSON.stringify(rt.timeout)} is not a duration; write a number and a unit, such as 500ms, 30s or 5m`, lineOf(['runtime', 'timeout']));
    } else if (seconds > timeoutSeconds) {
      problems.add('runtime.timeout', `waits ${seconds}s for the ACK, longer than the step may run (runtime.timeout_seconds: ${timeoutSeconds}); lower it or raise timeout_seconds`, lineOf(['runtime', 'timeout']));
    } else waitMs = Math.round(seconds * 1000);
  }
  if (typeof rt.router === 'string') {
    const port = Number(rt.router.slice(rt.router.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) problems.add('runtime.router', `port ${port} is not between 1 and 65535`, lineOf(['runtime', 'router']));
  }
  if (problems.size > before) return undefined;
  return {
    to: rt.to as string,
    router: (rt.router as string | undefined) ?? SW4RM_DEFAULT_ROUTER,
    wait: (rt.wait as Sw4rmWaitMode | undefined) ?? 'fulfilled',
    wait_ms: waitMs,
    message_type: (rt.message_type as Sw4rmSendType | undefined) ?? 'DATA',
  };
}
