/**
 * `runtime: {type: http, executor: <name>}` in agent.yaml: a step that runs on a remote executor
 * registered with `swarm executors add` (docs/executors.md). The step's inputs (with the run's
 * `shared_inputs` merged, `prompt` and `agent_id` injected) go as one `POST /execute`; the answer's
 * `output` becomes the step's outputs. Pure validation: no I/O (whether the executor is registered
 * is checked when the step runs; `swarm agents register` warns when it is not yet).
 *
 * @example
 *   runtime:
 *     type: http
 *     executor: rt              # a name given to `swarm executors add`
 *     task_type: summarize      # sent as the task's task_type (default: the agent's name)
 *     prompt: Summarize the text in three sentences.   # injected as inputs.prompt
 *     timeout_seconds: 60       # the deadline of each attempt
 */
import type { ProblemList } from './problems.js';

/** An executor's name as the registry accepts it. */
export const HTTP_EXECUTOR_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

/** A validated `runtime:` of an http agent. */
export interface HttpRuntimeSpec {
  executor: string;
  task_type: string;
  prompt?: string;
}

/** The `runtime:` fields only http agents have (the agent.yaml schema checks their shape). */
export const HTTP_RUNTIME_PROPERTIES = {
  executor: { type: 'string', pattern: HTTP_EXECUTOR_NAME_PATTERN },
  task_type: { type: 'string', minLength: 1, maxLength: 200 },
  prompt: { type: 'string' },
} as const;

export const HTTP_RUNTIME_KEYS = Object.keys(HTTP_RUNTIME_PROPERTIES) as Array<keyof typeof HTTP_RUNTIME_PROPERTIES>;

type LineOf = (p: Array<string | number>) => number | undefined;

/** The http fields of `runtime:`, checked beyond their shape; problems go to `problems` with the field and line. */
export function parseHttpRuntime(rt: Record<string, unknown>, agentName: string, problems: ProblemList, lineOf: LineOf): HttpRuntimeSpec | undefined {
  const before = problems.size;
  if (rt.executor === undefined) {
    problems.add('runtime.executor', "is required for runtime.type 'http': the name of a registered executor (swarm executors add <name> <base_url>)", lineOf(['runtime']));
  }
  for (const key of ['entry', 'command', 'memory_mb'] as const) {
    if (rt[key] !== undefined) problems.add(`runtime.${key}`, "does not apply to runtime.type 'http' (the step runs on the remote executor; nothing runs here)", lineOf(['runtime', key]));
  }
  if (problems.size > before) return undefined;
  return {
    executor: rt.executor as string,
    task_type: (rt.task_type as string | undefined) ?? agentName,
    ...(rt.prompt !== undefined ? { prompt: rt.prompt as string } : {}),
  };
}
