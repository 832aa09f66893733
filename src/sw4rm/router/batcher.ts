/**
 * Calls that arrive in the same turn of the event loop share one store call (one transaction): a
 * burst of SendMessages or AckDeliveries costs one commit, not one each.
 *
 * @example
 *   const acks = new Batcher((items) => store.sw4rmAck(items, Date.now()));
 *   const recorded = await acks.push(item);
 */
export class Batcher<I, O> {
  private queue: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private scheduled = false;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 512,
  ) {}

  push(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.run(batch.map((b) => b.item)).then(
        (out) => batch.forEach((b, i) => b.resolve(out[i] as O)),
        (e: unknown) => batch.forEach((b) => b.reject(e)),
      );
    }
  }
}
