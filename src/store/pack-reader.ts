// Reads of stored objects for a reader that knows in advance what it will read (a restore): packs
// of which most is wanted are fetched in one request each, ahead of the reads, instead of one
// ranged read per object. On S3 a request costs far more than its bytes (signing, a round trip, the
// gateway's own work per request: a restore of the benchmark corpus made 3,600 ranged GETs, and
// 30% more bytes than the packs hold, where 41 whole-pack GETs do), and a reader that waits on one
// request at a time waits on every round trip.
//
// The plan: the reader is told of every read it will get (`expect`: pack, offset, length), in the
// order it will roughly get them, before the first. For each pack this gives the span from the
// first planned byte to the last, the bytes planned in it and (up to `planReads` reads in all) the
// planned reads themselves. A pack whose planned bytes are at least half its span is fetched whole
// (the span, one getRange: on an encrypted repository one GET and one pass of authentication over
// it). Fetches run ahead of the reads in plan order (the order packs were first expected in), up to
// `fetches` at once, while the memory bound allows: the reads then find their bytes here instead
// of waiting on a request each time the restore moves on to the next pack.
//
// What is kept of a fetched pack: the objects still to be read, each copied out of the span as it
// arrives (the span is let go at once) and dropped at its last planned read. A restore visits a
// pack's objects in a burst and a few much later (a file whose content another file had earlier:
// the same object, read again), and reads several large files at once whose chunks sit in
// different packs; a pack kept whole until its last object was read held 16 MiB for a few
// kilobytes. In the benchmark corpus six packs were partly read at once, 106 MiB of spans.
//
// Other reads (packs mostly not wanted: an incremental snapshot's objects spread over older packs;
// reads beyond the plan; reads of a pack whose fetch found no room or failed) are merged with their
// neighbours asked for in the same turn of the event loop, one getRange a group: a backup stores a
// directory's small files one after the other and a restore visits them in the same order, so it
// asks for runs of adjacent objects (on a local repository, where nothing is planned, this is all it
// does: one pread per object was a thread-pool round trip each).
//
// Memory: bytes held (spans being fetched, objects kept, each object counted with KEPT_COST more for
// its entry) never exceed `budgetBytes`, and the plan keeps 8 bytes per planned read for at most
// `planReads` reads (a pack planned beyond that is kept as a span until its reads are done, as a
// whole). A span larger than the budget is never fetched whole. Fetches ahead wait for room; a read
// of a pack whose fetch has not started (the room is taken by objects kept for later reads) may drop
// what is kept of other packs, those with the fewest reads left first, if they have fewer reads left
// than it: their reads are then made in ranges. With no such room the read is made in a range and
// the next one tries again. So a pack is fetched whole at most once. Every read returns bytes no one
// else holds: nothing a caller keeps pins a span (while a fetched span is copied into its objects,
// one span more is held for that moment). Bytes are verified by the caller
// (object-codec.ts decodeAndVerify), as for any read: this only decides how they travel.
//
// With a spool (a local folder: repo/spool.ts), a fetched span is not held in memory: its stored
// bytes are written to a copy of the pack there (for an encrypted repository still sealed), and a
// reader that can read it on another thread (a restore's writer threads: `locate`) is told where
// the object is instead of getting its bytes; the main thread then neither opens nor copies them.
// A span counts against the memory budget while it is fetched, then against the spool's own bound
// (`spoolBytes`) until its copy is removed. A copy whose planned reads are made stays while the
// spool has room (reads beyond the plan find it), and goes when a fetch needs the room, but not
// before every reader told where one of its objects is has said it is done with it (`settled`).
import { SnapError, isSnapError } from '../core/errors.js';
import { type Backend, type StoredPieces, storedAsIs } from '../backend/backend.js';
import { packName } from './pack.js';
import type { PackReadSpec, StoredAt } from './thread-pack-reads.js';

/** A local folder holding copies of packs as stored (repo/spool.ts). */
export interface PackSpool {
  /** How a thread reads the copies (store/thread-pack-reads.ts). */
  readonly reads: PackReadSpec;
  /** Write a copy of `pack` holding these stored pieces (sparse elsewhere). */
  put(pack: string, stored: StoredPieces): Promise<void>;
  /** Bytes of a copy, read and opened here. */
  read(pack: string, offset: number, length: number): Promise<Buffer>;
  /** Remove a copy, before returning (failures are ignored: the folder goes at close). */
  remove(pack: string): void;
}

