#!/usr/bin/env node
// A short command does not pay for V8's optimising compiler (src/cli/fast-start.ts).
await import('../dist/src/cli/fast-start.js');
const { main } = await import('../dist/src/cli/main.js');

process.exitCode = await main(['agent', ...process.argv.slice(2)]);
