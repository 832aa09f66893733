/**
 * One value of every data class, planted in a run's input, an LLM tool's result, the model's reply
 * and a process agent's output, and the means to search any output for them (redaction tests).
 */
import { expect } from 'vitest';
import { writeAgent, writeWorkflow } from './project.js';

/** A secret the deployment knows (SWARM_SECRET_PLANTED). */
export const SECRET_VALUE = 'planted-secret-value-7781';

export const INPUT = {
  email: 'in.user@example.com',
  phone: '+44 20 7946 0001',
  card: '4111 1111 1111 1111',
  iban: 'DE89 3704 0044 0532 0130 00',
  national_id: '123-45-6789',
  api_key: 'sk-proj-INPUTabcdefghijklmnopqrstu',
  token: 'Xq7Lp2Rz9Vw4Kt8Nb3Hm6Jc1Fd5Gs0Ya2Ue7Wi',
  secret: SECRET_VALUE,
  employee: 'EMP-100001',
};
export const TOOL = {
  email: 'tool.result@example.org',
  phone: '(415) 555-2671',
  card: '5500-0000-0000-0004',
  iban: 'GB82 WEST 1234 5698 7654 32',
  national_id: 'AB 12 34 56 C',
  api_key: 'ghp_TOOLabcdefghijklmnopqrstuvwxyz012345',
  token: 'Pz8Kq3Wm7Rt2Yx6Nv1Bc5Hj9Lf4Gd0Sa8Ue3Ti6',
  secret: SECRET_VALUE,
  employee: 'EMP-200002',
};
export const REPLY = {
  email: 'model.reply@example.net',
  phone: '+1 212 555 0188',
  card: '378282246310005',
  iban: 'FR14 2004 1010 0505 0001 3M02 606',
  national_id: '078-05-1120',
  api_key: 'AKIAIOSFODNN7EXAMPLE',
  token: 'Mb4Xn9Qc2Vr7Tz5Lk8Hw3Jd6Fs1Gp0Ya7Ne4Ru2',
  secret: SECRET_VALUE,
};
export const PRINTED = {
  email: 'log.print@example.com',
  phone: '+33 1 23 45 67 89',
  card: '6011 1111 1111 1117',
  iban: 'NL91 ABNA 0417 1643 00',
  national_id: '219-09-9999',
  api_key: 'sk-ant-api03-LOGabcdefghijklmnopqrs',
  token: 'Ab3Cd5Ef7Gh9Ij2Kl4Mn6Op8Qr1St3Uv5Wx7Yz9',
  secret: SECRET_VALUE,
};
/** In the model's tool-call arguments. */
export const ARGS_EMAIL = 'args.user@example.com';

/** Every raw value, with the compact forms of the grouped ones (a card without its spaces). */
export const RAW: string[] = (() => {
  const all: string[] = [INPUT, TOOL, REPLY, PRINTED].flatMap((s) => Object.values(s));
  all.push(ARGS_EMAIL);
  for (const v of [...all]) if (/^[A-Z0-9 -]+$/.test(v) && /[ -]/.test(v) && v.replace(/[ -]/g, '').length >= 13) all.push(v.replace(/[ -]/g, ''));
  return [...new Set(all)];
})();

/** The storage policy of the test deployment: every action used. */
export const POLICY_YAML = `guardrails:
  redaction:
    email: redact
    phone: redact
    card: { action: mask, keep: 4 }
    iban: redact
    national_id: redact
    api_key: redact
    token: redact
    custom:
      employee_id: { pattern: 'EMP-[0-9]{6}', action: drop }
`;

/** What stored text shows instead (at least one of each somewhere). */
export const PLACEHOLDERS = ['[EMAIL]', '[PHONE]', '****1111', '****0004', '****0005', '[IBAN]', '[NATIONAL_ID]', '[API_KEY]', '[TOKEN]', '[secret:PLANTED]', '[DROPPED:employee_id]'];

/** No raw value anywhere in `text` (`where` names the output in the failure). */
export function expectNoneOf(where: string, text: string): void {
  const leaks = RAW.filter((v) => text.includes(v) || text.includes(JSON.stringify(v).slice(1, -1)));
  expect(leaks, `${where} holds raw values`).toEqual([]);
}

/** Bytes (a database file): searched as UTF-8 and as UTF-16 (SQLite may store either). */
export function expectNoneInBytes(where: string, bytes: Buffer): void {
  const leaks = RAW.filter((v) => bytes.includes(Buffer.from(v, 'utf8')) || bytes.includes(Buffer.from(v, 'utf16le')));
  expect(leaks, `${where} holds raw values`).toEqual([]);
}

const TOOLS_JS = `
export const lookup = {
  name: 'lookup',
  description: 'Look the customer up',
  parameters: { type: 'object', properties: { user: { type: 'string' } }, required: ['user'] },
  execute: () => (${JSON.stringify(TOOL)}),
};
`;

const PRINTER_JS = `const fs = require('fs');
const [, o] = process.argv.slice(2);
const v = ${JSON.stringify(PRINTED)};
for (const [k, x] of Object.entries(v)) console.log(k + ': ' + x);
console.error('stderr too: ' + v.email + ' ' + v.api_key);
fs.writeFileSync(o, JSON.stringify({ printed: v.email + ' / ' + v.card }));
`;

/** The model's replies: a tool call (an e-mail in its arguments), then an answer holding REPLY. */
export const REPLY_TEXT = `Found them. ${Object.entries(REPLY).map(([k, v]) => `${k}: ${v}`).join('; ')}.`;

/** An llm agent `clerk` with the `lookup` tool, a process agent `printer`, and the workflow `pii`. */
export function writePiiProject(dir: string, provider = 'openai', model = 'gpt-4o-mini'): void {
  writeAgent(dir, 'clerk', `name: clerk\nversion: 1.0.0\nruntime: { type: llm, provider: ${provider}, model: ${model} }\ninstructions: "You help customers."\ntools:\n  - module: tools.mjs\n`, { 'tools.mjs': TOOLS_JS });
  writeAgent(dir, 'printer', 'name: printer\nversion: 1.0.0\nruntime: { type: node, entry: main.js, timeout_seconds: 60 }\noutputs:\n  - { name: printed, type: string }\n', {
    'main.js': PRINTER_JS,
    'package.json': '{"type":"commonjs"}',
  });
  writeWorkflow(
    dir,
    'pii',
    'name: pii\nversion: 1.0.0\nsteps:\n  - id: chat\n    agent: clerk\n    inputs: { message: "Find the customer ${trigger.email}" }\n  - id: printer\n    agent: printer\n    depends_on: [chat]\n',
  );
}
