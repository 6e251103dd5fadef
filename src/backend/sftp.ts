// A Backend on an SFTP server, reached through the system `ssh` (sftp-session.ts), for
// `sftp:[USER@]HOST[:PORT]/PATH` locations (sftp-location.ts).
//
// The same guarantees as LocalBackend, as far as SFTP allows:
// - put: the data goes to `.tmp-<random>` in the blob's folder (created exclusively), is fsynced
//   (fsync@openssh.com, when offered) and closed, then renamed over the name with
//   posix-rename@openssh.com (rename(2): atomic). A blob is complete under its name or absent.
// - putIfAbsent: the complete temporary file is hard-linked to the name with hardlink@openssh.com
//   (link(2) fails when the name exists, so an existing blob is never replaced), else renamed with
//   the protocol's RENAME, which the draft defines to fail when the target exists (OpenSSH's server
//   does it as link + unlink).
// - Folders are created on demand, owner-only (0700; files 0600).
// - A lost connection (ssh exits: the network, the server restarting) is retried on a new session
//   (sftp-connection.ts, with retry.ts's backoff) for every call but a putStream already under way; each call is
//   idempotent or made so (see putIfAbsent). A host key or login problem is never retried.
// What SFTP cannot do: fsync a folder, so a server crash just after a put may lose the rename
// (the blob is then absent, never torn), as with restic's sftp backend.
import { SnapError } from '../core/errors.js';
import { randomHex } from '../core/ids.js';
import type { Backend, BackendCapabilities, BlobInfo } from './backend.js';
import { TEMP_PREFIX } from './local.js';
import { FolderListingGuard, checkRange, shortBlobError, sizeMismatchError } from './checks.js';
import { checkBlobName, checkListPrefix, isBlobName } from './names.js';
import { type RetryPolicy, retryPolicy } from './retry.js';
import { SftpConnection, isStatus } from './sftp-connection.js';
import { formatSftpLocation, parseSftpLocation, type SftpLocation } from './sftp-location.js';
import { FX, FXF, isDir, isRegular, type Attrs, type NameEntry } from './sftp-protocol.js';
import { type SftpSession, SftpStatusError } from './sftp-session.js';
import { PipelinedWriter, readRange, readToEnd } from './sftp-transfer.js';
import { SshConnectionLost } from './ssh-errors.js';

export interface SftpOptions {
  /**
   * The ssh program and options of the user's own to put before snap's (default `['ssh']`); snap
   * appends its options, `-p PORT`, `-l USER`, and `-s -- HOST sftp`.
   */
  sshCommand?: string[];
  /**
   * A complete command to run instead, as given (restic's `-o sftp.command=...`): it must speak
   * SFTP on its stdin and stdout, e.g. `['ssh', '-i', 'key', 'me@nas', '-s', 'sftp']`. The
   * location's user, host and port are then only used in messages.
   */
  sftpCommand?: string[];
  /**
   * Retries after a lost connection, each on a new session (retry.ts; the defaults, as for S3,
   * ride out about a minute of a server restarting).
   */
  retry?: Partial<RetryPolicy>;
  /** Read or write requests in flight per call (default 16). */
  pipeline?: number;
  /**
   * Use OpenSSH's extensions when the server offers them (default true). false keeps to the
   * protocol's own requests (put then removes and renames, putIfAbsent renames), for a server
   * whose extensions misbehave; the tests use it to run those paths against OpenSSH.
   */
  openSshExtensions?: boolean;
}

/**
 * Options snap adds to the user's ssh: fail instead of accepting an unknown host key (and name the
 * key: `-v` makes ssh print "Server host key: ..."), notice a dead connection within a minute,
 * forward nothing to the backup server and run no command or terminal there (as OpenSSH's own
 * sftp client does). Options the user
 * puts in sshCommand come first and so win over these (ssh keeps the first value it is given).
 */
