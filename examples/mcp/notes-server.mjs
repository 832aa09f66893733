#!/usr/bin/env node
/**
 * A small MCP server over stdio that keeps notes in a JSON file, for LLM agents that need memory
 * across runs. Tools: add_note, list_notes, delete_note.
 *
 * Environment: NOTES_FILE, the JSON file (default notes.json in the working directory; created on
 * the first note).
 *
 * In an agent package's agent.yaml:
 *
 *   tools:
 *     - mcp: { command: node, args: [notes-server.mjs], env: { NOTES_FILE: notes.json } }
 *       name: notes            # the tools become notes_add_note, notes_list_notes, notes_delete_note
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const file = resolve(process.env.NOTES_FILE || 'notes.json');

/** @returns {{ next_id: number, notes: Array<{ id: string, text: string, tags: string[], created_at: string }> }} */
function load() {
  if (!existsSync(file)) return { next_id: 1, notes: [] };
  const data = JSON.parse(readFileSync(file, 'utf8'));
  return { next_id: Number(data.next_id) || data.notes.length + 1, notes: Array.isArray(data.notes) ? data.notes : [] };
}

/** Write through a temporary file and a rename, so a crash never leaves half a file. */
function save(data) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
  renameSync(tmp, file);
}

const noteShape = { id: z.string(), text: z.string(), tags: z.array(z.string()), created_at: z.string() };
const server = new McpServer({ name: 'notes', version: '1.0.0' });

server.registerTool(
  'add_note',
  {
    description: 'Save a note. Returns the note with its id.',
    inputSchema: { text: z.string().min(1).describe('The note'), tags: z.array(z.string()).optional().describe('Labels to find it by') },
    outputSchema: noteShape,
  },
  async ({ text, tags }) => {
    const data = load();
    const note = { id: `n${data.next_id}`, text, tags: tags ?? [], created_at: new Date().toISOString() };
    data.next_id += 1;
    data.notes.push(note);
    save(data);
    return { content: [{ type: 'text', text: `Saved note ${note.id}.` }], structuredContent: note };
  },
);

server.registerTool(
  'list_notes',
  {
    description: 'List saved notes, oldest first; optionally only those with a tag or containing a word.',
    inputSchema: { tag: z.string().optional(), contains: z.string().optional().describe('Case-insensitive text to look for') },
    outputSchema: { notes: z.array(z.object(noteShape)) },
  },
  async ({ tag, contains }) => {
    const needle = contains?.toLowerCase();
    const notes = load().notes.filter((n) => (!tag || n.tags.includes(tag)) && (!needle || n.text.toLowerCase().includes(needle)));
    const text = notes.length ? notes.map((n) => `${n.id}: ${n.text}${n.tags.length ? ` [${n.tags.join(', ')}]` : ''}`).join('\n') : 'No notes.';
    return { content: [{ type: 'text', text }], structuredContent: { notes } };
  },
);

server.registerTool(
  'delete_note',
  { description: 'Delete a note by its id.', inputSchema: { id: z.string() } },
  async ({ id }) => {
    const data = load();
    const before = data.notes.length;
    data.notes = data.notes.filter((n) => n.id !== id);
    if (data.notes.length === before) return { content: [{ type: 'text', text: `No note with id '${id}'.` }], isError: true };
    save(data);
    return { content: [{ type: 'text', text: `Deleted note ${id}.` }] };
  },
);

await server.connect(new StdioServerTransport());
