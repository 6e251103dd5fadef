// The Linux FUSE kernel protocol (linux/fuse.h, protocol 7.x), read-only subset, spoken over
// /dev/fuse by this process itself: no libfuse and no native module. As root the mount is made by
// util-linux's mount(8) with the open /dev/fuse descriptor passed as its fd 3; as a user by
// fusermount3 (setuid root), which hands the descriptor back over a unix socket (see
// fusermountDevice and cli/fuse-guard.ts). docs/mount.md.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { SnapError } from '../core/errors.js';

/** Opcodes (linux/fuse.h, enum fuse_opcode). */
export const OP = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  READLINK: 5,
  OPEN: 14,
  READ: 15,
  STATFS: 17,
  RELEASE: 18,
  GETXATTR: 22,
  LISTXATTR: 23,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  ACCESS: 34,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
} as const;

/** errno values replied (negated) to the kernel. */
export const E = { NOENT: 2, IO: 5, NOTDIR: 20, ISDIR: 21, INVAL: 22, ROFS: 30, RANGE: 34, NOSYS: 38, NODATA: 61 } as const;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

const IN_HEADER = 40;
const OUT_HEADER = 16;
const ATTR_BYTES = 88;
/** The largest read the kernel is allowed to ask for (max_pages * 4 KiB with FUSE_MAX_PAGES). */
export const MAX_READ = 128 * 1024;
/** The kernel needs a read buffer of at least max_write plus a page for headers. */
const REQUEST_BUFFER = MAX_READ + 64 * 1024;

const FUSE_ASYNC_READ = 1 << 0;
const FUSE_PARALLEL_DIROPS = 1 << 18;
const FUSE_MAX_PAGES = 1 << 22;
const FUSE_CACHE_SYMLINKS = 1 << 23;
/** open_out flag: the page cache of a file stays valid between opens (contents never change). */
export const FOPEN_KEEP_CACHE = 1 << 1;

export interface Request {
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** The bytes after the header. */
  body: Buffer;
}

export interface Attr {
  ino: number;
  size: number;
  blocks?: number;
  /** Seconds and nanoseconds (negative seconds: before 1970). */
  mtime: { sec: number; nsec: number };
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
}

export function decodeRequest(buf: Buffer): Request {
  if (buf.length < IN_HEADER) throw new Error(`a FUSE request of ${buf.length} bytes`);
  return {
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: Number(buf.readBigUInt64LE(16)),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    body: buf.subarray(IN_HEADER, buf.readUInt32LE(0)),
  };
}

/** A NUL-terminated name at the start of `b` (LOOKUP, GETXATTR after its fixed part). */
export function cString(b: Buffer): Buffer {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end);
}

function writeAttr(out: Buffer, at: number, a: Attr): void {
  const sec = BigInt(a.mtime.sec);
  out.writeBigUInt64LE(BigInt(a.ino), at);
  out.writeBigUInt64LE(BigInt(a.size), at + 8);
  out.writeBigUInt64LE(BigInt(a.blocks ?? Math.ceil(a.size / 512)), at + 16);
  for (const o of [24, 32, 40]) out.writeBigInt64LE(sec, at + o); // atime, mtime, ctime
  for (const o of [48, 52, 56]) out.writeUInt32LE(a.mtime.nsec, at + o);
  out.writeUInt32LE(a.mode >>> 0, at + 60);
  out.writeUInt32LE(a.nlink, at + 64);
  out.writeUInt32LE(a.uid >>> 0, at + 68);
  out.writeUInt32LE(a.gid >>> 0, at + 72);
  out.writeUInt32LE((a.rdev ?? 0) >>> 0, at + 76);
  out.writeUInt32LE(4096, at + 80); // blksize
  out.writeUInt32LE(0, at + 84); // flags
}

function validity(out: Buffer, at: number, seconds: number): void {
  out.writeBigUInt64LE(BigInt(Math.floor(seconds)), at);
}

/** fuse_entry_out: a looked-up name's node id and attributes; the name valid `entryTtl` seconds, the attributes `attrTtl`. */
export function entryOut(nodeid: number, a: Attr, entryTtl: number, attrTtl: number): Buffer {
  const out = Buffer.alloc(40 + ATTR_BYTES);
  out.writeBigUInt64LE(BigInt(nodeid), 0);
  out.writeBigUInt64LE(0n, 8); // generation: node ids are never reused while the mount lives
  validity(out, 16, entryTtl); // entry_valid
  validity(out, 24, attrTtl); // attr_valid
  writeAttr(out, 40, a);
  return out;
}

/** fuse_attr_out. */
export function attrOut(a: Attr, ttl: number): Buffer {
  const out = Buffer.alloc(16 + ATTR_BYTES);
  validity(out, 0, ttl);
  writeAttr(out, 16, a);
  return out;
}

