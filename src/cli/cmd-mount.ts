// `snap mount MOUNTPOINT`: every snapshot as a read-only folder (mount/snapfs.ts), served over
// FUSE by this process until Ctrl-C, SIGTERM or an unmount (docs/mount.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { displayPath, fsEncode } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { workerUrl } from '../core/worker-url.js';
import { type MountOptions, mountFuse, mountTypeAt, unmountStale } from '../mount/fuse.js';
import { SnapFs } from '../mount/snapfs.js';
import { RepoLease } from '../ui/lease.js';
import { type Ctx, repoOpener, withRepo } from './context.js';

interface MountFlags {
  allowOther?: boolean;
}

/** How long the repository stays open after the last read (reopening costs an index open). */
const IDLE_MS = 5000;

export function registerMount(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('mount')
    .description('show every snapshot as a read-only folder at MOUNTPOINT, by date, host and tag, until Ctrl-C (Linux, FUSE: as root, or as a user with fusermount3; docs/mount.md)')
    .argument('<mountpoint>', 'an empty folder')
    .option('--allow-other', 'let other users see the mount (each file keeps the owner and mode it had, and the kernel checks them)')
    .action(async (mountpoint: string, o: MountFlags, cmd: Command) => run((ctx) => mount(ctx, mountpoint, o), cmd));
}

async function mount(ctx: Ctx, mountpoint: string, o: MountFlags): Promise<void> {
  if (process.platform !== 'linux') throw new SnapError('SNAP_USAGE', 'snap mount works on Linux only; `snap ui` browses snapshots everywhere');
  const target = fsEncode(mountpoint);
  if (target.toString() !== mountpoint) throw new SnapError('SNAP_USAGE', `snap mount needs a mount point whose name is UTF-8 (not ${displayPath(mountpoint)})`);
  // As root snap mounts with mount(8) itself; as a user through fusermount3 (setuid root).
  let fusermount: MountOptions['fusermount'];
  if (ctx.host.uid !== 0) {
    const tool = findProgram(['fusermount3', 'fusermount']);
    if (tool === undefined) throw new SnapError('SNAP_PERMISSION', 'snap mount as a user needs fusermount3 (Debian and Ubuntu: apt install fuse3), or root; `snap ui` browses snapshots as any user without it');
    fusermount = { tool, node: process.execPath, guard: fileURLToPath(workerUrl('./fuse-guard.js', import.meta.url)) };
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(mountpoint);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOTCONN') throw new SnapError('SNAP_NOT_FOUND', `mount point ${displayPath(mountpoint)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (e as Error).message}`);
    st = await clearStaleMount(mountpoint, fusermount);
  }
  if (!st.isDirectory()) throw new SnapError('SNAP_USAGE', `mount point ${displayPath(mountpoint)} is not a folder`);
  if (fs.readdirSync(mountpoint).length > 0) throw new SnapError('SNAP_USAGE', `mount point ${displayPath(mountpoint)} is not empty`);
  // Fail now, not on the first read, if there is no repository or no password.
  await withRepo(ctx, async () => {}, 'none');
  const stop = new AbortController();
  const lease = new RepoLease(repoOpener(ctx), IDLE_MS, stop.signal);
  const log = (line: string): void => void process.stderr.write(`snap mount: ${line}\n`);
  const fsys = new SnapFs({ lease, uid: ctx.host.uid, gid: process.getgid?.() ?? 0, now: () => ctx.clock.now(), log });
  const session = await mountFuse(mountpoint, (req) => fsys.handle(req), {
    allowOther: o.allowOther === true,
    fsName: `snap:${displayPath(ctx.repoPath().path)}`,
    log,
    uid: ctx.host.uid,
    gid: process.getgid?.() ?? 0,
    fusermount,
  });
  if (ctx.json) ctx.out(JSON.stringify({ mountpoint, repository: ctx.repoPath().path }));
  else ctx.out(`snapshots of ${displayPath(ctx.repoPath().path)} are at ${displayPath(mountpoint)} (read-only); Ctrl-C unmounts`);
  await new Promise<void>((resolve) => {
    void session.done.then(resolve);
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await session.unmount();
  stop.abort();
  await lease.closeWhenIdle();
  if (!ctx.json) process.stderr.write('snap mount: unmounted\n');
}

/**
 * The mount point answers ENOTCONN: a FUSE mount whose program is gone. One that a snap mount left
 * (killed outright, so it could not unmount) is unmounted here, and said so; any other is left to
 * the user, with the command that unmounts it.
 */
async function clearStaleMount(mountpoint: string, fusermount: MountOptions['fusermount']): Promise<fs.Stats> {
  const abs = path.join(fs.realpathSync(path.dirname(path.resolve(mountpoint))), path.basename(path.resolve(mountpoint)));
  const shown = displayPath(mountpoint);
  const how = `${fusermount ? `${path.basename(fusermount.tool)} -u` : 'umount'} ${shown}`;
  let type: string | undefined;
  try {
    type = mountTypeAt(abs);
  } catch {
    type = undefined;
  }
  if (type !== 'fuse.snap') {
    throw new SnapError('SNAP_USAGE', `mount point ${shown} is a mount whose program is gone ("transport endpoint is not connected"${type ? `, ${type}` : ''}): unmount it first (${how})`);
  }
  try {
    await unmountStale(abs, fusermount);
  } catch (e) {
    throw new SnapError('SNAP_USAGE', `mount point ${shown} is still mounted by a snap mount that ended without unmounting (killed?), and unmounting it failed (${(e as Error).message}): ${how}`);
  }
  process.stderr.write(`snap mount: ${shown} was still mounted by a snap mount that ended without unmounting (killed?): unmounted it\n`);
  try {
    return fs.statSync(mountpoint);
  } catch (e) {
    throw new SnapError('SNAP_NOT_FOUND', `mount point ${shown}: ${(e as Error).message}`);
  }
}

/** The first of `names` found as an executable file on PATH. */
function findProgram(names: string[]): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => d !== '');
  for (const name of names) {
    for (const dir of dirs) {
      const p = path.join(dir, name);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}
