// One LevelDB index, many snap processes (docs/design.md, "Sharing the index"). LevelDB admits one
// process, so the first process to open it becomes its owner and serves the others over a Unix
// socket in the index folder (index-server.ts); the others are clients (index-rpc.ts). When the
// owner closes the index, or dies, its clients notice the connection closing and race to open
// the LevelDB: LevelDB's LOCK file picks the winner, which becomes the owner (it first prepares
// the index, e.g. rebuilds it when incomplete, then listens), and the others connect to it.
// Every request is idempotent (a put, a delete, a read, a page from a cursor), so a request that
// the old owner may or may not have carried out is sent again to the new one.
import * as fsp from 'node:fs/promises';
import { makeDirs, writeFileDurable } from '../core/durable.js';
import * as path from 'node:path';
import { displayPath, fsPath } from '../core/bytes.js';
import { SnapError, fromSystemError } from '../core/errors.js';
import type { ProgressSink } from '../core/progress.js';
import { type KV, type KeyRange, type KvOp, LOCKED, LocalKV } from './kv.js';
import { IndexServer } from './index-server.js';
import { Disconnected, IndexConnection, type OwnerInfo, PROTOCOL_VERSION, SocketPath, bytes } from './index-rpc.js';

export interface SharedOpenOptions {
  /** How long to wait for an owner that does not serve yet (it is rebuilding the index). */
  waitMs: number;
  sink: ProgressSink;
  /** Stops waiting (Ctrl-C). */
  signal?: AbortSignal;
  /** Who this process is, told to clients and to processes that wait. */
  owner: { pid: number; host: string; command: string };
  /**
   * Run when this process becomes the owner, before it serves anyone: at the start, or when it
   * takes over from an owner that went away. Its index calls go to the LevelDB directly.
   */
  prepare?: () => Promise<void>;
  /** Never serve other processes (tests, and the owner of a brand-new repository's first open). */
  noServe?: boolean;
}

/** Written by the owner next to the LevelDB, so a process that waits can say who it waits for. */
export const OWNER_FILE = 'snap-index.owner';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long a process waits, whatever its --lock-wait, for a LevelDB held by an owner that has no
 * owner file: one closing its index (a backup finishing) or just opening it; either takes a moment.
 */
const OWNERLESS_GRACE_MS = 3000;

export class SharedKV implements KV {
  private local: LocalKV | undefined;
  private server: IndexServer | undefined;
  private conn: IndexConnection | undefined;
  private attaching: Promise<void> | undefined;
  private pendingGets: { key: Buffer; resolve: (v: Buffer | undefined) => void; reject: (e: unknown) => void }[] = [];
  private closed = false;
  private sockPath!: SocketPath;
  /** How many times this process became the owner after starting as a client (tests, diagnostics). */
  takeovers = 0;

  private constructor(readonly dir: string, private readonly o: SharedOpenOptions) {}

  /** Not usable until start() resolves. */
  static create(dir: string, o: SharedOpenOptions): SharedKV {
    return new SharedKV(dir, o);
  }

  /** Connect to the owner, or become it (running `prepare`). */
  async start(): Promise<void> {
    try {
      await makeDirs(this.dir, 0o700).catch((e: unknown) => {
        throw fromSystemError(e, `making the folder of the repository index ${displayPath(this.dir)}`);
      });
      this.sockPath = new SocketPath(this.dir);
      await this.attach(false);
    } catch (e) {
      this.closed = true;
      this.sockPath?.close();
      throw e;
    }
  }

  /** Whether this process owns the LevelDB now. */
  get isOwner(): boolean {
    return this.local !== undefined;
  }

  /** The owner this client talks to (undefined while this process owns the index). */
  get ownerInfo(): OwnerInfo | undefined {
    return this.conn?.owner;
  }