/** fuse_open_out. */
export function openOut(fh: number, flags: number): Buffer {
  const out = Buffer.alloc(16);
  out.writeBigUInt64LE(BigInt(fh), 0);
  out.writeUInt32LE(flags, 8);
  return out;
}

/** fuse_read_in: the handle, offset and size of READ and READDIR. */
export function readIn(body: Buffer): { fh: number; offset: number; size: number } {
  return { fh: Number(body.readBigUInt64LE(0)), offset: Number(body.readBigUInt64LE(8)), size: body.readUInt32LE(16) };
}

/** fuse_getxattr_in: the size the caller can take (0: it asks for the size) and the name. */
export function getxattrIn(body: Buffer): { size: number; name: Buffer } {
  return { size: body.readUInt32LE(0), name: cString(body.subarray(8)) };
}

/** fuse_getxattr_out: the size of a value or name list, when asked with size 0. */
export function xattrSizeOut(n: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeUInt32LE(n, 0);
  return out;
}

/** fuse_kstatfs inside fuse_statfs_out: a read-only file system holding `blocks` 4 KiB blocks. */
export function statfsOut(blocks: number, files: number): Buffer {
  const out = Buffer.alloc(80);
  out.writeBigUInt64LE(BigInt(blocks), 0);
  out.writeBigUInt64LE(BigInt(files), 24);
  out.writeUInt32LE(4096, 40); // bsize
  out.writeUInt32LE(255, 44); // namelen
  out.writeUInt32LE(4096, 48); // frsize
  return out;
}

/** One fuse_dirent (readdir): the entry's inode number, the offset of the next entry, its type and name. */
export function dirent(ino: number, nextOffset: number, mode: number, name: Buffer): Buffer {
  const len = 24 + name.length;
  const out = Buffer.alloc((len + 7) & ~7);
  out.writeBigUInt64LE(BigInt(ino), 0);
  out.writeBigUInt64LE(BigInt(nextOffset), 8);
  out.writeUInt32LE(name.length, 16);
  out.writeUInt32LE((mode & S_IFMT) >>> 12, 20); // DT_* is the S_IF* type shifted down
  name.copy(out, 24);
  return out;
}

/** The reply to INIT: protocol 7.31 at most (the kernel takes the lower of the two minors). */
export function initOut(body: Buffer): Buffer {
  const major = body.readUInt32LE(0);
  const minor = body.readUInt32LE(4);
  if (major !== 7) throw new SnapError('SNAP_IO', `the kernel speaks FUSE protocol ${major}.${minor}; snap mount speaks 7.x`);
  const kernelFlags = body.readUInt32LE(12);
  const out = Buffer.alloc(64);
  out.writeUInt32LE(7, 0);
  out.writeUInt32LE(Math.min(minor, 31), 4);
  out.writeUInt32LE(body.readUInt32LE(8), 8); // max_readahead: as the kernel proposes
  out.writeUInt32LE(kernelFlags & (FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS), 12);
  out.writeUInt16LE(16, 16); // max_background
  out.writeUInt16LE(12, 18); // congestion_threshold
  out.writeUInt32LE(MAX_READ, 20); // max_write (nothing is written; also bounds the request buffer)
  out.writeUInt32LE(1, 24); // time_gran: nanoseconds
  out.writeUInt16LE(MAX_READ / 4096, 28); // max_pages
  return out;
}

export type Handler = (req: Request) => Promise<Buffer | Buffer[] | undefined>;

/** A reply with an error (`errno`, positive) or a body. */
export class FuseError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** Operations the kernel expects no reply to. */
const NO_REPLY = new Set<number>([OP.FORGET, OP.BATCH_FORGET, OP.INTERRUPT]);

export interface FuseSession {
  /** Settles when the kernel ends the session (the file system was unmounted). */
  done: Promise<void>;
  /** Unmounts (lazily: open files keep working until closed) and waits for the session's end. */
  unmount(): Promise<void>;
}

export interface MountOptions {
  allowOther: boolean;
  fsName: string;
  log: (line: string) => void;
  /** The user and group the mount belongs to (the kernel lets only them in without allow_other). */
  uid: number;
  gid: number;
  /**
   * Mount as a user through fusermount3 (or fusermount), with the helper program cli/fuse-guard.js
   * run by `node`. Without it the mount is made by mount(8), which needs root.
   */
  fusermount?: { tool: string; node: string; guard: string };
}

/** The open FUSE device of a mount, and how it is let go of. */
interface Device {
  fd: number;
  /** Set once the descriptor is no longer ours to use. */
  lost: () => boolean;
  release(): void;
}

