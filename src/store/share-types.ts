/**
 * A run imported from a bundle (migration 29, `imported_bundles`): the bundle's exact bytes and its
 * digests, kept beside the run it created so exporting the run again gives the original file and a
 * fork of it names the original state digest.
 *
 * @example
 *   const rec = await store.getImportedBundle(runId);
 *   rec?.bundle_sha256  // 'sha256:9f…' (the state digest the bundle's certificate names)
 */
export interface ImportedBundleRecord {
  /** The run's id: the bundle's run id, kept. */
  run_id: string;
  /** The bundle's state digest (`new_state.bundle_sha256` of its certificate), `sha256:<hex>`. */
  bundle_sha256: string;
  /** sha256 of the certificate.json entry's bytes, `sha256:<hex>`. */
  certificate_sha256: string;
  /** The run id the bundle was exported from (the same as run_id: an import keeps the id). */
  source_run_id: string;
  /** The plain (decrypted) bundle, byte for byte as it was imported. */
  bundle: Buffer;
  imported_at: number;
}

export function toImportedBundle(r: Record<string, unknown>): ImportedBundleRecord {
  const b = r.bundle;
  return {
    run_id: r.run_id as string,
    bundle_sha256: r.bundle_sha256 as string,
    certificate_sha256: r.certificate_sha256 as string,
    source_run_id: r.source_run_id as string,
    bundle: Buffer.isBuffer(b) ? b : Buffer.from(b as Uint8Array),
    imported_at: Number(r.imported_at),
  };
}
