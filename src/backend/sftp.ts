// A Backend on an SFTP server, reached through the system `ssh` (see sftp-session.ts), for
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
// - A lost connection (ssh exits: the network, the server restarting) is retried on a new session,
//   with exponential backoff, for every call; each call is idempotent or made so (see putIfAbsent).
//   A host key or login problem is never retried.
// What SFTP cannot do: fsync a folder, so a server crash just after a put may lose the rename
// (the blob is then absent, never torn), as with restic's sftp backend.
import { SnapError } from '../core/errors.js';
import { randomHex } from '../core/ids.js';
import type { Backend, BlobInfo } from './backend.js';
import { TEMP_PREFIX } from './local.js';
import { formatSftpLocation, parseSftpLocation, type SftpLocation } from './sftp-location.js';
import { FX, FXF, SftpProtocolError, isDir, isRegular, type Attrs, type NameEntry } from './sftp-protocol.js';
import { SftpSession, SftpStatusError } from './sftp-session.js';
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
  /** New sessions to try after a lost connection before giving up (default 6). */
  retries?: number;
  /** The wait before the first retry, doubled for each further one up to 8 s (default 500 ms). */
  retryDelayMs?: number;
  /** Read or write requests in flight per call (default 16). */
  pipeline?: number;
}

/**
 * Options snap adds to the user's ssh: fail instead of accepting an unknown host key (and name the
 * key: `-v` makes ssh print "Server host key: ..."), notice a dead connection within a minute,
 * and forward nothing to the backup server (as OpenSSH's own sftp client does).
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
];

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
const MAX_RETRY_DELAY_MS = 8000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function isStatus(e: unknown, ...codes: number[]): e is SftpStatusError {
  return e instanceof SftpStatusError && (codes.length === 0 || codes.includes(e.status));
}

/** The ssh command line for a location: the user's prefix, snap's options, then where to connect. */
export function sshArgv(l: SftpLocation, sshCommand: string[] = ['ssh']): string[] {
  const argv = [...sshCommand, ...SSH_OPTIONS];
  if (l.port !== undefined) argv.push('-p', String(l.port));
  if (l.user !== undefined) argv.push('-l', l.user);
  argv.push('-s', '--', l.host, 'sftp');
  return argv;
}

export class SftpBackend implements Backend {
  readonly location: string;
  private readonly where: SftpLocation;
  private current: SftpSession | undefined;
  private connecting: Promise<SftpSession> | undefined;
  private closed = false;

  constructor(
    location: string | SftpLocation,
    private readonly o: SftpOptions = {},
  ) {
    this.where = typeof location === 'string' ? parseSftpLocation(location) : location;
    this.location = formatSftpLocation(this.where);
  }

  /** The command a session runs. */
  get argv(): string[] {
    return this.o.sftpCommand ?? sshArgv(this.where, this.o.sshCommand);
  }

