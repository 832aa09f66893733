import type { Command } from 'commander';
import type { CliContext } from './context.js';

type Register = (program: Command, ctx: CliContext) => void;

/** One module of built-in commands: the top-level names (and aliases) it registers, loaded on demand. */
interface BuiltinModule {
  names: readonly string[];
  load(): Promise<Register>;
  /**
   * Registered on every invocation: commands that other registrations extend (`runs export`,
   * `keys create --type …` add to them), so those find them whatever command runs.
   */
  always?: true;
}

/**
 * The built-in commands, in `swarm --help` order. Each module (and what it imports: the gRPC stack
 * of sw4rm, the server, …) is loaded only when its command runs, or for the full help. Loading every
 * module cost about 0.6 CPU-seconds per `swarm` process; a command now loads its own module, those
 * marked `always`, and what they import. test/cli-lazy-commands.test.ts checks that the names here
 * are exactly what each module registers.
 */
export const BUILTIN_MODULES: readonly BuiltinModule[] = [
  {
    // `runs` with the subcommands that branching adds to it (export, fork, import) and `verify`.
    names: ['run', 'runs', 'verify'],
    always: true,
    load: async () => {
      const [runs, bundle, fork, share] = await Promise.all([import('./commands/runs.js'), import('./commands/bundle.js'), import('./commands/fork.js'), import('./commands/share.js')]);
      return (program, ctx) => {
        runs.registerRunCommands(program, ctx);
        bundle.registerBundleCommands(program, ctx);
        fork.registerForkCommands(program, ctx);
        share.registerShareCommands(program, ctx);
      };
    },
  },
  { names: ['agent'], load: async () => (await import('./commands/registry.js')).registerAgentCommands },
  { names: ['workflow'], load: async () => (await import('./commands/registry.js')).registerWorkflowCommands },
  { names: ['worker', 'init', 'demo'], load: async () => (await import('./commands/runs.js')).registerProcessCommands },
  { names: ['db'], load: async () => (await import('./commands/db.js')).registerDbCommands },
  { names: ['secrets'], load: async () => (await import('./commands/secrets.js')).registerSecretsCommands },
  { names: ['tokens'], load: async () => (await import('./commands/tokens.js')).registerTokenCommands },
  { names: ['breakers'], load: async () => (await import('./commands/breakers.js')).registerBreakerCommands },
  { names: ['events'], load: async () => (await import('./commands/events.js')).registerEventsCommands },
  { names: ['approve', 'reject', 'approvals', 'sessions', 'chat'], load: async () => (await import('./commands/llm.js')).registerLlmCommands },
  { names: ['dev'], load: async () => (await import('./commands/dev.js')).registerDevCommands },
  { names: ['schedules'], load: async () => (await import('./commands/schedules.js')).registerSchedulesCommands },
  { names: ['serve'], load: async () => (await import('./commands/serve.js')).registerServeCommand },
  { names: ['gc'], load: async () => (await import('./commands/gc.js')).registerGcCommand },
  { names: ['memory'], load: async () => (await import('./commands/memory.js')).registerMemoryCommand },
  { names: ['doctor'], load: async () => (await import('./commands/doctor.js')).registerDoctorCommand },
  { names: ['sw4rm'], load: async () => (await import('./commands/sw4rm.js')).registerSw4rmCommands },
  { names: ['executors', 'executor'], load: async () => (await import('./commands/executors.js')).registerExecutorsCommands },
  { names: ['task'], load: async () => (await import('./commands/task.js')).registerTaskCommands },
  { names: ['knowledge'], load: async () => (await import('./commands/knowledge.js')).registerKnowledgeCommands },
  { names: ['keys'], always: true, load: async () => (await import('./commands/keys.js')).registerKeysCommands },
  { names: ['log'], load: async () => (await import('./commands/log.js')).registerLogCommands },
];

/** Top-level options of `swarm` that print something and stop, needing no command. */
const VERSION_FLAGS = new Set(['-V', '--version']);

/** The command word of `argv` (its first argument), or undefined when it is an option or missing. */
function commandWord(argv: readonly string[]): string | undefined {
  const first = argv[0];
  return first === undefined || first.startsWith('-') ? undefined : first;
}

/**
 * Registers the built-in commands `argv` needs, lazily (after any other commands of the program:
 * a word they name loads no more built-ins than the `always` ones):
 *
 * - the `always` modules and the module of the command word; every module for `--help`, `help` or
 *   no arguments at all;
 * - then, when the command word is still unknown (a typo, an option commander must report), the
 *   remaining modules too, so commander's errors and suggestions are those of the full command set;
 *   the built-in commands keep their place ahead of the others in the help.
 *
 * @example
 *   await new BuiltinCommands(program, ctx, argv).register();
 */
export class BuiltinCommands {
  private readonly registered = new Map<BuiltinModule, Command[]>();

  constructor(
    private readonly program: Command,
    private readonly ctx: CliContext,
    private readonly argv: readonly string[],
  ) {}

  async register(): Promise<void> {
    const word = commandWord(this.argv);
    const first = this.argv[0];
    const all = first === undefined || first === 'help' || first === '-h' || first === '--help';
    const version = first !== undefined && VERSION_FLAGS.has(first);
    await this.load(BUILTIN_MODULES.filter((m) => all || (!version && (m.always || (word !== undefined && m.names.includes(word))))));
    if (version) return;
    const known = word !== undefined && this.program.commands.some((c) => c.name() === word || c.aliases().includes(word));
    if (!known) await this.load(BUILTIN_MODULES.filter((m) => !this.registered.has(m)));
    // Built-in commands first, in table order, then the others as they were registered.
    const builtin = BUILTIN_MODULES.flatMap((m) => this.registered.get(m) ?? []);
    const others = this.program.commands.filter((c) => !builtin.includes(c));
    (this.program.commands as Command[]).splice(0, this.program.commands.length, ...builtin, ...others);
  }

  private async load(modules: readonly BuiltinModule[]): Promise<void> {
    const registers = await Promise.all(modules.map((m) => m.load()));
    modules.forEach((m, i) => {
      const before = new Set(this.program.commands);
      registers[i]!(this.program, this.ctx);
      this.registered.set(
        m,
        this.program.commands.filter((c) => !before.has(c)),
      );
    });
  }
}
