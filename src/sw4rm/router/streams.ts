/**
 * One open `StreamIncoming` of one agent, in this process: it claims the agent's queued messages in
 * seq order (a batch per transaction, each in flight under a lease) and writes them, and it takes
 * messages stored straight in flight by SendMessage when it is idle ("direct": no second
 * transaction between a send and its delivery). Order holds because a direct reservation is only
 * granted while nothing of the agent's is queued or being claimed.
 *
 * @example
 *   const s = new AgentStream('agent-1', call, claim);
 *   s.kick();
 */
import type * as grpc from '@grpc/grpc-js';
import type { Sw4rmMessageRow } from '../../store/sw4rm-router-types.js';
import { streamItemBytes } from './wire.js';

/** How many rows one claim transaction takes. */
export const CLAIM_BATCH = 256;

export class AgentStream {
  private claiming = false;
  /** Something may be queued that this stream has not claimed yet. */
  private dirty = false;
  /** Direct deliveries granted and not yet written or released. */
  private direct = 0;
  private blocked = false;
  closed = false;

  constructor(
    readonly agentId: string,
    private readonly call: grpc.ServerWritableStream<unknown, unknown>,
    private readonly claim: (agentId: string, limit: number) => Promise<Sw4rmMessageRow[]>,
    private readonly onError: (e: unknown) => void,
  ) {
    call.on('drain', () => {
      this.blocked = false;
      if (this.dirty) this.kick();
    });
  }

  /** Hold claims and direct deliveries (while the stream is being set up). */
  hold(): void {
    this.claiming = true;
  }

  release(): void {
    this.claiming = false;
    this.dirty = true;
    this.kick();
  }

  /** A SendMessage wants to store a row for this agent in flight and write it after its commit. */
  reserveDirect(): boolean {
    if (this.claiming || this.dirty || this.closed || this.blocked) return false;
    this.direct++;
    return true;
  }

  /** The end of one reservation (written or not). */
  endDirect(): void {
    this.direct--;
    if (this.direct === 0 && this.dirty) this.kick();
  }

  write(row: Sw4rmMessageRow): void {
    if (this.closed) return;
    // A full buffer stops further claims until it drains; what is written is kept by gRPC.
    if (!this.call.write(streamItemBytes(row.envelope, row.seq))) this.blocked = true;
  }

  /** Something was queued for this agent (or may have been): claim it when free. */
  kick(): void {
    if (this.closed) return;
    if (this.claiming || this.direct > 0 || this.blocked) {
      this.dirty = true;
      return;
    }
    void this.run();
  }

  private async run(): Promise<void> {
    this.claiming = true;
    try {
      do {
        this.dirty = false;
        const rows = await this.claim(this.agentId, CLAIM_BATCH);
        // Rows claimed after the stream closed stay in flight: the next stream (or the lease sweep) redelivers them.
        for (const r of rows) this.write(r);
        if (rows.length === CLAIM_BATCH) this.dirty = true;
      } while (this.dirty && !this.closed && !this.blocked);
    } catch (e) {
      // The store failed: the poll kicks again.
      this.dirty = true;
      this.onError(e);
    } finally {
      this.claiming = false;
    }
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.call.end();
  }
}
