// The index's key-value operations (kv.ts) over this process's memory: for a command that only
// reads the repository when its LevelDB cannot be opened because its disk is full (LevelDB writes
// when it opens: the log of the last writes becomes a table). The index is then rebuilt here from
// the repository, as it would be on disk (docs/design.md, "The index when the disk is full"), and
// forgotten when the command ends. Memory grows with the repository's objects, so it is only ever
// a fallback, said when taken.
import { type KV, type KeyRange, type KvOp } from './kv.js';

const EMPTY = Buffer.alloc(0);

export class MemoryKV implements KV {
  /** Values by key (as latin1 strings: one character per byte, so their order is the keys' order). */
  private readonly values = new Map<string, Buffer>();
  /** The keys in order, made again when read after a write added or removed one. */
  private sorted: string[] | undefined = [];

  get(key: Buffer): Buffer | undefined {
    return this.values.get(key.toString('latin1'));
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    return keys.map((k) => this.get(k));
  }

  async write(ops: KvOp[]): Promise<void> {
    for (const [k, v] of ops) {
      const key = k.toString('latin1');
      if (v === undefined) {
        if (this.values.delete(key)) this.sorted = undefined;
      } else {
        if (!this.values.has(key)) this.sorted = undefined;
        this.values.set(key, Buffer.from(v)); // the caller may reuse its buffer
      }
    }
  }

  /** The entries in range as they are when it starts; one deleted before it reaches it is skipped. */
  async *iterate(range: KeyRange, keysOnly = false): AsyncIterable<[Buffer, Buffer]> {
    const keys = this.keysIn(range);
    for (const key of keys) {
      const v = this.values.get(key);
      if (v === undefined) continue;
      yield [Buffer.from(key, 'latin1'), keysOnly ? EMPTY : v];
    }
  }

  async entries(range: KeyRange): Promise<[Buffer, Buffer][]> {
    const out: [Buffer, Buffer][] = [];
    for await (const e of this.iterate(range)) out.push(e);
    return out;
  }

  async clear(range?: KeyRange): Promise<void> {
    if (!range) {
      this.values.clear();
      this.sorted = [];
      return;
    }
    for (const key of this.keysIn(range)) this.values.delete(key);
    this.sorted = undefined;
  }

  async reset(): Promise<void> {
    await this.clear();
  }

  async close(): Promise<void> {
    await this.clear();
  }

  private keysIn(range: KeyRange): string[] {
    const sorted = (this.sorted ??= [...this.values.keys()].sort());
    const lo = range.gte !== undefined ? range.gte.toString('latin1') : range.gt !== undefined ? range.gt.toString('latin1') : undefined;
    let start = lo === undefined ? 0 : firstNotBelow(sorted, lo);
    if (range.gte === undefined && range.gt !== undefined && sorted[start] === lo) start++;
    const end = firstNotBelow(sorted, range.lt.toString('latin1'));
    return sorted.slice(start, end);
  }
}

/** The index of the first key not below `key` (binary search; strings compare by code unit). */
function firstNotBelow(sorted: string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
