/**
 * The log of the long-running commands (`swarm serve`, `swarm worker`): which format, and the lines
 * about runs and steps they both print.
 *
 * @example
 *   setUpLogging(ctx, o.logFormat); // before the store opens: its retry lines are logged too
 *   swarm.worker({ onFinished: runFinishedLogger(ctx), onStepFinished: stepFinishedLogger(ctx) });
 */
import { UserError } from '../core/errors.js';
import { resolveConfig } from '../config/config.js';
import { isLogFormat, LOG_FORMATS, type LogFormat } from '../observability/log-fields.js';
import type { Completion } from '../store/types.js';
import { shortRunId } from '../swarm.js';
import type { CliContext } from './context.js';
import { colorStatus } from './render.js';

/** The help of `--log-format`. */
export const LOG_FORMAT_HELP = 'how to log: text (for a terminal) or json (one object a line on stdout); default: SWARM_LOG_FORMAT, else log_format in swarm.yaml, else text';

/**
 * Choose the log format: `--log-format`, else `SWARM_LOG_FORMAT`, else `log_format:` in swarm.yaml,
 * else text. A format that is neither is exit 2, naming where it came from.
 */
export function setUpLogging(ctx: CliContext, flag: string | undefined): LogFormat {
  if (flag !== undefined && !isLogFormat(flag)) throw new UserError('ARGUMENT_INVALID', `--log-format must be one of ${LOG_FORMATS.join(', ')}, not '${flag}'`, { option: '--log-format' });
  const format = flag ?? resolveConfig({ cwd: ctx.cwd, env: ctx.env }).logFormat;
  if (format !== ctx.logger.format) ctx.useLogFormat(format);
  return format;
}

/** `run <id> <status>` when a run this process's worker finished reaches its final state. */
export function runFinishedLogger(ctx: CliContext): (runId: string, status: string, about?: { workflow?: string; trace_id?: string }) => void {
  return (runId, status, about) => ctx.logger.info(`run ${runId} ${status}`, { run_id: runId, workflow: about?.workflow, status, trace_id: about?.trace_id }, { text: `run ${shortRunId(runId)} ${colorStatus(status)}` });
}

/**
 * A line for every step attempt the worker recorded: JSON only (the text format has always been a
 * line per finished run, and stays so).
 */
export function stepFinishedLogger(ctx: CliContext): (c: Completion, about: { workflow?: string; trace_id?: string }) => void {
  return (c, about) => {
    if (ctx.logger.format === 'text') return;
    const r = c.result;
    const fields = {
      run_id: c.run_id,
      step_id: c.step_id,
      attempt: c.attempt,
      workflow: about.workflow,
      trace_id: about.trace_id,
      status: r.kind,
      duration_ms: Math.round(c.duration_ms),
      ...(r.kind === 'failed' ? { error: r.error, retryable: r.retryable } : {}),
    };
    const msg = `step ${c.step_id} attempt ${c.attempt} ${r.kind}${r.kind === 'failed' ? `: ${r.error.message}` : ''}`;
    if (r.kind === 'failed') ctx.logger.warn(msg, fields, { text: null });
    else ctx.logger.info(msg, fields, { text: null });
  };
}
