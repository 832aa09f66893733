/**
 * A client of the SW4RM RegistryService (registry.proto): register, heartbeat, deregister.
 *
 * @example
 *   const registry = new RegistryClient();            // SW4RM_REGISTRY_ADDR or localhost:50052
 *   await registry.register({ agent_id: 'echo-1', name: 'Echo', capabilities: ['echo'] });
 *   await registry.heartbeat('echo-1', 'RUNNING');
 *   await registry.deregister('echo-1', 'shutdown');
 */
import { sw4rmProtos } from '../proto.js';
import { ServiceClientBase, type Sw4rmClientOptions } from './base.js';
import { Sw4rmClientError } from './errors.js';

/** Communication classes of registry.proto's AgentDescriptor (common.proto). */
export type CommunicationClassName = 'COMM_CLASS_UNSPECIFIED' | 'PRIVILEGED' | 'STANDARD' | 'BULK';

/** Agent states a heartbeat reports (common.proto AgentState). */
export type AgentStateName =
  | 'AGENT_STATE_UNSPECIFIED' | 'INITIALIZING' | 'RUNNABLE' | 'SCHEDULED' | 'RUNNING' | 'WAITING' | 'WAITING_RESOURCES'
  | 'SUSPENDED' | 'RESUMED' | 'COMPLETED' | 'FAILED_STATE' | 'SHUTTING_DOWN' | 'RECOVERING';

/** registry.proto AgentDescriptor; only `agent_id` and `name` are required. */
export interface AgentDescriptorInput {
  agent_id: string;
  name: string;
  description?: string;
  capabilities?: string[];
  communication_class?: CommunicationClassName;
  modalities_supported?: string[];
  reasoning_connectors?: string[];
  public_key?: Buffer;
  registration_type?: 'REGISTRATION_TYPE_UNSPECIFIED' | 'STANDARD_AGENT' | 'SWARM_GATEWAY';
  max_concurrent_delegations?: number;
}

export class RegistryClient extends ServiceClientBase {
  constructor(options: Sw4rmClientOptions = {}) {
    super('registry', sw4rmProtos().registry.RegistryService, options);
  }

  /** Register (or re-register) an agent. Fails with SW4RM_REJECTED when the registry says no. */
  async register(agent: AgentDescriptorInput): Promise<void> {
    const res = await this.unary<{ accepted: boolean; reason: string }>('RegisterAgent', { agent: { communication_class: 'STANDARD', ...agent } });
    if (!res.accepted) throw new Sw4rmClientError('SW4RM_REJECTED', `the registry at ${this.address} refused agent '${agent.agent_id}': ${res.reason || 'no reason given'}`, { ...this.info('RegisterAgent'), reason: res.reason });
  }

  /** Report that `agentId` is alive, in `state`; false when the registry does not know the agent. */
  async heartbeat(agentId: string, state: AgentStateName = 'RUNNING', health: Record<string, string> = {}): Promise<boolean> {
    const res = await this.unary<{ ok: boolean }>('Heartbeat', { agent_id: agentId, state, health });
    return res.ok;
  }

  /** Remove `agentId`; false when it was not registered. */
  async deregister(agentId: string, reason = ''): Promise<boolean> {
    const res = await this.unary<{ ok: boolean }>('DeregisterAgent', { agent_id: agentId, reason });
    return res.ok;
  }
}
