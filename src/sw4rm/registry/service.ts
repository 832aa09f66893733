/**
 * The SW4RM RegistryService (registry.proto): register, heartbeat, deregister; agents whose
 * heartbeats stop for `heartbeatTimeoutMs` are marked unavailable (docs/sw4rm.md, "Registry").
 * Messages to an unavailable agent are still queued for it (at-least-once): it gets them when it
 * streams again.
 *
 * @example
 *   const handle = addRegistryService(server, { swarm, options: SW4RM_DEFAULTS, now: Date.now });
 */
import * as grpc from '@grpc/grpc-js';
import { sw4rmProtos } from '../proto.js';
import type { Sw4rmServiceDeps, Sw4rmServiceHandle } from '../service-types.js';
import { SW4RM_AGENT_ID_PATTERN } from '../../core/manifest/sw4rm-runtime.js';

interface Descriptor {
  agent_id: string;
  name: string;
  description: string;
  capabilities: string[];
  communication_class: string | number;
  modalities_supported: string[];
  reasoning_connectors: string[];
  public_key: Buffer;
  registration_type: string | number;
  max_concurrent_delegations: number;
}

/** Agent ids: what a stream, a target header and a CLI argument can carry without quoting. */
// The same ids agent.yaml's `to:` and `sw4rm:` tools accept.
const AGENT_ID = new RegExp(SW4RM_AGENT_ID_PATTERN);

/** Why `id` cannot name an agent (registering or streaming), or undefined when it can. */
export function agentIdProblem(id: string, field = 'agent.agent_id'): string | undefined {
  if (!id) return `VALIDATION_ERROR: ${field} is required`;
  if (!AGENT_ID.test(id)) return `VALIDATION_ERROR: ${field} '${id.slice(0, 80)}' must be 1-200 characters of letters, digits and . _ : @ / - (starting with a letter or digit)`;
  if (id === 'sw4rm-router') return `VALIDATION_ERROR: ${field} 'sw4rm-router' is the router's own producer id`;
  return undefined;
}

/** Why a descriptor cannot be registered, or undefined. */
export function descriptorProblem(d: Descriptor | null | undefined): string | undefined {
  if (!d) return 'VALIDATION_ERROR: RegisterAgentRequest.agent is missing';
  const idProblem = agentIdProblem(d.agent_id);
  if (idProblem) return idProblem;
  if (!d.name || !d.name.trim()) return `VALIDATION_ERROR: agent.name of '${d.agent_id}' is required`;
  if (d.name.length > 200) return `VALIDATION_ERROR: agent.name of '${d.agent_id}' is longer than 200 characters`;
  if (typeof d.communication_class === 'number') return `VALIDATION_ERROR: agent.communication_class ${d.communication_class} of '${d.agent_id}' is not a communication class`;
  return undefined;
}

function descriptorJson(d: Descriptor): string {
  return JSON.stringify({
    agent_id: d.agent_id,
    name: d.name,
    description: d.description,
    capabilities: d.capabilities,
    communication_class: d.communication_class,
    modalities_supported: d.modalities_supported,
    reasoning_connectors: d.reasoning_connectors,
    public_key: d.public_key.length > 0 ? d.public_key.toString('base64') : '',
    registration_type: d.registration_type,
    max_concurrent_delegations: d.max_concurrent_delegations,
  });
}

export function addRegistryService(server: grpc.Server, deps: Sw4rmServiceDeps): Sw4rmServiceHandle {
  const store = deps.swarm.store;
  const fail = (cb: grpc.sendUnaryData<never>, e: unknown): void => cb({ code: grpc.status.UNAVAILABLE, details: `INTERNAL_ERROR: the registry could not reach its store: ${(e as Error).message}` });

  server.addService(sw4rmProtos().registry.RegistryService.service, {
    RegisterAgent(call: grpc.ServerUnaryCall<{ agent: Descriptor | null }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const d = call.request.agent;
      const problem = descriptorProblem(d);
      if (problem || !d) {
        cb(null, { accepted: false, reason: problem });
        return;
      }
      const cls = d.communication_class === 'COMM_CLASS_UNSPECIFIED' ? 'STANDARD' : String(d.communication_class);
      store.sw4rmPutAgent({ agent_id: d.agent_id, name: d.name.trim(), descriptor: descriptorJson(d), communication_class: cls }, deps.now()).then(
        () => cb(null, { accepted: true, reason: '' }),
        (e: unknown) => fail(cb, e),
      );
    },
    Heartbeat(call: grpc.ServerUnaryCall<{ agent_id: string; state: string | number; health: Record<string, string> }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const r = call.request;
      if (!r.agent_id) {
        cb(null, { ok: false });
        return;
      }
      store.sw4rmHeartbeat(r.agent_id, String(r.state), JSON.stringify(r.health ?? {}), deps.now()).then(
        (ok) => cb(null, { ok }),
        (e: unknown) => fail(cb, e),
      );
    },
    DeregisterAgent(call: grpc.ServerUnaryCall<{ agent_id: string; reason: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const r = call.request;
      if (!r.agent_id) {
        cb(null, { ok: false });
        return;
      }
      store.sw4rmDeregisterAgent(r.agent_id, r.reason ?? '', deps.now()).then(
        (ok) => cb(null, { ok }),
        (e: unknown) => fail(cb, e),
      );
    },
  });

  // Missed heartbeats: checked a few times per timeout; marking is idempotent across processes.
  const every = Math.max(20, Math.min(5000, Math.floor(deps.options.heartbeatTimeoutMs / 4)));
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    store
      .sw4rmMarkUnavailable(deps.now() - deps.options.heartbeatTimeoutMs)
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, every);
  timer.unref();
  return { close: async () => clearInterval(timer) };
}
