/**
 * An llm agent's tool whose target is an agent registered with the SW4RM router: the model's
 * arguments go as one TOOL_CALL message (application/json), and the agent's reply (TOOL_RESULT, or
 * any message correlated to the call) is the tool's result; a TOOL_ERROR reply or a REJECTED / FAILED
 * ACK is an error the model sees. The call's idempotency key is the message's idempotency token, so
 * a call run again after a crash is not delivered twice (the router drops the resend).
 *
 * @example
 *   tools:
 *     - sw4rm: { agent: translator, router: 127.0.0.1:50051, timeout_seconds: 30 }
 *       description: Translate text into French
 *       parameters: { type: object, properties: { text: { type: string } }, required: [text] }
 */
import { tool, type Tool } from '../../agents/agent.js';
import { ToolCallError } from '../../agents/tools/errors.js';
import { SW4RM_DEFAULT_ROUTER, type Sw4rmSendType, type Sw4rmWaitMode } from '../../core/manifest/sw4rm-runtime.js';
import { sw4rmToolName } from '../../core/manifest/agent.js';
import type { JsonSchema } from '../../agents/types.js';
import { exchange, ExchangeError } from './exchange.js';
import { stepOutputs } from './executor.js';
import { toolCallIdentity } from './ids.js';

export const SW4RM_TOOL_DEFAULT_TIMEOUT_MS = 30_000;

/** `{ sw4rm: {agent, router?, wait?, timeout_seconds?, message_type?}, name?, description, parameters? }`. */
export interface Sw4rmToolEntry {
  sw4rm: {
    /** The recipient's agent id on the router. */
    agent: string;
    /** `host:port` of the RouterService (default 127.0.0.1:50051). */
    router?: string;
    /** `reply` (default): the agent's reply is the result; `fulfilled`: its FULFILLED ACK is enough. */
    wait?: Sw4rmWaitMode;
    /** How long to wait for the reply (default 30). */
    timeout_seconds?: number;
    /** Default TOOL_CALL. */
    message_type?: Extract<Sw4rmSendType, 'TOOL_CALL' | 'DATA'>;
  };
  /** The tool's name for the model (default: the agent id, made a valid tool name). */
  name?: string;
  description: string;
  parameters?: JsonSchema;
  needs_approval?: boolean;
}

export { sw4rmToolName };

/** The tool of one `sw4rm:` entry. */
export function sw4rmTool(spec: Sw4rmToolEntry): Tool {
  const s = spec.sw4rm;
  const router = s.router ?? SW4RM_DEFAULT_ROUTER;
  const waitMs = s.timeout_seconds !== undefined ? Math.round(s.timeout_seconds * 1000) : SW4RM_TOOL_DEFAULT_TIMEOUT_MS;
  return tool({
    name: spec.name ?? sw4rmToolName(s.agent),
    description: spec.description,
    parameters: spec.parameters ?? { type: 'object', properties: {}, additionalProperties: true },
    ...(spec.needs_approval !== undefined ? { needsApproval: spec.needs_approval } : {}),
    async execute(args, ctx) {
      const identity = toolCallIdentity(ctx.idempotencyKey);
      try {
        const out = await exchange({ router, to: s.agent, identity, messageType: s.message_type ?? 'TOOL_CALL', payload: args, wait: s.wait ?? 'reply', waitMs, signal: ctx.signal });
        return out.kind === 'reply' ? out.payload : stepOutputs(out, identity.correlationId);
      } catch (e) {
        if (e instanceof ExchangeError) throw new ToolCallError(e.code, e.message, e.context);
        throw e;
      }
    },
  });
}
