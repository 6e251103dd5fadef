// Every object's location at once, held compactly: for a reader that looks up every object a
// repository's snapshots use (check), one pass over the index instead of a LevelDB read per object.
// A check of the bench repository made about 50,000 such reads on its main thread, each a call into
// LevelDB and a key and a location object made for it (the largest part of the walk's time, with the
// collector's share); the table is read in one pass in key order (the ids' order) and searched by
// the ids' first four bytes, then the whole id. About 62 bytes an object (62 MB for a million).
// Lookups answer as LevelIndex.lookup does: the same location, and the same refusal of a size no
// object of the repository can have (store/limits.ts checkObjectClaim).
import type { ObjectType } from '../store/pack.js';
import type { ObjectLocation } from '../store/object-store.js';
import { checkObjectClaim, type ObjectLimits } from '../store/limits.js';

const TYPES: ObjectType[] = ['blob', 'tree'];
const ID = 32;

/** An id's first four bytes as a number, what the search goes by first. */
function headOf(id: Uint8Array): number {
  return ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) >>> 0;
}

export class ObjectTable {
  private ids = Buffer.alloc(0);
  private heads = new Uint32Array(0);
  private packOf = new Uint32Array(0);
  /** offset, length, rawLength per object. */
  private sizes = new Float64Array(0);
  /** type (index in TYPES), codec per object. */
  private kinds = new Uint8Array(0);
  private readonly packs: string[] = [];
  private readonly packNo = new Map<string, number>();
  private n = 0;

  constructor(private readonly limits?: ObjectLimits) {}

  get size(): number {
    return this.n;
  }

  /** Add the next object: ids must come in ascending byte order (the index's key order). */
  add(id: Uint8Array, loc: ObjectLocation): void {
    if (id.length !== ID) throw new Error(`an object id of ${id.length} bytes in the index`);
    if (this.n === this.heads.length) this.grow();
    const i = this.n;
    if (i > 0 && this.ids.compare(id, 0, ID, (i - 1) * ID, i * ID) >= 0) throw new Error('object ids out of order in the index');
    this.ids.set(id, i * ID);
    this.heads[i] = headOf(id);
    let p = this.packNo.get(loc.pack);
    if (p === undefined) {
      p = this.packs.length;
      this.packs.push(loc.pack);
      this.packNo.set(loc.pack, p);
    }
    this.packOf[i] = p;
    this.sizes[3 * i] = loc.offset;
    this.sizes[3 * i + 1] = loc.length;
    this.sizes[3 * i + 2] = loc.rawLength;
    this.kinds[2 * i] = TYPES.indexOf(loc.type);
    this.kinds[2 * i + 1] = loc.codec;
    this.n++;
  }

  private grow(): void {
    const cap = Math.max(1024, this.heads.length * 2);
    const ids = Buffer.alloc(cap * ID);
    this.ids.copy(ids, 0, 0, this.n * ID);
    this.ids = ids;
    const heads = new Uint32Array(cap);
    heads.set(this.heads);
    this.heads = heads;
    const packOf = new Uint32Array(cap);
    packOf.set(this.packOf);
    this.packOf = packOf;
    const sizes = new Float64Array(cap * 3);
    sizes.set(this.sizes);
    this.sizes = sizes;
    const kinds = new Uint8Array(cap * 2);
    kinds.set(this.kinds);
    this.kinds = kinds;
  }

  /** Where `id` is stored, as LevelIndex.lookup answers (SNAP_CORRUPT for a size beyond the limits). */
  find(id: Uint8Array): ObjectLocation | undefined {
    if (id.length !== ID) return undefined;
    const head = headOf(id);
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.heads[mid]! < head) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.n && this.heads[i] === head; i++) {
      if (this.ids.compare(id, 4, ID, i * ID + 4, (i + 1) * ID) === 0) return this.at(i, id);
    }
    return undefined;
  }

  /** Every object, in id order. */
  *entries(): Iterable<[Buffer, ObjectLocation]> {
    for (let i = 0; i < this.n; i++) {
      const id = this.ids.subarray(i * ID, (i + 1) * ID);
      yield [id, this.location(i)];
    }
  }

  private location(i: number): ObjectLocation {
    return {
      pack: this.packs[this.packOf[i]!]!,
      type: TYPES[this.kinds[2 * i]!]!,
      offset: this.sizes[3 * i]!,
      length: this.sizes[3 * i + 1]!,
      rawLength: this.sizes[3 * i + 2]!,
      codec: this.kinds[2 * i + 1]!,
    };
  }

  private at(i: number, id: Uint8Array): ObjectLocation {
    const loc = this.location(i);
    checkObjectClaim(id, loc, this.limits);
    return loc;
  }
}
