// The storage work of the maintenance commands (check, repair, gc), offered by the repository so
// that ops/maintain decides what to do and never touches the storage itself: a pack's table, a
// whole pack read for verification (an encrypted pack with its damaged segments as zeros), reads
// and copies for salvage into quarantine/, the sweep of temporary files, and gc's guard against
// snapshots written without the lock. Pure pieces over pack bytes are handed on from store/.
import { SnapError } from '../core/errors.js';
import type { Backend } from '../backend/backend.js';
import { type BlobKeys, copyAsStored, EncryptedBackend, getForSalvage } from '../backend/encrypted.js';
import { packName, type PackEntry, readPackHeader } from '../store/pack.js';
import { INDEX_FILES } from './index-files.js';
import { QUARANTINE, SNAPSHOTS, snapshotIdFromName } from './layout.js';

export { packName, type PackEntry } from '../store/pack.js';
export { entriesOfHeader, entriesOfPack, MAX_KEPT_PACK_BYTES, packIntact, type PackVerdict, verifyEntry } from '../store/pack-verify.js';
export { PackVerifier } from '../store/verify-pool.js';
export type { BlobKeys } from '../backend/encrypted.js';

/** What these functions need of a repository: its storage. */
export interface Stored {
  readonly backend: Backend;
}

/** A pack's table (its trailer and entry table, not the objects). */
export function readPackTable(repo: Stored, pack: string): Promise<PackEntry[]> {
  return readPackHeader(repo.backend, pack);
}

/**
 * A whole pack as stored, for verification, into `scratch` when the storage can fill a given
 * buffer and it is big enough; in an encrypted repository with the keys that open it (openBlob,
 * tolerant: its damaged segments come back as zeros, every object in them then fails its
 * verification, and the pack its name, where the caller checks them).
 */
export async function readPackForCheck(repo: Stored, pack: string, scratch: Buffer): Promise<{ stored: Buffer; keys?: BlobKeys }> {
  const b = repo.backend;
  if (b instanceof EncryptedBackend) return b.getSealed(packName(pack), scratch);
  return { stored: b.getInto ? await b.getInto(packName(pack), scratch) : await b.get(packName(pack)) };
}

/** A blob as far as it can be read, for salvage: `damaged` counts segments that failed authentication (zeros). */
export function readForSalvage(repo: Stored, name: string): Promise<{ bytes: Buffer; damaged: number; sealed: boolean }> {
  return getForSalvage(repo.backend, name);
}

/** Copy a blob, as read for salvage, to `quarantine/<name>` durably (sealed again in an encrypted repository). */
export function copyToQuarantine(repo: Stored, name: string, bytes: Buffer): Promise<void> {
  return copyAsStored(repo.backend, name, `${QUARANTINE}${name}`, bytes);
}

/** Defense in depth: a snapshot that appeared after marking means someone wrote without a lock. */
export async function assertNoNewSnapshots(repo: Stored, marked: Set<string>): Promise<void> {
  for await (const b of repo.backend.list(SNAPSHOTS)) {
    const id = snapshotIdFromName(b.name);
    if (id && !marked.has(id)) {
      throw new SnapError('SNAP_LOCKED', `snapshot ${id.slice(0, 8)} appeared while gc was running (a process writing without the repository lock?); nothing was deleted, run gc again`);
    }
  }
}

interface TempCleaner {
  removeTempFiles(prefix: string, olderThanMs?: number, topOnly?: boolean): Promise<number>;
}

/**
 * Temporary files of interrupted writes: in data/, snapshots/ and the index files older than
 * `dataMarginMs`; in locks/ and the top folder (a config or reserve being written) than `lockMarginMs`.
 */
export async function removeTempFiles(repo: Stored, dataMarginMs: number, lockMarginMs: number): Promise<number> {
  const backend = repo.backend;
  const c = backend as Partial<TempCleaner>;
  if (typeof c.removeTempFiles !== 'function') return 0;
  let n = 0;
  for (const p of ['data/', SNAPSHOTS, INDEX_FILES]) n += await c.removeTempFiles.call(backend, p, dataMarginMs);
  n += await c.removeTempFiles.call(backend, 'locks/', lockMarginMs);
  n += await c.removeTempFiles.call(backend, '', lockMarginMs, true);
  return n;
}

/** The stored size of a pack (0 when it is gone). */
export async function storedPackSize(repo: Stored, pack: string): Promise<number> {
  return (await repo.backend.stat(packName(pack)))?.size ?? 0;
}

/** Delete a pack from storage (gc, once nothing the index or a snapshot needs is in it). */
export function deletePack(repo: Stored, pack: string): Promise<void> {
  return repo.backend.delete(packName(pack));
}
