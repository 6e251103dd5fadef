// Copies the live objects of old packs into new packs for gc. Stored bytes are copied as they are
// (no recompression), after each object is verified, so damage is never copied into a new pack.
// Each new pack is durable in storage before its index entries are written (docs/format.md).
import type { Backend } from '../backend/backend.js';
import { type LocationIndex } from '../store/object-store.js';
import { type ObjectType, PackBuilder, type PackEntry, packName } from '../store/pack.js';
import { entriesOfPack, storedBytes, verifyEntry } from '../store/pack-verify.js';
import { type CodecContext, PLAIN } from '../store/object-codec.js';
import { errorMessage } from './reachability.js';

export type CopyOutcome = { ok: true; copied: number } | { ok: false; reason: string };

export class PackRewriter {
  private readonly builders = new Map<ObjectType, PackBuilder>();
  readonly written = new Set<string>();

  constructor(
    private readonly backend: Backend,
    private readonly index: LocationIndex,
    private readonly packSize: number,
    /** The codec context objects are verified with (store/object-codec.ts). */
    private readonly ctx: CodecContext = PLAIN,
  ) {}

  /** Copy the entries of `packId` for which `isLive` holds. Nothing is copied unless all verify. */
  async copyLive(packId: string, isLive: (e: PackEntry) => Promise<boolean>): Promise<CopyOutcome> {
    let bytes: Buffer;
    let entries: PackEntry[];
    try {
      bytes = await this.backend.get(packName(packId));
      entries = entriesOfPack(bytes, packId);
    } catch (e) {
      return { ok: false, reason: errorMessage(e) };
    }
    const live: PackEntry[] = [];
    for (const e of entries) if (await isLive(e)) live.push(e);
    for (const e of live) {
      try {
        await verifyEntry(bytes, e, packId, undefined, this.ctx);
      } catch (err) {
        return { ok: false, reason: errorMessage(err) };
      }
    }
    await this.copyEntries(bytes, live);
    return { ok: true, copied: live.length };
  }

  /**
   * Copy entries of a pack held in memory that the caller has verified (gc's live objects, repair's
   * salvage). Copies, so the old pack's buffer is freed once the caller drops it.
   */
  async copyEntries(bytes: Buffer, entries: PackEntry[]): Promise<void> {
    for (const e of entries) await this.add(e, Buffer.from(storedBytes(bytes, e)));
  }

  private async add(e: PackEntry, data: Buffer): Promise<void> {
    let b = this.builders.get(e.type);
    if (!b) this.builders.set(e.type, (b = new PackBuilder()));
    b.add(e.id, e.type, data, e.rawLength, e.codec);
    if (b.isFull(this.packSize)) {
      this.builders.delete(e.type);
      await this.write(b);
    }
  }

  private async write(b: PackBuilder): Promise<void> {
    const { id, bytes, entries } = b.seal();
    await this.backend.put(packName(id), bytes);
    await this.index.addPack(id, bytes.length, entries);
    this.written.add(id);
  }

  /** Write the partly filled packs. */
  async flush(): Promise<void> {
    for (const [t, b] of [...this.builders]) {
      this.builders.delete(t);
      if (b.count > 0) await this.write(b);
    }
  }
}
