#!/usr/bin/env node
// A short command does not pay for V8's optimising compiler (src/cli/fast-start.ts).
await import('../dist/src/cli/fast-start.js');
// `swarm verify` checks a bundle offline: it loads the verifier alone, not the whole CLI.
if (process.argv[2] === 'verify') {
  const { verifyMain } = await import('../dist/src/cli/commands/verify.js');
  process.exitCode = await verifyMain(process.argv.slice(3));
} else {
  const { main } = await import('../dist/src/cli/main.js');
  process.exitCode = await main([...process.argv.slice(2)]);
}
