// The Node.js flags the installed command starts the CLI with: bin/snap (package.json's "bin", what
// `npx snap` and a global install run) ends in `exec node FLAGS ".../dist/cli/main.js" "$@"`. Tests
// that measure memory start the CLI with the same flags, so they measure what a user runs.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LAUNCHER = path.resolve(import.meta.dirname, '..', '..', 'bin', 'snap');

export function launcherNodeFlags(launcher = LAUNCHER): string[] {
  const text = fs.readFileSync(launcher, 'utf8');
  const lines = text.split('\n').filter((l) => l.startsWith('exec node --'));
  if (lines.length !== 1) throw new Error(`${launcher}: expected one 'exec node ...' line, found ${lines.length}`);
  // The semi-space size is a variable there, 8 unless NODE_OPTIONS sizes the heap.
  const semi = /^semi=(\d+)$/m.exec(text);
  const words = lines[0]!.replace('$semi', semi?.[1] ?? '$semi').split(/ +/).slice(2);
  const flags = words.slice(0, words.findIndex((w) => !w.startsWith('--')));
  if (flags.some((f) => !/^--[a-z0-9-]+(=[^ "'$]+)?$/.test(f))) throw new Error(`${launcher}: flags not understood here: ${flags.join(' ')}`);
  return flags;
}

/**
 * The flags bin/snap adds for this environment, by the launcher's rule: none where NODE_OPTIONS
 * sets --max-semi-space-size itself; where it sets --max-old-space-size=N, a semi-space of N/8 MiB
 * (at least 1, at most the launcher's own); else the launcher's flags.
 */
export function launcherNodeFlagsFor(env: NodeJS.ProcessEnv | Record<string, string | undefined>, flags: string[]): string[] {
  const opts = env.NODE_OPTIONS ?? '';
  if (/--max-semi-space-size/.test(opts)) return [];
  const old = /--max-old-space-size=(\d+)/.exec(opts);
  if (!old) return flags;
  return flags.map((f) => {
    const m = /^--max-semi-space-size=(\d+)$/.exec(f);
    return m ? `--max-semi-space-size=${Math.max(1, Math.min(Number(m[1]), Math.floor(Number(old[1]) / 8)))}` : f;
  });
}
