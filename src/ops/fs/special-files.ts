// FIFOs and device nodes: Node has no mkfifo or mknod, so the coreutils programs create them under
// an ASCII temporary name in a directory this process holds open (`dirFd`), and rename (which takes
// raw bytes) moves them to their real name. The program gets the directory as its descriptor 3 and
// is given `/proc/self/fd/3/NAME`: resolved from the open directory itself, so nothing above it can
// be swapped (issue 20), and no process id is needed to name it.
import { spawnSync } from 'node:child_process';

function inDir(dirFd: number, asciiName: string): { path: string; stdio: ['ignore', 'ignore', 'ignore', number] } {
  return { path: `/proc/self/fd/3/${asciiName}`, stdio: ['ignore', 'ignore', 'ignore', dirFd] };
}

export function makeFifo(dirFd: number, asciiName: string): void {
  const at = inDir(dirFd, asciiName);
  const r = spawnSync('mkfifo', ['-m', '600', '--', at.path], { stdio: at.stdio });
  if (r.status !== 0) throw new Error(`mkfifo failed (${r.error?.message ?? `exit ${r.status}`})`);
}

/** Linux dev_t encoding (glibc's gnu_dev_major/minor). */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

export function makeDevice(dirFd: number, asciiName: string, type: 'chardev' | 'blockdev', rdev: number): void {
  const { major, minor } = splitDev(rdev);
  const at = inDir(dirFd, asciiName);
  const r = spawnSync('mknod', ['-m', '600', '--', at.path, type === 'chardev' ? 'c' : 'b', String(major), String(minor)], { stdio: at.stdio });
  if (r.status !== 0) throw new Error(`mknod failed (${r.error?.message ?? `exit ${r.status}`})`);
}
