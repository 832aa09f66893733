/**
 * HITL invocations as Swarm approvals. Each invocation starts a small system run of the built-in
 * workflow `sw4rm-hitl` (one `approval` step, `decide`), run here until it waits for its human. So
 * the invocation is listed by `swarm approvals`, the dashboard and `GET /api/v1/approvals`, and a
 * person decides it with `swarm approve <run>` / `swarm reject <run> --reason …` (or the API). The
 * decision is read back from the approval and answered as a `HitlDecision`; the run then finishes
 * (completed, or failed with APPROVAL_REJECTED), leaving an audit trail in the run's events.
 *
 * The invocation is a `hitl` document (migration 22) naming its run: a client that sends the same
 * `sw4rm-hitl-id` again (after a crash of either side) waits on the same approval.
 *
 * @example
 *   const hitl = new HitlBridge(swarm, { pollMs: 200 });
 *   const decision = await hitl.decide({ reason_type: 'SECURITY_APPROVAL', context, proposed_actions: ['deploy'], priority: 5 });
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../core/errors.js';
import type { Swarm } from '../../swarm.js';
import { sleep } from '../../agents/providers/rate-limit.js';

export const HITL_WORKFLOW = 'sw4rm-hitl';
export const HITL_AGENT = 'sw4rm-hitl-approval';
export const HITL_STEP = 'decide';
const VERSION = '1.0.0';

const AGENT_YAML = `name: ${HITL_AGENT}
version: ${VERSION}
description: A SW4RM HITL invocation waiting for a person (swarm approve / swarm reject)
author: swarm
runtime:
  type: builtin
  entry: approval
inputs:
  - name: message
    type: string
  - name: data
    type: any
outputs:
  - name: approved
    type: boolean
  - name: decided_by
    type: any
  - name: reason
    type: any
  - name: decided_at
    type: any
`;

const WORKFLOW_YAML = `name: ${HITL_WORKFLOW}
version: ${VERSION}
description: One SW4RM HITL invocation (started by the SW4RM scheduler service); approve or reject it
author: swarm
trigger:
  type: manual
inputs:
  - name: message
    type: string
    required: true
  - name: data
    type: any
steps:
  - id: ${HITL_STEP}
    agent: ${HITL_AGENT}@^1.0.0
    inputs:
      message: "\${trigger.message}"
      data: "\${trigger.data}"
`;

export interface HitlInvocationIn {
  reason_type: string;
  context: Buffer;
  proposed_actions: string[];
  priority: number;
}

export interface HitlDecisionOut {
  action: string;
  decision_payload: Buffer;
  rationale: string;
}

interface HitlDoc {
  id: string;
  run_id: string;
  reason_type: string;
  proposed_actions: string[];
  priority: number;
  created_at: number;
}

export class HitlBridge {
  private ready: Promise<void> | undefined;

  constructor(
    private readonly swarm: Swarm,
    private readonly o: { pollMs: number; now: () => number },
  ) {}

  /** Register the system agent and workflow once (they are ordinary registry rows: `swarm workflow list` shows them). */
  private ensureRegistered(): Promise<void> {
    this.ready ??= (async () => {
      const have = await this.swarm.listWorkflows(HITL_WORKFLOW);
      if (have.some((w) => w.version === VERSION)) return;
      const dir = mkdtempSync(join(tmpdir(), 'swarm-sw4rm-hitl-'));
      try {
        writeFileSync(join(dir, 'agent.yaml'), AGENT_YAML);
        writeFileSync(join(dir, 'workflow.yaml'), WORKFLOW_YAML);
        if (!(await this.swarm.listAgents(HITL_AGENT)).some((a) => a.version === VERSION)) await this.swarm.registerAgent(join(dir, 'agent.yaml'));
        await this.swarm.registerWorkflow(join(dir, 'workflow.yaml'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /** Start (or find, by id) the invocation's run and bring it to its approval. */
  async invoke(inv: HitlInvocationIn, id: string = randomUUID()): Promise<{ id: string; run_id: string }> {
    const key = id.trim();
    if (!key || key.length > 200) throw new UserError('SW4RM_HITL_INVALID', 'sw4rm-hitl-id must be 1 to 200 characters', { field: 'sw4rm-hitl-id' });
    const known = (await this.swarm.store.getSw4rmDocs('hitl', [key]))[0]?.doc as HitlDoc | undefined;
    if (known) return { id: key, run_id: known.run_id };
    await this.ensureRegistered();
    const actions = inv.proposed_actions.filter((a) => a.trim());
    const message = `SW4RM HITL ${inv.reason_type} (priority ${inv.priority})${actions.length ? `: ${actions.join(' | ')}` : ''}`;
    const text = inv.context.toString('utf8');
    let data: unknown = { context_base64: inv.context.toString('base64') };
    try {
      data = JSON.parse(text);
    } catch {
      if (!text.includes('\uFFFD') && !/\p{Cc}/u.test(text.replace(/[\n\r\t]/g, ''))) data = { context: text };
    }
    // The idempotency key makes a retried invocation (same id) reuse its run even across a crash
    // between starting the run and writing the document.
    const { runId } = await this.swarm.createRun(HITL_WORKFLOW, { message, data: { reason_type: inv.reason_type, proposed_actions: actions, priority: inv.priority, context: data } }, { idempotencyKey: `sw4rm-hitl:${key}`, metadata: { sw4rm_hitl_id: key } });
    const now = this.o.now();
    const doc: HitlDoc = { id: key, run_id: runId, reason_type: inv.reason_type, proposed_actions: actions, priority: inv.priority, created_at: now };
    await this.swarm.store.updateSw4rmGroup(`hitl:${key}`, ['hitl'], (docs) => (docs.length ? { put: [], remove: [] } : { put: [{ kind: 'hitl', key, grp: `hitl:${key}`, owner: runId, status: 'pending', doc, updated_at: now }], remove: [] }));
    await this.swarm.runToCompletion(runId, { pollMs: this.o.pollMs });
    return { id: key, run_id: runId };
  }

  /** Wait for the person's decision (until `signal` aborts), then let the run finish. */
  async awaitDecision(id: string, signal?: AbortSignal): Promise<HitlDecisionOut> {
    const doc = (await this.swarm.store.getSw4rmDocs('hitl', [id]))[0]?.doc as HitlDoc | undefined;
    if (!doc) throw new UserError('SW4RM_HITL_UNKNOWN', `no HITL invocation '${id}'`, { field: 'sw4rm-hitl-id' });
    for (;;) {
      const a = await this.swarm.store.getApproval(doc.run_id, HITL_STEP, 'step');
      if (a && a.status !== 'pending') {
        // The run goes on to complete (or fail with APPROVAL_REJECTED) in this process; any worker could.
        void this.swarm.runToCompletion(doc.run_id, { pollMs: this.o.pollMs }).catch(() => undefined);
        const chosen = a.status === 'approved' ? (doc.proposed_actions.find((x) => x === a.reason?.trim()) ?? doc.proposed_actions[0] ?? 'approve') : 'reject';
        const payload = { hitl_id: id, run_id: doc.run_id, status: a.status, decided_by: a.decided_by, decided_at: a.decided_at, reason: a.reason };
        return { action: chosen, decision_payload: Buffer.from(JSON.stringify(payload)), rationale: a.reason ?? '' };
      }
      if (signal?.aborted) throw new UserError('SW4RM_HITL_ABANDONED', `the caller stopped waiting for HITL invocation '${id}' (run ${doc.run_id}); it stays pending`, { run_id: doc.run_id });
      await sleep(this.o.pollMs, signal).catch(() => undefined); // an abort ends the wait; the loop sees it
    }
  }
}
