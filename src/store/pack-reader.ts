// Reads of stored objects for a reader that knows in advance what it will read (a restore): packs
// of which most is wanted are fetched in one request each, ahead of the reads, instead of one
// ranged read per object. On S3 a request costs far more than its bytes (signing, a round trip, the
// gateway's own work per request: a restore of the benchmark corpus made 3,600 ranged GETs, and
// 30% more bytes than the packs hold, where 41 whole-pack GETs do), and a reader that waits on one
// request at a time waits on every round trip.
//
// The plan: the reader is told of every read it will get (`expect`: pack, offset, length), before
// the first. For each pack this gives the span from the first planned byte to the last and the
// bytes planned in it. A pack whose planned bytes (still to be read) are at least half its span is
// fetched whole (the span, one getRange: on an encrypted repository one GET and one pass of
// authentication over it) when it is first read, and the next pack in plan order is fetched ahead
// while there is room, so the next reads find their bytes here. Other reads (packs mostly not
// wanted: an incremental snapshot's objects spread over older packs; reads beyond the plan) are
// merged with their neighbours asked for in the same turn of the event loop, one getRange a group:
// a backup stores a directory's small files one after the other and a restore visits them in the
// same order, so it asks for runs of adjacent objects (on a local repository, where nothing is
// planned, this is all it does: one pread per object was a thread-pool round trip each).
//
// Memory: spans held (fetched, or being fetched) never add up to more than `budgetBytes`; a span
// larger than that is never fetched whole (its pack is read in ranges). A span is dropped once its
// planned reads are done. A read that needs room drops a span nobody read yet, else the one with
// the fewest planned bytes left if that is fewer than its own pack's (their reads are then made
// in ranges), else it is made in a range itself. So a pack is fetched at most twice (once ahead,
// once for a read), and every read returns a copy: nothing a caller keeps holds a span in memory.
// Bytes are verified by the caller (object-codec.ts decodeAndVerify), as for any read: this only
// decides how they travel.
import { SnapError, isSnapError } from '../core/errors.js';
import type { Backend } from '../backend/backend.js';
import { packName } from './pack.js';

export interface PackReaderOptions {
  /** Bytes of spans held or being fetched at once (see above). */
  budgetBytes: number;
  /** Fetches ahead of reads start only while fewer than this many spans are being fetched. */
  fetches: number;
}

/** A span is fetched whole when at least this share of it is planned reads not made yet. */
const WHOLE_SHARE = 0.5;
/** Ranged reads this far apart (bytes of other objects between them) are still read as one. */
const MERGE_GAP = 64 * 1024;
/** The largest merged ranged read. */
const MERGE_MAX = 4 * 1024 * 1024;

interface Plan {
  /** Position in plan order (the order packs were first expected in). */
  order: number;
  start: number;
  end: number;
  /** Bytes and reads planned and not made yet. */
  bytes: number;
  reads: number;
  /** Fetched ahead of reads once; fetched for a read once (or its fetch failed): never again. */
  ahead: boolean;
  demanded: boolean;
}

interface Span {
  pack: string;
  plan: Plan;
  data: Promise<Buffer>;
  /** Set once data settled. */
  ready: boolean;
  /** A read used it. */
  used: boolean;
}

interface RangeRequest {
  offset: number;
  length: number;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

export class PackReader {
  private readonly plans = new Map<string, Plan>();
  private readonly order: string[] = [];
  private readonly spans = new Map<string, Span>();
  private heldBytes = 0;
  private inFlight = 0;
  private readonly waiting = new Map<string, RangeRequest[]>();
  private scheduled = false;
  /** What happened, for tests and measurements. */
  readonly stats = { spanFetches: 0, spanBytes: 0, spanReads: 0, rangedReads: 0, rangedBytes: 0, dropped: 0 };

  constructor(
    private readonly backend: Backend,
    private readonly o: PackReaderOptions,
  ) {}

