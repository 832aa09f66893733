/**
 * The request messages of the scheduler port as proto-loader hands them over (`keepCase`, enums as
 * names, 64-bit numbers as numbers, bytes as Buffers, defaults filled in): the field names and
 * types of the project's protos (proto/sw4rm/). Only what the handlers read is typed.
 *
 * @example
 *   SubmitTask: unary<SubmitTaskRequest>(async (req) => ({ accepted: true, reason: req.task_id })),
 */
type Duration = { seconds?: number | string; nanos?: number } | null;

export interface SubmitTaskRequest { agent_id: string; task_id: string; priority: number; params: Buffer; content_type: string; scope: string }
export interface PreemptRequest { agent_id: string; task_id: string; reason: string }
export interface ShutdownAgentRequest { agent_id: string; grace_period: Duration }
export interface AgentIdRequest { agent_id: string }
export interface PurgeActivityRequest { agent_id: string; task_ids: string[] }

export interface NegotiationOpen { negotiation_id: string; correlation_id: string; topic: string; participants: string[]; intensity: string; debate_timeout: Duration }
export interface ProposalMsg { negotiation_id: string; from_agent: string; content_type: string; payload: Buffer }
export interface EvaluationMsg { negotiation_id: string; from_agent: string; confidence_score: number; notes: string }
export interface DecisionMsg { negotiation_id: string; decided_by: string; content_type: string; result: Buffer }
export interface AbortRequest { negotiation_id: string; reason: string }

export interface RoomProposalMsg { artifact_type: string; artifact_id: string; producer_id: string; artifact: Buffer; artifact_content_type: string; requested_critics: string[]; negotiation_room_id: string }
export interface RoomVoteMsg { artifact_id: string; critic_id: string; score: number; confidence: number; passed: boolean; strengths: string[]; weaknesses: string[]; recommendations: string[]; negotiation_room_id: string }
export interface SubmitProposalRequest { proposal: RoomProposalMsg | null }
export interface SubmitVoteRequest { vote: RoomVoteMsg | null }
export interface RoomRef { artifact_id: string; negotiation_room_id: string; timeout_seconds?: number }

export interface PolicyMsg {
  max_rounds: number;
  score_threshold: number;
  diff_tolerance: number;
  round_timeout_ms: number;
  token_budget_per_round: number;
  total_token_budget: number;
  oscillation_limit: number;
  hitl: { mode: string } | null;
  scoring: { require_schema_valid: boolean; require_examples_pass: boolean; llm_weight: number } | null;
}
export interface SetWagglePolicyRequest { policy: PolicyMsg | null }
export interface SetPolicyProfilesRequest { profiles: Array<{ name: string; policy: PolicyMsg | null }> }
export interface NegotiationRef { negotiation_id: string }
export interface SubmitEvaluationRequest { negotiation_id: string; report: { from_agent: string; deterministic_score: number; llm_confidence: number; notes: string; delta: unknown } | null }
export interface HitlActionRequest { negotiation_id: string; action: string; rationale: string }

export interface HitlInvocation { reason_type: string; context: Buffer; proposed_actions: string[]; priority: number }

export interface HandoffRequestMsg {
  request_id: string;
  from_agent: string;
  to_agent: string;
  reason: string;
  context_snapshot: Buffer;
  capabilities_required: string[];
  priority: number;
  timeout: Duration;
  budget: unknown;
  delegation_policy: unknown;
}
export interface HandoffResponseMsg { request_id: string; accepted: boolean; accepting_agent: string; rejection_reason: string }
export interface CompleteHandoffRequest { request_id: string; status: string }
export interface CancelDelegationMsg { correlation_id: string; reason: string; grace_period_ms: number }

export interface BindRequest { agent_id: string; repo_id: string; worktree_id: string }
export interface SwitchRequest { agent_id: string; target_worktree_id: string; requires_hitl: boolean }
export interface SwitchApprove { agent_id: string; target_worktree_id: string; ttl_ms: number }
export interface SwitchReject { agent_id: string; reason: string }