export interface PackReaderOptions {
  /** Bytes held at once: spans being fetched or kept, objects kept for later reads (see above). */
  budgetBytes: number;
  /** Fetches of whole packs in flight at once. */
  fetches: number;
  /** Planned reads remembered one by one (8 bytes each), in all; default 4,000,000. */
  planReads?: number;
  /** Fetched spans go to this folder rather than memory (see above). */
  spool?: PackSpool;
  /** Bytes of spans in the spool at once; default SPOOL_BUDGETS times budgetBytes. */
  spoolBytes?: number;
}

/** A span is fetched whole when at least this share of it is planned reads not made yet. */
const WHOLE_SHARE = 0.5;
/** Ranged reads this far apart (bytes of other objects between them) are still read as one. */
const MERGE_GAP = 64 * 1024;
/** The largest merged ranged read. */
const MERGE_MAX = 4 * 1024 * 1024;
const PLAN_READS = 4_000_000;
/** Bytes a kept object costs besides its own (its entry, its Buffer), counted against the budget. */
const KEPT_COST = 128;
/** The spool holds at most this many times the memory budget (on disk: spans whose objects are still to be written). */
const SPOOL_BUDGETS = 4;
/** readEarly: packs of at most this size are fetched whole, and at most this many kept. */
const EARLY_MAX = 32 * 1024 * 1024;
const EARLY_PACKS = 2;

type State =
  | 'planned' // not fetched
  | 'fetching'
  | 'span' // the span is kept
  | 'objects' // the objects still to be read are kept
  | 'spooled' // the span is in the spool
  | 'gone'; // nothing kept (dropped, done, or its fetch failed): reads are made in ranges

/** Planned reads of one pack: offsets and lengths, grown as needed. */
class ReadList {
  at = new Uint32Array(8);
  len = new Uint32Array(8);
  n = 0;
  push(offset: number, length: number): void {
    if (this.n === this.at.length) {
      const at = new Uint32Array(this.n * 2);
      const len = new Uint32Array(this.n * 2);
      at.set(this.at);
      len.set(this.len);
      this.at = at;
      this.len = len;
    }
    this.at[this.n] = offset;
    this.len[this.n++] = length;
  }
}

interface Kept {
  data: Buffer;
  /** Planned reads of it not made yet. */
  left: number;
}

interface Plan {
  pack: string;
  /** Position in plan order (the order packs were first expected in). */
  order: number;
  start: number;
  end: number;
  /** Bytes and reads planned and not made yet. */
  bytes: number;
  reads: number;
  /** Every planned read, while the plan holds them all (else undefined: kept as a span until done). */
  list: ReadList | undefined;
  state: State;
  /** Set while fetching: settles (never rejects) once the pack is kept or gone. */
  fetched?: Promise<void>;
  span?: Buffer;
  /** Reads made in ranges before the pack was fetched (no room then), by offset. */
  early?: Map<number, number>;
  /** With state 'objects': by offset. */
  objects?: Map<number, Kept>;
  /** Bytes counted against the budget. */
  held: number;
  /** Spooled, its planned reads all made: removed when the spool needs the room (finishCopy). */
  finished?: boolean;
  /** Some planned read of it is answered here with its bytes (read): not spooled. */
  readHere?: boolean;
  /** A copy is in the spool, or being fetched for it (until removed: not before `users` is 0). */
  onDisk?: boolean;
  /** Reads of the spooled copy in progress, here or on threads (locate until settled). */
  users?: number;
}