  get(key: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
    if (this.local) return this.local.get(key);
    // Lookups made in one turn of the event loop travel in one request.
    return new Promise((resolve, reject) => {
      if (this.pendingGets.push({ key, resolve, reject }) === 1) queueMicrotask(() => void this.flushGets());
    });
  }

  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    if (this.local) return this.local.getMany(keys);
    // Made in one turn: one request (flushGets).
    return Promise.all(keys.map((k) => this.get(k)));
  }

  private async flushGets(): Promise<void> {
    const batch = this.pendingGets;
    this.pendingGets = [];
    try {
      const keys = batch.map((g) => g.key);
      const vals = await this.call((l) => keys.map((k) => l.get(k)), async (c) => {
        const r = await c.request('get', keys);
        if (!Array.isArray(r) || r.length !== keys.length) throw new SnapError('SNAP_IO', 'index protocol: a bad answer to get');
        return r.map((v) => (v === null || v === undefined ? undefined : bytes(v)));
      });
      batch.forEach((g, i) => g.resolve(vals[i]));
    } catch (e) {
      for (const g of batch) g.reject(e);
    }
  }

  async write(ops: KvOp[], sync = false): Promise<void> {
    if (ops.length === 0) return;
    await this.call(
      (l) => l.write(ops, sync),
      (c) => c.request('write', ops.map(([k, v]) => [k, v ?? null]), sync),
    );
  }

  async *iterate(range: KeyRange, keysOnly = false): AsyncIterable<[Buffer, Buffer]> {
    if (this.local) {
      // The owner stays the owner until it closes: its own LevelDB iterator, unpaged.
      yield* this.local.iterate(range, keysOnly);
      return;
    }
    // A client reads pages, each from just after the last key it saw: a page survives a change of
    // owner, and writes made meanwhile by others never make it go back.
    let cur: KeyRange = range;
    for (;;) {
      const page = await this.call(
        (l) => l.page(cur, 4096, 4 * 1024 * 1024, keysOnly),
        async (c) => {
          const r = await c.request('page', cur.gte ?? null, cur.gt ?? null, cur.lt, keysOnly);
          if (!Array.isArray(r) || !Array.isArray(r[0])) throw new SnapError('SNAP_IO', 'index protocol: a bad page');
          return { entries: (r[0] as unknown[][]).map((e): [Buffer, Buffer] => [bytes(e[0]), bytes(e[1])]), more: r[1] === true };
        },
      );
      for (const e of page.entries) yield e;
      if (!page.more || page.entries.length === 0) return;
      cur = { gt: page.entries[page.entries.length - 1]![0], lt: range.lt };
    }
  }

  async entries(range: KeyRange): Promise<[Buffer, Buffer][]> {
    if (this.local) return this.local.entries(range);
    const out: [Buffer, Buffer][] = [];
    for await (const e of this.iterate(range)) out.push(e);
    return out;
  }

  async clear(range?: KeyRange): Promise<void> {
    await this.call(
      (l) => l.clear(range),
      (c) => c.request('clear', range?.gte ?? range?.gt ?? null, range?.lt ?? null),
    );
  }

  /**
   * Only the owner starts the index over (after damage): its clients are disconnected first, and
   * connect again to the new LevelDB. A client cannot: the owner may be reading it right now.
   */
  async reset(): Promise<void> {
    if (!this.local) {
      const who = this.conn?.owner;
      throw new SnapError(
        'SNAP_CORRUPT',
        `the repository index is damaged, and another snap process${who ? ` ('${who.command}', pid ${who.pid})` : ''} is using it: run 'snap index rebuild' once it has finished`,
      );
    }
    await this.server?.close();
    this.server = undefined;
    await this.local.reset();
    this.sockPath.refresh();
    await this.serve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.server) await this.server.close(); // clients take over from here
      if (this.local) {
        await fsp.rm(fsPath(path.join(this.dir, OWNER_FILE)), { force: true }).catch(() => {});
        await this.local.close();
      }
      this.conn?.close();
    } finally {
      this.sockPath.close();
    }
  }

  /**
   * Run one operation: on the LevelDB when this process owns it, else as a request to the owner.
   * When the owner goes away mid-request, attach again (connect to the next owner, or become it)
   * and repeat the request.
   */
  private async call<T>(local: (l: LocalKV) => T | Promise<T>, remote: (c: IndexConnection) => Promise<T>): Promise<T> {
    for (;;) {
      if (this.closed) throw new SnapError('SNAP_IO', 'the repository index is closed');
      if (this.local) return local(this.local);
      if (this.attaching) {
        await this.attaching;
        continue;
      }
      const c = this.conn;
      if (!c || c.closed) {
        await this.reattach();
        continue;
      }
      try {
        return await remote(c);
      } catch (e) {
        if (!(e instanceof Disconnected)) throw e;
        await this.reattach();
      }
    }
  }

  private reattach(): Promise<void> {
    this.attaching ??= this.attach(true).finally(() => {
      this.attaching = undefined;
    });
    return this.attaching;
  }

  /**
   * Connect to the owner, or become it. Repeats until one works: an owner that is preparing the
   * index (rebuilding it) holds the LevelDB but does not listen yet, and is waited for up to
   * `waitMs` (--lock-wait), naming it.
   */
  private async attach(takeover: boolean): Promise<void> {
    this.conn?.close();
    this.conn = undefined;
    const start = Date.now();
    let told = false;
    for (let round = 0; ; round++) {
      if (round === 0 && takeover) this.sockPath.refresh();
      const c = await IndexConnection.connect(this.sockPath.path);
      if (c) {
        this.conn = c;
        return;
      }
      const l = await LocalKV.tryOpen(this.dir);
      if (l !== LOCKED) {
        this.local = l;
        if (takeover) this.takeovers++;
        try {
          await this.writeOwnerFile();
          await this.o.prepare?.();
          await this.serve();
        } catch (e) {
          this.local = undefined;
          await l.close().catch(() => {});
          throw e;
        }
        return;
      }
      // LevelDB is held, but nobody answers: its owner is starting, preparing, or closing. One
      // without an owner file is closing (it removes the file, then closes the LevelDB) or has
      // just opened it (it writes the file next): a moment, waited for whatever waitMs says, so a
      // reader started with --lock-wait 0 as a backup ends does not fail for it.
      this.o.signal?.throwIfAborted();
      const waited = Date.now() - start;
      if (waited >= this.o.waitMs && (waited >= OWNERLESS_GRACE_MS || (await this.ownerFileExists()))) {
        const who = await this.readOwnerFile();
        throw new SnapError(
          'SNAP_LOCKED',
          `the repository index at ${displayPath(this.dir)} is held by ${describeOwner(who)}, which does not answer yet (waited ${Math.round(waited / 1000)} s; use --lock-wait to wait longer)`,
        );
      }
      if (!told && waited > 1000) {
        const who = await this.readOwnerFile();
        this.o.sink.info?.(`waiting for ${describeOwner(who)} to make the repository index ready (it may be rebuilding it; Ctrl-C stops waiting)...`);
        told = true;
      }
      await sleep(Math.min(200, 10 + round * 10) * (0.5 + Math.random()));
    }
  }

  private async serve(): Promise<void> {
    if (this.o.noServe || !this.local) return;
    const info: OwnerInfo = { v: PROTOCOL_VERSION, pid: this.o.owner.pid, host: this.o.owner.host, command: this.o.owner.command, since: new Date().toISOString() };
    this.server = await IndexServer.listen(this.sockPath.path, () => this.local!, info);
  }

  private async writeOwnerFile(): Promise<void> {
    const file = path.join(this.dir, OWNER_FILE);
    const rec = JSON.stringify({ pid: this.o.owner.pid, host: this.o.owner.host, command: this.o.owner.command, since: new Date().toISOString() }) + '\n';
    const tmp = `${file}.${this.o.owner.pid}.tmp`;
    await fsp.rm(fsPath(tmp), { force: true }); // left by a process that had this pid and crashed
    await writeFileDurable({ dir: fsPath(this.dir), tmp: fsPath(tmp), dest: fsPath(file), mode: 0o600 }, rec);
  }

  private async ownerFileExists(): Promise<boolean> {
    return fsp.lstat(fsPath(path.join(this.dir, OWNER_FILE))).then(
      () => true,
      () => false,
    );
  }

  private async readOwnerFile(): Promise<Partial<OwnerInfo> | undefined> {
    try {
      const v: unknown = JSON.parse(await fsp.readFile(fsPath(path.join(this.dir, OWNER_FILE)), 'utf8'));
      return v && typeof v === 'object' ? (v as Partial<OwnerInfo>) : undefined;
    } catch {
      return undefined;
    }
  }
}

function describeOwner(w: Partial<OwnerInfo> | undefined): string {
  if (!w || typeof w.pid !== 'number') return 'another snap process';
  return `'${String(w.command)}' (pid ${w.pid} on ${String(w.host)}, since ${String(w.since)})`;
}