export const SSH_OPTIONS = [
  '-v',
  '-o', 'StrictHostKeyChecking=yes',
  '-o', 'ConnectTimeout=30',
  '-o', 'ServerAliveInterval=15',
  '-o', 'ServerAliveCountMax=4',
  '-o', 'ForwardAgent=no',
  '-o', 'ForwardX11=no',
  '-o', 'ClearAllForwardings=yes',
  '-o', 'PermitLocalCommand=no',
  '-o', 'RemoteCommand=none', // a RemoteCommand in the user's config would clash with the subsystem
  '-o', 'RequestTTY=no',
];

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** Pieces of getStream, read one ahead: 2 MiB keeps 8 requests of 255 KiB in flight. */
const STREAM_PIECE = 2 * 1024 * 1024;

/** The ssh command line for a location: the user's prefix, snap's options, then where to connect. */
export function sshArgv(l: SftpLocation, sshCommand: string[] = ['ssh']): string[] {
  const argv = [...sshCommand, ...SSH_OPTIONS];
  if (l.port !== undefined) argv.push('-p', String(l.port));
  if (l.user !== undefined) argv.push('-l', l.user);
  argv.push('-s', '--', l.host, 'sftp');
  return argv;
}

const ignore = (): void => {};

/** A write that failed with less than this free on the server's disk failed for want of space. */
const NEARLY_FULL = 1024 * 1024;

export class SftpBackend implements Backend {
  readonly location: string;
  /** The command each session runs. */
  readonly argv: string[];
  private readonly where: SftpLocation;
  private readonly conn: SftpConnection;
  private readonly window: number;
  private caps: Promise<BackendCapabilities> | undefined;

  constructor(
    location: string | SftpLocation,
    private readonly o: SftpOptions = {},
  ) {
    this.where = typeof location === 'string' ? parseSftpLocation(location) : location;
    this.location = formatSftpLocation(this.where);
    this.argv = o.sftpCommand ?? sshArgv(this.where, o.sshCommand);
    this.conn = new SftpConnection(this.argv, this.location, retryPolicy(o.retry));
    this.window = o.pipeline ?? 16;
  }

  /** The server path of a blob. */
  private remote(name: string): string {
    checkBlobName(name);
    return this.where.path === '.' ? name : `${this.where.path}/${name}`;
  }

  /** The server path of a folder of blobs: '' is the repository folder. */
  private folder(rel: string): string {
    return rel === '' ? this.where.path : this.remote(rel);
  }

  private has(s: SftpSession, ext: string): boolean {
    return this.o.openSshExtensions !== false && s.has(ext);
  }

  private doing(verb: string, name: string): string {
    return `${verb} ${name || '/'} in ${this.location}`;
  }

  /** SNAP_NOT_FOUND of a read is SNAP_MISSING_OBJECT naming the blob, as every backend reports it. */
  private missing(name: string): (e: unknown) => never {
    return (e) => {
      if (e instanceof SnapError && e.code === 'SNAP_NOT_FOUND' && isStatus(e.cause, FX.NO_SUCH_FILE)) {
        throw new SnapError('SNAP_MISSING_OBJECT', `${name} is missing from the repository at ${this.location}`, { cause: e.cause });
      }
      throw e;
    };
  }

  // ---- writing ----

  private async mkdirs(s: SftpSession, dir: string): Promise<void> {
    try {
      await s.mkdir(dir, { permissions: DIR_MODE });
    } catch (e) {
      if (!isStatus(e)) throw e;
      const slash = dir.lastIndexOf('/');
      if (isStatus(e, FX.NO_SUCH_FILE) && slash > 0) {
        await this.mkdirs(s, dir.slice(0, slash));
        await this.mkdirs(s, dir);
        return;
      }
      // OpenSSH answers a plain failure when it exists (EEXIST); a concurrent writer may have made it
      const st = await s.stat(dir).catch(() => undefined);
      if (st && !isDir(st)) throw new SftpStatusError(e.status, `${dir} on the server is not a folder`);
      if (!st) throw e;
    }
  }