interface RangeRequest {
  offset: number;
  length: number;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

export class PackReader {
  private readonly plans = new Map<string, Plan>();
  private readonly order: Plan[] = [];
  /** The next pack in plan order that fetches ahead consider. */
  private cursor = 0;
  private heldBytes = 0;
  /** Bytes of spans in the spool (or being written there). */
  private spooledBytes = 0;
  /** Spooled copies whose planned reads are made, in the order they were (finishCopy). */
  private readonly finished: Plan[] = [];
  /** Reads have begun: the plan is made (readEarly). */
  private readsBegun = false;
  /** Packs fetched whole for readEarly (undefined: too large to be). */
  private readonly wholes = new Map<string, Promise<Buffer | undefined>>();
  private inFlight = 0;
  private planned = 0;
  private readonly planReads: number;
  private readonly waiting = new Map<string, RangeRequest[]>();
  private scheduled = false;
  /** What happened, for tests and measurements. */
  readonly stats = { spanFetches: 0, spanBytes: 0, spanReads: 0, keptReads: 0, spooledReads: 0, earlyFetches: 0, rangedReads: 0, rangedBytes: 0, dropped: 0, peakHeld: 0, peakFetches: 0 };

  constructor(
    private readonly backend: Backend,
    private readonly o: PackReaderOptions,
  ) {
    this.planReads = o.planReads ?? PLAN_READS;
  }

  /**
   * A read that will be made: `length` stored bytes at `offset` of `pack`; `located`: by `locate`,
   * from a thread (only a pack whose planned reads all are goes to the spool: the others, a tree
   * pack the walk reads here, are held in memory). Returns the reader's own copy of `pack` (one
   * string per pack).
   */
  expect(pack: string, offset: number, length: number, located = false): string {
    let p = this.plans.get(pack);
    if (!p) {
      p = { pack, order: this.order.length, start: offset, end: offset + length, bytes: 0, reads: 0, list: new ReadList(), state: 'planned', held: 0 };
      this.plans.set(pack, p);
      this.order.push(p);
    }
    if (!located) p.readHere = true;
    if (p.state !== 'planned') {
      // Planned after its fetch began (reads had begun): its span is fixed; a read outside it is made in a range.
      p.bytes += length;
      p.reads++;
      return p.pack;
    }
    p.start = Math.min(p.start, offset);
    p.end = Math.max(p.end, offset + length);
    p.bytes += length;
    p.reads++;
    if (p.list && this.planned < this.planReads && offset <= 0xffffffff && length <= 0xffffffff) {
      p.list.push(offset, length);
      this.planned++;
    } else if (p.list) {
      this.planned -= p.list.n;
      p.list = undefined;
    }
    return p.pack;
  }

  /**
   * A read made while the plan is being made, one of many in the same few packs that are not
   * planned yet (the count walk of a restore reads every tree, one after the other, each waiting
   * for the last): the pack is fetched whole once (up to EARLY_MAX bytes; at most EARLY_PACKS kept,
   * until reads begin) and the reads are served from it, instead of one request each.
   */
  async readEarly(pack: string, offset: number, length: number): Promise<Buffer> {
    if (this.readsBegun) return this.read(pack, offset, length);
    let whole = this.wholes.get(pack);
    if (whole) {
      this.wholes.delete(pack); // most recently used goes last
      this.wholes.set(pack, whole);
    } else {
      whole = this.backend.stat(packName(pack)).then((st) => (st && st.size <= EARLY_MAX ? this.backend.getRange(packName(pack), 0, st.size) : undefined));
      whole.catch(() => this.wholes.delete(pack));
      this.wholes.set(pack, whole);
      this.stats.earlyFetches++;
      if (this.wholes.size > EARLY_PACKS) this.wholes.delete(this.wholes.keys().next().value!);
    }
    const buf = await whole.catch(() => undefined);
    if (!buf || offset + length > buf.length) return this.ranged(pack, offset, length);
    return Buffer.from(buf.subarray(offset, offset + length));
  }

  /** `length` stored bytes at `offset` of `pack`: all of them or an error (SNAP_CORRUPT if the pack is shorter). */
  async read(pack: string, offset: number, length: number): Promise<Buffer> {
    const got = await this.reading(pack, offset, length, false);
    if (!Buffer.isBuffer(got)) throw new Error('a spooled read came back without its bytes');
    return got;
  }

  /**
   * Like read, for a caller that can read a spooled copy on another thread (PackSpool.reads): the
   * bytes, or where they are in the spool. Then the caller calls `settled(pack)` once it is done
   * with them (the copy stays until every such caller has).
   */
  async locate(pack: string, offset: number, length: number): Promise<Buffer | StoredAt> {
    return this.reading(pack, offset, length, true);
  }

