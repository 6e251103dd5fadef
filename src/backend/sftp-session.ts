// One SFTP v3 session over the pipes of a child process: by default the system `ssh ... -s -- HOST
// sftp`, so the user's ~/.ssh/config, agent, keys and known_hosts apply exactly as for `sftp` and
// `rsync` (restic does the same). Requests are pipelined: each carries an id, any number can be in
// flight, and replies are matched by id. Nothing here retries: when the child ends, every request
// in flight fails with SshConnectionLost (or a SnapError when ssh said why, such as a host key),
// and SftpBackend decides whether to start a new session.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { SnapError, errnoCode } from '../core/errors.js';
import { Decoder, Encoder, FX, FXP, SftpProtocolError, type Attrs, type NameEntry } from './sftp-protocol.js';
import { SshConnectionLost, SshStderr, sshFailure } from './ssh-errors.js';

/** A request the server answered with a status other than OK. */
export class SftpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  onReply(type: number, d: Decoder): void;
  fail(e: Error): void;
}

// OpenSSH's sftp-server takes packets up to 256 KiB; a reply larger than this is not SFTP (or a
// login script printing text into the stream, whose first four characters read as a length).
const MAX_PACKET = 4 * 1024 * 1024;
// Servers that do not announce limits@openssh.com must accept 32 KiB reads and writes (the draft's minimum).
const DEFAULT_IO = 32 * 1024;
const EXIT_WAIT_MS = 5000;

export interface SessionLimits {
  maxRead: number;
  maxWrite: number;
}