  /** A new temporary name beside `dest`. */
  private tempFor(dest: string): string {
    const slash = dest.lastIndexOf('/');
    return `${slash < 0 ? '.' : dest.slice(0, slash)}/${TEMP_PREFIX}${randomHex(8)}`;
  }

  /**
   * Write the new file `tmp` (created exclusively, with its folders if need be) from `fill`,
   * fsync and close it. On a failure other than a lost connection it is removed.
   */
  private async writeTemp(s: SftpSession, tmp: string, fill: (w: PipelinedWriter) => Promise<void>): Promise<void> {
    const flags = FXF.WRITE | FXF.CREAT | FXF.EXCL;
    let h: Buffer;
    try {
      h = await s.open(tmp, flags, { permissions: FILE_MODE });
    } catch (e) {
      if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
      await this.mkdirs(s, tmp.slice(0, tmp.lastIndexOf('/')));
      h = await s.open(tmp, flags, { permissions: FILE_MODE });
    }
    try {
      const w = new PipelinedWriter(s, h, this.window);
      await fill(w);
      await w.flush();
      if (this.has(s, 'fsync@openssh.com')) await s.fsync(h);
      await s.close(h);
    } catch (e) {
      if (!(e instanceof SshConnectionLost)) {
        // Asked before the partial file is removed, which frees what it took.
        const full = isStatus(e, FX.FAILURE) ? await this.noSpace(s, tmp, e) : undefined;
        await s.close(h).catch(ignore);
        await s.remove(tmp).catch(ignore);
        if (full) throw full;
      }
      throw e;
    }
  }

  /**
   * SFTP v3 has no "disk full" status: OpenSSH answers a write to a full disk with a plain failure.
   * Where the server answers statvfs@openssh.com, a failed write with (nearly) nothing free is
   * SNAP_NO_SPACE, as on a local disk, so that the commands that free space know to use the reserve
   * and a watch frees space (repo/reserve.ts).
   */
  private async noSpace(s: SftpSession, path: string, cause: unknown): Promise<SnapError | undefined> {
    if (!this.has(s, 'statvfs@openssh.com')) return undefined;
    const free = await s.statvfsAvailable(this.folder('')).catch(() => undefined);
    if (free === undefined || free >= NEARLY_FULL) return undefined;
    return new SnapError('SNAP_NO_SPACE', `writing ${path} in ${this.location}: no space left on the server's disk (${free} bytes free)`, { cause });
  }

  /** Put the complete file `tmp` in place of `dest`, replacing it. */
  private async replace(s: SftpSession, tmp: string, dest: string): Promise<void> {
    try {
      if (this.has(s, 'posix-rename@openssh.com')) {
        await s.posixRename(tmp, dest);
      } else {
        // The protocol's RENAME never replaces: remove first. Not atomic: between the two
        // requests the name is absent (never torn).
        await s.remove(dest).catch((e: unknown) => {
          if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
        });
        await s.rename(tmp, dest);
      }
    } catch (e) {
      if (!(e instanceof SshConnectionLost)) await s.remove(tmp).catch(ignore);
      throw e;
    }
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    const dest = this.remote(name);
    let tmp: string | undefined;
    await this.conn.run(this.doing('writing', name), async (s) => {
      if (tmp) await s.remove(tmp).catch(ignore); // left by an attempt the connection cut short
      const t = (tmp = this.tempFor(dest));
      await this.writeTemp(s, t, (w) => w.write(data, false));
      await this.replace(s, t, dest);
      tmp = undefined;
    });
  }

