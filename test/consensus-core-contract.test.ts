/**
 * Task contracts (src/consensus/core/contract.ts): defaults written into the resolved contract,
 * durations as strings or milliseconds, and every check naming its path.
 */
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../src/consensus/core/crypto.js';
import { CONTRACT_DEFAULTS, contractParticipants, inputsHash, loadTaskContract, majority, parseTaskContract, TaskContractError } from '../src/consensus/core/contract.js';
import { ExitCode } from '../src/core/errors.js';

const base = (): Record<string, unknown> => ({
  task_type: 'summary',
  inputs: { text: 'Swarm is a durable runtime.' },
  output_schema: { type: 'object', required: ['summary'], properties: { summary: { type: 'string' } } },
  proposers: [{ executor: 'rt-a' }, { agent: 'summarize', samples: 2 }],
  verification: { policy: 'vp.schema_only.v1' },
  voting: { voters: [{ id: 'v1' }, { id: 'v2' }, { id: 'v3' }] },
});

/** The problems of a contract, as `field: problem` lines. */
function problems(raw: unknown): string[] {
  const r = parseTaskContract(raw, 'task.json');
  if (r.ok) return [];
  return r.problems.map((p) => `${p.field ?? ''}: ${p.problem}`);
}

function withPatch(patch: (c: Record<string, unknown>) => void): Record<string, unknown> {
  const c = base();
  patch(c);
  return c;
}

describe('defaults', () => {
  it('fills in every default, written down in CONTRACT_DEFAULTS', () => {
    const c = loadTaskContract(base(), 'task.json');
    expect(c.voting).toEqual({ voters: [{ id: 'v1', strategy: 'best_verified' }, { id: 'v2', strategy: 'best_verified' }, { id: 'v3', strategy: 'best_verified' }], quorum: 2, reveal_deadline_ms: 60_000, max_rounds: 3 });
    expect(c.expiry_ms).toBe(600_000);
    expect(c.explore).toEqual({ max_rounds: 1 });
    expect(c.knowledge).toEqual({ lookup: 'exact', min_similarity: 0.85, reuse_blacklist: [] });
    expect(c.verification).toEqual({ policy: 'vp.schema_only.v1', params: {}, verifiers: [{ local: true }] });
    expect(c.proposers).toEqual([{ executor: 'rt-a', samples: 1 }, { agent: 'summarize', samples: 2 }]);
    expect(c.budget).toBeUndefined();
    expect(CONTRACT_DEFAULTS).toMatchObject({ reveal_deadline_ms: 60_000, max_rounds: 3, expiry_ms: 600_000, explore_max_rounds: 1, knowledge_lookup: 'exact' });
    expect([1, 2, 3, 4, 5].map(majority)).toEqual([1, 2, 2, 3, 3]);
    // Resolving a resolved contract changes nothing (what TASK_CREATED records reads back the same).
    expect(loadTaskContract(JSON.parse(JSON.stringify(c)), 'again')).toEqual(c);
  });

  it('durations as strings or milliseconds', () => {
    const c = loadTaskContract(withPatch((x) => {
      x.voting = { voters: [{ id: 'v1' }], reveal_deadline: '30s', max_rounds: 2 };
      x.expiry = '10m';
    }), 'task.yaml');
    expect(c.voting.reveal_deadline_ms).toBe(30_000);
    expect(c.expiry_ms).toBe(600_000);
    const d = loadTaskContract(withPatch((x) => {
      x.voting = { voters: [{ id: 'v1' }], reveal_deadline_ms: 1500 };
      x.expiry_ms = 90_000;
    }), 'task.json');
    expect([d.voting.reveal_deadline_ms, d.expiry_ms]).toEqual([1500, 90_000]);
    expect(problems(withPatch((x) => (x.expiry = 'soon')))).toEqual(['expiry: "soon" is not a duration (write 30s, 10m, 2h or 1d, or expiry_ms in milliseconds)']);
    expect(problems(withPatch((x) => {
      x.expiry = '1m';
      x.expiry_ms = 60_000;
    }))).toEqual(['expiry: give expiry or expiry_ms, not both']);
    expect(problems(withPatch((x) => (x.voting = { voters: [{ id: 'v' }], reveal_deadline_ms: -1 })))).toEqual(['voting.reveal_deadline_ms: -1 must be a whole number of milliseconds > 0']);
  });

  it('participants and their member ids', () => {
    const key = generateIdentity().publicKey;
    const c = loadTaskContract(withPatch((x) => {
      x.proposers = [{ executor: 'rt-a' }, { executor: 'rt-b', samples: 2 }, { agent: 'sum' }, { agent: 'sum', id: 'mine', samples: 2 }];
      x.verification = { policy: 'vp.schema_only.v1', verifiers: [{ local: true }, { executor: 'rt-a' }] };
      x.voting = { voters: [{ id: 'v1' }, { id: 'v2', strategy: 'agent', agent: 'judge' }, { id: 'ext', external: true, public_key: key }] };
    }), 't');
    expect(contractParticipants(c).map((p) => `${p.role}:${p.id}`)).toEqual([
      'proposer:executor:rt-a',
      'proposer:executor:rt-b#1',
      'proposer:executor:rt-b#2',
      'proposer:agent:sum#1',
      'proposer:mine#1',
      'proposer:mine#2',
      'verifier:verifier:local',
      'verifier:executor:rt-a',
      'voter:v1',
      'voter:v2',
      'voter:ext',
    ]);
    expect(contractParticipants(c).find((p) => p.id === 'ext')).toEqual({ role: 'voter', id: 'ext', external: true, public_key: key });
    expect(inputsHash({ b: 1, a: 2 })).toBe(inputsHash({ a: 2, b: 1 }));
  });
});

