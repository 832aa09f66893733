/**
 * Who takes part in a task, as the driver asks them (the contract's participants with their member
 * ids: an entry with `samples: n` is n proposers), the quorum, and the event payload cap for a
 * candidate's output. The rules themselves (vote checks, tally and decision, stage budgets, explore
 * control, signatures) are the core's (src/consensus/core/). Pure: no I/O.
 *
 * @example
 *   proposerSlots(contract)  // [{ id: 'agent:counter#1', agent: 'counter' }, { id: 'agent:counter#2', agent: 'counter' }]
 *   quorumOf(contract)       // 2 for three voters without a quorum of their own
 */
import { canonicalJson } from '../../core/canonical-json.js';
import { byteLength } from '../../core/limits.js';
import { contractParticipants, majority } from '../core/contract.js';
import { candidateHash } from '../core/crypto.js';
import { MAX_EVENT_PAYLOAD_BYTES } from '../core/limits.js';
import type { TaskContract, VerifierSpec, VoterSpec } from '../core/types.js';

/** A proposer slot of the task: who proposes, and how. */
export interface ProposerSlot {
  id: string;
  executor?: string;
  agent?: string;
}

/** The proposer slots of a contract (an entry with `samples: n` is n members), with their member ids. */
export function proposerSlots(contract: TaskContract): ProposerSlot[] {
  return contractParticipants(contract)
    .filter((p) => p.role === 'proposer')
    .map((p) => ({ id: p.id, ...(p.executor ? { executor: p.executor } : {}), ...(p.agent ? { agent: p.agent } : {}) }));
}

/** The verifiers (default: one local verifier), with their member ids. */
export function verifierSlots(contract: TaskContract): Array<VerifierSpec & { id: string }> {
  return contractParticipants(contract)
    .filter((p) => p.role === 'verifier')
    .map((p) => ({ id: p.id, ...(p.executor ? { executor: p.executor } : { local: true }) }));
}

export function voterSlots(contract: TaskContract): VoterSpec[] {
  return contract.voting.voters;
}

/** Reveals needed for a decision: the contract's, else a majority of the voters. */
export function quorumOf(contract: TaskContract): number {
  return contract.voting.quorum ?? majority(contract.voting.voters.length);
}

/**
 * A candidate's output as event data: in full under the cap, else `output_ref` (its hash and size;
 * the output stays in the candidates table). `bytes` is the size either way, for the candidate's row.
 */
export function outputForEvent(output: unknown): { shown: { output: unknown } | { output_ref: { hash: string; size_bytes: number } }; bytes: number } {
  const json = canonicalJson(output ?? null);
  const bytes = byteLength(json);
  // Half the cap: the event carries the candidate's evidence and signature too.
  return { shown: bytes <= MAX_EVENT_PAYLOAD_BYTES / 2 ? { output } : { output_ref: { hash: candidateHash(output ?? null), size_bytes: bytes } }, bytes };
}
