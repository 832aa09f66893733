/**
 * The agent_swarm contract schemas (node, result, certificate, next_tokens; JSON Schema 2020-12)
 * shipped with Swarm in src/bundles/schemas/, and their validators. Loaded on first use: the offline
 * verifier reads them from the installation, never from the network.
 *
 * @example
 *   await validateContract('certificate', cert)  // undefined, or '/parent_state: must have required property …'
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv';

/** The contract schemas Swarm writes. */
export const CONTRACT_SCHEMAS = ['node', 'result', 'certificate', 'next_tokens'] as const;
export type ContractSchema = (typeof CONTRACT_SCHEMAS)[number];

/** The directory holding the `.schema.json` files, found from this module (src/ or dist/src/). */
export function schemaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    for (const candidate of [join(dir, 'schemas'), join(dir, 'src', 'bundles', 'schemas')]) {
      if (existsSync(join(candidate, 'certificate.schema.json'))) return candidate;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('the contract schemas (src/bundles/schemas/) are missing from this installation of Swarm');
    dir = up;
  }
}

/** A contract schema's JSON. */
export function contractSchema(name: ContractSchema): Record<string, unknown> {
  return JSON.parse(readFileSync(join(schemaDir(), `${name}.schema.json`), 'utf8')) as Record<string, unknown>;
}

const validators = new Map<ContractSchema, ValidateFunction>();

/** Validate a value against a contract schema: undefined when it validates, else the first error (`<json pointer>: <message>`). */
export async function validateContract(name: ContractSchema, value: unknown): Promise<string | undefined> {
  let validate = validators.get(name);
  if (!validate) {
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    validate = new Ajv2020({ allErrors: false, strict: false, validateFormats: false }).compile(contractSchema(name));
    validators.set(name, validate);
  }
  if (validate(value)) return undefined;
  const e = validate.errors?.[0];
  return e ? `${e.instancePath || '/'}: ${e.message ?? 'does not validate'}${e.params && 'allowedValue' in e.params ? ` (${JSON.stringify(e.params.allowedValue)})` : ''}` : 'does not validate';
}
