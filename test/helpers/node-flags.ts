// The Node.js flags the installed command starts the CLI with: bin/snap (package.json's "bin", what
// `npx snap` and a global install run) ends in `exec node FLAGS ".../dist/cli/main.js" "$@"`. Tests
// that measure memory start the CLI with the same flags, so they measure what a user runs.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LAUNCHER = path.resolve(import.meta.dirname, '..', '..', 'bin', 'snap');

export function launcherNodeFlags(launcher = LAUNCHER): string[] {
  const lines = fs.readFileSync(launcher, 'utf8').split('\n').filter((l) => l.startsWith('exec node --'));
  if (lines.length !== 1) throw new Error(`${launcher}: expected one 'exec node ...' line, found ${lines.length}`);
  const words = lines[0]!.split(/ +/).slice(2);
  const flags = words.slice(0, words.findIndex((w) => !w.startsWith('--')));
  if (flags.some((f) => !/^--[a-z0-9-]+(=[^ "'$]+)?$/.test(f))) throw new Error(`${launcher}: flags not understood here: ${flags.join(' ')}`);
  return flags;
}

/**
 * The flags bin/snap adds for this environment: none where NODE_OPTIONS sizes the heap itself
 * (--max-old-space-size or --max-semi-space-size), as the launcher's `case` does.
 */
export function launcherNodeFlagsFor(env: NodeJS.ProcessEnv | Record<string, string | undefined>, flags: string[]): string[] {
  return /--max-(old|semi)-space-size/.test(env.NODE_OPTIONS ?? '') ? [] : flags;
}