  /**
   * Like put, from pieces. A lost connection is retried only until the first piece was taken
   * from `source` (it cannot be read twice); after that it is SNAP_REMOTE, the blob absent
   * or unchanged, and a temporary file left for gc.
   */
  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    const dest = this.remote(name);
    let started = false;
    await this.conn.run(this.doing('writing', name), async (s) => {
      if (started) throw new SnapError('SNAP_REMOTE', `${this.doing('writing', name)}: the connection was lost while the data was being sent, and streamed data cannot be sent again`);
      const tmp = this.tempFor(dest);
      await this.writeTemp(s, tmp, async (w) => {
        started = true;
        for await (const piece of source) {
          await w.write(piece, true); // copied: the source may reuse its buffer for the next piece
          if (size !== undefined && w.written > size) break;
        }
        if (size !== undefined && w.written !== size) throw sizeMismatchError(name, w.written, size);
      });
      await this.replace(s, tmp, dest);
    });
  }

  /**
   * Link the complete temporary file to `dest` unless `dest` exists. A retry after a lost
   * connection cannot tell whether its own earlier link landed: it then compares the blob with
   * `data` and reports it written if the bytes are the same (for a content-named blob that is
   * the truth either way; for others, such as `config`, it is ours unless another writer wrote the
   * very same bytes).
   */
  async putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    const dest = this.remote(name);
    let tmp: string | undefined;
    return this.conn.run(this.doing('writing', name), async (s, attempt) => {
      if (tmp) await s.remove(tmp).catch(ignore);
      tmp = undefined;
      if (await statOrUndefined(s, dest)) return attempt > 0 && (await this.sameContent(s, dest, data));
      const t = (tmp = this.tempFor(dest));
      await this.writeTemp(s, t, (w) => w.write(data, false));
      const linked = await this.linkNoReplace(s, t, dest);
      tmp = undefined;
      if (!linked && attempt > 0) return this.sameContent(s, dest, data);
      return linked;
    });
  }

  /** true if `tmp` now has the name `dest`, false if `dest` existed; `tmp` is gone either way. */
  private async linkNoReplace(s: SftpSession, tmp: string, dest: string): Promise<boolean> {
    const drop = (): Promise<void> => s.remove(tmp).catch(ignore);
    if (this.has(s, 'hardlink@openssh.com')) {
      try {
        await s.hardlink(tmp, dest);
        await drop();
        return true;
      } catch (e) {
        if (!isStatus(e)) throw e;
        if (await statOrUndefined(s, dest)) {
          await drop();
          return false;
        }
        // no hard links on that file system: the protocol's RENAME below
      }
    }
    try {
      await s.rename(tmp, dest);
      return true;
    } catch (e) {
      if (!isStatus(e)) throw e;
      await drop();
      if (await statOrUndefined(s, dest)) return false;
      throw e;
    }
  }

  private async sameContent(s: SftpSession, path: string, data: Uint8Array): Promise<boolean> {
    return Buffer.compare(await this.readWhole(s, path), data) === 0;
  }

  /**
   * putIfAbsent is atomic when the server offers hardlink@openssh.com and the repository's file
   * system has hard links: asked once by linking a probe file (OpenSSH's RENAME falls back to a
   * check and rename(2) where there are none, which two writers can race).
   */
  capabilities(): Promise<BackendCapabilities> {
    this.caps ??= this.conn.run(this.doing('probing', ''), async (s) => {
      if (!this.has(s, 'hardlink@openssh.com')) return { atomicPutIfAbsent: false };
      const probe = `${this.where.path}/${TEMP_PREFIX}probe-${randomHex(8)}`;
      await this.writeTemp(s, probe, async () => {});
      try {
        await s.hardlink(probe, `${probe}-link`);
        await s.remove(`${probe}-link`).catch(ignore);
        return { atomicPutIfAbsent: true };
      } catch (e) {
        if (!isStatus(e)) throw e;
        return { atomicPutIfAbsent: false };
      } finally {
        await s.remove(probe).catch(ignore);
      }
    });
    return this.caps;
  }

  // ---- reading ----

  /** A whole file: open, fstat (of that very file, which a put may replace meanwhile), pipelined reads. */
  private async readWhole(s: SftpSession, path: string, scratch?: Buffer): Promise<Buffer> {
    const h = await s.open(path, FXF.READ);
    try {
      const size = (await s.fstat(h)).size;
      if (size === undefined) return await readToEnd(s, h);
      const buf = scratch && size <= scratch.length ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
      const got = await readRange(s, h, buf, 0, size, this.window);
      return buf.subarray(0, got);
    } finally {
      s.close(h).catch(ignore); // not waited for: the reply changes nothing
    }
  }

  async get(name: string): Promise<Buffer> {
    const path = this.remote(name);
    return this.conn.run(this.doing('reading', name), (s) => this.readWhole(s, path)).catch(this.missing(name));
  }

  async getInto(name: string, scratch: Buffer): Promise<Buffer> {
    const path = this.remote(name);
    return this.conn.run(this.doing('reading', name), (s) => this.readWhole(s, path, scratch)).catch(this.missing(name));
  }

  /** `length` bytes at `offset` of an open file; SNAP_CORRUPT if the file ends before. */
  private async readExactly(s: SftpSession, h: Buffer, name: string, offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const got = await readRange(s, h, buf, offset, length, this.window);
    if (got < length || (length === 0 && offset > 0)) {
      const size = (await s.fstat(h)).size;
      if (got < length || size === undefined || offset > size) throw shortBlobError(name, this.location, offset, length, size);
    }
    return buf;
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    const path = this.remote(name);
    checkRange(name, offset, length);
    return this.conn
      .run(this.doing('reading', name), async (s) => {
        const h = await s.open(path, FXF.READ);
        try {
          return await this.readExactly(s, h, name, offset, length);
        } finally {
          s.close(h).catch(ignore);
        }
      })
      .catch(this.missing(name));
  }

  /**
   * Pieces of STREAM_PIECE bytes, the next one read while the caller handles the current one. A
   * lost connection is retried from the current position on a new session (blobs do not change).
   */
  async *getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    const path = this.remote(name);
    if (range) checkRange(name, range.offset, range.length);
    let open: { s: SftpSession; h: Buffer } | undefined;
    const handle = async (s: SftpSession): Promise<Buffer> => {
      if (open?.s !== s) open = { s, h: await s.open(path, FXF.READ) };
      return open.h;
    };
    const doing = this.doing('reading', name);
    try {
      const size = await this.conn.run(doing, async (s) => (await s.fstat(await handle(s))).size).catch(this.missing(name));
      const start = range?.offset ?? 0;
      const end = range ? start + range.length : size;
      if (size === undefined || end === undefined) throw new SnapError('SNAP_IO', `${doing}: the server does not report file sizes`);
      if (start > size || end > size) throw shortBlobError(name, this.location, start, end - start, size);
      const piece = (pos: number): Promise<Buffer> =>
        this.conn.run(doing, async (s) => this.readExactly(s, await handle(s), name, pos, Math.min(STREAM_PIECE, end - pos))).catch(this.missing(name));
      let pos = start;
      let next = pos < end ? piece(pos) : undefined;
      while (next) {
        const buf = await next;
        pos += buf.length;
        next = pos < end ? piece(pos) : undefined;
        next?.catch(ignore); // a read ahead that fails after the caller stopped is nobody's error
        yield buf;
      }
    } finally {
      if (open) open.s.close(open.h).catch(ignore);
    }
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    const path = this.remote(name);
    const a = await this.conn.run(this.doing('reading', name), (s) => statOrUndefined(s, path));
    return a ? { name, size: a.size ?? 0 } : undefined;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.stat(name)) !== undefined;
  }

  // ---- listing and deleting ----

  /** One folder's entries (without . and ..), or undefined if it does not exist or is a file (OpenSSH: no such file). */
  private readFolder(rel: string): Promise<NameEntry[] | undefined> {
    const path = this.folder(rel);
    return this.conn.run(this.doing('listing', rel), async (s) => {
      let h: Buffer;
      try {
        h = await s.opendir(path);
      } catch (e) {
        if (isStatus(e, FX.NO_SUCH_FILE)) return undefined;
        throw e;
      }
      try {
        const out: NameEntry[] = [];
        const guard = new FolderListingGuard(this.doing('listing', rel));
        for (let batch = await s.readdir(h); batch; batch = await s.readdir(h)) {
          guard.batch(batch.map((ent) => ent.filename));
          for (const ent of batch) {
            const n = ent.filename.toString('utf8');
            if (n !== '.' && n !== '..') out.push(ent);
          }
        }
        return out;
      } finally {
        s.close(h).catch(ignore);
      }
    });
  }

  /** The server's free space for this user where the repository is, when it answers statvfs@openssh.com. */
  async freeSpace(): Promise<number | undefined> {
    return this.conn.run(this.doing('asking the free space of', ''), (s) => (this.has(s, 'statvfs@openssh.com') ? s.statvfsAvailable(this.folder('')) : Promise.resolve(undefined)));
  }

  /**
   * Regular files under the folder `rel` ('' for the repository folder), depth first, with
   * `keep` deciding which names count; each folder is read whole (again on a new session if the
   * connection is lost), so nothing is listed twice. `shallow`: the folder's own files only.
   */
  private async *walk(rel: string, keep: (name: string) => boolean, shallow = false): AsyncGenerator<{ name: string; attrs: Attrs }> {
    const entries = await this.readFolder(rel);
    for (const ent of entries ?? []) {
      const base = ent.filename.toString('utf8');
      const name = rel === '' ? base : `${rel}/${base}`;
      let attrs = ent.attrs;
      if (attrs.permissions === undefined) {
        const p = `${this.folder(rel)}/${base}`;
        attrs = await this.conn.run(this.doing('listing', name), (s) => s.lstat(p));
      }
      if (isDir(attrs) && isBlobName(name)) {
        if (!shallow) yield* this.walk(name, keep);
      } else if (isRegular(attrs) && keep(name)) yield { name, attrs };
    }
  }

  /** Blobs only: temporary files and other names that are not blob names are left out. */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    checkListPrefix(prefix);
    for await (const { name, attrs } of this.walk(prefix.slice(0, -1), isBlobName)) yield { name, size: attrs.size ?? 0 };
  }

  async delete(name: string): Promise<void> {
    const path = this.remote(name);
    await this.conn.run(this.doing('deleting', name), async (s) => {
      try {
        await s.remove(path);
      } catch (e) {
        if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
      }
    });
  }

  /** Remove temporary files left by interrupted writes under a folder; returns how many (gc calls this). */
  async removeTempFiles(prefix: string, olderThanMs = 0, topOnly = false): Promise<number> {
    checkListPrefix(prefix);
    const isTemp = (name: string): boolean => name.slice(name.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX);
    let n = 0;
    const now = Date.now();
    for await (const { name, attrs } of this.walk(prefix.slice(0, -1), isTemp, topOnly)) {
      if (attrs.mtime !== undefined && now - attrs.mtime * 1000 < olderThanMs) continue;
      const slash = name.lastIndexOf('/');
      const p = `${this.folder(slash < 0 ? '' : name.slice(0, slash))}/${name.slice(slash + 1)}`;
      await this.conn.run(this.doing('deleting', name), (s) => s.remove(p).catch((e: unknown) => {
        if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
      }));
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

async function statOrUndefined(s: SftpSession, path: string): Promise<Attrs | undefined> {
  try {
    return await s.stat(path);
  } catch (e) {
    if (isStatus(e, FX.NO_SUCH_FILE)) return undefined;
    throw e;
  }
}
