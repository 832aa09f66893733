// A Swarm process agent: node main.js <input.json> <output.json>
const fs = require('node:fs');

const [inputFile, outputFile] = process.argv.slice(2);
const { text } = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
const words = text.split(/\s+/).filter(Boolean);
const longest = words.reduce((a, w) => (w.length > a.length ? w : a), '');
console.log(`counting ${words.length} words (idempotency key ${process.env.SWARM_IDEMPOTENCY_KEY})`);
fs.writeFileSync(outputFile, JSON.stringify({ words: words.length, lines: text.split('\n').length, longest }));
