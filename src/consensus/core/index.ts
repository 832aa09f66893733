/**
 * The consensus core, pure: the contract, the event shapes, the rules of participation and of the
 * vote, stage budgets, explore controls, the projection of a task from its log, the decision proof,
 * and the hashes and signatures. No I/O: the engine (src/consensus/driver/) and the store build on it.
 *
 * @example
 *   import { loadTaskContract, projectTask, voteContext, checkReveal, decide, tally } from './consensus/core/index.js';
 */
export * from './types.js';
export * from './reason-codes.js';
export * from './crypto.js';
export * from './signed.js';
export * from './limits.js';
export * from './events.js';
export * from './contract.js';
export * from './votes.js';
export * from './records.js';
export * from './stage-budget.js';
export * from './explore.js';
export * from './projection.js';
export * from './proof.js';
