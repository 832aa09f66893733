/**
 * The measured phase of a workload: what `--trace` counts and what `--profile` records. Setup, module
 * loading, registration and warm-up fall outside it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { resetSqlTrace, sqlTraceReport, type TraceReport } from './sql-trace.js';

export interface PhaseOptions {
  trace: boolean;
  /** Write a V8 CPU profile of the measured phase into this directory. */
  profileDir?: string;
  /** Used in the profile's file name. */
  label: string;
}

export interface PhaseResult {
  /** CPU time of this process during the phase (all threads: the event loop, SQLite, GC). */
  cpu_user_ms: number;
  cpu_sys_ms: number;
  /**
   * CPU time of the main thread alone (Linux only: /proc's schedstat), without V8's helper threads
   * (concurrent compilation, parallel and concurrent GC): what the event loop itself spent.
   */
  cpu_main_ms?: number;
  trace?: TraceReport;
  profile?: string;
}

export class Phase {
  private session: Session | undefined;
  private cpu: NodeJS.CpuUsage | undefined;
  private mainNs: number | undefined;

  constructor(private readonly options: PhaseOptions) {}

  async start(): Promise<void> {
    if (this.options.profileDir) {
      this.session = new Session();
      this.session.connect();
      await this.session.post('Profiler.enable');
      await this.session.post('Profiler.setSamplingInterval', { interval: 100 });
      await this.session.post('Profiler.start');
    }
    resetSqlTrace();
    this.mainNs = mainThreadNs();
    this.cpu = process.cpuUsage();
  }

  async end(): Promise<PhaseResult> {
    const cpu = process.cpuUsage(this.cpu);
    const mainNs = mainThreadNs();
    const out: PhaseResult = { cpu_user_ms: cpu.user / 1000, cpu_sys_ms: cpu.system / 1000 };
    if (mainNs !== undefined && this.mainNs !== undefined) out.cpu_main_ms = (mainNs - this.mainNs) / 1e6;
    if (this.options.trace) out.trace = sqlTraceReport();
    if (this.session && this.options.profileDir) {
      const { profile } = await this.session.post('Profiler.stop');
      this.session.disconnect();
      this.session = undefined;
      mkdirSync(this.options.profileDir, { recursive: true });
      const file = join(this.options.profileDir, `${this.options.label.replace(/\//g, '-')}-${process.pid}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      out.profile = file;
    }
    return out;
  }
}

/** Nanoseconds the main thread has run on a CPU (the first field of its schedstat); undefined off Linux. */
function mainThreadNs(): number | undefined {
  try {
    const ns = Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns : undefined;
  } catch {
    return undefined;
  }
}