  /**
   * locate without waiting: where the object is in the spool when its pack's copy is there now,
   * counted as locate counts it (the caller calls `settled(pack)` once done); undefined, changing
   * nothing, when it is not (being fetched, read in ranges, held in memory): then locate as usual.
   */
  locateNow(pack: string, offset: number, length: number): StoredAt | undefined {
    const p = this.plans.get(pack);
    if (!p || !this.spooledHolds(p, offset, length)) return undefined;
    this.readsBegun = true;
    this.wholes.clear();
    p.bytes -= length;
    p.reads--;
    return this.useSpooled(p, offset, length);
  }

  /** Whether `p`'s copy is in the spool and holds the read. */
  private spooledHolds(p: Plan, offset: number, length: number): boolean {
    return p.state === 'spooled' && offset >= p.start && offset + length <= p.end;
  }

  /** A read answered from `p`'s spooled copy: counted, the copy in use until `settled`. */
  private useSpooled(p: Plan, offset: number, length: number): StoredAt {
    this.stats.spooledReads++;
    p.users = (p.users ?? 0) + 1;
    this.finishCopy(p);
    this.pump();
    return { pack: p.pack, offset, length };
  }

  /** A caller told where an object is (locate) is done with it. */
  settled(pack: string): void {
    const p = this.plans.get(pack);
    if (!p) return;
    p.users! -= 1;
    this.removeCopy(p);
  }

  private async reading(pack: string, offset: number, length: number, locating: boolean): Promise<Buffer | StoredAt> {
    this.readsBegun = true;
    this.wholes.clear();
    const p = this.plans.get(pack);
    if (!p) return this.ranged(pack, offset, length);
    p.bytes -= length;
    p.reads--;
    if (p.state === 'planned' && this.worth(p, length) && !this.fetch(p, true)) {
      // No room now: this read is made in a range, and a later one tries again while the pack is
      // still mostly wanted. What it read is not kept if the pack is fetched after all.
      if (p.list) (p.early ??= new Map()).set(offset, (p.early.get(offset) ?? 0) + 1);
    }
    this.pump();
    if (p.state === 'fetching') await p.fetched;
    if (this.spooledHolds(p, offset, length)) {
      const at = this.useSpooled(p, offset, length);
      if (locating) return at;
      try {
        return await this.o.spool!.read(p.pack, offset, length);
      } finally {
        this.settled(pack);
      }
    }
    const out = this.take(p, offset, length);
    // The last planned read of a spooled pack, made in a range (planned after the fetch began).
    this.finishCopy(p);
    this.pump();
    return out ?? this.ranged(pack, offset, length);
  }

  /** The bytes of a read from what is kept of `p` (undefined: not kept, read in a range). */
  private take(p: Plan, offset: number, length: number): Buffer | undefined {
    if (p.state === 'span' && offset >= p.start && offset + length <= p.end) {
      this.stats.spanReads++;
      const at = offset - p.start;
      const out = Buffer.from(p.span!.subarray(at, at + length));
      if (p.reads <= 0) this.drop(p);
      return out;
    }
    if (p.state !== 'objects') return undefined;
    const k = p.objects!.get(offset);
    if (!k || k.data.length !== length) return undefined;
    this.stats.keptReads++;
    if (--k.left > 0) return Buffer.from(k.data);
    p.objects!.delete(offset);
    this.release(p, k.data.length + KEPT_COST);
    if (p.objects!.size === 0) this.drop(p);
    return k.data;
  }

  /** What a fetched span is kept as: its planned objects, each copied out of it, when the plan has them all; else the span. */
  private keep(p: Plan, span: Buffer): void {
    const list = p.list;
    if (!list) {
      p.state = 'span';
      p.span = span;
      return;
    }
    const objects = new Map<number, Kept>();
    let held = 0;
    for (let i = 0; i < list.n; i++) {
      const offset = list.at[i]!;
      const k = objects.get(offset);
      if (k) {
        k.left++;
        continue;
      }
      const at = offset - p.start;
      const data = Buffer.from(span.subarray(at, at + list.len[i]!));
      objects.set(offset, { data, left: 1 });
      held += data.length + KEPT_COST;
    }
    for (const [offset, n] of p.early ?? []) {
      const k = objects.get(offset);
      if (k && (k.left -= n) <= 0) {
        objects.delete(offset);
        held -= k.data.length + KEPT_COST;
      }
    }
    p.early = undefined;
    this.planned -= list.n;
    p.list = undefined;
    // Held while fetched: the span (so the bound holds for the copies too); from now on the objects.
    this.release(p, p.held - held);
    p.objects = objects;
    p.state = 'objects';
  }

