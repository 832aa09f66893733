// A Swarm agent. Swarm runs: node main.js <input.json> <output.json>
// Read inputs from the first file, write a JSON object to the second, exit 0.
// SWARM_IDEMPOTENCY_KEY is the same for every attempt of this step: pass it to side effects.
const fs = require('node:fs');

const [inputFile, outputFile] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(inputFile, 'utf8'));

const result = { received: input.input_data, length: input.input_data.length };

fs.writeFileSync(outputFile, JSON.stringify({ result }));
