import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { BUILTIN_MODULES, BuiltinCommands } from '../src/cli/builtin-commands.js';
import type { CliContext } from '../src/cli/context.js';

// Registration does not use the context (actions do), so an empty one is enough to list names.
const ctx = {} as CliContext;
const names = (c: Command): string[] => [c.name(), ...c.aliases()];

describe('built-in commands load lazily', () => {
  it('lists exactly the top-level names each module registers, with no name twice', async () => {
    const seen: string[] = [];
    for (const m of BUILTIN_MODULES) {
      const program = new Command('swarm');
      (await m.load())(program, ctx);
      expect(program.commands.flatMap(names)).toEqual([...m.names]);
      seen.push(...m.names);
    }
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('registers only the command that runs (and the ones others extend), all of them for help or an unknown word', async () => {
    const registered = async (argv: string[], extra?: (p: Command) => void): Promise<string[]> => {
      const program = new Command('swarm');
      extra?.(program);
      await new BuiltinCommands(program, ctx, argv).register();
      return program.commands.map((c) => c.name());
    };
    const all = BUILTIN_MODULES.flatMap((m) => m.names);
    expect(await registered(['--help'])).toEqual(all);
    expect(await registered(['help', 'runs'])).toEqual(all);
    expect(await registered(['--version'])).toEqual([]); // and no registration may need one (swarm --version must not throw)
    expect(await registered(['sw4rm', 'registry'])).toEqual(['run', 'runs', 'verify', 'sw4rm', 'keys']);
    expect(await registered(['agent', 'list'])).toEqual(['run', 'runs', 'verify', 'agent', 'keys']);
    // A command registered before the built-ins is found without loading the rest, and listed after them.
    expect(await registered(['other'], (p) => p.command('other'))).toEqual(['run', 'runs', 'verify', 'keys', 'other']);
    // An unknown word: everything, built-ins first (commander's suggestions and help see all of them).
    expect(await registered(['nope'], (p) => p.command('other'))).toEqual([...all, 'other']);
    expect(await registered([])).toEqual(all);
  });
});