  /** Whether a span of `size` bytes fits in the spool's bound, finished copies removed to make room (without a spool, always). */
  private makeSpoolRoom(size: number): boolean {
    if (!this.o.spool) return true;
    const bound = this.o.spoolBytes ?? SPOOL_BUDGETS * this.o.budgetBytes;
    // Copies whose planned reads are made go first, those finished first (removed now, or once
    // the jobs still reading them are answered).
    while (this.spooledBytes + size > bound && this.finished.length > 0) {
      const q = this.finished.shift()!;
      if (q.state === 'spooled') this.drop(q);
    }
    return this.spooledBytes + size <= bound;
  }

  /**
   * A spooled copy whose planned reads are all made is kept while the spool has room: a restore
   * reads again the files of a directory that occurs twice in the snapshot (the plan counts each
   * distinct directory once), and those reads then find the copy instead of making requests.
   */
  private finishCopy(p: Plan): void {
    if (p.state !== 'spooled' || p.reads > 0 || p.finished) return;
    p.finished = true;
    this.finished.push(p);
  }

  private worth(p: Plan, reading = 0): boolean {
    return p.reads + (reading > 0 ? 1 : 0) > 0 && p.bytes + reading >= WHOLE_SHARE * (p.end - p.start) && p.end - p.start <= this.o.budgetBytes;
  }

  /** Start fetches ahead of the reads, in plan order, while there is room and a free fetch. */
  private pump(): void {
    while (this.inFlight < this.o.fetches && this.cursor < this.order.length) {
      const p = this.order[this.cursor]!;
      if (p.state !== 'planned' || !this.worth(p)) {
        this.cursor++;
        continue;
      }
      if (this.heldBytes + (p.end - p.start) > this.o.budgetBytes || (!p.readHere && !this.makeSpoolRoom(p.end - p.start))) return;
      this.cursor++;
      this.fetch(p, false);
    }
  }

  /**
   * Fetch `p`'s span; false if there is no room. Ahead of reads (pump) the caller checked the room;
   * for a read (`demand`) what is kept of other packs may be dropped to make room, the packs with
   * the fewest reads left first, as long as the reads they had left (then made in ranges, a request
   * each at worst) are fewer than this pack's.
   */
  private fetch(p: Plan, demand: boolean): boolean {
    const size = p.end - p.start;
    if (!p.readHere && !this.makeSpoolRoom(size)) return false;
    if (demand && this.heldBytes + size > this.o.budgetBytes) {
      const left = (q: Plan): number => (q.state === 'objects' ? q.objects!.size : q.reads);
      const victims = this.order.filter((q) => q !== p && (q.state === 'span' || q.state === 'objects')).sort((x, y) => left(x) - left(y));
      let freed = 0;
      let cost = 0;
      const chosen: Plan[] = [];
      for (const q of victims) {
        if (this.heldBytes - freed + size <= this.o.budgetBytes) break;
        cost += left(q);
        if (cost >= p.reads + 1) break;
        freed += q.held;
        chosen.push(q);
      }
      if (this.heldBytes - freed + size > this.o.budgetBytes) return false;
      for (const q of chosen) {
        this.stats.dropped++;
        this.drop(q);
      }
    }
    p.state = 'fetching';
    p.held = size;
    this.heldBytes += size;
    this.stats.peakHeld = Math.max(this.stats.peakHeld, this.heldBytes);
    this.inFlight++;
    this.stats.peakFetches = Math.max(this.stats.peakFetches, this.inFlight);
    this.stats.spanFetches++;
    this.stats.spanBytes += size;
    const spool = p.readHere ? undefined : this.o.spool;
    const landed = spool
      ? this.spoolSpan(p, spool, size)
      : this.backend.getRange(packName(p.pack), p.start, size).then((span) => {
          // A short answer: every read of it is made on its own (and reports what is missing).
          if (span.length !== size) throw new SnapError('SNAP_CORRUPT', `pack ${p.pack.slice(0, 12)}: a short answer`);
          this.keep(p, span);
        });
    p.fetched = landed.then(
      () => {
        this.inFlight--;
        this.pump();
      },
      () => {
        // A damaged segment, a lost connection, a full disk under the spool: every read of it is
        // made on its own instead, so damage is reported for the objects it touches only.
        this.inFlight--;
        if (p.state === 'fetching') this.drop(p);
        this.pump();
      },
    );
    return true;
  }

