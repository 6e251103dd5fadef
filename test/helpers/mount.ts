// Starting `snap mount` in a test: the command runs until stopped; it is ready once it printed its
// "Ctrl-C unmounts" line. Shared by mount.test.ts (as root) and mount-user.test.ts (as a user).
import { spawn, type ChildProcess } from 'node:child_process';

export interface StartedMount {
  proc: ChildProcess;
  exited: Promise<number | null>;
  stderr(): string;
}

/**
 * Run `argv` (a snap mount command line) and wait, up to 30 s, until it says the mount is ready.
 * `spawned` gets the process at once, so a test can stop it even when it never became ready.
 */
export async function startMount(argv: string[], o: { env: NodeJS.ProcessEnv; cwd?: string; spawned?(proc: ChildProcess): void }): Promise<StartedMount> {
  const [cmd, ...args] = argv;
  const proc = spawn(cmd!, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
  o.spawned?.(proc);
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`snap mount said nothing in 30 s; stderr: ${err}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ctrl-C unmounts')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`snap mount exited with ${code}: ${err}`));
    });
  });
  return { proc, exited, stderr: () => err };
}
