// A Swarm process agent: node main.js <input.json> <output.json>
const fs = require('node:fs');

const [inputFile, outputFile] = process.argv.slice(2);
const { text } = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
const words = text.split(/\s+/).filter(Boolean).length;
const sentences = text.split(/[.!?]+/).filter((s) => s.trim() !== '').length;
fs.writeFileSync(outputFile, JSON.stringify({ words, sentences, confidence: 0.9 }));
