// FIFOs and device nodes: Node has no mkfifo or mknod, so the coreutils programs create them at
// an ASCII temporary path, and rename (which takes raw bytes) moves them to their real name.
import { spawnSync } from 'node:child_process';

export function makeFifo(asciiPath: string): void {
  const r = spawnSync('mkfifo', ['-m', '600', '--', asciiPath], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`mkfifo failed (${r.error?.message ?? `exit ${r.status}`})`);
}

/** Linux dev_t encoding (glibc's gnu_dev_major/minor). */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

export function makeDevice(asciiPath: string, type: 'chardev' | 'blockdev', rdev: number): void {
  const { major, minor } = splitDev(rdev);
  const r = spawnSync('mknod', ['-m', '600', '--', asciiPath, type === 'chardev' ? 'c' : 'b', String(major), String(minor)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`mknod failed (${r.error?.message ?? `exit ${r.status}`})`);
}
