// The commands, each loaded only when it runs. Importing every command's module at start (ops, the
// web UI, FUSE, the watcher, the remote backends: about 200 modules) cost every command 60-80 ms on
// Node 20 before it did anything (docs/performance.md, "Before and after the architecture issue").
// `snap <command>` loads the one module that registers that command; help, an unknown command or
// an argument list this module cannot read loads them all, so commander sees what it saw before.
import type { Command, Option } from 'commander';
import type { Ctx } from './context.js';

export type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;
type Register = (program: Command, run: Run) => void;

/**
 * Every module that registers commands, with the names and aliases it registers, in the order of
 * `snap --help`. test/cli-commands.test.ts holds the names against what each module registers.
 */
export const COMMAND_MODULES: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['init'], load: async () => (await import('./cmd-init.js')).registerInit },
  { names: ['create'], load: async () => (await import('./cmd-create.js')).registerCreate },
  { names: ['list', 'snapshots', 'ls', 'cat'], load: async () => (await import('./cmd-list.js')).registerList },
  { names: ['restore'], load: async () => (await import('./cmd-restore.js')).registerRestore },
  { names: ['index'], load: async () => (await import('./cmd-index.js')).registerIndex },
  { names: ['forget'], load: async () => (await import('./cmd-forget.js')).registerForget },
  { names: ['gc'], load: async () => (await import('./cmd-gc.js')).registerGc },
  { names: ['check'], load: async () => (await import('./cmd-check.js')).registerCheck },
  { names: ['stats'], load: async () => (await import('./cmd-stats.js')).registerStats },
  { names: ['repair'], load: async () => (await import('./cmd-repair.js')).registerRepair },
  { names: ['diff', 'find', 'history', 'dups'], load: async () => (await import('./cmd-browse.js')).registerBrowse },
  { names: ['export'], load: async () => (await import('./cmd-export.js')).registerExport },
  { names: ['tag', 'rewrite'], load: async () => (await import('./cmd-edit.js')).registerEdit },
  { names: ['ui'], load: async () => (await import('./cmd-ui.js')).registerUi },
  { names: ['mount'], load: async () => (await import('./cmd-mount.js')).registerMount },
  { names: ['log'], load: async () => (await import('./cmd-log.js')).registerLog },
  { names: ['schedule'], load: async () => (await import('./cmd-schedule.js')).registerSchedule },
  { names: ['copy'], load: async () => (await import('./cmd-copy.js')).registerCopy },
  { names: ['key'], load: async () => (await import('./cmd-key.js')).registerKey },
  { names: ['watch'], load: async () => (await import('./cmd-watch.js')).registerWatch },
  { names: ['drill'], load: async () => (await import('./cmd-drill.js')).registerDrill },
];

/**
 * The command an argument list (without node and the script) names, read as commander reads it:
 * the first argument that is not an option of `program` or an option's value. Undefined where
 * that is not certain: `--`, an option `program` does not have (help is one), an option whose
 * value is optional, or no command at all.
 */
export function commandWord(args: readonly string[], options: readonly Option[]): string | undefined {
  const long = (name: string) => options.find((o) => o.long === name);
  const short = (name: string) => options.find((o) => o.short === name);
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return undefined;
    if (a === '-' || !a.startsWith('-')) return a;
    if (a.startsWith('--')) {
      if (a.includes('=')) {
        if (!long(a.slice(0, a.indexOf('=')))) return undefined;
        continue;
      }
      const o = long(a);
      if (!o || o.optional) return undefined;
      if (o.required) i++;
      continue;
    }
    // Short options, perhaps several in one argument (-qr PATH) or with the value attached (-rPATH).
    for (let j = 1; j < a.length; j++) {
      const o = short(`-${a[j]}`);
      if (!o || o.optional) return undefined;
      if (o.required) {
        if (j === a.length - 1) i++;
        break;
      }
    }
  }
  return undefined;
}

/** Registers the command `args` names, or every command when that is not certain. */
export async function registerCommands(program: Command, run: Run, args: readonly string[]): Promise<void> {
  const word = commandWord(args, program.options);
  const one = word === undefined ? undefined : COMMAND_MODULES.find((m) => m.names.includes(word));
  const modules = one ? [one] : COMMAND_MODULES;
  const registers = await Promise.all(modules.map((m) => m.load()));
  for (const register of registers) register(program, run);
}