  /** Fetch `p`'s span as stored into the spool: its room there is taken at once (a copy counts from its fetch until removeCopy). */
  private async spoolSpan(p: Plan, spool: PackSpool, size: number): Promise<void> {
    p.onDisk = true;
    this.spooledBytes += size;
    const name = packName(p.pack);
    await spool.put(p.pack, await (this.backend.storedRange ? this.backend.storedRange(name, p.start, size) : storedAsIs(this.backend, name, p.start, size)));
    if (p.state !== 'fetching') {
      this.removeCopy(p);
      return;
    }
    p.state = 'spooled';
    // On disk now, not in memory: counted against the spool's bound instead.
    this.release(p, p.held);
    // Its reads are counted, not listed: the copy holds every object of the span.
    if (p.list) this.planned -= p.list.n;
    p.list = undefined;
    p.early = undefined;
  }

  private release(p: Plan, bytes: number): void {
    p.held -= bytes;
    this.heldBytes -= bytes;
  }

  /** Let go of whatever is kept of `p` (or its fetch): its remaining reads are made in ranges. */
  private drop(p: Plan): void {
    this.release(p, p.held);
    if (p.list) this.planned -= p.list.n;
    p.list = undefined;
    p.early = undefined;
    p.span = undefined;
    p.objects = undefined;
    p.state = 'gone';
    this.removeCopy(p);
  }

  /** Remove `p`'s spooled copy once it is no longer read from and no reader still uses it. */
  private removeCopy(p: Plan): void {
    if (!p.onDisk || p.state === 'spooled' || p.state === 'fetching' || (p.users ?? 0) > 0) return;
    p.onDisk = false;
    this.spooledBytes -= p.end - p.start;
    this.o.spool!.remove(p.pack);
  }

  /** A read on its own, merged with the neighbouring reads asked for in the same turn. */
  private ranged(pack: string, offset: number, length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let list = this.waiting.get(pack);
      if (!list) this.waiting.set(pack, (list = []));
      list.push({ offset, length, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = [...this.waiting];
    this.waiting.clear();
    for (const [pack, reqs] of all) {
      reqs.sort((a, b) => a.offset - b.offset);
      let group: RangeRequest[] = [];
      let start = 0;
      let end = 0;
      for (const r of reqs) {
        if (group.length > 0 && (r.offset > end + MERGE_GAP || Math.max(end, r.offset + r.length) - start > MERGE_MAX)) {
          void this.readGroup(pack, start, end, group);
          group = [];
        }
        if (group.length === 0) {
          start = r.offset;
          end = r.offset;
        }
        group.push(r);
        end = Math.max(end, r.offset + r.length);
      }
      if (group.length > 0) void this.readGroup(pack, start, end, group);
    }
  }

  private async readGroup(pack: string, start: number, end: number, group: RangeRequest[]): Promise<void> {
    this.stats.rangedReads++;
    this.stats.rangedBytes += end - start;
    try {
      const buf = await this.backend.getRange(packName(pack), start, end - start);
      if (buf.length < end - start) {
        throw new SnapError('SNAP_CORRUPT', `pack ${pack.slice(0, 12)} is shorter than expected (wanted ${end - start} bytes at ${start}, got ${buf.length})`);
      }
      for (const r of group) r.resolve(buf.subarray(r.offset - start, r.offset - start + r.length));
    } catch (e) {
      // Damage in a merged read (a segment of an encrypted pack failing authentication) is the
      // damage of the reads it touches only: each is made again on its own.
      if (group.length === 1 || !isSnapError(e, 'SNAP_CORRUPT')) {
        for (const r of group) r.reject(e);
        return;
      }
      for (const r of group) this.backend.getRange(packName(pack), r.offset, r.length).then(r.resolve, r.reject);
    }
  }
}
