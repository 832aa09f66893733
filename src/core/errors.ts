/**
 * One error hierarchy for the whole runtime. Every error carries a stable string `code`, the exit code
 * the CLI maps it to, and typed context (file, line, run id, step id) so a user can see what was
 * wrong and where.
 *
 * @example
 *   throw new ManifestError('agents/echo/agent.yaml', 'runtime.type', 'must be one of node, python, …', 7);
 */

/** Documented process exit codes (the CLI maps error classes to these in one place). */
export const ExitCode = {
  OK: 0,
  INVALID_INPUT: 2,
  VERIFICATION_FAILED: 3,
  EXECUTION_FAILED: 4,
  RESUME_FAILED: 5,
  POLICY_VIOLATION: 6,
  /** `swarm doctor`: at least one check failed. */
  CHECK_FAILED: 7,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorContext {
  file?: string;
  line?: number;
  field?: string;
  runId?: string;
  stepId?: string;
  [key: string]: unknown;
}

export abstract class SwarmError extends Error {
  abstract readonly code: string;
  abstract readonly exitCode: ExitCode;
  readonly context: ErrorContext;

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, ...this.context };
  }
}

/** Something the user gave us is wrong: a file, an argument, an input. Exit 2. */
export class UserError extends SwarmError {
  readonly code: string;
  readonly exitCode: ExitCode = ExitCode.INVALID_INPUT;
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, context, options);
    this.code = code;
  }
}

/** One thing wrong in a manifest: where (file, line, field) and what. */
export interface ManifestProblem {
  file: string;
  field?: string | undefined;
  problem: string;
  line?: number | undefined;
}

/** `file:line: field: problem`, the form every manifest problem is shown in. */
export function formatManifestProblem(p: ManifestProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}` : p.file;
  return `${where}: ${p.field ? `${p.field}: ` : ''}${p.problem}`;
}

/**
 * A manifest (agent.yaml, workflow.yaml, swarm.yaml) failed validation; names file, field and line.
 * It carries every problem found in the file (`problems`), one per line of its message, so a user
 * fixes them in one go.
 */
export class ManifestError extends UserError {
  readonly problems: readonly ManifestProblem[];
  constructor(file: string, field: string | undefined, problem: string, line?: number);
  constructor(problems: readonly ManifestProblem[]);
  constructor(fileOrProblems: string | readonly ManifestProblem[], field?: string, problem?: string, line?: number) {
    const problems: ManifestProblem[] =
      typeof fileOrProblems === 'string' ? [{ file: fileOrProblems, field, problem: problem ?? 'is not valid', line }] : [...fileOrProblems];
    const first = problems[0] ?? { file: '', problem: 'is not valid' };
    super('MANIFEST_INVALID', problems.map(formatManifestProblem).join('\n'), {
      file: first.file,
      field: first.field,
      line: first.line,
      ...(problems.length > 1 ? { problems } : {}),
    });
    this.problems = problems;
  }
}

export class NotFoundError extends UserError {
  constructor(kind: 'agent' | 'workflow' | 'run' | 'step' | 'file' | 'template' | 'session', name: string, hint?: string) {
    super(`${kind.toUpperCase()}_NOT_FOUND`, `${kind} '${name}' not found${hint ? `: ${hint}` : ''}`, { [kind]: name });
  }
}

/** The event hash chain or a stored checkpoint does not verify. Exit 3. */
export class VerificationError extends SwarmError {
  readonly code = 'VERIFICATION_FAILED';
  readonly exitCode = ExitCode.VERIFICATION_FAILED;
}

/** A run or step failed while executing, or the store failed. Exit 4. */
export class ExecutionError extends SwarmError {
  readonly code: string;
  readonly exitCode: ExitCode = ExitCode.EXECUTION_FAILED;
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, context, options);
    this.code = code;
  }
}

/** The store cannot be used: not a Swarm database, a newer schema, an I/O fault (StoreFaultError). Exit 4 (2 for user files). */
export class StoreError extends SwarmError {
  readonly code: string;
  readonly exitCode: ExitCode;
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown; exitCode?: ExitCode }) {
    super(message, context, options);
    this.code = code;
    this.exitCode = options?.exitCode ?? ExitCode.EXECUTION_FAILED;
  }
}

/** What a store fault happened to: the database file, or a file or directory the engine writes. */
export interface StoreFaultTarget {
  what: 'database' | 'work directory' | 'directory';
  path: string;
}

/**
 * The disk or the file system failed under the store or the engine's files: full, an I/O error,
 * read-only, or not permitted. Not the data's fault and not worth retrying on the spot: the worker
 * stops at once and the CLI exits 4 with one line naming the path, the cause and what to do.
 *
 * @example
 *   the database /srv/p/.swarm/swarm.db: disk full (SQLITE_FULL) while committing; free space and run 'swarm runs resume 0190…'
 */
export class StoreFaultError extends StoreError {
  constructor(
    code: 'STORE_DISK_FULL' | 'STORE_IO_ERROR' | 'STORE_READ_ONLY' | 'STORE_ACCESS_DENIED' | 'STORE_CANNOT_OPEN',
    readonly target: StoreFaultTarget,
    /** What went wrong, in words (`disk full`). */
    readonly problem: string,
    /** The system's own code (`SQLITE_FULL`, `ENOSPC`). */
    readonly systemCode: string,
    /** What Swarm was doing (`committing`). */
    readonly during: string,
    /** What the user should do (`free space`). */
    readonly remedy: string,
    options: { cause?: unknown; runId?: string } = {},
  ) {
    const next = options.runId ? ` and run 'swarm runs resume ${options.runId}'` : ', then try again';
    super(code, `the ${target.what} ${target.path}: ${problem} (${systemCode}) while ${during}; ${remedy}${next}`, { file: target.path, ...(options.runId ? { runId: options.runId } : {}) }, { cause: options.cause });
  }

  /** The same fault, its message telling how to continue this run. */
  forRun(runId: string): StoreFaultError {
    return new StoreFaultError(this.code as ConstructorParameters<typeof StoreFaultError>[0], this.target, this.problem, this.systemCode, this.during, this.remedy, { cause: this.cause, runId });
  }
}

export function isStoreFault(e: unknown): e is StoreFaultError {
  return e instanceof StoreFaultError;
}

/** A run cannot be resumed or retried from its current state. Exit 5. */
export class ResumeError extends SwarmError {
  readonly code: string;
  readonly exitCode = ExitCode.RESUME_FAILED;
  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(message, context);
    this.code = code;
  }
}

/** An action is not allowed by policy: a disabled workflow, a forbidden capability. Exit 6. */
export class PolicyError extends SwarmError {
  readonly code: string;
  readonly exitCode = ExitCode.POLICY_VIOLATION;
  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(message, context);
    this.code = code;
  }
}

/**
 * The code a step attempt is stopped with when its run was cancelled while it ran (the worker's abort
 * reason, or what a consensus step's fence finds): not a failure of the step, whose row the
 * cancellation already marked.
 */
export const RUN_ENDED = 'RUN_ENDED';

/** Errors raised while a step runs; `retryable` says whether the step's retry policy applies. */
export class StepError extends SwarmError {
  readonly code: string;
  readonly exitCode = ExitCode.EXECUTION_FAILED;
  readonly retryable: boolean;
  constructor(code: string, message: string, retryable: boolean, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, context, options);
    this.code = code;
    this.retryable = retryable;
  }
}

export function isSwarmError(e: unknown): e is SwarmError {
  return e instanceof SwarmError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
