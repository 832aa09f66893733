/**
 * `swarm runs list | head -1`: a reader that goes away is not an error. Once its standard output or
 * error is a closed pipe (EPIPE), the command exits 0 quietly, as `ls | head -1` does, instead of
 * printing a stack trace. A module of its own: the verifier's fast path installs it without the CLI.
 */
let installed = false;

export function exitQuietlyOnClosedPipe(): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}
