import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * ajv, loaded on first use rather than by every module that may validate something: loading it costs
 * a `swarm` process about 0.1 s, and most commands validate nothing with it (Swarm's own manifest
 * schemas are compiled at build time: src/core/manifest/schema-check.ts).
 */
export const ajvDraft7 = (): typeof import('ajv').Ajv => (require('ajv') as typeof import('ajv')).Ajv;
export const ajvDraft2019 = (): typeof import('ajv/dist/2019.js').Ajv2019 => (require('ajv/dist/2019.js') as typeof import('ajv/dist/2019.js')).Ajv2019;
export const ajvDraft2020 = (): typeof import('ajv/dist/2020.js').Ajv2020 => (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020;