export class SftpSession {
  readonly extensions = new Map<string, string>();
  limits: SessionLimits = { maxRead: DEFAULT_IO, maxWrite: DEFAULT_IO };

  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private ended: Error | undefined;
  private readonly stderr = new SshStderr();
  private onVersion: ((e?: Error) => void) | undefined;
  private established = false;
  private readonly closed: Promise<void>;
  // receive state: a packet's 4 length bytes may arrive split, its body in many chunks
  private readonly head = Buffer.alloc(4);
  private headHave = 0;
  private body: Buffer | undefined;
  private bodyHave = 0;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    /** Names the server in messages. */
    readonly peer: string,
  ) {
    child.stdout.on('data', (c: Buffer) => this.receive(c));
    child.stderr.on('data', (c: Buffer) => this.stderr.push(c));
    child.stdin.on('error', () => {}); // EPIPE when ssh has gone; its exit says why
    let spawnError: Error | undefined;
    child.on('error', (e) => {
      spawnError = e;
    });
    this.closed = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        const exit = signal ? `was ended by ${signal}` : `exited with status ${code}`;
        if (spawnError) this.finish(startFailure(spawnError, child.spawnfile, peer));
        // Once the session was up, the host key and the login were fine: whatever ended it, a new
        // session may succeed (and will report a host key or login problem if there is one now).
        else if (this.established) this.finish(new SshConnectionLost(`${peer}: the connection was lost (ssh ${exit}${this.stderrSays()})`));
        else this.finish(sshFailure(this.stderr, exit, peer));
        resolve();
      });
    });
  }

  /**
   * Start the command and exchange INIT/VERSION; learns the server's extensions and limits.
   * `spawned` gets the session as soon as ssh runs (so a caller can kill() one that hangs while it starts).
   */
  static async start(argv: string[], peer: string, spawned?: (s: SftpSession) => void): Promise<SftpSession> {
    const [cmd, ...args] = argv;
    if (!cmd) throw new SnapError('SNAP_USAGE', 'the sftp command is empty');
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const s = new SftpSession(child, peer);
    spawned?.(s);
    await new Promise<void>((resolve, reject) => {
      s.onVersion = (e) => (e ? reject(e) : resolve());
      s.send(new Encoder().u8(FXP.INIT).u32(3).finish());
    });
    if (s.extensions.has('limits@openssh.com')) s.limits = await s.readLimits();
    return s;
  }

  /** Whether the server announced an extension (posix-rename@openssh.com, hardlink@openssh.com, fsync@openssh.com, ...). */
  has(ext: string): boolean {
    return this.extensions.has(ext);
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  /** Whether requests are in flight (or the start is under way). */
  get busy(): boolean {
    return this.pending.size > 0 || this.onVersion !== undefined;
  }

  // ---- transport ----

  private send(packet: Buffer, trailing?: Uint8Array): void {
    if (this.ended) throw this.ended;
    const w = this.child.stdin;
    if (trailing) {
      w.cork(); // one writev for the header and the data, which is not copied
      w.write(packet);
      w.write(trailing);
      w.uncork();
    } else {
      w.write(packet);
    }
  }

  private receive(chunk: Buffer): void {
    let p = 0;
    while (p < chunk.length && !this.ended) {
      if (!this.body) {
        let len: number;
        if (this.headHave === 0 && chunk.length - p >= 4) {
          len = chunk.readUInt32BE(p);
          p += 4;
        } else {
          const n = Math.min(4 - this.headHave, chunk.length - p);
          chunk.copy(this.head, this.headHave, p, p + n);
          this.headHave += n;
          p += n;
          if (this.headHave < 4) return;
          this.headHave = 0;
          len = this.head.readUInt32BE(0);
        }
        if (len === 0 || len > MAX_PACKET) {
          const shown = JSON.stringify(chunk.subarray(Math.max(0, p - 4), p + 60).toString('latin1'));
          this.abort(
            new SnapError(
              'SNAP_REMOTE',
              `${this.peer}: the server's output is not SFTP (a login script on the server may print text; it began ${shown})`,
            ),
          );
          return;
        }
        if (chunk.length - p >= len) {
          this.dispatch(chunk.subarray(p, p + len)); // the whole packet is in this chunk: no copy
          p += len;
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyHave = 0;
      }
      const n = Math.min(this.body.length - this.bodyHave, chunk.length - p);
      chunk.copy(this.body, this.bodyHave, p, p + n);
      this.bodyHave += n;
      p += n;
      if (this.bodyHave === this.body.length) {
        const pkt = this.body;
        this.body = undefined;
        this.dispatch(pkt);
      }
    }
  }

  private dispatch(pkt: Buffer): void {
    try {
      const type = pkt[0]!;
      if (this.onVersion) {
        if (type !== FXP.VERSION) throw new SftpProtocolError(`expected the server's VERSION, got packet type ${type}`);
        const d = new Decoder(pkt, 1);
        const version = d.u32();
        if (version !== 3) throw new SftpProtocolError(`the server speaks SFTP version ${version}, not 3`);
        while (d.remaining > 0) this.extensions.set(d.string().toString('latin1'), d.string().toString('latin1'));
        const done = this.onVersion;
        this.onVersion = undefined;
        this.established = true;
        done();
        return;
      }
      const d = new Decoder(pkt, 1);
      const id = d.u32();
      const p = this.pending.get(id);
      if (!p) throw new SftpProtocolError(`a reply to request ${id}, which is not in flight`);
      this.pending.delete(id);
      p.onReply(type, d);
    } catch (e) {
      this.abort(
        e instanceof SnapError ? e : new SnapError('SNAP_REMOTE', `${this.peer}: SFTP protocol error: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
  }

  private stderrSays(): string {
    const t = this.stderr.text();
    return t ? `: ${t}` : '';
  }

  /** Give up on the session: fail everything in flight with `e` and stop ssh. */
  private abort(e: Error): void {
    this.finish(e);
    this.child.kill('SIGTERM');
  }

  private finish(e: Error): void {
    if (this.ended) return;
    this.ended = e;
    const v = this.onVersion;
    this.onVersion = undefined;
    v?.(e);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.fail(e);
  }

  /** Send a request; `parse` runs synchronously on its reply (a DATA view is valid only then). */
  private request<T>(build: (e: Encoder) => Encoder, parse: (type: number, d: Decoder) => T, trailing?: Uint8Array): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.ended) {
        reject(this.ended);
        return;
      }
      const id = this.nextId;
      this.nextId = (this.nextId + 1) >>> 0;
      const e = build(new Encoder());
      // the type byte comes first, then the id: build() has written the type
      const packet = e.finish(trailing?.length ?? 0);
      packet.writeUInt32BE(id, 5);
      this.pending.set(id, {
        onReply: (type, d) => {
          try {
            resolve(parse(type, d));
          } catch (err) {
            reject(err);
          }
        },
        fail: reject,
      });
      this.send(packet, trailing);
    });
  }

  /** Stop: end ssh's input, so it closes the session and exits; kill it if it takes too long. */
  async end(): Promise<void> {
    if (!this.ended) this.finish(new SshConnectionLost(`${this.peer}: the session was closed`));
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGTERM'), EXIT_WAIT_MS);
    t.unref();
    await this.closed;
    clearTimeout(t);
  }

  /** Kill ssh at once (tests, and a session that stopped answering). */
  destroy(): void {
    this.child.kill('SIGKILL');
  }

  /**
   * End the session now, not waiting for a server that may not answer (the command was stopped):
   * every request in flight, and a start still under way, fails with `e`; ssh is killed.
   */
  kill(e: Error): void {
    this.finish(e);
    this.child.kill('SIGKILL');
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  // ---- requests ----

  private req(type: number): (e: Encoder) => Encoder {
    return (e) => e.u8(type).u32(0);
  }

  open(path: string, pflags: number, attrs: Attrs = {}): Promise<Buffer> {
    return this.request((e) => this.req(FXP.OPEN)(e).string(path).u32(pflags).attrs(attrs), handleReply);
  }

  close(handle: Buffer): Promise<void> {
    return this.request((e) => this.req(FXP.CLOSE)(e).string(handle), statusReply);
  }

  /** Read up to `length` bytes at `offset` into `into` at `at`; returns the count, 0 at end of file. */
  read(handle: Buffer, offset: number, length: number, into: Buffer, at: number): Promise<number> {
    return this.request(
      (e) => this.req(FXP.READ)(e).string(handle).u64(offset).u32(length),
      (type, d) => {
        if (type === FXP.DATA) {
          const data = d.string();
          if (data.length > length) throw new SftpProtocolError('the server sent more data than was asked for');
          data.copy(into, at);
          return data.length;
        }
        if (isEof(type, d)) return 0;
        throw unexpected(type);
      },
    );
  }

  write(handle: Buffer, offset: number, data: Uint8Array): Promise<void> {
    return this.request((e) => this.req(FXP.WRITE)(e).string(handle).u64(offset).u32(data.length), statusReply, data);
  }

  stat(path: string): Promise<Attrs> {
    return this.request((e) => this.req(FXP.STAT)(e).string(path), attrsReply);
  }

  lstat(path: string): Promise<Attrs> {
    return this.request((e) => this.req(FXP.LSTAT)(e).string(path), attrsReply);
  }

  fstat(handle: Buffer): Promise<Attrs> {
    return this.request((e) => this.req(FXP.FSTAT)(e).string(handle), attrsReply);
  }

  opendir(path: string): Promise<Buffer> {
    return this.request((e) => this.req(FXP.OPENDIR)(e).string(path), handleReply);
  }

  /** The next batch of entries, or undefined at the end. */
  readdir(handle: Buffer): Promise<NameEntry[] | undefined> {
    return this.request(
      (e) => this.req(FXP.READDIR)(e).string(handle),
      (type, d) => {
        if (type === FXP.NAME) {
          const n = d.u32();
          const out: NameEntry[] = [];
          for (let i = 0; i < n; i++) {
            const filename = Buffer.from(d.string());
            d.string(); // longname, for humans
            out.push({ filename, attrs: d.attrs() });
          }
          return out;
        }
        if (isEof(type, d)) return undefined;
        throw unexpected(type);
      },
    );
  }

  remove(path: string): Promise<void> {
    return this.request((e) => this.req(FXP.REMOVE)(e).string(path), statusReply);
  }

  mkdir(path: string, attrs: Attrs = {}): Promise<void> {
    return this.request((e) => this.req(FXP.MKDIR)(e).string(path).attrs(attrs), statusReply);
  }

  /**
   * The protocol's RENAME: the draft makes it an error when `to` exists, and OpenSSH's server does
   * it as link(2) + unlink(2), so it never replaces a file (except on file systems without hard
   * links, where OpenSSH falls back to a check and rename(2)).
   */
  rename(from: string, to: string): Promise<void> {
    return this.request((e) => this.req(FXP.RENAME)(e).string(from).string(to), statusReply);
  }

  /** posix-rename@openssh.com: rename(2), which atomically replaces `to`. */
  posixRename(from: string, to: string): Promise<void> {
    return this.extended('posix-rename@openssh.com', (e) => e.string(from).string(to));
  }

  /** hardlink@openssh.com: link(2), which fails when `to` exists. */
  hardlink(from: string, to: string): Promise<void> {
    return this.extended('hardlink@openssh.com', (e) => e.string(from).string(to));
  }

  /** fsync@openssh.com: fsync(2) of an open file. */
  fsync(handle: Buffer): Promise<void> {
    return this.extended('fsync@openssh.com', (e) => e.string(handle));
  }

  /**
   * statvfs@openssh.com: statvfs(3) of the file system holding `path`; the bytes this user may
   * still write there (f_bavail blocks of f_frsize bytes).
   */
  statvfsAvailable(path: string): Promise<number> {
    return this.request(
      (e) => this.req(FXP.EXTENDED)(e).string('statvfs@openssh.com').string(path),
      (type, d) => {
        if (type !== FXP.EXTENDED_REPLY) {
          statusReply(type, d);
          throw unexpected(type);
        }
        d.u64(); // f_bsize
        const frsize = d.u64();
        d.u64(); // f_blocks
        d.u64(); // f_bfree
        const bavail = d.u64();
        return bavail * frsize;
      },
    );
  }

  private extended(name: string, args: (e: Encoder) => Encoder): Promise<void> {
    return this.request((e) => args(this.req(FXP.EXTENDED)(e).string(name)), statusReply);
  }

  private readLimits(): Promise<SessionLimits> {
    return this.request(
      (e) => this.req(FXP.EXTENDED)(e).string('limits@openssh.com'),
      (type, d) => {
        if (type !== FXP.EXTENDED_REPLY) return { maxRead: DEFAULT_IO, maxWrite: DEFAULT_IO };
        d.u64(); // max packet length
        const maxRead = d.u64();
        const maxWrite = d.u64();
        // 0 means "no limit announced"; never go above what any packet may hold
        const pick = (n: number): number => (n > 0 ? Math.min(n, MAX_PACKET - 1024) : DEFAULT_IO);
        return { maxRead: pick(maxRead), maxWrite: pick(maxWrite) };
      },
    );
  }
}

function statusOf(d: Decoder): { code: number; message: string } {
  const code = d.u32();
  const message = d.remaining >= 4 ? d.string().toString('utf8') : '';
  return { code, message };
}

function isEof(type: number, d: Decoder): boolean {
  if (type !== FXP.STATUS) return false;
  const s = statusOf(d);
  if (s.code === FX.EOF) return true;
  throw new SftpStatusError(s.code, s.message);
}

function unexpected(type: number): Error {
  return new SftpProtocolError(`unexpected reply type ${type}`);
}

function statusReply(type: number, d: Decoder): void {
  if (type !== FXP.STATUS) throw unexpected(type);
  const s = statusOf(d);
  if (s.code !== FX.OK) throw new SftpStatusError(s.code, s.message);
}

function handleReply(type: number, d: Decoder): Buffer {
  if (type === FXP.HANDLE) return Buffer.from(d.string());
  statusReply(type, d);
  throw unexpected(type);
}

function attrsReply(type: number, d: Decoder): Attrs {
  if (type === FXP.ATTRS) return d.attrs();
  statusReply(type, d);
  throw unexpected(type);
}

function startFailure(e: Error, cmd: string, peer: string): SnapError {
  const why = errnoCode(e) === 'ENOENT' ? 'not found (install the OpenSSH client, or name another command)' : e.message;
  return new SnapError('SNAP_REMOTE', `${peer}: cannot run ${JSON.stringify(cmd)}: ${why}`, { cause: e });
}
