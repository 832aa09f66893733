/** The invoices the example tools know (a real package would ask the billing system). */
export interface Invoice {
  invoice_id: string;
  customer: string;
  amount: number;
  currency: string;
  status: 'paid' | 'open' | 'refunded';
  issued: string;
  lines: Array<{ item: string; amount: number }>;
}

export const INVOICES: Readonly<Record<string, Invoice>> = {
  'INV-1001': {
    invoice_id: 'INV-1001',
    customer: 'Ada Lovelace',
    amount: 120,
    currency: 'EUR',
    status: 'paid',
    issued: '2025-01-31',
    lines: [
      { item: 'Team plan, January', amount: 90 },
      { item: 'Extra storage', amount: 30 },
    ],
  },
  'INV-1002': {
    invoice_id: 'INV-1002',
    customer: 'Ada Lovelace',
    amount: 90,
    currency: 'EUR',
    status: 'open',
    issued: '2025-02-28',
    lines: [{ item: 'Team plan, February', amount: 90 }],
  },
};
