/**
 * A module loaded at its first use and then kept. `import()` of a module already loaded still goes
 * through the module loader each time (it resolves the specifier and looks the module up: about 5 µs
 * a call timed alone, 15–20 µs in a busy server), which a path taken once per request or per step
 * should not pay. A failed load is not kept: the next call tries again.
 *
 * @example
 *   const delivery = lazyModule(() => import('./triggers/webhook-delivery.js'));
 *   const { deliverWebhook } = await delivery();
 */
export function lazyModule<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () =>
    (loaded ??= load().catch((e: unknown) => {
      loaded = undefined;
      throw e;
    }));
}
