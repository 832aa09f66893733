// A Swarm process agent: node main.js <input.json> <output.json>
// Hasty on purpose: it splits on single spaces and counts only full stops, and says it is unsure.
const fs = require('node:fs');

const [inputFile, outputFile] = process.argv.slice(2);
const { text } = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
const words = text.split(' ').length;
const sentences = text.split('.').length - 1;
fs.writeFileSync(outputFile, JSON.stringify({ words, sentences, confidence: 0.4 }));
