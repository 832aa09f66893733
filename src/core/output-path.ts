/**
 * Where a file the user named as an output (`-o run.tar`, `--out decisions.jsonl`) is really written.
 * Commands write a temporary file beside the target and rename it over, so a reader never sees half a
 * file; renaming over a symbolic link would replace the link, and over a device or a named pipe
 * (`/dev/stdout`, `/dev/null`, a FIFO another program reads) would replace that with a regular file.
 * So a link is followed to the file it names, and what is not a regular file is written into as it
 * is, without a temporary file.
 *
 * @example
 *   const t = outputTarget('/tmp/latest.tar'); // { path: '/data/run-42.tar', direct: false } for a link
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface OutputTarget {
  /** The file to write (a link followed to what it names). */
  path: string;
  /** true: an existing device, pipe or socket, written into directly (no temporary file, no rename). */
  direct: boolean;
}

const MAX_LINKS = 40;

export function outputTarget(file: string): OutputTarget {
  let path = resolve(file);
  for (let i = 0; i < MAX_LINKS; i++) {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return { path, direct: false }; // not there yet: created by the rename
    }
    if (st.isSymbolicLink()) {
      path = resolve(dirname(path), readlinkSync(path));
      continue;
    }
    // A directory stays a rename target: the rename then fails with EISDIR, which the caller words.
    return { path, direct: !st.isFile() && !st.isDirectory() };
  }
  // A loop of links: written into directly, the write fails (ELOOP) and the caller words it; a
  // rename would replace the link.
  return { path, direct: true };
}