  private remote(name: string): string {
    if (name === '') return this.where.path;
    if (name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '' || p === '.')) {
      throw new SnapError('SNAP_INTERNAL', `invalid blob name ${JSON.stringify(name)}`);
    }
    return this.where.path === '.' ? name : `${this.where.path}/${name}`;
  }

  // ---- sessions and retries ----

  private async session(): Promise<SftpSession> {
    if (this.current?.alive) return this.current;
    this.current = undefined;
    this.connecting ??= SftpSession.start(this.argv, this.location).then(
      (s) => {
        this.connecting = undefined;
        if (this.closed) {
          void s.end();
          throw new SnapError('SNAP_INTERNAL', `${this.location} was closed while connecting`);
        }
        this.current = s;
        return s;
      },
      (e: unknown) => {
        this.connecting = undefined;
        throw e;
      },
    );
    return this.connecting;
  }

  /**
   * Run `fn` on a session; when the connection is lost (before or during it), wait, start a new
   * session and run it again, up to `retries` times. `attempt` tells `fn` it may be a repeat.
   */
  private async run<T>(doing: string, fn: (s: SftpSession, attempt: number) => Promise<T>): Promise<T> {
    const retries = this.o.retries ?? 6;
    const base = this.o.retryDelayMs ?? 500;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new SnapError('SNAP_INTERNAL', `${doing}: the backend is closed`);
      try {
        return await fn(await this.session(), attempt);
      } catch (e) {
        if (!(e instanceof SshConnectionLost) || this.closed) throw this.error(e, doing);
        if (attempt >= retries) {
          throw new SnapError('SNAP_CONNECTION', `${doing}: ${e.message}; gave up after ${attempt + 1} attempts`, { cause: e });
        }
        const wait = Math.min(MAX_RETRY_DELAY_MS, base * 2 ** attempt);
        await sleep(wait / 2 + (Math.random() * wait) / 2);
      }
    }
  }

  private error(e: unknown, doing: string, missing: 'SNAP_NOT_FOUND' | 'SNAP_MISSING_OBJECT' = 'SNAP_NOT_FOUND'): SnapError {
    if (e instanceof SnapError) return e;
    if (e instanceof SftpStatusError) {
      const said = e.message ? ` (the server said: ${e.message})` : '';
      switch (e.status) {
        case FX.NO_SUCH_FILE:
          return new SnapError(missing, `${doing}: no such file or directory`, { cause: e });
        case FX.PERMISSION_DENIED:
          return new SnapError('SNAP_PERMISSION', `${doing}: permission denied`, { cause: e });
        case FX.OP_UNSUPPORTED:
          return new SnapError('SNAP_IO', `${doing}: the server does not support this operation${said}`, { cause: e });
        default:
          // SFTP v3 has no "disk full" or "quota" status: OpenSSH reports those as a plain failure.
          return new SnapError('SNAP_IO', `${doing}: ${e.message || 'failure'} (SFTP status ${e.status})`, { cause: e });
      }
    }
    if (e instanceof SftpProtocolError) return new SnapError('SNAP_CONNECTION', `${doing}: SFTP protocol error: ${e.message}`, { cause: e });
    return new SnapError('SNAP_IO', `${doing}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  // ---- writing ----

  private async mkdirs(s: SftpSession, dir: string): Promise<void> {
    try {
      await s.mkdir(dir, { permissions: DIR_MODE });
      return;
    } catch (e) {
      if (!isStatus(e)) throw e;
      if (isStatus(e, FX.NO_SUCH_FILE)) {
        const parent = dir.slice(0, dir.lastIndexOf('/'));
        if (parent === '' || parent === dir || !dir.includes('/')) throw e;
        await this.mkdirs(s, parent);
        await this.mkdirs(s, dir);
        return;
      }
      // OpenSSH answers "failure" when it exists (EEXIST); a concurrent writer may have made it
      const st = await s.stat(dir).catch(() => undefined);
      if (!st || !isDir(st)) throw e;
    }
  }

  /** A new temporary name beside `dest`. */
  private tempFor(dest: string): string {
    const slash = dest.lastIndexOf('/');
    return `${slash < 0 ? '.' : dest.slice(0, slash)}/${TEMP_PREFIX}${randomHex(8)}`;
  }

  /** Write `data` to the new file `tmp` (created exclusively, with its folders if need be), durably. */
  private async writeTemp(s: SftpSession, tmp: string, data: Uint8Array): Promise<void> {
    const dir = tmp.slice(0, tmp.lastIndexOf('/'));
    const flags = FXF.WRITE | FXF.CREAT | FXF.EXCL;
    let h: Buffer;
    try {
      h = await s.open(tmp, flags, { permissions: FILE_MODE });
    } catch (e) {
      if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
      await this.mkdirs(s, dir);
      h = await s.open(tmp, flags, { permissions: FILE_MODE });
    }
    try {
      await this.writeAll(s, h, data);
      if (s.has('fsync@openssh.com')) await s.fsync(h);
      await s.close(h);
    } catch (e) {
      if (!(e instanceof SshConnectionLost)) {
        await s.close(h).catch(() => {});
        await s.remove(tmp).catch(() => {});
      }
      throw e;
    }
  }

  /** WRITE requests of the server's maximum size, up to `pipeline` in flight. */
  private writeAll(s: SftpSession, h: Buffer, data: Uint8Array): Promise<void> {
    const size = s.limits.maxWrite;
    const window = this.o.pipeline ?? 16;
    let next = 0;
    let active = 0;
    let failed = false;
    return new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        while (!failed && active < window && next < data.length) {
          const off = next;
          const len = Math.min(size, data.length - off);
          next += len;
          active++;
          s.write(h, off, data.subarray(off, off + len)).then(
            () => {
              active--;
              if (next >= data.length && active === 0) resolve();
              else pump();
            },
            (e: unknown) => {
              if (!failed) reject(e);
              failed = true;
            },
          );
        }
      };
      if (data.length === 0) resolve();
      else pump();
    });
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    const dest = this.remote(name);
    let tmp: string | undefined;
    await this.run(`writing ${name} in ${this.location}`, async (s) => {
      if (tmp) await s.remove(tmp).catch(() => {}); // left by an attempt the connection cut short
      const t = this.tempFor(dest);
      tmp = t;
      await this.writeTemp(s, t, data);
      try {
        if (s.has('posix-rename@openssh.com')) {
          await s.posixRename(t, dest);
        } else {
          // The protocol's RENAME never replaces: remove first. Not atomic: between the two
          // requests the name is absent (never torn).
          await s.remove(dest).catch((e: unknown) => {
            if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
          });
          await s.rename(t, dest);
        }
        tmp = undefined;
      } catch (e) {
        if (!(e instanceof SshConnectionLost)) await s.remove(t).catch(() => {});
        throw e;
      }
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
    return this.run(`writing ${name} in ${this.location}`, async (s, attempt) => {
      if (tmp) await s.remove(tmp).catch(() => {});
      tmp = undefined;
      if (await this.statOrUndefined(s, dest)) return attempt > 0 && (await this.sameContent(s, dest, data));
      tmp = this.tempFor(dest);
      await this.writeTemp(s, tmp, data);
      const linked = await this.linkNoReplace(s, tmp, dest);
      tmp = undefined;
      if (!linked && attempt > 0) return this.sameContent(s, dest, data);
      return linked;
    });
  }

  /** true if `tmp` now also has the name `dest` (tmp is gone), false if `dest` existed. */
  private async linkNoReplace(s: SftpSession, tmp: string, dest: string): Promise<boolean> {
    const drop = (): Promise<void> => s.remove(tmp).catch(() => {});
    if (s.has('hardlink@openssh.com')) {
      try {
        await s.hardlink(tmp, dest);
        await drop();
        return true;
      } catch (e) {
        if (!isStatus(e)) throw e;
        if (await this.statOrUndefined(s, dest)) {
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
      if (await this.statOrUndefined(s, dest)) return false;
      throw e;
    }
  }

  private async sameContent(s: SftpSession, path: string, data: Uint8Array): Promise<boolean> {
    const have = await this.readWhole(s, path);
    return Buffer.compare(have, data) === 0;
  }

  // ---- reading ----

  private async statOrUndefined(s: SftpSession, path: string): Promise<Attrs | undefined> {
    try {
      return await s.stat(path);
    } catch (e) {
      if (isStatus(e, FX.NO_SUCH_FILE)) return undefined;
      throw e;
    }
  }

  /**
   * Read `[pos, pos + length)` of an open file into `into`, with up to `pipeline` READ requests in
   * flight; a short reply is followed by a request for the rest. Returns how many bytes there
   * were (fewer when the file ends first).
   */
  private readRange(s: SftpSession, h: Buffer, into: Buffer, pos: number, length: number): Promise<number> {
    const size = s.limits.maxRead;
    const window = this.o.pipeline ?? 16;
    const rest: Array<[number, number]> = []; // pieces still to ask for, after short replies
    let next = 0;
    let active = 0;
    let end = length; // lowered when the file ends earlier
    let failed = false;
    return new Promise<number>((resolve, reject) => {
      const ask = (off: number, len: number): void => {
        active++;
        s.read(h, pos + off, len, into, off).then(
          (n) => {
            active--;
            if (n === 0) end = Math.min(end, off);
            else if (n < len) rest.push([off + n, len - n]);
            pump();
          },
          (e: unknown) => {
            if (!failed) reject(e);
            failed = true;
          },
        );
      };
      const pump = (): void => {
        while (!failed && active < window) {
          const piece = rest.pop();
          if (piece) {
            if (piece[0] < end) ask(piece[0], Math.min(piece[1], end - piece[0]));
            continue;
          }
          if (next >= end) break;
          const len = Math.min(size, end - next);
          ask(next, len);
          next += len;
        }
        if (!failed && active === 0 && rest.length === 0 && next >= end) resolve(end);
      };
      if (length === 0) resolve(0);
      else pump();
    });
  }

  /** A whole file: open and stat together (one round trip), then pipelined reads. */
  private async readWhole(s: SftpSession, path: string, scratch?: Buffer): Promise<Buffer> {
    const [opened, stat] = await Promise.allSettled([s.open(path, FXF.READ), s.stat(path)]);
    if (opened.status === 'rejected') throw opened.reason;
    const h = opened.value;
    try {
      if (stat.status === 'rejected') throw stat.reason;
      const size = stat.value.size;
      if (size === undefined) return await this.readToEnd(s, h);
      const buf = scratch && size <= scratch.length ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
      const got = await this.readRange(s, h, buf, 0, size);
      return buf.subarray(0, got);
    } finally {
      s.close(h).catch(() => {}); // not waited for: the reply changes nothing
    }
  }

  /** For a server that does not report sizes: read until it says end of file. */
  private async readToEnd(s: SftpSession, h: Buffer): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let pos = 0; ; ) {
      const piece = Buffer.allocUnsafe(s.limits.maxRead);
      const n = await s.read(h, pos, piece.length, piece, 0);
      if (n === 0) return Buffer.concat(parts);
      parts.push(piece.subarray(0, n));
      pos += n;
    }
  }

  async get(name: string): Promise<Buffer> {
    const path = this.remote(name);
    return this.run(`reading ${name} in ${this.location}`, (s) => this.readWhole(s, path)).catch((e: unknown) => {
      throw this.missing(e, name);
    });
  }

  async getInto(name: string, scratch: Buffer): Promise<Buffer> {
    const path = this.remote(name);
    return this.run(`reading ${name} in ${this.location}`, (s) => this.readWhole(s, path, scratch)).catch((e: unknown) => {
      throw this.missing(e, name);
    });
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    const path = this.remote(name);
    const buf = await this.run(`reading ${name} in ${this.location}`, async (s) => {
      const h = await s.open(path, FXF.READ);
      try {
        const b = Buffer.allocUnsafe(length);
        const got = await this.readRange(s, h, b, offset, length);
        return b.subarray(0, got);
      } finally {
        s.close(h).catch(() => {});
      }
    }).catch((e: unknown) => {
      throw this.missing(e, name);
    });
    if (buf.length < length) {
      throw new SnapError('SNAP_CORRUPT', `${name} is shorter than expected (wanted ${length} bytes at ${offset}, got ${buf.length})`);
    }
    return buf;
  }

  /** A blob that is not there is SNAP_MISSING_OBJECT, as with LocalBackend. */
  private missing(e: unknown, name: string): unknown {
    if (e instanceof SnapError && e.code === 'SNAP_NOT_FOUND' && isStatus(e.cause, FX.NO_SUCH_FILE)) {
      return new SnapError('SNAP_MISSING_OBJECT', `${name} is missing from the repository at ${this.location}`, { cause: e.cause });
    }
    return e;
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    const path = this.remote(name);
    const a = await this.run(`reading ${name} in ${this.location}`, (s) => this.statOrUndefined(s, path));
    return a ? { name, size: a.size ?? 0 } : undefined;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.stat(name)) !== undefined;
  }

  // ---- listing and deleting ----

  /** One folder's entries (without . and ..), or undefined if it does not exist. */
  private async readFolder(rel: string): Promise<NameEntry[] | undefined> {
    const path = this.remote(rel);
    return this.run(`listing ${rel || '/'} in ${this.location}`, async (s) => {
      let h: Buffer;
      try {
        h = await s.opendir(path);
      } catch (e) {
        if (isStatus(e, FX.NO_SUCH_FILE)) return undefined;
        throw e;
      }
      try {
        const out: NameEntry[] = [];
        for (let batch = await s.readdir(h); batch; batch = await s.readdir(h)) {
          for (const ent of batch) {
            const n = ent.filename.toString('utf8');
            if (n !== '.' && n !== '..') out.push(ent);
          }
        }
        return out;
      } finally {
        s.close(h).catch(() => {});
      }
    });
  }

  /**
   * Regular files and folders under `rel`, depth first; each folder is read whole (and read again
   * on a new session if the connection is lost), so nothing is listed twice.
   */
  private async *walk(rel: string): AsyncGenerator<{ name: string; attrs: Attrs }> {
    const entries = await this.readFolder(rel);
    for (const ent of entries ?? []) {
      const name = rel === '' ? ent.filename.toString('utf8') : `${rel}/${ent.filename.toString('utf8')}`;
      let attrs = ent.attrs;
      if (attrs.permissions === undefined) {
        const p = this.remote(name);
        attrs = await this.run(`listing ${name} in ${this.location}`, (s) => s.lstat(p));
      }
      if (isDir(attrs)) yield* this.walk(name);
      else if (isRegular(attrs)) yield { name, attrs };
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    for await (const { name, attrs } of this.walk(prefix.replace(/\/$/, ''))) {
      if (name.slice(name.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX)) continue; // an interrupted write, not a blob
      yield { name, size: attrs.size ?? 0 };
    }
  }

  async delete(name: string): Promise<void> {
    const path = this.remote(name);
    await this.run(`deleting ${name} in ${this.location}`, async (s) => {
      try {
        await s.remove(path);
      } catch (e) {
        if (!isStatus(e, FX.NO_SUCH_FILE)) throw e;
      }
    });
  }

  /** Remove temporary files left by interrupted writes under a folder; returns how many (gc calls this). */
  async removeTempFiles(prefix: string, olderThanMs = 0): Promise<number> {
    let n = 0;
    const now = Date.now();
    for await (const { name, attrs } of this.walk(prefix.replace(/\/$/, ''))) {
      if (!name.slice(name.lastIndexOf('/') + 1).startsWith(TEMP_PREFIX)) continue;
      if (attrs.mtime !== undefined && now - attrs.mtime * 1000 < olderThanMs) continue;
      await this.delete(name);
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    const s = this.current ?? (await this.connecting?.catch(() => undefined));
    this.current = undefined;
    await s?.end();
  }
}