describe('problems name their path', () => {
  const cases: Array<[string, (c: Record<string, unknown>) => void, string[]]> = [
    ['quorum above the voters', (c) => (c.voting = { voters: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], quorum: 4 }), ['voting.quorum: 4 is more than the 3 voters']],
    ['quorum not a positive integer', (c) => (c.voting = { voters: [{ id: 'a' }], quorum: 0 }), ['voting.quorum: 0 must be an integer ≥ 1']],
    ['no voters', (c) => (c.voting = { voters: [] }), ['voting.voters: must be a non-empty list of {id}']],
    ['unknown policy', (c) => (c.verification = { policy: 'vp.magic.v9' }), ['verification.policy: unknown policy \'vp.magic.v9\' (known: vp.schema_only.v1, vp.schema_thresholds.v1, vp.crosscheck.v1)']],
    ['bad policy params', (c) => (c.verification = { policy: 'vp.crosscheck.v1', params: { min_agreement: 2, colour: 'red' } }), ['verification.params.colour: unknown parameter (known: fields, min_agreement, min_others, tolerance)', 'verification.params.min_agreement: 2 must be a number from 0 to 1']],
    ['schema policy without a schema', (c) => delete c.output_schema, ['verification.policy: vp.schema_only.v1 checks candidates against output_schema, and the contract has none']],
    ['a broken schema', (c) => (c.output_schema = { type: 'nonsense' }), ['output_schema: is not a usable JSON Schema: schema is invalid: data/type must be equal to one of the allowed values, data/type must be array, data/type must match a schema in anyOf']],
    ['duplicate voter ids', (c) => (c.voting = { voters: [{ id: 'a' }, { id: 'a' }] }), ["voting.voters: two voters have the id 'a'; give each its own id"]],
    ['duplicate proposer ids', (c) => (c.proposers = [{ executor: 'x' }, { executor: 'x' }]), ["proposers: two proposers have the id 'executor:x'; give each its own id"]],
    ['a member id with a space', (c) => (c.voting = { voters: [{ id: 'a b' }] }), ['voting.voters: member id "a b" must be 1-190 visible ASCII characters without spaces (the kernel\'s key for it is named consensus:<id>)']],
    ['agent strategy without agent', (c) => (c.voting = { voters: [{ id: 'a', strategy: 'agent' }] }), ['voting.voters[0].agent: is required with strategy agent (the agent package that picks a candidate)']],
    ['unknown strategy', (c) => (c.voting = { voters: [{ id: 'a', strategy: 'coin' }] }), ['voting.voters[0].strategy: "coin" must be one of "best_verified", "agent"']],
    ['external without a key', (c) => (c.voting = { voters: [{ id: 'a', external: true }] }), ['voting.voters[0].public_key: is required for an external voter (base64 of its 32-byte Ed25519 public key)']],
    ['external with a short key', (c) => (c.voting = { voters: [{ id: 'a', external: true, public_key: Buffer.alloc(31).toString('base64') }] }), ['voting.voters[0].public_key: is not base64 of a 32-byte Ed25519 public key']],
    ['a key on a kernel-managed voter', (c) => (c.voting = { voters: [{ id: 'a', public_key: generateIdentity().publicKey }] }), ['voting.voters[0].public_key: only an external voter brings its own key (add external: true); a kernel-managed voter signs with a kernel-held key']],
    ['negative budget', (c) => (c.budget = { explore: -1, verify: 'x', finalize: 0 }), ['budget.explore: -1 must be a number of USD ≥ 0', 'budget.verify: "x" must be a number of USD ≥ 0']],
    ['unknown budget bucket', (c) => (c.budget = { vote: 1 }), ['budget.vote: unknown field (allowed: explore, verify, finalize)']],
    ['topk below 1', (c) => (c.explore = { topk: 0, stop: { no_new_evidence_rounds: 1.5 } }), ['explore.topk: 0 must be an integer ≥ 1', 'explore.stop.no_new_evidence_rounds: 1.5 must be an integer ≥ 1']],
    ['proposer with both', (c) => (c.proposers = [{ executor: 'x', agent: 'y' }]), ['proposers[0]: names both executor and agent; a proposer is exactly one of them']],
    ['proposer with neither', (c) => (c.proposers = [{ samples: 2 }]), ['proposers[0]: needs exactly one of executor or agent']],
    ['too many samples', (c) => (c.proposers = [{ agent: 'y', samples: 101 }]), ['proposers[0].samples: 101 is more than 100']],
    ['no proposers', (c) => delete c.proposers, ['proposers: is required (a list of {executor} or {agent, samples})']],
    ['unknown top-level field', (c) => (c.voters = []), ['voters: unknown field (allowed: task_id, task_type, inputs, output_schema, proposers, verification, voting, budget, explore, expiry, expiry_ms, knowledge)']],
    ['bad knowledge', (c) => (c.knowledge = { lookup: 'fuzzy', min_similarity: 2, reuse_blacklist: [1] }), ['knowledge.lookup: "fuzzy" must be one of "off", "exact", "similar"', 'knowledge.min_similarity: 2 must be a number from 0 to 1', 'knowledge.reuse_blacklist: must be a list of task ids or candidate hashes']],
    ['bad task id and type', (c) => {
      c.task_id = ' x';
      c.task_type = '';
    }, ['task_id: " x" must be 1-200 characters of letters, digits and . _ : / - (starting with a letter or digit)', 'task_type: is required (a non-empty string naming the kind of task)']],
    ['too large', (c) => (c.inputs = { text: 'x'.repeat(70_000) }), [': the contract is 70623 bytes of JSON; at most 65536 (put large inputs behind references)']],
  ];
  it.each(cases)('%s', (_what, patch, expected) => {
    expect(problems(withPatch(patch))).toEqual(expected);
  });

  it('not an object; every problem at once; TaskContractError exits 2', () => {
    expect(problems('nope')).toEqual([': a task contract must be an object ({task_type, inputs, proposers, verification, voting, …})']);
    const raw = { task_type: 't', proposers: [], verification: { policy: 'x' }, voting: { voters: [{ id: 'a' }], quorum: 3 } };
    expect(problems(raw)).toHaveLength(3);
    try {
      loadTaskContract(raw, 'task.json');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TaskContractError);
      const err = e as TaskContractError;
      expect(err.exitCode).toBe(ExitCode.INVALID_INPUT);
      expect(err.code).toBe('TASK_CONTRACT_INVALID');
      expect(err.message.split('\n')).toEqual([
        'task.json: proposers: must be a non-empty list of {executor} or {agent, samples}',
        "task.json: verification.policy: unknown policy 'x' (known: vp.schema_only.v1, vp.schema_thresholds.v1, vp.crosscheck.v1)",
        'task.json: voting.quorum: 3 is more than the 1 voter',
      ]);
    }
  });
});
