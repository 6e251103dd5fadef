// The key derivation of an encrypted repository, started before the CLI's modules are loaded. A
// command that opens an encrypted repository spends about 0.4 s deriving the key of its password
// (scrypt, on libuv's thread pool) once its modules are loaded (0.1-0.2 s) and the repository's
// config and key file are read; the main thread waits meanwhile. Started here, it runs while the
// modules load, and Repository.open's unlock takes it (core/crypto.ts deriveKeyEarly: only for the
// same password and parameters; anything else derives as before). Nothing here decides anything:
// the arguments are read only to guess what the command will ask for; a wrong guess costs the
// derivation, never a result. Only a local repository of this user or a remote one this machine
// opened before, a command that unlocks it, and a password at hand (--password-file,
// SNAP_PASSWORD: nothing is run or asked for here).
// Anything unexpected: nothing is started. docs/performance.md, "The key derivation while the
// modules load".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deriveKeyEarly, type ScryptParams } from '../core/crypto.js';
import { keyFileId, keyFileKdf, scryptOf } from '../repo/keys.js';
import { readKnown } from '../repo/known.js';
import { parseRepoLocation } from '../repo/location.js';
import { cacheRoot, type Env } from '../repo/storage.js';
import { rawCwd } from './argv.js';
import { defaultRepoPath } from './default-repo.js';
import { passwordAtHand } from './password.js';

/** Commands that open --repo with its password (not init, key, or the long-running ones). */
const UNLOCKING = new Set(['create', 'list', 'snapshots', 'ls', 'cat', 'restore', 'check', 'forget', 'gc', 'stats', 'repair', 'diff', 'find', 'history', 'dups', 'export', 'tag', 'rewrite', 'copy', 'drill', 'index', 'mount']);
/** Global options (main.ts) that take a value, and those that do not. */
const WITH_VALUE = new Set(['-r', '--repo', '--lock-wait', '--password-file', '--password-command']);
const FLAGS = new Set(['--json', '-q', '--quiet', '--append-only', '--trust-owner', '--debug']);

/** What the arguments (without node and the script) say of the command, --repo and the password file; undefined when unsure. */
export function earlyArgs(args: readonly string[]): { command: string; repo?: string; passwordFile?: string; passwordCommand: boolean } | undefined {
  let command: string | undefined;
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--' || a === '-h' || a === '--help' || a === '-V' || a === '--version') return undefined;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (WITH_VALUE.has(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) return undefined;
      values.set(name === '-r' ? '--repo' : name, v);
    } else if (FLAGS.has(name)) continue;
    else if (command === undefined) {
      if (a.startsWith('-')) return undefined; // an option main.ts does not have, before the command
      command = a;
    }
  }
  if (command === undefined || !UNLOCKING.has(command)) return undefined;
  return { command, repo: values.get('--repo'), passwordFile: values.get('--password-file'), passwordCommand: values.has('--password-command') };
}

/**
 * The derivation a command on this machine will ask for, and the password for it, when all is as
 * expected (see above); undefined otherwise. A local repository of this user: its first key file
 * (unlock's order). A remote one: the key file the password opened last time, as this machine
 * recorded it for the location (repo/known.ts; the storage is not contacted here). Never throws.
 */
export function earlyDerivation(args: readonly string[], env: Env, cwd: string): { password: Buffer; kdf: ScryptParams } | undefined {
  try {
    const a = earlyArgs(args);
    if (!a || a.passwordCommand) return undefined;
    const text = a.repo ?? (env.SNAP_REPO || undefined);
    const location = text !== undefined ? parseRepoLocation(text, cwd) : { kind: 'local' as const, path: defaultRepoPath() };
    let kdf: ScryptParams;
    if (location.kind === 'local') {
      const root = location.path;
      if (fs.statSync(root).uid !== process.getuid?.()) return undefined;
      const id = fs.readdirSync(path.join(root, 'keys')).filter((n) => keyFileId(n)).sort()[0];
      if (!id) return undefined;
      kdf = keyFileKdf(fs.readFileSync(path.join(root, 'keys', id)), id);
    } else {
      const k = readKnown(path.join(cacheRoot(env), 'known'), location.path)?.record.kdf;
      if (!k) return undefined;
      kdf = scryptOf(k);
    }
    const password = passwordAtHand({ file: a.passwordFile }, cwd, env);
    return password ? { password, kdf } : undefined;
  } catch {
    // Not the expected repository: the command finds out and says so itself.
    return undefined;
  }
}

/** Start the derivation the command will ask for (earlyDerivation), if any; never throws. */
export function deriveEarly(args: readonly string[]): void {
  const d = earlyDerivation(args, process.env, rawCwd());
  if (!d) return;
  deriveKeyEarly(d.password, d.kdf);
  d.password.fill(0);
}
