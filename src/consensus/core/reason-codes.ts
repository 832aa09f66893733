/**
 * Protocol reason codes: numbers (source 002's `u16`) with stable names. A number this version does
 * not know decodes as UNKNOWN (and is kept, so it can be reported with the peer's protocol version);
 * 60000..65535 are CUSTOM, for policies and executors of a user's own.
 *
 * @example
 *   reasonName(1201)   // 'REVEAL_MISMATCH'
 *   reasonName(61000)  // 'CUSTOM'
 *   reasonName(4242)   // 'UNKNOWN'
 */
export const ReasonCode = {
  OK: 0,
  UNKNOWN: 1,
  // verification (1000..)
  SCHEMA_MISMATCH: 1001,
  THRESHOLD_NOT_MET: 1002,
  FIELD_MISSING: 1003,
  CROSSCHECK_DISAGREE: 1004,
  CROSSCHECK_TOO_FEW: 1005,
  EVIDENCE_UNREACHABLE: 1006,
  EVIDENCE_DIGEST_MISMATCH: 1007,
  POLICY_UNKNOWN: 1008,
  POLICY_PARAMS_INVALID: 1009,
  VERIFIER_ERROR: 1010,
  // votes (1200..)
  COMMIT_DUPLICATE: 1200,
  REVEAL_MISMATCH: 1201,
  REVEAL_LATE: 1202,
  REVEAL_UNKNOWN_CANDIDATE: 1203,
  REVEAL_WITHOUT_COMMIT: 1204,
  REVEAL_DUPLICATE: 1205,
  COMMIT_CLOSED: 1206,
  ROUND_MISMATCH: 1207,
  // participation (1300..)
  SIGNATURE_MISSING: 1300,
  SIGNATURE_INVALID: 1301,
  NOT_MEMBER: 1302,
  ROLE_MISMATCH: 1303,
  // lifecycle (1400..)
  QUORUM_NOT_REACHED: 1400,
  ALREADY_FINALIZED: 1401,
  TASK_EXPIRED: 1402,
  NO_CANDIDATES: 1403,
  NO_VERIFIED_CANDIDATE: 1404,
  STAGE_BUDGET_EXHAUSTED: 1405,
  PAYLOAD_TOO_LARGE: 1406,
  TOPK_REACHED: 1407,
  NO_NEW_EVIDENCE: 1408,
  REUSE_BLACKLISTED: 1409,
  EXECUTOR_UNAVAILABLE: 1410,
  TIE: 1411,
  /** A candidate's `candidate_hash` is not the hash of its output. */
  CANDIDATE_HASH_MISMATCH: 1412,
  /** A verifier result or evidence names a candidate the task does not have. */
  CANDIDATE_UNKNOWN: 1413,
  /** A record arrived for a stage that is over (a proposal once proposing stopped, a verifier result once voting began). */
  STAGE_CLOSED: 1414,
  /** A proposer or judge agent the contract names is not registered. */
  AGENT_UNKNOWN: 1415,
  /** The task's inputs do not match a proposer agent's declared inputs (the same inputs go to every sample). */
  INPUT_INVALID: 1416,
  /** A proposer agent's outputs do not match its declared outputs. */
  OUTPUT_INVALID: 1417,
} as const;
export type ReasonCodeName = keyof typeof ReasonCode;

/** The first custom code. */
export const CUSTOM_REASON_MIN = 60000;
export const REASON_CODE_MAX = 65535;

const NAMES = new Map<number, ReasonCodeName>(Object.entries(ReasonCode).map(([k, v]) => [v, k as ReasonCodeName]));

/** The name of a code: a known name, `CUSTOM` (60000..65535) or `UNKNOWN`. */
export function reasonName(code: number): ReasonCodeName | 'CUSTOM' {
  const known = NAMES.get(code);
  if (known) return known;
  if (Number.isInteger(code) && code >= CUSTOM_REASON_MIN && code <= REASON_CODE_MAX) return 'CUSTOM';
  return 'UNKNOWN';
}

/** Whether a number is a valid wire code (an integer 0..65535). */
export function isReasonCode(code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= REASON_CODE_MAX;
}