/** Mount a read-only FUSE file system at `mountpoint` and serve `handle` until it is unmounted. */
export async function mountFuse(mountpoint: string, handle: Handler, o: MountOptions): Promise<FuseSession> {
  const dev = o.fusermount ? await fusermountDevice(mountpoint, o, o.fusermount) : await rootDevice(mountpoint, o);
  const fd = dev.fd;
  const reply = (unique: bigint, errno: number, body?: Buffer | Buffer[]): void => {
    if (dev.lost()) return;
    const parts = body === undefined ? [] : Array.isArray(body) ? body : [body];
    const len = OUT_HEADER + parts.reduce((n, p) => n + p.length, 0);
    const msg = Buffer.alloc(len);
    msg.writeUInt32LE(len, 0);
    msg.writeInt32LE(-errno, 4);
    msg.writeBigUInt64LE(unique, 8);
    let at = OUT_HEADER;
    for (const p of parts) at += p.copy(msg, at);
    try {
      fs.writeSync(fd, msg);
    } catch (e) {
      // ENOENT: the request was interrupted and is gone; anything else ends with the session.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') o.log(`reply failed: ${(e as Error).message}`);
    }
  };
  const done = new Promise<void>((resolve) => {
    const buf = Buffer.alloc(REQUEST_BUFFER);
    const end = (): void => {
      dev.release();
      resolve();
    };
    const next = (): void => {
      if (dev.lost()) return end();
      fs.read(fd, buf, 0, buf.length, null, (err, n) => {
        if (dev.lost()) return end();
        if (err) {
          const code = err.code;
          if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') return next();
          // ENODEV: unmounted. Anything else: the session cannot go on either.
          if (code !== 'ENODEV') o.log(`reading /dev/fuse: ${err.message}`);
          return end();
        }
        const req = decodeRequest(Buffer.from(buf.subarray(0, n)));
        next();
        if (req.opcode === OP.INIT) return reply(req.unique, 0, initOut(req.body));
        if (req.opcode === OP.DESTROY) return reply(req.unique, 0);
        handle(req).then(
          (body) => NO_REPLY.has(req.opcode) || reply(req.unique, 0, body),
          (e: unknown) => {
            if (NO_REPLY.has(req.opcode)) return;
            if (e instanceof FuseError) return reply(req.unique, e.errno);
            o.log(`${e instanceof Error ? e.message : String(e)}`);
            reply(req.unique, E.IO);
          },
        );
      });
    };
    next();
  });
  let ended = false;
  void done.then(() => (ended = true));
  let unmounting: Promise<void> | undefined;
  // As root: umount(8); as a user: fusermount3 -u (-z: lazily).
  const [umount, plain, lazy] = o.fusermount ? [o.fusermount.tool, ['-u', mountpoint], ['-u', '-z', mountpoint]] : ['umount', ['-i', mountpoint], ['-i', '-l', mountpoint]];
  return {
    done,
    unmount() {
      if (ended) return done;
      // A plain unmount first; while a program still has a file or folder of the mount open, the
      // mount point is detached instead (nothing new can enter it) and the session ends when the
      // last of them is closed. A second Ctrl-C ends snap at once (the kernel then fails their reads).
      unmounting ??= runTool(umount, plain).then(
        () => done,
        () =>
          runTool(umount, lazy).then(
            () => {
              if (!ended) o.log(`${mountpoint} is detached; snap ends when the programs still reading it close their files (Ctrl-C again: at once)`);
              return done;
            },
            (e: unknown) => {
              o.log(`${(e as Error).message}`);
              return done;
            },
          ),
      );
      return unmounting;
    },
  };
}

/**
 * The file system type of the mount at `mountpoint` (an absolute path, its folders resolved), from
 * /proc/self/mountinfo; undefined when nothing is mounted there.
 */
export function mountTypeAt(mountpoint: string, mountinfo = '/proc/self/mountinfo'): string | undefined {
  let found: string | undefined;
  // Fields: id parent major:minor root mountpoint options [optional...] - fstype source superoptions.
  // Spaces, tabs, newlines and backslashes in the mount point are written as \ooo octal escapes.
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (f.length < 7 || dash < 0) continue;
    if (unescape(f[4]!) === mountpoint) found = f[dash + 1]; // the last one mounted there is on top
  }
  return found;
}

/**
 * Detach a mount whose FUSE program is gone (its mount point answers ENOTCONN): as root with
 * umount(8), as a user with fusermount3; lazily, so programs still holding it open do not stop it.
 */
export function unmountStale(mountpoint: string, fusermount: MountOptions['fusermount']): Promise<void> {
  return fusermount ? runTool(fusermount.tool, ['-u', '-z', mountpoint]) : runTool('umount', ['-i', '-l', mountpoint]);
}

