/**
 * The refunds agent's tool. It needs approval (agent.yaml), so a person has said yes before
 * `execute` runs, and Swarm records its result: a crash after this point never refunds twice.
 * A real tool would call the payment provider here, passing `ctx.idempotencyKey` as the provider's
 * idempotency key (it is the same for every retry of this call).
 */
import { createHash } from 'node:crypto';
import { tool, ToolResult } from 'swarm-runtime';

export const refund = tool({
  name: 'refund',
  description: 'Refund (part of) an invoice to the customer. Returns the refund id.',
  parameters: {
    type: 'object',
    properties: {
      invoice_id: { type: 'string', pattern: '^INV-[0-9]+$' },
      amount: { type: 'number', exclusiveMinimum: 0, description: 'How much to refund, in the invoice currency' },
      reason: { type: 'string', description: 'Why, in a few words' },
    },
    required: ['invoice_id', 'amount', 'reason'],
    additionalProperties: false,
  },
  execute(args, ctx) {
    const refundId = `RF-${createHash('sha256').update(ctx.idempotencyKey).digest('hex').slice(0, 8).toUpperCase()}`;
    const done = { refund_id: refundId, invoice_id: args.invoice_id, amount: args.amount, status: 'refunded' };
    // A ToolResult: the value the model sees, plus context variables for the rest of the conversation.
    return new ToolResult(done, { contextVariables: { refund_id: refundId } });
  },
});
