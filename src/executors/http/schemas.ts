/**
 * The executor contract's JSON Schemas (draft 2020-12), one per wire type of contract.ts. They are
 * the `components.schemas` of docs/executor-api.yaml, word for word (a test checks it), and what the
 * client checks every response against and the reference executor checks every request against.
 *
 * @example
 *   const check = contractValidator('ExecuteResponse');
 *   check({ output: { summary: 'ok' } });  // [] (no problems)
 *   check({ evidence: 1 });                // ["must have required property 'output'", …]
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { ajvDraft2020 } from '../../core/ajv-lazy.js';

/** The protocol version this implementation speaks (`protocol_version` in /capabilities). */
export const EXECUTOR_PROTOCOL_VERSION = '1';

const evidenceRef = {
  type: 'object',
  description: 'A reference to a piece of evidence: inline data (a data: URI) or a URL; digest is sha256 hex of its bytes.',
  required: ['kind', 'uri', 'digest'],
  properties: {
    kind: { type: 'string', minLength: 1 },
    uri: { type: 'string', minLength: 1 },
    digest: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    size_bytes: { type: 'integer', minimum: 0 },
  },
} as const;

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

/** The schemas by name, with `$ref`s as the OpenAPI document writes them. */
export const CONTRACT_SCHEMAS = {
  EvidenceRef: evidenceRef,
  ExecutorHealth: {
    type: 'object',
    required: ['status'],
    properties: {
      status: { enum: ['ok', 'degraded'] },
      version: { type: 'string' },
    },
  },
  ExecutorCapabilities: {
    type: 'object',
    required: ['name', 'task_types', 'policies', 'protocol_version'],
    properties: {
      name: { type: 'string', minLength: 1 },
      task_types: { type: 'array', items: { type: 'string' } },
      policies: { type: 'array', items: { type: 'string' } },
      public_key: { type: 'string', description: 'Base64 of the raw 32-byte Ed25519 public key the executor signs with.', pattern: '^[A-Za-z0-9+/]{43}=$' },
      protocol_version: { type: 'string' },
    },
  },
  SeedBundle: {
    type: 'object',
    required: ['hit_type', 'task_id', 'candidate_hash', 'output', 'evidence'],
    properties: {
      hit_type: { enum: ['EXACT', 'SIMILAR'] },
      task_id: { type: 'string' },
      candidate_hash: { type: 'string' },
      output: {},
      similarity: { type: 'number' },
      evidence: { type: 'array', items: ref('EvidenceRef') },
    },
  },
  ExecuteRequest: {
    type: 'object',
    required: ['task_id', 'task_type', 'inputs', 'idempotency_key', 'deadline_ms'],
    properties: {
      task_id: { type: 'string', minLength: 1 },
      task_type: { type: 'string', minLength: 1 },
      inputs: { type: 'object' },
      idempotency_key: { type: 'string', minLength: 1, maxLength: 512 },
      deadline_ms: { type: 'integer', minimum: 0, description: 'Epoch milliseconds by which the answer must arrive.' },
      output_schema: { type: 'object' },
      seed_bundle: ref('SeedBundle'),
      proposer_id: { type: 'string' },
      round: { type: 'integer', minimum: 1 },
    },
  },
  ExecuteResponse: {
    type: 'object',
    required: ['output'],
    properties: {
      output: {},
      evidence: { type: 'array', items: ref('EvidenceRef') },
      cost_usd: { type: 'number', minimum: 0 },
      candidate_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      signature: { type: 'string' },
    },
  },
  VerifyRequest: {
    type: 'object',
    required: ['task_id', 'task_type', 'policy_id', 'candidate'],
    properties: {
      task_id: { type: 'string', minLength: 1 },
      task_type: { type: 'string' },
      policy_id: { type: 'string', minLength: 1 },
      params: { type: 'object' },
      output_schema: { type: 'object' },
      candidate: {
        type: 'object',
        required: ['candidate_hash', 'output'],
        properties: { candidate_hash: { type: 'string' }, output: {}, evidence: { type: 'array', items: ref('EvidenceRef') } },
      },
      others: {
        type: 'array',
        items: { type: 'object', required: ['candidate_hash', 'output'], properties: { candidate_hash: { type: 'string' }, output: {} } },
      },
      verifier_id: { type: 'string' },
    },
  },
  VerifyResponse: {
    type: 'object',
    required: ['status', 'reason_codes'],
    properties: {
      status: { enum: ['passed', 'failed', 'inconclusive'] },
      reason_codes: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 65535 } },
      reason: { type: 'string' },
      score: { type: 'number', minimum: 0, maximum: 1 },
      evidence: { type: 'array', items: ref('EvidenceRef') },
      cost_usd: { type: 'number', minimum: 0 },
      signature: { type: 'string' },
    },
  },
  Problem: {
    type: 'object',
    description: 'An error (RFC 9457 problem details, application/problem+json).',
    required: ['title', 'status'],
    properties: {
      type: { type: 'string' },
      title: { type: 'string' },
      status: { type: 'integer', minimum: 400, maximum: 599 },
      detail: { type: 'string' },
      code: { type: 'string', description: 'A stable error code, e.g. INPUT_INVALID, AGENT_UNKNOWN, AGENT_FAILED.' },
      retryable: { type: 'boolean', description: 'Whether the same request may succeed later.' },
    },
  },
} as const;

export type ContractSchemaName = keyof typeof CONTRACT_SCHEMAS;

let ajv: Ajv2020 | undefined;
const validators = new Map<ContractSchemaName, ValidateFunction>();

function validatorOf(name: ContractSchemaName): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    if (!ajv) {
      ajv = new (ajvDraft2020())({ allErrors: true, strict: false, validateFormats: false });
      // One document holding every schema, so `$ref: '#/components/schemas/X'` resolves as in the YAML.
      ajv.addSchema({ $id: 'executor-contract', components: { schemas: CONTRACT_SCHEMAS } });
    }
    v = ajv.getSchema(`executor-contract#/components/schemas/${name}`) as ValidateFunction;
    validators.set(name, v);
  }
  return v;
}

function describe(e: ErrorObject): string {
  return `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`.trim();
}

/** A checker of one wire type: the problems of a value (empty when it conforms). */
export function contractValidator(name: ContractSchemaName): (value: unknown) => string[] {
  return (value) => {
    const v = validatorOf(name);
    return v(value) ? [] : (v.errors ?? []).slice(0, 5).map(describe);
  };
}