/** As root: open /dev/fuse and mount it with mount(8), passing the descriptor as its fd 3. */
async function rootDevice(mountpoint: string, o: MountOptions): Promise<Device> {
  let fd: number;
  try {
    fd = fs.openSync('/dev/fuse', 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SnapError(code === 'EACCES' || code === 'EPERM' ? 'SNAP_PERMISSION' : 'SNAP_IO', `cannot open /dev/fuse (${code}): snap mount needs the FUSE device; \`snap ui\` browses without it`);
  }
  const options = ['ro', 'nosuid', 'nodev', `fd=3`, 'rootmode=40000', `user_id=${o.uid}`, `group_id=${o.gid}`, 'default_permissions'];
  if (o.allowOther) options.push('allow_other');
  try {
    // -i: mount(2) itself, never a /sbin/mount.fuse helper (fuse3's would take the source name
    // for a program to run).
    await runTool('mount', ['-i', '-t', 'fuse.snap', '-o', options.join(','), o.fsName, mountpoint], fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let closed = false;
  return {
    fd,
    lost: () => closed,
    release() {
      if (closed) return;
      closed = true;
      fs.close(fd, () => {});
    },
  };
}

/** Descriptors of this process open on /dev/fuse. */
function fuseDescriptors(): Set<number> {
  const found = new Set<number>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse') found.add(Number(name));
    } catch {
      // closed since the listing
    }
  }
  return found;
}

/** How long fusermount3 may take to mount. */
const FUSERMOUNT_MS = 30_000;

/**
 * As a user: fusermount3 (setuid root) mounts and sends the /dev/fuse descriptor over a unix
 * socket. That socket is an IPC channel of this process, prepared by cli/fuse-guard.js so that the
 * descriptor arrives and stays open here, unclaimed by Node (see there); it is found in
 * /proc/self/fd. With auto_unmount fusermount3 stays, holding the other end, until this process
 * ends (it then unmounts if the mount is still there), so the channel and with it the descriptor
 * stay open as long as snap runs. The descriptor belongs to the channel (Node closes it with the
 * channel), so snap never closes it itself; it goes when snap exits.
 */
function fusermountDevice(mountpoint: string, o: MountOptions, f: NonNullable<MountOptions['fusermount']>): Promise<Device> {
  // fusermount3 sets fd, rootmode, user_id and group_id itself (and nosuid, nodev for a user).
  const fsName = o.fsName.replace(/[,\\]/g, '_');
  const options = ['ro', 'default_permissions', 'auto_unmount', `fsname=${fsName}`, 'subtype=snap'];
  if (o.allowOther) options.push('allow_other');
  const before = fuseDescriptors();
  const child = spawn('/bin/sh', ['-c', '"$0" "$1" || exit 1; export _FUSE_COMMFD=3; exec "$2" -o "$3" -- "$4"', f.node, f.guard, f.tool, options.join(','), mountpoint], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let lost = false;
  child.on('disconnect', () => (lost = true));
  return new Promise<Device>((resolve, reject) => {
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      child.stderr!.destroy();
      if (e) return reject(e);
    };
    const look = (): boolean => {
      const fd = [...fuseDescriptors()].find((d) => !before.has(d));
      if (fd === undefined) return false;
      finish();
      // Nothing of this child keeps snap running: the FUSE session does while it lasts.
      child.unref();
      child.channel?.unref();
      resolve({ fd, lost: () => lost, release() {} });
      return true;
    };
    const poll = setInterval(look, 10);
    const timer = setTimeout(() => finish(new SnapError('SNAP_IO', `${f.tool} did not mount ${mountpoint} within ${FUSERMOUNT_MS / 1000} s${err ? `: ${err.trim()}` : ''}`)), FUSERMOUNT_MS);
    child.on('error', (e) => finish(new SnapError('SNAP_IO', `cannot run /bin/sh: ${e.message}`)));
    child.on('exit', (code) =>
      // The descriptor may have arrived in the same turn as the exit: look once more first.
      setImmediate(() => {
        if (settled || look()) return;
        const why = err.trim().replace(/\s+/g, ' ') || `exit status ${code}`;
        finish(new SnapError(PERMISSION.test(why) ? 'SNAP_PERMISSION' : 'SNAP_IO', `${f.tool} ${mountpoint} failed: ${why}`));
      }),
    );
  });
}

/** What mount(8), umount(8) and fusermount3 say when the user may not do it. */
const PERMISSION = /permission|not permitted|only root|no write access|only allowed/i;

function runTool(cmd: string, args: string[], fd?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...(fd === undefined ? [] : [fd])] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new SnapError('SNAP_IO', `cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const why = err.trim().replace(/\s+/g, ' ') || `exit status ${code}`;
      reject(new SnapError(PERMISSION.test(why) ? 'SNAP_PERMISSION' : 'SNAP_IO', `${cmd} ${args.at(-1)} failed: ${why}`));
    });
  });
}