  /** A read that will be made: `length` stored bytes at `offset` of `pack`. Returns the reader's own copy of `pack` (one string per pack). */
  expect(pack: string, offset: number, length: number): string {
    let p = this.plans.get(pack);
    if (!p) {
      p = { order: this.order.length, start: offset, end: offset + length, bytes: 0, reads: 0, ahead: false, demanded: false };
      this.plans.set(pack, p);
      this.order.push(pack);
    }
    p.start = Math.min(p.start, offset);
    p.end = Math.max(p.end, offset + length);
    p.bytes += length;
    p.reads++;
    return this.order[p.order]!;
  }

  /** `length` stored bytes at `offset` of `pack`: all of them or an error (SNAP_CORRUPT if the pack is shorter). */
  async read(pack: string, offset: number, length: number): Promise<Buffer> {
    const p = this.plans.get(pack);
    let s = this.spans.get(pack);
    if (p) {
      if (!s && !p.demanded && this.worth(p) && offset >= p.start && offset + length <= p.end) s = this.fetch(pack, p, true);
      p.bytes -= length;
      p.reads--;
      const next = this.order[p.order + 1];
      const q = next === undefined ? undefined : this.plans.get(next)!;
      if (q && !q.ahead && !q.demanded && !this.spans.has(next!) && this.worth(q)) this.fetch(next!, q, false);
    }
    if (s && offset >= s.plan.start && offset + length <= s.plan.end) {
      s.used = true;
      let data: Buffer | undefined;
      try {
        data = await s.data;
      } catch {
        // The span's fetch failed (a damaged segment, a lost connection): every read of it is
        // made on its own instead, so damage is reported for the objects it touches only.
      }
      if (data) {
        this.stats.spanReads++;
        const at = offset - s.plan.start;
        const out = Buffer.from(data.subarray(at, at + length));
        if (s.plan.reads <= 0) this.drop(s);
        return out;
      }
    }
    return this.ranged(pack, offset, length);
  }

  private worth(p: Plan): boolean {
    return p.reads > 0 && p.bytes >= WHOLE_SHARE * (p.end - p.start);
  }

  /**
   * Start fetching a pack's span if there is room: for a read (`demand`), a span that no read used
   * yet is dropped to make room, else the one with the fewest planned bytes left if that is fewer
   * than this pack's; ahead of reads, only free room is used.
   */
  private fetch(pack: string, p: Plan, demand: boolean): Span | undefined {
    const size = p.end - p.start;
    if (size > this.o.budgetBytes || (!demand && this.inFlight >= this.o.fetches)) return undefined;
    while (this.heldBytes > 0 && this.heldBytes + size > this.o.budgetBytes) {
      if (!demand) return undefined;
      let victim: Span | undefined;
      for (const s of this.spans.values()) {
        if (!s.ready) continue;
        if (!s.used) {
          victim = s;
          break;
        }
        if (!victim || s.plan.bytes < victim.plan.bytes) victim = s;
      }
      if (!victim || (victim.used && victim.plan.bytes >= p.bytes)) return undefined;
      this.stats.dropped++;
      this.drop(victim);
    }
    if (demand) p.demanded = true;
    else p.ahead = true;
    this.inFlight++;
    this.heldBytes += size;
    this.stats.spanFetches++;
    this.stats.spanBytes += size;
    const s: Span = { pack, plan: p, data: this.backend.getRange(packName(pack), p.start, size), ready: false, used: false };
    this.spans.set(pack, s);
    s.data.then(
      () => {
        s.ready = true;
        this.inFlight--;
        // Its planned reads all came while it was fetched: nothing will read it.
        if (p.reads <= 0) this.drop(s);
      },
      () => {
        s.ready = true;
        this.inFlight--;
        p.ahead = p.demanded = true;
        this.drop(s);
      },
    );
    return s;
  }

  private drop(s: Span): void {
    if (this.spans.get(s.pack) !== s) return;
    this.spans.delete(s.pack);
    this.heldBytes -= s.plan.end - s.plan.start;
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
