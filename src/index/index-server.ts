// The owner's side of the index protocol (index-rpc.ts): serves the LevelDB this process opened to
// the other snap processes of the repository, until this process closes the index.
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import { SnapError, errnoCode } from '../core/errors.js';
import { type KeyRange, type KvOp, type LocalKV } from './kv.js';
import { FrameReader, type OwnerInfo, PROTOCOL_VERSION, bytes, bytesOrUndefined, encodeFrame } from './index-rpc.js';

/** A page of entries: bounded in count and bytes so no frame grows large. */
const PAGE_ENTRIES = 4096;
const PAGE_BYTES = 4 * 1024 * 1024;

interface Conn {
  sock: net.Socket;
  inflight: number;
  closing: boolean;
  done: Promise<void>;
}

export class IndexServer {
  private readonly conns = new Set<Conn>();
  private closed = false;

  private constructor(private readonly server: net.Server, private kv: () => LocalKV, private readonly info: OwnerInfo) {}

  /**
   * Listen at `where`. Called only while holding the LevelDB (its LOCK file proves no other process
   * owns the index), so a socket file found there is stale and is replaced.
   */
  static async listen(where: string, kv: () => LocalKV, info: OwnerInfo): Promise<IndexServer> {
    await fsp.unlink(where).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw e;
    });
    const server = net.createServer();
    // Serving never keeps this process running by itself: it ends when its own command ends (its
    // clients then take the index over). close() keeps it alive while it hands over (a timer).
    server.unref();
    const s = new IndexServer(server, kv, info);
    server.on('connection', (sock) => s.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(where, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // A failure of the listening socket after this (rare) only means no new clients: they wait
    // and take the index over once this process closes it.
    server.on('error', () => {});
    await fsp.chmod(where, 0o600).catch(() => {}); // owner-only, like the folder it is in
    return s;
  }

  /** Clients connected now (for tests and diagnostics). */
  get clients(): number {
    return this.conns.size;
  }

  /**
   * Stop: no new connections (the socket file is removed), requests already received are answered,
   * then every connection is closed. Clients then race to open the LevelDB themselves.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopped = new Promise<void>((r) => this.server.close(() => r()));
    // Requests that arrive from now on are dropped (their clients send them again to the next
    // owner). The sockets keep reading: a paused socket would never see its peer's end, and an
    // idle handle does not keep Node running, so this process would simply exit, mid-close.
    for (const c of this.conns) {
      c.closing = true;
      if (c.inflight === 0) c.sock.end();
    }
    const all = Promise.all([...this.conns].map((c) => c.done));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, 5000)));
    await Promise.race([all, late]);
    clearTimeout(timer);
    for (const c of this.conns) c.sock.destroy(); // a client that does not close its end
    await stopped;
  }

  private accept(sock: net.Socket): void {
    let ended!: () => void;
    const c: Conn = { sock, inflight: 0, closing: this.closed, done: new Promise<void>((r) => (ended = r)) };
    this.conns.add(c);
    sock.unref();
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = reader.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      if (c.closing) return;
      for (const f of frames) void this.handle(c, f);
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.conns.delete(c);
      ended();
    });
    if (c.closing) sock.end();
  }

  private async handle(c: Conn, f: unknown): Promise<void> {
    if (!Array.isArray(f) || typeof f[0] !== 'number' || typeof f[1] !== 'string') {
      c.sock.destroy();
      return;
    }
    const id = f[0];
    c.inflight++;
    let answer: unknown[];
    try {
      answer = [id, 0, await this.run(f[1], f.slice(2))];
    } catch (e) {
      const code = e instanceof SnapError ? e.code : 'SNAP_IO';
      answer = [id, 1, code, e instanceof Error ? e.message : String(e)];
    }
    c.inflight--;
    if (!c.sock.destroyed) c.sock.write(encodeFrame(answer));
    if (c.closing && c.inflight === 0) c.sock.end();
  }

  private async run(op: string, a: unknown[]): Promise<unknown> {
    const kv = this.kv();
    switch (op) {
      case 'hello':
        return { ...this.info, v: PROTOCOL_VERSION };
      case 'get': {
        if (!Array.isArray(a[0])) break;
        return a[0].map((k) => kv.get(bytes(k)) ?? null);
      }
      case 'write': {
        if (!Array.isArray(a[0])) break;
        const ops: KvOp[] = a[0].map((o) => {
          if (!Array.isArray(o)) throw new SnapError('SNAP_IO', 'index protocol: a bad write');
          return [bytes(o[0]), bytesOrUndefined(o[1])];
        });
        await kv.write(ops, a[1] === true);
        return null;
      }
      case 'page': {
        const range: KeyRange = { gte: bytesOrUndefined(a[0]), gt: bytesOrUndefined(a[1]), lt: bytes(a[2]) };
        if (range.gte === undefined) delete range.gte;
        if (range.gt === undefined) delete range.gt;
        const p = await kv.page(range, PAGE_ENTRIES, PAGE_BYTES, a[3] === true);
        return [p.entries, p.more];
      }
      case 'clear': {
        const lt = bytesOrUndefined(a[1]);
        await kv.clear(lt ? { gte: bytes(a[0]), lt } : undefined);
        return null;
      }
    }
    throw new SnapError('SNAP_IO', `index protocol: unknown request '${op}'`);
  }
}
