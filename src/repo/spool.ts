// The spool of a restore from remote storage (store/pack-reader.ts, "With a spool"): packs fetched
// whole are written as they are stored (sealed, on an encrypted repository) to a private folder of
// the repository's cache, in the repository's own layout, where the restore's writer threads read
// and open the objects they write (backend/thread-reads.ts) as they would from a local repository,
// and the main thread reads the trees it walks (a local backend over the folder, with the
// repository's encryption). A copy is removed when the spool needs its room and its objects are
// written (store/pack-reader.ts); the folder at the end of the restore, or, after a process that
// was killed, by the next restore of the repository.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fsPath } from '../core/bytes.js';
import { freeBuffer } from '../core/buffer-garbage.js';
import { SnapError } from '../core/errors.js';
import { makeDirs, writeAllTo } from '../core/durable.js';
import { randomHex } from '../core/ids.js';
import type { HostInfo } from '../core/host.js';
import type { Backend, StoredPieces } from '../backend/backend.js';
import { EncryptedBackend, type BlobKeys } from '../backend/encrypted.js';
import { LocalBackend } from '../backend/local.js';
import { packName } from '../store/pack.js';
import type { PackSpool } from '../store/pack-reader.js';
import type { PackReadSpec } from '../store/thread-pack-reads.js';

const PREFIX = 'restore-spool-';

export class RestoreSpool implements PackSpool {
  readonly reads: PackReadSpec;
  private readonly local: Backend;
  private readonly dirs = new Set<string>();

  private constructor(readonly dir: string, keys: BlobKeys | undefined) {
    this.reads = { root: dir, keys };
    const files = new LocalBackend(dir);
    this.local = keys ? new EncryptedBackend(files, keys) : files;
  }

  /** A new spool in `cacheDir` (the repository's cache folder); spools of processes that are gone are removed first. */
  static create(cacheDir: string, host: HostInfo, keys: BlobKeys | undefined): RestoreSpool {
    sweep(cacheDir, host);
    const dir = path.join(cacheDir, `${PREFIX}${host.pid}-${randomHex(4)}`);
    fs.mkdirSync(fsPath(dir), { mode: 0o700 });
    return new RestoreSpool(dir, keys);
  }

  async put(pack: string, stored: StoredPieces): Promise<void> {
    const file = path.join(this.dir, packName(pack));
    const dir = path.dirname(file);
    if (!this.dirs.has(dir)) {
      await makeDirs(dir, 0o700);
      this.dirs.add(dir);
    }
    const fh = await fsp.open(fsPath(file), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    try {
      for (const piece of stored.pieces) {
        if ('bytes' in piece) {
          await writeAllTo(fh, piece.bytes, piece.at);
          continue;
        }
        // As the bytes arrive, each written where it goes at once: no buffer of the whole piece
        // (a pack) to allocate and copy into. A write to the page cache of the local cache folder.
        let at = piece.at;
        for await (const chunk of piece.stream) {
          if (at + chunk.length > piece.at + piece.length) throw new SnapError('SNAP_CORRUPT', `pack ${pack.slice(0, 12)}: more bytes came than asked for`);
          for (let done = 0; done < chunk.length; ) done += fs.writeSync(fh.fd, chunk, done, chunk.length - done, at + done);
          at += chunk.length;
          // Ours (Backend.getStream) and written: freed now, not when the main thread's collector
          // gets to it (the HTTP parser's copies of answers were 44 MB of an S3 restore's peak).
          freeBuffer(chunk);
        }
        if (at !== piece.at + piece.length) throw new SnapError('SNAP_CORRUPT', `pack ${pack.slice(0, 12)}: a short answer (${at - piece.at} of ${piece.length} bytes)`);
      }
      await fh.truncate(stored.size);
    } finally {
      await fh.close();
    }
  }

  read(pack: string, offset: number, length: number): Promise<Buffer> {
    return this.local.getRange(packName(pack), offset, length);
  }

  remove(pack: string): void {
    // At once (one unlink): the spool's bound counts copies until they are gone.
    try {
      fs.rmSync(fsPath(path.join(this.dir, packName(pack))), { force: true });
    } catch {
      // Left for close(), which removes the folder.
    }
    // And the local backend lets go of its open handle of it (delete evicts it before it returns).
    this.local.delete(packName(pack)).catch(() => {});
  }

  /** Remove the folder and everything in it. */
  async close(): Promise<void> {
    await this.local.close().catch(() => {});
    await fsp.rm(fsPath(this.dir), { recursive: true, force: true });
  }
}

/** Remove the spools of processes no longer running (a restore killed before it could). */
function sweep(cacheDir: string, host: HostInfo): void {
  let names: string[];
  try {
    names = fs.readdirSync(fsPath(cacheDir));
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${PREFIX}(\\d+)-[0-9a-f]+$`).exec(name);
    const pid = Number(m?.[1]);
    if (!m || pid === host.pid || host.isAlive(pid)) continue;
    fs.rmSync(fsPath(path.join(cacheDir, name)), { recursive: true, force: true });
  }
}
