/**
 * The billing agent's tools. `tool()` checks the definition; the model sees the name, the
 * description and the JSON Schema of the parameters. Swarm validates the model's arguments against
 * that schema (defaults filled in) before `execute` runs; a thrown error goes back to the model as
 * the tool's result, so it can correct itself.
 */
import { tool } from 'swarm-runtime';
import { INVOICES } from './invoices.ts';

export const lookupInvoice = tool({
  name: 'lookup_invoice',
  description: 'Look an invoice up by its id (like INV-1001): customer, amount, currency, status, date and lines.',
  parameters: {
    type: 'object',
    properties: { invoice_id: { type: 'string', pattern: '^INV-[0-9]+$', description: 'The invoice id, like INV-1001' } },
    required: ['invoice_id'],
    additionalProperties: false,
  },
  execute({ invoice_id }) {
    const invoice = INVOICES[String(invoice_id)];
    if (!invoice) throw new Error(`there is no invoice ${String(invoice_id)}`);
    return invoice;
  },
});
